"""``cvactive annotate --dataset NAME --batch QUEUE|FILE``: send a batch to Label Studio with the model's boxes
as pre-labels; ``cvactive annotate --dataset NAME --collect``: finished annotations back as ground truth."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "annotate",
        help="send a batch to Label Studio (pre-labelled by the model) or --collect the finished annotations",
        description="Send the review queue, the to-annotate queue, a selection file or a harvest manifest to an "
        "annotation backend through FiftyOne's annotation API, the model's predictions as pre-labels; a sample "
        "already sent is not sent again. With --collect, write every finished task's latest annotation into the "
        "ground-truth field and leave the rest pending. The server comes from LABEL_STUDIO_URL and "
        "LABEL_STUDIO_API_KEY (never stored or printed); ./dev.sh labelstudio starts one (docs/annotate.md).",
    )
    p.add_argument("--dataset", required=True, help="FiftyOne data set name")
    p.add_argument(
        "--batch",
        help="review-queue (samples tagged to-review), to-annotate (queued by cvactive pull), or a JSON-lines "
        "file of records (selection file, harvest manifest; pushed first)",
    )
    p.add_argument("--collect", action="store_true", help="collect finished annotations instead of sending")
    p.add_argument("--anno-key", default=None, help="with --collect: only this annotation run (default: all)")
    p.add_argument("--backend", default="labelstudio", help="annotation backend (default labelstudio)")
    p.add_argument("--label-field", default="ground_truth", help="where annotations go (default ground_truth)")
    p.add_argument(
        "--prelabels",
        default="predictions",
        help="field shown as pre-labels (default predictions; 'none': start from the ground truth, or empty)",
    )
    p.add_argument(
        "--min-conf",
        type=float,
        default=None,
        help="pre-labels below this confidence are left out (default: the review queue's display confidence)",
    )
    p.add_argument(
        "--classes", default=None, help="comma-separated labels annotators may choose (default: the data set's)"
    )
    p.add_argument("--resend", action="store_true", help="send samples again that an earlier batch covers")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cvactive.errors import ConfigError

    if args.collect:
        if args.batch:
            raise ConfigError("annotate: give --batch to send, or --collect to collect, not both")
        return _collect(args)
    if not args.batch:
        raise ConfigError("annotate needs --batch (review-queue, to-annotate or a records file), or --collect")
    from cvactive.store.annotate import annotate
    from cvactive.store.labelstudio_client import credentials, redact_url

    s = annotate(
        args.dataset,
        args.batch,
        backend=args.backend,
        label_field=args.label_field,
        prelabel_field=None if args.prelabels.lower() == "none" else args.prelabels,
        min_conf=args.min_conf,
        classes=args.classes.split(",") if args.classes else None,
        resend=args.resend,
    )
    if s.missing:
        print(f"{len(s.missing)} records of {args.batch} have no sample (image missing at push): {s.missing[0]} ...")
    if not s.sent:
        print(f"{s.dataset}: nothing to send: the {s.batch} samples of the batch were all sent before")
        return 0
    url, _ = credentials()
    print(
        f"{s.dataset}: sent {s.sent} samples with {s.prelabels} pre-labels to Label Studio project {s.project} "
        f"(run {s.anno_key}; {s.already_sent} of the batch sent before); classes: {', '.join(s.classes)}"
    )
    print(f"annotate at {redact_url(url)}/projects/{s.project}; then cvactive annotate --dataset {s.dataset} --collect")
    return 0


def _collect(args: argparse.Namespace) -> int:
    from cvactive.store.collect import collect

    s = collect(args.dataset, anno_key=args.anno_key)
    if not s.runs:
        print(f"{s.dataset}: no annotation runs to collect; send a batch first (cvactive annotate --batch ...)")
        return 0
    print(
        f"{s.dataset}: collected {s.collected} samples ({s.updated} updated) -> {s.boxes} boxes in "
        f"the ground truth; {s.unchanged} collected before; {s.pending} pending"
        + (f" ({s.skipped} skipped by the annotator)" if s.skipped else "")
        + (f"; {s.missing_tasks} tasks deleted in Label Studio" if s.missing_tasks else "")
    )
    if s.collected:
        who = ", ".join(f"{k} x{v}" for k, v in sorted(s.annotators.items()))
        print(
            f"pre-labels: {s.kept} kept, {s.edited} edited, {s.deleted} deleted; {s.added} boxes added"
            + (f"; {s.rotated} rotated boxes written as their hull" if s.rotated else "")
            + f"; annotators: {who}"
        )
    return 0
