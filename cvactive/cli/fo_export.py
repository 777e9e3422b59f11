"""``cvactive export --dataset NAME --out DIR``: an Ultralytics YOLO data set for retraining."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="export a FiftyOne data set's labels as an Ultralytics YOLO data set (DIR/data.yaml)",
        description="Writes images/<split>, labels/<split> and data.yaml from the train/val/test tags; "
        "samples without labels are left out.",
    )
    p.add_argument("--dataset", required=True, help="FiftyOne data set name")
    p.add_argument("--out", required=True, help="a new or empty folder (or an earlier export, with --overwrite)")
    p.add_argument("--label-field", default="ground_truth", help="labels to export (default ground_truth)")
    p.add_argument("--tag", default=None, help="export only samples with this tag")
    p.add_argument("--untagged", default="train", help="split of samples with no split tag (default train)")
    p.add_argument("--val-fraction", type=float, default=0.2, help="held out when no sample is tagged val (0.2)")
    p.add_argument("--media", choices=("copy", "symlink"), default="copy", help="copy or symlink images (copy)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="move an earlier export in --out aside (to <out>.old-<time>)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the held-out validation split (0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cvactive.store.export import export_yolo

    s = export_yolo(
        args.dataset,
        args.out,
        label_field=args.label_field,
        tag=args.tag,
        untagged=args.untagged,
        val_fraction=args.val_fraction,
        media=args.media,
        overwrite=args.overwrite,
        rng=args.seed,
    )
    splits = ", ".join(f"{k} {v}" for k, v in s.splits.items())
    print(f"exported {sum(s.splits.values())} images ({splits}), {s.boxes} boxes, {len(s.classes)} classes")
    print(f"  -> {s.data_yaml}")
    if s.moved_aside is not None:
        print(f"  the earlier export was moved aside to {s.moved_aside}")
    if s.skipped_unlabeled:
        print(f"  {s.skipped_unlabeled} samples without {args.label_field} left out")
    return 0
