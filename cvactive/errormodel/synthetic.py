"""Seeded ground truth for synthetic scored records (tests and examples; no model, no images).

Each kept box is an object of its class with probability equal to its confidence; otherwise it
is a false positive, an object of another class, or an object it overlaps poorly. Some objects
have no box at all (misses), and some sub-threshold boxes lie on a real object.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cvactive._random import as_rng
from cvactive.errormodel.model import LabeledRecord
from cvactive.record import ImageRecord


def synthetic_truth(
    records: Sequence[ImageRecord],
    rng: int | np.random.Generator = 0,
    *,
    threshold: float = 0.25,
    misses_per_image: float = 0.5,
) -> list[LabeledRecord]:
    """Ground truth for every record, drawn from its boxes' confidences (see the module docstring)."""
    gen = as_rng(rng)
    out = []
    for rec in records:
        c = max(rec.num_classes or 1, 2)
        boxes: list[np.ndarray] = []
        classes: list[int] = []
        for box, cls, conf in zip(rec.xyxy.astype(np.float64), rec.class_id, rec.confidence):
            draw = gen.random()
            if conf < threshold:
                if draw < 0.5:
                    boxes.append(box)
                    classes.append(int(cls))
                continue
            if draw < conf:
                boxes.append(box)
                classes.append(int(cls))
            elif draw < conf + (1 - conf) / 3:
                boxes.append(box)
                classes.append(int((cls + 1) % c))  # wrong class
            elif draw < conf + 2 * (1 - conf) / 3:
                w, h = box[2] - box[0], box[3] - box[1]
                boxes.append(box + np.array([0.6 * w, 0.6 * h, 0.6 * w, 0.6 * h]))  # poorly localised
                classes.append(int(cls))
        for _ in range(int(gen.poisson(misses_per_image))):
            xy = gen.uniform(0, [rec.width * 0.8, rec.height * 0.8])
            boxes.append(np.r_[xy, xy + gen.uniform(5, [rec.width * 0.2, rec.height * 0.2])])
            classes.append(int(gen.integers(c)))
        out.append(LabeledRecord(rec, np.asarray(boxes).reshape(-1, 4), np.asarray(classes, np.int64)))
    return out
