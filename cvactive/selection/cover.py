"""Distance of every row to its nearest chosen point, kept up to date one pick at a time.

k-center greedy (core-set) and k-means++ seeding (BADGE) both pick points one by one and, after
each pick, lower every row's distance to the chosen set. Done plainly that is one pass over the
whole ``(N, D)`` matrix per pick: on a million 256-d rows, a gigabyte read a thousand times.

:class:`NearestChosen` does the same update and skips what cannot change. Each row remembers the
chosen point it is nearest to (its *owner*) and each chosen point ``j`` the radius ``r_j`` of its
rows. A new point ``c`` can come closer to a row ``x`` owned by ``j`` only if
``|x - c| < |x - c_j| <= r_j``, and ``|x - c| >= |c - c_j| - r_j``, so owners with
``|c - c_j| >= 2 r_j`` keep all their rows: only the rows of the other owners are recomputed (the
triangle inequality; exact, with a small margin for rounding). A second test needs no owner: a
row with ``| |x| - |c| | >= d(x)`` cannot come closer either (norms are computed once), which
prunes the rows near the origin that make every owner's radius large when points are weighted.
Early picks, when distances are large, still touch most rows; later ones only their neighbourhood.

Points may be weighted: row ``i`` stands for ``w_i x_i`` (BADGE's uncertainty-scaled embeddings)
without that matrix ever being formed.
"""

from __future__ import annotations

import numpy as np

from cvactive.selection.blocks import F32, STREAM_ROWS, dots_with, row_sq_norms

#: Above this share of rows to recompute, one plain pass over the matrix is cheaper than gathering.
FULL_PASS_SHARE = 0.5
#: Below this many rows a plain pass per pick is as fast as the bookkeeping pruning needs.
PRUNE_MIN_ROWS = 50_000
#: Relative margin on the pruning bound, so rounding can never skip a row that would change.
MARGIN = 1e-3


class NearestChosen:
    """``d2[i]``: squared distance of row ``i`` (``w_i x_i``) to its nearest chosen point.

    Args:
        x: ``(N, D)`` float32 or float16 rows (a memmap is read block by block).
        weights: ``(N,)`` row weights, or ``None``.
        init_d2: ``(N,)`` squared distances to points chosen before (a labeled set); those rows
            have no owner here and are recomputed at every pick until a new point takes them.
    """

    def __init__(self, x: np.ndarray, *, weights: np.ndarray | None = None, init_d2: np.ndarray | None = None):
        n = x.shape[0]
        self.x = x
        self.w = None if weights is None else np.asarray(weights, np.float32)
        self.sq = row_sq_norms(x) if self.w is None else row_sq_norms(x) * self.w * self.w
        self.d2 = np.full(n, np.inf, np.float32) if init_d2 is None else np.array(init_d2, np.float32)
        self.norm = np.sqrt(self.sq)
        self.owner = np.full(n, -1, np.int32)
        self._centres = np.zeros((16, x.shape[1]), np.float32)  # grown by doubling
        self.radius = np.zeros(0, np.float64)
        self.rows_touched = 0

    @property
    def centres(self) -> F32:
        """``(t, D)`` the chosen points so far."""
        return self._centres[: self.radius.size]

    def point(self, i: int) -> F32:
        """Row ``i`` as a point (``w_i x_i``)."""
        c = np.asarray(self.x[i], np.float32)
        return c if self.w is None else c * self.w[i]

    def _dists(self, rows: np.ndarray | None, i: int) -> F32:
        """Squared distances of ``rows`` (all when ``None``) to point ``i``, as the plain kernels compute them."""
        c = np.asarray(self.x[i], np.float32)
        if self.w is None:
            scale, const = c * np.float32(-2.0), np.float32(c @ c)
        else:
            scale, const = c * np.float32(-2.0 * self.w[i]), self.sq[i]
        if rows is None:
            d = dots_with(self.x, scale)
            sq, w = self.sq, self.w
        else:
            d = np.empty(rows.size, np.float32)
            for s in range(0, rows.size, STREAM_ROWS):
                r = rows[s : s + STREAM_ROWS]
                d[s : s + r.size] = np.einsum("ij,j->i", np.asarray(self.x[r], np.float32), scale)
            sq, w = self.sq[rows], None if self.w is None else self.w[rows]
        if w is not None:
            d *= w
        d += sq
        d += const
        np.maximum(d, 0.0, out=d)
        return d

    def _push_centre(self, c: F32) -> None:
        """Append ``c`` to the chosen points (its radius starts at 0)."""
        t = self.radius.size
        if t == self._centres.shape[0]:
            self._centres = np.concatenate([self._centres, np.zeros_like(self._centres)])
        self._centres[t] = c
        self.radius = np.append(self.radius, 0.0)

    def _rows_to_check(self, c: F32) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The rows of the owners that may lose rows to ``c`` (``None``: all), and those of them whose
        distance must be recomputed (the norm test drops more; ``None``: a plain pass over all)."""
        t = self.centres.shape[0]
        if t == 0 or self.owner.size < PRUNE_MIN_ROWS:
            return None, None
        gap = np.sqrt(np.maximum(row_sq_norms(self.centres - c[None, :]).astype(np.float64), 0.0))
        check = np.append(gap <= 2.0 * self.radius * (1.0 + MARGIN) + 1e-6, True)  # [-1]: rows with no owner
        owned = np.flatnonzero(check[self.owner])
        # | |x| - |c| | < d(x) (squared, both sides non-negative), with the same margin
        diff = self.norm[owned] - np.float32(np.sqrt(c @ c))
        diff *= diff
        rows = owned[diff <= self.d2[owned] * np.float32((1.0 + MARGIN) ** 2) + np.float32(1e-6)]
        full = owned.size == self.owner.size
        return (None if full else owned), (None if rows.size > FULL_PASS_SHARE * self.owner.size else rows)

    def add(self, i: int) -> None:
        """Choose row ``i``: lower every row's distance (only where it can change) and update owners."""
        c = self.point(i)
        t = self.radius.size
        if self.owner.size < PRUNE_MIN_ROWS:
            # Too few rows to prune: one plain pass, and no owners or radii to keep (only pruning reads them).
            np.minimum(self.d2, self._dists(None, i), out=self.d2)
            self.rows_touched += self.owner.size
            self._push_centre(c)
            return
        owned, rows = self._rows_to_check(c)
        d = self._dists(rows, i)
        self.rows_touched += self.owner.size if rows is None else rows.size
        if rows is None:
            better = np.flatnonzero(d < self.d2)
            self.d2[better] = d[better]
        else:
            hit = d < self.d2[rows]
            better = rows[hit]
            self.d2[better] = d[hit]
        self.owner[better] = t
        self._push_centre(c)
        # Radii of the owners that were checked (every row of theirs is in ``owned``) and of the new one.
        looked = np.arange(self.owner.size) if owned is None else owned
        own = self.owner[looked]
        keep = own >= 0
        sq_radius = np.zeros(t + 1, np.float64)
        np.maximum.at(sq_radius, own[keep], np.maximum(self.d2[looked][keep], 0.0).astype(np.float64))
        changed = np.unique(own[keep])
        self.radius[changed] = np.sqrt(sq_radius[changed])


def afkmc2(
    x: np.ndarray,
    k: int,
    rng: np.random.Generator,
    *,
    first: int | None = None,
    weights: np.ndarray | None = None,
    chain: int = 200,
) -> tuple[np.ndarray, np.ndarray]:
    """k-means++ seeding approximated by Markov chains (AFK-MC², Bachem et al., NeurIPS 2016).

    One pass over the rows builds the proposal ``q(x) = d(x, c1)^2 / (2 sum) + 1 / (2N)``; each
    further seed is the end of a Metropolis-Hastings chain of ``chain`` proposals whose stationary
    law is k-means++'s ``D^2`` sampling, so a seed costs ``chain x t x D`` instead of a pass over
    the whole matrix. Points are ``w_i x_i`` as in :func:`cvactive.selection.kernels.kmeanspp`.

    Returns:
        ``(k,)`` distinct row indices and ``(k,)`` each seed's distance to the nearest earlier one.
    """
    n = x.shape[0]
    w = None if weights is None else np.asarray(weights, np.float32)
    i0 = int(rng.integers(n)) if first is None else int(first)
    cover = NearestChosen(x, weights=w)
    cover.add(i0)  # one full pass: d(x, c1)^2 for every row
    d1 = cover.d2.astype(np.float64)
    q = 0.5 * d1 / d1.sum() + 0.5 / n if d1.sum() > 0 else np.full(n, 1.0 / n)
    cum = np.cumsum(q)
    centres = np.zeros((k, x.shape[1]), np.float32)
    centres[0] = cover.point(i0)
    c_sq = np.zeros(k, np.float64)
    c_sq[0] = float(centres[0] @ centres[0])
    picks = np.empty(k, np.int64)
    utils = np.empty(k, np.float64)
    picks[0], utils[0] = i0, float(np.sqrt(c_sq[0]))
    chosen = {i0}
    for t in range(1, k):
        cand = np.minimum(np.searchsorted(cum, rng.random(chain) * cum[-1], side="right"), n - 1)
        order = np.argsort(cand)
        rows = np.empty((chain, x.shape[1]), np.float32)
        rows[order] = np.asarray(x[cand[order]], np.float32)  # gathered in row order
        if w is not None:
            rows *= w[cand, None]
        dist = _sq_dist_to_centres(rows, centres[:t], c_sq[:t])
        u = rng.random(chain)
        j = 0
        for s in range(1, chain):  # Metropolis-Hastings: move to s with prob min(1, d_s q_j / (d_j q_s))
            num, den = dist[s] * q[cand[j]], dist[j] * q[cand[s]]
            if den == 0.0 or num / den > u[s]:
                j = s
        i, d_i = int(cand[j]), float(dist[j])
        if i in chosen or d_i == 0.0:  # the chain sat on a seed: take an unchosen row at random
            i = int(rng.integers(n))
            while i in chosen:
                i = int(rng.integers(n))
            d_i = float(_sq_dist_to_centres(cover.point(i)[None, :], centres[:t], c_sq[:t])[0])
        picks[t] = i
        chosen.add(i)
        centres[t] = cover.point(i)
        c_sq[t] = float(centres[t] @ centres[t])
        utils[t] = float(np.sqrt(d_i))
    return picks, utils


def _sq_dist_to_centres(rows: np.ndarray, centres: np.ndarray, c_sq: np.ndarray) -> np.ndarray:
    """``(m,)`` float64 squared distance of each row to its nearest centre."""
    d = (rows * rows).sum(axis=1, dtype=np.float64)[:, None] - 2.0 * (rows @ centres.T) + c_sq[None, :]
    return np.maximum(d.min(axis=1), 0.0)
