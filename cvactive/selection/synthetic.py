"""Seeded synthetic pools for tests, benchmarks and examples (no model, no images).

:func:`clustered_embeddings` draws points around a few centres (the way frames of the same
scene sit together in embedding space); :func:`synthetic_records` wraps them into scored
:class:`~cvactive.record.ImageRecord` objects with boxes, full class-score rows and the image
scores of :class:`~cvactive.detect.scorer.Scorer`; :func:`synthetic_pool` builds a large
:class:`~cvactive.selection.pool.Pool` straight from arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cvactive._random import RngLike, as_rng
from cvactive.detect.scorer import Scorer
from cvactive.record import ImageRecord
from cvactive.selection.pool import Pool


def clustered_embeddings(
    n: int, dim: int, clusters: int, rng: RngLike = 0, *, spread: float = 4.0
) -> tuple[np.ndarray, np.ndarray]:
    """``(n, dim)`` float32 points around ``clusters`` Gaussian centres, and each point's centre id."""
    gen = as_rng(rng)
    centres = gen.normal(scale=spread, size=(clusters, dim))
    which = gen.integers(clusters, size=n)
    x = centres[which] + gen.normal(size=(n, dim))
    return x.astype(np.float32), which.astype(np.int64)


def synthetic_records(
    n: int,
    rng: RngLike = 0,
    *,
    dim: int = 16,
    clusters: int = 8,
    class_weights: Sequence[float] = (0.6, 0.3, 0.1),
    max_boxes: int = 3,
    embeddings: bool = True,
    prefix: str = "img",
) -> list[ImageRecord]:
    """``n`` scored records with 0..``max_boxes`` boxes whose classes follow ``class_weights``."""
    gen = as_rng(rng)
    x, _ = clustered_embeddings(n, dim, clusters, gen)
    c = len(class_weights)
    p = np.asarray(class_weights, np.float64) / np.sum(class_weights)
    names = {i: f"class{i}" for i in range(c)}
    scorer = Scorer()
    records = []
    for i in range(n):
        m = int(gen.integers(0, max_boxes + 1))
        cls = gen.choice(c, size=m, p=p)
        scores = gen.random((m, c)).astype(np.float32) * 0.3
        top = gen.uniform(0.3, 1.0, size=m).astype(np.float32)
        scores[np.arange(m), cls] = top
        xy = gen.uniform(0, 200, size=(m, 2))
        rec = ImageRecord(
            source=f"{prefix}_{i:06d}.jpg",
            width=320,
            height=256,
            xyxy=np.hstack([xy, xy + gen.uniform(10, 100, size=(m, 2))]).astype(np.float32),
            confidence=top,
            class_id=cls,
            class_scores=scores,
            names=names,
            embedding=x[i] if embeddings else None,
        )
        records.append(scorer(rec))
    return records


def synthetic_pool(n: int, dim: int = 256, rng: RngLike = 0, *, clusters: int = 100, num_classes: int = 10) -> Pool:
    """A large pool from arrays: clustered embeddings, ``entropy_max``, ``max_confidence`` and class confidences."""
    gen = as_rng(rng)
    x, _ = clustered_embeddings(n, dim, clusters, gen)
    class_conf = (gen.random((n, num_classes)) ** 4).astype(np.float32)
    return Pool.from_arrays(
        embeddings=x,
        fields={"entropy_max": gen.random(n), "max_confidence": class_conf.max(axis=1).astype(np.float64)},
        class_conf=class_conf,
    )
