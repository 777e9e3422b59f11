"""How good an error predictor is: ranking and calibration of box probabilities, image rank correlations.

Pure numpy/scipy; checked against scikit-learn's metrics in the tests.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def _binary(y: np.ndarray) -> np.ndarray:
    return np.asarray(y, bool).reshape(-1)


def auroc(y: np.ndarray, p: np.ndarray) -> float | None:
    """Area under the ROC curve of scores ``p`` for labels ``y`` (ties count half); ``None`` with one class."""
    yb = _binary(y)
    npos, nneg = int(yb.sum()), int((~yb).sum())
    if npos == 0 or nneg == 0:
        return None
    from scipy.stats import rankdata

    ranks = rankdata(np.asarray(p, np.float64).reshape(-1))
    return float((ranks[yb].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def average_precision(y: np.ndarray, p: np.ndarray) -> float | None:
    """Average precision (area under the step precision-recall curve, tied scores as one step)."""
    yb = _binary(y)
    if not yb.any():
        return None
    s = np.asarray(p, np.float64).reshape(-1)
    order = np.argsort(-s, kind="stable")
    s, yb = s[order], yb[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]  # end of each block of tied scores
    tp = np.cumsum(yb)[last]
    precision = tp / (last + 1)
    recall_gain = np.diff(np.r_[0, tp]) / yb.sum()
    return float((precision * recall_gain).sum())


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared difference between probabilities and outcomes."""
    return float(np.mean((np.asarray(p, np.float64).reshape(-1) - _binary(y)) ** 2))


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """``sum_b n_b / N |mean(y)_b - mean(p)_b|`` over equal-width probability bins."""
    prob = np.asarray(p, np.float64).reshape(-1)
    yb = _binary(y).astype(np.float64)
    if prob.size == 0:
        return 0.0
    which = np.clip(np.digitize(prob, np.linspace(0, 1, bins + 1)[1:-1], right=True), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    gap = np.abs(np.bincount(which, yb, bins) - np.bincount(which, prob, bins))
    return float(gap.sum() / prob.size) if count.sum() else 0.0


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman rank correlation (average ranks for ties); ``None`` when either side is constant."""
    x, y = np.asarray(a, np.float64).reshape(-1), np.asarray(b, np.float64).reshape(-1)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    from scipy.stats import rankdata

    return float(np.corrcoef(rankdata(x), rankdata(y))[0, 1])


def box_quality(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict[str, float | int | None]:
    """AUROC, average precision, Brier score, ECE and the base rate of binary outcomes ``y``."""
    yb = _binary(y)
    return {
        "boxes": int(yb.size),
        "positives": int(yb.sum()),
        "base_rate": round(float(yb.mean()), 4) if yb.size else None,
        "auroc": _r(auroc(yb, p)),
        "average_precision": _r(average_precision(yb, p)),
        "brier": _r(brier(yb, p)) if yb.size else None,
        "ece": _r(expected_calibration_error(yb, p, bins)),
    }


def rank_table(
    targets: Mapping[str, np.ndarray], predictors: Mapping[str, np.ndarray]
) -> dict[str, dict[str, float | None]]:
    """Spearman correlation of every predictor with every target: ``{predictor: {target: rho}}``."""
    return {
        name: {t: _r(spearman(values, target)) for t, target in targets.items()} for name, values in predictors.items()
    }


def _r(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 4)
