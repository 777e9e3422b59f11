"""Selection pools that do not fit in memory: the sharded scores read back as columns and memmaps.

A folder written by ``cvactive score --engine ray`` (layout: :mod:`cvactive.sharded`) holds, per
shard, a Parquet image table and an ``.emb.npy`` embedding block. :func:`consolidate` joins them
once, streaming shard by shard, into ``OUT/pool/``::

    table.parquet    key + every numeric per-image field (entropy_max, num_boxes, frame, ...)
    class_conf.npy   (N, C) float32, the highest confidence of each class in each item
    embeddings.npy   (N, D) float32 or float16 (when the pool was scored with --embed)

and :func:`open_pool` returns a :class:`~cvactive.selection.pool.Pool` over them: the matrices
are read-only memmaps (the kernels stream them in blocks), each field column is read from the
table on first use, and no box is ever loaded. :func:`stream_topk` ranks a pool by one score
reading the table in batches (memory ``O(k + batch)``). :func:`write_pool` writes a pool given
as arrays in the same layout (benchmarks, pools embedded elsewhere).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cvactive._random import RngLike, as_rng
from cvactive.errors import ConfigError, EmptyPoolError, RecordError
from cvactive.selection.pool import LazyFields, Pool
from cvactive.sharded import (
    FORMAT,
    VERSION,
    Shard,
    ShardResult,
    atomic_write_bytes,
    atomic_write_json,
    load_manifest,
    manifest_path,
    manifest_shards,
    require_pyarrow,
    shard_path,
)

POOL_DIR = "pool"
RESERVED = ("key", "class_conf")


def _root(path: str | Path) -> Path:
    return manifest_path(path).parent


def _stamp(data: dict[str, Any]) -> dict[str, Any]:
    return {"records": data["records"], "shards": len(data["shards"]), "settings": data["settings"]}


def consolidate(path: str | Path) -> Path:
    """Join the shards' tables and matrices into ``OUT/pool/`` (once; again when the shards change).

    Raises:
        RecordError: the scoring run is not complete.
        ConfigError: the run wrote no Parquet shards.
    """
    require_pyarrow()
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = _root(path)
    data = load_manifest(root)
    if not data.get("complete"):
        raise RecordError(
            f"{root}: {data.get('shards_done', 0)} of {len(data['shards'])} shards are scored; resume the run first"
        )
    if "parquet" not in data["settings"]["formats"]:
        raise ConfigError(f"{root} has no Parquet shards; score it with --formats jsonl,parquet to select from it")
    folder = root / POOL_DIR
    stamp_file = folder / "stamp.json"
    stamp = _stamp(data)
    if stamp_file.is_file() and json.loads(stamp_file.read_text()) == json.loads(json.dumps(stamp)):
        return folder
    folder.mkdir(exist_ok=True)
    stamp_file.unlink(missing_ok=True)
    shards = manifest_shards(data)
    files = [shard_path(root, s, ".parquet") for s in shards]
    schemas = [pq.read_schema(f) for f in files]
    columns = sorted({n for sc in schemas for n in sc.names if n not in RESERVED})
    names: dict[str, str] = {}
    widths = []
    for sc in schemas:
        names.update(json.loads((sc.metadata or {}).get(b"cvactive.names", b"{}")))
        t = sc.field("class_conf").type if "class_conf" in sc.names else None
        widths.append(t.list_size if isinstance(t, pa.FixedSizeListType) else 0)
    c = max([*widths, *(int(k) + 1 for k in names)], default=0)
    n = int(data["records"])
    schema = pa.schema(
        [pa.field("key", pa.string()), *(pa.field(col, pa.float64()) for col in columns)],
        metadata={"cvactive.names": json.dumps(names)},
    )
    class_conf = np.lib.format.open_memmap(folder / "class_conf.npy.tmp", "w+", np.float32, (n, c))
    dim = data.get("embedding_dim")
    emb = None
    if dim:
        dtype = np.dtype(data["settings"]["embedding_dtype"])
        emb = np.lib.format.open_memmap(folder / "embeddings.npy.tmp", "w+", dtype, (n, int(dim)))
    offset = 0
    with pq.ParquetWriter(folder / "table.parquet.tmp", schema) as writer:
        for shard, file in zip(shards, files):
            table = pq.read_table(file)
            m = table.num_rows
            cols = [table.column("key")]
            for col in columns:
                cols.append(table.column(col) if col in table.column_names else pa.nulls(m, pa.float64()))
            writer.write_table(pa.table(cols, schema=schema))
            if m and "class_conf" in table.column_names and c:
                arr = table.column("class_conf").combine_chunks()
                w = arr.type.list_size if isinstance(arr.type, pa.FixedSizeListType) else 0
                if w:
                    class_conf[offset : offset + m, :w] = arr.values.to_numpy().reshape(m, w)
            if emb is not None and m:
                emb[offset : offset + m] = np.load(shard_path(root, shard, ".emb.npy"), mmap_mode="r")
            offset += m
    if offset != n:
        raise RecordError(f"{root}: the shards hold {offset} rows, the manifest says {n}")
    for matrix in (class_conf, emb):
        if matrix is not None:
            matrix.flush()
    del class_conf, emb
    for name in ("table.parquet", "class_conf.npy", "embeddings.npy"):
        tmp = folder / f"{name}.tmp"
        if tmp.exists():
            tmp.replace(folder / name)
        elif name == "embeddings.npy":
            (folder / name).unlink(missing_ok=True)
    atomic_write_json(stamp_file, stamp)
    return folder


def _column(table_file: Path, name: str) -> np.ndarray:
    import pyarrow.parquet as pq

    col = pq.read_table(table_file, columns=[name]).column(name)
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)


def open_pool(path: str | Path) -> Pool:
    """A :class:`Pool` over a sharded scores folder: memmapped matrices, fields read on first use."""
    require_pyarrow()
    import pyarrow.parquet as pq

    folder = consolidate(path)
    table_file = folder / "table.parquet"
    pf = pq.ParquetFile(table_file)
    schema = pf.schema_arrow
    names = {int(k): v for k, v in json.loads((schema.metadata or {}).get(b"cvactive.names", b"{}")).items()}
    keys = pq.read_table(table_file, columns=["key"]).column("key").to_numpy(zero_copy_only=False)
    n = len(keys)
    fields = LazyFields([c for c in schema.names if c not in RESERVED], lambda name: _column(table_file, name), n)
    emb_file = folder / "embeddings.npy"
    embeddings = np.load(emb_file, mmap_mode="r") if emb_file.is_file() else None
    class_conf = np.load(folder / "class_conf.npy", mmap_mode="r")
    return Pool(
        keys=keys,
        fields=fields,
        class_conf=class_conf,
        embeddings=embeddings,
        names=names,
        missing_embeddings=0 if embeddings is not None else n,
    )


def stream_topk(
    path: str | Path,
    k: int,
    *,
    score: str = "entropy_max",
    labeled: npt.NDArray[np.bool_] | None = None,
    rng: RngLike = None,
    batch_rows: int = 1 << 16,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` unlabeled items with the highest ``score``, reading the table in batches.

    Picks, order and tie-breaks equal ``select(open_pool(path), k, "uncertainty", score=score,
    labeled=labeled, rng=rng)``; memory is ``O(k + batch_rows)`` whatever the pool size.

    Returns:
        ``(k,)`` int64 pool indices (best first) and their ``(k,)`` scores.
    """
    import pyarrow.parquet as pq

    from cvactive.selection.base import SelectionWarning

    gen = as_rng(rng)
    pf = pq.ParquetFile(consolidate(path) / "table.parquet")
    n = pf.metadata.num_rows
    if score not in pf.schema_arrow.names or score in RESERVED:
        known = ", ".join(c for c in pf.schema_arrow.names if c not in RESERVED)
        raise ConfigError(f"unknown field {score!r}; fields of this pool: {known}")
    if labeled is not None and labeled.shape != (n,):
        raise ConfigError(f"a labeled mask must have shape ({n},), got {labeled.shape}")
    free = n - (int(labeled.sum()) if labeled is not None else 0)
    if n == 0 or free == 0:
        raise EmptyPoolError(f"the pool has {n} items, {free} unlabeled: there is nothing to select")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    if k > free:
        message = f"k={k} is larger than the {free} unlabeled pool items; selecting all {free}"
        warnings.warn(message, SelectionWarning, stacklevel=2)
        k = free
    best_i = np.zeros(0, np.int64)
    best_v = np.zeros(0, np.float64)
    best_t = np.zeros(0, np.float64)
    offset = 0
    for batch in pf.iter_batches(columns=[score], batch_size=batch_rows):
        v = np.asarray(batch.column(0).to_numpy(zero_copy_only=False), dtype=np.float64)
        idx = np.arange(offset, offset + v.size, dtype=np.int64)
        offset += v.size
        if labeled is not None:
            keep = ~labeled[idx]
            idx, v = idx[keep], v[keep]
        if not np.all(np.isfinite(v)):
            raise ConfigError(f"field {score!r} is missing or not finite for some items; choose another score")
        tie = gen.random(idx.size)
        i, vv, tt = np.concatenate([best_i, idx]), np.concatenate([best_v, v]), np.concatenate([best_t, tie])
        order = np.lexsort((tt, -vv))[:k]
        best_i, best_v, best_t = i[order], vv[order], tt[order]
    return best_i, best_v


def write_pool(
    out: str | Path,
    *,
    embeddings: np.ndarray | None = None,
    fields: Mapping[str, np.ndarray] | None = None,
    class_conf: np.ndarray | None = None,
    keys: Sequence[str] | None = None,
    names: Mapping[int, str] | None = None,
    shard_size: int = 1 << 16,
    embedding_dtype: str = "float32",
) -> Path:
    """Write a pool given as arrays in the sharded layout (Parquet shards, ``.emb.npy``, manifest).

    Rows are written shard by shard, so ``embeddings`` may itself be a memmap.
    """
    pa = require_pyarrow()
    import io

    import pyarrow.parquet as pq

    sizes = {np.shape(a)[0] for a in (embeddings, class_conf, *(fields or {}).values()) if a is not None}
    if keys is not None:
        sizes.add(len(keys))
    if len(sizes) != 1:
        raise RecordError(f"pool arrays must agree on the number of items, got sizes {sorted(sizes)}")
    n = sizes.pop()
    root = Path(out)
    (root / "shards").mkdir(parents=True, exist_ok=True)
    meta = {"cvactive.names": json.dumps({str(k): v for k, v in (names or {}).items()})}
    shards, results = [], []
    for j, s in enumerate(range(0, n, shard_size)):
        e = min(n, s + shard_size)
        shard = Shard(j, (f"rows {s}:{e}",))
        block_keys = list(keys[s:e]) if keys is not None else [f"item-{i}" for i in range(s, e)]
        cols: dict[str, Any] = {"key": pa.array(block_keys, pa.string())}
        for name, values in (fields or {}).items():
            cols[name] = pa.array(np.asarray(values[s:e], dtype=np.float64))
        if class_conf is not None and class_conf.shape[1]:
            flat = pa.array(np.asarray(class_conf[s:e], np.float32).reshape(-1))
            cols["class_conf"] = pa.FixedSizeListArray.from_arrays(flat, class_conf.shape[1])
        buf = io.BytesIO()
        pq.write_table(pa.table(cols, metadata=meta), buf)
        atomic_write_bytes(shard_path(root, shard, ".parquet"), buf.getvalue())
        result = ShardResult(j, records=e - s)
        if embeddings is not None:
            block = np.asarray(embeddings[s:e], dtype=embedding_dtype)
            with shard_path(root, shard, ".emb.npy").open("wb") as fh:
                np.save(fh, block)
            result.embedding_dim = int(block.shape[1])
        atomic_write_json(shard_path(root, shard, ".done.json"), result.to_dict())
        shards.append(shard.to_dict() | {"done": True, "records": e - s, "boxes": 0, "failures": []})
        results.append(result)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "settings": {"formats": ["parquet"], "embedding_dtype": embedding_dtype, "written_by": "write_pool"},
        "complete": True,
        "shards_done": len(shards),
        "records": n,
        "boxes": 0,
        "embedding_dim": None if embeddings is None else int(embeddings.shape[1]),
        "shards": shards,
    }
    atomic_write_json(manifest_path(root), manifest)
    return root


def fetch_rows(path: str | Path, indices: Sequence[int] | np.ndarray) -> list[dict[str, Any]]:
    """The JSON dicts of pool items ``indices`` (in that order): their full records from the JSON-lines
    shards when the run wrote them, else their row of the image table. Reads only the shards they sit in.
    """
    import pyarrow.parquet as pq

    root = _root(path)
    data = load_manifest(root)
    wanted = np.asarray(indices, dtype=np.int64)
    counts = np.array([int(s.get("records", 0)) for s in data["shards"]], np.int64)
    starts = np.concatenate(([0], np.cumsum(counts)))
    if wanted.size and (wanted.min() < 0 or wanted.max() >= starts[-1]):
        raise ConfigError(f"pool indices must lie in [0, {int(starts[-1])})")
    which = np.searchsorted(starts, wanted, side="right") - 1
    found: dict[int, dict[str, Any]] = {}
    jsonl = "jsonl" in data["settings"]["formats"]
    for j in np.unique(which).tolist():
        local = (wanted[which == j] - starts[j]).tolist()
        if jsonl:
            lines = shard_path(root, j, ".jsonl").read_text(encoding="utf-8").splitlines()
            rows = [json.loads(lines[i]) for i in local]
        else:
            table = pq.read_table(shard_path(root, j, ".parquet"))
            if "class_conf" in table.column_names:
                table = table.drop_columns(["class_conf"])
            rows = table.take(local).to_pylist()
        for i, row in zip(local, rows):
            found[int(starts[j] + i)] = row
    return [found[int(i)] for i in wanted]
