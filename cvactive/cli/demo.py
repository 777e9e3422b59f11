"""``cvactive demo``: the main job on the built-in synthetic porch data, offline."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run cvactive end to end on the built-in synthetic porch data (offline)",
        description="Render the porch data set, score its images and video, and show the frames a person "
        "should label first.",
    )
    p.add_argument("--out", default="demo-output", help="output folder (default: demo-output)")
    p.add_argument("--model", default=None, help="your own weights (default: the COCO YOLOv8n OpenVINO model)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cvactive.cli._common import default_model
    from cvactive.detector import Detector
    from cvactive.porch import video_path, write_dataset
    from cvactive.score import score_source
    from cvactive.scoring import Scorer

    out = Path(args.out)
    data_yaml = write_dataset(out / "porch")
    print(f"[1] porch data set: {data_yaml}")
    detector = Detector(args.model or default_model(), imgsz=320, conf=0.1)
    scorer = Scorer()
    pool = score_source(data_yaml.parent / "images" / "train", detector, out / "scores.jsonl", scorer=scorer)
    print(f"[2] scored {pool.records} pool images ({pool.boxes} boxes) -> {pool.out}")
    video = score_source(video_path(data_yaml.parent), detector, out / "video_scores.jsonl", scorer=scorer, stride=5)
    print(f"[3] scored {video.records} video frames -> {video.out}")
    from cvactive.io import load_jsonl

    records = sorted(load_jsonl(pool.out), key=lambda r: -r.image_scores.get("entropy_max", 0.0))
    print("[4] most uncertain pool images (entropy_max):")
    for r in records[:5]:
        print(f"    {r.image_scores.get('entropy_max', 0):.3f}  {len(r)} boxes  {r.source}")
    return 0
