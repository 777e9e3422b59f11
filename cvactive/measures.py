"""Uncertainty measures (per box) and aggregations (per image): pure numpy functions.

YOLOv8/11 class scores are **independent sigmoids**: each of the C numbers in a box's row
says "this box is class c" on its own, and the row does not sum to one. cvactive reads two
different questions out of such a row:

* **Which class?** The row normalised to sum to one, ``p = s / sum(s)``, is the model's
  relative belief over classes. ``least_confidence``, ``margin``, ``ratio`` and ``entropy``
  are Munro's (*Human-in-the-Loop Machine Learning*, ch. 3) definitions applied to ``p``,
  each normalised to [0, 1] with 1 the most uncertain:

  - least confidence: ``(1 - p_max) * C / (C - 1)``
  - margin: ``1 - (p_1 - p_2)`` with ``p_1 >= p_2`` the two largest
  - ratio: ``p_2 / p_1``
  - entropy: ``-sum(p * log2 p) / log2(C)``

  A row of zeros (no class fires at all) normalises to the uniform distribution.

* **Is there an object?** The top score ``s_max`` itself is a Bernoulli probability, so its
  binary entropy ``H(s_max) = -s log2 s - (1 - s) log2(1 - s)`` (1 at 0.5, 0 at 0 or 1) is
  ``binary_entropy``; ``threshold_closeness`` is ``1 - |s - t| / max(t, 1 - t)``, 1 exactly at
  the decision threshold ``t`` and 0 at the far end (Roboflow's "close to threshold" rule as
  a continuous score). Both also work from post-NMS confidences alone.

Aggregation of box scores into one image score is a parameter (:func:`aggregate`), and so
is the value of an image with no detections.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal, get_args

import numpy as np

from cvactive.errors import ConfigError, MissingClassScoresError

MeasureName = Literal["least_confidence", "margin", "ratio", "entropy", "binary_entropy", "threshold_closeness"]
AggregationName = Literal["max", "mean", "sum", "topk", "count"]

#: The measures that need the full class-score row (refuse a record without it).
VECTOR_MEASURES: tuple[str, ...] = ("least_confidence", "margin", "ratio", "entropy")
#: The measures that only need each box's top score (the post-NMS confidence).
SCALAR_MEASURES: tuple[str, ...] = ("binary_entropy", "threshold_closeness")
MEASURES: tuple[str, ...] = tuple(get_args(MeasureName))
AGGREGATIONS: tuple[str, ...] = tuple(get_args(AggregationName))

# The names of the measures that need more model passes than the one that made a record. They
# are computed in :mod:`cvactive.consistency`; their names live here, beside the others, so that
# :mod:`cvactive.detect.scorer` can check and aggregate them without importing that package.
#: Test-time augmentation (:mod:`cvactive.consistency.tta`).
TTA_MEASURES: tuple[str, ...] = ("tta_localization", "tta_consistency")
#: Query by committee (:mod:`cvactive.consistency.committee`).
COMMITTEE_MEASURES: tuple[str, ...] = ("committee_disagreement",)
#: MC dropout (:mod:`cvactive.consistency.mc_dropout`).
MC_MEASURES: tuple[str, ...] = ("mc_variance", "mc_bald")
#: Every measure that needs more model passes than the one that made the record.
CONSISTENCY_MEASURES: tuple[str, ...] = TTA_MEASURES + COMMITTEE_MEASURES + MC_MEASURES

_EPS = 1e-12


def _rows(class_scores: np.ndarray) -> np.ndarray:
    s = np.asarray(class_scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"class_scores must be (N, C), got shape {s.shape}")
    return s


def normalize_scores(class_scores: np.ndarray) -> np.ndarray:
    """Normalise each row of independent sigmoid scores to a distribution over classes.

    Args:
        class_scores: ``(N, C)`` scores in [0, 1].

    Returns:
        ``(N, C)`` float64 rows that sum to one; an all-zero row becomes uniform.
    """
    s = np.clip(_rows(class_scores), 0.0, None)
    total = s.sum(axis=1, keepdims=True)
    c = max(s.shape[1], 1)
    return np.where(total > _EPS, s / np.maximum(total, _EPS), 1.0 / c)


def _top2(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if p.shape[1] < 2:
        top1 = p[:, 0] if p.shape[1] else np.zeros(p.shape[0])
        return top1, np.zeros(p.shape[0])
    part = np.partition(p, p.shape[1] - 2, axis=1)
    return part[:, -1], part[:, -2]


def least_confidence(class_scores: np.ndarray) -> np.ndarray:
    """Normalised least confidence of each row, ``(1 - p_max) * C / (C - 1)``; ``(N,)`` in [0, 1]."""
    return _least_confidence(normalize_scores(class_scores))


def _least_confidence(p: np.ndarray) -> np.ndarray:
    c = p.shape[1]
    if c < 2:
        return np.zeros(p.shape[0])
    return np.clip((1.0 - p.max(axis=1)) * c / (c - 1), 0.0, 1.0)


def margin(class_scores: np.ndarray) -> np.ndarray:
    """Margin of confidence, ``1 - (p_1 - p_2)``; ``(N,)`` in [0, 1]."""
    return _margin(normalize_scores(class_scores))


def _margin(p: np.ndarray) -> np.ndarray:
    p1, p2 = _top2(p)
    return np.clip(1.0 - (p1 - p2), 0.0, 1.0)


def ratio(class_scores: np.ndarray) -> np.ndarray:
    """Ratio of confidence, ``p_2 / p_1``; ``(N,)`` in [0, 1]."""
    return _ratio(normalize_scores(class_scores))


def _ratio(p: np.ndarray) -> np.ndarray:
    p1, p2 = _top2(p)
    return np.clip(p2 / np.maximum(p1, _EPS), 0.0, 1.0)


def entropy(class_scores: np.ndarray) -> np.ndarray:
    """Entropy of the normalised row in bits over ``log2(C)``; ``(N,)`` in [0, 1]."""
    return _entropy(normalize_scores(class_scores))


def _entropy(p: np.ndarray) -> np.ndarray:
    c = p.shape[1]
    if c < 2:
        return np.zeros(p.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.sum(np.where(p > 0, p * np.log2(np.maximum(p, _EPS)), 0.0), axis=1)
    return np.clip(h / np.log2(c), 0.0, 1.0)


def binary_entropy(confidence: np.ndarray) -> np.ndarray:
    """Binary entropy ``H(s)`` in bits of each top score ``s``; ``(N,)`` in [0, 1]."""
    s = np.clip(np.asarray(confidence, dtype=np.float64).reshape(-1), _EPS, 1 - _EPS)
    h = -(s * np.log2(s) + (1 - s) * np.log2(1 - s))
    return np.clip(h, 0.0, 1.0)


def threshold_closeness(confidence: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """``1 - |s - t| / max(t, 1 - t)``: 1 at the decision threshold ``t``, 0 at the far end."""
    if not 0.0 < threshold < 1.0:
        raise ConfigError(f"threshold must lie in (0, 1), got {threshold}")
    s = np.asarray(confidence, dtype=np.float64).reshape(-1)
    return np.clip(1.0 - np.abs(s - threshold) / max(threshold, 1.0 - threshold), 0.0, 1.0)


def box_measures(
    class_scores: np.ndarray | None,
    confidence: np.ndarray,
    measures: Sequence[str] = MEASURES,
    threshold: float = 0.5,
) -> dict[str, np.ndarray]:
    """Compute the named per-box measures.

    Args:
        class_scores: ``(N, C)`` full score rows, or ``None`` when only confidences exist;
            then asking for a vector measure raises
            :class:`~cvactive.errors.MissingClassScoresError`.
        confidence: ``(N,)`` top score of each box.
        measures: names from :data:`MEASURES`.
        threshold: the decision threshold of ``threshold_closeness``.

    Returns:
        measure name -> ``(N,)`` float64 array.
    """
    check_names(measures, MEASURES, "measure")
    funcs: dict[str, Callable[[np.ndarray], np.ndarray]] = {  # on the normalised rows, made once
        "least_confidence": _least_confidence,
        "margin": _margin,
        "ratio": _ratio,
        "entropy": _entropy,
    }
    out: dict[str, np.ndarray] = {}
    normalized: np.ndarray | None = None
    for name in measures:
        if name in VECTOR_MEASURES:
            if class_scores is None:
                raise MissingClassScoresError(
                    f"measure {name!r} needs full per-class score rows, but only confidences "
                    f"are available; use {list(SCALAR_MEASURES)} or keep class scores"
                )
            if normalized is None:
                normalized = normalize_scores(class_scores)
            out[name] = funcs[name](normalized)
        elif name == "binary_entropy":
            out[name] = binary_entropy(confidence)
        else:
            out[name] = threshold_closeness(confidence, threshold)
    return out


def check_names(names: Sequence[str], valid: Sequence[str], what: str) -> None:
    """Raise :class:`ConfigError` naming the valid choices if any name is unknown."""
    for name in names:
        if name not in valid:
            raise ConfigError(f"unknown {what} {name!r}; valid {what}s: {', '.join(valid)}")


def aggregate(
    box_scores: np.ndarray,
    how: str = "max",
    *,
    if_empty: float = 0.0,
    k: int = 3,
    band: tuple[float, float] = (0.5, 1.0),
) -> float:
    """Reduce the per-box scores of one image to one image score.

    Args:
        box_scores: ``(N,)`` per-box scores.
        how: ``max``, ``mean``, ``sum``, ``topk`` (mean of the ``k`` largest) or ``count``
            (how many boxes score inside the closed ``band``).
        if_empty: the score of an image with no boxes. Confidence-based scores never see
            missed objects, so this is a policy choice: 0 ranks empty frames last, 1 ranks
            them first.
        k: boxes averaged by ``topk``.
        band: ``(low, high)`` for ``count``.
    """
    check_names([how], AGGREGATIONS, "aggregation")
    return _aggregate(np.asarray(box_scores, dtype=np.float64).reshape(-1), how, if_empty, k, band)


def _aggregate(s: np.ndarray, how: str, if_empty: float, k: int, band: tuple[float, float]) -> float:
    """:func:`aggregate` on a checked name and a flat float64 array."""
    if s.size == 0:
        return float(if_empty)
    if how == "max":
        return float(s.max())
    if how == "mean":
        return float(s.mean())
    if how == "sum":
        return float(s.sum())
    if how == "topk":
        if k < 1:
            raise ConfigError(f"topk needs k >= 1, got {k}")
        kk = min(k, s.size)
        return float(np.partition(s, s.size - kk)[-kk:].mean())
    low, high = band
    return float(np.count_nonzero((s >= low) & (s <= high)))


def image_scores(
    box_scores: Mapping[str, np.ndarray],
    aggregations: Sequence[str] = AGGREGATIONS,
    *,
    if_empty: float = 0.0,
    k: int = 3,
    band: tuple[float, float] = (0.5, 1.0),
) -> dict[str, float]:
    """Every ``<measure>_<aggregation>`` image score of one image's per-box measures."""
    check_names(aggregations, AGGREGATIONS, "aggregation")
    flat = {measure: np.asarray(values, dtype=np.float64).reshape(-1) for measure, values in box_scores.items()}
    return {
        f"{measure}_{how}": _aggregate(values, how, if_empty, k, band)
        for measure, values in flat.items()
        for how in aggregations
    }
