#!/usr/bin/env python
"""How well the error predictor finds where a detector is wrong, beside every built-in measure (issue #18).

Material: the COCO-pretrained YOLOv8n rebuilt from the shared OpenVINO model, fine-tuned for
``--epochs`` epochs at ``--imgsz`` on ``--train-images`` aquarium train images (a seeded
choice, cached in ``--work``). Its predictions on aquarium valid (127 images) and on the
aquarium train images it was not trained on (the pool) are scored down to confidence 0.05
(``cvactive.detect.model.Detector`` + ``cvactive.detect.scorer.Scorer``) and matched to the ground truth.

Figures, all measured in this run on the same images:

* ``issue_bar``: the issue's baseline, at the operating confidence 0.25 (measures computed on
  the boxes a user would see): Spearman of errors per image (false positives + misses at IoU
  0.5) and of errors per object with ``entropy_max``, ``binary_entropy_max``,
  ``binary_entropy_sum`` and the number of objects;
* ``cross_validation``: predictors (``boosting``, ``logistic``, boosting with 8 embedding axes)
  fitted on valid with 5-fold cross-validation over images: held-out AUROC / average precision /
  ECE of "this kept box is wrong" (beside ranking by low confidence), of "this sub-threshold box
  lies on a missed object", and per image Spearman of the predicted errors and predicted error
  rate with the real ones, beside every built-in image score;
* ``pool``: the default predictor fitted on all of valid, measured on the pool (the loop's
  situation: fit on the evaluation split, rank the pool);
* ``selection``: picking ``--k`` pool images by each score: real errors, objects and errors per
  object in the picks (random: mean of 20 seeds);
* ``timing``: seconds to fit, and to predict per image as a ratio to scoring the image.

    PYTHONPATH=. .venv/bin/python tools/error_model_figures.py [--work data/error-model]
        [--out benchmarks/results/error_model.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BAR_MEASURES = ("entropy_max", "binary_entropy_max", "binary_entropy_sum")


def prepare(work: Path, n_train: int, epochs: int, imgsz: int, seed: int) -> tuple[Path, list, list, dict]:
    """Fine-tune (cached); return the weights, the valid items, the pool items and the class names."""
    from cvactive.assets import asset
    from cvactive.loop.dataview import _subset_yaml
    from cvactive.train import train_detector
    from cvactive.weights import pretrained_checkpoint
    from cvactive.yolodata import load_yolo_dataset

    work = work.resolve()
    data = asset("aquarium/data.yaml")
    if data is None:
        sys.exit("aquarium not found in the assets folder (set CVACTIVE_ASSETS)")
    ds = load_yolo_dataset(data)
    train, val = list(ds.items("train")), list(ds.items("val"))
    chosen = set(np.random.default_rng(seed).choice(len(train), size=n_train, replace=False).tolist())
    pool = [item for i, item in enumerate(train) if i not in chosen]
    yaml_path = _subset_yaml(
        work / "finetune", ds.names, [train[i].image for i in sorted(chosen)], [v.image for v in val], "main"
    )
    weights = work / "finetune" / "train" / "weights" / "last.pt"
    if not weights.is_file():
        base = pretrained_checkpoint(work / "yolov8n-coco.pt")
        train_detector(yaml_path, work / "finetune", model=base, epochs=epochs, imgsz=imgsz, val=False, seed=seed)
    return weights, val, pool, dict(ds.names)


def score(weights: Path, items: list, names: dict, imgsz: int) -> tuple[list, float]:
    from cvactive.detect.model import Detector
    from cvactive.errormodel.collect import collect_labeled

    detector = Detector(weights, imgsz=imgsz, conf=0.05, embed=True)
    start = time.perf_counter()
    samples = collect_labeled(detector, items, names, progress=False)
    return samples, time.perf_counter() - start


def issue_bar(samples: list) -> dict[str, Any]:
    """The issue's figures: measures on the kept boxes (confidence >= 0.25), errors at IoU 0.5."""
    from cvactive.detect.scorer import Scorer
    from cvactive.errormodel.evaluate import error_rate
    from cvactive.errormodel.labels import label_predictions
    from cvactive.errormodel.quality import spearman

    scorer = Scorer()
    errors, objects, values = [], [], {m: [] for m in BAR_MEASURES}
    for s in samples:
        kept = s.record[s.record.confidence >= 0.25]
        kept.box_scores, kept.image_scores = {}, {}
        kept = scorer(kept)
        m = label_predictions(kept.xyxy, kept.class_id, kept.confidence, s.gt_xyxy, s.gt_class)
        errors.append(m.errors)
        objects.append(len(s.gt_class))
        for name in BAR_MEASURES:
            values[name].append(kept.image_scores[name])
    err, obj = np.asarray(errors, float), np.asarray(objects, float)
    rate = error_rate(err, obj)
    rows = {**values, "objects": obj}
    return {
        "images": len(samples),
        "errors": int(err.sum()),
        "objects": int(obj.sum()),
        "spearman": {k: {"errors": spearman(v, err), "error_rate": spearman(v, rate)} for k, v in rows.items()},
        "issue_figures": {
            "errors": {"entropy_max": 0.30, "binary_entropy_max": 0.49, "binary_entropy_sum": 0.74, "objects": 0.89},
            "error_rate": {"entropy_max": 0.16, "binary_entropy_max": 0.23, "binary_entropy_sum": 0.22},
        },
    }


def selection(pool: list, model: Any, k: int) -> dict[str, Any]:
    """Real errors in the ``k`` pool images each score ranks first (random: mean of 20 seeds)."""
    from cvactive.errormodel.labels import label_predictions
    from cvactive.selection import select

    records = model.attach([s.record for s in pool])
    errors, objects = [], []
    for s in pool:
        r = s.record[s.record.confidence >= model.spec.threshold]
        errors.append(label_predictions(r.xyxy, r.class_id, r.confidence, s.gt_xyxy, s.gt_class).errors)
        objects.append(len(s.gt_class))
    err, obj = np.asarray(errors), np.asarray(objects)

    def found(idx: np.ndarray) -> dict[str, float]:
        return {"errors": int(err[idx].sum()), "objects": int(obj[idx].sum()),
                "errors_per_object": round(float(err[idx].sum() / max(obj[idx].sum(), 1)), 4)}  # fmt: skip

    runs = {
        "learned_error": ("learned_error", {}),
        "learned_error per_object": ("learned_error", {"per_object": True}),
        **{f"uncertainty {m}": ("uncertainty", {"score": m}) for m in BAR_MEASURES},
    }
    out = {name: found(select(records, k, s, rng=0, **opt)[0]) for name, (s, opt) in runs.items()}
    rand = [found(select(records, k, "random", rng=seed)[0]) for seed in range(20)]
    out["random (mean of 20 seeds)"] = {key: round(float(np.mean([r[key] for r in rand])), 2) for key in rand[0]}
    out["all pool images"] = found(np.arange(len(pool)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default=str(ROOT / "data" / "error-model"), help="cache of the fine-tuned model")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "error_model.json"))
    parser.add_argument("--train-images", type=int, default=120)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--imgsz", type=int, default=416)
    parser.add_argument("--k", type=int, default=40, help="pool images picked per score in the selection figures")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from cvactive.errormodel import evaluate_error_model, fit_error_model

    weights, val_items, pool_items, names = prepare(Path(args.work), args.train_images, args.epochs, args.imgsz,
                                                    args.seed)  # fmt: skip
    val, val_seconds = score(weights, val_items, names, args.imgsz)
    pool, pool_seconds = score(weights, pool_items, names, args.imgsz)
    boxes = sum(len(s.record) for s in val + pool)
    if boxes == 0 or not any(len(s.gt_class) for s in val):
        sys.exit("the detector found no box (or valid has no object): nothing was measured, no result written")
    variants = {"boosting": {}, "logistic": {"kind": "logistic"}, "boosting + 8 embedding axes": {"embedding_dims": 8}}
    cv, fit_seconds = {}, {}
    for name, options in variants.items():
        start = time.perf_counter()
        model = fit_error_model(val, folds=5, seed=args.seed, **options)
        fit_seconds[name] = round(time.perf_counter() - start, 2)
        cv[name] = {"components": model.components, **model.report["cross_validation"]}
    model = fit_error_model(val, folds=0, seed=args.seed)
    start = time.perf_counter()
    model.attach([s.record for s in pool])
    predict_seconds = time.perf_counter() - start
    result = {
        "benchmark": "error_model",
        "material": {
            "model": "COCO YOLOv8n rebuilt from the shared OpenVINO model, fine-tuned on aquarium train images",
            "train_images": args.train_images,
            "epochs": args.epochs,
            "imgsz": args.imgsz,
            "seed": args.seed,
            "valid_images": len(val),
            "pool_images": len(pool),
            "score_conf": 0.05,
            "operating_conf": 0.25,
            "iou": 0.5,
            "loc_iou": 0.1,
            "valid_boxes": sum(len(s.record) for s in val),
            "pool_boxes": sum(len(s.record) for s in pool),
            "valid_objects": sum(len(s.gt_class) for s in val),
            "pool_objects": sum(len(s.gt_class) for s in pool),
        },
        "issue_bar": issue_bar(val),
        "default": {"kind": "boosting", "fit": model.report["fit"], "components": model.components},
        "cross_validation": cv,
        "pool": evaluate_error_model(model, pool),
        "selection": {"k": args.k, **selection(pool, model, args.k)},
        "timing": {
            "fit_with_5_fold_cv_seconds": fit_seconds,
            "score_seconds_per_image": round((val_seconds + pool_seconds) / (len(val) + len(pool)), 4),
            "predict_seconds_per_image": round(predict_seconds / len(pool), 5),
            "predict_over_score": round(predict_seconds / pool_seconds, 4),
        },
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from cvactive.outputs import portable_text  # paths relative to the repository / assets

    out.write_text(portable_text(json.dumps(result, indent=1)) + "\n")
    print_summary(result)
    print(f"-> {out}")
    return 0


def print_summary(r: dict[str, Any]) -> None:
    bar = r["issue_bar"]["spearman"]
    print(f"issue bar (valid, {r['issue_bar']['images']} images, conf 0.25): Spearman with errors / errors per object")
    for k, v in bar.items():
        print(
            f"  {k:<34} {v['errors']:.3f} / {v['error_rate'] if v['error_rate'] is None else round(v['error_rate'], 3)}"
        )
    for where, rep in (("valid, 5-fold CV (boosting)", r["cross_validation"]["boosting"]), ("pool", r["pool"])):
        b, rho = rep["box"], rep["per_image"]["spearman"]
        print(f"{where}: wrong-box AUROC {b['auroc']} (low confidence {b['auroc_of_low_confidence']}), "
              f"AP {b['average_precision']}, ECE {b['ece']}; miss AUROC {rep['miss']['auroc']}")  # fmt: skip
        for k in ("learned_errors", "learned_error_rate", *BAR_MEASURES, "kept_boxes", "objects (ground truth)"):
            print(f"  {k:<34} {rho[k]['errors']} / {rho[k]['error_rate']}")
    print(f"selection of {r['selection']['k']} pool images: errors found, errors per object")
    for k, v in r["selection"].items():
        if isinstance(v, dict):
            print(f"  {k:<34} {v['errors']:>7} {v['errors_per_object']:>7}")
    print("timing:", r["timing"])


if __name__ == "__main__":
    sys.exit(main())
