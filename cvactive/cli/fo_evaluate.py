"""``cvactive evaluate --dataset NAME [--pred FIELD] [--gt FIELD] [--round R]``: per-class AP, history, plot.

The defaults are what push and pull write: predictions in ``predictions``, ground truth in
``ground_truth``; the round is the latest ``round-<n>`` tag of the data set; samples tagged
``val`` when there are any (the fixed split a history should follow), else every sample with both
fields.
"""

from __future__ import annotations

import argparse
from typing import Any

from cvactive._config import CONFIG_DIR


def register(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="COCO-style per-class AP50 and AP50:95 of a round, appended to a history with a plot",
        description="FiftyOne's evaluate_detections(compute_mAP=True) with the IoU sweep and confidence "
        "threshold pinned by the config; the round goes into the data set's info and DIR/history.json, "
        "DIR/per_class_ap.png is redrawn, and AP drops beyond ap_drop_warning are warned about.",
    )
    p.add_argument("--dataset", required=True, help="FiftyOne data set name")
    p.add_argument("--pred", default="predictions", help="predictions field (default predictions, as push writes)")
    p.add_argument("--gt", default="ground_truth", help="ground-truth field (default ground_truth, as pull writes)")
    p.add_argument("--round", type=int, default=None, help="round number (default: the latest round-<n> tag)")
    p.add_argument("--config", default=str(CONFIG_DIR / "evaluate.yaml"), help="YAML options (configs/evaluate.yaml)")
    p.add_argument("--out", default=None, help="folder for history.json and the plot (default: --data-dir/eval/NAME)")
    p.add_argument(
        "--tag",
        default=None,
        help="evaluate only samples with this tag (overrides the config; default: val when samples have it; "
        "all: every sample)",
    )
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
    from cvactive._config import load_yaml
    from cvactive.config import check_kwargs
    from cvactive.store.evaluate import evaluate_round

    options = check_kwargs(evaluate_round, load_yaml(args.config), where=args.config)
    for reserved in ("dataset", "pred_field", "gt_field", "round_", "out_dir"):
        options.pop(reserved, None)
    if args.tag is not None:
        options["tag"] = None if args.tag == "all" else args.tag
    round_, tag = default_round_and_tag(args.dataset, args.round, options.get("tag"), choose_tag=args.tag != "all")
    options["tag"] = tag
    if args.conf is not None:
        options["conf_threshold"] = args.conf
    if args.store is not None:
        options["store"] = args.store
    result, history, plot = evaluate_round(args.dataset, args.pred, args.gt, round_, out_dir=args.out, **options)
    print(
        f"{result.dataset} round {result.round}: {result.pred_field} vs {result.gt_field} on {result.samples} "
        f"samples (IoU {result.iou_threshs[0]:g}:{result.iou_threshs[-1]:g} over {len(result.iou_threshs)} "
        f"thresholds, confidence >= {result.conf_threshold:g})"
    )
    print(result.table())
    for warning in result.warnings:
        print(f"warning: {warning}")
    if result.eval_key:
        print(f"stored in FiftyOne as evaluation {result.eval_key!r} (list_evaluations, the App's evaluation views)")
    print(f"history: {history}\nplot: {plot}")
    return 0


def default_round_and_tag(
    dataset: str, round_: int | None, tag: str | None, *, choose_tag: bool = True
) -> tuple[int, str | None]:
    """The round (given, else the data set's latest ``round-<n>`` tag, else 1) and the tag (given,
    else ``val`` when some sample has it); each default is said in one line."""
    from cvactive.store._db import load_dataset

    ds = load_dataset(dataset)
    tags = ds.count_sample_tags()
    if round_ is None:
        pushed = [int(t[6:]) for t in tags if t.startswith("round-") and t[6:].isdigit()]
        round_ = max(pushed, default=1)
        print(f"round {round_} (the latest round-<n> tag; --round to choose)")
    if tag is None and choose_tag and tags.get("val"):
        tag = "val"
        print(f"evaluating the {tags['val']} samples tagged val (--tag to choose another split)")
    return round_, tag
