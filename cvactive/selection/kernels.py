"""Vectorised kernels of the selection strategies: pure numpy, chunked, memory bounded.

Every kernel works on a ``(N, D)`` float32 matrix of embeddings and touches it with matrix
products over row blocks, so the temporary distance blocks never hold more than ``block``
numbers (16 MB of float32 by default) whatever ``N`` is. There are no Python loops over
pairs of items: the sequential algorithms (k-center greedy, k-means++ seeding) do one
``O(N * D)`` matrix-vector product per pick, and Lloyd's k-means one blocked matrix product
per iteration.

Squared Euclidean distances use ``|x|^2 - 2 x.c + |c|^2`` (clipped at 0). Where a strategy
wants cosine geometry it L2-normalises the rows first (:func:`l2_normalize`).

Out of core: ``x`` may be a read-only ``np.memmap`` of float32 or float16 rows (the sharded
pool of :mod:`cvactive.selection.columnar`). The kernels then read it block by block, convert
each block to float32 and never make a full-size copy: memory is ``O(N)`` vectors plus one
block, whatever ``D``. k-means runs Lloyd's iterations on a sample of ``fit_sample`` rows and
assigns the whole pool once at the end.
"""

from __future__ import annotations

import numpy as np

from cvactive.errors import ConfigError
from cvactive.selection.blocks import (
    DEFAULT_BLOCK,
    F32,
    F64,
    I64,
    STREAM_ROWS,
    as_f32,
    block_f32,
    row_blocks,
    row_sq_norms,
)
from cvactive.selection.cover import NearestChosen, afkmc2


def column_spread(x: np.ndarray) -> float:
    """The mean over columns of each column's variance (float64, one streamed pass of two sums)."""
    n = x.shape[0]
    if n < 2:
        return 0.0
    total = np.zeros(x.shape[1], np.float64)
    squares = np.zeros(x.shape[1], np.float64)
    shift = np.asarray(x[0], dtype=np.float64)  # shifted sums keep the variance accurate
    for s in row_blocks(n):
        b = block_f32(x, s, s + STREAM_ROWS).astype(np.float64) - shift
        total += b.sum(axis=0)
        squares += np.einsum("ij,ij->j", b, b)
    mean = total / n
    return float(np.mean(np.maximum(squares / n - mean**2, 0.0)))


def l2_normalize(x: F32) -> F32:
    """Rows scaled to unit L2 norm (a zero row stays zero); a new float32 matrix."""
    norms = np.sqrt(row_sq_norms(x))
    return as_f32(x / np.maximum(norms, 1e-12)[:, None])


def _block_rows(cols: int, block: int) -> int:
    if block < 1:
        raise ConfigError(f"block must be a positive number of elements, got {block}")
    return max(1, block // max(cols, 1))


def nearest(x: np.ndarray, y: F32, *, x_sq: F32 | None = None, block: int = DEFAULT_BLOCK) -> tuple[F32, I64]:
    """For every row of ``x``, the squared distance to its nearest row of ``y`` and that row's index.

    Works over blocks of ``x`` rows and ``y`` rows, so memory stays at ``block`` numbers.

    Returns:
        ``(N,)`` float32 squared distances and ``(N,)`` int64 indices into ``y``.
    """
    n, m = x.shape[0], y.shape[0]
    if m == 0:
        raise ConfigError("nearest() needs at least one reference row")
    x_sq = row_sq_norms(x) if x_sq is None else x_sq
    y = np.asarray(y, dtype=np.float32)
    y_sq = row_sq_norms(y)
    best = np.full(n, np.inf, dtype=np.float32)
    arg = np.zeros(n, dtype=np.int64)
    y_step = min(m, max(1, block // 256))
    x_step = _block_rows(y_step, block)
    for ys in range(0, m, y_step):
        yb, yb_sq = y[ys : ys + y_step], y_sq[ys : ys + y_step]
        for xs in range(0, n, x_step):
            # |x|^2 is the same along a row, so the argmin needs only |y|^2 - 2 x.y.
            d = block_f32(x, xs, xs + x_step) @ (yb.T * np.float32(-2.0))
            d += yb_sq[None, :]
            j = np.argmin(d, axis=1)
            dj = np.maximum(d[np.arange(d.shape[0]), j] + x_sq[xs : xs + x_step], 0.0)
            better = dj < best[xs : xs + x_step]
            best[xs : xs + x_step][better] = dj[better]
            arg[xs : xs + x_step][better] = j[better] + ys
    return best, arg


def kcenter_greedy(x: np.ndarray, k: int, rng: np.random.Generator, *, init_d2: F32 | None = None) -> tuple[I64, F64]:
    """Greedy k-center (core-set) picks: each pick is the row farthest from everything chosen so far.

    Args:
        x: ``(N, D)`` float32 points.
        k: number of picks, ``1 <= k <= N``.
        rng: draws the first pick when nothing is chosen yet (``init_d2`` is ``None``).
        init_d2: ``(N,)`` squared distance of every row to its nearest already-labeled point.

    Returns:
        ``(k,)`` row indices in pick order and ``(k,)`` utilities: the Euclidean distance of each
        pick to the nearest labeled or earlier pick at the time it was chosen (non-increasing).
        The very first pick of an unlabeled run gets the distance to the farthest row from it.
    """
    n = x.shape[0]
    cover = NearestChosen(x, init_d2=init_d2)
    picks = np.empty(k, np.int64)
    utils = np.empty(k, np.float64)
    for t in range(k):
        if t == 0 and init_d2 is None:
            i = int(rng.integers(n))
        else:
            i = int(np.argmax(cover.d2))
            utils[t] = float(np.sqrt(max(float(cover.d2[i]), 0.0)))
        picks[t] = i
        cover.add(i)
        cover.d2[i] = -1.0
        if t == 0 and init_d2 is None:
            utils[0] = float(np.sqrt(max(float(cover.d2.max()), 0.0)))
    return picks, utils


def kmeanspp(
    x: np.ndarray,
    k: int,
    rng: np.random.Generator,
    *,
    first: int | None = None,
    weights: F64 | None = None,
    exact_limit: int = 200_000,
) -> tuple[I64, F64]:
    """k-means++ seeding: after the first, each pick is drawn with probability proportional to D².

    Exact up to ``exact_limit`` rows (one pruned pass per pick, :mod:`cvactive.selection.cover`).
    Above it, each pick is drawn by a Markov chain whose stationary law is the same D² sampling
    (:func:`cvactive.selection.cover.afkmc2`): an approximation that needs one pass in all.

    Args:
        x: ``(N, D)`` float32 points (or float16 / a memmap, streamed).
        k: number of seeds, ``1 <= k <= N``.
        rng: draws the first seed (unless ``first`` is given) and every D² sample.
        first: the index of the first seed (BADGE starts from the largest gradient embedding).
        weights: ``(N,)`` row weights ``w``: seed the points ``w_i x_i`` without forming them
            (``|w_i x_i - w_j x_j|^2 = w_i^2 |x_i|^2 - 2 w_i w_j x_i.x_j + w_j^2 |x_j|^2``).

    Returns:
        ``(k,)`` distinct row indices and ``(k,)`` the Euclidean distance of each seed to the
        nearest earlier one when drawn (the first: its own norm). When every remaining row sits
        on a chosen seed, the rest are drawn uniformly from the rows not yet chosen.
    """
    n = x.shape[0]
    if n > exact_limit:
        return afkmc2(x, k, rng, first=first, weights=weights)
    cover = NearestChosen(x, weights=weights)
    min_d2 = cover.d2
    chosen = np.zeros(n, bool)
    picks = np.empty(k, np.int64)
    utils = np.empty(k, np.float64)
    for t in range(k):
        if t == 0:
            i = int(rng.integers(n)) if first is None else int(first)
            utils[0] = float(np.sqrt(cover.sq[i]))
        else:
            cum = np.cumsum(min_d2, dtype=np.float64)
            total = float(cum[-1])
            if total > 0.0:
                i = int(np.searchsorted(cum, rng.random() * total, side="right"))
                if i >= n:
                    i = int(np.flatnonzero(min_d2 > 0)[-1])
            else:
                free = np.flatnonzero(~chosen)
                i = int(free[rng.integers(free.size)])
            utils[t] = float(np.sqrt(max(float(min_d2[i]), 0.0)))
        picks[t] = i
        chosen[i] = True
        cover.add(i)
        min_d2[i] = 0.0
    return picks, utils


def _cluster_means(x: np.ndarray, labels: I64, centers: F64) -> tuple[F64, I64]:
    """New float64 centres (the mean of each cluster's rows; an empty cluster keeps its centre) and sizes.

    Streams ``x`` in blocks of :data:`STREAM_ROWS` rows (one block: a single exact ``reduceat``).
    """
    k = centers.shape[0]
    counts = np.bincount(labels, minlength=k).astype(np.int64)
    sums = np.zeros(centers.shape, np.float64)
    for s in row_blocks(x.shape[0]):
        lab = labels[s : s + STREAM_ROWS]
        order = np.argsort(lab, kind="stable")
        present, starts = np.unique(lab[order], return_index=True)
        block = block_f32(x, s, s + STREAM_ROWS)[order]
        sums[present] += np.add.reduceat(block, starts, axis=0, dtype=np.float64)
    full = counts > 0
    new = centers.copy()
    new[full] = sums[full] / counts[full, None]
    return new, counts


def sq_dists_to_assigned(x: np.ndarray, centers: F64, labels: I64, *, block: int = DEFAULT_BLOCK) -> F64:
    """``(N,)`` float64 squared distance of every row to its own centre, from the differences.

    Exact where it matters: two rows at the same distance from their centre (the two members of
    a two-item cluster) get the same value, so ties are broken by index, not by rounding.
    """
    out = np.empty(x.shape[0], np.float64)
    step = _block_rows(x.shape[1], block)
    for s in range(0, x.shape[0], step):
        diff = block_f32(x, s, s + step).astype(np.float64) - centers[labels[s : s + step]]
        out[s : s + step] = np.einsum("ij,ij->i", diff, diff)
    return out


def kmeans(
    x: np.ndarray,
    n_clusters: int,
    rng: np.random.Generator,
    *,
    max_iter: int = 10,
    tol: float = 1e-4,
    init_sample: int = 20_000,
    fit_sample: int = 100_000,
    block: int = DEFAULT_BLOCK,
) -> tuple[I64, F32, F64]:
    """Lloyd's k-means with k-means++ seeding; every assignment step is a blocked matrix product.

    Seeding runs on a random sample of ``init_sample`` rows when ``N`` is larger (the seeds stay
    rows of ``x``). When ``N`` exceeds ``fit_sample``, Lloyd's iterations run on a random sample
    of ``fit_sample`` rows (held in memory as float32) and the whole pool is assigned to the
    final centres in one streamed pass, so a pool of millions costs ``max_iter`` passes over the
    sample plus one over the pool. An emptied cluster is re-seeded at the row farthest from its
    centre. Iteration stops after ``max_iter`` rounds or when the centres move less than ``tol``
    times the data's mean squared spread.

    Returns:
        ``(N,)`` cluster labels, ``(n_clusters, D)`` centres and ``(N,)`` float64 squared
        distance of every row to its centre. Centres are kept in float64 and cast to float32
        for the matrix products.
    """
    n = x.shape[0]
    if not 1 <= n_clusters <= n:
        raise ConfigError(f"n_clusters must lie in [1, {n}], got {n_clusters}")
    if max_iter < 0:
        raise ConfigError(f"max_iter must be >= 0, got {max_iter}")
    if init_sample < n_clusters:
        raise ConfigError(f"init_sample ({init_sample}) must be at least n_clusters ({n_clusters})")
    if fit_sample < n_clusters:
        raise ConfigError(f"fit_sample ({fit_sample}) must be at least n_clusters ({n_clusters})")
    if n > fit_sample:
        rows = np.sort(rng.choice(n, size=fit_sample, replace=False))
        _, centers32, _ = kmeans(
            as_f32(x[rows]), n_clusters, rng, max_iter=max_iter, tol=tol, init_sample=init_sample, block=block
        )
        labels, _ = assign(x, centers32, block=block)
        centers = centers32.astype(np.float64)
        return labels, centers32, sq_dists_to_assigned(x, centers, labels, block=block)
    if n > init_sample:
        sample = np.sort(rng.choice(n, size=init_sample, replace=False))
        seeds, _ = kmeanspp(as_f32(x[sample]), n_clusters, rng)
        seeds = sample[seeds]
    else:
        seeds, _ = kmeanspp(x, n_clusters, rng)
    centers = np.asarray(x[seeds], dtype=np.float64)
    if n <= STREAM_ROWS:
        spread = float(np.mean(np.var(x, axis=0, dtype=np.float64))) if n > 1 else 0.0
    else:
        spread = column_spread(x)
    labels, d2 = assign(x, as_f32(centers), block=block)
    for _ in range(max_iter):
        new, counts = _cluster_means(x, labels, centers)
        empty = np.flatnonzero(counts == 0)
        if empty.size:
            far = np.argsort(-d2, kind="stable")[: empty.size]
            new[empty[: far.size]] = np.asarray(x[far], np.float64)
        shift = float(np.sum((new - centers) ** 2)) / max(n_clusters, 1)
        centers = new
        labels, d2 = assign(x, as_f32(centers), block=block)
        if shift <= tol * spread:
            break
    return labels, as_f32(centers), sq_dists_to_assigned(x, centers, labels, block=block)


def kmeans_objective(x: np.ndarray, centers: np.ndarray, *, block: int = DEFAULT_BLOCK) -> float:
    """The k-means objective (inertia): the sum over rows of the squared distance to the nearest centre."""
    _, labels = nearest(x, as_f32(centers), block=block)
    return float(sq_dists_to_assigned(x, np.asarray(centers, np.float64), labels, block=block).sum())


def assign(x: np.ndarray, centers: F32, *, block: int = DEFAULT_BLOCK) -> tuple[I64, F32]:
    """The nearest centre of every row and the squared distance to it (see :func:`nearest`)."""
    d2, labels = nearest(x, centers, block=block)
    return labels, d2


def topk_desc(values: F64, k: int, rng: np.random.Generator) -> I64:
    """Indices of the ``k`` largest values, largest first; ties broken at random by ``rng``."""
    tie = np.asarray(rng.random(values.shape[0]), dtype=np.float64)
    return np.lexsort((tie, -values))[:k].astype(np.int64)


def round_robin(groups: I64, priority: F64, group_rank: I64) -> I64:
    """An order of all items that takes one from each group in turn.

    Within a group items go by ``priority`` (highest first, stable on ties); each round visits
    the groups in ``group_rank`` order (lower first). Taking the first ``k`` of the result spreads
    ``k`` picks as evenly as the groups allow.

    Args:
        groups: ``(N,)`` non-negative group id of every item.
        priority: ``(N,)`` order inside a group.
        group_rank: ``(G,)`` rank of every group id.
    """
    n = groups.shape[0]
    by_group = np.lexsort((-priority, groups))
    g_sorted = groups[by_group]
    first = np.searchsorted(g_sorted, g_sorted, side="left")
    position = np.empty(n, np.int64)
    position[by_group] = np.arange(n) - first
    return np.lexsort((group_rank[groups], position)).astype(np.int64)
