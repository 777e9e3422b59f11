"""How far class distributions disagree, the maths the consistency measures share (pure numpy).

Class-score rows are YOLO's independent sigmoids ``(N, C)``; the "which class" distribution of a
row is :func:`cvactive.measures.normalize_scores`. The boxes of two views are paired first by
:func:`cvactive.matching.hungarian_match`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cvactive.errors import ConfigError
from cvactive.measures import normalize_scores

#: Differences smaller than this are float rounding, not disagreement: they score exactly 0.
ROUNDING_FLOOR = 1e-12


def entropy_bits(p: np.ndarray) -> np.ndarray:
    """Shannon entropy in bits of each distribution along the last axis."""
    p = np.asarray(p, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.sum(np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0), axis=-1)


def js_divergence(scores_a: np.ndarray, scores_b: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence in bits (in [0, 1]) between matching rows' class distributions.

    Args:
        scores_a, scores_b: ``(N, C)`` class-score rows; each is normalised to a distribution.

    Returns:
        ``(N,)`` float64, 0 for identical distributions and 1 for disjoint ones.
    """
    p, q = normalize_scores(scores_a), normalize_scores(scores_b)
    js = entropy_bits((p + q) / 2) - (entropy_bits(p) + entropy_bits(q)) / 2
    return floor_rounding(np.clip(js, 0.0, 1.0))


def mutual_information(scores: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Mutual information (BALD; the generalised Jensen-Shannon divergence) over several draws.

    ``H(mean_t p_t) - mean_t H(p_t)`` of each box's normalised class distributions across the
    ``T`` draws (dropout passes or committee members), in bits over ``log2(C)``, so in [0, 1]
    like :func:`cvactive.measures.entropy`.

    Args:
        scores: ``(T, N, C)`` class-score rows of the N boxes in each draw.
        mask: ``(T, N)`` bool, which draws see each box (all of them by default). A box seen
            by fewer than two draws scores 0.

    Returns:
        ``(N,)`` float64.
    """
    s = np.asarray(scores, np.float64)
    if s.ndim != 3:
        raise ValueError(f"scores must be (T, N, C), got shape {s.shape}")
    t, n, c = s.shape
    if n == 0 or c < 2:
        return np.zeros(n)
    p = normalize_scores(s.reshape(-1, c)).reshape(t, n, c)
    w = np.ones((t, n)) if mask is None else np.asarray(mask, np.float64).reshape(t, n)
    seen = w.sum(axis=0)
    safe = np.maximum(seen, 1.0)
    mean_p = (w[..., None] * p).sum(axis=0) / safe[:, None]
    mean_h = (w * entropy_bits(p)).sum(axis=0) / safe
    mi = (entropy_bits(mean_p) - mean_h) / np.log2(c)
    return floor_rounding(np.where(seen >= 2, np.clip(mi, 0.0, 1.0), 0.0))


def floor_rounding(values: np.ndarray) -> np.ndarray:
    """Values below :data:`ROUNDING_FLOOR` (float rounding of identical inputs) become exactly 0."""
    v = np.asarray(values, np.float64)
    return np.where(np.abs(v) < ROUNDING_FLOOR, 0.0, v)


def reduce_views(values: np.ndarray, how: str, axis: int = 0) -> np.ndarray:
    """Reduce per-view (or per-member) values: ``max`` (worst case) or ``mean``."""
    if how not in VIEW_REDUCTIONS:
        raise ConfigError(f"unknown reduction {how!r}; valid reductions: {', '.join(VIEW_REDUCTIONS)}")
    v = np.asarray(values, np.float64)
    return v.max(axis=axis) if how == "max" else v.mean(axis=axis)


VIEW_REDUCTIONS: Sequence[str] = ("max", "mean")
