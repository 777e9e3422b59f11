"""``cvactive demo``: the whole active-learning story on the built-in synthetic porch data, offline.

The demo is a scripted tour of the command line: each step prints the ``cvactive`` command it
runs (so a newcomer can re-run any step by hand) and that command's own summary. Re-running
the demo reuses what is already there (data set, trained model, harvest state, study rounds).
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import shlex
import time
from pathlib import Path
from typing import Any

from cvactive.cli._demo_round import environ_set, pixel_boxes, print_round, round_data, rounds_done
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
    from cvactive.cli._common import add_trust_option

    add_trust_option(p)
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


class _Demo:
    """The demo's steps, in order; each keeps for the later ones what it made (paths, the model)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.quick = bool(args.quick)
        self.out = Path(args.out).resolve()
        self.tour = _Tour(total=13)
        self.dataset = args.dataset
        self.data = self.video = self.harvest_dir = self.selected = self.synthetic = self.health = Path()
        self.model = ""
        self.base = ""
        self.epochs = 0
        self.det: list[str] = []

    def render_data(self) -> None:
        """1. The porch data set and its video."""
        from cvactive.porch import PorchRecipe, video_path, write_dataset

        tour = self.tour
        recipe = PorchRecipe.load(train=120, val=40, video_seconds=12) if self.quick else PorchRecipe.load()
        tour.step += 1
        print(f"[1/{tour.total}] render the synthetic porch data set and video")
        self.data = write_dataset(self.out / "porch", recipe)
        self.video = video_path(self.data.parent)
        print(f"porch data set: {self.data} ({recipe.train} train, {recipe.val} val images); video: {self.video}")
        tour.note("porch data set", self.data)

    def get_model(self) -> None:
        """2. The detector: the user's weights, else one trained (or reused) on the porch data."""
        from cvactive.weights import resolve_model_name

        tour = self.tour
        tour.step += 1
        model = self.args.model
        self.base = resolve_model_name(self.args.base)
        fine_tune = self.base.endswith(".pt")
        self.epochs = 3 if self.quick else self.args.epochs or (10 if fine_tune else 30)
        if model is None:
            from cvactive.train import train_detector

            weights = self.out / "detector" / "train" / "weights" / "best.pt"
            what = f"fine-tune {Path(self.base).name}" if fine_tune else f"train a {self.base} YOLOv8 from scratch"
            print(f"\n[2/{tour.total}] {what} on the porch data ({self.epochs} epochs, imgsz 256)")
            if weights.exists():
                print(f"reusing {weights}")
            else:
                result = train_detector(
                    self.data, self.out / "detector", model=self.base, epochs=self.epochs, imgsz=256
                )
                weights = result.weights
                print(f"trained in {result.seconds:.0f} s -> {weights}")
            model = str(weights)
        else:
            print(f"\n[2/{tour.total}] use your model {model}")
        tour.note("detector", model)
        self.model = model
        self.det = ["--model", model, "--imgsz", "256"]

    def harvest(self) -> None:
        """3. Harvest frames from the porch video."""
        self.harvest_dir = self.out / "harvest"
        self.tour.run(
            "harvest frames from the porch video (rules, budget, pacing, dedup; resumable)",
            [
                "harvest",
                str(self.video),
                *self.det,
                "--config",
                _config("harvest-porch.yaml"),
                "--out",
                str(self.harvest_dir),
                "--no-progress",
            ],
            ok=(0, 1),
        )
        self.tour.note("harvested frames", self.harvest_dir / "manifest.jsonl")

    def score_and_select(self) -> None:
        """4-5. Score the pool with embeddings, select a diverse uncertain batch."""
        pool = self.out / "pool.jsonl"
        self.tour.run(
            "score the unlabeled pool: per-box uncertainty, per-image aggregates, embeddings",
            ["score", str(self.data.parent / "images" / "train"), *self.det, "--conf", "0.05", "--embed"]
            + ["--out", str(pool), "--no-progress"],
        )
        self.selected = self.out / "selected.jsonl"
        self.tour.run(
            "select 20 images to label: uncertainty first, then k-means for diversity (hybrid)",
            ["select", str(pool), "--k", "20", "--strategy", "hybrid", "--seed", "0", "--out", str(self.selected)],
        )
        self.tour.note("selected batch", self.selected)

    def synthesize(self) -> None:
        """6. Synthesis where the data is thin."""
        self.synthetic = self.out / "synthetic"
        self.tour.run(
            "synthesize labeled examples where the data is thin (auto: rare class, night, positions)",
            ["synthesize", str(self.data), "--k", "20" if self.quick else "60", "--out", str(self.synthetic)]
            + ["--target", "auto", "--seed", "0", "--overwrite", "--no-progress"],
        )
        self.tour.note("synthetic data set", self.synthetic / "data.yaml")

    def fill_fiftyone(self) -> None:
        """7-8. FiftyOne: the labeled set, the candidates, the synthetic images."""
        from cvactive.cli import main

        ds = self.dataset
        self.tour.run(
            "import the labeled porch data set into FiftyOne (splits as tags)",
            ["import", str(self.data), "--dataset", ds, "--no-progress"],
        )
        self.tour.run(
            "push the selected batch and the harvested frames for review (idempotent, batched)",
            ["push", str(self.selected), "--dataset", ds, "--round", "1", "--no-progress"],
        )
        manifest = self.harvest_dir / "manifest.jsonl"
        print(f"$ cvactive push {manifest} --dataset {ds} --round 1")
        if manifest.exists():
            main(["push", str(manifest), "--dataset", ds, "--round", "1", "--no-progress"])
        print(f"$ cvactive import {self.synthetic} --dataset {ds} --splits train")
        main(["import", str(self.synthetic), "--dataset", ds, "--splits", "train", "--no-progress"])

    def check_health(self) -> int:
        """9. Health check of the labeled set; returns its exit code (1: a gate failed)."""
        self.health = self.out / "health"
        code = self.tour.run(
            "health check of the labeled set (class balance, label errors, conditions; exit 1 = a gate failed)",
            ["health", str(self.data), "--out", str(self.health), "--no-progress"],
            ok=(0, 1),
        )
        self.tour.note("health report", self.health / "report.md")
        return code

    def evaluate(self) -> None:
        """10. Per-class mAP of the detector on the val split, through FiftyOne."""
        from cvactive.cli import main

        ds, val = self.dataset, self.data.parent / "images" / "val"
        val_scores = self.out / "val_scores.jsonl"
        print(f"$ cvactive score {val} --model {self.model} --imgsz 256 --conf 0.001 ...")
        main(["score", str(val), *self.det, "--conf", "0.001", "--out", str(val_scores), "--no-progress"])
        print(f"$ cvactive push {val_scores} --dataset {ds} --label-field predictions")
        main(
            ["push", str(val_scores), "--dataset", ds, "--label-field", "predictions"]
            + ["--tag", "evaluated", "--no-progress"]
        )
        evaluation = self.out / "evaluation"
        self.tour.run(
            "evaluate per-class AP (COCO-style, IoU 0.50:0.95) and append round 1 to the history",
            ["evaluate", "--dataset", ds, "--pred", "predictions", "--gt", "ground_truth", "--round", "1"]
            + ["--tag", "val", "--out", str(evaluation)],
        )
        self.tour.note("mAP history", evaluation)

    def loop(self) -> None:
        """11. A short active-learning loop against random."""
        quick = self.quick
        study = self.out / "loop"
        loop_args = ["--strategies", "uncertainty", "--seeds", "1", "--initial", "20" if quick else "60"]
        loop_args += [
            "--budget",
            "20" if quick else "60",
            "--rounds",
            "1",
            "--recipe",
            "epochs",
            "--epochs",
            str(2 if quick else self.epochs),
        ]
        loop_args += ["--model", self.base, "--measure", "binary_entropy_max"]
        self.tour.run(
            "a short active-learning loop: uncertainty against random (one seed, one round: mechanics, no verdict)",
            ["loop", "--data", str(self.data), "--out", str(study), *loop_args, "--no-progress"],
        )
        self.tour.note("learning curves", study / "learning_curves.png")

    def real_round(self) -> None:
        """12. One real round of ``cvactive round`` through Label Studio: the server that ``LABEL_STUDIO_URL`` and
        ``LABEL_STUDIO_API_KEY`` name, else one the demo starts on loopback (installed when missing) and stops."""
        import os

        tour = self.tour
        tour.step += 1
        print(f"\n[{tour.step}/{tour.total}] one real round: select -> annotate in Label Studio -> collect -> check "
              "-> train -> evaluate")  # fmt: skip
        root = self.out / "round"
        tour.note("round project", root)
        if rounds_done(root):
            print(f"reusing the round done before in {root}:\n$ cvactive round status {root}")
            from cvactive.cli import main

            main(["round", "status", str(root)])
            return
        start = time.perf_counter()
        url, key = os.environ.get("LABEL_STUDIO_URL"), os.environ.get("LABEL_STUDIO_API_KEY")
        if url and key:
            from cvactive.store.labelstudio_client import redact_url

            print(f"Label Studio: {redact_url(url)} (from LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY)")
            self._round(root)
        else:
            from cvactive.store import labelstudio_server as ls

            reason = ls.install(quiet=False)
            if reason:
                print(f"skipped: {reason}")
                return
            data = self.out / "labelstudio"
            user = f"demo-{secrets.token_hex(3)}@localhost"  # a new user (and token) each run, in one organization
            print(f"no LABEL_STUDIO_URL: starting Label Studio {ls.version()} on loopback, a free port, its SQLite "
                  f"database in {data}, user {user} and a token made up for this run (never written down)")  # fmt: skip
            with contextlib.ExitStack() as stack:
                try:  # the first start builds its database: minutes on a busy machine
                    server = stack.enter_context(ls.running_server(data, username=user, timeout=900))
                except RuntimeError as failed:
                    print(f"skipped: {str(failed).splitlines()[0]} (its log: {data / 'server.log'})")
                    return
                stack.enter_context(environ_set(server.env()))
                print(f"Label Studio answers at {server.url} after {time.perf_counter() - start:.0f} s "
                      f"(log: {server.log}); it stops when this step ends, Ctrl-C included")  # fmt: skip
                self._round(root)
            print(f"Label Studio stopped ({server.url})")
        print(f"the real round took {time.perf_counter() - start:.0f} s")

    def _round(self, root: Path) -> None:
        """``cvactive round`` up to the annotations, the stand-in annotator, ``cvactive round next`` to the end."""
        from cvactive.cli import main
        from cvactive.round import Settings, init_project
        from cvactive.store.stand_in import matching_ground_truth, submit_known_labels

        dataset = f"{self.dataset}-round"
        data, pool, truth = round_data(self.data, self.out / "round-data")
        if not (root / "state.json").exists():
            print(
                f"$ cvactive round init {root} --data {data} --pool {pool} --model {self.model} --dataset {dataset}"
                " --budget 10 --imgsz 256  (round.yaml: health.allow_leakage true, as the porch camera repeats)"
            )
            init_project(root, Settings(
                data=str(data), pool=[str(pool)], model=self.model, dataset=dataset, budget=10, imgsz=256,
                train={"epochs": 1 if self.quick else 3}, health={"allow_leakage": True},
            ))  # fmt: skip
        print(f"$ cvactive round next {root}")
        if main(["round", "next", str(root), "--no-progress"]) != 0:
            raise CvactiveError("demo: cvactive round next failed")
        names = truth["names"]

        def labels_for(path: str, width: int, height: int) -> list[tuple[str, list[float]]] | None:
            label = truth["labels"].get(Path(path).name)
            return None if label is None else pixel_boxes(label, names, width, height)

        done = submit_known_labels(dataset, labels_for)
        boxes = sum(len(b) for b in done.values())
        print(f"the annotator (the porch ground truth standing in for a person) submitted {boxes} boxes on "
              f"{len(done)} images through Label Studio's HTTP API")  # fmt: skip
        print(f"$ cvactive round next {root}")
        if main(["round", "next", str(root), "--no-progress"]) != 0:
            raise CvactiveError("demo: cvactive round next failed")
        same, total = matching_ground_truth(dataset, done)
        print(f"collected ground truth equal to the submitted boxes, box for box (0.01 px): {same} of {total} images")
        print_round(root)
        print(f"$ cvactive round status {root}")
        main(["round", "status", str(root)])

    def summarise(self, seconds: float, health_code: int) -> None:
        """13. What the tour made and where, and how to review it."""
        tour, ds = self.tour, self.dataset
        print(f"\n[{tour.total}/{tour.total}] summary: the whole cycle ran in {seconds / 60:.1f} min")
        for what, where in tour.notes:
            print(f"  {what:<20} {where}")
        print(f"  {'FiftyOne data set':<20} {ds}")
        print(f"\nReview the candidates in the FiftyOne App:  cvactive review --dataset {ds}")
        if health_code == 1:
            print(
                f"The health gate failed; see {self.health / 'report.md'}. On the porch data that is leakage: one "
                "fixed camera layout makes near-duplicate frames in both splits, as a real doorstep camera does."
            )


def run(args: argparse.Namespace) -> int:
    from cvactive.weights.checkpoint import checkpoint_loading

    with checkpoint_loading(trust=args.trust_checkpoint):  # every step's .pt loads: weights only unless trusted
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    demo = _Demo(args)
    demo.render_data()
    demo.get_model()
    demo.harvest()
    demo.score_and_select()
    demo.synthesize()
    demo.fill_fiftyone()
    health_code = demo.check_health()
    demo.evaluate()
    demo.loop()
    demo.real_round()
    demo.summarise(time.perf_counter() - start, health_code)
    return 0


def _config(name: str) -> str:
    from cvactive._config import CONFIG_DIR

    return str(CONFIG_DIR / name)
