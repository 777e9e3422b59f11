"""Fit an error predictor with cross-validation, and measure one on labeled images it never saw.

The cross-validation splits the images (never the boxes of one image) into ``folds`` seeded
parts; every box and image is predicted by the models fitted without its image. Its report
gives the box models' AUROC, average precision, Brier score and calibration error on those
held-out boxes, and per image the Spearman correlation of the predicted errors with the real
errors and with the error rate per object, beside every built-in image score of the records.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cvactive.errormodel.estimators import expected_counts, probabilities
from cvactive.errormodel.features import FeatureSpec
from cvactive.errormodel.labels import OUTCOMES, label_predictions
from cvactive.errormodel.model import ErrorModel, LabeledRecord, TrainingSet, build_training_set, check_settings
from cvactive.errormodel.quality import auroc, box_quality, rank_table
from cvactive.errors import DatasetError
from cvactive.record import ImageRecord


def error_rate(errors: np.ndarray, objects: np.ndarray) -> np.ndarray:
    """Errors per object, ``errors / max(objects, 1)`` (false positives plus misses over the objects there)."""
    return np.asarray(errors, np.float64) / np.maximum(np.asarray(objects, np.float64), 1.0)


def builtin_scores(records: Sequence[ImageRecord], threshold: float) -> dict[str, np.ndarray]:
    """Every image score all records carry, plus ``num_boxes`` and ``kept_boxes`` (confidence >= threshold)."""
    keys = set.intersection(*(set(r.image_scores) for r in records)) if records else set()
    out = {k: np.array([r.image_scores[k] for r in records]) for k in sorted(keys)}
    out["num_boxes"] = np.array([len(r) for r in records], np.float64)
    out["kept_boxes"] = np.array([float((r.confidence >= threshold).sum()) for r in records])
    return out


def image_report(
    records: Sequence[ImageRecord],
    ts: TrainingSet,
    box_err: np.ndarray,
    misses: np.ndarray,
    threshold: float,
) -> dict[str, Any]:
    """Spearman of predicted and built-in image scores with real errors and error rate per object."""
    total = box_err + misses
    targets = {"errors": ts.errors.astype(np.float64), "error_rate": error_rate(ts.errors, ts.objects)}
    predictors = {
        "learned_errors": total,
        # expected objects: the kept boxes expected right plus the expected misses
        "learned_error_rate": error_rate(total, ts.kept - box_err + misses),
        "learned_box_errors": box_err,
        "learned_misses": misses,
        **{k: v for k, v in builtin_scores(records, threshold).items() if not k.startswith("learned_")},
        "objects (ground truth)": ts.objects.astype(np.float64),
    }
    return {
        "images": ts.images,
        "errors": {"real": int(ts.errors.sum()), "predicted": round(float(total.sum()), 2)},
        "misses": {"real": int(ts.misses.sum()), "predicted": round(float(misses.sum()), 2)},
        "spearman": rank_table(targets, predictors),
    }


def box_report(ts: TrainingSet, p_box: np.ndarray, p_sub: np.ndarray, spec: FeatureSpec) -> dict[str, Any]:
    """Quality of the box and miss probabilities, beside ranking kept boxes by low confidence."""
    conf = ts.box_x[:, spec.box_names.index("confidence")] if len(ts.box_x) else np.zeros(0)
    box = box_quality(ts.box_y, p_box)
    box["auroc_of_low_confidence"] = None if (a := auroc(ts.box_y, -conf)) is None else round(a, 4)
    return {"box": box, "miss": box_quality(ts.sub_y, p_sub)}


def cross_validate(
    ts: TrainingSet, spec: FeatureSpec, settings: dict[str, Any], folds: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Out-of-fold ``p_box (Nk,)``, ``p_sub (Ns,)`` and expected residual misses ``(I,)``."""
    n = ts.images
    if n < folds:
        raise DatasetError(f"cross-validation with {folds} folds needs at least {folds} images, got {n}")
    fold = np.empty(n, np.int64)
    fold[np.random.default_rng(seed).permutation(n)] = np.arange(n) % folds
    p_box, p_sub, res = np.zeros(len(ts.box_y)), np.zeros(len(ts.sub_y)), np.zeros(n)
    for f in range(folds):
        train_img = fold != f
        sub = _subset(ts, train_img)
        model = ErrorModel.fit_training_set(sub, spec, settings)
        hb, hs = fold[ts.box_image] == f, fold[ts.sub_image] == f
        p_box[hb] = probabilities(model.box, ts.box_x[hb])
        p_sub[hs] = probabilities(model.sub, ts.sub_x[hs])
        res[~train_img] = expected_counts(model.residual, ts.image_x[~train_img])
    return p_box, p_sub, res


def _subset(ts: TrainingSet, images: np.ndarray) -> TrainingSet:
    b, s = images[ts.box_image], images[ts.sub_image]
    remap = np.cumsum(images) - 1
    return TrainingSet(
        ts.box_x[b],
        ts.box_y[b],
        remap[ts.box_image[b]],
        ts.sub_x[s],
        ts.sub_y[s],
        remap[ts.sub_image[s]],
        ts.image_x[images],
        ts.residual[images],
        ts.errors[images],
        ts.misses[images],
        ts.objects[images],
        ts.kept[images],
        ts.correct[images],
    )


def _sums(ts: TrainingSet, p_box: np.ndarray, p_sub: np.ndarray, residual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    box_err = np.bincount(ts.box_image, p_box, ts.images)
    return box_err, np.bincount(ts.sub_image, p_sub, ts.images) + residual


def outcome_counts(samples: Sequence[LabeledRecord], threshold: float, iou: float, loc_iou: float) -> dict[str, int]:
    """How many kept predictions had each outcome, and how many objects were missed."""
    counts = dict.fromkeys(OUTCOMES, 0)
    missed = 0
    for s in samples:
        keep = s.record.confidence >= threshold
        r = s.record
        m = label_predictions(
            r.xyxy[keep], r.class_id[keep], r.confidence[keep], s.gt_xyxy, s.gt_class, iou=iou, loc_iou=loc_iou
        )
        for code, name in enumerate(OUTCOMES):
            counts[name] += int((m.outcome == code).sum())
        missed += int(m.missed.sum())
    return {**counts, "missed": missed}


def fit_error_model(
    samples: Sequence[LabeledRecord],
    *,
    threshold: float = 0.25,
    iou: float = 0.5,
    loc_iou: float = 0.1,
    kind: str = "boosting",
    embedding_dims: int = 0,
    folds: int = 5,
    seed: int = 0,
    num_classes: int | None = None,
) -> ErrorModel:
    """Fit the error predictor on labeled, scored images; with ``folds >= 2`` report its held-out quality.

    Args:
        samples: scored records (boxes down to a low NMS confidence, so misses can be seen
            near sub-threshold boxes) with their ground truth in the detector's class ids.
        threshold: the operating confidence (a box below it is not reported to the user).
        iou, loc_iou: matching IoU, and the IoU below which a wrong box is background.
        kind: ``boosting`` (default) or ``logistic``.
        embedding_dims: project image embeddings on this many principal axes (0: none).
        folds: cross-validation folds over images (0: no report).
        seed: seed of the fold split and the models.
        num_classes: the detector's class count (needed only when no sample has a box).

    Raises:
        DatasetError: no samples, or fewer images than folds.
        ConfigError: a bad kind, threshold or IoU.
    """
    check_settings(kind, folds)
    records = [s.record for s in samples]
    if not records:
        raise DatasetError("no labeled images to fit an error model on")
    spec = FeatureSpec.fit(records, threshold=threshold, embedding_dims=embedding_dims, num_classes=num_classes)
    ts = build_training_set(samples, spec, iou=iou, loc_iou=loc_iou)
    settings = {
        "kind": kind,
        "seed": seed,
        "threshold": threshold,
        "iou": iou,
        "loc_iou": loc_iou,
        "embedding_dims": spec.embedding_dims,
    }
    model = ErrorModel.fit_training_set(ts, spec, settings)
    report: dict[str, Any] = {
        "fit": {
            "images": ts.images,
            "objects": int(ts.objects.sum()),
            "kept_boxes": int(ts.box_y.size),
            "sub_threshold_boxes": int(ts.sub_y.size),
            "outcomes": outcome_counts(samples, threshold, iou, loc_iou),
            "features": {"box": len(spec.box_names), "image": len(spec.image_names)},
        }
    }
    if folds:
        p_box, p_sub, res = cross_validate(ts, spec, settings, folds, seed)
        box_err, misses = _sums(ts, p_box, p_sub, res)
        report["cross_validation"] = {
            "folds": folds,
            **box_report(ts, p_box, p_sub, spec),
            "per_image": image_report(records, ts, box_err, misses, threshold),
        }
    model.report = report
    return model


def evaluate_error_model(model: ErrorModel, samples: Sequence[LabeledRecord]) -> dict[str, Any]:
    """The same figures as the cross-validation, on labeled images the model was not fitted on."""
    s = model.settings
    records = [x.record for x in samples]
    ts = build_training_set(samples, model.spec, iou=s["iou"], loc_iou=s["loc_iou"])
    per_box, box_err, misses = model.predict_arrays(records)
    p = np.concatenate(per_box) if per_box else np.zeros(0)
    kept = np.concatenate([r.confidence >= model.spec.threshold for r in records]) if records else np.zeros(0, bool)
    return {
        **box_report(ts, p[kept], p[~kept], model.spec),
        "per_image": image_report(records, ts, box_err, misses, model.spec.threshold),
    }
