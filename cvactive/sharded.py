"""The folder of a sharded scoring run: its layout, the shard unit, the done marker and the manifest.

Layout of an output folder::

    OUT/manifest.json                 settings, the shard plan, totals (written by the driver)
    OUT/shards/shard-000000.jsonl     the shard's records, the lines `cvactive score` writes
    OUT/shards/shard-000000.parquet   image table: key, numeric per-image fields, class_conf
    OUT/shards/shard-000000.emb.npy   (n, D) embeddings (float32 or float16), with --embed
    OUT/shards/shard-000000.done.json written last: the shard is complete (records, boxes, failures)

Every file is written to a temporary name and renamed into place (:func:`atomic_write_bytes`).
:mod:`cvactive.scale` writes such a folder and :mod:`cvactive.selection.columnar` reads it as
columns; this module sits below both, so neither imports the other.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cvactive.errors import MissingDependencyError, RecordError

MANIFEST = "manifest.json"
FORMAT = "cvactive-sharded-scores"
VERSION = 1
FORMATS = ("jsonl", "parquet")
EMBEDDING_DTYPES = ("float32", "float16")


def require_pyarrow() -> Any:
    """``pyarrow`` (comes with the ``ray`` extra), or an install hint."""
    try:
        import pyarrow
    except ImportError as err:
        raise MissingDependencyError(
            "Parquet shards need pyarrow: pip install 'cvactive[ray]' (or pip install pyarrow)"
        ) from err
    return pyarrow


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=1) + "\n").encode("utf-8"))


@dataclass
class ShardResult:
    """What scoring one shard produced (the content of its done marker)."""

    index: int
    records: int = 0
    boxes: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    embedding_dim: int | None = None
    seconds: float = 0.0
    #: the worker that scored it: process id, and the seconds it took to build its detector
    worker: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "records": self.records,
            "boxes": self.boxes,
            "failures": [list(f) for f in self.failures],
            "embedding_dim": self.embedding_dim,
            "seconds": round(self.seconds, 3),
            "worker": self.worker,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShardResult:
        return cls(
            int(data["index"]),
            int(data["records"]),
            int(data["boxes"]),
            [(str(a), str(b)) for a, b in data.get("failures", [])],
            data.get("embedding_dim"),
            float(data.get("seconds", 0.0)),
            dict(data.get("worker", {})),
        )


@dataclass(frozen=True)
class Shard:
    """One unit of work.

    Attributes:
        index: position in the plan (shard files are named after it).
        paths: the image paths of an image shard (empty for a video shard).
        video: the video path of a video shard.
        start: first frame index of a video shard (a multiple of ``stride``).
        stop: one past the last frame index, or ``None`` for "to the end of the video".
        stride: keep every ``stride``-th frame (counted from frame 0).
    """

    index: int
    paths: tuple[str, ...] = ()
    video: str | None = None
    start: int = 0
    stop: int | None = None
    stride: int = 1

    @property
    def name(self) -> str:
        return f"shard-{self.index:06d}"

    @property
    def expected(self) -> int | None:
        """How many images/frames the shard holds (``None`` for an open-ended video range)."""
        if self.video is None:
            return len(self.paths)
        if self.stop is None:
            return None
        return math.ceil((self.stop - self.start) / self.stride)

    def to_dict(self) -> dict[str, Any]:
        if self.video is None:
            return {"index": self.index, "paths": list(self.paths)}
        return {"index": self.index, "video": self.video, "start": self.start, "stop": self.stop, "stride": self.stride}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Shard:
        if "video" in data:
            return cls(
                int(data["index"]), (), str(data["video"]), int(data["start"]), data["stop"], int(data["stride"])
            )
        return cls(int(data["index"]), tuple(str(p) for p in data["paths"]))


def shard_dir(out: Path) -> Path:
    return out / "shards"


def shard_path(out: Path, shard: Shard | int, suffix: str) -> Path:
    index = shard if isinstance(shard, int) else shard.index
    return shard_dir(out) / f"shard-{index:06d}{suffix}"


# -- the manifest -------------------------------------------------------------------------------
def manifest_path(out: str | Path) -> Path:
    p = Path(out)
    return p if p.name == MANIFEST else p / MANIFEST


def is_sharded(path: str | Path) -> bool:
    """True for an output folder of the sharded scorer (or its manifest.json)."""
    return manifest_path(path).is_file()


def load_manifest(out: str | Path) -> dict[str, Any]:
    """The manifest of a sharded output folder.

    Raises:
        RecordError: there is no manifest, or it is not one this version writes.
    """
    path = manifest_path(out)
    if not path.is_file():
        raise RecordError(f"{path.parent}: no {MANIFEST}; it is not an output folder of `cvactive score --engine ray`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise RecordError(f"{path}: not valid JSON ({err})") from err
    if data.get("format") != FORMAT or data.get("version") != VERSION:
        raise RecordError(f"{path}: not a {FORMAT} v{VERSION} manifest")
    return data


def manifest_shards(data: dict[str, Any]) -> list[Shard]:
    return [Shard.from_dict(s) for s in data["shards"]]
