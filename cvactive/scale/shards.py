"""Writing and reading back the shards of a sharded scoring run (the layout: :mod:`cvactive.sharded`).

Every file is written to a temporary name and renamed into place, the done marker last, so a
worker killed mid-shard leaves no partial shard behind and a retried or resumed shard replaces
its files instead of appending to them: nothing is lost or counted twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cvactive.errors import ConfigError, RecordError
from cvactive.io import read_jsonl, record_to_dict
from cvactive.record import ImageRecord

# Re-exported: the layout, the shard unit and the manifest live in cvactive.sharded (below selection).
from cvactive.sharded import EMBEDDING_DTYPES as EMBEDDING_DTYPES
from cvactive.sharded import FORMAT as FORMAT
from cvactive.sharded import FORMATS as FORMATS
from cvactive.sharded import MANIFEST as MANIFEST
from cvactive.sharded import VERSION as VERSION
from cvactive.sharded import Shard as Shard
from cvactive.sharded import ShardResult as ShardResult
from cvactive.sharded import atomic_write_bytes as atomic_write_bytes
from cvactive.sharded import atomic_write_json as atomic_write_json
from cvactive.sharded import is_sharded as is_sharded
from cvactive.sharded import load_manifest as load_manifest
from cvactive.sharded import manifest_path as manifest_path
from cvactive.sharded import manifest_shards as manifest_shards
from cvactive.sharded import require_pyarrow as require_pyarrow
from cvactive.sharded import shard_dir as shard_dir
from cvactive.sharded import shard_path as shard_path


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
