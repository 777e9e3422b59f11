"""``cvactive push INPUT --dataset NAME``: scored records into FiftyOne for review."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "push",
        help="push a scores file, harvest manifest or selection file into a FiftyOne data set for review",
        description="Upsert each record as a sample (predictions with per-box measures, image scores as "
        "fields, tags round-<n>, rule:/strategy:, to-review for records chosen for review) and save the view "
        "'review-queue'. Batched, idempotent and safe with other pushers and reviewers at once: pushing again, or "
        "re-running after a crash, leaves one sample per image/frame and keeps every tag reviewers added. Records "
        "with embeddings (score --embed) get FiftyOne Brain's similarity index, 2-D map and uniqueness.",
    )
    p.add_argument("input", help="JSON-lines file of records (cvactive score / harvest / select output)")
    p.add_argument("--dataset", required=True, help="FiftyOne data set name (created if missing)")
    p.add_argument("--round", type=int, default=None, help="active-learning round (tag round-<n>)")
    p.add_argument("--strategy", default=None, help="selection strategy tag (default: the records' 'strategy')")
    p.add_argument("--tag", action="append", default=[], help="extra tag for every sample (repeatable)")
    p.add_argument("--label-field", default="predictions", help="field for the predictions (default predictions)")
    p.add_argument(
        "--review",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="put the samples in the review queue (tag to-review); default: only records selected or harvested for "
        "review (a strategy, rank or harvest rules), not plain predictions such as those pushed for evaluation",
    )
    p.add_argument("--review-score", default="entropy_max", help="score the review-queue sorts by (entropy_max)")
    p.add_argument(
        "--display-conf",
        type=float,
        default=0.25,
        help="the review queue hides predictions below this confidence; pull ignores them too (0.25)",
    )
    p.add_argument("--no-brain", action="store_true", help="skip FiftyOne Brain on records with embeddings")
    p.add_argument("--batch-size", type=int, default=500, help="records per database write (default 500)")
    p.add_argument("--no-create", action="store_true", help="fail if the data set does not exist")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cvactive.store.push import push_file

    s = push_file(
        args.input,
        args.dataset,
        round_=args.round,
        strategy=args.strategy,
        tags=args.tag,
        label_field=args.label_field,
        review=args.review,
        review_score=args.review_score,
        display_conf=args.display_conf,
        brain=not args.no_brain,
        batch_size=args.batch_size,
        create=not args.no_create,
        progress=not args.no_progress,
    )
    if s.discarded:
        for key, reason in s.skipped[:5]:
            print(f"  skipped {key}: {reason}")
        print(
            f"pushed no sample ({len(s.skipped)}/{s.records} records skipped); "
            f"the new data set {s.dataset!r} was not kept",
            file=sys.stderr,
        )
        return 1
    print(
        f"pushed {s.records - len(s.skipped)}/{s.records} records ({s.boxes} boxes) -> {s.dataset}: "
        f"{s.added} added, {s.updated} updated in {s.batches} batch(es)"
        + (f", {s.frames_extracted} video frames extracted" if s.frames_extracted else "")
    )
    print(
        f"{s.dataset}: {s.samples} samples, {s.review_queue} to review in the saved view 'review-queue' "
        f"({s.queued} queued by this push)"
    )
    if s.map_method:
        print(f"FiftyOne Brain on {s.embeddings} embeddings: similarity index, uniqueness, 2-D map ({s.map_method})")
    for key, reason in s.skipped[:20]:
        print(f"  skipped {key}: {reason}")
    if len(s.skipped) > 20:
        print(f"  ... and {len(s.skipped) - 20} more skipped")
    if s.records and len(s.skipped) == s.records:
        return 1
    return 1 if s.skipped else 0
