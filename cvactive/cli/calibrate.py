"""``cvactive calibrate DATA --out calibration.json --plot reliability.png``."""

from __future__ import annotations

import argparse
from typing import Any

from cvactive.cli._common import add_detector_options, make_detector


def register(sub: Any) -> None:
    p = sub.add_parser(
        "calibrate",
        help="fit a confidence temperature on a labeled YOLO split; report detection ECE before and after",
        description="Match the detector's predictions to ground truth (same class, IoU >= --match), fit a "
        "temperature on part of the images, report detection expected calibration error (D-ECE) before and "
        "after on the held-out part, draw the reliability diagram, and save the temperature for "
        "'cvactive score --calibration FILE'.",
    )
    p.add_argument("data", help="YOLO data.yaml or data set folder, labeled with the model's class names")
    p.add_argument("--out", required=True, help="the temperature JSON to write")
    p.add_argument("--plot", default=None, help="reliability diagram PNG to write (held-out, before/after)")
    p.add_argument("--split", default="val", help="labeled split to use (default val)")
    p.add_argument("--holdout", type=float, default=0.5, help="share of images held out of the fit (0.5)")
    p.add_argument("--bins", type=int, default=10, help="confidence bins (10)")
    p.add_argument("--match", type=float, default=0.5, help="IoU for a prediction to be a true positive (0.5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fit / held-out split (0)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images")
    p.add_argument(
        "--sharpen",
        type=float,
        default=1.0,
        help="multiply logits by this first: > 1 simulates an over-confident model (demonstration; default 1)",
    )
    add_detector_options(p)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cvactive.consistency.calibration import calibrate

    detector = make_detector(args)
    report = calibrate(
        detector,
        args.data,
        split=args.split,
        holdout=args.holdout,
        bins=args.bins,
        iou=args.match,
        rng=args.seed,
        limit=args.limit,
        sharpen=args.sharpen,
        batch=args.batch,
        progress=not args.no_progress,
    )
    path = report.calibration(model=str(detector.model_path), data=str(args.data), split=args.split).save(args.out)
    r = report
    print(
        f"temperature {r.temperature:.4f} fitted on {r.fit_images} images ({r.fit_predictions} predictions) -> {path}"
    )
    print(f"  D-ECE fit:      {r.ece_fit_before:.4f} -> {r.ece_fit_after:.4f}")
    print(
        f"  D-ECE held-out: {r.ece_heldout_before:.4f} -> {r.ece_heldout_after:.4f} "
        f"({r.heldout_images} images, {r.heldout_predictions} predictions)"
    )
    if args.plot:
        print(f"  reliability diagram -> {r.plot(args.plot)}")
    return 0
