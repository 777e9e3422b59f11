"""The built-in selection strategies (registered on import).

Each takes a :class:`~cvactive.selection.base.Context` (the unlabeled candidates as arrays) and
``k``, and returns candidate positions in rank order with their utilities. Uncertainty comes
from any numeric per-image field (``entropy_max`` by default: the image's most uncertain box);
diversity from the image embeddings that ``cvactive score --embed`` writes.
"""

from __future__ import annotations

import numpy as np

from cvactive.errormodel.model import BOX_ERRORS, MISSES, OBJECTS, learned_utility
from cvactive.errors import ConfigError
from cvactive.selection.base import Context, check_choice, register
from cvactive.selection.blocks import DEFAULT_BLOCK, F32, I64, as_f32, row_sq_norms
from cvactive.selection.kernels import kcenter_greedy, kmeans, kmeanspp, nearest, round_robin, topk_desc
from cvactive.selection.targets import TargetLike, squared_distance, target_shares

Result = tuple[np.ndarray, np.ndarray]
DEFAULT_SCORE = "entropy_max"
PICKS = ("centroid", "uncertain", "random")


@register(
    "random",
    "seeded uniform sample of the unlabeled pool (the baseline every strategy must beat)",
    needs_detections=False,
)
def random_sample(ctx: Context, k: int) -> Result:
    keys = ctx.rng.random(ctx.n)
    order = np.argsort(-keys, kind="stable")[:k]
    return order, keys[order]


@register("uncertainty", "top-k on any image score (default entropy_max), ties broken by the rng")
def uncertainty(ctx: Context, k: int, *, score: str = DEFAULT_SCORE) -> Result:
    s = ctx.field(score)
    order = topk_desc(s, k, ctx.rng)
    return order, s[order]


@register(
    "coreset",
    "k-center greedy on embeddings: each pick is the item farthest from the labeled set and earlier picks",
    needs_embeddings=True,
)
def coreset(ctx: Context, k: int, *, normalize: bool = False, block: int = DEFAULT_BLOCK) -> Result:
    x = ctx.embeddings(normalize)
    lab = ctx.labeled_embeddings(normalize)
    init = None if lab is None else nearest(x, lab, block=block)[0]
    return kcenter_greedy(x, k, ctx.rng, init_d2=init)


def _cluster_pick(
    ctx: Context,
    x: F32,
    k: int,
    scores: np.ndarray | None,
    *,
    pick: str,
    n_clusters: int | None,
    max_iter: int,
    init_sample: int,
    block: int,
) -> tuple[I64, np.ndarray, np.ndarray]:
    """k-means on ``x``, then round-robin over clusters (largest first) by the ``pick`` rule.

    Returns positions into ``x``, the cluster label of each row and each cluster's size.
    """
    check_choice(pick, PICKS, "pick")
    m = k if n_clusters is None else int(n_clusters)
    if not 1 <= m <= x.shape[0]:
        raise ConfigError(f"n_clusters must lie in [1, {x.shape[0]}] (the candidates), got {m}")
    labels, _, d2 = kmeans(x, m, ctx.rng, max_iter=max_iter, init_sample=max(init_sample, m), block=block)
    sizes = np.bincount(labels, minlength=m)
    if pick == "centroid":
        priority = -d2.astype(np.float64)
    elif pick == "uncertain":
        if scores is None:
            raise ConfigError("pick='uncertain' needs a score")
        priority = scores
    else:
        priority = np.asarray(ctx.rng.random(x.shape[0]), dtype=np.float64)
    rank = np.empty(m, np.int64)
    rank[np.argsort(-sizes, kind="stable")] = np.arange(m)
    order = round_robin(labels, priority, rank)[:k]
    return order, labels, sizes


@register(
    "cluster",
    "k-means on embeddings, then one item per cluster: the centroid-nearest, most uncertain or a random member",
    needs_embeddings=True,
)
def cluster(
    ctx: Context,
    k: int,
    *,
    pick: str = "centroid",
    n_clusters: int | None = None,
    score: str = DEFAULT_SCORE,
    normalize: bool = False,
    max_iter: int = 10,
    init_sample: int = 20_000,
    block: int = DEFAULT_BLOCK,
) -> Result:
    scores = ctx.field(score) if pick == "uncertain" else None
    x = ctx.embeddings(normalize)
    order, labels, sizes = _cluster_pick(
        ctx, x, k, scores, pick=pick, n_clusters=n_clusters, max_iter=max_iter, init_sample=init_sample, block=block
    )
    utility = scores[order] if scores is not None else sizes[labels[order]] / ctx.n
    return order, utility


@register(
    "hybrid",
    "the most uncertain factor*k items, then k-means to keep k diverse ones (uncertainty, then diversity)",
    needs_embeddings=True,
)
def hybrid(
    ctx: Context,
    k: int,
    *,
    score: str = DEFAULT_SCORE,
    factor: float = 10.0,
    pick: str = "uncertain",
    normalize: bool = False,
    max_iter: int = 10,
    init_sample: int = 20_000,
    block: int = DEFAULT_BLOCK,
) -> Result:
    if factor < 1:
        raise ConfigError(f"factor must be >= 1 (candidates = factor * k), got {factor}")
    s = ctx.field(score)
    m = min(ctx.n, max(k, round(factor * k)))
    top = topk_desc(s, m, ctx.rng)
    x = as_f32(ctx.embeddings(normalize)[top])
    order, _, _ = _cluster_pick(
        ctx, x, k, s[top], pick=pick, n_clusters=k, max_iter=max_iter, init_sample=init_sample, block=block
    )
    chosen = top[order]
    return chosen, s[chosen]


@register(
    "badge",
    "k-means++ seeding on uncertainty-weighted embeddings (BADGE for detection): uncertain and diverse",
    needs_embeddings=True,
)
def badge(ctx: Context, k: int, *, score: str = DEFAULT_SCORE, normalize: bool = False) -> Result:
    s = ctx.field(score)
    if np.any(s < 0):
        raise ConfigError(f"badge weights embeddings by {score!r}, which must be >= 0")
    # Seeds the weighted points s_i x_i without forming them (no pool-sized copy; see kmeanspp).
    x = ctx.embeddings(normalize)
    first = int(np.argmax(row_sq_norms(x) * np.square(s.astype(np.float32))))
    return kmeanspp(x, k, ctx.rng, first=first, weights=s)


@register(
    "class_balanced",
    "picks toward a target class mix (uniform, inverse frequency or given per class) from the predicted classes; "
    "most uncertain first among equals",
)
def class_balanced(
    ctx: Context,
    k: int,
    *,
    target: TargetLike = "uniform",
    score: str = DEFAULT_SCORE,
    min_confidence: float = 0.25,
) -> Result:
    """Greedy: each pick is the candidate whose predicted classes bring the labeled set's class mix
    closest to ``target`` (squared distance of image shares); equal gains go to the most uncertain.
    Images that show no class cannot move the mix, so they come only after every image that shows one.

    An image shows class ``c`` when a box of that class reaches ``min_confidence``; the mix counts
    images per class (labeled set plus earlier picks). Candidates with the same set of predicted
    classes have the same gain, so they are grouped once and each group is served in score order.
    The utility of a pick is its gain (the distance it removed; 0 or below once nothing helps).
    """
    s = ctx.field(score)
    present = ctx.pool.class_conf[ctx.candidates] >= min_confidence
    n, c = present.shape
    counts = ctx.labeled.class_images(min_confidence).astype(np.float64) if c else np.zeros(0)
    frequency = counts + present.sum(axis=0)
    if isinstance(target, str) and not frequency.any():
        t = np.zeros(c)  # no class predicted anywhere: every gain is 0, uncertainty decides
    else:
        t = target_shares(target, frequency, ctx.pool.names)
    patterns, which = np.unique(present, axis=0, return_inverse=True)
    which = which.reshape(-1)
    gain_rows = patterns.astype(np.float64)
    tie = ctx.rng.random(n)
    order = np.lexsort((tie, -s, which))  # by class pattern, then most uncertain, then the draw
    start = np.searchsorted(which[order], np.arange(patterns.shape[0]), side="left")
    stop = np.searchsorted(which[order], np.arange(patterns.shape[0]), side="right")
    cursor = start.copy()
    picks = np.empty(k, np.int64)
    utils = np.empty(k, np.float64)
    empty = ~patterns.any(axis=1) if c else np.ones(patterns.shape[0], bool)
    for step in range(k):
        open_ = cursor < stop
        gain = _mix_distance(counts, t) - _mix_distance(counts + gain_rows, t)
        gain[~open_] = -np.inf
        if (open_ & ~empty).any():  # an image with no class cannot move the mix: it goes last
            gain[empty] = -np.inf
        best = np.flatnonzero(open_ & (gain >= gain.max() - 1e-12))
        heads = order[cursor[best]]
        j = int(best[np.lexsort((tie[heads], -s[heads]))[0]])
        picks[step] = order[cursor[j]]
        utils[step] = gain[j]
        cursor[j] += 1
        counts += gain_rows[j]
    return picks, utils


def _mix_distance(counts: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Squared distance of the class mix to ``target``; a mix of nothing is as far as a mix can be.

    With no image counted yet there is no mix, and calling its distance that of the zero vector
    (``sum target^2``) makes every first image look like a step away from the target, so images
    with no box won. The farthest a mix can be is a single class (a simplex vertex).
    """
    d = squared_distance(counts, target)
    if target.size:
        worst = float((1.0 - 2.0 * target + float((target**2).sum())).max())
        d = np.where(np.asarray(counts).sum(axis=-1) > 0, d, worst)
    return np.asarray(d, np.float64)


@register(
    "representative",
    "items more like the unlabeled pool than like the labeled set (cosine to k-means centres of each)",
    needs_embeddings=True,
)
def representative(
    ctx: Context, k: int, *, n_clusters: int = 20, max_iter: int = 10, block: int = DEFAULT_BLOCK
) -> Result:
    if n_clusters < 1:
        raise ConfigError(f"n_clusters must be >= 1, got {n_clusters}")
    x = ctx.embeddings(normalize=True)
    _, centres, _ = kmeans(x, min(n_clusters, ctx.n), ctx.rng, max_iter=max_iter, block=block)
    # For unit vectors, squared distance 2 - 2 cos: the nearest centre is the most similar one.
    sim = 1.0 - nearest(x, _unit(centres), block=block)[0].astype(np.float64) / 2.0
    lab = ctx.labeled_embeddings(normalize=True)
    if lab is not None:
        _, lab_centres, _ = kmeans(lab, min(n_clusters, lab.shape[0]), ctx.rng, max_iter=max_iter, block=block)
        sim -= 1.0 - nearest(x, _unit(lab_centres), block=block)[0].astype(np.float64) / 2.0
    order = topk_desc(sim, k, ctx.rng)
    return order, sim[order]


def _unit(x: F32) -> F32:
    return as_f32(x / np.maximum(np.sqrt(row_sq_norms(x)), 1e-12)[:, None])


@register(
    "stratified",
    "even picks across bins of any numeric field (e.g. brightness, timestamp), most uncertain first in each bin",
)
def stratified(
    ctx: Context,
    k: int,
    *,
    field: str = "max_confidence",
    bins: int = 5,
    binning: str = "quantile",
    pick: str = "uncertain",
    score: str = DEFAULT_SCORE,
) -> Result:
    check_choice(binning, ("quantile", "uniform"), "binning")
    check_choice(pick, ("uncertain", "random"), "pick")
    if bins < 1:
        raise ConfigError(f"bins must be >= 1, got {bins}")
    v = ctx.field(field)
    if binning == "quantile":
        edges = np.quantile(v, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    else:
        edges = np.linspace(v.min(), v.max(), bins + 1)[1:-1]
    groups = np.searchsorted(edges, v, side="right").astype(np.int64)
    priority = ctx.field(score) if pick == "uncertain" else ctx.rng.random(ctx.n)
    rank = ctx.rng.permutation(bins).astype(np.int64)
    order = round_robin(groups, priority, rank)[:k]
    return order, priority[order]


@register(
    "outlier",
    "model-based outliers: low activation against the labeled set (embeddings) or low max score",
)
def outlier(ctx: Context, k: int, *, by: str = "auto", reference_size: int = 10_000) -> Result:
    check_choice(by, ("auto", "activation", "max_score"), "outlier measure")
    if by == "auto":
        by = "activation" if ctx.pool.embeddings is not None else "max_score"
    if by == "max_score":
        u = 1.0 - ctx.field("max_confidence")
    else:
        x = ctx.embeddings()
        ref = ctx.labeled_embeddings()
        if ref is None or ref.shape[0] < 2:
            ref = x  # no labeled set: rank against the pool itself
        if ref.shape[0] > reference_size:
            ref = ref[np.sort(ctx.rng.choice(ref.shape[0], size=reference_size, replace=False))]
        # Munro: the rank of each activation among the reference's; low average rank = outlier.
        ref_cols = np.sort(ref.T, axis=1)  # (D, L): each dimension's reference activations, sorted
        rank = np.zeros(ctx.n, np.float64)
        step = 8192
        for s in range(0, ctx.n, step):  # row blocks, transposed so each dimension is contiguous
            cols = np.ascontiguousarray(x[s : s + step].T)
            for d in range(cols.shape[0]):  # a loop over dimensions, vectorised over the block
                rank[s : s + step] += np.searchsorted(ref_cols[d], cols[d], side="right")
        u = 1.0 - rank / (x.shape[1] * ref_cols.shape[1])
    order = topk_desc(u, k, ctx.rng)
    return order, u[order]


@register(
    "learned_error",
    "top-k on the errors a fitted error model expects in each image: wrong boxes plus missed objects",
    needs_error_model=True,
)
def learned_error(ctx: Context, k: int, *, miss_weight: float = 1.0, per_object: bool = False) -> Result:
    """Utility: expected wrong kept boxes + ``miss_weight`` x expected missed objects (ties at random);
    with ``per_object``, that divided by the expected objects (at least 1): the error rate.

    The pool must carry the fields an :class:`~cvactive.errormodel.ErrorModel` attaches
    (``cvactive select --error-model FILE``, ``cvactive errors predict``; the loop fits one per round).
    """
    missing = [f for f in (BOX_ERRORS, MISSES, OBJECTS) if f not in ctx.pool.fields]
    if missing:
        raise ConfigError(
            f"strategy 'learned_error' ranks images by the errors an error model predicts, but the pool has no "
            f"{missing[0]!r} field; fit a predictor on labeled images with `cvactive errors fit` and pass it "
            "(`cvactive select --error-model FILE`, or `cvactive errors predict`)"
        )
    u = learned_utility(ctx.field(BOX_ERRORS), ctx.field(MISSES), ctx.field(OBJECTS), miss_weight, per_object)
    order = topk_desc(u, k, ctx.rng)
    return order, u[order]
