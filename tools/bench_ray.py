#!/usr/bin/env python
"""Ray engine benchmark: the local path and the Ray actor pool on the same frames and cores, in one run.

The same pool (coco128 val2017 + train2017 images and every ``--stride``-th frame of
slow_traffic_small.mp4, 713 images/frames by default) is scored by:

* ``local``: ``cvactive score``'s path in this process (``iter_scored`` into one JSON-lines file),
  detector load included (torch and ultralytics already imported);
* ``ray``: ``score_sharded(engine="ray")`` on a local Ray already started with ``--num-cpus`` CPUs,
  for each actor layout in ``--layouts`` (``ACTORSxCPUS``): actor start-up and model loads, shard
  scheduling and shard files included; Ray's own start-up is reported separately.

Layouts and the local path alternate over ``--rounds`` rounds (median kept) so machine load hits
them alike. Reported: images/s of each, the ratio of Ray seconds to local seconds (goal <= 1.15),
and the work done; both paths must produce the same number of records and boxes, and a result
with no boxes is refused.

    .venv/bin/python tools/bench_ray.py [--quick] [--out benchmarks/results/ray.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cvactive._env import offline_defaults  # noqa: E402
from cvactive.assets import OPENVINO_MODEL, asset, assets_dir  # noqa: E402

GOAL_RATIO = 1.15


def build_pool(folder: Path, stride: int, quick: bool) -> tuple[list[str], int]:
    """An image list (coco128 images) and the video: the same sources for both paths."""
    import math

    from cvactive.sources import open_video

    root = assets_dir()
    if root is None:
        raise SystemExit("assets not found: set CVACTIVE_ASSETS")
    splits = ["val2017"] if quick else ["val2017", "train2017"]
    images = sorted(str(p) for s in splits for p in (root / "coco128" / "images" / s).glob("*.jpg"))
    listing = folder / "images.txt"
    listing.write_text("\n".join(images) + "\n")
    video = str(root / "videos" / "slow_traffic_small.mp4")
    cap, info = open_video(video)
    cap.release()  # type: ignore[attr-defined]
    return [str(listing), video], len(images) + math.ceil(info.frame_count / stride)


def run_local(sources: list[str], model: str, out: Path, stride: int, batch: int) -> dict[str, Any]:
    from cvactive.detect.model import Detector
    from cvactive.detect.scorer import Scorer
    from cvactive.detect.stage import iter_scored
    from cvactive.io import JsonlWriter
    from cvactive.scale.plan import input_files

    start = time.perf_counter()
    detector = Detector(model)
    records = boxes = 0
    with JsonlWriter(out) as writer:
        for path in input_files(sources):  # the list's images, then the video, as the Ray plan reads them
            for rec in iter_scored(path, detector, Scorer(), stride=stride, batch=batch):
                writer.write(rec)
                records += 1
                boxes += len(rec)
    return {"seconds": time.perf_counter() - start, "records": records, "boxes": boxes}


def run_ray(sources: list[str], model: str, out: Path, stride: int, batch: int, actors: int, cpus: float) -> dict:
    from cvactive.scale import DetectorSpec, RayOptions, score_sharded

    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    summary = score_sharded(
        sources,
        out,
        DetectorSpec(model),
        ray=RayOptions(actors=actors, cpus_per_actor=cpus),
        batch=batch,
        stride=stride,
        shard_size=64,
        formats=["jsonl"],
        progress=False,
    )
    seconds = time.perf_counter() - start
    startup = max(summary.worker_startup.values(), default=0.0)
    return {"seconds": seconds, "records": summary.records, "boxes": summary.boxes, "actor_startup_seconds": startup}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stride", type=int, default=2, help="video frame stride (2: 457 of the 914 frames)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--num-cpus", type=int, default=os.cpu_count() or 2, help="CPUs of the local Ray (all)")
    parser.add_argument("--layouts", default="1x2,2x1", help="actor layouts ACTORSxCPUS, comma-separated")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds, median kept (2)")
    parser.add_argument("--quick", action="store_true", help="val2017 and every 10th frame only")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ray.json"))
    args = parser.parse_args()
    offline_defaults()
    if args.quick:
        args.stride = 10
    model_path = asset(OPENVINO_MODEL)
    if model_path is None:
        raise SystemExit(f"{OPENVINO_MODEL} not found in the assets folder")
    model = str(model_path)
    import ray
    import torch  # noqa: F401  (the local path's imports are warm, as in any long-lived process)
    import ultralytics  # noqa: F401

    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    sources, expected = build_pool(tmp, args.stride, args.quick)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    ray.init(num_cpus=args.num_cpus, include_dashboard=False, object_store_memory=256 << 20, log_to_driver=False)
    ray_init = time.perf_counter() - t0
    layouts = [tuple(float(v) for v in text.split("x")) for text in args.layouts.split(",") if text]
    runs: dict[str, list[dict[str, Any]]] = {"local": []}
    try:
        for r in range(args.rounds):
            runs["local"].append(run_local(sources, model, tmp / "local.jsonl", args.stride, args.batch))
            print(f"round {r + 1}: local {runs['local'][-1]}")
            for actors, cpus in layouts:
                name = f"ray_{int(actors)}x{cpus:g}"
                res = run_ray(sources, model, tmp / name, args.stride, args.batch, int(actors), cpus)
                runs.setdefault(name, []).append(res)
                print(f"round {r + 1}: {name} {res}")
    finally:
        ray.shutdown()
    local = runs["local"][0]
    if local["boxes"] == 0 or local["records"] != expected:
        done = f"{local['records']} of {expected} images/frames, {local['boxes']} boxes"
        raise SystemExit(f"refusing to write: the local path scored {done}")
    rows: dict[str, Any] = {}
    base = statistics.median(r["seconds"] for r in runs["local"])
    for name, results in runs.items():
        work = {(r["records"], r["boxes"]) for r in results}
        if work != {(local["records"], local["boxes"])}:
            raise SystemExit(f"refusing to write: {name} did other work {work} than the local path")
        seconds = statistics.median(r["seconds"] for r in results)
        rows[name] = {
            "seconds": round(seconds, 2),
            "images_per_second": round(local["records"] / seconds, 2),
            "ratio_to_local": round(seconds / base, 3),
            "within_goal": name == "local" or seconds / base <= GOAL_RATIO,
            "all_seconds": [round(r["seconds"], 2) for r in results],
        }
        if name != "local":
            # Each actor builds its detector (importing torch/ultralytics in a fresh worker, loading the
            # model): a fixed cost per run. Without it, the Ray path's steady throughput against the local path's.
            startup = statistics.median(r["actor_startup_seconds"] for r in results)
            rows[name]["actor_startup_seconds"] = round(startup, 2)
            rows[name]["ratio_to_local_after_actor_startup"] = round((seconds - startup) / base, 3)
    best = min((n for n in rows if n != "local"), key=lambda n: rows[n]["seconds"])
    result = {
        "benchmark": "ray",
        "what": "cvactive score: local path vs Ray actor pool on the same frames and the same CPUs",
        "work": {"records": local["records"], "boxes": local["boxes"], "sources": sources[1:], "images_list": True},
        "settings": {"model": Path(model).name, "stride": args.stride, "batch": args.batch, "rounds": args.rounds},
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "ray_num_cpus": args.num_cpus,
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
        },
        "ray_init_seconds": round(ray_init, 2),
        "goal_ratio": GOAL_RATIO,
        "paths": rows,
        "best_ray": best,
        "best_ratio_to_local": rows[best]["ratio_to_local"],
        "best_ratio_with_ray_init": round((rows[best]["seconds"] + ray_init) / base, 3),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from cvactive.outputs import portable_text  # paths relative to the repository / assets

    out.write_text(portable_text(json.dumps(result, indent=2)) + "\n")
    shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({k: result[k] for k in ("paths", "best_ratio_to_local", "ray_init_seconds")}, indent=1))
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
