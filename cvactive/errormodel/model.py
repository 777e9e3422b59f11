"""The error predictor: three small scikit-learn models over the features of :mod:`.features`.

* **box model**: for each kept box (confidence >= the operating threshold), the probability
  that it is not correct (wrong class, poorly localised or a false positive);
* **miss model**: for each sub-threshold box, the probability that it lies on an object the
  kept boxes missed (a miss near the predictions);
* **residual model**: per image, the expected number of misses no box lies on (Poisson).

An image's expected errors are the sum of its kept boxes' probabilities plus its expected
misses (the sum of its sub-threshold boxes' probabilities plus the residual count), the same
count as false positives plus false negatives at the matching IoU.

The default ``kind="boosting"`` uses scikit-learn's histogram gradient boosting (shallow trees,
strong L2, no early stopping, so a fit is deterministic): the errors come from interactions a
linear model misses (a confident box that is tiny, or overlaps another box of its class, or is
of a class the model confuses) and trees need no feature scaling. ``kind="logistic"`` is the
linear alternative (standardised features, logistic / Poisson regression). Too few examples
of one outcome to fit a model give a constant (the Laplace-smoothed rate), said so in
:attr:`ErrorModel.components`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cvactive.errormodel.estimators import expected_counts, fit_classifier, fit_regressor, probabilities
from cvactive.errormodel.features import FeatureSpec
from cvactive.errormodel.labels import check_ious, cover_misses, label_predictions
from cvactive.errormodel.portable import from_arrays, to_arrays
from cvactive.errors import ConfigError, DatasetError
from cvactive.record import ImageRecord

KINDS = ("boosting", "logistic")
#: per-box score: P(this kept box is wrong) or P(this sub-threshold box lies on a missed object).
BOX_SCORE = "learned_error"
#: per-image scores attached by :meth:`ErrorModel.attach`: expected errors (wrong kept boxes plus
#: misses), expected wrong kept boxes, expected misses, expected objects (right kept boxes plus misses).
TOTAL, BOX_ERRORS, MISSES, OBJECTS = "learned_errors", "learned_box_errors", "learned_misses", "learned_objects"
FORMAT = 2  # 1: a pickle (refused: unpickling runs code); 2: JSON + arrays in one .npz
PARTS = (("box", "logit"), ("sub", "logit"), ("residual", "log"))  # the fitted parts and their links


@dataclass(eq=False)
class LabeledRecord:
    """A scored record and its ground truth (class ids of the detector, pixel ``xyxy``)."""

    record: ImageRecord
    gt_xyxy: np.ndarray
    gt_class: np.ndarray

    def __post_init__(self) -> None:
        self.gt_xyxy = np.asarray(self.gt_xyxy, np.float64).reshape(-1, 4)
        self.gt_class = np.asarray(self.gt_class, np.int64).reshape(-1)
        if self.gt_class.shape[0] != self.gt_xyxy.shape[0]:
            raise DatasetError(
                f"{self.record.key}: {self.gt_xyxy.shape[0]} ground-truth boxes but {self.gt_class.shape[0]} classes"
            )


@dataclass(eq=False)
class TrainingSet:
    """Feature rows and outcomes of labeled images, built once (``I`` images).

    Attributes:
        box_x, box_y, box_image: kept boxes' features ``(Nk, F)``, error flags, image index.
        sub_x, sub_y, sub_image: sub-threshold boxes' features ``(Ns, F)``, covers-a-miss flags, image index.
        image_x: ``(I, G)`` image features; residual: ``(I,)`` misses no sub-threshold box lies on.
        errors, misses, objects, kept, correct: ``(I,)`` counts per image.
    """

    box_x: np.ndarray
    box_y: np.ndarray
    box_image: np.ndarray
    sub_x: np.ndarray
    sub_y: np.ndarray
    sub_image: np.ndarray
    image_x: np.ndarray
    residual: np.ndarray
    errors: np.ndarray
    misses: np.ndarray
    objects: np.ndarray
    kept: np.ndarray
    correct: np.ndarray

    @property
    def images(self) -> int:
        return int(self.image_x.shape[0])


def build_training_set(
    samples: Sequence[LabeledRecord], spec: FeatureSpec, *, iou: float = 0.5, loc_iou: float = 0.1
) -> TrainingSet:
    """Label every box of every sample (see :mod:`.labels`) and compute its features."""
    check_ious(iou, loc_iou)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("bx", "by", "bi", "sx", "sy", "si")}
    image_x, counts = [], []
    for i, s in enumerate(samples):
        rec = s.record
        kept = rec.confidence >= spec.threshold
        feats = spec.box_features(rec)
        m = label_predictions(
            rec.xyxy[kept], rec.class_id[kept], rec.confidence[kept], s.gt_xyxy, s.gt_class, iou=iou, loc_iou=loc_iou
        )
        covers = cover_misses(rec.xyxy[~kept], rec.confidence[~kept], s.gt_xyxy, m.missed, iou=iou)
        parts["bx"].append(feats[kept])
        parts["by"].append(m.is_error)
        parts["bi"].append(np.full(int(kept.sum()), i, np.int64))
        parts["sx"].append(feats[~kept])
        parts["sy"].append(covers)
        parts["si"].append(np.full(int((~kept).sum()), i, np.int64))
        image_x.append(spec.image_features(rec))
        misses = int(m.missed.sum())
        counts.append((misses - int(covers.sum()), m.errors, misses, len(s.gt_class), int(kept.sum()), m.correct))
    if not samples:
        raise DatasetError("no labeled images to fit an error model on")
    c = np.asarray(counts, np.int64).reshape(-1, 6)
    f, g = len(spec.box_names), len(spec.image_names)

    def cat(key: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return np.concatenate(parts[key]).astype(dtype) if parts[key] else np.zeros(shape, dtype)

    return TrainingSet(
        cat("bx", (0, f), np.float64),
        cat("by", (0,), bool),
        cat("bi", (0,), np.int64),
        cat("sx", (0, f), np.float64),
        cat("sy", (0,), bool),
        cat("si", (0,), np.int64),
        np.stack(image_x).reshape(-1, g),
        c[:, 0],
        c[:, 1],
        c[:, 2],
        c[:, 3],
        c[:, 4],
        c[:, 5],
    )


@dataclass(eq=False)
class ErrorModel:
    """A fitted error predictor (see the module docstring); :meth:`attach` scores records with it."""

    spec: FeatureSpec
    box: Any
    sub: Any
    residual: Any
    settings: dict[str, Any]
    components: dict[str, str] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit_training_set(cls, ts: TrainingSet, spec: FeatureSpec, settings: dict[str, Any]) -> ErrorModel:
        """Fit the three models on a training set (``settings``: kind, seed, iou, loc_iou)."""
        kind, seed = settings["kind"], int(settings["seed"])
        box, box_note = fit_classifier(kind, ts.box_x, ts.box_y, seed)
        sub, sub_note = fit_classifier(kind, ts.sub_x, ts.sub_y, seed)
        residual, res_note = fit_regressor(kind, ts.image_x, ts.residual.astype(np.float64), seed)
        notes = {"box": box_note, "miss": sub_note, "residual": res_note}
        return cls(spec, box, sub, residual, dict(settings), notes)

    def predict_arrays(self, records: Sequence[ImageRecord]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """Per record its ``(N,)`` box scores (:data:`BOX_SCORE`), and ``(I,)`` expected wrong kept boxes and misses."""
        feats = [self.spec.box_features(r) for r in records]
        sizes = [len(r) for r in records]
        x = np.concatenate(feats) if feats else np.zeros((0, len(self.spec.box_names)))
        kept = x[:, self.spec.box_names.index("kept")] > 0.5 if len(x) else np.zeros(0, bool)
        p = np.zeros(len(x))
        p[kept] = probabilities(self.box, x[kept])
        p[~kept] = probabilities(self.sub, x[~kept])
        image_x = np.stack([self.spec.image_features(r) for r in records]) if records else np.zeros((0, 1))
        residual = expected_counts(self.residual, image_x)
        owner = np.repeat(np.arange(len(records)), sizes)
        box_err = np.bincount(owner[kept], p[kept], len(records))
        misses = np.bincount(owner[~kept], p[~kept], len(records)) + residual
        return np.split(p, np.cumsum(sizes)[:-1]) if records else [], box_err, misses

    def attach(self, records: Sequence[ImageRecord]) -> list[ImageRecord]:
        """New records with :data:`BOX_SCORE` per box and the image scores :data:`TOTAL`,
        :data:`BOX_ERRORS`, :data:`MISSES` and :data:`OBJECTS`."""
        per_box, box_err, misses = self.predict_arrays(records)
        out = []
        for rec, p, b, m in zip(records, per_box, box_err, misses):
            kept = float((rec.confidence >= self.spec.threshold).sum())
            scores = {
                **rec.image_scores,
                TOTAL: float(b + m),
                BOX_ERRORS: float(b),
                MISSES: float(m),
                OBJECTS: kept - float(b) + float(m),
            }
            out.append(replace(rec, box_scores={**rec.box_scores, BOX_SCORE: p}, image_scores=scores))
        return out

    # -- files ----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the predictor and a JSON report beside it (``<name>.json``).

        The predictor is one ``.npz`` archive of plain arrays with a JSON description in it (see
        :mod:`.portable`): no pickle, so reading it back runs nothing from the file.
        """
        import json

        import sklearn

        from cvactive.outputs import atomic_open, write_json_atomic

        p = Path(path)
        arrays: dict[str, Any] = {_META: None}  # the description first, filled in below
        parts: dict[str, Any] = {}
        for name, link in PARTS:
            meta, values = to_arrays(getattr(self, name), link)
            parts[name] = meta
            arrays.update({f"{name}.{k}": np.ascontiguousarray(v) for k, v in values.items()})
        spec: dict[str, Any] = {"num_classes": self.spec.num_classes, "threshold": self.spec.threshold}
        spec["extra_measures"] = list(self.spec.extra_measures)
        for key in ("embedding_mean", "embedding_axes"):
            value = getattr(self.spec, key)
            spec[key] = value is not None
            if value is not None:
                arrays[f"spec.{key}"] = np.asarray(value, np.float64)
        head = {
            "format": FORMAT,
            "written_with": {"sklearn": sklearn.__version__},
            "spec": spec,
            "parts": parts,
            "settings": self.settings,
            "components": self.components,
            "report": self.report,
        }
        with atomic_open(p, "wb") as fh:
            arrays[_META] = np.array(json.dumps(head))
            np.savez(fh, **arrays)
        summary = {"settings": self.settings, "components": self.components, **self.report}
        write_json_atomic(p.with_suffix(".json"), summary, indent=1)
        return p

    @classmethod
    def load(cls, path: str | Path) -> ErrorModel:
        """Read a predictor written by :meth:`save` (``cvactive errors fit --out``).

        Nothing is unpickled: the file is read with ``numpy.load(allow_pickle=False)`` and every
        array is checked. A file of the old pickle format is refused, never opened as a pickle.
        """
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"error model {str(p)!r} does not exist; fit one with `cvactive errors fit`")
        with p.open("rb") as fh:
            magic = fh.read(4)
        if magic[:1] == b"\x80":  # a pickle (protocol 2+), what format 1 was: refused, never opened as one
            raise ConfigError(
                f"{p}: an error model in the old pickle format, which is not loaded because unpickling runs code "
                f"from the file; re-create it with `cvactive errors fit --model MODEL --data DATA --out "
                f"{p.with_suffix('.npz')}`"
            )
        if magic != b"PK\x03\x04":
            raise ConfigError(f"{p}: not an error model written by cvactive (not a .npz archive)")
        try:
            return cls._from_npz(p)
        except (ValueError, KeyError, TypeError, OSError, EOFError) as err:
            raise ConfigError(f"{p}: not a readable error model of format {FORMAT} ({err})") from err

    @classmethod
    def _from_npz(cls, p: Path) -> ErrorModel:
        import json

        with np.load(p, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = arrays.pop(_META, None)
        if meta is None or meta.dtype.kind != "U" or meta.ndim != 0:
            raise ValueError("no description")
        head = json.loads(str(meta))
        if not isinstance(head, dict) or head.get("format") != FORMAT:
            found = head.get("format") if isinstance(head, dict) else None
            raise ValueError(f"format {found!r}, expected {FORMAT}; refit it with `cvactive errors fit`")
        s = head["spec"]
        emb = {k: arrays.get(f"spec.{k}") if s[k] else None for k in ("embedding_mean", "embedding_axes")}
        mean, axes = emb["embedding_mean"], emb["embedding_axes"]
        if (mean is None) != (axes is None) or (
            mean is not None
            and axes is not None
            and (mean.ndim != 1 or axes.ndim != 2 or axes.shape[1] != mean.shape[0] or axes.dtype.kind != "f")
        ):
            raise ValueError("embedding mean and axes of mismatched shapes")
        if int(s["num_classes"]) < 1:
            raise ValueError("no classes")
        spec = FeatureSpec(
            int(s["num_classes"]),
            float(s["threshold"]),
            tuple(str(m) for m in s["extra_measures"]),
            embedding_mean=mean,
            embedding_axes=axes,
        )
        sizes = {"box": len(spec.box_names), "sub": len(spec.box_names), "residual": len(spec.image_names)}
        parts = {}
        for name, link in PARTS:
            values = {k.partition(".")[2]: v for k, v in arrays.items() if k.partition(".")[0] == name}
            meta_part = head["parts"][name]
            if not isinstance(meta_part, dict) or meta_part.get("link") != link:
                raise ValueError(f"the {name} part has no valid description")
            parts[name] = from_arrays(meta_part, values, sizes[name])
        settings, components, report = (head[k] for k in ("settings", "components", "report"))
        if not all(isinstance(v, dict) for v in (settings, components, report)):
            raise ValueError("settings, components and report must be mappings")
        return cls(spec, parts["box"], parts["sub"], parts["residual"], settings, components, report)


_META = "cvactive_error_model.json"


_LOADED: dict[tuple[str, int], ErrorModel] = {}


def load_cached(path: str | Path) -> ErrorModel:
    """:meth:`ErrorModel.load`, once per file (and again when the file changes)."""
    p = Path(path).resolve()
    key = (str(p), p.stat().st_mtime_ns if p.is_file() else -1)
    if key not in _LOADED:
        _LOADED[key] = ErrorModel.load(p)
    return _LOADED[key]


def learned_utility(
    box_errors: npt.ArrayLike,
    misses: npt.ArrayLike,
    objects: npt.ArrayLike,
    miss_weight: float = 1.0,
    per_object: bool = False,
) -> np.ndarray:
    """The image utility of ``learned_error``: expected wrong kept boxes + ``miss_weight`` x expected
    misses; with ``per_object``, divided by the expected objects (at least 1)."""
    if not (np.isfinite(miss_weight) and miss_weight >= 0):
        raise ConfigError(f"miss_weight must be a number >= 0, got {miss_weight!r}")
    u = np.asarray(box_errors, np.float64) + float(miss_weight) * np.asarray(misses, np.float64)
    return u / np.maximum(np.asarray(objects, np.float64), 1.0) if per_object else u


def record_utility(model: ErrorModel, record: ImageRecord, miss_weight: float = 1.0, per_object: bool = False) -> float:
    """:func:`learned_utility` of one record (what the ``learned_error`` harvest rule compares)."""
    scores = model.attach([record])[0].image_scores
    return float(learned_utility(scores[BOX_ERRORS], scores[MISSES], scores[OBJECTS], miss_weight, per_object))


def default_path(model: str | Path) -> Path:
    """Where ``cvactive errors fit`` saves the predictor of a detector: beside it, ``<stem>.errors.npz``."""
    p = Path(model)
    return p.with_name(f"{p.stem if p.suffix else p.name}.errors.npz")


def check_settings(kind: str, folds: int) -> None:
    if kind not in KINDS:
        raise ConfigError(f"unknown error-model kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    if folds < 0 or folds == 1:
        raise ConfigError(f"folds must be 0 (no cross-validation) or at least 2, got {folds}")
