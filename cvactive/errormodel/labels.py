"""What each prediction of a labeled image is: correct, wrong class, poorly localised or false positive.

Pure numpy. Boxes are absolute pixel ``xyxy``. The rules (Hoiem et al.'s error taxonomy with
the COCO matching rule):

1. **correct**: taken in order of falling confidence, a prediction matches the not yet
   matched ground-truth box of its own class with the highest IoU, when that IoU is >= ``iou``
   (:func:`cvactive.matching.greedy_match`);
2. otherwise, look at the ground-truth box it overlaps most (any class, matched or not):

   * **poorly localised**: that box has the predicted class (IoU below ``iou``, or a
     duplicate of a box another prediction already found) and IoU >= ``loc_iou``;
   * **wrong class**: that box has another class and IoU >= ``loc_iou``;
   * **false positive**: IoU below ``loc_iou`` (background), or no ground truth at all.

A ground-truth box no correct prediction found is a **miss**. The errors of an image are its
non-correct predictions plus its misses (false positives plus false negatives at ``iou``).

Sub-threshold predictions (below the operating confidence, kept when the image was scored
with a low NMS confidence) are where a miss may hide: :func:`cover_misses` says which of them
lie on a missed object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cvactive.boxes import box_iou
from cvactive.errors import ConfigError
from cvactive.matching import greedy_match

CORRECT, WRONG_CLASS, POOR_LOCALISATION, FALSE_POSITIVE = 0, 1, 2, 3
#: outcome code -> name.
OUTCOMES: tuple[str, ...] = ("correct", "wrong_class", "poor_localisation", "false_positive")


@dataclass(frozen=True)
class Matching:
    """The outcome of every prediction of one image and which ground-truth boxes were missed.

    Attributes:
        outcome: ``(N,)`` int64 codes (:data:`CORRECT`, :data:`WRONG_CLASS`,
            :data:`POOR_LOCALISATION`, :data:`FALSE_POSITIVE`).
        truth: ``(N,)`` int64, the ground-truth box a prediction was judged against (the one
            it matched, or the one it overlaps most), ``-1`` for none.
        missed: ``(M,)`` bool, ground-truth boxes no correct prediction found.
    """

    outcome: np.ndarray
    truth: np.ndarray
    missed: np.ndarray

    @property
    def is_error(self) -> np.ndarray:
        """``(N,)`` bool: the prediction is not correct."""
        return np.asarray(self.outcome != CORRECT)

    @property
    def errors(self) -> int:
        """Non-correct predictions plus misses."""
        return int(self.is_error.sum() + self.missed.sum())

    @property
    def correct(self) -> int:
        return int((self.outcome == CORRECT).sum())


def check_ious(iou: float, loc_iou: float) -> None:
    """Refuse thresholds outside ``0 < loc_iou <= iou <= 1``."""
    if not 0.0 < loc_iou <= iou <= 1.0:
        raise ConfigError(f"IoU thresholds must satisfy 0 < loc_iou <= iou <= 1, got loc_iou={loc_iou}, iou={iou}")


def label_predictions(
    xyxy: np.ndarray,
    class_id: np.ndarray,
    confidence: np.ndarray,
    gt_xyxy: np.ndarray,
    gt_class: np.ndarray,
    *,
    iou: float = 0.5,
    loc_iou: float = 0.1,
) -> Matching:
    """Judge each of ``N`` predictions of one image against its ``M`` ground-truth boxes.

    Args:
        xyxy: ``(N, 4)`` predicted boxes (pixels); class_id, confidence: ``(N,)``.
        gt_xyxy: ``(M, 4)`` ground-truth boxes (pixels); gt_class: ``(M,)`` (same class ids).
        iou: IoU a correct prediction needs.
        loc_iou: IoU below which a prediction is background (a false positive).
    """
    check_ious(iou, loc_iou)
    cls = np.asarray(class_id, np.int64).reshape(-1)
    gcls = np.asarray(gt_class, np.int64).reshape(-1)
    n, m = cls.shape[0], gcls.shape[0]
    outcome = np.full(n, FALSE_POSITIVE, np.int64)
    truth = np.full(n, -1, np.int64)
    missed = np.ones(m, bool)
    if n == 0 or m == 0:
        return Matching(outcome, truth, missed)
    ious = box_iou(xyxy, gt_xyxy)
    same = cls[:, None] == gcls[None, :]
    found = greedy_match(ious, confidence, iou, allowed=same)
    hit = found >= 0
    outcome[hit], truth[hit], missed[found[hit]] = CORRECT, found[hit], False
    rest = np.flatnonzero(outcome != CORRECT)
    if rest.size:
        best = np.argmax(ious[rest], axis=1)
        overlap = ious[rest, best]
        near = overlap >= loc_iou
        truth[rest[near]] = best[near]
        outcome[rest[near]] = np.where(same[rest[near], best[near]], POOR_LOCALISATION, WRONG_CLASS)
    return Matching(outcome, truth, missed)


def cover_misses(
    xyxy: np.ndarray, confidence: np.ndarray, gt_xyxy: np.ndarray, missed: np.ndarray, *, iou: float = 0.5
) -> np.ndarray:
    """Which sub-threshold predictions lie on a missed object (any class), one per object.

    By falling confidence, each prediction takes the not yet covered missed box it overlaps
    most when that IoU is >= ``iou``.

    Args:
        xyxy: ``(K, 4)`` sub-threshold boxes; confidence: ``(K,)``.
        gt_xyxy: ``(M, 4)`` ground truth; missed: ``(M,)`` bool from :func:`label_predictions`.

    Returns:
        ``(K,)`` bool.
    """
    k = np.asarray(confidence).reshape(-1).shape[0]
    open_ = np.asarray(missed, bool)
    if k == 0 or not open_.any():
        return np.zeros(k, bool)
    return greedy_match(box_iou(xyxy, gt_xyxy), confidence, iou, free=open_) >= 0
