"""``cvactive score SOURCE --model MODEL --out FILE.jsonl``."""

from __future__ import annotations

import argparse
from typing import Any

from cvactive.cli._common import (
    add_consistency_options,
    add_detector_options,
    add_scorer_options,
    make_detector,
    make_scorer,
)
from cvactive.cli.engine import add_engine_options


def register(sub: Any) -> None:
    p = sub.add_parser(
        "score",
        help="detect and score every image or video frame of a source, one JSON line each",
        description="Run the detector over images, folders, globs or videos and write per-box uncertainty "
        "measures and per-image aggregates as JSON lines.",
    )
    p.add_argument("source", help="image, folder, glob pattern, video, stream URL or camera index")
    p.add_argument("--out", required=True, help="JSON-lines file to write (a folder with --engine ray)")
    add_detector_options(p)
    add_scorer_options(p)
    add_consistency_options(p)
    p.add_argument("--stride", type=int, default=1, help="keep every n-th video frame (default 1)")
    p.add_argument(
        "--workers",
        type=_workers,
        default=None,
        help="pipeline threads that letterbox, run NMS and score while the model runs (default: half the CPU "
        "cores, 2 to 8, and 0 for a PyTorch model on the CPU; 0: no pipeline)",
    )
    p.add_argument("--embed", action="store_true", help="add an image embedding (PyTorch models)")
    p.add_argument("--with-class-scores", action="store_true", help="write each box's full class-score row")
    p.add_argument(
        "--data",
        help="the YOLO data.yaml of the images (found by itself beside or up to 3 folders above the source): "
        "a warning when the model's classes share no name with the data set's",
    )
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable file")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_engine_options(p)
    p.set_defaults(func=run)


def _workers(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of threads: give 0 (no pipeline) or more")
    return int(text)


#: options that do not change the lines written (a run resumes across them)
_NOT_IN_COMMAND = frozenset({"out", "workers", "strict", "no_progress", "func", "command", "verbose", "engine", "data"})


def warn_class_overlap(args: argparse.Namespace, model_names: Any) -> None:
    """One ``warning:`` line on stderr when the model's classes share no name with the data set's.

    The data set is ``--data`` (a file that cannot be read is an error), else a ``data.yaml``
    beside or above the source (one that cannot be read is passed over).
    """
    import sys

    from cvactive.detect.scorer import class_overlap_warning, data_class_names, find_data_yaml
    from cvactive.errors import ConfigError

    path = getattr(args, "data", None) or find_data_yaml(args.source)
    if path is None or not model_names:
        return
    try:
        names = data_class_names(path)
    except ConfigError:
        if getattr(args, "data", None):
            raise
        return
    message = class_overlap_warning(dict(model_names).values(), names, str(path))
    if message:
        print(f"warning: {message}", file=sys.stderr)


def check_out(args: argparse.Namespace) -> None:
    """Refuse, before the model loads, an ``--out`` that cannot take the pool file or is one of the inputs."""
    from cvactive.detect.stage import partial_path
    from cvactive.outputs import check_file_output
    from cvactive.sources import expand, is_stream

    inputs: list[str] = [args.source]
    if not is_stream(str(args.source)):
        inputs += [str(p) for p in expand(args.source)]  # a missing source is named before the model loads
    inputs += [p for p in (getattr(args, "calibration", None),) if p]
    check_file_output(args.out, inputs=inputs)
    check_file_output(partial_path(args.out), inputs=inputs, what="--out's unfinished file")


def command_of(args: argparse.Namespace) -> dict[str, Any]:
    """The options that define the lines (a ``.partial`` is resumed only by the same ones)."""
    return {k: v for k, v in sorted(vars(args).items()) if k not in _NOT_IN_COMMAND and not callable(v)}


def run(args: argparse.Namespace) -> int:
    if args.stride < 1:
        from cvactive.errors import ConfigError

        raise ConfigError(f"--stride must be at least 1 (every n-th video frame), got {args.stride}")
    if args.engine == "ray":
        from cvactive.cli.engine import run_sharded

        return run_sharded(args)
    from cvactive.detect.stage import partial_path, score_source
    from cvactive.outputs import path_lock

    check_out(args)
    with path_lock(args.out, "score " + str(args.source)):
        scorer = make_scorer(args)
        if getattr(args, "data", None):
            from cvactive.detect.scorer import data_class_names

            data_class_names(args.data)  # a bad --data is refused before the model loads
        detector = make_detector(args, embed=args.embed)
        warn_class_overlap(args, getattr(detector, "names", {}))
        summary = score_source(
            args.source,
            detector,
            args.out,
            scorer=scorer,
            stride=args.stride,
            batch=args.batch,
            workers=args.workers,
            class_scores=args.with_class_scores,
            strict=args.strict,
            progress=not args.no_progress,
            command=command_of(args),
            lock=False,
        )
    if summary.set_aside is not None:
        print(f"  an unfinished file of another command was moved aside to {summary.set_aside}")
    if not summary.written:
        print(f"scored nothing: no image or frame could be read; {summary.out} was not written")
    else:
        resumed = f" ({summary.resumed} resumed from {partial_path(summary.out).name})" if summary.resumed else ""
        print(f"scored {summary.records} images/frames{resumed}, {summary.boxes} boxes -> {summary.out}")
        if summary.replaced:
            print(f"  replaced the previous {summary.out}")
    for path, reason in summary.report.failures:
        print(f"  skipped {path}: {reason}")
    if summary.report.failures:
        print(f"  {len(summary.report.failures)} source(s) could not be read completely")
    return 1 if summary.records == 0 else 0
