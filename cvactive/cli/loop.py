"""``cvactive loop --data DATA --strategies random,uncertainty,... --out DIR``."""

from __future__ import annotations

import argparse
from typing import Any

FLAGS = ("initial", "budget", "rounds", "model", "epochs", "imgsz", "batch", "device", "measure")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "loop",
        help="simulate active learning with the data set's labels as oracle; learning curves vs random",
        description="Train, evaluate per-class AP, score the pool, select, reveal labels, repeat; for each "
        "strategy and seed. Finished rounds are checkpointed: re-running the command resumes.",
    )
    p.add_argument("--data", required=True, help="YOLO data set (data.yaml or folder)")
    p.add_argument("--out", required=True, help="study folder (checkpoints, rounds.csv, plots, summary)")
    p.add_argument("--config", default=None, help="YAML of LoopConfig keys (e.g. configs/loop.yaml)")
    p.add_argument("--strategies", default=None, help="comma-separated strategies (random is always added)")
    p.add_argument("--seeds", default=None, help="number of seeds, or a comma-separated list")
    p.add_argument("--initial", type=int, default=None, help="initial labeled images")
    p.add_argument("--budget", type=int, default=None, help="images labeled per round")
    p.add_argument("--rounds", type=int, default=None, help="selection rounds")
    p.add_argument("--model", default=None, help="model YAML, .pt or scale (pico, n, s)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--imgsz", type=int, default=None)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--measure", default=None, help="image score for uncertainty-driven strategies")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> Any:
    from cvactive.config import check_kwargs, load_yaml
    from cvactive.loop import LoopConfig

    options: dict[str, Any] = load_yaml(args.config) if args.config else {}
    for key in FLAGS:
        value = getattr(args, key)
        if value is not None:
            options[key] = value
    if args.strategies:
        options["strategies"] = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if args.seeds:
        seeds = [int(s) for s in str(args.seeds).split(",")]
        options["seeds"] = seeds[0] if len(seeds) == 1 else seeds
    check_kwargs(LoopConfig, options, args.config or "loop options")
    for key in ("strategies",):
        if key in options:
            options[key] = tuple(options[key])
    if isinstance(options.get("seeds"), list):
        options["seeds"] = tuple(options["seeds"])
    return LoopConfig(**options)


def run(args: argparse.Namespace) -> int:
    import json

    from cvactive.loop import run_loop

    cfg = build_config(args)
    rounds = run_loop(args.data, args.out, cfg, progress=not args.no_progress)
    out = rounds.parent
    print((out / "summary.md").read_text())
    summary = json.loads((out / "summary.json").read_text())
    for name, s in summary.get("strategies", {}).items():
        if name != "random":
            print(f"{name}: {s['verdict']}")
    print(f"results: {out / 'rounds.csv'}, {out / 'learning_curves.png'}, {out / 'summary.md'}")
    return 0
