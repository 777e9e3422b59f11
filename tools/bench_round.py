#!/usr/bin/env python
"""Where a round of the loop spends its seconds, measured on a short real study (issue #22, item 2).

Runs one small study with :class:`cvactive.loop.study.Study` (by default HIT-UAV at 640 px, one seed,
40 initial labels, one round of 40, the ``steps`` recipe, ``random`` and ``uncertainty``) into a
fresh ``--out`` and writes one JSON to ``--result``: per round the seconds of ``train``, ``score``,
``select`` and ``evaluate`` (from its ``round.json``), and the exact counts of work done: images
trained (forward-backward passes), pool images scored, images predicted for the corrections count,
evaluation images validated; with the load average at the start and the end, the cores, the torch
threads and the dataloader workers. The machine is shared: compare seconds only at a similar
load; the counts do not depend on it.

The counts are taken by wrapping the functions the loop calls (``run_detector``, earlier ``Detector.predict_stream``;
``cvactive.train.validate_detector``), so the same tool measures the loop before and after a
change: run it with ``PYTHONPATH`` pointing at an older checkout's package to measure that.

    .venv/bin/python tools/bench_round.py --label after --out /tmp/round-cost-after \\
        --result benchmarks/results/round-cost/after.json
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


SHARED = "yes: other engineers' tests and two background trainings ran on the same 2 cores"


def _write(path: Path, result: dict[str, Any]) -> None:
    from cvactive.outputs import portable_text, write_text_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, portable_text(json.dumps(result, indent=1)) + "\n")


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def grid(args: argparse.Namespace) -> dict[str, Any]:
    """Short trainings and validations of one labeled set under each dataloader-workers / torch-threads /
    image-cache choice, one after the other, each with the load average around it."""
    from dataclasses import replace

    import numpy as np
    import yaml

    from cvactive.loop.dataview import link_view
    from cvactive.recipes import RECIPES
    from cvactive.train import train_detector, validate_detector
    from cvactive.yolodata import load_yolo_dataset

    out = Path(args.out)
    ds = load_yolo_dataset(args.data)
    pool = list(ds.items("train"))
    rng = np.random.default_rng(args.seed)
    picked = [pool[int(i)] for i in sorted(rng.choice(len(pool), size=args.initial, replace=False))]
    evals = list(ds.items("val"))
    view = out / "dataset"
    train_links = link_view(view, "pool", [i.image for i in picked], [i.label for i in picked])
    eval_links = link_view(view, "eval", [i.image for i in evals], [i.label for i in evals])
    (out / "labeled.txt").write_text("".join(f"{p}\n" for p in train_links))
    (out / "eval.txt").write_text("".join(f"{p}\n" for p in eval_links))
    data_yaml = out / "data.yaml"
    spec = {"path": str(out), "train": str(out / "labeled.txt"), "val": str(out / "eval.txt"), "names": ds.names}
    data_yaml.write_text(yaml.safe_dump(spec, sort_keys=False))
    recipe = replace(
        RECIPES[args.recipe], name=f"{args.recipe}-{args.grid_steps}", steps=args.grid_steps, warmup_steps=2
    )
    runs: list[dict[str, Any]] = []
    weights = None
    # (dataloader processes, torch threads, image cache); the first again at the end, to see the drift.
    # Ultralytics' own choice on the CPU is (0, cores - 1): no dataloader process (train_hooks.set_workers).
    configs = [(0, 1, "none"), (0, 2, "none"), (1, 1, "none"), (1, 2, "none"), (2, 2, "none"), (0, 1, "none")]
    for workers, threads, cache in configs:
        load, start = _load(), time.perf_counter()
        result = train_detector(
            data_yaml, out / "runs", model=args.model, imgsz=args.imgsz, seed=args.seed, name=f"w{workers}t{threads}",
            val=False, progress=False, recipe=recipe, workers=workers, threads=threads, cache=cache != "none" and cache,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        weights = result.weights
        runs.append(
            {"part": "train", "workers": workers, "threads": threads, "cache": cache, "seconds": round(seconds, 1),
             "images_trained": result.images, "steps": result.steps, "load_before": load, "load_after": _load()}
        )  # fmt: skip
        print(json.dumps(runs[-1]), flush=True)
    assert weights is not None
    for threads, cache in [(1, "none"), (2, "none"), (2, "disk"), (2, "disk")]:
        load, start = _load(), time.perf_counter()
        metrics = validate_detector(
            weights, data_yaml, ds.names, imgsz=args.imgsz, work=out / "val", threads=threads,
            cache=None if cache == "none" else cache,
        )  # fmt: skip
        npy = sum(1 for _ in (view / "images" / "eval").glob("*.npy"))
        runs.append(
            {"part": "evaluate", "threads": threads, "cache": cache, "seconds": round(time.perf_counter() - start, 1),
             "eval_images": len(evals), "npy_files_after": npy, "mAP50_95": round(metrics["mAP50_95"], 5),
             "load_before": load, "load_after": _load()}
        )  # fmt: skip
        print(json.dumps(runs[-1]), flush=True)
    return {"labeled": len(picked), "recipe": recipe.name, "runs": runs}


def decode(args: argparse.Namespace) -> dict[str, Any]:
    """What the disk image cache saves: the evaluation split read as its image files (Ultralytics'
    ``imread``) against the ``.npy`` files ``cache='disk'`` writes, three times each, interleaved."""
    import cv2
    import numpy as np

    from cvactive.yolodata import load_yolo_dataset

    out = Path(args.out)
    out.mkdir(parents=True)
    images = [item.image for item in load_yolo_dataset(args.data).items("val")]
    npy = [out / f"{i}.npy" for i in range(len(images))]
    for path, cached in zip(images, npy):
        image = cv2.imread(str(path))
        if image is None:
            raise SystemExit(f"bench_round: cannot read {path}")
        np.save(cached, image, allow_pickle=False)
    reps = []
    for _ in range(3):
        load, start = _load(), time.perf_counter()
        for path in images:
            cv2.imread(str(path))
        jpeg = time.perf_counter() - start
        start = time.perf_counter()
        for cached in npy:
            np.load(cached)
        reps.append({"image_files_s": round(jpeg, 3), "npy_s": round(time.perf_counter() - start, 3), "load": load})
    return {
        "images": len(images),
        "image_bytes": sum(p.stat().st_size for p in images),
        "npy_bytes": sum(p.stat().st_size for p in npy),
        "repetitions": reps,
    }


def _round_row(out: Path, ckpt: Path, per_round: dict[str, dict[str, int]]) -> dict[str, Any]:
    """One finished round: its seconds and training as its ``round.json`` recorded them, and the
    counts this process took (``None`` for a round it did not run)."""
    row = json.loads(ckpt.read_text())
    work = per_round.get(str(ckpt.parent.relative_to(out)), {})
    return {
        "round": str(ckpt.parent.relative_to(out)),
        "labeled": len(row["labeled"]),
        "seconds": {k: round(v, 2) for k, v in row["seconds"].items()},
        "images_trained": row["training"]["images"],
        "optimizer_steps": row["training"]["steps"],
        "epochs": row["training"]["epochs"],
        "scored_images_recorded": row.get("scored_images"),
        "pool_images_predicted": work.get("predicted"),
        "eval_images_validated": work.get("validated"),
        "mAP50_95": round(row["mAP50_95"], 4),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(REPO.parent / "shared" / "assets" / "hit-uav" / "data.yaml"))
    p.add_argument("--out", required=True, help="study folder (must not exist yet; weights stay there)")
    p.add_argument("--result", required=True, help="the JSON to write")
    p.add_argument("--label", required=True, help="what this run measures (e.g. before, after)")
    p.add_argument("--strategies", default="random,uncertainty")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--initial", type=int, default=40)
    p.add_argument("--budget", type=int, default=40)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--recipe", default="steps")
    p.add_argument("--epochs", type=int, default=20, help="epochs of the epochs recipe (LoopConfig.epochs)")
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--model", default="pretrained")
    p.add_argument("--cache", default=None, help="image cache of training (only where the loop has one)")
    p.add_argument("--train-workers", type=int, default=None, help="dataloader workers (only where the loop has them)")
    p.add_argument(
        "--grid",
        action="store_true",
        help="instead of a study: short trainings and validations per workers, threads and cache",
    )
    p.add_argument("--machine-note", default=SHARED, help="what else ran on the machine (recorded as machine.shared)")
    p.add_argument("--grid-steps", type=int, default=20, help="optimizer steps of each --grid training")
    p.add_argument(
        "--resume",
        action="store_true",
        help="finish the study in --out (its finished rounds keep their seconds; their counts are null)",
    )
    p.add_argument("--collect", action="store_true", help="only write the finished rounds of the study in --out")
    p.add_argument("--note", default=None, help="with --collect: why the study did not finish")
    p.add_argument("--decode", action="store_true", help="instead of a study: the val split read as images vs .npy")
    args = p.parse_args(argv)

    out, result_path = Path(args.out), Path(args.result)
    if out.exists() and not (args.resume or args.collect):
        print(f"bench_round: {out} exists; give a new --out, or --resume to finish the study there", file=sys.stderr)
        return 2
    if result_path.exists():
        print(f"bench_round: {result_path} exists; move it aside or give another --result", file=sys.stderr)
        return 2

    if args.grid or args.decode:
        load_start, start = _load(), time.perf_counter()
        measured = grid(args) if args.grid else decode(args)
        result = {
            "label": args.label,
            "commit": _commit(),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "settings": {k: v for k, v in vars(args).items() if k not in ("result", "out")},
            "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "shared": args.machine_note},
            "load_average_start": load_start,
            "load_average_end": _load(),
            "wall_seconds": round(time.perf_counter() - start, 1),
            **measured,
        }
        _write(result_path, result)
        return 0

    if args.collect:  # a study that did not finish: its finished rounds, as they recorded themselves
        result = {
            "label": args.label,
            "commit": _commit(),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "note": args.note,
            "settings": {k: v for k, v in vars(args).items() if k not in ("result", "out", "note")},
            "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "shared": args.machine_note},
            "rounds": [_round_row(out, ckpt, {}) for ckpt in sorted(out.glob("seed*/**/round.json"))],
        }
        _write(result_path, result)
        return 0

    import cvactive
    import cvactive.train as train_mod
    from cvactive.loop import LoopConfig
    from cvactive.loop.study import Study

    counts = {"predicted": 0, "validated": 0, "validations": 0}
    try:  # the loop scores through cvactive.detect.pipeline.run_detector (earlier: Detector.predict_stream)
        import cvactive.detect.pipeline as pipeline_mod

        original_run = pipeline_mod.run_detector

        def counted_run(*a: Any, **kw: Any) -> Any:
            for rec in original_run(*a, **kw):
                counts["predicted"] += 1
                yield rec

        pipeline_mod.run_detector = counted_run  # type: ignore[assignment]
    except ImportError:
        from cvactive.detector import Detector  # type: ignore[import-not-found,no-redef]

        original_stream = Detector.predict_stream

        def counted_stream(self: Any, *a: Any, **kw: Any) -> Any:
            for rec in original_stream(self, *a, **kw):
                counts["predicted"] += 1
                yield rec

        Detector.predict_stream = counted_stream  # type: ignore[method-assign]
    original_validate = train_mod.validate_detector

    def counted_validate(weights: Any, data_yaml: Any, *a: Any, **kw: Any) -> Any:
        import yaml

        spec = yaml.safe_load(Path(data_yaml).read_text())
        val = Path(spec["val"])
        counts["validated"] += sum(1 for line in val.read_text().splitlines() if line.strip()) if val.is_file() else 0
        counts["validations"] += 1
        return original_validate(weights, data_yaml, *a, **kw)

    train_mod.validate_detector = counted_validate  # type: ignore[assignment]

    cfg = LoopConfig(
        strategies=tuple(args.strategies.split(",")),
        initial=args.initial,
        budget=args.budget,
        rounds=args.rounds,
        seeds=(args.seed,),
        model=args.model,
        recipe=args.recipe,
        epochs=args.epochs,
        imgsz=args.imgsz,
    )
    kwargs: dict[str, Any] = {}
    accepted = inspect.signature(Study.__init__).parameters
    if args.cache is not None:
        if "cache" not in accepted:
            print("bench_round: this loop has no image cache (--cache)", file=sys.stderr)
            return 2
        kwargs["cache"] = args.cache
    if args.train_workers is not None:
        if "train_workers" not in accepted:
            print("bench_round: this loop has no train_workers", file=sys.stderr)
            return 2
        kwargs["train_workers"] = args.train_workers

    per_round: dict[str, dict[str, int]] = {}

    def on_round(rows: list[dict]) -> None:
        row = rows[-1]
        key = f"seed{row['seed']}/{'round0' if row['round'] == 0 else row['strategy'] + '/round' + str(row['round'])}"
        done = {k: sum(v.get(k, 0) for v in per_round.values()) for k in counts}
        per_round[key] = {k: counts[k] - done[k] for k in counts}

    load_start = _load()
    start = time.perf_counter()
    study = Study(args.data, out, cfg, **kwargs)
    study.run(progress=False, on_round=on_round)
    wall = time.perf_counter() - start
    load_end = _load()

    import torch

    rounds = [_round_row(out, ckpt, per_round) for ckpt in sorted(out.glob("seed*/**/round.json"))]
    result = {
        "label": args.label,
        "commit": _commit(),
        "package": str(Path(cvactive.__file__).resolve().parent),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "data": args.data,
        "settings": {k: v for k, v in vars(args).items() if k not in ("result", "out")},
        "pool_images": len(study.pool),
        "eval_images": len(study.evals[0].images),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "torch_threads_at_end": torch.get_num_threads(),
            "shared": args.machine_note,
        },
        "resumed": bool(args.resume),
        "load_average_start": load_start,
        "load_average_end": load_end,
        "wall_seconds": round(wall, 1),
        "scoring_seconds": round(study.scoring_seconds, 2),
        "totals": counts,
        "rounds": rounds,
    }
    _write(result_path, result)
    print(json.dumps({k: result[k] for k in ("label", "wall_seconds", "load_average_start", "load_average_end")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
