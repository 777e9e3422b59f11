"""Sharded scores on disk: one set of files per shard, a done marker, and the manifest.

Layout of an output folder::

    OUT/manifest.json                 settings, the shard plan, totals (written by the driver)
    OUT/shards/shard-000000.jsonl     the shard's records, the lines `cvactive score` writes
    OUT/shards/shard-000000.parquet   image table: key, numeric per-image fields, class_conf
    OUT/shards/shard-000000.emb.npy   (n, D) embeddings (float32 or float16), with --embed
    OUT/shards/shard-000000.done.json written last: the shard is complete (records, boxes, failures)

Every file is written to a temporary name and renamed into place, the done marker last, so a
worker killed mid-shard leaves no partial shard behind and a retried or resumed shard replaces
its files instead of appending to them: nothing is lost or counted twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cvactive.errors import ConfigError, MissingDependencyError, RecordError
from cvactive.io import read_jsonl, record_to_dict
from cvactive.record import ImageRecord
from cvactive.scale.plan import Shard

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


def shard_dir(out: Path) -> Path:
    return out / "shards"


def shard_path(out: Path, shard: Shard | int, suffix: str) -> Path:
    index = shard if isinstance(shard, int) else shard.index
    return shard_dir(out) / f"shard-{index:06d}{suffix}"


def image_table(records: Sequence[ImageRecord]) -> Any:
    """The pyarrow table of a shard: ``key``, every numeric per-image field, ``class_conf`` (C,) per row."""
    pa = require_pyarrow()
    from cvactive.selection.pool import Pool

    pool = Pool.from_records(records)
    columns: dict[str, Any] = {"key": pa.array(pool.keys.tolist(), pa.string())}
    for name, values in pool.fields.items():
        columns[name] = pa.array(values, pa.float64())
    c = pool.num_classes
    flat = pa.array(pool.class_conf.reshape(-1), pa.float32())
    columns["class_conf"] = pa.FixedSizeListArray.from_arrays(flat, c) if c else pa.nulls(len(pool), pa.null())
    names = json.dumps({str(k): v for k, v in pool.names.items()})
    return pa.table(columns, metadata={"cvactive.names": names})


def write_shard(
    out: Path,
    shard: Shard,
    records: Sequence[ImageRecord],
    result: ShardResult,
    *,
    formats: Sequence[str] = FORMATS,
    class_scores: bool = False,
    embedding_dtype: str = "float32",
) -> ShardResult:
    """Write a scored shard's files, then its done marker (each renamed into place when complete)."""
    folder = shard_dir(out)
    folder.mkdir(parents=True, exist_ok=True)
    if "jsonl" in formats:
        text = "".join(
            json.dumps(record_to_dict(r, class_scores=class_scores), separators=(",", ":")) + "\n" for r in records
        )
        atomic_write_bytes(shard_path(out, shard, ".jsonl"), text.encode("utf-8"))
    if "parquet" in formats:
        import io

        import pyarrow.parquet as pq

        buf = io.BytesIO()
        pq.write_table(image_table(records), buf)
        atomic_write_bytes(shard_path(out, shard, ".parquet"), buf.getvalue())
    embs = [r.embedding for r in records if r.embedding is not None]
    if embs and len(embs) == len(records):
        matrix = np.stack(embs).astype(embedding_dtype)
        result.embedding_dim = int(matrix.shape[1])
        tmp = shard_path(out, shard, f".emb.npy.tmp-{os.getpid()}")
        with tmp.open("wb") as fh:
            np.save(fh, matrix)
        os.replace(tmp, shard_path(out, shard, ".emb.npy"))
    atomic_write_json(shard_path(out, shard, ".done.json"), result.to_dict())
    return result


def read_done(out: Path, index: int) -> ShardResult | None:
    """The done marker of a shard, or ``None`` when the shard is not complete."""
    path = shard_path(out, index, ".done.json")
    if not path.is_file():
        return None
    try:
        return ShardResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError):
        return None  # a marker that cannot be read is a shard to redo


def remove_stale_temporaries(out: Path) -> int:
    """Delete the temporary files of shards a killed worker left half-written; return how many."""
    folder = shard_dir(out)
    stale = list(folder.glob("*.tmp-*")) if folder.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


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


def _flat(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def check_settings(old: dict[str, Any], new: dict[str, Any], out: Path) -> None:
    """Refuse to resume a folder scored with other settings (names the first difference and the fix)."""
    old, new = _flat(old), _flat(new)
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            raise ConfigError(
                f"{out} was scored with {key}={old.get(key)!r}, this run asks for {new.get(key)!r}; "
                "resume with the same settings, or pass --overwrite (overwrite=True) to start over"
            )


def manifest_shards(data: dict[str, Any]) -> list[Shard]:
    return [Shard.from_dict(s) for s in data["shards"]]


def iter_records(out: str | Path) -> Iterator[ImageRecord]:
    """Every record of a sharded output, in input order (the JSON-lines shards must be complete)."""
    root = manifest_path(out).parent
    data = load_manifest(root)
    if "jsonl" not in data["settings"]["formats"]:
        raise ConfigError(f"{root} was written without JSON-lines shards (formats {data['settings']['formats']})")
    for shard in manifest_shards(data):
        if read_done(root, shard.index) is None:
            raise RecordError(f"{root}: shard {shard.index} is not complete; resume the scoring run first")
        yield from read_jsonl(shard_path(root, shard, ".jsonl"))
