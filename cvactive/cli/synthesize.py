"""``cvactive synthesize DATA --k K --out DIR [--recipe FILE] [--target auto|classes=...|conditions=...]``."""

from __future__ import annotations

import argparse
from typing import Any

from cvactive._config import CONFIG_DIR
from cvactive.declare import add_flags
from cvactive.synthesis.options import SynthesisOptions

DEFAULT_CONFIG = CONFIG_DIR / "synthesis" / "synthesize.yaml"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "synthesize",
        help="make new labeled images where the data is thin (rare classes, night, positions), as a YOLO set",
        description="Membership query synthesis: read a YOLO data set, find its gaps (or target named classes or "
        "conditions), and write label-correct synthetic images made with albumentations recipes and object "
        "copy-paste, with a provenance line per image.",
    )
    p.add_argument("data", nargs="?", help="a YOLO data.yaml or its folder")
    p.add_argument("--k", type=int, help="how many synthetic images to make (required; as select's --k)")
    p.add_argument("--out", help="output folder, new or empty (required)")
    p.add_argument(
        "--recipe",
        action="append",
        default=None,
        help="recipe YAML file, folder or built-in name (repeatable; default: all of configs/synthesis/recipes)",
    )
    p.add_argument(
        "--target",
        action="append",
        default=None,
        help="auto (default), classes=NAME[,NAME], or conditions=RECIPE[,RECIPE] (classes and conditions combine)",
    )
    p.add_argument("--config", default=None, help=f"options YAML (default: {DEFAULT_CONFIG.name} in configs/synthesis)")
    add_flags(p, SynthesisOptions)  # --seed, --split: each overrides its config key
    p.add_argument(
        "--overwrite", action="store_true", help="replace a synthetic set already in --out (only its own files go)"
    )
    p.add_argument("--list-recipes", action="store_true", help="print the recipes with what they fill, then exit")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cvactive._config import load_yaml
    from cvactive.declare import flag_values
    from cvactive.errors import ConfigError
    from cvactive.synthesis import load_recipes, synthesize

    if args.out is not None and args.data is not None and not args.list_recipes:  # before any work
        from pathlib import Path

        from cvactive.synthesis.output import check_out

        data = Path(args.data)
        check_out(Path(args.out).resolve(), inputs=[data if data.is_dir() else data.parent])
    recipes = load_recipes(args.recipe)
    if args.list_recipes:
        for r in recipes.values():
            kind = "geometric" if r.geometric else "photometric"
            print(f"{r.name:<12} {kind:<11} fills {','.join(r.fills) or '-':<24} {r.description}")
        return 0
    missing = [name for name, value in (("DATA", args.data), ("--k", args.k), ("--out", args.out)) if value is None]
    if missing:
        raise ConfigError(f"missing {', '.join(missing)}: cvactive synthesize DATA --k K --out DIR")
    config = args.config or DEFAULT_CONFIG
    options = SynthesisOptions.of({**load_yaml(config), **flag_values(args, SynthesisOptions)})
    summary = synthesize(
        args.data,
        k=args.k,
        out=args.out,
        recipes=recipes,
        target=args.target or "auto",
        options=options,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    print("\n".join(summary.lines()))
    return 0 if summary.written else 1
