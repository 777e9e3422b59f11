"""A reviewer's verdicts, as the FiftyOne App's cvactive-review operators apply them.

The App plugin (``cvactive/resources/fiftyone-plugins/cvactive-review``) is a thin wrapper: each
of its buttons calls one function here, on the data set the App shows. A sample verdict
(``approved``, ``rejected``) replaces the other one; a label verdict (``fp``, ``wrong-class``)
replaces the other one on the same box; ``missed`` goes on the selected boxes, or on the sample
when no box is selected. :func:`next_in_queue` is the next ``to-review`` sample, in the review
queue's order, that has no sample verdict yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cvactive.errors import StoreError
from cvactive.store.tags import APPROVED, FP, MISSED, REJECTED, REVIEW_VIEW, TO_REVIEW, WRONG_CLASS

#: A sample verdict -> the verdict it replaces.
SAMPLE_VERDICTS = {APPROVED: REJECTED, REJECTED: APPROVED}
#: A label verdict -> the verdicts it replaces on the same box.
LABEL_VERDICTS = {FP: (WRONG_CLASS,), WRONG_CLASS: (FP,), MISSED: ()}

#: What a reviewer reads in the App (the plugin's "How to review" and the data set's description).
INSTRUCTIONS = f"""\
**Review the queue** (the saved view `{REVIEW_VIEW}`, highest score first). Open a sample, look at its boxes:

- **Approve** (tag `{APPROVED}` on the sample): the boxes shown are right, less those you tag below.
  They become ground truth.
- **Reject** (tag `{REJECTED}`): the predictions are useless here; the image goes to full annotation.
- **fp** (click a box, then the button; tag `{FP}` on the box): not an object. Left out of the ground truth.
- **wrong-class** (tag `{WRONG_CLASS}` on the box): an object, but not of this class.
  The sample is queued for correction.
- **missed** (tag `{MISSED}`, on the selected boxes or on the sample): an object has no box. Queued for correction.
- **Next** opens the next sample of the queue that has no verdict yet; Approve and Reject move on by themselves.

A box's colour shows its tag: fp red, wrong-class orange, missed magenta. When the queue is done,
run `cvactive pull`.
"""


def _check(tag: str, allowed: Mapping[str, Any]) -> None:
    if tag not in allowed:
        raise StoreError(f"unknown verdict {tag!r}; one of: {', '.join(allowed)}")


def tag_samples(dataset: Any, sample_ids: Sequence[str], tag: str) -> int:
    """Put the sample verdict ``tag`` on ``sample_ids`` (removing the opposite one); return how many."""
    _check(tag, SAMPLE_VERDICTS)
    ids = list(dict.fromkeys(sample_ids))
    if not ids:
        return 0
    view = dataset.select(ids)
    view.untag_samples(SAMPLE_VERDICTS[tag])
    view.tag_samples(tag)
    return len(view)


def tag_labels(dataset: Any, labels: Iterable[Mapping[str, Any]], tag: str) -> int:
    """Put the label verdict ``tag`` on the App's selected ``labels`` (dicts with ``label_id``,
    ``sample_id``, ``field``); the verdicts it replaces come off those boxes. Return how many."""
    _check(tag, LABEL_VERDICTS)
    chosen = [dict(lab) for lab in labels if lab.get("label_id")]
    if not chosen:
        return 0
    view = dataset.select_labels(labels=chosen)
    for other in LABEL_VERDICTS[tag]:
        view.untag_labels(other)
    view.tag_labels(tag)
    return len(chosen)


def queue_order(dataset: Any) -> list[str]:
    """The sample ids of the review queue in its order (the saved view, else ``to-review`` samples)."""
    if dataset.has_saved_view(REVIEW_VIEW):
        view = dataset.load_saved_view(REVIEW_VIEW)
    else:
        view = dataset.match_tags(TO_REVIEW)
    return [str(i) for i in view.values("id")]


def next_in_queue(dataset: Any, current: str | None = None) -> str | None:
    """The id of the next queued sample after ``current`` that has no sample verdict (wrapping
    round to the start of the queue), or ``None`` when every queued sample has one."""
    order = queue_order(dataset)
    if not order:
        return None
    done = {str(i) for i in dataset.select(order).match_tags(list(SAMPLE_VERDICTS)).values("id")}
    start = order.index(current) + 1 if current in order else 0
    for sid in order[start:] + order[:start]:
        if sid not in done and sid != current:
            return sid
    return None
