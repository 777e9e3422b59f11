"""A scored pool on disk: the records of every pool image scored by one model, one exact JSON line
each, kept under the study's ``scores/`` keyed by the weights file's hash (:func:`file_hash`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cvactive.record import ImageRecord

#: Pool images per forward pass when scoring (part of what defines a record: a batch of
#: differently sized images is letterboxed to the full square, a same-sized one to a rectangle).
POOL_BATCH = 16
#: Version of the scored-pool files under ``scores/`` (a change of their layout or of what
#: scoring computes makes old files unread).
SCORES_VERSION = 1


def file_hash(path: str | Path) -> str:
    """The sha256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _record_data(rec: ImageRecord) -> dict[str, Any]:
    """A scored pool record as exact JSON (float32 values written in full, read back bit for bit)."""

    def arr(a: Any) -> Any:
        return None if a is None else {"shape": list(np.shape(a)), "values": np.asarray(a).reshape(-1).tolist()}

    return {
        "source": rec.source,
        "width": rec.width,
        "height": rec.height,
        "xyxy": arr(rec.xyxy),
        "confidence": arr(rec.confidence),
        "class_id": arr(rec.class_id),
        "class_scores": arr(rec.class_scores),
        "names": {str(k): v for k, v in rec.names.items()},
        "frame": rec.frame,
        "timestamp": rec.timestamp,
        "embedding": arr(rec.embedding),
        "box_scores": {k: arr(v) for k, v in rec.box_scores.items()},
        "image_scores": rec.image_scores,
    }


def _record_from(data: dict[str, Any]) -> ImageRecord:
    def arr(a: Any, dtype: Any) -> Any:
        return None if a is None else np.asarray(a["values"], dtype).reshape(a["shape"])

    return ImageRecord(
        source=data["source"],
        width=data["width"],
        height=data["height"],
        xyxy=arr(data["xyxy"], np.float32),
        confidence=arr(data["confidence"], np.float32),
        class_id=arr(data["class_id"], np.int64),
        class_scores=arr(data["class_scores"], np.float32),
        names={int(k): v for k, v in data["names"].items()},
        frame=data["frame"],
        timestamp=data["timestamp"],
        embedding=arr(data["embedding"], np.float32),
        box_scores={k: arr(v, np.float64) for k, v in data["box_scores"].items()},
        image_scores=data["image_scores"],
    )


def save_scored(path: Path, records: Sequence[ImageRecord]) -> bool:
    """Write a scored pool to ``path`` atomically (one JSON line per record); ``False`` (nothing
    written) when a record carries what this file does not keep (extra fields, a selection, a harvest)."""
    from cvactive.outputs import atomic_open

    if any(r.extra or r.selection is not None or r.harvested is not None for r in records):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "w") as f:
        for rec in records:
            f.write(json.dumps(_record_data(rec)) + "\n")
    return True


def load_scored(path: Path) -> list[ImageRecord]:
    """The records :func:`save_scored` wrote, bit for bit."""
    with open(path) as f:
        return [_record_from(json.loads(line)) for line in f if line.strip()]
