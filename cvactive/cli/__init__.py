"""The ``cvactive`` command line: one thin subcommand per stage.

Each subcommand module has ``register(subparsers)``, which adds its parser and sets
``func`` to a ``run(args) -> int``; ``run`` loads the YAML config, calls one public
function and prints a summary. The config file a command names is checked (every key's type,
range and default, :mod:`cvactive.schemas`) before ``run`` starts. Errors cvactive raises
become one line on stderr and a non-zero exit code (2 for bad input), not a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings
from collections.abc import Sequence

from cvactive import __version__
from cvactive.config import check_command
from cvactive.errors import CvactiveError

#: subcommand -> module; modules import their heavy dependencies inside ``run``.
COMMANDS: dict[str, str] = {
    "score": "cvactive.cli.score",
    "calibrate": "cvactive.cli.calibrate",
    "errors": "cvactive.cli.errormodel",
    "porch": "cvactive.cli.porch",
    "demo": "cvactive.cli.demo",
    "select": "cvactive.cli.select",
    "loop": "cvactive.cli.loop",
    "health": "cvactive.cli.health",
    "push": "cvactive.cli.fo_push",
    "review": "cvactive.cli.fo_review",
    "pull": "cvactive.cli.fo_pull",
    "annotate": "cvactive.cli.annotate",
    "round": "cvactive.cli.round",
    "import": "cvactive.cli.fo_import",
    "export": "cvactive.cli.fo_export",
    "evaluate": "cvactive.cli.fo_evaluate",
    "synthesize": "cvactive.cli.synthesize",
    "harvest": "cvactive.cli.harvest",
    "feed": "cvactive.cli.feed",
    "weights": "cvactive.cli.weights",
    "configs": "cvactive.cli.configs",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cvactive",
        description="Active learning for object detection with YOLO, video harvesting and FiftyOne review.",
    )
    parser.add_argument("--version", action="version", version=f"cvactive {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="the data folder: generated data and caches (the pretrained checkpoint rebuilt from the shared assets, "
        "the default output of porch and evaluate); default $CVACTIVE_DATA, else $XDG_CACHE_HOME/cvactive, else "
        "~/.cache/cvactive. The shared assets: $CVACTIVE_ASSETS, else ../shared/assets from the working directory",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS.values():
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cvactive`` console script."""
    with warnings.catch_warnings():
        args = build_parser().parse_args(argv)
        if args.data_dir:  # the folder defaults live in cvactive.assets, which reads this
            os.environ["CVACTIVE_DATA"] = os.path.abspath(args.data_dir)
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.INFO,
            format="%(levelname)s %(name)s: %(message)s",
        )
        try:
            check_command(args.command, args)  # the config files it names, before any work
            return int(args.func(args) or 0)
        except CvactiveError as err:
            print(f"cvactive {args.command}: error: {err}", file=sys.stderr)
            return err.exit_code
        except KeyboardInterrupt:
            print(f"cvactive {args.command}: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:  # `cvactive ... | head`: the reader left, which is not an error
            _quiet_stdout()
            return 0
        except OSError as err:
            if err.filename is None:  # not about a path the user gave: a bug, keep the traceback
                raise
            # a full disk, a read-only folder, a missing or foreign path met while writing
            print(f"cvactive {args.command}: error: {_os_error_line(err)}", file=sys.stderr)
            return 2


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so Python's exit flush does not raise a second BrokenPipeError."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _os_error_line(err: OSError) -> str:
    """``[Errno 28] No space left on device: 'out.jsonl'`` with a path that prints whatever its bytes."""
    name = os.fsencode(err.filename).decode("utf-8", "replace")
    return f"{err.strerror or err.__class__.__name__}: {name}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
