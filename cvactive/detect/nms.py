"""Ultralytics' NMS and box scaling for one image, in NumPy, to the bit.

The OpenVINO engine hands its workers one image's raw output as a NumPy array (the candidate
columns, :meth:`cvactive.detect.model.Detector.candidates`). Going through torch for NMS costs a
few dozen small tensor operations per image, about as much CPU as the rest of a worker's job;
on a machine whose cores the engine already fills, that is throughput lost. :func:`nms_image`
does what ``ultralytics.utils.nms.non_max_suppression`` does in the case cvactive uses (one label
per box, class-aware, no class filter, axis-aligned boxes) with ``torchvision.ops.nms`` inside it,
and :func:`scale_boxes` what ``ultralytics.utils.ops.scale_boxes`` does, with the same float32
arithmetic in the same order, so the records are equal to the bit (tests compare both paths on
real models and on synthetic outputs with ties and near-threshold overlaps):

* candidates: anchors whose best class score is above ``conf`` (compared in float32), in anchor
  order; centre-size boxes to corners as ``xy -/+ wh / 2``;
* class-aware NMS: each box shifted by ``class * 7680`` pixels, boxes taken in descending score
  order (ties in anchor order: torchvision sorts stably), a box dropped when its IoU with a kept
  one, computed in float32 as ``inter / (area_kept + area - inter)``, is above ``iou`` (compared
  in double, as torchvision does);
* at most ``max_det`` boxes.

:func:`nms_image` returns ``None`` where it would not be cheaper (more candidates than
:data:`MATRIX_LIMIT`, whose pairwise IoU matrix would be large): the caller then uses torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from cvactive._ultralytics import private


class DetectorLike(Protocol):
    """What the functions here read of a :class:`cvactive.detect.model.Detector`."""

    @property
    def names(self) -> Mapping[int, str]: ...
    @property
    def conf(self) -> float: ...
    @property
    def iou(self) -> float: ...
    @property
    def max_det(self) -> int: ...

    def nms(self, raw: Any) -> tuple[list[Any], list[Any]]:
        """Ultralytics' NMS on a torch output: per image the kept rows and their anchors."""


#: One image's kept boxes: ``(xyxy (k, 4), class-score rows (k, C), confidence (k,), class (k,))``.
Kept = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

#: Ultralytics' per-class coordinate offset for class-aware NMS (``max_wh``).
MAX_WH = 7680
#: Above this many candidates NMS goes through torch (the pairwise matrix grows as its square).
MATRIX_LIMIT = 1024


def nms_image(raw: np.ndarray, conf: float, iou: float, max_det: int, nc: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Kept boxes of one image's raw output, as Ultralytics' NMS keeps them.

    Args:
        raw: ``(4 + nc, A)`` float32: centre-size boxes in input pixels, then class scores.
        conf, iou, max_det: the detector's thresholds.
        nc: the number of classes (rows after them are ignored).

    Returns:
        ``(det, idx)``: ``det`` ``(k, 6)`` float32 rows ``x1, y1, x2, y2, confidence, class`` in
        the order NMS keeps them, and ``idx`` ``(k,)`` the anchor (column of ``raw``) of each;
        or ``None`` when there are more than :data:`MATRIX_LIMIT` candidates.
    """
    scores = raw[4 : 4 + nc]
    best = scores.max(axis=0) if raw.shape[1] else np.zeros(0, raw.dtype)
    cand = np.flatnonzero(best > np.asarray(conf, raw.dtype))
    n = len(cand)
    if n > MATRIX_LIMIT:
        return None
    if n == 0:
        return np.zeros((0, 6), np.float32), np.zeros(0, np.int64)
    xywh = raw[:4, cand].T.astype(np.float32)
    half = xywh[:, 2:] / 2
    corners = np.concatenate([xywh[:, :2] - half, xywh[:, :2] + half], axis=1)
    label = scores[:, cand].argmax(axis=0)  # the first of tied maxima, as torch's max
    score = best[cand].astype(np.float32)
    shifted = corners + (label.astype(np.float32) * MAX_WH)[:, None]
    keep = _greedy(shifted, score, iou)[:max_det]
    det = np.empty((len(keep), 6), np.float32)
    det[:, :4] = corners[keep]
    det[:, 4] = score[keep]
    det[:, 5] = label[keep]
    return det, cand[keep].astype(np.int64)


def _greedy(boxes: np.ndarray, score: np.ndarray, iou: float) -> np.ndarray:
    """Indices torchvision's CPU NMS keeps, in its order."""
    order = np.argsort(-score, kind="stable")
    x1, y1, x2, y2 = (boxes[:, k] for k in range(4))
    area = (x2 - x1) * (y2 - y1)
    w = np.maximum(np.minimum(x2[:, None], x2[None, :]) - np.maximum(x1[:, None], x1[None, :]), np.float32(0))
    h = np.maximum(np.minimum(y2[:, None], y2[None, :]) - np.maximum(y1[:, None], y1[None, :]), np.float32(0))
    inter = w * h
    with np.errstate(divide="ignore", invalid="ignore"):  # two empty boxes: 0 / 0, never above the threshold
        overlap = (inter / (area[:, None] + area[None, :] - inter)).astype(np.float64) > float(iou)
    dropped = np.zeros(len(score), bool)
    kept: list[int] = []
    for i in order.tolist():
        if dropped[i]:
            continue
        kept.append(i)
        dropped |= overlap[i]
    return np.asarray(kept, np.int64)


def scale_boxes(input_hw: tuple[int, int], xyxy: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Corners in the letterboxed input ``input_hw`` to the original image ``shape`` (``H, W``), clipped.

    Ultralytics' ``scale_boxes`` (letterbox gain and padding, float32 arithmetic) on a copy.
    """
    h, w = shape
    gain = min(input_hw[0] / h, input_hw[1] / w)
    new_h, new_w = (max(round(side * gain), 1) for side in (h, w))
    gain_y, gain_x = new_h / h, new_w / w
    pad_x, pad_y = round((input_hw[1] - new_w) / 2 - 0.1), round((input_hw[0] - new_h) / 2 - 0.1)
    out = np.array(xyxy, np.float32)
    out[:, [0, 2]] -= pad_x
    out[:, [1, 3]] -= pad_y
    out[:, [0, 2]] /= gain_x
    out[:, [1, 3]] /= gain_y
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, w)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, h)
    return out


def kept_numpy(
    detector: DetectorLike, raw: np.ndarray, input_hw: tuple[int, int], shapes: Sequence[tuple[int, int]]
) -> list[Kept] | None:
    """Each image's kept boxes, scaled to its ``shape``, by :func:`nms_image` (no torch).

    ``raw`` is ``(B, 4 + C, A)``; ``None`` when an image has too many candidates (use :func:`kept_torch`).
    """
    nc = len(detector.names)
    found: list[Kept] = []
    for image, shape in zip(raw, shapes):
        kept = nms_image(image, detector.conf, detector.iou, detector.max_det, nc)
        if kept is None:
            return None
        det, idx = kept
        # (k, C) as a transposed view, the layout the torch path gives: the measures' row sums then add in the
        # same order, to the bit
        rows = np.take(image[4 : 4 + nc], idx, axis=1).astype(np.float32, copy=False).T
        found.append((scale_boxes(input_hw, det[:, :4], shape), rows, det[:, 4].copy(), det[:, 5].astype(np.int64)))
    return found


def kept_torch(
    detector: DetectorLike, raw: Any, input_hw: tuple[int, int], shapes: Sequence[tuple[int, int]]
) -> list[Kept]:
    """Each image's kept boxes by Ultralytics' own NMS and ``scale_boxes`` (``raw`` a tensor or an array)."""
    import torch

    ops = private("ultralytics.utils.ops")
    if isinstance(raw, np.ndarray):
        raw = torch.from_numpy(raw)
    nc = len(detector.names)
    found: list[Kept] = []
    with torch.inference_mode():
        kept, idxs = detector.nms(raw)
        for b, (det, idx, shape) in enumerate(zip(kept, idxs, shapes)):
            if not det.shape[0]:
                empty = np.zeros((0, 4), np.float32), np.zeros((0, nc), np.float32)
                found.append((*empty, np.zeros((0,), np.float32), np.zeros((0,), np.int64)))
                continue
            scaled: Any = ops.scale_boxes(input_hw, det[:, :4].clone(), shape)
            rows = raw[b, 4 : 4 + nc][:, idx.view(-1).long()].T.float()
            found.append(
                (
                    scaled.cpu().numpy(),
                    rows.cpu().numpy(),
                    det[:, 4].float().cpu().numpy(),
                    det[:, 5].long().cpu().numpy(),
                )
            )
    return found
