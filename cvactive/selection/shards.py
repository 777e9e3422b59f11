"""Selecting from a sharded scores folder (``cvactive score --engine ray``) without loading a box.

:func:`select_from_shards` opens the folder as columns and memmaps
(:mod:`cvactive.selection.columnar`), runs the strategy (a strategy with a streaming form, such
as ``uncertainty``, reads the image table in batches instead, with the same picks) and returns the
chosen rows: each record's JSON line with its :class:`~cvactive.record.Selection` keys.
:func:`write_rows` writes them whole or not at all. ``cvactive select SHARDS/`` calls both.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from cvactive._random import RngLike
from cvactive.outputs import write_text_atomic
from cvactive.record import ImageRecord, Selection
from cvactive.selection.base import select
from cvactive.selection.columnar import fetch_rows, open_pool, stream_topk
from cvactive.selection.pool import Pool, resolve_labeled


def _stream_uncertainty(
    path: str | Path, pool: Pool, k: int, labeled: Any, rng: RngLike, options: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    mask = resolve_labeled(pool, labeled).in_pool if labeled else None
    return stream_topk(path, k, score=options.get("score", "entropy_max"), labeled=mask, rng=rng)


#: strategy -> its streaming form over the image table (same picks, ``O(k)`` memory).
STREAMED: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {"uncertainty": _stream_uncertainty}


@dataclass
class ShardSelection:
    """The chosen rows (best first) and the size of the pool they were chosen from."""

    rows: list[dict[str, Any]]
    pool_size: int


def row_key(row: Mapping[str, Any]) -> str:
    """The :attr:`ImageRecord.key <cvactive.record.ImageRecord.key>` of a record's JSON row."""
    key = ImageRecord.key.fget(SimpleNamespace(source=row["source"], frame=row.get("frame")))  # type: ignore[attr-defined]
    return str(key)


def select_from_shards(
    path: str | Path,
    k: int,
    strategy: str = "uncertainty",
    *,
    labeled: Sequence[ImageRecord] | None = None,
    rng: RngLike = None,
    **options: Any,
) -> ShardSelection:
    """Choose ``k`` records of a sharded scores folder with ``strategy`` (as :func:`~cvactive.selection.select`).

    Returns:
        the rows of the chosen records, best first, each with ``rank``, ``utility`` and
        ``strategy`` added (:func:`row_key` names a row).
    """
    pool = open_pool(path)
    streamed = STREAMED.get(strategy)
    if streamed is not None:
        indices, utilities = streamed(path, pool, k, labeled, rng, options)
    else:
        indices, utilities = select(pool, k, strategy, labeled=labeled, rng=rng, **options)
    rows = fetch_rows(path, indices)
    for rank, (row, utility) in enumerate(zip(rows, utilities.tolist()), 1):
        row.update(Selection(rank=rank, utility=round(float(utility), 6), strategy=strategy).to_dict())
    return ShardSelection(rows, len(pool))


def write_rows(path: str | Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write JSON rows as JSON lines, whole or not at all (the folder is made when missing)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(dict(row), separators=(",", ":")) + "\n" for row in rows)
    write_text_atomic(path, text, fsync=False)
