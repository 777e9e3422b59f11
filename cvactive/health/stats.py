"""Class-balance and box statistics: pure functions over flat arrays (no files, no images).

Conventions: ``box_class`` and ``box_image`` are ``(M,)`` int arrays, one entry per box;
``boxes`` are ``(M, 4)`` normalised ``cx cy w h``; image sizes are ``(I,)`` pixels with NaN
where unknown. Every function is vectorised: a data set of 100,000 label files and a million
boxes takes a fraction of a second.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: COCO's size buckets: box area in pixels below 32², below 96², and the rest.
COCO_AREAS = (32.0**2, 96.0**2)
SIZE_NAMES = ("small", "medium", "large")


def class_counts(box_class: np.ndarray, box_image: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Instances per class and images per class (images holding at least one box of it).

    Returns:
        ``(instances, images)``, each ``(C,)`` int64.
    """
    cls = np.asarray(box_class, np.int64)
    instances = np.bincount(cls, minlength=num_classes)[:num_classes]
    if cls.size == 0:
        return instances, np.zeros(num_classes, np.int64)
    img = np.asarray(box_image, np.int64)
    flat = img * num_classes + cls
    size = (int(img.max()) + 1) * num_classes
    if size <= 50_000_000:  # a presence table (one byte per image and class) beats sorting
        present = np.zeros(size, bool)
        present[flat] = True
        images = present.reshape(-1, num_classes).sum(axis=0)
    else:
        pairs = np.unique(flat)
        images = np.bincount(pairs % num_classes, minlength=num_classes)[:num_classes]
    return instances, images


def imbalance(instances: np.ndarray, names: dict[int, str], min_instances: int = 0) -> dict[str, Any]:
    """Imbalance ratio (largest class count over smallest), rarest and largest class, and classes below a minimum.

    A class with no instance makes the ratio infinite (``None`` in JSON); it is listed in
    ``missing``. With no class at all the ratio is ``None``.
    """
    counts = np.asarray(instances, np.int64)
    if counts.size == 0:
        return {"ratio": None, "rarest": None, "largest": None, "missing": [], "under_min": []}
    lo, hi = int(np.argmin(counts)), int(np.argmax(counts))
    ratio = math.inf if counts[lo] == 0 else float(counts[hi] / counts[lo])
    return {
        "ratio": ratio,
        "rarest": names.get(lo, str(lo)),
        "rarest_count": int(counts[lo]),
        "largest": names.get(hi, str(hi)),
        "largest_count": int(counts[hi]),
        "missing": [names.get(int(i), str(i)) for i in np.flatnonzero(counts == 0)],
        "under_min": [names.get(int(i), str(i)) for i in np.flatnonzero(counts < min_instances)],
    }


def boxes_per_image(box_image: np.ndarray, num_images: int) -> np.ndarray:
    """``(I,)`` number of boxes on each image."""
    return np.bincount(np.asarray(box_image, np.int64), minlength=num_images)[:num_images]


def histogram_counts(values: np.ndarray, max_value: int) -> dict[str, int]:
    """Counts of each integer value ``0 .. max_value - 1`` and ``"<max_value>+"`` for the rest."""
    v = np.minimum(np.asarray(values, np.int64), max_value)
    counts = np.bincount(v, minlength=max_value + 1)
    out = {str(i): int(counts[i]) for i in range(max_value)}
    out[f"{max_value}+"] = int(counts[max_value])
    return out


def pixel_wh(boxes: np.ndarray, box_image: np.ndarray, width: np.ndarray, height: np.ndarray) -> np.ndarray:
    """``(M, 2)`` box width and height in pixels (NaN where the image size is unknown)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    idx = np.asarray(box_image, np.int64)
    return np.stack([b[:, 2] * np.asarray(width)[idx], b[:, 3] * np.asarray(height)[idx]], axis=1)


def size_buckets(box_class: np.ndarray, areas: np.ndarray, num_classes: int) -> np.ndarray:
    """``(C, 3)`` counts of COCO small / medium / large boxes per class (boxes with a NaN area skipped)."""
    a = np.asarray(areas, np.float64)
    ok = np.isfinite(a)
    bucket = np.searchsorted(np.asarray(COCO_AREAS), a[ok], side="right")
    flat = np.asarray(box_class, np.int64)[ok] * 3 + bucket
    return np.bincount(flat, minlength=num_classes * 3)[: num_classes * 3].reshape(num_classes, 3)


def grouped_quantiles(
    values: np.ndarray, groups: np.ndarray, num_groups: int, qs: tuple[float, ...] = (0.05, 0.5, 0.95)
) -> np.ndarray:
    """``(G, len(qs))`` quantiles of ``values`` within each group (NaN for an empty group; NaN values skipped).

    One sort of the whole array, then each quantile is read by index: no loop over groups.
    """
    v = np.asarray(values, np.float64)
    g = np.asarray(groups, np.int64)
    ok = np.isfinite(v)
    v, g = v[ok], g[ok]
    order = np.argsort(v, kind="stable")
    order = order[np.argsort(g[order], kind="stable")]  # stable: values stay sorted within each group
    v, g = v[order], g[order]
    counts = np.bincount(g, minlength=num_groups)[:num_groups]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = np.full((num_groups, len(qs)), np.nan)
    has = counts > 0
    for j, q in enumerate(qs):  # a loop over the few quantiles only
        pos = starts + q * (counts - 1)
        lo, hi = np.floor(pos).astype(np.int64), np.ceil(pos).astype(np.int64)
        frac = pos - lo
        lo_v = v[np.clip(lo[has], 0, max(len(v) - 1, 0))] if len(v) else np.zeros(0)
        hi_v = v[np.clip(hi[has], 0, max(len(v) - 1, 0))] if len(v) else np.zeros(0)
        out[has, j] = lo_v + (hi_v - lo_v) * frac[has]
    return out


def centre_heatmaps(boxes: np.ndarray, box_class: np.ndarray, num_classes: int, grid: int = 16) -> np.ndarray:
    """``(C, grid, grid)`` counts of box centres per class on a grid over the image (row = y, column = x)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    gx = np.clip((b[:, 0] * grid).astype(np.int64), 0, grid - 1)
    gy = np.clip((b[:, 1] * grid).astype(np.int64), 0, grid - 1)
    flat = (np.asarray(box_class, np.int64) * grid + gy) * grid + gx
    return np.bincount(flat, minlength=num_classes * grid * grid)[: num_classes * grid * grid].reshape(
        num_classes, grid, grid
    )


def quadrant_shares(heatmap: np.ndarray) -> dict[str, float]:
    """Share of one class's box centres in the left/right and top/bottom halves of the image."""
    h = np.asarray(heatmap, np.float64)
    total = h.sum()
    if total == 0:
        return {"left": 0.0, "right": 0.0, "top": 0.0, "bottom": 0.0}
    half = h.shape[1] // 2
    return {
        "left": float(h[:, :half].sum() / total),
        "right": float(h[:, half:].sum() / total),
        "top": float(h[:half].sum() / total),
        "bottom": float(h[half:].sum() / total),
    }


def brightness_bands(brightness: np.ndarray, dark_below: float, bright_above: float) -> dict[str, int]:
    """How many images are dark (mean grey below ``dark_below``), normal, or bright (above ``bright_above``)."""
    v = np.asarray(brightness, np.float64)
    v = v[np.isfinite(v)]
    dark = int(np.count_nonzero(v < dark_below))
    bright = int(np.count_nonzero(v > bright_above))
    return {"dark": dark, "normal": int(v.size - dark - bright), "bright": bright}


def summary(values: np.ndarray) -> dict[str, float | int | None]:
    """Count, min, 5th percentile, median, 95th percentile and max of the finite values."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"count": 0, "min": None, "p5": None, "median": None, "p95": None, "max": None}
    p5, med, p95 = np.percentile(v, [5, 50, 95])
    return {
        "count": int(v.size),
        "min": float(v.min()),
        "p5": float(p5),
        "median": float(med),
        "p95": float(p95),
        "max": float(v.max()),
    }


def top_sizes(width: np.ndarray, height: np.ndarray, k: int = 10) -> list[dict[str, int]]:
    """The ``k`` most common image sizes with their counts (unknown sizes skipped)."""
    w, h = np.asarray(width, np.float64), np.asarray(height, np.float64)
    ok = np.isfinite(w) & np.isfinite(h)
    if not ok.any():
        return []
    pairs, counts = np.unique(np.stack([w[ok], h[ok]], axis=1).astype(np.int64), axis=0, return_counts=True)
    order = np.argsort(-counts, kind="stable")[:k]
    return [{"width": int(pairs[i, 0]), "height": int(pairs[i, 1]), "images": int(counts[i])} for i in order]
