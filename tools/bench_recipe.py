#!/usr/bin/env python
"""Fine-tuning recipes for small labeled sets, measured (issue #22).

For one data set, each labeled-set size, seed and recipe: draw ``size`` images of the train split
at random (the same images for every recipe of a seed and size), fine-tune the COCO-pretrained
YOLOv8n rebuilt from the shared OpenVINO export with the recipe (:data:`cvactive.recipes.RECIPES`),
and validate on the whole val split (COCO-style mAP50 and mAP50-95, per class). Each run records
its wall seconds (training and evaluation), the load average at its start, after training and at
its end, the epochs, batches and optimizer steps the trainer did and the images it processed
(forward-backward passes), so recipes compare by work done as well as by seconds on a shared machine.

Resumable: every finished run is one JSON in ``--out`` (``<data>-<imgsz>-n<size>-s<seed>-<recipe>.json``)
and a run whose JSON is there is skipped. After each run the summary (``summary.json`` and
``summary.md``: mean and standard deviation over seeds per data set, size and recipe) is rewritten
from every JSON in the folder; with ``--commit`` the run's JSON and the summary are committed.

The images are given to Ultralytics through a folder of symbolic links under ``--work`` (never the
shared assets themselves: Ultralytics writes its label cache beside the labels). Weights stay in
``--work`` (out of git).

    .venv/bin/python tools/bench_recipe.py --data /work/shared/assets/hit-uav/data.yaml --name hit-uav \\
        --sizes 40,160 --seeds 0,1,2 --recipes epochs,steps --imgsz 640 --commit
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("CVACTIVE_DATA", str(REPO / "data"))  # the pretrained checkpoint cached in the checkout

from cvactive.outputs import portable_text, write_json_atomic, write_text_atomic  # noqa: E402


def load() -> float:
    """The 1-minute load average."""
    return round(os.getloadavg()[0], 2)


def link_view(items: list[Any], view: Path, split: str) -> list[Path]:
    """Symbolic links to ``items``' images and labels in ``view/images/<split>`` and ``view/labels/<split>``."""
    images, labels = view / "images" / split, view / "labels" / split
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    out = []
    for item in items:
        image = images / item.image.name
        if not image.is_symlink():
            image.symlink_to(item.image)
        if item.label is not None:
            label = labels / item.label.name
            if not label.is_symlink():
                label.symlink_to(item.label)
        out.append(image)
    return out


def run_one(
    args: argparse.Namespace, ds: Any, pool: list[Path], val: list[Path], size: int, seed: int, recipe: str
) -> dict[str, Any]:
    """One fine-tune and its validation; the result row."""
    import yaml

    from cvactive.recipes import get_recipe
    from cvactive.train import train_detector, validate_detector
    from cvactive.weights import resolve_model_name

    run_id = f"{args.name}-{args.imgsz}-n{size}-s{seed}-{recipe}"
    work = Path(args.work).resolve() / run_id
    work.mkdir(parents=True, exist_ok=True)
    picked = sorted(int(i) for i in np.random.default_rng(seed).choice(len(pool), size=size, replace=False))
    (work / "train.txt").write_text("".join(f"{pool[i]}\n" for i in picked))
    (work / "val.txt").write_text("".join(f"{p}\n" for p in val))
    data = work / "data.yaml"
    data.write_text(
        yaml.safe_dump(
            {"path": str(work), "train": "train.txt", "val": "val.txt", "names": dict(ds.names)}, sort_keys=False
        )
    )
    model = resolve_model_name("pretrained")
    load_start = load()
    start = time.perf_counter()
    result = train_detector(
        data,
        work,
        model=model,
        epochs=args.epochs,
        imgsz=args.imgsz,
        batch=args.batch,
        seed=seed,
        workers=args.workers,
        recipe=recipe,
        val=False,
        progress=False,
    )
    train_seconds = time.perf_counter() - start
    load_trained = load()
    start = time.perf_counter()
    metrics = validate_detector(result.weights, data, dict(ds.names), imgsz=args.imgsz, batch=16, work=work)
    eval_seconds = time.perf_counter() - start
    return {
        "run": run_id,
        "data": args.name,
        "data_yaml": str(Path(args.data).resolve()),
        "imgsz": args.imgsz,
        "size": size,
        "seed": seed,
        "recipe": recipe,
        "recipe_settings": {k: v for k, v in vars(get_recipe(recipe)).items()},
        "schedule": result.schedule,
        "model": Path(model).name,
        "labeled": [pool[i].name for i in picked],
        "epochs": result.epochs,
        "batches": result.batches,
        "steps": result.steps,
        "images_processed": result.images,
        "train_seconds": round(train_seconds, 1),
        "eval_seconds": round(eval_seconds, 1),
        "seconds_per_image": round(train_seconds / max(result.images, 1), 3),
        "load_start": load_start,
        "load_after_train": load_trained,
        "load_end": load(),
        "cpus": os.cpu_count(),
        "machine": f"{platform.node()} ({platform.processor() or platform.machine()}), shared with other work",
        "val_images": len(val),
        **{k: metrics[k] for k in ("mAP50", "mAP50_95", "ap50", "ap50_95", "iou_thresholds", "eval_conf")},
    }


def summarize(out: Path) -> tuple[Path, Path]:
    """``summary.json`` and ``summary.md`` from every run JSON in ``out``: mean and sd over seeds."""
    runs = [json.loads(p.read_text()) for p in sorted(out.glob("*-s[0-9]*-*.json"))]
    groups: dict[tuple[str, int, int, str], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["data"], r["imgsz"], r["size"], r["recipe"]), []).append(r)

    def stats(values: list[float]) -> dict[str, float]:
        return {
            "mean": statistics.fmean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values),
            "max": max(values),
        }

    rows: list[dict[str, Any]] = []
    for (data, imgsz, size, recipe), rs in sorted(groups.items()):
        rs = sorted(rs, key=lambda r: r["seed"])
        rows.append(
            {
                "data": data,
                "imgsz": imgsz,
                "size": size,
                "recipe": recipe,
                "seeds": [r["seed"] for r in rs],
                "mAP50_95": stats([r["mAP50_95"] for r in rs]),
                "mAP50": stats([r["mAP50"] for r in rs]),
                "train_seconds": stats([r["train_seconds"] for r in rs]),
                "eval_seconds": stats([r["eval_seconds"] for r in rs]),
                "steps": stats([float(r["steps"]) for r in rs]),
                "images_processed": stats([float(r["images_processed"]) for r in rs]),
                "seconds_per_image": stats([r["seconds_per_image"] for r in rs]),
                "load_start": stats([r["load_start"] for r in rs]),
                "per_seed_mAP50_95": {str(r["seed"]): r["mAP50_95"] for r in rs},
            }
        )
    paired = paired_differences(runs)
    summary = {
        "paired_vs_epochs": paired,
        "paired_vs_steps": paired_differences(runs, "steps"),
        "note": "2 CPU cores shared with other engineers' tests and a training job: seconds are noisy; "
        "compare recipes by steps and images processed as well",
        "rows": rows,
    }
    json_path = out / "summary.json"
    write_json_atomic(json_path, summary)
    lines = [
        "# Fine-tuning recipes for small labeled sets (issue #22)",
        "",
        "Made by `tools/bench_recipe.py` (see COMMAND.md). COCO-pretrained YOLOv8n (rebuilt from the shared "
        "OpenVINO export) fine-tuned on `size` random train images per seed, validated on the whole val split. "
        "**The machine was shared** (2 CPU cores, other engineers' tests running): seconds are wall-clock under "
        "that load (load average at start given); steps and images processed measure the work.",
        "",
        "| data | px | size | recipe | seeds | mAP50-95 mean ± sd (min-max) | mAP50 mean ± sd | train s (mean) "
        "| eval s | optimizer steps | images processed | s / image | load at start |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m, m50 = r["mAP50_95"], r["mAP50"]
        lines.append(
            f"| {r['data']} | {r['imgsz']} | {r['size']} | {r['recipe']} | {len(r['seeds'])} "
            f"| {m['mean']:.4f} ± {m['sd']:.4f} ({m['min']:.4f}-{m['max']:.4f}) | {m50['mean']:.4f} ± {m50['sd']:.4f} "
            f"| {r['train_seconds']['mean']:.0f} | {r['eval_seconds']['mean']:.0f} | {r['steps']['mean']:.0f} "
            f"| {r['images_processed']['mean']:.0f} | {r['seconds_per_image']['mean']:.2f} "
            f"| {r['load_start']['mean']:.1f} |"
        )
    for baseline in ("epochs", "steps"):
        table = summary[f"paired_vs_{baseline}"]
        if not table:
            continue
        lines += [
            "",
            f"Paired by seed (the same labeled images): mAP50-95 of each recipe minus the `{baseline}` recipe's, "
            "with a 95% Student-t interval over seeds.",
            "",
            "| data | px | size | recipe | seeds | per seed | mean [95% CI] | images processed ratio "
            "| train seconds ratio (mean) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in table:
            per_seed = ", ".join(f"s{k} {v:+.4f}" for k, v in r["per_seed"].items())
            ci = r["ci"]
            shown = f"[{ci['ci_low']:+.4f}, {ci['ci_high']:+.4f}]" if ci["n"] > 1 else "(one seed)"
            lines.append(
                f"| {r['data']} | {r['imgsz']} | {r['size']} | {r['recipe']} | {len(r['per_seed'])} | {per_seed} "
                f"| {r['mean']:+.4f} {shown} | {r['images_ratio']:.2f} | {r['train_seconds_ratio']:.2f} |"
            )
    md_path = out / "summary.md"
    write_text_atomic(md_path, "\n".join(lines) + "\n")
    return json_path, md_path


def paired_differences(runs: list[dict[str, Any]], baseline: str = "epochs") -> list[dict[str, Any]]:
    """Per data set, size and recipe: its mAP50-95 minus ``baseline``'s on the same seed, with a 95%
    Student-t interval over seeds. Against ``epochs`` every other recipe is compared; against another
    baseline, the recipes listed after it in ``RECIPES``."""
    from cvactive.loop.stats import t_interval
    from cvactive.recipes import RECIPES

    names = list(RECIPES)
    later = set(names[names.index(baseline) + 1 :]) if baseline != "epochs" else set(names) - {"epochs"}
    base = {(r["data"], r["imgsz"], r["size"], r["seed"]): r for r in runs if r["recipe"] == baseline}
    groups: dict[tuple[str, int, int, str], list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for r in runs:
        other = base.get((r["data"], r["imgsz"], r["size"], r["seed"]))
        if r["recipe"] in later and other is not None:
            groups.setdefault((r["data"], r["imgsz"], r["size"], r["recipe"]), []).append((r, other))
    out = []
    for (data, imgsz, size, recipe), pairs in sorted(groups.items()):
        pairs.sort(key=lambda p: p[0]["seed"])
        diffs = {str(r["seed"]): r["mAP50_95"] - b["mAP50_95"] for r, b in pairs}
        ratio = statistics.fmean(r["train_seconds"] / b["train_seconds"] for r, b in pairs)
        images = statistics.fmean(r["images_processed"] / b["images_processed"] for r, b in pairs)
        out.append(
            {
                "data": data,
                "imgsz": imgsz,
                "size": size,
                "recipe": recipe,
                "per_seed": diffs,
                "mean": statistics.fmean(diffs.values()),
                "ci": t_interval(list(diffs.values())),
                "images_ratio": images,
                "train_seconds_ratio": ratio,
            }
        )
    return out


def commit(paths: list[Path], message: str) -> None:
    """Commit exactly ``paths`` (retrying while another commit holds the index)."""
    rel = [str(p.relative_to(REPO)) for p in paths]
    for _ in range(30):
        if not (REPO / ".git" / "index.lock").exists():
            add = subprocess.run(["git", "add", *rel], cwd=REPO, capture_output=True, text=True)
            done = subprocess.run(
                ["git", "commit", "-m", message, "--", *rel], cwd=REPO, capture_output=True, text=True
            )
            if add.returncode == 0 and done.returncode == 0:
                return
            if "index.lock" not in (add.stderr + done.stderr):
                print(f"commit failed: {add.stderr}{done.stderr}{done.stdout}", file=sys.stderr)
                return
        time.sleep(2)
    print("commit skipped: .git/index.lock stayed", file=sys.stderr)


def main() -> int:
    from cvactive.recipes import RECIPES
    from cvactive.yolodata import load_yolo_dataset

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="YOLO data.yaml (train split = the pool, val = evaluation)")
    p.add_argument("--name", help="short name of the data set in run names and tables")
    p.add_argument("--sizes", default="40,160", help="labeled-set sizes, comma-separated (smallest first)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--recipes", default="epochs,steps", help=f"comma-separated, of: {', '.join(RECIPES)}")
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--epochs", type=int, default=10, help="epochs of the 'epochs' recipe (the loop's old default)")
    p.add_argument("--batch", type=int, default=16, help="batch of the 'epochs' recipe")
    p.add_argument("--workers", type=int, default=2, help="dataloader workers")
    p.add_argument("--val-split", default="val")
    p.add_argument("--out", default=str(REPO / "benchmarks/results/recipe"))
    p.add_argument("--work", default=str(REPO / "data/bench-recipe"), help="runs and weights (out of git)")
    p.add_argument("--commit", action="store_true", help="commit each finished run's JSON and the summary")
    p.add_argument(
        "--summary-only", action="store_true", help="rewrite the summary from the runs in --out; train nothing"
    )
    args = p.parse_args()
    if args.summary_only:
        for path in summarize(Path(args.out).resolve()):
            print(path)
        return 0
    if not args.data or not args.name:
        print("--data and --name are needed to run (only --summary-only goes without)", file=sys.stderr)
        return 2

    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    unknown = [r for r in recipes if r not in RECIPES]
    if unknown:
        print(f"unknown recipe(s) {unknown}; valid: {', '.join(RECIPES)}", file=sys.stderr)
        return 2
    sizes = [int(s) for s in args.sizes.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    ds = load_yolo_dataset(args.data)
    if "train" not in ds.splits or args.val_split not in ds.splits:
        print(f"{args.data}: needs a train and a {args.val_split!r} split", file=sys.stderr)
        return 2
    view = Path(args.work).resolve() / f"{args.name}-view"
    pool = link_view(list(ds.items("train")), view, "train")
    val = link_view(list(ds.items(args.val_split)), view, "val")
    if max(sizes) > len(pool):
        print(f"size {max(sizes)} exceeds the {len(pool)} train images", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for size in sizes:
        for seed in seeds:
            for recipe in recipes:
                path = out / f"{args.name}-{args.imgsz}-n{size}-s{seed}-{recipe}.json"
                if path.exists():
                    continue
                print(f"{time.strftime('%H:%M:%S')} {path.stem}: training (load {load()})", flush=True)
                row = run_one(args, ds, pool, val, size, seed, recipe)
                write_json_atomic(path, json.loads(portable_text(json.dumps(row))))
                paths = [path, *summarize(out)]
                print(
                    f"{time.strftime('%H:%M:%S')} {path.stem}: mAP50-95 {row['mAP50_95']:.4f}, "
                    f"{row['train_seconds']:.0f}+{row['eval_seconds']:.0f} s, {row['steps']} steps, "
                    f"{row['images_processed']} images, load {row['load_start']}->{row['load_end']}",
                    flush=True,
                )
                if args.commit:
                    commit(
                        paths,
                        f"recipe bench: {path.stem} (mAP50-95 {row['mAP50_95']:.4f}, "
                        f"{row['train_seconds']:.0f} s train, {row['steps']} steps)",
                    )
    summarize(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
