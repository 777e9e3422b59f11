#!/usr/bin/env python
"""Render the README's generated blocks from benchmarks/results/ (figures are generated, never typed).

A generated block sits between two markers in README.md:

    <!-- generated:study:aquarium-pretrained -->
    ... the study's summary table, written by this script ...
    <!-- /generated -->

    <!-- generated:measured -->
    ... the "Measured" table: one row per benchmark figure (what, baseline, result, goal, met) ...
    <!-- /generated -->

``python tools/render_readme.py`` rewrites the blocks in place; ``--check`` exits 1 when README.md
differs from what the results say (tests/test_readme_generated.py runs that check).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BLOCK = re.compile(r"(<!-- generated:(?P<kind>[\w:.-]+) -->\n)(?P<body>.*?)(<!-- /generated -->)", re.S)


def study_block(name: str) -> str:
    """A study's summary table (summary.md) and a link to its plot and command."""
    folder = RESULTS / name
    if not (folder / "summary.md").exists():
        raise SystemExit(f"no study results in {folder}")
    summary = json.loads((folder / "summary.json").read_text())
    seeds = sorted({s["seeds"] for s in summary["strategies"].values()})
    body = (folder / "summary.md").read_text().rstrip() + "\n"
    body += (
        f"\n*{'/'.join(map(str, seeds))} seeds per strategy; "
        f"[rounds and settings](benchmarks/results/{name}/), [the command](benchmarks/results/{name}/COMMAND.md).*\n"
    )
    return body


#: benchmark JSON file -> function returning its README rows (what, baseline, result, goal, met).
Row = dict[str, Any]
MEASURED: dict[str, Callable[[dict[str, Any]], list[Row]]] = {}


def measured(file: str) -> Callable[[Callable[[dict[str, Any]], list[Row]]], Callable[[dict[str, Any]], list[Row]]]:
    def wrap(func: Callable[[dict[str, Any]], list[Row]]) -> Callable[[dict[str, Any]], list[Row]]:
        MEASURED[file] = func
        return func

    return wrap


def measured_block() -> str:
    lines = [
        "| benchmark | what | baseline in the same run | result | goal | met |",
        "|---|---|---|---|---|---|",
    ]
    for file, rows_of in MEASURED.items():
        path = RESULTS / file
        if not path.exists():
            continue
        for row in rows_of(json.loads(path.read_text())):
            met = {True: "yes", False: "**no**", None: ""}[row.get("met")]
            lines.append(
                f"| [`{file}`](benchmarks/results/{file}) | {row['what']} | {row['baseline']} | {row['result']} | "
                f"{row.get('goal', '')} | {met} |"
            )
    return "\n".join(lines) + "\n"


def render(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        kind = match.group("kind")
        if kind.startswith("study:"):
            body = study_block(kind.split(":", 1)[1])
        elif kind == "measured":
            body = measured_block()
        else:
            raise SystemExit(f"unknown generated block {kind!r}")
        return match.group(1) + body + match.group(4)

    return BLOCK.sub(replace, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is not what the results say")
    parser.add_argument("--readme", default=str(ROOT / "README.md"))
    args = parser.parse_args(argv)
    path = Path(args.readme)
    old = path.read_text()
    new = render(old)
    if args.check:
        if new != old:
            print(f"{path} is out of date with benchmarks/results: run tools/render_readme.py", file=sys.stderr)
            return 1
        return 0
    path.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
