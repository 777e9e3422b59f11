"""Records to and from JSON lines (the scores file every command reads and writes).

One line per image or frame, with the keys ``source``, ``frame``, ``timestamp``, ``width``,
``height``, ``boxes`` (each ``xyxy``, ``class_id``, ``class_name``, ``confidence``,
``scores`` and, when kept, ``class_scores``), ``image_scores`` and, when present,
``embedding``. A harvest's manifest line also has ``rules``, ``path``, ``delay`` and
``inferred`` (only when false), read into :attr:`ImageRecord.harvested` (a
:class:`~cvactive.record.Harvested`); other fields a user or a later stage adds are further
top-level keys, kept in :attr:`ImageRecord.extra`. A record chosen by a selection also has the
top-level keys ``rank``, ``utility`` and ``strategy`` (last), read into
:attr:`ImageRecord.selection` (a :class:`~cvactive.record.Selection`).

The full class names of a file (``names``, class id -> name, every class of the model, not only
those with boxes) are a top-level key of its first line and of any line where they change; a
line without them has the names of the line before it (:func:`read_jsonl` carries them on).

Packed arrays (``packed=True``, what a harvest manifest writes): a box's ``class_scores`` and
the record's ``embedding`` are each one base64 string of little-endian float32 values instead
of a list of decimals: exact, and 4/3 byte per float (about 1,370 bytes for a 256-d embedding
and 430 per box of 80 class scores, against about 2,600 and 720 as decimals). Both forms read.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from cvactive.errors import RecordError
from cvactive.record import HARVEST_KEYS, SELECTION_KEYS, Harvested, ImageRecord, Selection

CORE_KEYS = ("source", "frame", "timestamp", "width", "height", "boxes", "image_scores")


def _round(x: float, digits: int = 6) -> float:
    return float(round(float(x), digits))


def pack(values: np.ndarray) -> str:
    """Float values as one base64 string of little-endian float32 (exact, 4/3 byte per value)."""
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f4").tobytes()).decode("ascii")


def unpack(text: str, name: str) -> np.ndarray:
    """The float32 values of a :func:`pack` string; a :class:`RecordError` naming ``name`` when it is not one."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as err:
        raise RecordError(f"{name}: not a packed float32 array ({err})") from None
    if len(raw) % 4:
        raise RecordError(f"{name}: a packed float32 array of {len(raw)} bytes (not a multiple of 4)")
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def names_key(names: dict[int, str]) -> dict[str, str]:
    """The ``names`` of a JSON line: class id (as text) -> name, in id order."""
    return {str(k): names[k] for k in sorted(names)}


def record_to_dict(
    record: ImageRecord,
    *,
    class_scores: bool = False,
    embedding: bool = True,
    packed: bool = False,
    names: bool = False,
) -> dict[str, Any]:
    """The JSON-ready dict of a record (``class_scores`` per box only when asked; ``packed``: class
    scores and embedding as base64 float32 strings; ``names``: the full class names too)."""
    box_names = record.class_names
    boxes = []
    for i in range(len(record)):
        box: dict[str, Any] = {
            "xyxy": [_round(v, 2) for v in record.xyxy[i]],
            "class_id": int(record.class_id[i]),
            "class_name": box_names[i],
            "confidence": _round(record.confidence[i]),
            "scores": {k: _round(v[i]) for k, v in record.box_scores.items()},
        }
        if class_scores and record.class_scores is not None:
            row = record.class_scores[i]
            box["class_scores"] = pack(row) if packed else [_round(v) for v in row]
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
        out["embedding"] = pack(record.embedding) if packed else [float(f"{v:.6g}") for v in record.embedding.tolist()]
    if names and record.names:
        out["names"] = names_key(dict(record.names))
    if record.harvested is not None:
        out.update(record.harvested.to_dict())
    for key, value in record.extra.items():
        if key not in out:
            out[key] = value
    if record.selection is not None:
        out.update(record.selection.to_dict())
    return out


def record_from_dict(data: dict[str, Any], names: dict[int, str] | None = None) -> ImageRecord:
    """Rebuild a record from its JSON dict; raise :class:`RecordError` naming what is wrong.

    ``names``: the class names a line without a ``names`` key has (those of the lines before it in
    its file, see :func:`read_jsonl`); the classes of its boxes are added to them.
    """
    if not isinstance(data, dict):
        raise RecordError(f"expected a JSON object with source, width and height, got {data!r:.60}")
    try:
        return _record_from_dict(data, names or {})
    except RecordError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as err:  # a value of the wrong kind
        raise RecordError(f"malformed record ({err})") from err


def _line_names(data: dict[str, Any]) -> dict[int, str] | None:
    """The ``names`` key of a line as class id -> name, or ``None`` when the line has none."""
    if "names" not in data:
        return None
    raw = data["names"]
    if not isinstance(raw, dict):
        raise RecordError(f"names: expected an object of class id -> name, got {raw!r:.60}")
    return {int(k): str(v) for k, v in raw.items()}


def _class_scores(boxes: list[dict[str, Any]]) -> np.ndarray | None:
    if not boxes or not all("class_scores" in b for b in boxes):
        return None
    rows = [unpack(row, "class_scores") if isinstance(row, str) else row for row in (b["class_scores"] for b in boxes)]
    if len({len(r) for r in rows}) > 1:
        raise RecordError(f"class_scores: rows of different lengths {sorted({len(r) for r in rows})}")
    return np.array(rows, dtype=np.float32)


def _record_from_dict(data: dict[str, Any], inherited: dict[int, str]) -> ImageRecord:
    missing = [k for k in ("source", "width", "height") if k not in data]
    if missing:
        raise RecordError(f"missing keys {missing}")
    boxes = data.get("boxes") or []
    try:
        xyxy = np.array([b["xyxy"] for b in boxes], dtype=np.float32).reshape(-1, 4)
        conf = np.array([b["confidence"] for b in boxes], dtype=np.float32)
        cls = np.array([b["class_id"] for b in boxes], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as err:
        raise RecordError(f"malformed box ({err!r})") from err
    line_names = _line_names(data)
    names = dict(inherited if line_names is None else line_names)
    for b in boxes:
        names.setdefault(int(b["class_id"]), str(b.get("class_name", b["class_id"])))
    # in the order the line lists them (a set here made every rewrite of a file order them anew)
    score_keys = dict.fromkeys(k for b in boxes for k in b.get("scores", {}))
    box_scores = {k: np.array([b.get("scores", {}).get(k, np.nan) for b in boxes]) for k in score_keys}
    embedding = data.get("embedding")
    if isinstance(embedding, str):
        embedding = unpack(embedding, "embedding")
    typed = {*CORE_KEYS, "embedding", "names", *SELECTION_KEYS, *HARVEST_KEYS}
    return ImageRecord(
        source=str(data["source"]),
        frame=data.get("frame"),
        timestamp=data.get("timestamp"),
        width=data["width"],
        height=data["height"],
        xyxy=xyxy,
        confidence=conf,
        class_id=cls,
        class_scores=_class_scores(boxes),
        names=names,
        embedding=None if embedding is None else np.asarray(embedding, dtype=np.float32),
        box_scores=box_scores,
        image_scores=data.get("image_scores") or {},
        extra={k: v for k, v in data.items() if k not in typed},
        selection=Selection.from_dict(data),
        harvested=Harvested.from_dict(data),
    )


def read_jsonl(path: str | Path) -> Iterator[ImageRecord]:
    """Yield the records of a JSON-lines file.

    Raises:
        RecordError: the file is missing, or a line is not a valid record (names file and line).
    """
    p = Path(path)
    if not p.is_file():
        raise RecordError(f"{p}: scores file does not exist")
    names: dict[int, str] = {}  # the class names of the lines so far (a line's ``names`` key sets them)
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                found = _line_names(data) if isinstance(data, dict) else None
                names = names if found is None else found
                yield record_from_dict(data, names)
            except (json.JSONDecodeError, RecordError) as err:
                raise RecordError(f"{p}:{lineno}: not a valid record ({err})") from err
            except (TypeError, ValueError) as err:  # a names key of the wrong kind
                raise RecordError(f"{p}:{lineno}: not a valid record (names: {err})") from err


def load_jsonl(path: str | Path) -> list[ImageRecord]:
    """All records of a JSON-lines file as a list."""
    return list(read_jsonl(path))


def last_names(path: str | Path) -> dict[int, str]:
    """The class names a reader has after the last line of a JSON-lines file (``{}`` when it names
    none or does not exist): what a writer appending to it continues from, so an appended file
    is the file written at once."""
    p = Path(path)
    if not p.is_file():
        return {}
    names: dict[int, str] = {}
    with p.open("rb") as fh:
        for raw in fh:
            if b'"names"' not in raw:  # most lines: no need to parse them
                continue
            try:
                data = json.loads(raw)
                found = _line_names(data) if isinstance(data, dict) else None
            except (ValueError, RecordError):
                continue
            names = names if found is None else found
    return names


class JsonlWriter:
    """Appends records as JSON lines, flushing every line so a crash loses at most one.

    A record's full class names are written on the first line and wherever they change (see the
    module's docstring); a writer that appends continues from the names of the file's lines
    (:func:`last_names`), so a file written in two runs is the file written in one. An error
    while writing (a full disk, for one) is raised as an :class:`OSError` that names the file, so
    the command reports it in one line; the writer then closes without a second error.

    Args:
        path: the file.
        append: add to the end of the file instead of starting it anew.
        class_scores: write each box's class-score row.
        fsync: force every line to disk.
        packed: class scores and embeddings as base64 float32 (:func:`pack`).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        append: bool = False,
        class_scores: bool = False,
        fsync: bool = False,
        packed: bool = False,
    ):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.class_scores = class_scores
        self.fsync = fsync
        self.packed = packed
        # the names a reader has after the lines written so far (appending: after the file's lines)
        self._names: dict[int, str] = last_names(self.path) if append else {}
        self._fh: IO[str] = self.path.open("a" if append else "w", encoding="utf-8")
        self._failed = False
        self.count = 0

    def _named(self, err: OSError) -> OSError:
        self._failed = True
        if err.filename is not None:
            return err
        return type(err)(err.errno, err.strerror or str(err), str(self.path))

    def _needs_names(self, record: ImageRecord) -> bool:
        """Whether a reader would not get ``record.names`` from the lines before and its boxes."""
        expected = dict(self._names)
        for c, name in zip(record.class_id.tolist(), record.class_names):
            expected.setdefault(int(c), name)
        return expected != dict(record.names)

    def write(self, record: ImageRecord | dict[str, Any]) -> None:
        if isinstance(record, dict):
            data = record
        else:
            names = self._needs_names(record)
            data = record_to_dict(record, class_scores=self.class_scores, packed=self.packed, names=names)
            if names:
                self._names = dict(record.names)
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
    path: str | Path,
    records: Iterable[ImageRecord | dict[str, Any]],
    *,
    class_scores: bool = False,
    packed: bool = False,
) -> int:
    """Write records to a JSON-lines file, whole or not at all (through a temporary name in the same
    folder); return how many were written. On an error the previous file stays as it was."""
    from cvactive.outputs import atomic_path

    with atomic_path(path) as tmp, JsonlWriter(tmp, class_scores=class_scores, packed=packed) as writer:
        for record in records:
            writer.write(record)
    return writer.count
