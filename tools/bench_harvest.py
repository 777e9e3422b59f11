#!/usr/bin/env python
"""Harvest benchmark on slow_traffic_small.mp4 with the OpenVINO YOLOv8n, in one run.

(a) harvest with a model rule on every (``stride``-th) frame against a plain loop of OpenCV +
    ``YOLO.predict`` doing the same decode work: it grabs every frame and decodes (retrieves)
    and predicts the ``stride``-th ones, as the harvester does (goal: at least 0.9 of its
    throughput). The harvest runs with its default ``workers`` (the inference pipeline) and,
    as "before", with ``workers=0`` (frame after frame, the path it had before the pipeline);
    both must infer the same frames, find the same boxes and keep the same frames;
(b) harvest with a random rule only against bare OpenCV doing the same work: it grabs every
    frame, decodes (retrieves) exactly the frames the harvester decodes (the ones its seeded
    random rule fires on) and writes the frames the harvester keeps as JPEG files at the same
    quality (goal: at least 0.8);
(c) resident memory while harvesting the video looped ten times (goal: growth under 100 MB).

(a) and (b) alternate baseline and harvest for ``--rounds`` rounds (in (a) the order of the
three runs rotates from round to round) so machine load hits them alike; each round gives a
paired ratio (harvest fps / baseline fps of the same round), and the reported ratio is the
median of those (the fps figures are medians too). Every section
records the work both sides did (frames grabbed, frames decoded, frames inferred, boxes found,
frames kept) and the benchmark refuses to write a result when a measured path did no work or
the two sides did different decode work.

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
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cvactive._env import offline_defaults  # noqa: E402
from cvactive.assets import OPENVINO_MODEL, asset  # noqa: E402
from cvactive.detect.scorer import Scorer  # noqa: E402

MODEL_RULES = [{"kind": "uncertainty", "name": "uncertain", "score": "binary_entropy_max", "min_value": 0.95}]
#: JPEG quality of written frames, the harvester's default, on both sides of (b).
JPEG_QUALITY = 90
RANDOM_RULES = [{"kind": "random", "name": "random", "probability": 0.05}]
SEED = 0


class NoWork(RuntimeError):
    """A measured path did no work (or not the same work as its baseline): no result is written."""


@dataclass(frozen=True)
class CountingScorer(Scorer):
    """The default scorer, also counting what it scores: every inferred frame is scored once.

    ``seen`` gets each frame's box count (``list.append`` is atomic, and the pipeline's workers
    score at the same time).
    """

    seen: list[int] = field(default_factory=list, compare=False, repr=False)

    def __call__(self, record: Any) -> Any:
        self.seen.append(len(record))
        return super().__call__(record)


def plain_predict(video: str, yolo: Any, stride: int) -> dict[str, Any]:
    """Grab every frame; decode and ``YOLO.predict`` every ``stride``-th (the harvester's decode work)."""
    import cv2

    cap = cv2.VideoCapture(video)
    start, index, work = time.perf_counter(), 0, {"grabbed": 0, "decoded": 0, "inferred": 0, "boxes": 0}
    while cap.grab():
        work["grabbed"] += 1
        if index % stride == 0:
            ok, frame = cap.retrieve()
            work["decoded"] += int(ok)
            result = yolo.predict(frame, imgsz=640, conf=0.25, iou=0.7, verbose=False)[0]
            work["inferred"] += 1
            work["boxes"] += len(result.boxes)
        index += 1
    cap.release()
    return {**work, "seconds": time.perf_counter() - start}


def chosen_frames(video: str, frames: int) -> set[int]:
    """The frames the random rule fires on: the harvester decodes exactly these (its seeded draws)."""
    from cvactive.harvest.rules import unit_draw

    (rule,) = RANDOM_RULES
    return {i for i in range(frames) if unit_draw(SEED, video, i, rule["name"]) < rule["probability"]}


def bare_decode(video: str, decode: set[int], write: Collection[int] = (), out: Path | None = None) -> dict[str, Any]:
    """Grab every frame; decode (retrieve) the ones in ``decode`` and write the ones in ``write``
    as JPEG files in ``out``, as the random-only harvester does."""
    import cv2

    if write and out is None:
        raise ValueError("bare_decode: frames to write need an out folder")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(video)
    start, index, grabbed, decoded, written = time.perf_counter(), 0, 0, 0, 0
    while cap.grab():
        grabbed += 1
        if index in decode:
            ok, frame = cap.retrieve()
            decoded += int(ok)
            if ok and index in write and out is not None:
                written += int(
                    cv2.imwrite(str(out / f"{index:06d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                )
        index += 1
    cap.release()
    return {"grabbed": grabbed, "decoded": decoded, "written": written, "seconds": time.perf_counter() - start}


def run_harvest(video: str, out: Path, detector: Any, **kw: Any) -> dict[str, Any]:
    from cvactive.harvest import harvest

    counter = CountingScorer()
    start = time.perf_counter()
    s = harvest(
        video, out, detector=detector, scorer=counter, progress=False, handle_signals=False, fresh=True, seed=SEED, **kw
    )
    seconds = time.perf_counter() - start
    kept_boxes = sum(len(json.loads(x)["boxes"]) for x in (out / "manifest.jsonl").read_text().splitlines())
    return {
        "frames": s.frames,
        "candidates": s.counts["candidates"],
        "inferred": s.inferred,
        "scored": len(counter.seen),
        "boxes": sum(counter.seen),
        "kept": s.kept,
        "kept_boxes": kept_boxes,
        "seconds": seconds,
    }


def paired(rounds: list[tuple[dict[str, Any], dict[str, Any]]], frames_key: str, prefix: str = "") -> dict[str, Any]:
    """Median fps of each side and the median of the per-round ratios (keys ``prefix + ...``)."""
    base = [b[frames_key] / b["seconds"] for b, _ in rounds]
    harv = [h["frames"] / h["seconds"] for _, h in rounds]
    ratios = [h / b for h, b in zip(harv, base)]
    result = {
        "baseline_fps": statistics.median(base),
        "harvest_fps": statistics.median(harv),
        "round_ratios": ratios,
        "ratio": statistics.median(ratios),
    }
    return {f"{prefix}{k}" if k != "baseline_fps" else k: v for k, v in result.items()}


def section_a(video: str, model: str, detector: Any, tmp: Path, stride: int, rounds: int) -> dict[str, Any]:
    import cv2
    from ultralytics import YOLO

    from cvactive.detect.engines import engine_for
    from cvactive.detect.pipeline import default_workers

    yolo = YOLO(model, task="detect")
    cap = cv2.VideoCapture(video)
    yolo.predict(cap.read()[1], verbose=False)  # warm-up and predictor set-up, outside the timing
    cap.release()
    engine_for(detector)  # the pipeline's engine is compiled once, outside the timing (as the predictor is)
    kw = {"rules": MODEL_RULES, "stride": stride, "dedup": {"method": "phash"}, "budget": {"per_minute": 20}}
    runs = {
        "baseline": lambda r: plain_predict(video, yolo, stride),
        "sequential": lambda r: run_harvest(video, tmp / f"a{r}-w0", detector, workers=0, **kw),
        "harvest": lambda r: run_harvest(video, tmp / f"a{r}", detector, **kw),
    }
    order = list(runs)
    pairs, before = [], []
    for r in range(rounds):
        done = {name: runs[name](r) for name in order[r % 3 :] + order[: r % 3]}
        base, seq, harv = done["baseline"], done["sequential"], done["harvest"]
        pairs.append((base, harv))
        before.append((base, seq))
        print(
            f"(a) round {r}: plain {base['inferred'] / base['seconds']:.1f} fps, harvest "
            f"{harv['frames'] / harv['seconds']:.1f} fps (workers {default_workers()}), "
            f"{seq['frames'] / seq['seconds']:.1f} fps (workers 0), kept {harv['kept']}"
        )
    base, harv = pairs[-1]
    seq = before[-1][1]
    if harv["inferred"] == 0 or harv["boxes"] == 0 or harv["kept"] == 0:
        raise NoWork(
            f"(a) the harvest inferred {harv['inferred']} frames, found {harv['boxes']} boxes, kept {harv['kept']}"
        )
    if base["decoded"] != harv["inferred"] or base["grabbed"] < harv["frames"] or harv["scored"] != harv["inferred"]:
        raise NoWork(f"(a) different work: baseline decoded {base['decoded']}, harvest inferred {harv['inferred']}")
    same = ("frames", "inferred", "boxes", "kept", "kept_boxes")
    if any(seq[k] != harv[k] for k in same) or base["boxes"] != harv["boxes"]:
        raise NoWork(f"(a) the runs disagree: predict {base['boxes']} boxes, workers 0 {seq}, pipeline {harv}")
    return {
        "work": {"baseline": base, "harvest": harv, "sequential": seq},
        **paired(pairs, "inferred"),
        **paired(before, "inferred", prefix="sequential_"),
        "workers": default_workers(),
        "speedup_over_sequential": statistics.median(
            (h["frames"] / h["seconds"]) / (s["frames"] / s["seconds"]) for (_, h), (_, s) in zip(pairs, before)
        ),
        "goal": 0.9,
    }


def section_b(video: str, tmp: Path, rounds: int) -> dict[str, Any]:
    import cv2

    cap = cv2.VideoCapture(video)
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    decode = chosen_frames(video, frames)
    kw: dict[str, Any] = {"rules": RANDOM_RULES, "annotate": False, "dedup": {"method": "phash"}}
    kw["jpeg_quality"] = JPEG_QUALITY
    first = run_harvest(video, tmp / "b-kept", None, **kw)  # which frames it keeps (seeded: every run alike)
    lines = (tmp / "b-kept" / "manifest.jsonl").read_text().splitlines()
    write = {int(json.loads(x)["frame"]) for x in lines}
    if len(write) != first["kept"]:
        raise NoWork(f"(b) the manifest lists {len(write)} frames, the harvest kept {first['kept']}")
    pairs = []
    for r in range(rounds):
        base = bare_decode(video, decode, write, tmp / f"b{r}-bare")
        harv = run_harvest(video, tmp / f"b{r}", None, **kw)
        pairs.append((base, harv))
        print(
            f"(b) round {r}: decode {base['grabbed'] / base['seconds']:.0f} fps, "
            f"random harvest {harv['frames'] / harv['seconds']:.0f} fps, kept {harv['kept']}"
        )
    base, harv = pairs[-1]
    if harv["frames"] == 0 or harv["kept"] == 0 or base["decoded"] == 0:
        raise NoWork(f"(b) the harvest looked at {harv['frames']} frames and kept {harv['kept']}")
    if base["decoded"] != harv["candidates"] or base["grabbed"] != harv["frames"] or base["written"] != harv["kept"]:
        raise NoWork(
            f"(b) different work: baseline grabbed {base['grabbed']}, decoded {base['decoded']} and wrote "
            f"{base['written']}; the harvest looked at {harv['frames']}, decoded {harv['candidates']} candidates "
            f"and kept {harv['kept']}"
        )
    return {"work": {"baseline": base, "harvest": harv}, **paired(pairs, "grabbed"), "goal": 0.8}


def rss_mb() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss / 2**20)


def section_c(video: str, detector: Any, tmp: Path, loops: int) -> dict[str, Any]:
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
    harv = run_harvest(
        str(folder),
        tmp / "c",
        detector,
        rules=[*RANDOM_RULES, *MODEL_RULES],
        stride=10,
        dedup={"method": "phash"},
        budget={"per_minute": 30, "total": 100000},
    )
    done.set()
    thread.join()
    if harv["frames"] == 0 or harv["inferred"] == 0 or harv["kept"] == 0:
        raise NoWork(f"(c) the harvest looked at {harv['frames']} frames and kept {harv['kept']}")
    t0 = samples[0][0]
    warm = [m for t, m in samples if t - t0 >= harv["seconds"] * 0.1] or [samples[-1][1]]
    c = {
        "loops": loops,
        "work": harv,
        "rss_before_mb": before,
        "rss_after_first_tenth_mb": warm[0],
        "rss_peak_mb": max(m for _, m in samples),
        "rss_end_mb": samples[-1][1],
        "goal_mb": 100,
    }
    c["growth_mb"] = c["rss_end_mb"] - c["rss_after_first_tenth_mb"]
    return c


def scheduling() -> str:
    """How this process is scheduled against other jobs (Linux autogroup and nice), for the record."""
    import os

    try:
        group = Path("/proc/self/autogroup").read_text().strip()
    except OSError:
        group = "no autogroup"
    return f"{group}; nice {os.nice(0)}"


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
    rounds = args.rounds or 3
    from cvactive.detect.model import Detector

    detector = Detector(model)
    tmp = Path(tempfile.mkdtemp(prefix="bench-harvest-"))
    results: dict[str, Any] = {
        "video": Path(video).name,
        "model": Path(model).name,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "quick": args.quick,
        "scheduling": scheduling(),
    }
    try:
        a = section_a(video, model, detector, tmp, 4 if args.quick else 1, rounds)
        b = section_b(video, tmp, max(rounds, 5))
        c = section_c(video, detector, tmp, 3 if args.quick else 10)
    except NoWork as err:
        print(f"no result written: {err}")
        return 1
    results.update(model_rule_vs_predict=a, random_vs_decode=b, memory_long_run=c)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from cvactive.outputs import portable_text  # paths relative to the repository / assets

    out.write_text(portable_text(json.dumps(results, indent=2)) + "\n")
    wa, wb = a["work"]["harvest"], b["work"]["harvest"]
    print(
        f"(a) harvest with a model rule / decode + YOLO.predict: {a['ratio']:.2f} ({a['harvest_fps']:.1f} vs "
        f"{a['baseline_fps']:.1f} fps; goal >= 0.9); {wa['inferred']} frames inferred, {wa['boxes']} boxes "
        f"(predict: {a['work']['baseline']['boxes']}), {wa['kept']} kept"
    )
    print(
        f"    before the pipeline (workers 0): {a['sequential_ratio']:.2f} ({a['sequential_harvest_fps']:.1f} fps); "
        f"pipeline (workers {a['workers']}) / workers 0: {a['speedup_over_sequential']:.2f}x, same frames, boxes, kept"
    )
    print(
        f"(b) harvest with a random rule / bare OpenCV, same decodes: {b['ratio']:.2f} ({b['harvest_fps']:.0f} vs "
        f"{b['baseline_fps']:.0f} fps; goal >= 0.8); {wb['frames']} frames grabbed, {wb['candidates']} decoded "
        f"by both, {wb['kept']} kept"
    )
    print(
        f"(c) {c['loops']} loops, {c['work']['frames']} frames in {c['work']['seconds']:.0f} s: RSS "
        f"{c['rss_after_first_tenth_mb']:.0f} -> {c['rss_end_mb']:.0f} MB (growth {c['growth_mb']:+.1f} MB, "
        f"peak {c['rss_peak_mb']:.0f}; goal < 100); {c['work']['kept']} kept"
    )
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
