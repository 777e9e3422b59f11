"""Cost-aware selection: any strategy under a budget of annotation cost instead of a number of images.

Annotators pay per box, not per image: a batch of crowded frames costs more than a batch of empty
ones. Here every candidate gets an **expected cost** from what the detector predicted on it
(:func:`expected_cost`), and :func:`select_within_budget` lets a registered strategy choose while
the sum of the chosen candidates' expected costs stays within the budget, never above it.

Three cost modes (:data:`COST_MODES`):

* ``boxes``: the number of boxes to draw: the expected objects of an error model when the pool
  carries them (``learned_objects``), else the boxes kept at the operating ``confidence``;
* ``draw``: seconds to draw every box from scratch: ``image_draw + box_draw x boxes``;
* ``correct``: seconds to fix the model's own kept boxes: ``image_correct + w x wrong kept boxes +
  miss x missed objects + accept x right kept boxes``, from an error model's expected errors
  when the pool carries them (``learned_box_errors``, ``learned_misses``), else from the
  confidences alone (a kept box is wrong with probability ``1 - confidence``; misses unknown: 0).
  ``w`` is the mean of ``delete``, ``rebox`` and ``reclass`` (which fix a box needs is not known).

The unit costs and the operating confidence are those of the annotation cost model,
:class:`cvactive.cost.CostModel` (defaults from published timings, ``docs/cost.md``), so a
selection prices an image the way the study then counts it.

How the strategy chooses: it ranks the candidates with its own step (uncertainty, diversity,
coverage), asked for ``candidates_factor`` times as many picks as the budget would buy at the
candidates' mean cost. With ``per_cost=True`` its picks are then taken in order of utility per
expected cost (utilities shifted to be >= 0; in ``boxes`` mode per boxes + 1, so that an image
predicted empty does not look free), with ``per_cost=False`` in the strategy's own rank order; a
pick whose cost no longer fits is skipped. The strategy is asked again, with the
accepted picks in its labeled set, until no candidate fits in what is left of the budget.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import numpy as np

from cvactive._random import RngLike, as_rng
from cvactive.cost import CostModel
from cvactive.errors import ConfigError, EmptyPoolError
from cvactive.record import ImageRecord
from cvactive.selection.base import Context, Strategy, as_pool, check_choice, get_strategy
from cvactive.selection.order import FrameOrder, frame_order
from cvactive.selection.pool import LabeledLike, LabeledSet, Pool, SelectionWarning, resolve_labeled
from cvactive.selection.temporal import near_any

CostMode = Literal["boxes", "draw", "correct"]
COST_MODES: tuple[str, ...] = ("boxes", "draw", "correct")
#: Per-image fields an error model attaches (:mod:`cvactive.errormodel.model`; named here, not
#: imported, so that selection stays below the error model).
BOX_ERRORS, MISSES, OBJECTS = "learned_box_errors", "learned_misses", "learned_objects"


def expected_cost(
    pool: Pool,
    mode: str = "boxes",
    *,
    costs: CostModel | None = None,
    confidence: float | None = None,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """``(N,)`` float64 expected annotation cost of every pool item (``rows`` only, when given).

    Args:
        pool: the scored pool (built from records, so it holds the boxes' confidences).
        mode: ``boxes`` (a count), ``draw`` or ``correct`` (seconds); see the module docstring.
        costs: the unit costs (default :class:`cvactive.cost.CostModel`, the published timings).
        confidence: the operating confidence: boxes at or above it are the ones kept (default
            ``costs.conf``).
    """
    check_choice(mode, COST_MODES, "cost mode")
    unit = costs if costs is not None else CostModel()
    conf = unit.conf if confidence is None else float(confidence)
    if not 0.0 <= conf <= 1.0:
        raise ConfigError(f"confidence must lie in [0, 1], got {conf}")
    learned = all(f in pool.fields for f in (BOX_ERRORS, MISSES, OBJECTS))
    kept = pool.kept_boxes(conf, rows)
    if mode in ("boxes", "draw"):
        boxes = np.maximum(pool.field(OBJECTS, rows), 0.0) if learned else kept
        return boxes if mode == "boxes" else unit.image_draw + unit.box_draw * boxes
    if learned:
        wrong = np.clip(pool.field(BOX_ERRORS, rows), 0.0, kept)
        misses = np.maximum(pool.field(MISSES, rows), 0.0)
    else:
        wrong = _expected_wrong(pool, conf, rows)
        misses = np.zeros_like(kept)
    return unit.image_correct + wrong_box_cost(unit) * wrong + unit.miss * misses + unit.accept * (kept - wrong)


def wrong_box_cost(unit: CostModel) -> float:
    """Seconds for one wrong kept box when it is not known whether it is deleted, re-boxed or re-classed:
    the mean of the three."""
    return (unit.delete + unit.rebox + unit.reclass) / 3.0


def _expected_wrong(pool: Pool, confidence: float, rows: np.ndarray | None) -> np.ndarray:
    """Sum over each item's kept boxes of ``1 - confidence`` (the confidence read as a probability)."""
    assert pool.box_confidence is not None and pool.box_offsets is not None  # kept_boxes checked both
    conf = pool.box_confidence.astype(np.float64)
    doubt = np.where(conf >= confidence, 1.0 - conf, 0.0)
    total = np.concatenate([[0.0], np.cumsum(doubt)])
    out = total[pool.box_offsets[1:]] - total[pool.box_offsets[:-1]]
    return out if rows is None else out[rows]


@dataclass(frozen=True, eq=False)
class BudgetSelection:
    """What :func:`select_within_budget` chose.

    Attributes:
        indices: ``(k,)`` int64 pool indices in the order they were accepted.
        utilities: ``(k,)`` the utility the strategy gave each pick.
        costs: ``(k,)`` the expected cost of each pick (``costs.sum() <= budget``).
        budget: the budget asked for; spent: ``costs.sum()``.
        mode: the cost mode.
    """

    indices: np.ndarray
    utilities: np.ndarray
    costs: np.ndarray
    budget: float
    mode: str

    @property
    def spent(self) -> float:
        return float(self.costs.sum())


def select_within_budget(
    records: Pool | Sequence[ImageRecord],
    budget: float,
    strategy: str = "uncertainty",
    *,
    cost_mode: str = "boxes",
    per_cost: bool = True,
    costs: CostModel | None = None,
    confidence: float | None = None,
    candidates_factor: float = 4.0,
    item_costs: np.ndarray | None = None,
    max_items: int | None = None,
    labeled: LabeledLike = None,
    rng: RngLike = None,
    **options: Any,
) -> BudgetSelection:
    """Choose pool items with a strategy until the expected cost would exceed ``budget``.

    Args:
        records: the scored pool (records, or a :class:`Pool` built from them).
        budget: the cost to spend, in the unit of ``cost_mode`` (boxes or seconds); never exceeded.
        strategy: any registered strategy (:func:`cvactive.selection.available_strategies`).
        cost_mode: ``boxes``, ``draw`` or ``correct`` (:func:`expected_cost`).
        per_cost: rank the strategy's picks by utility per expected cost (``True``, cost-aware) or
            keep its rank order and only stop at the budget (``False``).
        costs, confidence: the cost model and the operating confidence (:func:`expected_cost`).
        candidates_factor: how many times the affordable number of picks the strategy ranks per call.
        item_costs: ``(N,)`` the cost of every pool item, given instead of the expected ones.
        max_items: at most this many picks (``None``: as many as the budget buys; in ``boxes``
            mode images predicted empty cost nothing, so a cap keeps them from all being taken).
        labeled, rng, options: as for :func:`cvactive.selection.select`.

    Raises:
        ConfigError: a bad budget, mode or option; EmptyPoolError: nothing left to select.
    """
    _check_budget(budget, candidates_factor)
    chosen_strategy = get_strategy(strategy)
    chosen_strategy.check_options(options)
    pool = as_pool(records)
    if len(pool) == 0:
        raise EmptyPoolError(f"strategy {strategy!r}: the pool is empty, there is nothing to select")
    cost = _pool_costs(pool, cost_mode, costs, confidence, item_costs)
    lab = resolve_labeled(pool, labeled)
    if lab.in_pool.all():
        raise EmptyPoolError(
            f"strategy {strategy!r}: all {len(pool)} pool items are already labeled, there is nothing to select"
        )
    if max_items is not None and (isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1):
        raise ConfigError(f"max_items must be a positive integer or None, got {max_items!r}")
    gen = as_rng(rng)
    budget = float(budget)
    cap = len(pool) if max_items is None else int(max_items)
    window, frames, free = _temporal_window(pool, lab, options)
    picks = _Picks(np.zeros(len(pool), bool))
    warned = False
    while len(picks.order) < cap:
        left = budget - math.fsum(picks.paid)
        fits = np.flatnonzero(~lab.in_pool & ~picks.taken & (cost <= left))
        if fits.size == 0:
            break
        spread = free is not None and bool(free[fits].any())
        if free is not None:
            if spread:
                fits = fits[free[fits]]
            elif not warned:
                warnings.warn(
                    f"temporal_window={window:g}: every candidate that fits the budget lies within a window of a "
                    "picked or labeled frame; the rest of the budget goes to such neighbours",
                    SelectionWarning,
                    stacklevel=2,
                )
                warned = True
        want = max(1, math.ceil(candidates_factor * left / max(float(cost[fits].mean()), 1e-12)))
        want = min(want, int(fits.size), _slots_cap(cap - len(picks.order), candidates_factor, int(fits.size)))
        ctx = Context(pool, fits, lab.plus(pool, np.flatnonzero(picks.taken)), gen, strategy)
        local, util = _strategy_picks(chosen_strategy, ctx, want, options)
        if per_cost:
            rank = per_cost_order(util, cost[fits[local]], cost_mode)
            local, util = local[rank], util[rank]
        before = len(picks.order)
        near = None
        if free is not None and frames is not None and window is not None:
            near = partial(frames.near, window=float(window), rows=np.arange(len(pool)))
        picks.accept(fits[local], util, cost, budget, cap, free, spread, near)
        if len(picks.order) == before:
            break
    idx = np.asarray(picks.order, np.int64)
    return BudgetSelection(idx, np.asarray(picks.utils, np.float64), cost[idx], budget, cost_mode)


@dataclass
class _Picks:
    """What :func:`select_within_budget` accepted so far: items, utilities, costs paid, a taken mask."""

    taken: np.ndarray
    order: list[int] = field(default_factory=list)
    utils: list[float] = field(default_factory=list)
    paid: list[float] = field(default_factory=list)

    def accept(
        self,
        items: np.ndarray,
        util: np.ndarray,
        cost: np.ndarray,
        budget: float,
        cap: int,
        free: np.ndarray | None,
        spread: bool,
        near: Callable[[int], np.ndarray] | None,
    ) -> None:
        """Take ``items`` in order while they fit the budget and ``cap``; each taken item's window
        (``near``) leaves ``free``, and with ``spread`` an item no longer free is skipped."""
        for item, u in zip(items.tolist(), util.tolist()):
            if len(self.order) == cap:
                break
            if spread and free is not None and not free[item]:
                continue  # in the window of a pick accepted earlier in this pass
            if math.fsum([*self.paid, float(cost[item])]) <= budget:
                self.taken[item] = True
                if free is not None and near is not None:
                    free &= ~near(item)
                self.paid.append(float(cost[item]))
                self.order.append(item)
                self.utils.append(u)


def _check_budget(budget: float, candidates_factor: float) -> None:
    if isinstance(budget, bool) or not isinstance(budget, (int, float, np.integer, np.floating)):
        raise ConfigError(f"the cost budget must be a number, got {budget!r}")
    if not math.isfinite(budget) or budget <= 0:
        raise ConfigError(f"the cost budget must be a finite number > 0, got {budget}")
    if not candidates_factor >= 1:
        raise ConfigError(f"candidates_factor must be >= 1, got {candidates_factor}")


def _pool_costs(
    pool: Pool, cost_mode: str, costs: CostModel | None, confidence: float | None, item_costs: np.ndarray | None
) -> np.ndarray:
    """``(N,)`` the cost of every pool item: the given ``item_costs``, else the expected ones."""
    if item_costs is None:
        return expected_cost(pool, cost_mode, costs=costs, confidence=confidence)
    check_choice(cost_mode, COST_MODES, "cost mode")
    cost = np.asarray(item_costs, np.float64).reshape(-1)
    if cost.shape != (len(pool),) or not np.all(np.isfinite(cost)) or np.any(cost < 0):
        raise ConfigError(f"item_costs must be {len(pool)} finite numbers >= 0, got shape {cost.shape}")
    return cost


def _temporal_window(
    pool: Pool, lab: LabeledSet, options: dict[str, Any]
) -> tuple[float | None, FrameOrder | None, np.ndarray | None]:
    """Pop ``temporal_window``/``order_key`` from ``options``: the window, the frame order and
    which items lie outside every window of a labeled frame (``None`` each without a window)."""
    window = options.pop("temporal_window", None)
    order_key = options.pop("order_key", None) if window is not None else None
    if window is None:
        return None, None, None
    if isinstance(window, bool) or not isinstance(window, (int, float)) or window < 0:
        raise ConfigError(f"temporal_window must be a number >= 0 (frames or seconds), got {window!r}")
    frames = frame_order(pool, order_key)
    # outside every window of a labeled or chosen frame
    free = ~near_any(frames, np.flatnonzero(lab.in_pool), np.arange(len(pool)), float(window))
    return window, frames, free


def _strategy_picks(
    chosen_strategy: Strategy, ctx: Context, want: int, options: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """The strategy's ``want`` picks (candidate positions) and their utilities, checked."""
    local, util = chosen_strategy.func(ctx, want, **options)
    local = np.asarray(local, np.int64)
    util = np.asarray(util, np.float64)
    if (
        local.shape != util.shape
        or np.unique(local).size != local.size
        or local.min() < 0
        or local.max() >= ctx.candidates.size
    ):
        raise RuntimeError(f"strategy {ctx.strategy!r} returned picks that are not distinct candidate positions")
    return local, util


def per_cost_order(utilities: np.ndarray, costs: np.ndarray, mode: str = "boxes") -> np.ndarray:
    """The order (positions, best first) of picks by utility per expected cost.

    Utilities are shifted to be >= 0 (a strategy's utilities may be negative gains); in ``boxes``
    mode the cost is boxes + 1, so that an image predicted empty does not look free (the budget
    itself counts boxes only); ties keep the strategy's order. A caller with its own budget
    accounting (the loop pays the true cost of each image) ranks a strategy's picks with this and
    fills its budget in that order.
    """
    u = np.asarray(utilities, np.float64)
    c = np.asarray(costs, np.float64)
    if u.shape != c.shape:
        raise ConfigError(f"utilities {u.shape} and costs {c.shape} must have the same shape")
    if u.size == 0:
        return np.zeros(0, np.int64)
    shifted = u - min(0.0, float(u.min()))
    per = shifted / (c + 1.0 if mode == "boxes" else np.maximum(c, 1e-12))
    return np.argsort(-per, kind="stable").astype(np.int64)


def _slots_cap(slots: int, factor: float, available: int) -> int:
    """How many picks to ask for when at most ``slots`` more items may be taken."""
    return min(available, max(1, math.ceil(factor * slots)))
