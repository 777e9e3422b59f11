#!/usr/bin/env python
"""Harvest benchmark on slow_traffic_small.mp4 with the OpenVINO YOLOv8n, in one run.

(a) harvest with a model rule on every frame against a plain loop of OpenCV decode +
    ``YOLO.predict`` (goal: at least 0.9 of its throughput);
(b) harvest with random rules only against bare OpenCV decoding (goal: at least 0.8);
(c) resident memory while harvesting the video looped ten times (goal: growth under 100 MB).

(a) and (b) alternate baseline and harvest for ``--rounds`` rounds so machine load hits both
alike; each round gives a paired ratio (harvest fps / baseline fps of the run just before),
and the reported ratio is the median of those (the fps figures are medians too).

    .venv/bin/python tools/bench_harvest.py [--quick] [--out benchmarks/results/harvest.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cvactive._env import offline_defaults  # noqa: E402
from cvactive.assets import OPENVINO_MODEL, asset  # noqa: E402

MODEL_RULES = [{"kind": "uncertainty", "name": "uncertain", "score": "binary_entropy_max", "min_value": 0.95}]
RANDOM_RULES = [{"kind": "random", "name": "random", "probability": 0.05}]


def plain_predict(video: str, model: str, stride: int) -> tuple[int, float]:
    """Decode every frame with OpenCV and ``YOLO.predict`` every ``stride``-th one."""
    import cv2
    from ultralytics import YOLO

    yolo = YOLO(model, task="detect")
    cap = cv2.VideoCapture(video)
    ok, frame = cap.read()
    yolo.predict(frame, verbose=False)  # warm-up and predictor set-up, outside the timing
    cap.release()
    cap = cv2.VideoCapture(video)
    start, n, index = time.perf_counter(), 0, 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if index % stride == 0:
            yolo.predict(frame, imgsz=640, conf=0.25, iou=0.7, verbose=False)
            n += 1
        index += 1
    cap.release()
    return n, time.perf_counter() - start


def bare_decode(video: str) -> tuple[int, float]:
    import cv2

    cap = cv2.VideoCapture(video)
    start, n = time.perf_counter(), 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n, time.perf_counter() - start


def run_harvest(video: str, out: Path, detector, **kw) -> tuple[int, float, object]:
    from cvactive.harvest import harvest

    start = time.perf_counter()
    summary = harvest(video, out, detector=detector, progress=False, handle_signals=False, fresh=True, **kw)
    return summary.frames, time.perf_counter() - start, summary


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="model on every 4th frame in (a), 3 loops in (c)")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "harvest.json"))
    args = parser.parse_args()
    offline_defaults()
    model_path, video_path = asset(OPENVINO_MODEL), asset("videos/slow_traffic_small.mp4")
    if model_path is None or video_path is None:
        print("the OpenVINO model or slow_traffic_small.mp4 is missing from the assets folder")
        return 2
    model, video = str(model_path), str(video_path)
    stride = 4 if args.quick else 1
    rounds = args.rounds or 3
    loops = 3 if args.quick else 10
    from cvactive.detector import Detector

    detector = Detector(model)
    tmp = Path(tempfile.mkdtemp(prefix="bench-harvest-"))
    results: dict = {
        "video": Path(video).name,
        "model": Path(model).name,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "quick": args.quick,
    }

    # (a) model rule on every (stride-th) frame vs decode + YOLO.predict
    plain_fps, harvest_fps = [], []
    for r in range(rounds):
        n, dt = plain_predict(video, model, stride)
        plain_fps.append(n / dt)
        n, dt, s = run_harvest(
            video,
            tmp / f"a{r}",
            detector,
            rules=MODEL_RULES,
            frame_stride=stride,
            dedup={"method": "phash"},
            budget={"per_minute": 20},
        )
        harvest_fps.append(n / dt)
        print(f"(a) round {r}: plain {plain_fps[-1]:.1f} fps, harvest {harvest_fps[-1]:.1f} fps, kept {s.kept}")
    a = {
        "frames_inferred": n,
        "plain_predict_fps": statistics.median(plain_fps),
        "harvest_model_rule_fps": statistics.median(harvest_fps),
    }
    a["round_ratios"] = [h / p for h, p in zip(harvest_fps, plain_fps)]
    a["ratio"] = statistics.median(a["round_ratios"])
    a["goal"] = 0.9
    results["model_rule_vs_predict"] = a

    # (b) random rules only vs bare decoding
    dec_fps, rnd_fps = [], []
    for r in range(max(rounds, 5)):
        n, dt = bare_decode(video)
        dec_fps.append(n / dt)
        n, dt, s = run_harvest(
            video, tmp / f"b{r}", None, rules=RANDOM_RULES, annotate=False, dedup={"method": "phash"}
        )
        rnd_fps.append(n / dt)
        print(f"(b) round {r}: decode {dec_fps[-1]:.0f} fps, random harvest {rnd_fps[-1]:.0f} fps, kept {s.kept}")
    b = {"bare_decode_fps": statistics.median(dec_fps), "harvest_random_fps": statistics.median(rnd_fps)}
    b["round_ratios"] = [h / p for h, p in zip(rnd_fps, dec_fps)]
    b["ratio"] = statistics.median(b["round_ratios"])
    b["goal"] = 0.8
    results["random_vs_decode"] = b

    # (c) memory over the video looped `loops` times (a folder of links), model rule on every 10th frame
    folder = tmp / "loop"
    folder.mkdir()
    for i in range(loops):
        (folder / f"loop{i:02d}.mp4").symlink_to(video)
    samples: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append((time.perf_counter(), rss_mb()))
            time.sleep(0.25)

    before = rss_mb()
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    n, dt, s = run_harvest(
        str(folder),
        tmp / "c",
        detector,
        rules=[*RANDOM_RULES, *MODEL_RULES],
        frame_stride=10,
        dedup={"method": "phash"},
        budget={"per_minute": 30, "total": 100000},
    )
    done.set()
    thread.join()
    t0 = samples[0][0]
    warm = [m for t, m in samples if t - t0 >= dt * 0.1] or [samples[-1][1]]
    c = {
        "loops": loops,
        "frames": n,
        "seconds": dt,
        "kept": s.kept,
        "rss_before_mb": before,
        "rss_after_first_tenth_mb": warm[0],
        "rss_peak_mb": max(m for _, m in samples),
        "rss_end_mb": samples[-1][1],
    }
    c["growth_mb"] = c["rss_end_mb"] - c["rss_after_first_tenth_mb"]
    c["goal_mb"] = 100
    results["memory_long_run"] = c

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"(a) harvest with a model rule / decode + YOLO.predict: {a['ratio']:.2f} "
        f"({a['harvest_model_rule_fps']:.1f} vs {a['plain_predict_fps']:.1f} fps; goal >= 0.9)"
    )
    print(
        f"(b) harvest with random rules / bare decoding: {b['ratio']:.2f} "
        f"({b['harvest_random_fps']:.0f} vs {b['bare_decode_fps']:.0f} fps; goal >= 0.8)"
    )
    print(
        f"(c) {loops} loops, {n} frames in {dt:.0f} s: RSS {c['rss_after_first_tenth_mb']:.0f} -> "
        f"{c['rss_end_mb']:.0f} MB (growth {c['growth_mb']:+.1f} MB, peak {c['rss_peak_mb']:.0f}; goal < 100)"
    )
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
