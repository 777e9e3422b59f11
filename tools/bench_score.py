#!/usr/bin/env python
"""Pool-scoring benchmark, in one run on the same images, with models that detect.

Part 1, throughput (per model, on the coco128 val2017 images and on slow_traffic_small.mp4):

* ``engine_limit``: the raw compiled model on pre-made tensors, nothing else: for the OpenVINO
  IR, the pipeline's own compiled graph (THROUGHPUT hint, conversions folded in) fed the
  letterboxed ``uint8`` images through an ``AsyncInferQueue``; for the ``.pt``, the network's
  forward pass on the letterboxed float batches. No decoding, no NMS.
* ``predict_loop``: Ultralytics' own loop, ``YOLO(model).predict(source, stream=True)`` over the
  same folder or video, results iterated (it decodes and runs NMS).
* ``cvactive_score``: :func:`cvactive.detect.stage.score_source` (what ``cvactive score`` runs after
  start-up), pipelined: decode, letterbox, infer, NMS, class-score rows, every measure and
  aggregation, JSON lines written.
* ``cvactive_sequential``: the same with ``workers=0`` (the path before the pipeline), for context.
* ``decode_letterbox``: decoding and letterboxing every frame of the source in one thread, no
  model: the CPU work a pipeline must add to the engine's. On a machine whose cores the engine
  already fills, the best any pipeline can do is ``ceiling = 1 / (1/engine + 1/(cores * decode))``
  (each image costs the engine's core-seconds plus its decoding; NMS and the measures are left
  out, so the true ceiling is lower still). ``cvactive_score_vs_ceiling`` says how close it comes;
  ``ceiling_ratios`` say what the ceiling is worth against the engine and the predict loop (a goal
  above them cannot be met on these cores by any pipeline).

Each variant's CPU time (every thread of the process, the engine's included) is recorded per
image (``cpu_ms_per_image``): the engine alone fills the cores with its core-seconds, and what a
pipeline adds over them (``cpu_ms_per_image_over_engine``) is what it costs in throughput.

Variants are interleaved: every round runs each of them once (order rotated from round to round),
so a change of machine load hits them alike, and each ratio is taken within a round (cvactive's
rate over the baseline's in the same round); the reported ratio is the median of those per-round
ratios (``ratios_per_round`` has them all), the rates are medians over rounds. Goals (issue 22):
``cvactive_score`` >= 0.9x ``engine_limit`` and >= 1.5x ``predict_loop``, on the video and on the
image folder.

The machine must be idle: with a 1-minute load average above 0.5 before the run the tool refuses
(exit code 2) unless ``--busy`` is given; then it runs and the result says ``"idle": false``.
The load average before and after each case is recorded.

Part 2, the cost of the measures (in-memory frames, so decoding is out of it): plain
``YOLO.predict`` on batches against cvactive's detector + all measures, and + embeddings
(PyTorch), as seconds per frame and ratios (issue 2's goals: measures <= 1.10x, embeddings <= 1.25x).

Every case records the images and boxes it processed; the tool refuses to write a result when
a measured path found no box.

    .venv/bin/python tools/bench_score.py [--rounds 5] [--pt-video-stride 3] [--out benchmarks/results/score.json]
    .venv/bin/python tools/bench_score.py --busy --skip-pt --skip-measures --out /tmp/score.json  # a look under load

The ``.pt`` runs take every 3rd video frame by default (CPU time): cvactive keeps frames
0, 3, 6, ... and Ultralytics' ``vid_stride=3`` frames 2, 5, 8, ...: the same number of frames of
the same clip, each decoded (the others grabbed) by both.
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CVACTIVE_DATA", str(ROOT / "data"))  # the pretrained checkpoint cached in the checkout

from cvactive._env import offline_defaults  # noqa: E402
from cvactive.assets import OPENVINO_MODEL, asset  # noqa: E402

GOALS = {"vs_engine_limit": 0.9, "vs_predict_loop": 1.5, "measures": 1.10, "embeddings": 1.25}
#: The highest 1-minute load average at which the machine counts as idle.
IDLE_LOAD = 0.5


class NoWorkError(RuntimeError):
    """A measured path found no box: its timing would prove nothing."""


def timed(fn: Callable[[], tuple[int, int]]) -> tuple[float, int, int]:
    """``(seconds, images, boxes)`` of one call of ``fn`` (which returns images and boxes)."""
    seconds, _, images, boxes = timed_cpu(fn)
    return seconds, images, boxes


def timed_cpu(fn: Callable[[], tuple[int, int]]) -> tuple[float, float, int, int]:
    """``(seconds, cpu_seconds, images, boxes)`` of one call of ``fn``: wall time, and the CPU time of
    every thread of this process (the engine's own threads included) over the call."""
    before, start = os.times(), time.perf_counter()
    images, boxes = fn()
    seconds, after = time.perf_counter() - start, os.times()
    return seconds, (after.user - before.user) + (after.system - before.system), images, boxes


# -- part 1: throughput --------------------------------------------------------------------
def engine_limit(detector: Any, frames: list, batch: int) -> Callable[[], tuple[int, int]]:
    """The compiled model alone on tensors made beforehand (the ceiling of any pipeline)."""
    from cvactive.detect.engines import OpenVINOEngine, engine_for

    engine = engine_for(detector, batch)
    chunks = [frames[i : i + engine.batch] for i in range(0, len(frames), engine.batch)]
    tensors = [engine.prepare(chunk) for chunk in chunks]
    if isinstance(engine, OpenVINOEngine):
        import openvino as ov

        queue = ov.AsyncInferQueue(engine.compiled, engine.depth)
        queue.set_callback(lambda _request, _userdata: None)

        def run_openvino() -> tuple[int, int]:
            for tensor in tensors:
                queue.start_async({0: tensor})
            queue.wait_all()
            return len(frames), 0

        return run_openvino

    def run_forward() -> tuple[int, int]:
        import torch

        for tensor in tensors:
            detector.forward(tensor)
        if str(detector.device).startswith("cuda"):
            torch.cuda.synchronize()
        return len(frames), 0

    return run_forward


def predict_loop(model: str, source: Path, batch: int, kwargs: dict, stride: int) -> Callable[[], tuple[int, int]]:
    import numpy as np
    from ultralytics import YOLO

    yolo = YOLO(model, task="detect")
    yolo.predict(np.zeros((64, 64, 3), np.uint8), verbose=False, **kwargs)  # predictor set-up and warm-up

    def run() -> tuple[int, int]:
        images = boxes = 0
        results = yolo.predict(str(source), stream=True, verbose=False, batch=batch, vid_stride=stride, **kwargs)
        for result in results:
            images += 1
            boxes += len(result.boxes)
        return images, boxes

    return run


def decode_letterbox(detector: Any, source: Path, stride: int) -> Callable[[], tuple[int, int]]:
    """Every frame of ``source`` decoded and letterboxed in this thread, no model."""
    from cvactive.sources import iter_frames

    def run() -> tuple[int, int]:
        images = 0
        for image, _ in iter_frames(source, stride=stride):
            detector.letterbox(image)
            images += 1
        return images, 0

    return run


def cvactive_score(detector: Any, source: Path, out: Path, batch: int, workers: int, stride: int) -> Callable:
    from cvactive.detect.stage import score_source

    def run() -> tuple[int, int]:
        summary = score_source(source, detector, out, batch=batch, workers=workers, stride=stride, progress=False)
        return summary.records, summary.boxes

    return run


def throughput_case(model: str, name: str, source: Path, args: argparse.Namespace, tmp: Path) -> dict:
    """One model on one source: every variant, ``args.rounds`` rounds, medians and ratios."""
    from cvactive.detect.engines import engine_for
    from cvactive.detect.model import Detector
    from cvactive.detect.pipeline import default_workers
    from cvactive.sources import iter_frames

    is_pt = model.endswith(".pt")
    batch = args.batch if is_pt else 1
    stride = args.pt_video_stride if is_pt and source.suffix == ".mp4" else 1
    workers = args.workers or default_workers()
    import torch

    detector = Detector(model)
    ours = torch.get_num_threads()  # torch's threads as the detector set them (every core on the CPU)
    frames = [image for image, _ in iter_frames(source, stride=stride)]
    out = tmp / f"{Path(model).stem}-{name}.jsonl"
    loop = predict_loop(model, source, batch, detector.predict_kwargs(), stride)
    theirs = torch.get_num_threads()  # as Ultralytics' predictor set them (one less than the cores)
    # torch's thread count is one setting per process: each variant runs with the one its own code sets.
    variants = {
        "engine_limit": with_threads(engine_limit(detector, frames, batch), ours),
        "predict_loop": with_threads(loop, theirs),
        "cvactive_score": with_threads(cvactive_score(detector, source, out, batch, workers, stride), ours),
        "cvactive_sequential": with_threads(cvactive_score(detector, source, out, batch, 0, stride), ours),
        "decode_letterbox": with_threads(decode_letterbox(detector, source, stride), ours),
    }
    # Start-up is outside the timing: the detector and the Ultralytics model are loaded and warmed
    # up, the engine is compiled and the source's files are in the page cache (read above).
    if args.skip_sequential:
        del variants["cvactive_sequential"]
    load_before = os.getloadavg()
    rates = interleaved(variants, args.rounds)
    work = {key: run[1:3] for key, run in rates.items()}
    for key in ("predict_loop", "cvactive_score", "cvactive_sequential"):
        if key in work and work[key][1] == 0:
            raise NoWorkError(f"{key} found no box on {name} with {model}: refusing to report its speed")
    median = {k: statistics.median(v[0]) for k, v in rates.items()}
    pairs = [("cvactive_score", "engine_limit"), ("cvactive_score", "predict_loop")]
    if "cvactive_sequential" in variants:
        pairs += [("cvactive_sequential", "predict_loop"), ("cvactive_score", "cvactive_sequential")]
    per_round = {f"{a}_vs_{b}": [x / y for x, y in zip(rates[a][0], rates[b][0])] for a, b in pairs}
    cores = os.cpu_count() or 1
    ceiling = [1 / (1 / e + 1 / (cores * d)) for e, d in zip(rates["engine_limit"][0], rates["decode_letterbox"][0])]
    per_round["cvactive_score_vs_ceiling"] = [x / c for x, c in zip(rates["cvactive_score"][0], ceiling)]
    ratios = {k: statistics.median(v) for k, v in per_round.items()}
    # The ceiling over the baselines: a goal above these is out of reach for any pipeline on these cores.
    reach = {
        f"ceiling_vs_{b}": statistics.median(c / x for c, x in zip(ceiling, rates[b][0]))
        for b in ("engine_limit", "predict_loop")
    }
    cpu_ms = {k: statistics.median(v[3]) for k, v in rates.items()}
    return {
        "model": model,
        "source": name,
        "path": str(source),
        "video_stride": stride,
        "batch": batch,
        "workers": workers,
        "engine": type(engine_for(detector, batch)).__name__,
        "torch_threads": {"predict_loop": theirs, "cvactive_and_engine_limit": ours},
        "load_average_before_after": [load_before, os.getloadavg()],
        "images_per_run": {k: v[0] for k, v in work.items()},
        "boxes_per_run": {k: v[1] for k, v in work.items() if k not in ("engine_limit", "decode_letterbox")},
        "images_per_second": median,
        "ceiling_images_per_second": statistics.median(ceiling),
        "ceiling_rule": "1 / (1/engine_limit + 1/(cores * decode_letterbox)), per round; NMS and measures left out",
        "ceiling_ratios": reach,
        "cpu_ms_per_image": cpu_ms,
        "cpu_rule": "CPU seconds of every thread of the process over a variant's run, per image, median over rounds",
        "cpu_ms_per_image_over_engine": {
            k: v - cpu_ms["engine_limit"] for k, v in cpu_ms.items() if k in ("cvactive_score", "predict_loop")
        },
        "images_per_second_rounds": {k: v[0] for k, v in rates.items()},
        "ratios": ratios,
        "ratios_per_round": per_round,
        "goals_met": {
            "vs_engine_limit": ratios["cvactive_score_vs_engine_limit"] >= GOALS["vs_engine_limit"],
            "vs_predict_loop": ratios["cvactive_score_vs_predict_loop"] >= GOALS["vs_predict_loop"],
        },
    }


def with_threads(run: Callable[[], tuple[int, int]], threads: int) -> Callable[[], tuple[int, int]]:
    """``run`` with torch's threads set to ``threads`` first (another variant may have changed them)."""

    def threaded() -> tuple[int, int]:
        import torch

        torch.set_num_threads(threads)
        return run()

    return threaded


def interleaved(variants: dict[str, Callable[[], tuple[int, int]]], rounds: int) -> dict[str, tuple[Any, ...]]:
    """Each variant once per round, the order rotated from round to round:
    ``{name: (rates, images, boxes, cpu_ms_per_image)}`` (rates and CPU per round)."""
    rates: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    work: dict[str, tuple[int, int]] = {}
    names = list(variants)
    for r in range(rounds):
        for key in names[r % len(names) :] + names[: r % len(names)]:
            seconds, cpu_seconds, images, boxes = timed_cpu(variants[key])
            rates[key].append(images / seconds)
            cpu[key].append(1000 * cpu_seconds / images)
            work[key] = (images, boxes)
    return {k: (rates[k], *work[k], cpu[k]) for k in variants}


# -- part 2: what the measures cost over plain predict -------------------------------------
def measures_cost(model: str, frames: list, batch: int, rounds: int, embed: bool) -> dict:
    from ultralytics import YOLO

    from cvactive.detect.model import Detector
    from cvactive.detect.scorer import Scorer

    detector, scorer = Detector(model), Scorer()
    plain = YOLO(model, task="detect")
    kwargs = detector.predict_kwargs()
    batches = [frames[i : i + batch] for i in range(0, len(frames), batch)]

    def run_plain() -> tuple[int, int]:
        return len(frames), sum(len(r.boxes) for b in batches for r in plain.predict(b, verbose=False, **kwargs))

    def scored(det: Detector) -> Callable[[], tuple[int, int]]:
        return lambda: (len(frames), sum(len(scorer(r)) for b in batches for r in det.predict(b)))

    variants = {"plain_predict": run_plain, "cvactive_all_measures": scored(detector)}
    if embed:
        variants["cvactive_measures_and_embeddings"] = scored(Detector(model, embed=True))
    for fn in variants.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in variants}
    boxes: dict[str, int] = {}
    for _ in range(rounds):
        for name, fn in variants.items():
            seconds, images, found = timed(fn)
            times[name].append(seconds / images)
            boxes[name] = found
    if min(boxes.values()) == 0:
        raise NoWorkError(f"a variant found no box with {model}: {boxes}; refusing to report its cost")
    medians = {k: statistics.median(v) for k, v in times.items()}
    return {
        "model": model,
        "frames": len(frames),
        "batch": batch,
        "boxes": boxes,
        "seconds_per_frame": medians,
        "ratio_to_plain_predict": {k: v / medians["plain_predict"] for k, v in medians.items()},
    }


def scheduling() -> str:
    """How this process is scheduled against other jobs (Linux autogroup and nice), for the record."""
    try:
        group = Path("/proc/self/autogroup").read_text().strip()
    except OSError:
        group = "no autogroup"
    return f"{group}; nice {os.nice(0)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per variant (median reported)")
    parser.add_argument("--batch", type=int, default=8, help="batch of the .pt runs (OpenVINO: 1 per request)")
    parser.add_argument("--workers", type=int, default=0, help="pipeline workers (0: cvactive's default)")
    parser.add_argument("--pt-video-stride", type=int, default=3, help="video stride of the .pt runs (time)")
    parser.add_argument("--measure-frames", type=int, default=96, help="frames of part 2")
    parser.add_argument("--measure-rounds", type=int, default=3)
    parser.add_argument("--skip-pt", action="store_true", help="OpenVINO only (quick look)")
    parser.add_argument("--skip-measures", action="store_true", help="throughput only (no part 2)")
    parser.add_argument("--skip-sequential", action="store_true", help="leave out the workers=0 variant")
    parser.add_argument(
        "--busy",
        action="store_true",
        help=f"run even with a 1-minute load average above {IDLE_LOAD} (the result says idle: false)",
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "score.json"))
    args = parser.parse_args()
    load_before = os.getloadavg()
    idle = load_before[0] <= IDLE_LOAD
    if not idle and not args.busy:
        print(
            f"the machine is busy (1-minute load average {load_before[0]:.2f} > {IDLE_LOAD}): nothing measured; "
            "run again at a quiet moment, or with --busy for a result marked idle: false",
            file=sys.stderr,
        )
        return 2
    offline_defaults()
    names = ("videos/slow_traffic_small.mp4", "coco128/images/val2017", OPENVINO_MODEL)
    video, coco, openvino = (asset(name) for name in names)
    if video is None or coco is None or openvino is None:
        print("needs ../shared/assets (slow_traffic_small.mp4, coco128 val2017, the OpenVINO model)", file=sys.stderr)
        return 2
    import torch

    from cvactive.sources import iter_frames
    from cvactive.weights import pretrained_checkpoint

    models = [str(openvino)] + ([] if args.skip_pt else [str(pretrained_checkpoint())])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cases = [
                throughput_case(m, name, src, args, Path(tmp))
                for m in models
                for name, src in (("coco128_val2017", coco), ("slow_traffic_small", video))
            ]
        step = max(1, 900 // args.measure_frames)
        frames = [] if args.skip_measures else [i for i, _ in iter_frames(video, stride=step)][: args.measure_frames]
        cost = [
            measures_cost(m, frames, args.batch if m.endswith(".pt") else 1, args.measure_rounds, m.endswith(".pt"))
            for m in (() if args.skip_measures else models)
        ]
    except NoWorkError as err:
        print(f"no result written: {err}", file=sys.stderr)
        return 1
    results = {
        "benchmark": "score",
        "machine": {"cpu_threads": torch.get_num_threads(), "cores": os.cpu_count(), "platform": platform.platform()},
        "idle": idle,
        "idle_rule": f"1-minute load average <= {IDLE_LOAD} before the run",
        "load_average_before_after": [load_before, os.getloadavg()],
        "scheduling": scheduling(),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "goals": GOALS,
        "throughput": cases,
        "measures_cost": cost,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from cvactive.outputs import portable_text, write_text_atomic  # paths relative to the repository / assets

    write_text_atomic(out, portable_text(json.dumps(results, indent=2)))
    print_summary(results)
    print(f"wrote {out}")
    return 0


def print_summary(results: dict) -> None:
    for case in results["throughput"]:
        rate, ratio = case["images_per_second"], case["ratios"]
        print(
            f"{Path(case['model']).name} {case['source']}: {case['images_per_run']['cvactive_score']} images, "
            f"{case['boxes_per_run']['cvactive_score']} boxes | img/s engine {rate['engine_limit']:.1f}, "
            f"predict {rate['predict_loop']:.1f}, score {rate['cvactive_score']:.1f}, "
            f"sequential {rate.get('cvactive_sequential', float('nan')):.1f} | "
            f"score/engine {ratio['cvactive_score_vs_engine_limit']:.2f}x, "
            f"score/predict {ratio['cvactive_score_vs_predict_loop']:.2f}x | decode {rate['decode_letterbox']:.0f}/s, "
            f"ceiling {case['ceiling_images_per_second']:.1f}/s, "
            f"score/ceiling {ratio['cvactive_score_vs_ceiling']:.2f}x | "
            f"ceiling/predict {case['ceiling_ratios']['ceiling_vs_predict_loop']:.2f}x | CPU ms/img engine "
            f"{case['cpu_ms_per_image']['engine_limit']:.1f}, score {case['cpu_ms_per_image']['cvactive_score']:.1f}"
        )
    for run in results["measures_cost"]:
        ratios = ", ".join(f"{k} {v:.3f}x" for k, v in run["ratio_to_plain_predict"].items())
        print(f"{Path(run['model']).name} measures cost ({run['boxes']['plain_predict']} boxes): {ratios}")


if __name__ == "__main__":
    sys.exit(main())
