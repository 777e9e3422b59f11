"""``cvactive demo``: the whole active-learning story on the built-in synthetic porch data, offline.

The demo is a scripted tour of the command line: each step prints the ``cvactive`` command it
runs (so a newcomer can re-run any step by hand) and that command's own summary. Re-running
the demo reuses what is already there (data set, trained model, harvest state, study rounds).
"""

from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path
from typing import Any

from cvactive.errors import CvactiveError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole cycle on the built-in synthetic porch data (offline, a few minutes on a CPU)",
        description="Generate the porch data, train a small detector, harvest frames from the porch video, "
        "score and select from the pool, synthesize examples for the rare class and night, push everything to "
        "FiftyOne, run the health check, evaluate per-class mAP, run a short active-learning loop, and summarise.",
    )
    p.add_argument("--out", default="demo-output", help="output folder (default: demo-output)")
    p.add_argument("--model", default=None, help="your own .pt weights for the porch classes (skips training)")
    p.add_argument("--dataset", default="cvactive-demo", help="FiftyOne data set name (default: cvactive-demo)")
    p.add_argument(
        "--base",
        default="auto",
        help="what the demo detector and the loop train from: auto (default: the COCO-pretrained YOLOv8n rebuilt "
        "from the shared OpenVINO model when present, else pico), pretrained, pico/n/s (random init) or a .pt",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="training epochs of the demo detector (default: 10 fine-tuning a .pt, 30 from scratch)",
    )
    p.add_argument("--quick", action="store_true", help="a smaller, faster run (for tests)")
    p.set_defaults(func=run)


class _Tour:
    """Runs numbered steps, each a ``cvactive`` command, and keeps what they made."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.step = 0
        self.notes: list[tuple[str, str]] = []

    def run(self, title: str, argv: list[str], ok: tuple[int, ...] = (0,)) -> int:
        from cvactive.cli import main

        self.step += 1
        print(f"\n[{self.step}/{self.total}] {title}\n$ cvactive {shlex.join(argv)}", flush=True)
        code = main(argv)
        if code not in ok:
            raise CvactiveError(f"demo step {self.step} ({title}) failed with exit code {code}")
        return code

    def note(self, what: str, where: str | Path) -> None:
        self.notes.append((what, str(where)))


def run(args: argparse.Namespace) -> int:
    from cvactive.porch import PorchRecipe, video_path, write_dataset
    from cvactive.weights import resolve_model_name

    start = time.perf_counter()
    out = Path(args.out).resolve()
    quick = args.quick
    tour = _Tour(total=12)

    # 1. Data.
    recipe = PorchRecipe.load(train=120, val=40, video_seconds=12) if quick else PorchRecipe.load()
    tour.step += 1
    print(f"[1/{tour.total}] render the synthetic porch data set and video")
    data = write_dataset(out / "porch", recipe)
    video = video_path(data.parent)
    print(f"porch data set: {data} ({recipe.train} train, {recipe.val} val images); video: {video}")
    tour.note("porch data set", data)

    # 2. Model.
    tour.step += 1
    model = args.model
    base = resolve_model_name(args.base)
    fine_tune = base.endswith(".pt")
    epochs = 3 if quick else args.epochs or (10 if fine_tune else 30)
    if model is None:
        from cvactive.train import train_detector

        weights = out / "detector" / "train" / "weights" / "best.pt"
        what = f"fine-tune {Path(base).name}" if fine_tune else f"train a {base} YOLOv8 from scratch"
        print(f"\n[2/{tour.total}] {what} on the porch data ({epochs} epochs, imgsz 256)")
        if weights.exists():
            print(f"reusing {weights}")
        else:
            result = train_detector(data, out / "detector", model=base, epochs=epochs, imgsz=256)
            weights = result.weights
            print(f"trained in {result.seconds:.0f} s -> {weights}")
        model = str(weights)
    else:
        print(f"\n[2/{tour.total}] use your model {model}")
    tour.note("detector", model)
    det = ["--model", model, "--imgsz", "256"]

    # 3. Harvest from the video.
    harvest = out / "harvest"
    tour.run(
        "harvest frames from the porch video (rules, budget, pacing, dedup; resumable)",
        [
            "harvest",
            str(video),
            *det,
            "--config",
            _config("harvest-porch.yaml"),
            "--out",
            str(harvest),
            "--no-progress",
        ],
        ok=(0, 1),
    )
    tour.note("harvested frames", harvest / "manifest.jsonl")

    # 4-5. Score the pool with embeddings, select a diverse uncertain batch.
    pool = out / "pool.jsonl"
    tour.run(
        "score the unlabeled pool: per-box uncertainty, per-image aggregates, embeddings",
        ["score", str(data.parent / "images" / "train"), *det, "--conf", "0.05", "--embed", "--out", str(pool)]
        + ["--no-progress"],
    )
    selected = out / "selected.jsonl"
    tour.run(
        "select 20 images to label: uncertainty first, then k-means for diversity (hybrid)",
        ["select", str(pool), "--k", "20", "--strategy", "hybrid", "--seed", "0", "--out", str(selected)],
    )
    tour.note("selected batch", selected)

    # 6. Synthesis where the data is thin.
    synthetic = out / "synthetic"
    tour.run(
        "synthesize labeled examples where the data is thin (auto: rare class, night, positions)",
        ["synthesize", str(data), "--n", "20" if quick else "60", "--out", str(synthetic), "--target", "auto"]
        + ["--seed", "0", "--overwrite", "--no-progress"],
    )
    tour.note("synthetic data set", synthetic / "data.yaml")

    # 7. FiftyOne: the labeled set, the candidates, the synthetic images.
    ds = args.dataset
    tour.run(
        "import the labeled porch data set into FiftyOne (splits as tags)",
        ["import", str(data), "--dataset", ds, "--no-progress"],
    )
    tour.run(
        "push the selected batch and the harvested frames for review (idempotent, batched)",
        ["push", str(selected), "--dataset", ds, "--round", "1", "--no-progress"],
    )
    from cvactive.cli import main

    print(f"$ cvactive push {harvest / 'manifest.jsonl'} --dataset {ds} --round 1")
    if (harvest / "manifest.jsonl").exists():
        main(["push", str(harvest / "manifest.jsonl"), "--dataset", ds, "--round", "1", "--no-progress"])
    print(f"$ cvactive import {synthetic} --dataset {ds} --splits train")
    main(["import", str(synthetic), "--dataset", ds, "--splits", "train", "--no-progress"])

    # 8. Health check of the labeled set.
    health = out / "health"
    code = tour.run(
        "health check of the labeled set (class balance, label errors, conditions; exit 1 = a gate failed)",
        ["health", str(data), "--out", str(health), "--no-progress"],
        ok=(0, 1),
    )
    tour.note("health report", health / "report.md")

    # 9. Per-class mAP of the detector on the val split, through FiftyOne.
    val_scores = out / "val_scores.jsonl"
    print(f"$ cvactive score {data.parent / 'images' / 'val'} --model {model} --imgsz 256 --conf 0.001 ...")
    main(
        ["score", str(data.parent / "images" / "val"), *det, "--conf", "0.001", "--out", str(val_scores)]
        + ["--no-progress"]
    )
    print(f"$ cvactive push {val_scores} --dataset {ds} --label-field predictions")
    main(
        [
            "push",
            str(val_scores),
            "--dataset",
            ds,
            "--label-field",
            "predictions",
            "--tag",
            "evaluated",
            "--no-progress",
        ]
    )
    evaluation = out / "evaluation"
    tour.run(
        "evaluate per-class AP (COCO-style, IoU 0.50:0.95) and append round 1 to the history",
        ["evaluate", "--dataset", ds, "--pred", "predictions", "--gt", "ground_truth", "--round", "1"]
        + ["--tag", "val", "--out", str(evaluation)],
    )
    tour.note("mAP history", evaluation)

    # 10. A short active-learning loop against random.
    study = out / "loop"
    loop_args = ["--strategies", "uncertainty", "--seeds", "1", "--initial", "20" if quick else "60"]
    loop_args += ["--budget", "20" if quick else "60", "--rounds", "1", "--epochs", str(2 if quick else epochs)]
    loop_args += ["--model", base, "--measure", "binary_entropy_max"]
    tour.run(
        "a short active-learning loop: uncertainty against random (one seed, one round: mechanics, no verdict)",
        ["loop", "--data", str(data), "--out", str(study), *loop_args, "--no-progress"],
    )
    tour.note("learning curves", study / "learning_curves.png")

    # 11. Summary.
    minutes = (time.perf_counter() - start) / 60
    print(f"\n[{tour.total}/{tour.total}] summary: the whole cycle ran in {minutes:.1f} min")
    for what, where in tour.notes:
        print(f"  {what:<20} {where}")
    print(f"  {'FiftyOne data set':<20} {ds}")
    print(f"\nReview the candidates in the FiftyOne App:  cvactive review --dataset {ds}")
    if code == 1:
        print(
            f"The health gate failed; see {health / 'report.md'}. On the porch data that is leakage: one fixed "
            "camera layout makes near-duplicate frames in both splits, as a real doorstep camera does."
        )
    return 0


def _config(name: str) -> str:
    from cvactive.config import CONFIG_DIR

    return str(CONFIG_DIR / name)
