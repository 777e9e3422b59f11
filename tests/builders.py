"""Record builders shared by the tests: small, explicit :class:`~cvactive.record.ImageRecord` s.

Import them as ``from builders import ...`` (pytest puts ``tests/`` on the path through its
conftest). Larger synthetic pools for selection come from :mod:`cvactive.selection.synthetic`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cvactive.record import ImageRecord


def from_rows(
    xyxy: Any, rows: Any, *, width: int = 200, height: int = 100, source: str = "img", **kw: Any
) -> ImageRecord:
    """A record whose boxes take the top of their class-score row as confidence and class.

    Args:
        xyxy: ``(N, 4)`` pixel boxes.
        rows: ``(N, C)`` class scores (an empty ``(0, C)`` array for a record without boxes).
    """
    scores = np.asarray(rows, np.float32)
    return ImageRecord(
        source,
        width,
        height,
        xyxy=xyxy,
        confidence=scores.max(1),
        class_id=scores.argmax(1),
        class_scores=scores,
        **kw,
    )


def from_classes(
    xyxy: Any,
    class_id: Any,
    confidence: Any,
    *,
    num_classes: int = 3,
    floor: float = 0.05,
    width: int = 100,
    height: int = 50,
    source: str = "a.jpg",
    **kw: Any,
) -> ImageRecord:
    """A record from each box's class and confidence; the other class scores are ``floor``."""
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
    cls = np.asarray(class_id)
    scores = np.full((len(cls), num_classes), floor, np.float32)
    scores[np.arange(len(cls)), cls] = confidence
    return ImageRecord(source, width, height, xyxy, np.asarray(confidence, np.float32), cls, scores, **kw)


def random_record(n: int = 3, c: int = 4, seed: int = 0, **kw: Any) -> ImageRecord:
    """``n`` seeded random 20 x 20 boxes in a 100 x 80 image, ``c`` classes named ``c0``, ``c1`` ..."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 50, (n, 2))
    scores = rng.random((n, c)).astype(np.float32)
    return ImageRecord(
        source="img.jpg",
        width=100,
        height=80,
        xyxy=np.hstack([xy, xy + 20]),
        confidence=scores.max(1),
        class_id=scores.argmax(1),
        class_scores=scores,
        names={i: f"c{i}" for i in range(c)},
        **kw,
    )


def from_confidences(
    confidence: Any,
    class_id: Any,
    *,
    box: tuple[float, float, float, float] = (0.0, 0.0, 10.0, 10.0),
    width: int = 64,
    height: int = 48,
    source: str = "v.mp4",
    **kw: Any,
) -> ImageRecord:
    """A record with post-NMS confidences only (no class-score rows): one box per confidence,
    each the same pixel ``box``, as a harvest manifest or an exported model gives them."""
    n = len(confidence)
    xyxy = np.tile(np.asarray([box], np.float32), (n, 1))
    return ImageRecord(source, width, height, xyxy=xyxy, confidence=confidence, class_id=class_id, **kw)


def from_yolo_item(item: Any, width: int, height: int, **kw: Any) -> ImageRecord:
    """A record whose boxes are the labels of one :class:`~cvactive.yolodata.YoloItem`, in pixels
    of a ``width`` x ``height`` image (``confidence``, ``names`` ... in ``kw``)."""
    return ImageRecord(
        source=str(item.image), width=width, height=height, xyxy=item.xyxy(width, height), class_id=item.classes, **kw
    )


def yolo_records(data_yaml: Path, split: str, rng: np.random.Generator, n: int | None = None) -> list[ImageRecord]:
    """Scored records whose boxes are a YOLO data set's labels (at each image's real size), with
    random class-score rows that put each label's class on top."""
    from PIL import Image

    from cvactive.detect.scorer import Scorer
    from cvactive.yolodata import load_yolo_dataset

    ds = load_yolo_dataset(data_yaml, splits=(split,))
    scorer = Scorer()
    out = []
    for item in list(ds.items(split))[:n]:
        with Image.open(item.image) as im:
            w, h = im.size
        k = len(item.classes)
        scores = rng.uniform(0.01, 0.3, (k, ds.num_classes)).astype(np.float32)
        scores[np.arange(k), item.classes] = rng.uniform(0.3, 0.95, k)
        record = from_yolo_item(item, w, h, confidence=scores.max(axis=1), class_scores=scores, names=ds.names)
        out.append(scorer(record))
    return out
