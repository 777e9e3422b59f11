"""Running a detector over a labeled YOLO split to flag each prediction a true or false positive.

The adapter side of calibration (and of the error model's labeled samples): it reads images
and labels, calls the detector, maps its classes to the data set's by name, and hands
:class:`~cvactive.consistency.temperature.ImagePredictions` to the maths.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cvactive.consistency.temperature import ImagePredictions, match_to_truth
from cvactive.errors import DatasetError

if TYPE_CHECKING:
    from cvactive.detect.model import Detector


def class_map(model_names: dict[int, str], data_names: dict[int, str]) -> dict[int, int]:
    """Model class id -> data set class id, by class name (ids when the data set names are ids)."""
    if all(v == str(k) for k, v in data_names.items()):
        return {k: k for k in model_names if k in data_names}
    by_name = {v: k for k, v in data_names.items()}
    mapping = {k: by_name[v] for k, v in model_names.items() if v in by_name}
    if not mapping:
        raise DatasetError(
            f"the model's classes ({', '.join(list(model_names.values())[:5])}, ...) share no name with the data "
            f"set's ({', '.join(list(data_names.values())[:5])}, ...); calibrate on data labeled with the "
            "model's classes"
        )
    return mapping


def collect_predictions(
    detector: Detector,
    data: str | Path,
    *,
    split: str = "val",
    iou: float = 0.5,
    batch: int = 8,
    limit: int | None = None,
    progress: bool = True,
) -> list[ImagePredictions]:
    """Run ``detector`` over a labeled YOLO split and flag each prediction true or false positive.

    Predictions of classes the data set does not have count as false positives.
    """
    from tqdm import tqdm

    from cvactive.sources import read_image
    from cvactive.yolodata import load_yolo_dataset

    ds = load_yolo_dataset(data, splits=(split,))
    if split not in ds.splits:
        raise DatasetError(f"{data}: no split {split!r}; it has {', '.join(ds.splits) or 'none'}")
    items = list(ds.items(split))[: limit if limit else None]
    if not items:
        raise DatasetError(f"{data}: split {split!r} holds no images")
    mapping = class_map(detector.names, ds.names)
    out: list[ImagePredictions] = []
    for start in tqdm(range(0, len(items), batch), disable=not progress, unit="batch", desc="calibration"):
        chunk = items[start : start + batch]
        images = [read_image(item.image) for item in chunk]
        records = detector.predict(images)
        for item, image, record in zip(chunk, images, records):
            h, w = image.shape[:2]
            cls = np.array([mapping.get(int(c), -1) for c in record.class_id], np.int64)
            ok = match_to_truth(record.xyxy, cls, record.confidence, item.xyxy(w, h), item.classes, iou)
            out.append(ImagePredictions(str(item.image), record.confidence.astype(np.float64), ok, len(item.classes)))
    return out
