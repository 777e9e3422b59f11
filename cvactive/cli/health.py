"""``cvactive health DATA [--config configs/health.yaml] [--out DIR]``: class balance, label errors, gates.

Exit codes for CI: 0 every gate passes, 1 a gate fails (each failing gate is named on the
terminal), 2 the input cannot be read.
"""

from __future__ import annotations

import argparse
from typing import Any

from cvactive._config import CONFIG_DIR


def register(sub: Any) -> None:
    p = sub.add_parser(
        "health",
        help="class balance, box statistics, label errors, duplicates and leakage, with CI gates",
        description="Check a YOLO data set (data.yaml or folder), a harvest output folder (manifest.jsonl) or a "
        "FiftyOne data set (--dataset): instances and images per class, imbalance, box sizes and positions, "
        "brightness, duplicates, leakage between splits and label errors with file and line. Writes report.json, "
        "report.md and PNG plots to --out. Exit 0: all gates pass; 1: a gate fails; 2: the input cannot be read.",
    )
    p.add_argument("data", nargs="?", help="data.yaml, YOLO data set folder, or harvest folder with manifest.jsonl")
    p.add_argument("--dataset", help="a FiftyOne data set name (instead of DATA)")
    p.add_argument("--field", default="ground_truth", help="the FiftyOne Detections field (default ground_truth)")
    p.add_argument(
        "--config", default=str(CONFIG_DIR / "health.yaml"), help="gates and options (default configs/health.yaml)"
    )
    p.add_argument("--out", help="folder for report.json, report.md and the plots (default: no files)")
    p.add_argument("--html", action="store_true", help="also write report.html")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--no-images", action="store_true", help="labels only: no image headers, brightness or hashes")
    p.add_argument("--max-images", type=int, help="pixel-check a seeded sample of at most this many images")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cvactive._config import load_yaml
    from cvactive.config import check_kwargs
    from cvactive.health import analyse, check_health
    from cvactive.health.report import summary_lines

    if args.out is not None:  # before any work: a folder that can take the report files
        from cvactive.outputs import check_dir_output

        check_dir_output(args.out)
    options = check_kwargs(analyse, load_yaml(args.config), args.config)
    if args.no_images:
        options.update(image_sizes=False, image_checks=False)
    if args.max_images is not None:
        options["max_images"] = args.max_images
    options["progress"] = not args.no_progress
    report = check_health(
        args.data,
        dataset=args.dataset,
        field=args.field,
        out=args.out,
        plots=not args.no_plots,
        html=args.html,
        **options,
    )
    print("\n".join(summary_lines(report)))
    if report.files:
        print(f"report: {report.files.get('report.md')} (+ report.json, {len(report.files) - 2} more)")
    return report.exit_code
