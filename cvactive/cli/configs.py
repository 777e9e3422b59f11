"""``cvactive configs [NAME]``: list the configs that ship with cvactive, or print one.

Any command's ``--config`` takes these by name from any folder (``--config harvest-paced``);
``cvactive configs harvest > my-harvest.yaml`` starts a config of your own from a shipped one.
"""

from __future__ import annotations

import argparse
import sys

from cvactive._config import shipped_configs
from cvactive.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "configs",
        help="list the shipped configs (usable by name: --config harvest), or print one",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", nargs="?", help="print this config (e.g. harvest, harvest-paced, health)")
    p.set_defaults(func=run)


def _summary(text: str) -> str:
    """The first comment line of a YAML file, without its ``#``."""
    for line in text.splitlines():
        if line.startswith("#") and line.strip("# ").strip():
            return line.strip("# ").strip()
    return ""


def run(args: argparse.Namespace) -> int:
    shipped = shipped_configs()
    if args.name:
        name = args.name.removesuffix(".yaml")
        if name not in shipped:
            raise ConfigError(f"no shipped config {args.name!r}; shipped configs: {', '.join(shipped)}")
        sys.stdout.write(shipped[name].read_text(encoding="utf-8"))
        return 0
    width = max(map(len, shipped), default=0)
    for name, path in shipped.items():
        print(f"{name:<{width}}  {_summary(path.read_text(encoding='utf-8'))}")
    print("use one with --config NAME; print it with: cvactive configs NAME")
    return 0
