"""The maths of confidence calibration: temperature scaling, detection ECE, true positives (numpy/scipy).

A YOLO class score is a sigmoid ``s = sigmoid(z)``. Temperature scaling (Guo et al., 2017)
replaces it with ``sigmoid(z / T)``: ``T > 1`` softens an over-confident model, ``T < 1``
sharpens an under-confident one, and the order of the scores never changes (so the boxes,
classes and NMS are the same). ``T`` is fitted by minimising the binary cross-entropy of each
prediction's confidence against whether it is a true positive: a prediction is correct when it
matches an unmatched ground-truth box of the same class with IoU >= 0.5, taken in order of
falling confidence (the COCO rule).

The detection expected calibration error (D-ECE, Küppers et al., 2020) bins the predictions by
confidence and averages ``|precision(bin) - mean confidence(bin)|`` weighted by the bin's share
of predictions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cvactive.boxes import box_iou
from cvactive.errors import ConfigError, DatasetError
from cvactive.matching import greedy_match

_CLIP = 1e-7


def logit(scores: np.ndarray) -> np.ndarray:
    """``log(s / (1 - s))`` of scores clipped to ``[1e-7, 1 - 1e-7]``."""
    s = np.clip(np.asarray(scores, np.float64), _CLIP, 1 - _CLIP)
    return np.log(s) - np.log1p(-s)


def apply_temperature(scores: np.ndarray, temperature: float) -> np.ndarray:
    """``sigmoid(logit(s) / T)`` element-wise, same shape and dtype (float32 stays float32)."""
    if not temperature > 0:
        raise ConfigError(f"temperature must be positive, got {temperature}")
    arr = np.asarray(scores)
    out = 1.0 / (1.0 + np.exp(-logit(arr) / float(temperature)))
    return out.astype(arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.float64)


def fit_temperature(confidence: np.ndarray, correct: np.ndarray, bounds: tuple[float, float] = (0.02, 50.0)) -> float:
    """The temperature minimising the binary cross-entropy of ``confidence`` against ``correct``.

    Args:
        confidence: ``(N,)`` confidences in [0, 1].
        correct: ``(N,)`` bool, whether each prediction is a true positive.
        bounds: the search interval of ``T``.
    """
    from scipy.optimize import minimize_scalar

    z = logit(np.asarray(confidence).reshape(-1))
    y = np.asarray(correct, np.float64).reshape(-1)
    if z.size == 0:
        raise DatasetError("no predictions to fit a temperature on: lower --conf or use a larger split")
    if y.min() == y.max():
        kind = "true" if y[0] else "false"
        raise DatasetError(f"every one of the {y.size} predictions is a {kind} positive; a temperature needs both")

    def nll(log_t: float) -> float:
        q = z / np.exp(log_t)
        # log(1 + exp(-q)) for positives, log(1 + exp(q)) for negatives, computed stably.
        return float(np.mean(np.logaddexp(0.0, -q) * y + np.logaddexp(0.0, q) * (1 - y)))

    res = minimize_scalar(nll, bounds=(np.log(bounds[0]), np.log(bounds[1])), method="bounded")
    return float(np.exp(res.x))


@dataclass
class Reliability:
    """Per confidence bin: its edges, the predictions in it, their mean confidence and precision."""

    edges: np.ndarray
    count: np.ndarray
    confidence: np.ndarray
    precision: np.ndarray

    @property
    def ece(self) -> float:
        """The detection expected calibration error of these bins."""
        total = self.count.sum()
        if total == 0:
            return 0.0
        gap = np.abs(self.precision - self.confidence)
        return float(np.sum(np.where(self.count > 0, gap, 0.0) * self.count) / total)


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> Reliability:
    """Equal-width confidence bins over [0, 1] with each bin's precision (empty bins are NaN)."""
    if bins < 1:
        raise ConfigError(f"bins must be at least 1, got {bins}")
    c = np.asarray(confidence, np.float64).reshape(-1)
    y = np.asarray(correct, np.float64).reshape(-1)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(c, edges[1:-1], right=True), 0, bins - 1)
    count = np.bincount(which, minlength=bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(which, weights=c, minlength=bins) / count
        prec = np.bincount(which, weights=y, minlength=bins) / count
    return Reliability(edges, count.astype(np.int64), conf, prec)


def detection_ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """D-ECE: ``sum_b n_b / N * |precision_b - confidence_b|`` over equal-width bins."""
    return reliability(confidence, correct, bins).ece


def match_to_truth(
    xyxy: np.ndarray,
    class_id: np.ndarray,
    confidence: np.ndarray,
    gt_xyxy: np.ndarray,
    gt_class: np.ndarray,
    iou: float = 0.5,
) -> np.ndarray:
    """Which predictions of one image are true positives (COCO rule: by falling confidence, each
    ground-truth box matched at most once, same class, IoU >= ``iou``; :func:`cvactive.matching.greedy_match`);
    ``(N,)`` bool."""
    ious = box_iou(xyxy, gt_xyxy)
    same = np.asarray(class_id).reshape(-1)[:, None] == np.asarray(gt_class).reshape(-1)[None, :]
    return greedy_match(ious, confidence, iou, allowed=same) >= 0


@dataclass
class ImagePredictions:
    """One labeled image's predictions: confidences and whether each is a true positive."""

    source: str
    confidence: np.ndarray
    correct: np.ndarray
    ground_truth: int
