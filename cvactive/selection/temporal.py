"""A temporal option for diversity strategies: frames close in time are neighbours, not both picked.

Frames a few indices apart in one video (or one drone flight) show nearly the same scene; a
diversity strategy on image embeddings usually keeps them apart, but not always (a detector's
embedding moves with a passing car, the frames' labels do not). With ``temporal_window=W``, a
strategy treats every frame within ``W`` positions of a chosen or labeled frame of the same
sequence as covered: it is not picked while any frame outside every window is left.

:func:`with_temporal_option` gives a strategy function the two keyword options
``temporal_window`` and ``order_key`` (see :func:`cvactive.selection.order.frame_order`);
:func:`cvactive.selection.base.register` applies it to every strategy registered with
``temporal=True`` (by default those that read embeddings). The strategy itself is unchanged: it
is called on the candidates outside every window, with the frames accepted so far in the labeled
set (so its own diversity step sees them), and its picks are taken in its rank order, skipping
any that fall in the window of a pick accepted before them; it is called again for the rest
until ``k`` are accepted.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from cvactive.errors import ConfigError
from cvactive.selection.order import FrameOrder, frame_order
from cvactive.selection.pool import SelectionWarning

if TYPE_CHECKING:
    from cvactive.selection.base import Context

StrategyFunc = Callable[..., tuple[np.ndarray, np.ndarray]]
#: The keyword options :func:`with_temporal_option` adds.
TEMPORAL_OPTIONS = ("temporal_window", "order_key")


def with_temporal_option(func: StrategyFunc) -> StrategyFunc:
    """``func`` with the keyword options ``temporal_window: float | None`` and ``order_key: str | None``.

    The returned function's signature lists ``func``'s options (annotations resolved) plus the two,
    so option checks and config schemas read it like any strategy's.
    """
    params = list(inspect.signature(func, eval_str=True).parameters.values())
    clash = [p.name for p in params if p.name in TEMPORAL_OPTIONS]
    if clash:
        raise ConfigError(f"strategy function {func.__name__} already has option(s) {clash}")
    extra = [
        inspect.Parameter("temporal_window", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=float | None),
        inspect.Parameter("order_key", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=str | None),
    ]
    tail = [p for p in params if p.kind is inspect.Parameter.VAR_KEYWORD]
    body = [p for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD]

    @functools.wraps(func)
    def run(
        ctx: Context, k: int, *, temporal_window: float | None = None, order_key: str | None = None, **options: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        if temporal_window is None:
            return func(ctx, k, **options)
        return temporal_pick(ctx, k, func, options, window=temporal_window, order_key=order_key)

    run.__signature__ = inspect.Signature([*body, *extra, *tail])  # type: ignore[attr-defined]
    return run


def temporal_pick(
    ctx: Context,
    k: int,
    func: StrategyFunc,
    options: dict[str, Any],
    *,
    window: float,
    order_key: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``k`` picks of ``func`` with no two within ``window`` of each other (or of a labeled frame) in one sequence.

    Returns candidate positions in the order they were accepted and the utility ``func`` gave
    each. When the windows leave fewer than ``k`` candidates, the rest are picked by ``func``
    among the covered frames, with a :class:`SelectionWarning`.
    """
    if isinstance(window, bool) or not isinstance(window, (int, float, np.integer, np.floating)) or window < 0:
        raise ConfigError(f"temporal_window must be a number >= 0 (frames or seconds), got {window!r}")
    window = float(window)
    order = frame_order(ctx.pool, order_key)
    cand = ctx.candidates
    free = ~near_any(order, np.flatnonzero(ctx.labeled.in_pool), cand, window)
    chosen: list[int] = []
    utils: list[float] = []
    while len(chosen) < k:
        avail = np.flatnonzero(free)
        if avail.size == 0:
            break
        sub = replace(ctx, candidates=cand[avail], labeled=ctx.labeled.plus(ctx.pool, cand[chosen]))
        local, util = func(sub, min(k - len(chosen), int(avail.size)), **options)
        for j, u in zip(np.asarray(local, np.int64).tolist(), np.asarray(util, np.float64).tolist()):
            p = int(avail[j])
            if not free[p]:
                continue  # in the window of a pick accepted earlier in this pass
            chosen.append(p)
            utils.append(u)
            free &= ~order.near(int(cand[p]), window, cand)
            if len(chosen) == k:
                break
    if len(chosen) < k:
        rest = np.setdiff1d(np.arange(cand.size), np.asarray(chosen, np.int64))
        warnings.warn(
            f"temporal_window={window:g} covers all but {len(chosen)} of the {cand.size} candidates; "
            f"the other {k - len(chosen)} picks lie within a window of a picked or labeled frame",
            SelectionWarning,
            stacklevel=4,
        )
        sub = replace(ctx, candidates=cand[rest], labeled=ctx.labeled.plus(ctx.pool, cand[chosen]))
        local, util = func(sub, k - len(chosen), **options)
        chosen.extend(rest[np.asarray(local, np.int64)].tolist())
        utils.extend(np.asarray(util, np.float64).tolist())
    return np.asarray(chosen, np.int64), np.asarray(utils, np.float64)


def near_any(order: FrameOrder, reference: np.ndarray, rows: np.ndarray, window: float) -> np.ndarray:
    """``(len(rows),)`` bool: which ``rows`` lie within ``window`` of a ``reference`` item of their sequence.

    One sort and one binary search (no loop over pairs): positions are laid on one line with
    the sequences more than ``2 * window`` apart, so a neighbour on the line is one in time.
    """
    rows = np.asarray(rows, np.int64)
    reference = np.asarray(reference, np.int64)
    if reference.size == 0 or rows.size == 0:
        return np.zeros(rows.size, bool)
    pos = order.position
    lo = float(pos.min())
    gap = float(pos.max()) - lo + 2.0 * window + 1.0
    line = order.sequence.astype(np.float64) * gap + (pos - lo)
    ref = np.sort(line[reference])
    q = line[rows]
    at = np.searchsorted(ref, q)
    left = np.abs(q - ref[np.clip(at - 1, 0, ref.size - 1)])
    right = np.abs(ref[np.clip(at, 0, ref.size - 1)] - q)
    return np.minimum(left, right) <= window
