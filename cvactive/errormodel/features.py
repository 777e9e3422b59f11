"""Features of each predicted box and of each image for the error predictor (pure numpy).

Everything here is read from what cvactive already computes for a scored record: the class-score
row (YOLO's independent sigmoids), the confidence, the class-score measures of
:mod:`cvactive.measures`, any consistency measures the record carries (TTA, committee, MC
dropout), the box geometry, its neighbours in the same image and, optionally, the image
embedding projected on a few principal axes of the fitting images' embeddings.

A box is *kept* when its confidence reaches the operating ``threshold`` (what a user of the
detector would see); the others are sub-threshold boxes, present when the image was scored
with a lower NMS confidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from cvactive.boxes import box_iou
from cvactive.errors import ConfigError, RecordError
from cvactive.measures import MEASURES, box_measures
from cvactive.record import ImageRecord

BOX_BASE = (
    "confidence",
    "second_score",
    "score_gap",
    "score_sum",
    *MEASURES,
    "kept",
    "cx",
    "cy",
    "width",
    "height",
    "size",
    "log_aspect",
    "border",
    "conf_rank",
    "conf_below_max",
    "max_iou_any",
    "max_iou_same_class",
    "image_kept",
    "image_sub_threshold",
)
IMAGE_BASE = (
    "kept",
    "sub_threshold",
    "kept_conf_sum",
    "sub_conf_sum",
    "sub_conf_max",
    "kept_conf_mean",
    "kept_conf_min",
    "kept_entropy_mean",
    "entropy_max",
    "binary_entropy_sum",
    "kept_size_median",
    "kept_size_min",
    "kept_overlap_max",
    "log_image_aspect",
)


@dataclass(frozen=True, eq=False)
class FeatureSpec:
    """How records become feature rows; fixed when the predictor is fitted.

    Attributes:
        num_classes: C, the length of the class-score rows.
        threshold: the operating confidence; boxes at or above it are kept.
        extra_measures: per-box consistency measures (``record.box_scores`` keys) every
            fitting record carried; records scored for prediction must carry them too.
        embedding_mean: ``(D,)`` mean embedding of the fitting images, or ``None``.
        embedding_axes: ``(d, D)`` principal axes the embedding is projected on, or ``None``.
    """

    num_classes: int
    threshold: float = 0.25
    extra_measures: tuple[str, ...] = ()
    embedding_mean: np.ndarray | None = None
    embedding_axes: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"threshold must lie in (0, 1), got {self.threshold}")

    @classmethod
    def fit(
        cls,
        records: Sequence[ImageRecord],
        *,
        threshold: float = 0.25,
        embedding_dims: int = 0,
        extra_measures: Sequence[str] | None = None,
        num_classes: int | None = None,
    ) -> FeatureSpec:
        """The spec for these fitting records (classes from their rows, PCA of their embeddings).

        ``extra_measures=None`` takes every non-standard box score that all records carry;
        ``num_classes`` (the detector's class count) is needed only when no record has a box.
        """
        sizes = {r.class_scores.shape[1] for r in records if r.class_scores is not None and r.class_scores.shape[1]}
        if not sizes and num_classes:
            sizes = {int(num_classes)}
        if len(sizes) != 1 or (num_classes and sizes != {int(num_classes)}):
            raise RecordError(
                "the error model needs records with class-score rows of one length"
                f"{f' ({num_classes}, the detector classes)' if num_classes else ''}; "
                f"found lengths {sorted(sizes) or 'none'} (score with cvactive's detector adapter)"
            )
        if extra_measures is None:
            keys = [set(r.box_scores) for r in records if len(r)]
            extra_measures = sorted(set.intersection(*keys) - set(MEASURES)) if keys else []
        mean = axes = None
        if embedding_dims < 0:
            raise ConfigError(f"embedding_dims must be >= 0, got {embedding_dims}")
        if embedding_dims:
            emb = [r.embedding for r in records]
            if any(e is None for e in emb):
                raise RecordError("embedding_dims > 0 needs an embedding in every record (score with --embed)")
            x = np.stack([np.asarray(e, np.float64) for e in emb if e is not None])
            mean = x.mean(axis=0)
            _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
            axes = vt[: min(embedding_dims, vt.shape[0])]
        return cls(sizes.pop(), float(threshold), tuple(extra_measures), mean, axes)

    # -- names ----------------------------------------------------------------------------
    @property
    def embedding_dims(self) -> int:
        return 0 if self.embedding_axes is None else int(self.embedding_axes.shape[0])

    def _shared_names(self) -> list[str]:
        return [f"embedding_{j}" for j in range(self.embedding_dims)]

    @property
    def box_names(self) -> list[str]:
        c = range(self.num_classes)
        return [
            *BOX_BASE,
            *self.extra_measures,
            *(f"score_{k}" for k in c),
            *(f"is_class_{k}" for k in c),
            *self._shared_names(),
        ]

    @property
    def image_names(self) -> list[str]:
        return [*IMAGE_BASE, *(f"kept_class_{k}" for k in range(self.num_classes)), *self._shared_names()]

    # -- features -------------------------------------------------------------------------
    def _check(self, record: ImageRecord) -> np.ndarray:
        if len(record) == 0:
            return np.zeros((0, self.num_classes), np.float64)
        cs = np.asarray(record.require_class_scores("the error model"), np.float64)
        if cs.shape[1] != self.num_classes:
            raise RecordError(
                f"{record.key}: class-score rows have {cs.shape[1]} classes, the error model was fitted on "
                f"{self.num_classes}; use a predictor fitted with this detector"
            )
        missing = [m for m in self.extra_measures if m not in record.box_scores]
        if missing:
            raise RecordError(
                f"{record.key}: the error model uses the measures {missing}, which this record lacks; "
                "score the pool with them (cvactive score --measures ...)"
            )
        return cs

    def _embedding(self, record: ImageRecord) -> np.ndarray:
        if self.embedding_axes is None or self.embedding_mean is None:
            return np.zeros(0)
        if record.embedding is None:
            raise RecordError(
                f"{record.key}: the error model projects image embeddings, but this record has none; "
                "score the pool with embeddings (cvactive score --embed)"
            )
        return np.asarray(self.embedding_axes @ (np.asarray(record.embedding, np.float64) - self.embedding_mean))

    def box_features(self, record: ImageRecord) -> np.ndarray:
        """``(N, F)`` float64 features of every box of ``record`` (columns: :attr:`box_names`)."""
        cs = self._check(record)
        n, c = cs.shape[0], self.num_classes
        if n == 0:
            return np.zeros((0, len(self.box_names)))
        conf = record.confidence.astype(np.float64)
        cls = record.class_id
        srt = np.sort(cs, axis=1)
        s1 = srt[:, -1]
        s2 = srt[:, -2] if c > 1 else np.zeros(n)
        measures = box_measures(cs, conf, MEASURES)
        geo = _geometry(record)
        iou = box_iou(record.xyxy, record.xyxy)
        np.fill_diagonal(iou, 0.0)
        same = cls[:, None] == cls[None, :]
        kept = conf >= self.threshold
        rank = np.argsort(np.argsort(-conf, kind="stable"), kind="stable") / max(n - 1, 1)
        onehot = np.zeros((n, c))
        onehot[np.arange(n), np.clip(cls, 0, c - 1)] = 1.0
        columns = [
            conf,
            s2,
            s1 - s2,
            cs.sum(axis=1),
            *(measures[m] for m in MEASURES),
            kept.astype(np.float64),
            *geo,
            rank,
            conf.max() - conf,
            iou.max(axis=1) if n > 1 else np.zeros(n),
            np.where(same, iou, 0.0).max(axis=1) if n > 1 else np.zeros(n),
            np.full(n, float(kept.sum())),
            np.full(n, float(n - kept.sum())),
            *(np.asarray(record.box_scores[m], np.float64) for m in self.extra_measures),
        ]
        emb = self._embedding(record)
        return np.column_stack([*columns, cs, onehot, np.broadcast_to(emb, (n, emb.size))])

    def image_features(self, record: ImageRecord) -> np.ndarray:
        """``(G,)`` float64 features of the whole image (columns: :attr:`image_names`)."""
        cs = self._check(record)
        conf = record.confidence.astype(np.float64)
        kept = conf >= self.threshold
        sub = ~kept
        ent = box_measures(cs, conf, ("entropy", "binary_entropy")) if len(record) else {}
        size = _geometry(record)[4] if len(record) else np.zeros(0)
        overlap = 0.0
        if kept.sum() > 1:
            iou = box_iou(record.xyxy[kept], record.xyxy[kept])
            np.fill_diagonal(iou, 0.0)
            overlap = float(iou.max())
        counts = np.bincount(record.class_id[kept], minlength=self.num_classes)[: self.num_classes]
        k = bool(kept.any())
        values = [
            float(kept.sum()),
            float(sub.sum()),
            float(conf[kept].sum()),
            float(conf[sub].sum()),
            float(conf[sub].max()) if sub.any() else 0.0,
            float(conf[kept].mean()) if k else 0.0,
            float(conf[kept].min()) if k else 1.0,
            float(ent["entropy"][kept].mean()) if k else 0.0,
            float(ent["entropy"].max()) if len(record) else 0.0,
            float(ent["binary_entropy"].sum()) if len(record) else 0.0,
            float(np.median(size[kept])) if k else 0.0,
            float(size[kept].min()) if k else 0.0,
            overlap,
            float(np.log(record.width / record.height)),
        ]
        return np.concatenate([np.asarray(values), counts.astype(np.float64), self._embedding(record)])


def _geometry(record: ImageRecord) -> list[np.ndarray]:
    """cx, cy, width, height (fractions of the image), size (sqrt of the area share), log aspect, border."""
    w_img, h_img = float(record.width), float(record.height)
    b = record.xyxy.astype(np.float64)
    w = np.maximum(b[:, 2] - b[:, 0], 1e-6)
    h = np.maximum(b[:, 3] - b[:, 1], 1e-6)
    border = np.minimum.reduce([b[:, 0], b[:, 1], w_img - b[:, 2], h_img - b[:, 3]]) / min(w_img, h_img)
    return [
        (b[:, 0] + b[:, 2]) / 2 / w_img,
        (b[:, 1] + b[:, 3]) / 2 / h_img,
        w / w_img,
        h / h_img,
        np.sqrt(w * h / (w_img * h_img)),
        np.log(w / h),
        np.clip(border, 0.0, None),
    ]
