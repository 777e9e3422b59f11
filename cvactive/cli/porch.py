"""``cvactive porch --out DIR``: render the built-in synthetic porch data set and video."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "porch",
        help="render the built-in synthetic porch-camera data set (YOLO format) and video",
        description="Render the doorstep-packages data set from datasets/porch.yaml: brown boxes, white "
        "envelopes and rare yellow boxes, rare night frames, packages skewed left; plus a short video.",
    )
    p.add_argument("--out", default=None, help="output folder (default: porch/ in the data folder, --data-dir)")
    p.add_argument("--recipe", default=None, help="recipe YAML (default: datasets/porch.yaml)")
    p.add_argument("--seed", type=int, default=None, help="override the recipe's seed")
    p.add_argument("--no-video", action="store_true", help="skip the porch video")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cvactive.assets import data_dir
    from cvactive.porch import RECIPE_PATH, PorchRecipe, video_path, write_dataset

    overrides = {} if args.seed is None else {"seed": args.seed}
    recipe = PorchRecipe.load(args.recipe or RECIPE_PATH, **overrides)
    out = args.out or data_dir() / "porch"
    data_yaml = write_dataset(out, recipe, video=not args.no_video)
    print(f"porch data set: {data_yaml} ({recipe.train} train, {recipe.val} val images)")
    if not args.no_video:
        print(f"porch video:    {video_path(data_yaml.parent)}")
    return 0
