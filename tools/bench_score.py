#!/usr/bin/env python
"""Scoring benchmark: plain ``YOLO.predict`` against cvactive scoring on the same frames, in one run.

Frames are decoded once into memory (decoding is not what is measured), then each variant
runs over the same batches, interleaved round by round so that machine load hits all of them
alike. Reported: median seconds per frame of each variant and its ratio to plain predict.

    .venv/bin/python tools/bench_score.py [--frames 96] [--rounds 5] [--out benchmarks/results/score.json]

Goal (issue 2): all measures add at most 10% to plain prediction; embeddings at most 25%.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cvactive._env import offline_defaults  # noqa: E402
from cvactive.assets import OPENVINO_MODEL, asset  # noqa: E402


def load_frames(video: Path, n: int) -> list:
    from cvactive.sources import iter_frames

    frames = []
    for image, _meta in iter_frames(video, stride=max(1, 900 // n)):
        frames.append(image)
        if len(frames) == n:
            break
    return frames


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_model(model: str, frames: list, batch: int, rounds: int, imgsz: int, embed: bool) -> dict:
    from ultralytics import YOLO

    from cvactive.detector import Detector
    from cvactive.scoring import Scorer

    detector = Detector(model, imgsz=imgsz)
    scorer = Scorer()
    plain = YOLO(model, task="detect")
    kwargs = detector.predict_kwargs()
    batches = [frames[i : i + batch] for i in range(0, len(frames), batch)]

    def run_plain() -> None:
        for b in batches:
            plain.predict(b, verbose=False, **kwargs)

    def run_scored() -> None:
        for b in batches:
            for record in detector.predict(b):
                scorer(record)

    variants: dict[str, Callable[[], None]] = {"plain_predict": run_plain, "cvactive_all_measures": run_scored}
    if embed:
        embedder = Detector(model, imgsz=imgsz, embed=True)

        def run_embed() -> None:
            for b in batches:
                for record in embedder.predict(b):
                    scorer(record)

        variants["cvactive_measures_and_embeddings"] = run_embed
    for fn in variants.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            times[name].append(timed(fn) / len(frames))
    medians = {k: statistics.median(v) for k, v in times.items()}
    base = medians["plain_predict"]
    return {
        "model": model,
        "frames": len(frames),
        "batch": batch,
        "imgsz": imgsz,
        "seconds_per_frame": medians,
        "ratio_to_plain_predict": {k: v / base for k, v in medians.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "score.json"))
    args = parser.parse_args()
    offline_defaults()
    video, openvino = asset("videos/slow_traffic_small.mp4"), asset(OPENVINO_MODEL)
    if video is None or openvino is None:
        print("needs ../shared/assets (slow_traffic_small.mp4 and the OpenVINO model)", file=sys.stderr)
        return 2
    import torch

    frames = load_frames(video, args.frames)
    results = {
        "benchmark": "score",
        "video": video.name,
        "machine": {"cpu_threads": torch.get_num_threads(), "platform": platform.platform()},
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "runs": [
            bench_model(str(openvino), frames, 1, args.rounds, 640, embed=False),
            bench_model("yolov8n.yaml", frames, args.batch, args.rounds, 640, embed=True),
        ],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    for run in results["runs"]:
        ratios = ", ".join(f"{k} {v:.3f}x" for k, v in run["ratio_to_plain_predict"].items())
        print(f"{Path(run['model']).name}: {ratios}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
