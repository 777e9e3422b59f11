"""What a re-push keeps of a reviewer's work on the boxes it replaces (pure; no FiftyOne).

The rule (see docs/fiftyone.md, "What a re-push keeps"):

* A re-push replaces the model's fields of a sample: its predictions, their per-box measures,
  the image scores. Fields push does not write (``ground_truth``, anything a reviewer or
  another tool added) are never touched, and sample tags are only ever added to, in the
  database (``$addToSet``), never rewritten from a copy.
* Each new box is matched one-to-one to the old boxes of the same label by IoU (maximum total
  IoU, pairs below ``min_iou`` never match); a matched new box takes the old box's label id and
  its tags (``fp``, ``wrong-class``, ``missed`` or any other), so a review follows the object when
  the model moves its box a little, and a label id the App holds stays valid.
* A *reviewed* old box (one with a label tag) that no new box matches (the model dropped it,
  moved it or changed its class) is kept, tags and all, in the ``<field>_reviewed`` field of the
  sample, so nothing a reviewer did is lost and ``cvactive pull`` still sees its tags.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: IoU at or above which a new box inherits a reviewed box's tags.
MATCH_IOU = 0.5
#: The suffix of the field that keeps reviewed boxes a re-push dropped.
REVIEWED_SUFFIX = "_reviewed"


def carry_reviews(
    reviewed: Sequence[dict[str, Any]], new: list[dict[str, Any]], *, min_iou: float = MATCH_IOU
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Move the label ids and tags of old boxes onto the new boxes that match them.

    Args:
        reviewed: the old boxes (push passes all of them; those with tags are the reviewed
            ones), as documents (``_id``, ``label``, ``bounding_box`` normalised ``[x, y, w, h]``,
            ``tags``, anything else).
        new: the new boxes as documents (``label``, ``bounding_box``, ``tags`` ...); the ones
            that match get the old ``tags`` (merged with their own) and the old ``_id``.
        min_iou: the lowest IoU of a match.

    Returns:
        ``(new, unmatched)``: the new boxes (changed in place where matched) and the old boxes
        no new box took over.
    """
    from cvactive.boxes import box_iou, fiftyone_to_xyxy
    from cvactive.matching import hungarian_match

    unmatched: list[dict[str, Any]] = []
    taken: set[int] = set()
    for label in sorted({str(r.get("label")) for r in reviewed}):
        rows = [r for r in reviewed if str(r.get("label")) == label]
        cols = [j for j, d in enumerate(new) if str(d.get("label")) == label and j not in taken]
        if not cols:
            unmatched.extend(rows)
            continue
        old_xyxy = fiftyone_to_xyxy([r["bounding_box"] for r in rows], 1.0, 1.0)  # IoU needs no image size
        iou = box_iou(old_xyxy, fiftyone_to_xyxy([new[j]["bounding_box"] for j in cols], 1.0, 1.0))
        assignment = hungarian_match(iou, min_iou)
        for row, col in zip(rows, assignment.tolist()):
            if col < 0:
                unmatched.append(row)
                continue
            det = new[cols[col]]
            taken.add(cols[col])
            det["tags"] = sorted(set(det.get("tags") or ()) | set(row.get("tags") or ()))
            if row.get("_id") is not None:
                det["_id"] = row["_id"]
    return new, unmatched


def keep_unmatched(archive: Sequence[dict[str, Any]], unmatched: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``<field>_reviewed`` boxes after a re-push: those kept before, then the newly unmatched
    ones (one per label id: a box already kept is replaced by its newer copy)."""
    fresh = {str(d.get("_id")) for d in unmatched}
    return [d for d in archive if str(d.get("_id")) not in fresh] + list(unmatched)
