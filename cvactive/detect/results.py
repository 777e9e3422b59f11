"""Records from Ultralytics ``Results`` a user already has (:func:`records_from_results`).

Duck-typed: it reads a ``Results``' boxes, names, shape and path without importing Ultralytics.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cvactive.errors import ModelError
from cvactive.record import ImageRecord


def records_from_results(results: Any) -> list[ImageRecord]:
    """Records from Ultralytics ``Results`` (one, or a list as ``YOLO(...)(images)`` returns).

    The bridge for a user who already ran ``model.predict``, in the way of supervision's
    ``Detections.from_ultralytics``: boxes (``xyxy`` pixels), confidences, class ids, class
    names, the image size and its path. A ``Results`` keeps only each box's post-NMS confidence,
    not its row of class scores, so these records have ``class_scores=None``: score them with
    ``Scorer().for_record(record)`` (the confidence measures), or run :class:`Detector` on the
    same images for the full rows (margin, entropy and the other vector measures).

    Raises:
        ModelError: something that is not a detection ``Results`` (a classification or
            segmentation-only result has no boxes).
    """
    items = results if isinstance(results, (list, tuple)) else [results]
    records = []
    for i, result in enumerate(items):
        boxes = getattr(result, "boxes", None)
        shape = getattr(result, "orig_shape", None)
        if boxes is None or shape is None:
            raise ModelError(
                f"item {i} is a {type(result).__name__}, not an Ultralytics detection Results (it has no boxes)"
            )
        data = boxes.data.cpu().numpy() if hasattr(boxes.data, "cpu") else np.asarray(boxes.data)
        names = {int(k): str(v) for k, v in dict(getattr(result, "names", {}) or {}).items()}
        path = str(getattr(result, "path", "") or f"image-{i}")
        records.append(
            ImageRecord(
                source=path,
                width=int(shape[1]),
                height=int(shape[0]),
                xyxy=data[:, :4].astype(np.float32),
                confidence=np.clip(data[:, -2], 0.0, 1.0).astype(np.float32),
                class_id=data[:, -1].astype(np.int64),
                names=names,
            )
        )
    return records
