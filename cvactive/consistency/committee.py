"""Query by committee: ``committee_disagreement`` across several checkpoints.

The first member's record is the reference (its boxes are the ones written out). Every other
member's boxes are matched one-to-one to the reference boxes by IoU (Hungarian, class-agnostic).
Three disagreements per reference box, each in [0, 1]:

* **class**: mutual information (generalised Jensen-Shannon divergence) of the normalised class
  distributions of the members that see the box, in bits over ``log2(C)``;
* **position**: ``1 - mean IoU`` of the other members' matched boxes with the reference box;
* **presence**: the fraction of the other members that do not see the box at all.

``committee_disagreement`` combines them as a noisy-or, ``1 - (1 - class)(1 - position)(1 -
presence)``: 0 exactly when every member sees the same box with the same class distribution
(a committee of identical checkpoints), and 1 as soon as one part is 1. Boxes that only
members other than the first see are not in the record; :func:`committee_box_scores` counts
them (``missed``) so a caller can report them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from cvactive.boxes import box_iou
from cvactive.consistency.divergence import floor_rounding, mutual_information
from cvactive.errors import ConfigError
from cvactive.matching import hungarian_match
from cvactive.record import ImageRecord


@dataclass
class CommitteeScores:
    """The per-box parts of committee disagreement for the reference record's N boxes.

    Attributes:
        disagreement: ``(N,)`` the noisy-or of the three parts.
        class_spread: ``(N,)`` mutual information of the members' class distributions.
        position_spread: ``(N,)`` ``1 - mean IoU`` with the other members' matched boxes.
        presence: ``(N,)`` fraction of the other members that miss the box.
        missed: per other member, how many of its boxes match no reference box.
    """

    disagreement: np.ndarray
    class_spread: np.ndarray
    position_spread: np.ndarray
    presence: np.ndarray
    missed: list[int] = field(default_factory=list)


def committee_box_scores(members: Sequence[ImageRecord], *, match_iou: float = 0.3) -> CommitteeScores:
    """Disagreement of a committee on one image; ``members[0]`` is the reference record.

    Args:
        members: one record per member for the same image (at least two), all with class
            scores over the same classes.
        match_iou: the least IoU for two members' boxes to be the same object.
    """
    if len(members) < 2:
        raise ConfigError(f"a committee needs at least two members, got {len(members)}")
    ref = members[0]
    n = len(ref)
    rows = [m.require_class_scores("committee_disagreement") for m in members]
    widths = {r.shape[1] for r, m in zip(rows, members) if len(m)}
    if len(widths) > 1:
        raise ConfigError(f"committee members disagree on the number of classes: {sorted(widths)}")
    c = rows[0].shape[1] if n else (widths.pop() if widths else 0)
    others = len(members) - 1
    stacked = np.zeros((len(members), n, max(c, 1)))
    seen = np.zeros((len(members), n), bool)
    ious = np.zeros((others, n))
    missed: list[int] = []
    if n:
        stacked[0, :, :c] = rows[0]
        seen[0] = True
    for k, (member, member_rows) in enumerate(zip(members[1:], rows[1:]), start=1):
        if n == 0 or len(member) == 0:
            missed.append(len(member))
            continue
        iou = box_iou(ref.xyxy, member.xyxy)
        match = hungarian_match(iou, match_iou)
        hit = match >= 0
        stacked[k, hit, :c] = member_rows[match[hit]]
        seen[k, hit] = True
        ious[k - 1, hit] = iou[hit, match[hit]]
        missed.append(int(len(member) - hit.sum()))
    if n == 0:
        empty = np.zeros(0)
        return CommitteeScores(empty, empty, empty, empty, missed)
    class_spread = mutual_information(stacked[..., :c] if c else stacked, seen)
    seen_others = seen[1:].sum(axis=0)
    presence = 1.0 - seen_others / others
    mean_iou = np.where(seen_others > 0, ious.sum(axis=0) / np.maximum(seen_others, 1), 1.0)
    position = floor_rounding(np.clip(1.0 - mean_iou, 0.0, 1.0))
    disagreement = 1.0 - (1.0 - class_spread) * (1.0 - position) * (1.0 - presence)
    return CommitteeScores(floor_rounding(disagreement), class_spread, position, presence, missed)
