"""Straightforward reference implementations of the embedding strategies, for tests and benchmarks.

These are the same algorithms as :mod:`cvactive.selection.strategies`, written the naive way:
Python loops over items and pairs of items, one distance at a time (``sum((a - b)**2)`` in
float64). They draw from the rng in the same order, so for the same seed they pick the same
items as the vectorised versions, and they are what the vectorised kernels are checked and
timed against. Do not use them on real pools: they are orders of magnitude slower.
"""

from __future__ import annotations

import math

import numpy as np


def _d2(a: np.ndarray, b: np.ndarray) -> float:
    diff = a.astype(np.float64) - b.astype(np.float64)
    return float(np.dot(diff, diff))


def coreset(x: np.ndarray, k: int, rng: np.random.Generator, labeled: np.ndarray | None = None) -> list[int]:
    """k-center greedy (see :func:`cvactive.selection.kernels.kcenter_greedy`)."""
    n = len(x)
    min_d = [math.inf] * n
    if labeled is not None and len(labeled):
        for i in range(n):
            for row in labeled:
                min_d[i] = min(min_d[i], _d2(x[i], row))
    picks: list[int] = []
    chosen = [False] * n
    for t in range(k):
        if t == 0 and (labeled is None or not len(labeled)):
            i = int(rng.integers(n))
        else:
            i, best = -1, -1.0
            for j in range(n):
                if not chosen[j] and min_d[j] > best:
                    i, best = j, min_d[j]
        picks.append(i)
        chosen[i] = True
        for j in range(n):
            d = _d2(x[j], x[i])
            if d < min_d[j]:
                min_d[j] = d
    return picks


def kmeanspp(x: np.ndarray, k: int, rng: np.random.Generator, first: int | None = None) -> list[int]:
    """k-means++ seeding by D² sampling (see :func:`cvactive.selection.kernels.kmeanspp`)."""
    n = len(x)
    min_d = [math.inf] * n
    chosen = [False] * n
    picks: list[int] = []
    for t in range(k):
        if t == 0:
            i = int(rng.integers(n)) if first is None else first
        else:
            cum, total = [], 0.0
            for j in range(n):
                total += 0.0 if chosen[j] else min_d[j]
                cum.append(total)
            if total > 0.0:
                r = rng.random() * total
                i = next((j for j in range(n) if cum[j] > r), n - 1)
            else:
                free = [j for j in range(n) if not chosen[j]]
                i = free[int(rng.integers(len(free)))]
        picks.append(i)
        chosen[i] = True
        for j in range(n):
            d = _d2(x[j], x[i])
            if d < min_d[j]:
                min_d[j] = d
    return picks


def kmeans(
    x: np.ndarray, n_clusters: int, rng: np.random.Generator, max_iter: int = 10, tol: float = 1e-4
) -> tuple[list[int], list[float]]:
    """Lloyd's k-means (see :func:`cvactive.selection.kernels.kmeans`); labels and squared distances."""
    n, dim = x.shape
    centres = [x[i].astype(np.float64) for i in kmeanspp(x, n_clusters, rng)]
    spread = float(np.mean(np.var(x, axis=0, dtype=np.float64))) if n > 1 else 0.0

    def assign() -> tuple[list[int], list[float]]:
        labels, dists = [], []
        for i in range(n):
            best, arg = math.inf, 0
            for c in range(n_clusters):
                d = _d2(x[i], centres[c])
                if d < best:
                    best, arg = d, c
            labels.append(arg)
            dists.append(best)
        return labels, dists

    labels, dists = assign()
    for _ in range(max_iter):
        sums = [np.zeros(dim) for _ in range(n_clusters)]
        counts = [0] * n_clusters
        for i in range(n):
            sums[labels[i]] += x[i]
            counts[labels[i]] += 1
        new = [sums[c] / counts[c] if counts[c] else centres[c] for c in range(n_clusters)]
        empty = [c for c in range(n_clusters) if counts[c] == 0]
        far = sorted(range(n), key=lambda i: -dists[i])[: len(empty)]
        for c, i in zip(empty, far):
            new[c] = x[i].astype(np.float64)
        shift = sum(_d2(new[c], centres[c]) for c in range(n_clusters)) / n_clusters
        centres = new
        labels, dists = assign()
        if shift <= tol * spread:
            break
    return labels, dists


def _round_robin(labels: list[int], priority: list[float], n_clusters: int, k: int) -> list[int]:
    members: list[list[int]] = [[] for _ in range(n_clusters)]
    for i in sorted(range(len(labels)), key=lambda i: -priority[i]):
        members[labels[i]].append(i)
    by_size = sorted(range(n_clusters), key=lambda c: -len(members[c]))
    picks: list[int] = []
    for position in range(max(len(m) for m in members)):
        for c in by_size:
            if position < len(members[c]) and len(picks) < k:
                picks.append(members[c][position])
    return picks


def cluster(x: np.ndarray, k: int, rng: np.random.Generator, max_iter: int = 10) -> list[int]:
    """k-means with ``k`` clusters, then the centroid-nearest member of each, largest cluster first."""
    labels, dists = kmeans(x, k, rng, max_iter)
    return _round_robin(labels, [-d for d in dists], k, k)


def _top(scores: np.ndarray, m: int, rng: np.random.Generator) -> list[int]:
    tie = rng.random(len(scores))
    return sorted(range(len(scores)), key=lambda i: (-scores[i], tie[i]))[:m]


def hybrid(
    x: np.ndarray, scores: np.ndarray, k: int, rng: np.random.Generator, factor: float = 10.0, max_iter: int = 10
) -> list[int]:
    """The most uncertain ``factor * k``, k-means into ``k`` clusters, the most uncertain of each."""
    top = _top(scores, min(len(x), max(k, round(factor * k))), rng)
    sub = np.stack([x[i] for i in top])
    labels, _ = kmeans(sub, k, rng, max_iter)
    picks = _round_robin(labels, [float(scores[i]) for i in top], k, k)
    return [top[p] for p in picks]


def badge(x: np.ndarray, scores: np.ndarray, k: int, rng: np.random.Generator) -> list[int]:
    """k-means++ seeding on embeddings scaled by each item's uncertainty, from the largest one."""
    g = [x[i].astype(np.float32) * np.float32(scores[i]) for i in range(len(x))]
    norms = [float(np.dot(v.astype(np.float64), v.astype(np.float64))) for v in g]
    first = max(range(len(g)), key=lambda i: norms[i])
    return kmeanspp(np.stack(g), k, rng, first=first)
