#!/usr/bin/env python
"""Cost of each consistency measure relative to plain prediction, on the same frames, in one run.

Frames: the first ``--frames`` images of COCO val2017 from the assets folder (real photos,
mixed sizes). Two detectors:

* the OpenVINO INT8 YOLOv8n (COCO) of the assets: plain ``Detector.predict`` (the baseline),
  plain + the class-score measures (``Scorer``), calibration (a temperature applied to every
  record), TTA (3 views: ``tta_localization`` + ``tta_consistency``), and a committee of two
  (``committee_disagreement``: itself and a second copy of the same model);
* a PyTorch YOLOv8n (random init with batch-norm statistics from the frames; speed does not
  depend on the weights, ``--conf`` keeps about as many boxes as a trained model would): plain
  predict (its own baseline), TTA, and MC dropout with ``T`` passes (``mc_variance`` +
  ``mc_bald``). MC dropout reruns only the head, so it is also set against the naive
  alternative, ``T`` whole forward passes, estimated as ``T x`` plain.

Each variant runs once on a warm-up batch, then the variants are timed interleaved, round by
round (machine load hits all alike), and the median round is kept. Ratios are seconds per
frame over the same model's plain prediction.

    .venv/bin/python tools/bench_measures.py [--frames 24] [--rounds 2] [--mc-passes 10] [--quick]
        [--out benchmarks/results/measures.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def frames(n: int) -> list[np.ndarray]:
    from cvactive.assets import asset
    from cvactive.sources import read_image

    folder = asset("coco128/images/val2017")
    if folder is None:
        sys.exit("coco128 val2017 images not found in the assets folder (set CVACTIVE_ASSETS)")
    return [read_image(p) for p in sorted(folder.glob("*.jpg"))[:n]]


def timed(run: Callable[[list[np.ndarray]], object], images: list[np.ndarray], batch: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(images), batch):
        run(images[i : i + batch])
    return (time.perf_counter() - start) / len(images)


def bench(variants: dict[str, Callable], images: list[np.ndarray], batch: int, rounds: int) -> dict[str, float]:
    for run in variants.values():  # warm-up
        run(images[:batch])
    times: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(rounds):
        for name, run in variants.items():
            times[name].append(timed(run, images, batch))
            print(f"  round {r + 1} {name:<28} {times[name][-1] * 1000:8.1f} ms/frame", flush=True)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--mc-passes", type=int, default=10)
    parser.add_argument("--conf", type=float, default=0.02, help="NMS threshold of the random-init PyTorch model")
    parser.add_argument("--quick", action="store_true", help="8 frames, 1 round")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "measures.json"))
    args = parser.parse_args()
    if args.quick:
        args.frames, args.rounds = 8, 1

    os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="bench-measures-yolo-"))
    from cvactive.architectures import random_checkpoint
    from cvactive.assets import OPENVINO_MODEL, asset
    from cvactive.consistency.calibration import Calibration
    from cvactive.consistency.measured import MeasuredDetector
    from cvactive.detect.model import Detector
    from cvactive.detect.scorer import Scorer

    images = frames(args.frames)
    ov_path = asset(OPENVINO_MODEL)
    if ov_path is None:
        sys.exit(f"{OPENVINO_MODEL} not found in the assets folder")
    ov = Detector(ov_path)
    scorer = Scorer()
    cal = Calibration(1.5)
    tta = MeasuredDetector(ov, ["tta_localization", "tta_consistency"], scorer=scorer)
    committee = MeasuredDetector(ov, ["committee_disagreement"], scorer=scorer, committee=[ov_path])
    calibrated = MeasuredDetector(ov, [], calibration=cal)
    print(f"OpenVINO YOLOv8n, {len(images)} frames, batch {args.batch}")
    ov_times = bench(
        {
            "plain predict": ov.predict,
            "class-score measures": lambda ims: [scorer(r) for r in ov.predict(ims)],
            "calibration": calibrated.predict,
            "tta (3 views)": tta.predict,
            "committee (2 members)": committee.predict,
        },
        images,
        args.batch,
        args.rounds,
    )

    with tempfile.TemporaryDirectory() as tmp:
        pt_path = random_checkpoint(Path(tmp) / "yolov8n-random.pt", images[:4], seed=0, imgsz=640)
        pt = Detector(pt_path, conf=args.conf)
        boxes = np.mean([len(r) for r in pt.predict(images[: args.batch])])
        pt_tta = MeasuredDetector(pt, ["tta_localization", "tta_consistency"], scorer=scorer)
        plain_pt = Detector(pt_path, conf=args.conf)  # no dropout hook on this one
        mc = MeasuredDetector(pt, ["mc_variance", "mc_bald"], scorer=scorer, mc_passes=args.mc_passes, rng=0)
        print(f"PyTorch YOLOv8n (random init, {boxes:.0f} boxes per frame), device {pt.device}")
        pt_times = bench(
            {
                "plain predict": plain_pt.predict,
                "tta (3 views)": pt_tta.predict,
                f"mc dropout (T={args.mc_passes})": mc.predict,
            },
            images,
            args.batch,
            args.rounds,
        )

    def table(times: dict[str, float]) -> dict[str, dict[str, float]]:
        base = times["plain predict"]
        return {k: {"ms_per_frame": round(v * 1000, 2), "ratio": round(v / base, 3)} for k, v in times.items()}

    pt_table = table(pt_times)
    pt_table[f"naive mc ({args.mc_passes} full passes, estimated)"] = {
        "ms_per_frame": round(pt_times["plain predict"] * args.mc_passes * 1000, 2),
        "ratio": float(args.mc_passes),
    }
    result = {
        "benchmark": "measures",
        "frames": len(images),
        "rounds": args.rounds,
        "batch": args.batch,
        "mc_passes": args.mc_passes,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "openvino_yolov8n": table(ov_times),
        "pytorch_yolov8n": {"boxes_per_frame": round(float(boxes), 1), "device": pt.device, **pt_table},
        "measures": {
            "tta_localization": round(ov_times["tta (3 views)"] / ov_times["plain predict"], 3),
            "tta_consistency": round(ov_times["tta (3 views)"] / ov_times["plain predict"], 3),
            "committee_disagreement": round(ov_times["committee (2 members)"] / ov_times["plain predict"], 3),
            "mc_variance": pt_table[f"mc dropout (T={args.mc_passes})"]["ratio"],
            "mc_bald": pt_table[f"mc dropout (T={args.mc_passes})"]["ratio"],
            "calibration": round(ov_times["calibration"] / ov_times["plain predict"], 3),
        },
        "notes": "ratio = seconds per frame over the same model's plain Detector.predict; tta_localization and "
        "tta_consistency share one TTA run, mc_variance and mc_bald one MC-dropout run; the committee's second "
        "member is a copy of the first (cost, not disagreement, is measured here).",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from cvactive.outputs import portable_text  # paths relative to the repository / assets

    out.write_text(portable_text(json.dumps(result, indent=2)) + "\n")
    print("\ncost relative to plain prediction (same frames, same run):")
    for name, ratio in result["measures"].items():
        print(f"  {name:<24} {ratio:6.2f}x")
    print(f"  naive MC ({args.mc_passes} full passes)  {float(args.mc_passes):6.2f}x (estimate)")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
