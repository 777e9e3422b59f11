"""The review queue a person works through: the saved view, the boxes it shows, the App's sidebar.

The saved view ``review-queue`` holds the samples tagged ``to-review`` (those selected or
harvested for review), sorted by a score, descending, and shows only predictions at or above a
display confidence; the low-confidence boxes stay in the field (the data set's full view shows
them). The settings are kept in the data set's ``info["cvactive_review"]`` so that
``cvactive pull`` turns into ground truth exactly the boxes the reviewer saw. The App's sidebar
groups cvactive's fields: a "review" group (the sort score, the selecting strategy and harvest
rules, rank, round) after the tags, the other image scores collapsed, the source fields collapsed.

What the App tells a reviewer: the data set and the saved view carry a description naming the
verdict tags; the colour scheme colours a box by its label tag (``fp`` red, ``wrong-class``
orange, ``missed`` magenta; untagged boxes in other colours); the internal ``cva_write`` field
is left out of the saved view and sits in the collapsed "cvactive" group. The buttons that apply
the verdicts are the App plugin in ``cvactive/resources/fiftyone-plugins/cvactive-review``
(:mod:`cvactive.store.verdicts`).
"""

from __future__ import annotations

import logging
from typing import Any

from cvactive.store._lock import dataset_lock
from cvactive.store.fields import EMBEDDING_FIELD, REVIEW_FIELDS, SOURCE_FIELDS, SYNTHETIC_FIELDS
from cvactive.store.tags import APPROVED, FP, MISSED, REJECTED, REVIEW_VIEW, TO_REVIEW, WRONG_CLASS

log = logging.getLogger(__name__)

#: Where the review settings live in ``dataset.info``.
REVIEW_INFO = "cvactive_review"
#: Predictions below this confidence are hidden in the review queue by default.
DISPLAY_CONF = 0.25
#: Fields of cvactive's own bookkeeping, never shown to a reviewer (``cvactive.store.write.WRITE_FIELD``).
INTERNAL_FIELDS = ("cva_write",)
#: A label tag -> the colour of its boxes in the App.
TAG_COLORS = {FP: "#ff1f1f", WRONG_CLASS: "#ff9900", MISSED: "#ff00ff"}
#: The App's colour pool: untagged boxes (and the sidebar's fields) take these, never a verdict's colour.
UNTAGGED_POOL = ("#00e5ff", "#76ff03", "#2979ff", "#ffee58", "#1de9b6")
#: The saved view's description (the App shows it in the saved-view menu).
VIEW_DESCRIPTION = (
    f"cvactive's review queue, highest score first. Open a sample: tag it {APPROVED} (its boxes are right, "
    f"less those tagged {FP} / {WRONG_CLASS}) or {REJECTED} (annotate from scratch); tag a box {FP} (not an object), "
    f"{WRONG_CLASS} (wrong class) or {MISSED} (an object has no box). The Approve / Reject / fp / wrong-class / "
    "missed / Next buttons above the sample do it in one click; then run `cvactive pull`."
)
#: The data set's description.
DATASET_DESCRIPTION = (
    f"Pushed by cvactive. Review the saved view '{REVIEW_VIEW}' (samples tagged {TO_REVIEW}): sample tags "
    f"{APPROVED} / {REJECTED}, box tags {FP} / {WRONG_CLASS} / {MISSED}; 'How to review' above the grid "
    "explains each. `cvactive pull` reads the verdicts back."
)


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
    hidden = [f for f in INTERNAL_FIELDS if dataset.has_sample_field(f)]
    if hidden:
        view = view.exclude_fields(hidden)
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
    source = [p for p in [*SOURCE_FIELDS, *SYNTHETIC_FIELDS, EMBEDDING_FIELD, *INTERNAL_FIELDS] if p in schema]
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


def color_scheme(label_field: str) -> Any:
    """Boxes of ``label_field`` coloured by their label tag (:data:`TAG_COLORS`), so a verdict shows on the box.

    An untagged box takes a colour of :data:`UNTAGGED_POOL` (none of them a verdict's colour); the
    tags have the same colours in the sidebar's label-tag filter.
    """
    import fiftyone as fo

    values = [{"value": tag, "color": color} for tag, color in TAG_COLORS.items()]
    return fo.ColorScheme(
        color_by="value",
        color_pool=list(UNTAGGED_POOL),
        fields=[{"path": label_field, "colorByAttribute": "tags", "valueColors": values}],
        label_tags={"valueColors": values},
    )


def _describe(dataset: Any, label_field: str) -> bool:
    """Set the data set's description and colour scheme; return whether anything changed."""
    changed = False
    if dataset.description != DATASET_DESCRIPTION:
        dataset.description = DATASET_DESCRIPTION
        changed = True
    scheme = color_scheme(label_field)
    current = dataset.app_config.color_scheme
    if current is None or current.to_dict() != scheme.to_dict():
        dataset.app_config.color_scheme = scheme
        changed = True
    return changed


def update_review_queue(
    dataset: Any,
    *,
    label_field: str = "predictions",
    review_score: str | None = "entropy_max",
    display_conf: float = DISPLAY_CONF,
) -> Any:
    """(Re)save the view ``review-queue``, the review settings, the App's sidebar groups, the
    descriptions and the colour scheme.

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
        if (
            saved is None
            or saved._serialize() != view._serialize()
            or dataset.get_saved_view_info(REVIEW_VIEW).get("description") != VIEW_DESCRIPTION
        ):
            dataset.save_view(REVIEW_VIEW, view, description=VIEW_DESCRIPTION, overwrite=True)
        if _describe(dataset, label_field):
            dataset.save()
        groups = sidebar_groups(dataset, label_field, review_score)
        if [(g.name, g.paths, g.expanded) for g in dataset.app_config.sidebar_groups or []] != [
            (g.name, g.paths, g.expanded) for g in groups
        ]:
            dataset.app_config.sidebar_groups = groups
            dataset.save()
    return view
