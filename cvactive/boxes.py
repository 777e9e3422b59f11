"""Box conventions and their conversions, and IoU (pure numpy).

Three conventions meet in cvactive; every array here is ``(N, 4)``, one box per row:

* **xyxy** (the record's :attr:`~cvactive.record.ImageRecord.xyxy`): absolute pixels
  ``[x1, y1, x2, y2]`` in the original image.
* **FiftyOne** (``Detection.bounding_box``): ``[x, y, w, h]`` normalised to [0, 1], top-left origin.
* **YOLO** (label files): ``[cx, cy, w, h]`` normalised to [0, 1], box centre.

The functions take any array-like and never modify their input. They are numpy, not
``torchvision.ops`` (``box_convert``, ``box_iou``): the scoring, selection and matching code
that calls them must import without torch, and the boxes are small arrays already in numpy.
``tests/test_boxes.py`` checks them against ``torchvision.ops`` and hand-computed cases.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def _rows(boxes: npt.ArrayLike, dtype: type) -> np.ndarray:
    return np.asarray(boxes, dtype).reshape(-1, 4)


def xyxy_to_yolo(xyxy: npt.ArrayLike, width: float, height: float) -> np.ndarray:
    """Pixel ``xyxy`` to YOLO normalised ``cx cy w h``, float32 (computed in float32, not clipped)."""
    b = _rows(xyxy, np.float32)
    out = np.empty_like(b)
    out[:, 0] = (b[:, 0] + b[:, 2]) / 2 / width
    out[:, 1] = (b[:, 1] + b[:, 3]) / 2 / height
    out[:, 2] = (b[:, 2] - b[:, 0]) / width
    out[:, 3] = (b[:, 3] - b[:, 1]) / height
    return out


def yolo_to_xyxy(boxes: npt.ArrayLike, width: float, height: float) -> np.ndarray:
    """YOLO normalised ``cx cy w h`` to pixel ``xyxy``, float32 (computed in float32)."""
    b = _rows(boxes, np.float32)
    out = np.empty_like(b)
    out[:, 0] = (b[:, 0] - b[:, 2] / 2) * width
    out[:, 1] = (b[:, 1] - b[:, 3] / 2) * height
    out[:, 2] = (b[:, 0] + b[:, 2] / 2) * width
    out[:, 3] = (b[:, 1] + b[:, 3] / 2) * height
    return out


def xyxy_to_fiftyone(xyxy: npt.ArrayLike, width: float, height: float) -> np.ndarray:
    """Pixel ``xyxy`` to FiftyOne normalised top-left ``[x, y, w, h]``, float64, clipped into the image."""
    b = _rows(xyxy, np.float64)
    x1 = np.clip(b[:, 0] / width, 0.0, 1.0)
    y1 = np.clip(b[:, 1] / height, 0.0, 1.0)
    x2 = np.clip(b[:, 2] / width, 0.0, 1.0)
    y2 = np.clip(b[:, 3] / height, 0.0, 1.0)
    return np.stack([x1, y1, np.maximum(x2 - x1, 0.0), np.maximum(y2 - y1, 0.0)], axis=1)


def fiftyone_to_xyxy(tlwh: npt.ArrayLike, width: float, height: float) -> np.ndarray:
    """FiftyOne normalised top-left ``[x, y, w, h]`` to pixel ``xyxy``, float64."""
    b = _rows(tlwh, np.float64)
    return np.stack([b[:, 0] * width, b[:, 1] * height, (b[:, 0] + b[:, 2]) * width, (b[:, 1] + b[:, 3]) * height], 1)


def yolo_to_fiftyone(boxes: npt.ArrayLike) -> np.ndarray:
    """YOLO normalised ``cx cy w h`` to FiftyOne normalised top-left ``[x, y, w, h]``, float64."""
    b = _rows(boxes, np.float64)
    return np.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 2], b[:, 3]], axis=1)


def fiftyone_to_yolo(tlwh: npt.ArrayLike) -> np.ndarray:
    """FiftyOne normalised top-left ``[x, y, w, h]`` to YOLO normalised ``cx cy w h``, float64."""
    b = _rows(tlwh, np.float64)
    return np.stack([b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2, b[:, 2], b[:, 3]], axis=1)


def box_area(xyxy: npt.ArrayLike) -> np.ndarray:
    """``(N,)`` float64 areas of ``xyxy`` boxes; a box with ``x2 < x1`` or ``y2 < y1`` has area 0."""
    b = _rows(xyxy, np.float64)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def box_iou(a: npt.ArrayLike, b: npt.ArrayLike) -> np.ndarray:
    """IoU of every pair of boxes: ``(N, 4)`` x ``(M, 4)`` ``xyxy`` (any one unit) -> ``(N, M)`` float64.

    Degenerate boxes (zero area) have IoU 0 with everything, where ``torchvision.ops.box_iou``
    gives NaN for two of them.
    """
    a = _rows(a, np.float64)
    b = _rows(b, np.float64)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0.0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
