"""``cvactive errors fit|predict|evaluate``: an error predictor for a detector, fitted on labeled images.

* ``fit --model M --data D [--split val] [--out FILE]``: score the labeled split (down to a low
  NMS confidence, 0.05, so misses near weak boxes are seen), judge every prediction, fit the
  predictor with cross-validation, save it beside the model (``<model>.errors.npz`` and a JSON
  report) and print its held-out quality beside the built-in measures;
* ``predict SCORES.jsonl --predictor FILE --out OUT.jsonl``: add the expected errors to scored
  records (``cvactive select --strategy learned_error`` reads them; ``cvactive select
  --error-model FILE`` does the same in one step);
* ``evaluate --predictor FILE --model M --data D --split S``: the same figures on other labeled images.
"""

from __future__ import annotations

import argparse
from typing import Any

from cvactive.cli._common import add_detector_options, make_detector


def register(sub: Any) -> None:
    p = sub.add_parser(
        "errors",
        help="learn where the detector is wrong: fit an error predictor on labeled images, apply it to scores",
        description="Fit a model of the detector's errors (wrong boxes and missed objects) on a labeled YOLO split, "
        "save it beside the model, and apply it to scored records for `cvactive select --strategy learned_error`.",
    )
    cmds = p.add_subparsers(dest="errors_command", metavar="ACTION", required=True)
    fit = cmds.add_parser("fit", help="fit and save the predictor; print its cross-validated quality")
    _labeled_options(fit)
    fit.add_argument(
        "--out", help="predictor file, a .npz of plain arrays (default: <model>.errors.npz beside the model)"
    )
    fit.add_argument("--kind", default="boosting", help="boosting (default) or logistic")
    fit.add_argument("--folds", type=int, default=5, help="cross-validation folds over images (5; 0: none)")
    fit.add_argument("--threshold", type=float, default=0.25, help="operating confidence of the detector (0.25)")
    fit.add_argument("--match", type=float, default=0.5, help="IoU a correct prediction needs (0.5)")
    fit.add_argument("--loc-iou", type=float, default=0.1, help="IoU below which a wrong box is background (0.1)")
    fit.add_argument("--embedding-dims", type=int, default=0, help="principal axes of the image embedding (0)")
    fit.add_argument("--seed", type=int, default=0, help="seed of the folds and models (0)")
    fit.set_defaults(func=run_fit)

    pred = cmds.add_parser("predict", help="add expected errors to a scores file (JSON lines)")
    pred.add_argument("scores", help="JSON-lines scores written by `cvactive score --with-class-scores`")
    pred.add_argument("--predictor", required=True, help="the .npz `cvactive errors fit` wrote (never unpickled)")
    pred.add_argument("--out", required=True, help="JSON-lines file to write")
    pred.set_defaults(func=run_predict)

    ev = cmds.add_parser("evaluate", help="the predictor's quality on other labeled images")
    _labeled_options(ev)
    ev.add_argument("--predictor", required=True, help="the .npz `cvactive errors fit` wrote (never unpickled)")
    ev.add_argument("--out", help="JSON report to write")
    ev.set_defaults(func=run_evaluate)


def _labeled_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="YOLO data.yaml or folder labeled with the model's class names")
    p.add_argument("--split", default="val", help="the labeled split (default val; never one you select from)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images")
    add_detector_options(p)
    p.set_defaults(conf=0.05)  # low: sub-threshold boxes are where misses are seen
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _samples(args: argparse.Namespace, embed: bool) -> Any:
    from cvactive.errormodel.collect import collect_split

    detector = make_detector(args, embed=embed) if embed else make_detector(args)
    samples = collect_split(
        detector, args.data, split=args.split, limit=args.limit, batch=args.batch, progress=not args.no_progress
    )
    return detector, samples


def _print_quality(report: dict[str, Any], title: str) -> None:
    box, miss, per_image = report["box"], report["miss"], report["per_image"]
    print(f"  {title}:")
    print(
        f"    wrong kept boxes: AUROC {box['auroc']}, average precision {box['average_precision']} "
        f"(base rate {box['base_rate']}), ECE {box['ece']}; "
        f"low confidence alone: AUROC {box['auroc_of_low_confidence']}"
    )
    if miss["boxes"]:
        print(f"    sub-threshold boxes on a missed object: AUROC {miss['auroc']}, AP {miss['average_precision']}")
    rho = per_image["spearman"]
    print(f"    per image ({per_image['images']} images), Spearman with errors / with errors per object:")
    names = ["learned_errors", "learned_error_rate", "entropy_max", "binary_entropy_max", "binary_entropy_sum"]
    builtin = [k for k in rho if not k.startswith("learned_") and k not in names and k != "objects (ground truth)"]
    best = max(builtin, key=lambda k: rho[k]["errors"] or -1.0, default=None)
    best_rate = max(builtin, key=lambda k: rho[k]["error_rate"] or -1.0, default=None)
    for name in dict.fromkeys([*names, best, best_rate, "objects (ground truth)"]):
        if name in rho:
            print(f"      {name:<28} {rho[name]['errors']!s:>7} / {rho[name]['error_rate']!s:>7}")


def run_fit(args: argparse.Namespace) -> int:
    from cvactive.errormodel import default_path, fit_error_model

    detector, samples = _samples(args, embed=args.embedding_dims > 0)
    model = fit_error_model(
        samples,
        threshold=args.threshold,
        iou=args.match,
        loc_iou=args.loc_iou,
        kind=args.kind,
        embedding_dims=args.embedding_dims,
        folds=args.folds,
        seed=args.seed,
        num_classes=len(detector.names),
    )
    model.settings.update(model=str(detector.model_path), data=str(args.data), split=args.split)
    path = model.save(args.out or default_path(detector.model_path))
    fit = model.report["fit"]
    print(
        f"error model ({args.kind}) fitted on {fit['images']} images: {fit['kept_boxes']} kept boxes, "
        f"{fit['sub_threshold_boxes']} sub-threshold boxes, {fit['objects']} objects -> {path}"
    )
    print("  outcomes: " + ", ".join(f"{k} {v}" for k, v in fit["outcomes"].items()))
    if "cross_validation" in model.report:
        _print_quality(model.report["cross_validation"], f"held out ({model.report['cross_validation']['folds']}-fold)")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from cvactive.errormodel import TOTAL, ErrorModel
    from cvactive.io import load_jsonl, write_jsonl

    model = ErrorModel.load(args.predictor)
    records = model.attach(load_jsonl(args.scores))
    write_jsonl(args.out, records, class_scores=True)
    total = sum(r.image_scores[TOTAL] for r in records)
    print(f"expected errors added to {len(records)} records ({total:.1f} in all) -> {args.out}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from cvactive.errormodel import ErrorModel, evaluate_error_model

    model = ErrorModel.load(args.predictor)
    _, samples = _samples(args, embed=model.spec.embedding_dims > 0)
    report = evaluate_error_model(model, samples)
    print(f"error model {args.predictor} on {args.data} {args.split}:")
    _print_quality(report, "these images")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return 0
