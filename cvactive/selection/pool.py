"""The pool view: a scored pool's records stacked into arrays once, so strategies work on arrays.

:class:`Pool` holds, for ``N`` items, their keys, every numeric per-item field (image scores
such as ``entropy_max``, ``max_confidence``, ``num_boxes``, numeric extra fields such as a
``brightness`` a user added, the ``rank`` and ``utility`` of a previous selection, the ``frame``
and ``timestamp``), the highest confidence each class reaches in each item ``(N, C)``, for every
class the records name (a harvest manifest names all of the model's, predicted or not), and,
when every record has one, the ``(N, D)`` float32 embedding matrix (a harvest manifest keeps
the embeddings its model computed). A harvest's provenance (:attr:`ImageRecord.harvested`: its
rules, saved path, delay) is typed, not an extra field, so it is never a selectable field.
:class:`LabeledSet` says which pool items are labeled and what the labeled set looks like
(embeddings, per-class image counts), whether it was given as records, a pool or indices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from cvactive.errors import ConfigError, RecordError
from cvactive.record import ImageRecord


class SelectionWarning(UserWarning):
    """A selection could not do exactly what was asked (for example ``k`` above the pool size)."""


#: Fields derived from the boxes of each record.
DERIVED_FIELDS = ("num_boxes", "max_confidence", "mean_confidence")


@dataclass(eq=False)
class Pool:
    """Arrays describing ``N`` pool items (one per image or video frame).

    Attributes:
        keys: ``(N,)`` object array of record keys (``source`` or ``source#frame``).
        fields: name -> ``(N,)`` float64 values; NaN where an item lacks the field. A
            :class:`LazyFields` mapping loads each column only when a strategy asks for it.
        class_conf: ``(N, C)`` float32, the highest confidence of a box of class ``c`` in item
            ``i`` (0 where the item has none): ``class_conf >= t`` says which classes an item
            is predicted to show at threshold ``t``.
        embeddings: ``(N, D)`` float32 (or float16) image embeddings, or ``None`` when any record
            lacks one. A read-only ``np.memmap`` stays one (the sharded pool of
            :mod:`cvactive.selection.columnar`); the kernels stream it block by block.
        names: class id -> class name.
        missing_embeddings: how many items have no embedding.
        box_confidence: ``(B,)`` float32 confidences of every box of every item, item by item
            (``box_offsets[i]:box_offsets[i + 1]`` are item ``i``'s), or ``None`` when the pool
            was not built from records (then :meth:`kept_boxes` cannot count boxes).
        box_offsets: ``(N + 1,)`` int64 start of each item's boxes in ``box_confidence``.
    """

    keys: np.ndarray
    fields: Mapping[str, np.ndarray] = field(default_factory=dict)
    class_conf: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    embeddings: np.ndarray | None = None
    names: dict[int, str] = field(default_factory=dict)
    missing_embeddings: int = 0
    box_confidence: np.ndarray | None = None
    box_offsets: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.keys = np.asarray(self.keys, dtype=object).reshape(-1)
        n = self.keys.shape[0]
        if isinstance(self.fields, LazyFields):
            if self.fields.n != n:
                raise RecordError(f"pool fields describe {self.fields.n} items, the keys {n}")
        else:
            self.fields = {str(k): np.asarray(v, dtype=np.float64).reshape(-1) for k, v in self.fields.items()}
            for name, values in self.fields.items():
                if values.shape != (n,):
                    raise RecordError(f"pool field {name!r}: expected shape ({n},), got {values.shape}")
        cc = np.asarray(self.class_conf, dtype=np.float32)
        if cc.size == 0:
            cc = np.zeros((n, cc.shape[1] if cc.ndim == 2 else 0), np.float32)
        if cc.ndim != 2 or cc.shape[0] != n:
            raise RecordError(f"pool class_conf: expected shape ({n}, C), got {cc.shape}")
        self.class_conf = cc
        if self.embeddings is not None:
            emb = self.embeddings
            if not (isinstance(emb, np.ndarray) and emb.dtype in (np.float32, np.float16)):
                emb = np.ascontiguousarray(emb, dtype=np.float32)
            if emb.ndim != 2 or emb.shape[0] != n:
                raise RecordError(f"pool embeddings: expected shape ({n}, D), got {emb.shape}")
            step = max(1, (1 << 24) // max(emb.shape[1], 1))  # checked in blocks: no pool-sized mask
            if not all(np.isfinite(emb[s : s + step]).all() for s in range(0, n, step)):
                raise RecordError("pool embeddings: values must be finite")
            self.embeddings = emb
        if (self.box_confidence is None) != (self.box_offsets is None):
            raise RecordError("pool box_confidence and box_offsets go together: give both or neither")
        if self.box_confidence is not None and self.box_offsets is not None:
            self.box_confidence = np.asarray(self.box_confidence, np.float32).reshape(-1)
            self.box_offsets = np.asarray(self.box_offsets, np.int64).reshape(-1)
            off = self.box_offsets
            if off.shape != (n + 1,) or off[0] != 0 or off[-1] != self.box_confidence.size or np.any(np.diff(off) < 0):
                raise RecordError(
                    f"pool box_offsets: expected ({n + 1},) non-decreasing offsets from 0 to "
                    f"{self.box_confidence.size}, got shape {off.shape}"
                )

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_records(cls, records: Sequence[ImageRecord]) -> Pool:
        """Stack records into a pool (one pass over the records; arrays built once)."""
        n = len(records)
        keys = np.empty(n, dtype=object)
        fields: dict[str, np.ndarray] = {name: np.zeros(n) for name in DERIVED_FIELDS}
        names: dict[int, str] = {}
        emb_rows: list[np.ndarray | None] = []
        box_item: list[np.ndarray] = []
        box_cls: list[np.ndarray] = []
        box_conf: list[np.ndarray] = []
        for i, rec in enumerate(records):
            if not isinstance(rec, ImageRecord):
                raise RecordError(f"pool item {i}: expected an ImageRecord, got {type(rec).__name__}")
            keys[i] = rec.key
            names.update(rec.names)
            if len(rec):
                fields["num_boxes"][i] = len(rec)
                fields["max_confidence"][i] = float(rec.confidence.max())
                fields["mean_confidence"][i] = float(rec.confidence.mean())
                box_item.append(np.full(len(rec), i, np.int64))
                box_cls.append(rec.class_id)
                box_conf.append(rec.confidence)
            values: dict[str, Any] = dict(rec.image_scores)
            values.update({k: v for k, v in rec.extra.items() if _is_number(v)})
            if rec.selection is not None:  # a previous selection's rank and utility (a selection file as pool)
                values.update(rank=rec.selection.rank, utility=rec.selection.utility)
            if rec.frame is not None:
                values["frame"] = rec.frame
            if rec.timestamp is not None:
                values["timestamp"] = rec.timestamp
            for name, value in values.items():
                column = fields.get(name)
                if column is None:
                    column = fields[name] = np.full(n, np.nan)
                column[i] = float(value)
            emb_rows.append(rec.embedding)
        items = np.concatenate(box_item) if box_item else np.zeros(0, np.int64)
        classes = np.concatenate(box_cls) if box_cls else np.zeros(0, np.int64)
        confs = np.concatenate(box_conf) if box_conf else np.zeros(0, np.float32)
        if classes.size and classes.min() < 0:
            raise RecordError(f"class ids must be >= 0, got {int(classes.min())}")
        c = max([int(classes.max()) + 1 if classes.size else 0, *(k + 1 for k in names)], default=0)
        class_conf = np.zeros((n, c), np.float32)
        np.maximum.at(class_conf, (items, classes), confs)
        present = [e for e in emb_rows if e is not None]
        embeddings = None
        if present and len(present) == n:
            dims = {e.shape[0] for e in present}
            if len(dims) > 1:
                raise RecordError(f"embeddings have different lengths {sorted(dims)}; score the pool with one model")
            embeddings = np.stack(present).astype(np.float32, copy=False)
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(fields["num_boxes"].astype(np.int64), out=offsets[1:])
        return cls(
            keys,
            fields,
            class_conf,
            embeddings,
            names,
            missing_embeddings=n - len(present),
            box_confidence=confs.astype(np.float32, copy=False),
            box_offsets=offsets,
        )

    @classmethod
    def from_arrays(
        cls,
        *,
        embeddings: npt.ArrayLike | None = None,
        fields: Mapping[str, npt.ArrayLike] | None = None,
        class_conf: npt.ArrayLike | None = None,
        keys: Sequence[str] | None = None,
        names: Mapping[int, str] | None = None,
    ) -> Pool:
        """A pool straight from arrays (benchmarks, synthetic tests, callers with their own storage)."""
        sizes = {np.shape(v)[0] for v in (embeddings, class_conf, *(fields or {}).values()) if v is not None}
        if keys is not None:
            sizes.add(len(keys))
        if len(sizes) != 1:
            raise RecordError(f"pool arrays must agree on the number of items, got sizes {sorted(sizes)}")
        n = sizes.pop()
        return cls(
            keys=np.array([f"item-{i}" for i in range(n)] if keys is None else list(keys), dtype=object),
            fields={str(k): np.asarray(v) for k, v in (fields or {}).items()},
            class_conf=np.zeros((n, 0), np.float32) if class_conf is None else np.asarray(class_conf),
            embeddings=None if embeddings is None else np.asarray(embeddings),
            names=dict(names or {}),
        )

    # -- access ----------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return int(self.class_conf.shape[1])

    def field(self, name: str, rows: np.ndarray | None = None) -> np.ndarray:
        """``(N,)`` float64 values of one numeric field (only ``rows`` when given).

        Raises:
            ConfigError: the field is unknown (the message lists the known ones) or some of
                the requested items lack it.
        """
        values = self.fields.get(name)
        if values is None:
            raise ConfigError(
                f"unknown field {name!r}; fields of this pool: {', '.join(sorted(self.fields)) or 'none'}"
            )
        values = values if rows is None else values[rows]
        bad = ~np.isfinite(values)
        if bad.any():
            complete = sorted(k for k, v in self.fields.items() if np.all(np.isfinite(v)))
            raise ConfigError(
                f"field {name!r} is missing or not finite for {int(bad.sum())} of {values.size} items; "
                f"fields every item has: {', '.join(complete)}"
            )
        return values

    def kept_boxes(self, confidence: float, rows: np.ndarray | None = None) -> np.ndarray:
        """``(N,)`` float64: how many boxes of each item reach ``confidence`` (only ``rows`` when given).

        Raises:
            ConfigError: the pool holds no per-box confidences (it was not built from records).
        """
        if self.box_confidence is None or self.box_offsets is None:
            raise ConfigError(
                "this pool holds no per-box confidences (it was built from arrays or shards, not from "
                "records), so the boxes each item would cost cannot be counted; build it with Pool.from_records"
            )
        kept = np.concatenate([[0], np.cumsum(self.box_confidence >= confidence, dtype=np.int64)])
        counts = (kept[self.box_offsets[1:]] - kept[self.box_offsets[:-1]]).astype(np.float64)
        return counts if rows is None else counts[rows]

    def require_embeddings(self, strategy: str) -> np.ndarray:
        """The ``(N, D)`` embeddings, or an error naming the strategy and ``cvactive score --embed``."""
        if self.embeddings is None:
            raise ConfigError(
                f"strategy {strategy!r} needs image embeddings, but {self.missing_embeddings or len(self)} of "
                f"{len(self)} pool items have none; score the pool with `cvactive score --embed` "
                "(a PyTorch .pt or .yaml model)"
            )
        return self.embeddings


class LazyFields(Mapping[str, np.ndarray]):
    """Per-item numeric fields loaded on first use: ``load(name)`` returns the ``(n,)`` column.

    A pool of millions read from columnar files keeps only the columns a strategy reads.
    """

    def __init__(self, names: Sequence[str], load: Callable[[str], np.ndarray], n: int) -> None:
        self.names = list(names)
        self.load = load
        self.n = int(n)
        self._cache: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._cache:
            if name not in self.names:
                raise KeyError(name)
            values = np.asarray(self.load(name), dtype=np.float64).reshape(-1)
            if values.shape != (self.n,):
                raise RecordError(f"pool field {name!r}: expected shape ({self.n},), got {values.shape}")
            self._cache[name] = values
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


LabeledLike = Pool | Sequence[ImageRecord] | npt.NDArray[np.integer] | npt.NDArray[np.bool_] | None


@dataclass(eq=False)
class LabeledSet:
    """What the strategies need to know about the labeled set.

    Attributes:
        in_pool: ``(N,)`` bool, the pool items that are labeled (excluded from every selection).
        embeddings: ``(L, D)`` float32 embeddings of the labeled items, or ``None``.
        class_conf: ``(L, C)`` float32, the highest confidence of each pool class in each labeled
            item (1 for ground-truth boxes), as :attr:`Pool.class_conf`.
    """

    in_pool: np.ndarray
    embeddings: np.ndarray | None
    class_conf: np.ndarray

    @property
    def size(self) -> int:
        """How many labeled items there are (in the pool or not)."""
        return int(self.class_conf.shape[0])

    def class_images(self, min_confidence: float) -> np.ndarray:
        """``(C,)`` how many labeled items show each class at ``min_confidence`` or above."""
        return (self.class_conf >= min_confidence).sum(axis=0).astype(np.int64)

    def plus(self, pool: Pool, rows: np.ndarray) -> LabeledSet:
        """This labeled set with the pool items ``rows`` added (picks made earlier in one batch)."""
        rows = np.asarray(rows, np.int64).reshape(-1)
        if rows.size == 0:
            return self
        in_pool = self.in_pool.copy()
        in_pool[rows] = True
        emb = self.embeddings
        if pool.embeddings is not None:
            new = np.asarray(pool.embeddings[rows], np.float32)
            emb = new if emb is None or emb.shape[0] == 0 else np.concatenate([np.asarray(emb, np.float32), new])
        return LabeledSet(in_pool, emb, np.concatenate([self.class_conf, pool.class_conf[rows]]))


def resolve_labeled(pool: Pool, labeled: LabeledLike) -> LabeledSet:
    """Match the labeled set against the pool.

    ``labeled`` may be records or a :class:`Pool` (matched by key; labeled items outside the
    pool still count for embeddings and class counts), an integer index array into the pool,
    a boolean mask over the pool, or ``None``.
    """
    n = len(pool)
    c = pool.num_classes
    if labeled is None or (isinstance(labeled, Sequence) and len(labeled) == 0):
        return LabeledSet(np.zeros(n, bool), None, np.zeros((0, c), np.float32))
    if isinstance(labeled, np.ndarray) and labeled.dtype != object:
        mask = _mask_from_indices(labeled, n)
        emb = None if pool.embeddings is None else pool.embeddings[mask]
        return LabeledSet(mask, emb, pool.class_conf[mask])
    lab = labeled if isinstance(labeled, Pool) else Pool.from_records(list(labeled))
    lab_keys, pool_keys = set(lab.keys.tolist()), set(pool.keys.tolist())
    mask = np.fromiter((key in lab_keys for key in pool.keys), dtype=bool, count=n)
    outside = np.fromiter((key not in pool_keys for key in lab.keys), dtype=bool, count=len(lab))
    emb = None
    if pool.embeddings is not None:
        parts = [pool.embeddings[mask]]
        if outside.any() and lab.embeddings is not None:
            if lab.embeddings.shape[1] != pool.embeddings.shape[1]:
                raise RecordError(
                    f"labeled embeddings have {lab.embeddings.shape[1]} dimensions, the pool's "
                    f"{pool.embeddings.shape[1]}; score both with the same model"
                )
            parts.append(lab.embeddings[outside])
        emb = np.concatenate(parts)
    class_conf = np.zeros((len(lab), c), np.float32)
    shared = min(c, lab.num_classes)
    class_conf[:, :shared] = lab.class_conf[:, :shared]
    return LabeledSet(mask, emb, class_conf)


def _mask_from_indices(labeled: np.ndarray, n: int) -> np.ndarray:
    if labeled.dtype == bool:
        if labeled.shape != (n,):
            raise ConfigError(f"a labeled mask must have shape ({n},), got {labeled.shape}")
        return labeled.copy()
    if not np.issubdtype(labeled.dtype, np.integer):
        raise ConfigError(f"labeled indices must be integers, got dtype {labeled.dtype}")
    idx = labeled.reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ConfigError(f"labeled indices must lie in [0, {n}), got {int(idx.min())}..{int(idx.max())}")
    mask = np.zeros(n, bool)
    mask[idx] = True
    return mask
