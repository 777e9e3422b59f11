"""The review queue a person works through: the saved view, the boxes it shows, the App's sidebar.

The saved view ``review-queue`` holds the samples tagged ``to-review`` (those selected or
harvested for review), sorted by a score, descending, and shows only predictions at or above a
display confidence; the low-confidence boxes stay in the field (the data set's full view shows
them). The settings are kept in the data set's ``info["cvactive_review"]`` so that
``cvactive pull`` turns into ground truth exactly the boxes the reviewer saw. The App's sidebar
groups cvactive's fields: a "review" group (the sort score, the selecting strategy and harvest
rules, rank, round) after the tags, the other image scores collapsed, the source fields collapsed.
"""

from __future__ import annotations

import logging
from typing import Any

from cvactive.store._lock import dataset_lock
from cvactive.store.convert import REVIEW_VIEW, TO_REVIEW
from cvactive.store.fields import EMBEDDING_FIELD, REVIEW_FIELDS, SOURCE_FIELDS, SYNTHETIC_FIELDS

log = logging.getLogger(__name__)

#: Where the review settings live in ``dataset.info``.
REVIEW_INFO = "cvactive_review"
#: Predictions below this confidence are hidden in the review queue by default.
DISPLAY_CONF = 0.25


def review_settings(dataset: Any) -> dict[str, Any]:
    """The review queue's settings: ``label_field``, ``score``, ``display_conf`` (empty when never pushed)."""
    return dict(dataset.info.get(REVIEW_INFO) or {})


def _score_fields(dataset: Any, exclude: set[str]) -> list[str]:
    return sorted(
        n
        for n, f in dataset.get_field_schema().items()
        if type(f).__name__ == "FloatField" and n not in exclude and not n.startswith("eval_")
    )


def build_view(dataset: Any, label_field: str, review_score: str | None, display_conf: float) -> Any:
    """``to-review`` samples by descending ``review_score``, predictions below ``display_conf`` hidden."""
    from fiftyone import ViewField as F

    view = dataset.match_tags(TO_REVIEW)
    if display_conf > 0 and dataset.has_sample_field(label_field):
        view = view.filter_labels(label_field, F("confidence") >= display_conf, only_matches=False)
    if review_score:
        if dataset.has_sample_field(review_score):
            view = view.sort_by(review_score, reverse=True)
        else:
            log.warning(
                "review score %r is not a field of %s; the review queue is unsorted (score fields: %s)",
                review_score,
                dataset.name,
                ", ".join(_score_fields(dataset, {"timestamp"})) or "none",
            )
    return view


def sidebar_groups(dataset: Any, label_field: str, review_score: str | None) -> list[Any]:
    """The App's sidebar: FiftyOne's default groups with cvactive's fields regrouped."""
    import fiftyone as fo

    schema = dataset.get_field_schema()
    review = [p for p in [review_score, *REVIEW_FIELDS, "uniqueness"] if p and p in schema]
    review = list(dict.fromkeys(review))
    source = [p for p in [*SOURCE_FIELDS, *SYNTHETIC_FIELDS, EMBEDDING_FIELD] if p in schema]
    scores = [p for p in _score_fields(dataset, {"timestamp", "uniqueness", *REVIEW_FIELDS}) if p not in review]
    ours = set(review) | set(source) | set(scores)
    groups = []
    for group in fo.DatasetAppConfig.default_sidebar_groups(dataset):
        group.paths = [p for p in group.paths if p not in ours]
        groups.append(group)
        if group.name == "tags":
            groups.append(fo.SidebarGroupDocument(name="review", paths=review, expanded=True))
    groups.append(fo.SidebarGroupDocument(name="scores", paths=scores, expanded=False))
    groups.append(fo.SidebarGroupDocument(name="cvactive", paths=source, expanded=False))
    return [g for g in groups if g.paths or g.name in ("tags", "labels")]


def update_review_queue(
    dataset: Any,
    *,
    label_field: str = "predictions",
    review_score: str | None = "entropy_max",
    display_conf: float = DISPLAY_CONF,
) -> Any:
    """(Re)save the view ``review-queue``, the review settings and the App's sidebar groups.

    A score field the data set does not have is logged and the queue is left unsorted.
    """
    with dataset_lock(dataset, "review"):
        dataset.reload()
        view = build_view(dataset, label_field, review_score, display_conf)
        settings = {"label_field": label_field, "score": review_score, "display_conf": float(display_conf)}
        if review_settings(dataset) != settings:
            dataset.info[REVIEW_INFO] = settings
            dataset.save()
        saved = dataset.load_saved_view(REVIEW_VIEW) if dataset.has_saved_view(REVIEW_VIEW) else None
        if saved is None or saved._serialize() != view._serialize():
            dataset.save_view(REVIEW_VIEW, view, overwrite=True)
        groups = sidebar_groups(dataset, label_field, review_score)
        if [(g.name, g.paths, g.expanded) for g in dataset.app_config.sidebar_groups or []] != [
            (g.name, g.paths, g.expanded) for g in groups
        ]:
            dataset.app_config.sidebar_groups = groups
            dataset.save()
    return view
