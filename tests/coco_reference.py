"""COCO JSON of ground truth and predictions, straight from YOLO labels and cvactive records (pure; no FiftyOne).

Ground truth becomes a COCO "instances" dict (``images``, ``annotations``, ``categories``);
predictions become a COCO results list (``image_id``, ``category_id``, ``bbox``, ``score``). Boxes
are COCO's absolute pixel ``[x, y, w, h]`` with a top-left origin. Category ids are the class
ids plus one (COCO's ids start at 1). Images are matched by their resolved file path.

These are what ``pycocotools``' ``COCOeval`` reads; the tests (``test_store_ap_reference.py``) and
``tools/compare_ap.py`` use them as an independent reference for the AP that ``cvactive evaluate``
computes through FiftyOne. A test helper, not part of the library (issue #27).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from cvactive.record import ImageRecord


def _image_id(path: str | Path, ids: dict[str, int]) -> int:
    key = str(Path(path).resolve())
    if key not in ids:
        ids[key] = len(ids) + 1
    return ids[key]


def coco_ground_truth(
    items: Iterable[Any], names: Mapping[int, str], sizes: Mapping[str, tuple[int, int]], ids: dict[str, int]
) -> dict[str, Any]:
    """COCO instances of YOLO items (:class:`~cvactive.yolodata.YoloItem`).

    Args:
        items: the labeled images.
        names: class id -> name.
        sizes: resolved image path -> ``(width, height)`` in pixels.
        ids: resolved image path -> COCO image id; filled in for new images (share it with
            :func:`coco_predictions`).
    """
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for item in items:
        key = str(Path(item.image).resolve())
        w, h = sizes[key]
        image_id = _image_id(key, ids)
        images.append({"id": image_id, "file_name": Path(key).name, "width": int(w), "height": int(h)})
        for box, cls in zip(np.asarray(item.xyxy(w, h), np.float64).tolist(), item.classes.tolist()):
            x1, y1, x2, y2 = box
            annotations.append(
                {"id": len(annotations) + 1, "image_id": image_id, "category_id": int(cls) + 1,
                 "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0}
            )  # fmt: skip
    categories = [{"id": int(k) + 1, "name": str(v)} for k, v in sorted(names.items())]
    return {"images": images, "annotations": annotations, "categories": categories}


def coco_predictions(records: Iterable[ImageRecord], ids: dict[str, int]) -> list[dict[str, Any]]:
    """COCO results of records' boxes (category id = class id + 1, score = confidence).

    Records of images not in ``ids`` get new ids (images without ground truth).
    """
    out = []
    for record in records:
        image_id = _image_id(record.source, ids)
        for box, cls, conf in zip(record.xyxy.astype(np.float64).tolist(), record.class_id.tolist(),
                                  record.confidence.tolist()):  # fmt: skip
            x1, y1, x2, y2 = box
            out.append({"image_id": image_id, "category_id": int(cls) + 1, "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "score": float(conf)})  # fmt: skip
    return out


def per_class_ap(precision: np.ndarray, category_ids: list[int]) -> dict[int, tuple[float | None, float | None]]:
    """Category id -> (AP50, AP50:95) from ``COCOeval.eval["precision"]`` ``(T, R, K, A, M)``.

    Uses area range "all" and the largest max-detections setting; ``None`` where the category
    has no ground truth (COCO's ``-1``). ``category_ids`` are ``COCOeval.params.catIds`` in order.
    """
    p = np.asarray(precision, np.float64)[:, :, :, 0, -1]  # (T, R, K)
    out: dict[int, tuple[float | None, float | None]] = {}
    for k, cat in enumerate(category_ids):
        rows = p[:, :, k]
        valid = rows > -1
        if not valid.any():
            out[int(cat)] = (None, None)
            continue
        ap50 = float(rows[0][valid[0]].mean()) if valid[0].any() else None
        out[int(cat)] = (ap50, float(rows[valid].mean()))
    return out
