"""Records to and from JSON lines (the scores file every command reads and writes).

One line per image or frame, with the keys ``source``, ``frame``, ``timestamp``, ``width``,
``height``, ``boxes`` (each ``xyxy``, ``class_id``, ``class_name``, ``confidence``,
``scores`` and, when kept, ``class_scores``), ``image_scores`` and, when present,
``embedding``. Fields that later stages add (``rules``, ``path``, ...) are further
top-level keys, kept in :attr:`ImageRecord.extra`. A record chosen by a selection also has
the top-level keys ``rank``, ``utility`` and ``strategy`` (last), read into
:attr:`ImageRecord.selection` (a :class:`~cvactive.record.Selection`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from cvactive.errors import RecordError
from cvactive.record import SELECTION_KEYS, ImageRecord, Selection

CORE_KEYS = ("source", "frame", "timestamp", "width", "height", "boxes", "image_scores")


def _round(x: float, digits: int = 6) -> float:
    return float(round(float(x), digits))


def record_to_dict(record: ImageRecord, *, class_scores: bool = False, embedding: bool = True) -> dict[str, Any]:
    """The JSON-ready dict of a record (``class_scores`` per box only when asked)."""
    names = record.class_names
    boxes = []
    for i in range(len(record)):
        box: dict[str, Any] = {
            "xyxy": [_round(v, 2) for v in record.xyxy[i]],
            "class_id": int(record.class_id[i]),
            "class_name": names[i],
            "confidence": _round(record.confidence[i]),
            "scores": {k: _round(v[i]) for k, v in record.box_scores.items()},
        }
        if class_scores and record.class_scores is not None:
            box["class_scores"] = [_round(v) for v in record.class_scores[i]]
        boxes.append(box)
    out: dict[str, Any] = {
        "source": record.source,
        "frame": record.frame,
        "timestamp": None if record.timestamp is None else _round(record.timestamp, 4),
        "width": record.width,
        "height": record.height,
        "boxes": boxes,
        "image_scores": {k: _round(v) for k, v in record.image_scores.items()},
    }
    if embedding and record.embedding is not None:
        # Significant digits, not decimals: embeddings of some models are tiny (~1e-7).
        out["embedding"] = [float(f"{v:.6g}") for v in record.embedding.tolist()]
    for key, value in record.extra.items():
        if key not in out:
            out[key] = value
    if record.selection is not None:
        out.update(record.selection.to_dict())
    return out


def record_from_dict(data: dict[str, Any]) -> ImageRecord:
    """Rebuild a record from its JSON dict; raise :class:`RecordError` naming what is wrong."""
    if not isinstance(data, dict):
        raise RecordError(f"expected a JSON object with source, width and height, got {data!r:.60}")
    try:
        return _record_from_dict(data)
    except RecordError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as err:  # a value of the wrong kind
        raise RecordError(f"malformed record ({err})") from err


def _record_from_dict(data: dict[str, Any]) -> ImageRecord:
    missing = [k for k in ("source", "width", "height") if k not in data]
    if missing:
        raise RecordError(f"missing keys {missing}")
    if isinstance(data.get("path"), str):  # a harvest's saved frame: a file name like the source
        try:
            data["path"].encode("utf-8")
        except UnicodeEncodeError:
            raise RecordError("path is not valid UTF-8; rename the file") from None
    boxes = data.get("boxes") or []
    try:
        xyxy = np.array([b["xyxy"] for b in boxes], dtype=np.float32).reshape(-1, 4)
        conf = np.array([b["confidence"] for b in boxes], dtype=np.float32)
        cls = np.array([b["class_id"] for b in boxes], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as err:
        raise RecordError(f"malformed box ({err!r})") from err
    names = {int(b["class_id"]): str(b.get("class_name", b["class_id"])) for b in boxes}
    class_scores = None
    if boxes and all("class_scores" in b for b in boxes):
        class_scores = np.array([b["class_scores"] for b in boxes], dtype=np.float32)
    # in the order the line lists them (a set here made every rewrite of a file order them anew)
    score_keys = dict.fromkeys(k for b in boxes for k in b.get("scores", {}))
    box_scores = {k: np.array([b.get("scores", {}).get(k, np.nan) for b in boxes]) for k in score_keys}
    embedding = data.get("embedding")
    selection = Selection.from_dict(data)
    extra = {k: v for k, v in data.items() if k not in CORE_KEYS and k != "embedding" and k not in SELECTION_KEYS}
    return ImageRecord(
        source=str(data["source"]),
        frame=data.get("frame"),
        timestamp=data.get("timestamp"),
        width=data["width"],
        height=data["height"],
        xyxy=xyxy,
        confidence=conf,
        class_id=cls,
        class_scores=class_scores,
        names=names,
        embedding=None if embedding is None else np.asarray(embedding, dtype=np.float32),
        box_scores=box_scores,
        image_scores=data.get("image_scores") or {},
        extra=extra,
        selection=selection,
    )


def read_jsonl(path: str | Path) -> Iterator[ImageRecord]:
    """Yield the records of a JSON-lines file.

    Raises:
        RecordError: the file is missing, or a line is not a valid record (names file and line).
    """
    p = Path(path)
    if not p.is_file():
        raise RecordError(f"{p}: scores file does not exist")
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield record_from_dict(json.loads(line))
            except (json.JSONDecodeError, RecordError) as err:
                raise RecordError(f"{p}:{lineno}: not a valid record ({err})") from err


def load_jsonl(path: str | Path) -> list[ImageRecord]:
    """All records of a JSON-lines file as a list."""
    return list(read_jsonl(path))


class JsonlWriter:
    """Appends records as JSON lines, flushing every line so a crash loses at most one.

    An error while writing (a full disk, for one) is raised as an :class:`OSError` that names the
    file, so the command reports it in one line; the writer then closes without a second error.
    """

    def __init__(self, path: str | Path, *, append: bool = False, class_scores: bool = False, fsync: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.class_scores = class_scores
        self.fsync = fsync
        self._fh: IO[str] = self.path.open("a" if append else "w", encoding="utf-8")
        self._failed = False
        self.count = 0

    def _named(self, err: OSError) -> OSError:
        self._failed = True
        if err.filename is not None:
            return err
        return type(err)(err.errno, err.strerror or str(err), str(self.path))

    def write(self, record: ImageRecord | dict[str, Any]) -> None:
        data = record if isinstance(record, dict) else record_to_dict(record, class_scores=self.class_scores)
        try:
            self._fh.write(json.dumps(data, separators=(",", ":")) + "\n")
            self._fh.flush()
            if self.fsync:
                os.fsync(self._fh.fileno())
        except OSError as err:
            raise self._named(err) from err
        self.count += 1

    def close(self) -> None:
        try:
            self._fh.close()
        except OSError as err:
            if not self._failed:  # a failed write was reported already; its unflushed tail fails again here
                raise self._named(err) from err

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_jsonl(
    path: str | Path, records: Iterable[ImageRecord | dict[str, Any]], *, class_scores: bool = False
) -> int:
    """Write records to a JSON-lines file, whole or not at all (through a temporary name in the same
    folder); return how many were written. On an error the previous file stays as it was."""
    from cvactive.outputs import atomic_path

    with atomic_path(path) as tmp, JsonlWriter(tmp, class_scores=class_scores) as writer:
        for record in records:
            writer.write(record)
    return writer.count
