"""``cvactive pull --dataset NAME --out DIR``: reviewed samples back as ground truth and annotation queues."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "pull",
        help="turn reviewed samples into ground truth and annotation queues; or import labels made elsewhere",
        description="Approved samples: predictions minus labels tagged fp (and wrong-class) become ground truth. "
        "Rejected samples, and approved ones tagged wrong-class/missed, are queued for annotation "
        "(DIR/annotate.txt). With --labels, import YOLO txt folders or COCO JSON into the ground-truth field.",
    )
    p.add_argument("--dataset", required=True, help="FiftyOne data set name")
    p.add_argument("--out", help="folder for pull.json, annotate.txt and ground_truth.jsonl")
    p.add_argument("--pred-field", default="predictions", help="reviewed predictions (default predictions)")
    p.add_argument("--gt-field", default="ground_truth", help="ground-truth field (default ground_truth)")
    p.add_argument("--overwrite", action="store_true", help="replace ground truth approved samples already have")
    p.add_argument(
        "--min-conf",
        type=float,
        default=None,
        help="predictions below this confidence are not ground truth (default: the review queue's display "
        "confidence, the boxes reviewers saw)",
    )
    p.add_argument("--labels", help="import labels annotated elsewhere: a YOLO .txt folder or a COCO .json file")
    p.add_argument("--format", choices=("yolo", "coco"), default=None, help="format of --labels (default: guess)")
    p.add_argument("--classes", default=None, help="comma-separated class names of YOLO --labels")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cvactive.errors import ConfigError

    if args.labels:
        from cvactive.store.labels import import_labels

        s = import_labels(
            args.labels,
            args.dataset,
            fmt=args.format,
            label_field=args.gt_field,
            classes=args.classes.split(",") if args.classes else None,
        )
        print(
            f"imported {s.boxes} boxes into {s.dataset}.{args.gt_field} on {s.updated} samples "
            f"({len(s.unmatched)} samples had no label file; {len(s.issues)} label issues)"
        )
        for issue in s.issues[:10]:
            print(f"  {issue.path}:{issue.line}: {issue.kind}: {issue.message}")
        return 0
    if not args.out:
        raise ConfigError("pull needs --out DIR (or --labels PATH to import labels)")
    from cvactive.store.review import pull_reviews

    r = pull_reviews(
        args.dataset,
        args.out,
        pred_field=args.pred_field,
        gt_field=args.gt_field,
        overwrite=args.overwrite,
        min_conf=args.min_conf,
    )
    print(
        f"{r.dataset}: {r.approved} approved -> {r.gt_boxes} ground-truth boxes in {args.gt_field} "
        f"({r.fp_removed} fp and {r.wrong_class_removed} wrong-class predictions left out"
        + (f", {r.below_display} below confidence {r.min_conf:g}" if r.below_display else "")
        + (f", {r.kept_existing} already labeled kept" if r.kept_existing else "")
        + ")"
    )
    print(
        f"queued for annotation: {r.rejected} rejected, {r.corrections} to correct -> {args.out}/annotate.txt; "
        f"{r.pending} still to review"
    )
    for item in r.reviewed[:10]:
        label_tags = ", ".join(f"{k} x{v}" for k, v in item["label_tags"].items()) or "none"
        print(f"  {item['filepath']}: tags {', '.join(item['tags'])}; label tags {label_tags}")
    if len(r.reviewed) > 10:
        print(f"  ... {len(r.reviewed) - 10} more reviewed samples in {args.out}/pull.json")
    return 0
