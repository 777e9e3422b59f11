"""Matching one set of boxes to another, given their IoU matrix (pure numpy; scipy for the optimum).

Two rules, one home each (the IoU itself is :func:`cvactive.boxes.box_iou`):

* :func:`greedy_match`, the COCO rule: predictions taken in order of falling confidence, each
  takes the not yet taken reference box it overlaps most. Calibration's true positives
  (:func:`cvactive.consistency.temperature.match_to_truth`) and the error model's outcomes and
  covered misses (:mod:`cvactive.errormodel.labels`) are this rule with a class or an
  availability mask.
* :func:`hungarian_match`: the one-to-one assignment of maximum total IoU. Test-time
  augmentation and committee views (:mod:`cvactive.consistency`), the annotation cost model
  (:mod:`cvactive.cost`) and a re-push carrying a reviewer's tags (:mod:`cvactive.store.merge`)
  use it: there no box has a confidence that should go first.

Both return, for each row, the matched column or ``-1``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cvactive.errors import ConfigError

__all__ = ["greedy_match", "hungarian_match"]


def greedy_match(
    iou: npt.ArrayLike,
    confidence: npt.ArrayLike,
    min_iou: float,
    *,
    allowed: npt.ArrayLike | None = None,
    free: npt.ArrayLike | None = None,
) -> np.ndarray:
    """Greedy matching by falling confidence (the COCO rule).

    Rows are taken in order of falling ``confidence`` (a stable sort: equal confidences keep
    their order). Each takes, among the columns still free and allowed for it, the one of
    highest IoU (the first of equal ones) when that IoU is >= ``min_iou``; the column is then
    no longer free.

    Args:
        iou: ``(N, M)`` IoU of the rows (predictions) against the columns (reference boxes).
        confidence: ``(N,)`` the order in which rows choose.
        min_iou: the lowest IoU of a match.
        allowed: ``(N, M)`` bool, which columns each row may take (e.g. same class); all by default.
        free: ``(M,)`` bool, the columns free at the start (e.g. missed objects); all by default.

    Returns:
        ``(N,)`` int64: the column each row took, or ``-1``.
    """
    ious = np.asarray(iou, np.float64)
    n, m = ious.shape
    out = np.full(n, -1, np.int64)
    if n == 0 or m == 0:
        return out
    open_ = np.ones(m, bool) if free is None else np.asarray(free, bool).reshape(m).copy()
    mask = None if allowed is None else np.asarray(allowed, bool).reshape(n, m)
    for i in np.argsort(-np.asarray(confidence, np.float64).reshape(n), kind="stable"):
        ok = open_ if mask is None else open_ & mask[i]
        cand = np.where(ok, ious[i], -1.0)
        j = int(np.argmax(cand))
        if cand[j] >= min_iou:
            out[i] = j
            open_[j] = False
    return out


def hungarian_match(iou: npt.ArrayLike, min_iou: float = 0.3) -> np.ndarray:
    """The one-to-one assignment that maximises the total IoU (Hungarian, scipy).

    Args:
        iou: ``(N, M)`` IoU matrix of reference boxes (rows) against candidate boxes.
        min_iou: pairs below this IoU are never matched.

    Returns:
        ``(N,)`` int64: the matched column of each row, or ``-1`` for an unmatched row.
    """
    from scipy.optimize import linear_sum_assignment

    if not 0.0 <= min_iou <= 1.0:
        raise ConfigError(f"min_iou must lie in [0, 1], got {min_iou}")
    ious = np.asarray(iou, np.float64)
    out = np.full(ious.shape[0], -1, np.int64)
    if ious.size == 0:
        return out
    gain = np.where(ious >= min_iou, ious, 0.0)
    rows, cols = linear_sum_assignment(gain, maximize=True)
    ok = gain[rows, cols] > 0
    out[rows[ok]] = cols[ok]
    return out
