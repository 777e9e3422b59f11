"""``cvactive evaluate --dataset NAME --pred FIELD --gt FIELD --round R``: per-class AP, history, plot."""

from __future__ import annotations

import argparse
from typing import Any

from cvactive.config import CONFIG_DIR


def register(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="COCO-style per-class AP50 and AP50:95 of a round, appended to a history with a plot",
        description="FiftyOne's evaluate_detections(compute_mAP=True) with the IoU sweep and confidence "
        "threshold pinned by the config; the round goes into the data set's info and DIR/history.json, "
        "DIR/per_class_ap.png is redrawn, and AP drops beyond ap_drop_warning are warned about.",
    )
    p.add_argument("--dataset", required=True, help="FiftyOne data set name")
    p.add_argument("--pred", required=True, help="predictions field")
    p.add_argument("--gt", required=True, help="ground-truth field")
    p.add_argument("--round", type=int, required=True, help="round number")
    p.add_argument("--config", default=str(CONFIG_DIR / "evaluate.yaml"), help="YAML options (configs/evaluate.yaml)")
    p.add_argument("--out", default=None, help="folder for history.json and the plot (<CVACTIVE_DATA>/eval/NAME)")
    p.add_argument("--tag", default=None, help="evaluate only samples with this tag (overrides the config)")
    p.add_argument("--conf", type=float, default=None, help="confidence threshold (overrides the config)")
    p.add_argument(
        "--store",
        choices=("results", "marks", "none"),
        default=None,
        help="store the round under FiftyOne's eval key eval_round_<R>: results (config default), marks (also "
        "per-label TP/FP/FN marks; slow), none",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cvactive.config import check_kwargs, load_yaml
    from cvactive.store.evaluate import evaluate_round

    options = check_kwargs(evaluate_round, load_yaml(args.config), where=args.config)
    for reserved in ("dataset", "pred_field", "gt_field", "round_", "out_dir"):
        options.pop(reserved, None)
    if args.tag is not None:
        options["tag"] = args.tag
    if args.conf is not None:
        options["conf_threshold"] = args.conf
    if args.store is not None:
        options["store"] = args.store
    result, history, plot = evaluate_round(args.dataset, args.pred, args.gt, args.round, out_dir=args.out, **options)
    print(
        f"{result.dataset} round {result.round}: {result.pred_field} vs {result.gt_field} on {result.samples} "
        f"samples (IoU {result.iou_threshs[0]:g}:{result.iou_threshs[-1]:g} over {len(result.iou_threshs)} "
        f"thresholds, confidence >= {result.conf_threshold:g})"
    )
    print(result.table())
    if result.warnings:  # each was logged as a WARNING above
        print(f"{len(result.warnings)} warning(s): see above")
    if result.eval_key:
        print(f"stored in FiftyOne as evaluation {result.eval_key!r} (list_evaluations, the App's evaluation views)")
    print(f"history: {history}\nplot: {plot}")
    return 0
