"""The ``--engine ray`` side of ``cvactive score``: its options and the run that dispatches here."""

from __future__ import annotations

import argparse
import functools
from typing import Any

#: the ``cvactive score`` options that change what the detector produces (recorded in the manifest)
DETECTOR_ARGS = (
    "model",
    "imgsz",
    "conf",
    "iou",
    "device",
    "embed",
    "committee",
    "mc_passes",
    "mc_dropout",
    "mc_seed",
    "tta_views",
    "match_iou",
    "calibration",
)


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """--engine and the options of the Ray engine."""
    g = parser.add_argument_group("scale-out (--engine ray: --out is a folder of shards with a manifest)")
    g.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this process, one JSON-lines file; ray: a pool of Ray actors writing resumable shards",
    )
    g.add_argument("--actors", type=int, default=2, help="Ray actors, one detector each (2)")
    g.add_argument("--cpus-per-actor", type=float, default=1.0, help="CPUs reserved per actor (1)")
    g.add_argument("--gpus-per-actor", type=float, default=0.0, help="GPUs per actor (0; 0.5 shares one GPU)")
    g.add_argument("--num-cpus", type=int, help="CPUs of the local Ray this command starts (default: all)")
    g.add_argument("--address", help="a running Ray cluster (default: $RAY_ADDRESS, else a local Ray)")
    g.add_argument("--shard-size", type=int, default=256, help="images or kept frames per shard (256)")
    g.add_argument("--formats", default="jsonl,parquet", help="shard files: jsonl, parquet or both (both)")
    g.add_argument("--embedding-dtype", choices=("float32", "float16"), default="float32", help="(float32)")
    g.add_argument("--overwrite", action="store_true", help="start over in a folder that holds an earlier run")


def detector_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The detector options of a run, as the manifest records them."""
    from cvactive.cli._common import default_model

    values = {name: getattr(args, name, None) for name in DETECTOR_ARGS}
    values["model"] = values["model"] or default_model()
    return values


def run_sharded(args: argparse.Namespace) -> int:
    """``cvactive score SOURCE --engine ray --out FOLDER``: score into shards and print a summary."""
    from cvactive.cli._common import make_detector, make_scorer
    from cvactive.scale.engine import RayOptions, score_sharded

    settings = detector_settings(args)
    args.model = settings["model"]
    plain = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "func"})
    ray = RayOptions(
        actors=args.actors,
        cpus_per_actor=args.cpus_per_actor,
        gpus_per_actor=args.gpus_per_actor,
        num_cpus=args.num_cpus,
        address=args.address,
    )
    summary = score_sharded(
        args.source,
        args.out,
        functools.partial(make_detector, plain, embed=args.embed),
        scorer=make_scorer(args),
        settings=settings,
        engine="ray",
        ray=ray,
        batch=args.batch,
        stride=args.stride,
        shard_size=args.shard_size,
        formats=[f for f in args.formats.split(",") if f],
        class_scores=args.with_class_scores,
        embedding_dtype=args.embedding_dtype,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    print(
        f"scored {summary.records} images/frames, {summary.boxes} boxes in {summary.shards} shards "
        f"({summary.scored_now} now, {summary.skipped} already done) -> {summary.out}/manifest.json"
    )
    for path, reason in summary.failures:
        print(f"  skipped {path}: {reason}")
    return 1 if summary.records == 0 else 0
