"""``cvactive loop --data DATA --strategies random,uncertainty,... --out DIR``."""

from __future__ import annotations

import argparse
from typing import Any

FLAGS: tuple[str, ...] = ("initial", "budget", "rounds", "model", "init", "freeze", "epochs", "imgsz", "batch")
FLAGS += ("device", "measure")
FLAGS += ("recipe",)
FLAGS += ("budget_unit",)


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
    p.add_argument("--budget", type=int, default=None, help="images labeled per round (or a spend: --budget-unit)")
    p.add_argument(
        "--budget-unit",
        choices=("images", "boxes", "seconds_draw", "seconds_correct"),
        default=None,
        help="what --budget counts: images (default), ground-truth boxes, or annotation seconds drawing every box "
        "or correcting the model's predictions (priced by the config's cost section; docs/cost.md)",
    )
    p.add_argument("--rounds", type=int, default=None, help="selection rounds")
    p.add_argument(
        "--model",
        default=None,
        help="auto (default: the COCO-pretrained YOLOv8n rebuilt from the shared OpenVINO model when present, "
        "else pico), pretrained, a .pt, a model YAML or a scale (pico, n, s: random init)",
    )
    from cvactive.cli._common import add_trust_option

    add_trust_option(p)
    p.add_argument(
        "--init",
        choices=("pretrained", "previous"),
        default=None,
        help="each round trains from the model (pretrained, default) or warm-starts from the previous round",
    )
    p.add_argument("--freeze", type=int, default=None, help="freeze the first N layers while training")
    p.add_argument(
        "--eval-data",
        action="append",
        default=None,
        metavar="DATA[:SPLIT]",
        help="a further evaluation set (same class names) whose per-class AP is recorded each round; repeatable",
    )
    p.add_argument(
        "--recipe",
        default=None,
        help="fine-tuning recipe of every round: steps (default: a fixed number of optimizer steps whatever the "
        "labeled-set size) or epochs (--epochs epochs, Ultralytics' defaults); see docs/loop.md",
    )
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--imgsz", type=int, default=None)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--measure", default=None, help="image score for uncertainty-driven strategies")
    p.add_argument(
        "--cache",
        choices=("none", "disk", "ram"),
        default=None,
        help="Ultralytics' image cache while training and evaluating (disk: .npy files in the study folder, "
        "kept across rounds); not a study setting; see docs/loop.md for the default",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> Any:
    from cvactive._config import load_yaml
    from cvactive.config import check_kwargs
    from cvactive.loop import LoopConfig

    options: dict[str, Any] = load_yaml(args.config) if args.config else {}
    for key in FLAGS:
        value = getattr(args, key)
        if value is not None:
            options[key] = value
    if args.eval_data:
        specs = []
        for spec in args.eval_data:
            data, _, split = spec.rpartition(":") if spec.rpartition(":")[0] else (spec, "", "val")
            specs.append({"data": data, "split": split or "val"})
        options["eval_data"] = specs
    if args.strategies:
        options["strategies"] = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if args.seeds:
        options["seeds"] = _seeds(str(args.seeds))
    check_kwargs(LoopConfig, options, args.config or "loop options")
    for key in ("strategies", "eval_data"):
        if key in options:
            options[key] = tuple(options[key])
    if isinstance(options.get("seeds"), list):
        options["seeds"] = tuple(options["seeds"])
    cfg = LoopConfig(**options)
    check_device(cfg.device)
    return cfg


def check_device(device: str | int | None) -> None:
    """Refuse, before any training, a ``--device`` that is not cpu, mps, cuda or CUDA indices
    (``0``, ``0,1``, ``cuda:0``), or names a CUDA device torch does not see here."""
    import re

    from cvactive.errors import ConfigError

    if device is None:
        return
    text = str(device).strip().lower()
    if text in ("cpu", "mps"):
        return
    m = re.fullmatch(r"(?:cuda:)?(\d+(?:,\d+)*)|cuda", text)
    if m is None:
        raise ConfigError(f"--device {device!r}: expected cpu, mps, cuda or CUDA device indices such as 0 or 0,1")
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    wanted = [int(i) for i in m.group(1).split(",")] if m.group(1) else [0]
    if max(wanted) >= count:
        raise ConfigError(f"--device {device!r}: torch sees {count} CUDA device(s) here; use --device cpu")


def _seeds(text: str) -> int | list[int]:
    """``--seeds``: a number of seeds (``3``) or a comma-separated list of distinct seeds (``0,4,7``)."""
    from cvactive.errors import ConfigError

    parts = [s.strip() for s in text.split(",")]
    if not all(p.isdigit() for p in parts):
        raise ConfigError(f"--seeds expects a number of seeds or a comma-separated list of integers >= 0, got {text!r}")
    seeds = [int(p) for p in parts]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds lists a seed twice: {text!r}")
    return seeds[0] if len(seeds) == 1 else seeds


def run(args: argparse.Namespace) -> int:
    import json

    from cvactive.loop import run_loop
    from cvactive.weights.checkpoint import checkpoint_loading

    cfg = build_config(args)
    with checkpoint_loading(trust=args.trust_checkpoint):  # every .pt the study loads: weights only unless trusted
        extra = {} if args.cache is None else {"cache": args.cache}
        rounds = run_loop(args.data, args.out, cfg, progress=not args.no_progress, **extra)
    out = rounds.parent
    print((out / "summary.md").read_text())
    summary = json.loads((out / "summary.json").read_text())
    for name, s in summary.get("strategies", {}).items():
        if name != "random":
            print(f"{name}: {s['verdict']}")
    print(f"results: {out / 'rounds.csv'}, {out / 'learning_curves.png'}, {out / 'summary.md'}")
    return 0
