"""Adapter: run a detector over labeled YOLO images and pair each scored record with its ground truth."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cvactive.errormodel.model import LabeledRecord
from cvactive.errors import DatasetError

if TYPE_CHECKING:
    from cvactive.detect.model import Detector
    from cvactive.yolodata import YoloItem


def truth_in_model_ids(classes: np.ndarray, data_to_model: Mapping[int, int]) -> np.ndarray:
    """Data-set class ids as the detector's ids; a class the detector does not have becomes ``-1``
    (such an object can only be missed)."""
    return np.array([data_to_model.get(int(c), -1) for c in np.asarray(classes).reshape(-1)], np.int64)


def collect_labeled(
    detector: Detector,
    items: Sequence[YoloItem],
    data_names: Mapping[int, str],
    *,
    scorer: Any = None,
    batch: int = 8,
    progress: bool = True,
    workers: int = 0,
) -> list[LabeledRecord]:
    """Score ``items`` with ``detector`` (and ``scorer``, default :class:`~cvactive.detect.scorer.Scorer`).

    ``workers > 0`` runs a plain :class:`~cvactive.detect.model.Detector` through the inference
    pipeline (:mod:`cvactive.detect.pipeline`) in the same batches: the same records, sooner.
    """
    from tqdm import tqdm

    from cvactive.consistency.calibration_run import class_map
    from cvactive.detect.model import Detector
    from cvactive.detect.pipeline import run_detector
    from cvactive.detect.scorer import Scorer
    from cvactive.sources import FrameMeta, read_image

    scorer = scorer or Scorer()
    to_model = {d: m for m, d in class_map(detector.names, dict(data_names)).items()}
    out: list[LabeledRecord] = []
    if workers > 0 and isinstance(detector, Detector):
        frames = ((read_image(item.image), FrameMeta(str(item.image))) for item in items)
        scored = run_detector(detector, frames, batch, workers=workers, scorer=scorer)
        bar = tqdm(scored, total=len(items), disable=not progress, unit="img", desc="scoring labeled")
        for record, item in zip(bar, items):  # the records first: the pipeline ends when they do
            truth = truth_in_model_ids(item.classes, to_model)
            out.append(LabeledRecord(record, item.xyxy(record.width, record.height), truth))
        return out
    for start in tqdm(range(0, len(items), batch), disable=not progress, unit="batch", desc="scoring labeled"):
        chunk = items[start : start + batch]
        images = [read_image(item.image) for item in chunk]
        records = detector.predict(images, [FrameMeta(str(item.image)) for item in chunk])
        for item, image, record in zip(chunk, images, records):
            h, w = image.shape[:2]
            out.append(LabeledRecord(scorer(record), item.xyxy(w, h), truth_in_model_ids(item.classes, to_model)))
    return out


def collect_split(
    detector: Detector,
    data: str | Path,
    *,
    split: str = "val",
    limit: int | None = None,
    scorer: Any = None,
    batch: int = 8,
    progress: bool = True,
) -> list[LabeledRecord]:
    """Score every image of a labeled YOLO split (the first ``limit`` when given)."""
    from cvactive.yolodata import load_yolo_dataset

    ds = load_yolo_dataset(data)
    if split not in ds.splits:
        raise DatasetError(f"{data}: no split {split!r}; it has {', '.join(ds.splits) or 'none'}")
    items = list(ds.items(split))[: limit if limit else None]
    if not items:
        raise DatasetError(f"{data}: split {split!r} holds no images")
    return collect_labeled(detector, items, ds.names, scorer=scorer, batch=batch, progress=progress)
