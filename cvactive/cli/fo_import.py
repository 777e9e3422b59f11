"""``cvactive import DATA --dataset NAME``: an Ultralytics YOLO data set into FiftyOne."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "import",
        help="import an Ultralytics YOLO data set (data.yaml or folder) into FiftyOne, splits as tags",
        description="Each image becomes a sample keyed by its path with its boxes in --label-field and its split "
        "as a tag; re-importing updates in place. Bad label lines are reported and skipped; so are unreadable "
        "images (exit 1 when any was skipped).",
    )
    p.add_argument("data", help="data.yaml or a folder with images/<split> and labels/<split>")
    p.add_argument("--dataset", required=True, help="FiftyOne data set name (created if missing)")
    p.add_argument("--label-field", default="ground_truth", help="field for the labels (default ground_truth)")
    p.add_argument("--splits", default=None, help="comma-separated splits to import (default: all)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cvactive.store.labels import import_yolo_dataset

    s = import_yolo_dataset(
        args.data,
        args.dataset,
        label_field=args.label_field,
        splits=tuple(args.splits.split(",")) if args.splits else None,
        progress=not args.no_progress,
    )
    splits = ", ".join(f"{k} {v}" for k, v in s.splits.items())
    print(f"imported {s.added + s.updated} images ({splits}), {s.boxes} boxes, {len(s.classes)} classes -> {s.dataset}")
    print(f"{s.dataset}: {s.samples} samples ({s.added} added, {s.updated} updated)")
    if s.synthetic:
        print(f"  {s.synthetic} synthetic images (provenance.jsonl)")
    if s.issues:
        print(f"  {len(s.issues)} label issue(s):")
        for issue in s.issues[:10]:
            print(f"    {issue.path}{'' if issue.line is None else f':{issue.line}'}: {issue.kind}: {issue.message}")
    if s.unreadable:
        print(f"  {len(s.unreadable)} unreadable image(s) skipped (empty, truncated or not an image):")
        for path in s.unreadable[:10]:
            print(f"    {path}")
        return 1
    return 0
