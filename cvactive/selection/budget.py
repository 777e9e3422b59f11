"""Strategies made for the small budget and for video (registered on import).

* ``typiclust`` (Hacohen, Dekel, Weinshall, "Active learning on a budget: opposite strategies
  suit high and low budgets", ICML 2022): k-means of the embeddings (labeled and unlabeled) into
  ``|labeled| + k`` clusters (at most ``max_clusters``), then, from the clusters with the fewest
  labeled items, largest first, the item of highest typicality: the inverse of its mean distance
  to its ``knn`` nearest neighbours inside its cluster.
* ``probcover`` (Yehuda, Dekel, Hacohen, Weinshall, "Active learning through a covering lens",
  NeurIPS 2022): the graph of ``delta``-balls around every item; each pick is the item whose ball
  holds the most items not yet covered by a labeled or picked item's ball. ``delta`` is chosen as
  in the paper: the largest radius at which at least ``alpha`` of the balls are pure (every item in
  the ball shares its centre's k-means cluster, ``k`` the number of classes).
* ``uniform_time``: every n-th frame of each video or flight in frame order, the baseline
  practitioners use on video (frame order: :func:`cvactive.selection.order.frame_order`).

Pure numpy; distances are Euclidean, on L2-normalised embeddings by default (both papers work on
normalised self-supervised features).
"""

from __future__ import annotations

import numpy as np

import cvactive.selection.strategies  # noqa: F401  (the built-ins register first: the registry keeps that order)
from cvactive.errors import ConfigError
from cvactive.selection.base import Context, register
from cvactive.selection.blocks import DEFAULT_BLOCK, F32, as_f32, row_sq_norms
from cvactive.selection.kernels import kmeans, nearest
from cvactive.selection.order import frame_order

Result = tuple[np.ndarray, np.ndarray]


def _all_points(ctx: Context, normalize: bool) -> tuple[F32, int]:
    """The candidates' embeddings followed by the labeled set's, and how many candidates lead."""
    x = ctx.embeddings(normalize)
    lab = ctx.labeled_embeddings(normalize)
    return (as_f32(x) if lab is None else as_f32(np.concatenate([x, lab]))), ctx.n


def _pair_d2(a: F32, b: F32) -> np.ndarray:
    """``(len(a), len(b))`` float64 squared Euclidean distances (clipped at 0)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    d2 = np.einsum("ij,ij->i", a64, a64)[:, None] - 2.0 * a64 @ b64.T + np.einsum("ij,ij->i", b64, b64)[None, :]
    return np.maximum(d2, 0.0)


def _rows_per_block(n: int, block: int) -> int:
    if block < 1:
        raise ConfigError(f"block must be a positive number of elements, got {block}")
    return max(1, block // max(n, 1))


# -- TypiClust ---------------------------------------------------------------------------------
def typicality(x: F32, knn: int) -> np.ndarray:
    """``(n,)`` typicality of each row among ``x``: 1 / mean Euclidean distance to its ``K`` nearest other rows.

    ``K = min(knn, n // 2)`` (at least 1), as TypiClust does for small clusters; a lone row has 0.
    """
    n = x.shape[0]
    if n < 2:
        return np.zeros(n, np.float64)
    k = max(1, min(int(knn), n // 2))
    d = np.sqrt(_pair_d2(x, x))
    np.fill_diagonal(d, np.inf)
    near = np.partition(d, k - 1, axis=1)[:, :k]
    return 1.0 / (near.mean(axis=1) + 1e-12)


@register(
    "typiclust",
    "TypiClust for small budgets: the most typical item (densest in its k-means cluster) of each of the largest "
    "clusters without labels",
    needs_embeddings=True,
)
def typiclust(
    ctx: Context,
    k: int,
    *,
    knn: int = 20,
    max_clusters: int = 500,
    min_cluster_size: int = 5,
    normalize: bool = True,
    max_iter: int = 10,
    block: int = DEFAULT_BLOCK,
) -> Result:
    """TypiClust: clusters ``|labeled| + k`` (at most ``max_clusters``) over labeled and unlabeled items.

    Clusters are visited by fewest labeled items, then largest first (clusters of at most
    ``min_cluster_size`` items only when no larger one has candidates left), one pick per visit,
    round after round: the candidate of highest :func:`typicality` among the cluster's remaining
    candidates. The utility of a pick is its typicality.
    """
    if knn < 1 or max_clusters < 1 or min_cluster_size < 0:
        raise ConfigError(
            f"typiclust needs knn >= 1, max_clusters >= 1, min_cluster_size >= 0; got {knn}, {max_clusters}, "
            f"{min_cluster_size}"
        )
    x, n = _all_points(ctx, normalize)
    m = max(1, min(x.shape[0] - n + k, int(max_clusters), x.shape[0]))
    labels, _, _ = kmeans(x, m, ctx.rng, max_iter=max_iter, init_sample=max(20_000, m), block=block)
    cand = labels[:n]
    sizes = np.bincount(labels, minlength=m)
    existing = np.bincount(labels[n:], minlength=m)
    # fewest labeled first, then largest, then by id (np.lexsort: the last key is the primary one)
    visit = np.lexsort((np.arange(m), -sizes, existing))
    big = visit[sizes[visit] > min_cluster_size]
    small = visit[sizes[visit] <= min_cluster_size]
    left = np.bincount(cand, minlength=m)
    avail = np.ones(n, bool)
    picks: list[int] = []
    utils: list[float] = []
    for tier in (big, small):
        while len(picks) < k and left[tier].any():
            for c in tier.tolist():
                if len(picks) == k:
                    break
                if left[c] == 0:
                    continue
                members = np.flatnonzero(avail & (cand == c))
                typ = typicality(x[members], knn)
                j = int(np.argmax(typ))
                picks.append(int(members[j]))
                utils.append(float(typ[j]))
                avail[members[j]] = False
                left[c] -= 1
    return np.asarray(picks, np.int64), np.asarray(utils, np.float64)


# -- ProbCover ---------------------------------------------------------------------------------
def other_cluster_distance(x: F32, labels: np.ndarray, *, block: int = DEFAULT_BLOCK) -> np.ndarray:
    """``(n,)`` Euclidean distance from each row to the nearest row of another cluster (inf: none)."""
    n = x.shape[0]
    out = np.full(n, np.inf)
    step = _rows_per_block(n, block)
    for s in range(0, n, step):
        d2 = _pair_d2(x[s : s + step], x)
        d2[labels[s : s + step, None] == labels[None, :]] = np.inf
        out[s : s + step] = np.sqrt(d2.min(axis=1))
    return out


def purity_delta(other: np.ndarray, alpha: float) -> float:
    """The largest ``delta`` at which at least ``alpha`` of the balls are pure.

    A ball ``{x' : |x' - x| < delta}`` is pure when every item in it shares ``x``'s cluster, that is
    when ``delta <= other[x]`` (:func:`other_cluster_distance`). Purity falls as ``delta`` grows, so
    the largest ``delta`` keeping a share ``alpha`` pure is the order statistic of ``other`` that
    leaves ``floor((1 - alpha) n)`` items below it: exact, no grid of radii.
    """
    if not 0.0 < alpha <= 1.0:
        raise ConfigError(f"alpha must lie in (0, 1], got {alpha}")
    r = np.sort(np.asarray(other, np.float64))
    allowed = int(np.floor((1.0 - alpha) * r.size + 1e-9))
    return float(r[min(allowed, r.size - 1)])


def probcover_delta(
    x: F32, n_clusters: int, alpha: float, rng: np.random.Generator, *, max_iter: int = 10, block: int = DEFAULT_BLOCK
) -> float:
    """ProbCover's ``delta`` for the points ``x``: k-means into ``n_clusters``, then :func:`purity_delta`."""
    m = max(1, min(int(n_clusters), x.shape[0]))
    labels, _, _ = kmeans(x, m, rng, max_iter=max_iter, init_sample=max(20_000, m), block=block)
    return purity_delta(other_cluster_distance(x, labels, block=block), alpha)


def ball_graph(x: F32, delta: float, *, block: int = DEFAULT_BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """The symmetric graph of ``delta``-balls as CSR ``(offsets (n + 1,), neighbours)``: ``j`` in row ``i``
    when ``|x_i - x_j| < delta`` or ``i == j``. Memory: one distance block plus the edges."""
    n = x.shape[0]
    step = _rows_per_block(n, block)
    d2_max = delta * delta if np.isfinite(delta) else np.inf
    counts = np.zeros(n, np.int64)
    parts: list[np.ndarray] = []
    for s in range(0, n, step):
        d2 = _pair_d2(x[s : s + step], x)
        inside = d2 < d2_max
        inside[np.arange(inside.shape[0]), np.arange(s, s + inside.shape[0])] = True
        rows, cols = np.nonzero(inside)
        counts[s : s + inside.shape[0]] = np.bincount(rows, minlength=inside.shape[0])
        parts.append(cols.astype(np.int64))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return offsets, (np.concatenate(parts) if parts else np.zeros(0, np.int64))


@register(
    "probcover",
    "ProbCover for small budgets: greedy max coverage of delta-balls on embeddings, delta the largest radius whose "
    "balls stay 95% pure",
    needs_embeddings=True,
)
def probcover(
    ctx: Context,
    k: int,
    *,
    delta: float | None = None,
    alpha: float = 0.95,
    purity_clusters: int | None = None,
    normalize: bool = True,
    max_iter: int = 10,
    block: int = DEFAULT_BLOCK,
) -> Result:
    """ProbCover: each pick covers the most candidates no labeled or earlier pick covers.

    ``delta`` ``None``: :func:`probcover_delta` over labeled and unlabeled items with
    ``purity_clusters`` k-means clusters (default: the detector's number of classes, at least 2).
    Candidates within ``delta`` of a labeled item start covered. Once every candidate is covered
    the rest of the picks are drawn at random (utility 0); otherwise the utility of a pick is how
    many candidates it newly covers. Ties go to the rng. Memory grows with the edges of the graph.
    """
    x, n = _all_points(ctx, normalize)
    if delta is None:
        kc = purity_clusters if purity_clusters is not None else max(2, ctx.pool.num_classes)
        if kc < 1:
            raise ConfigError(f"purity_clusters must be >= 1, got {kc}")
        delta = probcover_delta(x, kc, alpha, ctx.rng, max_iter=max_iter, block=block)
    elif not delta > 0:
        raise ConfigError(f"delta must be > 0, got {delta}")
    cx = x[:n]
    covered = np.zeros(n, bool)
    if x.shape[0] > n:
        d2, _ = nearest(cx, x[n:], x_sq=row_sq_norms(cx), block=block)
        covered = np.sqrt(np.maximum(d2.astype(np.float64), 0.0)) < delta
    offsets, nbrs = ball_graph(cx, float(delta), block=block)
    owner = np.repeat(np.arange(n), np.diff(offsets))
    degree = np.bincount(owner, weights=~covered[nbrs], minlength=n).astype(np.float64)
    tie = ctx.rng.random(n)
    chosen = np.zeros(n, bool)
    picks = np.empty(k, np.int64)
    utils = np.empty(k, np.float64)
    for t in range(k):
        top = degree.max()
        if top <= 0:  # everything is covered: the rest at random, as the paper's code does
            free = np.flatnonzero(~chosen)
            rest = free[np.argsort(-tie[free], kind="stable")[: k - t]]
            picks[t:], utils[t:] = rest, 0.0
            break
        best = np.flatnonzero(degree == top)
        i = int(best[np.argmax(tie[best])])
        picks[t], utils[t] = i, top
        chosen[i] = True
        ball = nbrs[offsets[i] : offsets[i + 1]]
        new = ball[~covered[ball]]
        covered[new] = True
        # every ball holding a newly covered item loses one uncovered item (the graph is symmetric)
        for c in new.tolist():
            degree[nbrs[offsets[c] : offsets[c + 1]]] -= 1.0
        degree[chosen] = -1.0
    return picks, utils


# -- uniform_time ------------------------------------------------------------------------------
@register(
    "uniform_time",
    "every n-th frame of each video or flight in frame order (the practitioners' baseline on video); order from "
    "frame/timestamp or order_key",
    needs_detections=False,
)
def uniform_time(ctx: Context, k: int, *, order_key: str | None = None) -> Result:
    """Every ``n/k``-th candidate along the timeline (sequences one after another, frames in order).

    The first pick sits at a random offset in the first stride, so seeds differ. Picks are ranked
    in van der Corput order (the middle of the timeline, then the quarters, ...), so any first
    ``j`` of them are spread over the whole timeline too. The utility is the stride: how many
    candidate frames each pick stands for.
    """
    line = frame_order(ctx.pool, order_key).timeline(ctx.candidates)
    stride = ctx.n / k
    offset = float(ctx.rng.uniform(0.0, stride))
    at = np.minimum(np.floor(offset + stride * np.arange(k)).astype(np.int64), ctx.n - 1)
    picked = line[at]
    return picked[np.argsort(_van_der_corput(k), kind="stable")], np.full(k, stride)


def _van_der_corput(k: int) -> np.ndarray:
    """``(k,)`` the base-2 van der Corput fraction of 0..k-1 (bit-reversed index)."""
    out = np.zeros(k, np.float64)
    i = np.arange(k)
    scale = 0.5
    while np.any(i):
        out += (i & 1) * scale
        i >>= 1
        scale /= 2
    return out
