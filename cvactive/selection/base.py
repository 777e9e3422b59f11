"""One strategy contract and one registry.

Every strategy is called the same way::

    indices = strategy(records_or_pool, k, labeled=None, rng=None, return_utilities=False, **options)

and returns the chosen pool indices in rank order (best first), plus, with
``return_utilities=True``, the ``(k,)`` utility each pick had when it was chosen. The wrapper
does what every strategy shares: it stacks records into a :class:`~cvactive.selection.pool.Pool`
once, excludes labeled items, checks ``k`` and the options, and turns the seed into a
generator. A strategy itself is a function ``(ctx, k, **options) -> (indices, utilities)``
over arrays; it never sees a labeled item and always gets ``1 <= k <= len(ctx.candidates)``.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cvactive._config import check_keys
from cvactive._random import RngLike, as_rng
from cvactive.errors import ConfigError, EmptyPoolError, RecordError
from cvactive.measures import check_names
from cvactive.record import ImageRecord
from cvactive.selection.blocks import F32
from cvactive.selection.kernels import l2_normalize
from cvactive.selection.pool import LabeledLike, LabeledSet, Pool, SelectionWarning, resolve_labeled
from cvactive.selection.temporal import with_temporal_option

log = logging.getLogger(__name__)

StrategyFunc = Callable[..., tuple[np.ndarray, np.ndarray]]


@dataclass(eq=False)
class Context:
    """What a strategy works on: the pool, the unlabeled candidates, the labeled set and the rng."""

    pool: Pool
    candidates: np.ndarray
    labeled: LabeledSet
    rng: np.random.Generator
    strategy: str

    @property
    def n(self) -> int:
        """How many candidates there are."""
        return int(self.candidates.shape[0])

    def field(self, name: str) -> np.ndarray:
        """``(n,)`` float64 values of a numeric field over the candidates."""
        return self.pool.field(name, self.candidates)

    def embeddings(self, normalize: bool = False) -> F32:
        """``(n, D)`` float32 embeddings of the candidates (L2-normalised rows when asked)."""
        emb = self.pool.require_embeddings(self.strategy)
        x = emb if self.n == len(self.pool) else emb[self.candidates]
        return l2_normalize(x) if normalize else x

    def labeled_embeddings(self, normalize: bool = False) -> F32 | None:
        """``(L, D)`` embeddings of the labeled set, or ``None`` when it has none."""
        emb = self.labeled.embeddings
        if emb is None or emb.shape[0] == 0:
            return None
        return l2_normalize(emb) if normalize else emb


@dataclass(frozen=True, eq=False)
class Strategy:
    """A registered selection strategy (call it with the contract signature)."""

    name: str
    description: str
    func: StrategyFunc
    needs_embeddings: bool = False
    #: ``False`` for strategies that look at nothing the detector says (``random``): a caller
    #: such as the loop can then skip scoring the pool.
    needs_detections: bool = True
    #: ``True`` for strategies that rank by the errors an error predictor expects
    #: (:mod:`cvactive.errormodel`): a caller such as the loop fits one on a labeled split with
    #: the pool's model and attaches its predictions (:meth:`ErrorModel.attach`) before selecting.
    needs_error_model: bool = False

    @property
    def options(self) -> dict[str, Any]:
        """Keyword option -> default value."""
        params = inspect.signature(self.func).parameters.values()
        return {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY}

    def check_options(self, options: dict[str, Any]) -> None:
        """Raise :class:`ConfigError` naming the valid options if any key is unknown."""
        check_keys(options, self.options, f"strategy {self.name!r}")

    def __call__(
        self,
        records: Pool | Sequence[ImageRecord],
        k: int,
        labeled: LabeledLike = None,
        rng: RngLike = None,
        return_utilities: bool = False,
        **options: Any,
    ) -> Any:
        """Choose ``k`` pool items; see the module docstring for the contract."""
        self.check_options(options)
        pool = as_pool(records)
        if len(pool) == 0:
            raise EmptyPoolError(f"strategy {self.name!r}: the pool is empty, there is nothing to select")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ConfigError(f"k must be a positive integer, got {k!r}")
        lab = resolve_labeled(pool, labeled)
        candidates = np.flatnonzero(~lab.in_pool)
        if candidates.size == 0:
            raise EmptyPoolError(
                f"strategy {self.name!r}: all {len(pool)} pool items are already labeled, there is nothing to select"
            )
        k = int(k)
        if k > candidates.size:
            warnings.warn(
                f"k={k} is larger than the {candidates.size} unlabeled pool items; selecting all {candidates.size}",
                SelectionWarning,
                stacklevel=2,
            )
            k = int(candidates.size)
        ctx = Context(pool, candidates, lab, as_rng(rng), self.name)
        if self.needs_embeddings:
            pool.require_embeddings(self.name)
        local, utilities = self.func(ctx, k, **options)
        local = np.asarray(local, dtype=np.int64)
        utilities = np.asarray(utilities, dtype=np.float64)
        distinct = np.unique(local)
        if (
            local.shape != (k,)
            or utilities.shape != (k,)
            or distinct.size != k
            or not 0 <= local.min() <= local.max() < ctx.n
        ):
            # A broken strategy (a registered plug-in, say) must not hand out duplicates or labeled items.
            raise RuntimeError(
                f"strategy {self.name!r} returned {local.size} picks ({distinct.size} distinct) and "
                f"{utilities.size} utilities for k={k} over {ctx.n} candidates"
            )
        indices = candidates[local]
        log.debug("%s picked %d of %d candidates", self.name, indices.size, candidates.size)
        return (indices, utilities) if return_utilities else indices


#: name -> strategy, filled by :func:`register`. The built-ins (:mod:`cvactive.selection.strategies`)
#: register when the :mod:`cvactive.selection` package is imported, which Python does before any
#: of its modules (this one included) is used, so this module never imports them itself.
STRATEGIES: dict[str, Strategy] = {}


def register(
    name: str,
    description: str,
    *,
    needs_embeddings: bool = False,
    needs_detections: bool = True,
    needs_error_model: bool = False,
    temporal: bool | None = None,
) -> Callable[[StrategyFunc], StrategyFunc]:
    """Register ``func(ctx, k, **options) -> (candidate positions, utilities)`` under ``name``.

    ``needs_embeddings``: the strategy reads image embeddings (``cvactive score --embed``);
    ``needs_detections``: it reads what the detector said (scores, classes); ``False`` only for
    strategies like ``random`` that a caller may run on unscored records; ``needs_error_model``:
    it reads the per-image errors an error predictor attached (``learned_error``); ``temporal``:
    it gets the options ``temporal_window`` and ``order_key`` (frames within a window of one
    sequence are neighbours, :mod:`cvactive.selection.temporal`); by default the diversity
    strategies, those that read embeddings, do.
    """

    def wrap(func: StrategyFunc) -> StrategyFunc:
        if name in STRATEGIES:
            raise ConfigError(f"a selection strategy named {name!r} is already registered")
        run = with_temporal_option(func) if (needs_embeddings if temporal is None else temporal) else func
        STRATEGIES[name] = Strategy(name, description, run, needs_embeddings, needs_detections, needs_error_model)
        return func

    return wrap


def available_strategies() -> list[str]:
    """The names of every registered strategy."""
    return list(STRATEGIES)


def describe_strategies() -> dict[str, str]:
    """Strategy name -> its one-line description."""
    return {name: s.description for name, s in STRATEGIES.items()}


def get_strategy(name: str) -> Strategy:
    """The strategy registered as ``name``; an unknown name is a :class:`ConfigError` listing the valid ones."""
    if not isinstance(name, str) or name not in STRATEGIES:
        raise ConfigError(f"unknown selection strategy {name!r}; valid strategies: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


def as_pool(records: Pool | Sequence[ImageRecord]) -> Pool:
    """A :class:`Pool` from records (or the pool itself)."""
    if isinstance(records, Pool):
        return records
    if isinstance(records, (str, bytes)) or not isinstance(records, Sequence):
        raise RecordError(f"expected a Pool or a sequence of ImageRecord, got {type(records).__name__}")
    return Pool.from_records(records)


def select(
    records: Pool | Sequence[ImageRecord],
    k: int,
    strategy: str = "uncertainty",
    labeled: LabeledLike = None,
    rng: RngLike = None,
    **options: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Choose the ``k`` pool items to label next with the named strategy.

    Args:
        records: the scored pool (records, or a :class:`Pool` built once and reused).
        k: batch size; above the number of unlabeled items, all of them are returned with a
            :class:`SelectionWarning`.
        strategy: a name from :func:`available_strategies`.
        labeled: the labeled set: records or a pool (matched by key), or indices / a boolean
            mask over the pool. Labeled items are never selected.
        rng: seed or generator; the same seed gives the same picks.
        **options: the strategy's keyword options (see ``cvactive select --list``).

    Returns:
        ``(k,)`` int64 pool indices, best first, and ``(k,)`` float64 utilities.
    """
    result: tuple[np.ndarray, np.ndarray] = get_strategy(strategy)(
        records, k, labeled=labeled, rng=rng, return_utilities=True, **options
    )
    return result


def check_choice(value: str, valid: Sequence[str], what: str) -> str:
    """Return ``value`` if it is one of ``valid``, else raise a :class:`ConfigError` listing them."""
    check_names([value], valid, what)
    return value
