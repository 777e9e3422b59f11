"""``cvactive round init|status|next|select|annotate|collect|check|train|evaluate DIR``: one round at a time."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cvactive.recipes import DEFAULT_RECIPE, RECIPES

STEP_HELP = {
    "select": "score the pool with the current model, pick the batch, push it to FiftyOne",
    "annotate": "send the batch to Label Studio with the model's boxes as pre-labels",
    "collect": "collect finished annotations; when all are in, add them to the labeled YOLO set",
    "check": "the health gate on the grown labeled set (exit 1 and the report when a gate fails)",
    "train": "fine-tune from the last round's weights (or the starting model) on the labeled set",
    "evaluate": "per-class AP on the fixed split, stored as the round's FiftyOne evaluation; history and plot",
}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "round",
        help="a project folder and one resumable command per step of a real round (select ... evaluate)",
        description="Run real active-learning rounds in a project folder: select -> annotate (Label Studio) -> "
        "collect -> check -> train -> evaluate. Each step is resumable and refuses to run out of order; "
        "'status' says what to run next, 'next' runs every step that needs no person. The Label Studio server "
        "comes from LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY (never written to the project). See docs/round.md.",
    )
    steps = p.add_subparsers(dest="round_command", metavar="STEP", required=True)
    init = steps.add_parser("init", help="create a project folder", description="Create a round project folder.")
    init.add_argument("dir", help="the project folder (new or empty)")
    init.add_argument("--data", required=True, help="the labeled set's data.yaml (YOLO); copied into DIR/labeled")
    init.add_argument("--pool", required=True, nargs="+", help="unlabeled sources: images, folders, globs, videos")
    init.add_argument("--model", required=True, help="the starting model (.pt, or an exported model)")
    init.add_argument("--dataset", required=True, help="the FiftyOne data set of the project")
    init.add_argument("--backend", default="labelstudio", help="annotation backend (default labelstudio)")
    init.add_argument("--strategy", default="uncertainty", help="selection strategy (default uncertainty)")
    init.add_argument("--budget", type=int, default=20, help="images to label per round (default 20)")
    init.add_argument("--eval-split", default="val", help="the fixed split every round is evaluated on (val)")
    init.add_argument("--imgsz", type=int, default=320, help="image size for scoring and training (default 320)")
    init.add_argument("--recipe", choices=tuple(RECIPES), default=DEFAULT_RECIPE,
                      help=f"how each round fine-tunes (default {DEFAULT_RECIPE}; docs/loop.md)")  # fmt: skip
    init.add_argument("--epochs", type=int, default=30, help="training epochs per round of the epochs recipe (30)")
    init.add_argument("--finetune", choices=("last", "pretrained"), default="last",
                      help="train each round from the last weights (default) or from --model")  # fmt: skip
    init.add_argument("--seed", type=int, default=0, help="selection seed (default 0)")
    init.set_defaults(func=run)
    for name in ("status", "next"):
        q = steps.add_parser(
            name,
            help="where the project stands and what to run next" if name == "status" else
            "run every step of the round that needs no person (stops while annotations are pending)",
        )  # fmt: skip
        q.add_argument("dir", help="the project folder")
        q.add_argument("--no-progress", action="store_true", help="no progress bars")
        q.set_defaults(func=run)
    for name, text in STEP_HELP.items():
        q = steps.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        q.add_argument("dir", help="the project folder")
        q.add_argument("--no-progress", action="store_true", help="no progress bars")
        q.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cvactive.round import GateFailed, Pending

    command = args.round_command
    try:
        if command == "init":
            return _init(args)
        if command == "status":
            return _status(args.dir)
        if command == "next":
            return _next(args)
        return _step(args.dir, command, not args.no_progress)
    except GateFailed as failed:
        print(str(failed), file=sys.stderr)
        return 1
    except Pending:  # reported by _step / _next already
        return 0


def _init(args: argparse.Namespace) -> int:
    from cvactive.round import Settings, init_project

    settings = Settings.from_dict(
        {
            "data": args.data, "pool": args.pool, "model": args.model, "dataset": args.dataset,
            "backend": args.backend, "strategy": args.strategy, "budget": args.budget, "eval_split": args.eval_split,
            "imgsz": args.imgsz, "finetune": args.finetune, "seed": args.seed,
            "train": {"recipe": args.recipe, "epochs": args.epochs},
        },
        "round init",
    )  # fmt: skip
    project = init_project(args.dir, settings)
    print(f"{project.root}: round project for data set {settings.dataset!r}; labeled set in {project.labeled}")
    print(f"next: cvactive round next {project.root}")
    return 0


def _status(root: str) -> int:
    from cvactive.round import STEPS, status

    s = status(root)
    marks = " ".join(f"[{'x' if step in s.done else ' '}] {step}" for step in STEPS)
    last = "" if s.last_map is None else f", last mAP {s.last_map:.3f}"
    print(f"{s.root}: round {s.round} ({s.rounds_done} done{last})")
    print(f"  {marks}")
    print(f"next: {s.advice}")
    return 0


def _report(step: str, n: int, info: dict[str, Any]) -> str:
    keys = {
        "select": ("selected", "pool", "picked_before"), "annotate": ("sent", "already_sent", "prelabels", "project"),
        "collect": ("images", "boxes", "edited", "deleted", "added"), "check": ("gates", "report"),
        "train": ("weights", "seconds", "epochs", "steps"), "evaluate": ("map", "samples", "eval_key", "history"),
    }  # fmt: skip
    parts = []
    for k in keys[step]:
        if k in info:
            v = info[k]
            parts.append(f"{k} {v:.4f}" if isinstance(v, float) and k == "map" else f"{k} {v}")
    return f"round {n}: {step} done: " + ", ".join(parts)


def _step(root: str, step: str, progress: bool) -> int:
    from cvactive.round import Pending, run_step, status

    try:
        project, info = run_step(root, step, progress=progress)
    except Pending as pending:
        _pending(root, pending.info)
        raise
    n = project.round - 1 if step == "evaluate" else project.round
    print(_report(step, n, info))
    print(f"next: {status(root).advice}")
    return 0


def _pending(root: str, info: dict[str, Any]) -> None:
    from cvactive.round import status

    print(f"collected {info.get('collected_now', 0)} now; {info['labeled']} of the round's images labeled, "
          f"{info['pending']} pending")  # fmt: skip
    print(f"next: {status(root).advice}")


def _next(args: argparse.Namespace) -> int:
    from cvactive.round import open_project, run_step, status
    from cvactive.round.steps import Pending

    progress = not args.no_progress
    project = open_project(args.dir)
    start = project.round
    while project.round == start:
        step = status(args.dir).next
        print(f"$ cvactive round {step} {args.dir}", flush=True)
        try:
            project, info = run_step(args.dir, step, progress=progress)
        except Pending as pending:
            _pending(args.dir, pending.info)
            return 0
        print(_report(step, start, info))
    print(f"round {start} complete; next: {status(args.dir).advice}")
    return 0
