"""What the repository ships records no absolute path of the machine that made it (issue #25, item 11).

Results (``benchmarks/results``) and docs name files relative to the repository (``data/...``)
or the assets folder (``../shared/assets/...``): the writers pass their text through
:func:`cvactive.outputs.portable_text`. Transcripts in the docs may still show a temporary output
folder a reader picks (``--out /tmp/x``); what must not appear is a location of one machine: this
checkout's or the assets' absolute path, a home or work folder, or a script outside the repository.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from cvactive.assets import assets_dir

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Top-level folders whose paths belong to one machine (a checkout, a home, a mount).
MACHINE_ROOTS = ("work", "home", "root", "Users", "mnt", "srv", "scratch")
PATTERN = re.compile(r"(?<![\w.~$-])/(?:" + "|".join(MACHINE_ROOTS) + r")/[^\s\"'`),]+")
TEXT_SUFFIXES = (".json", ".md", ".csv", ".txt", ".yaml", ".yml")
#: Folders left to their owners, with why: remove an entry once its files are rewritten.
KNOWN: dict[str, str] = {}


def shipped_files() -> list[Path]:
    """The text files under benchmarks/results and docs that git tracks (all of them outside a checkout)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "benchmarks/results", "docs"], cwd=REPO_ROOT, capture_output=True, check=True
        ).stdout.decode()
        files = [REPO_ROOT / name for name in listed.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        files = [*(REPO_ROOT / "benchmarks" / "results").rglob("*"), *(REPO_ROOT / "docs").rglob("*")]
    return [f for f in files if f.is_file() and f.suffix in TEXT_SUFFIXES]


def machine_paths(text: str) -> list[str]:
    found = PATTERN.findall(text)
    for own in (REPO_ROOT, assets_dir()):
        if own is not None and str(own) + "/" in text:
            found.append(str(own))
    return found


def test_the_pattern_finds_machine_paths_and_passes_portable_ones():
    assert "/work/main/data/weights/x.pt" in machine_paths('"start_from": "/work/main/data/weights/x.pt"')
    assert machine_paths("$ /home/me/pause.sh python tools/bench.py") == ["/home/me/pause.sh"]
    assert machine_paths(f"data: {REPO_ROOT}/data/porch/data.yaml")  # this checkout, wherever it is
    for fine in ("../shared/assets/aquarium/data.yaml", "data/weights/x.pt", "--out /tmp/h", "https://x.org/work/a"):
        assert machine_paths(fine) == [], fine


def test_results_and_docs_carry_no_machine_paths():
    files = shipped_files()
    if not files:
        pytest.skip("no benchmarks/results or docs in this copy")
    bad = {}
    for path in files:
        if str(path.relative_to(REPO_ROOT)).startswith(tuple(KNOWN)):
            continue
        hits = machine_paths(path.read_text(encoding="utf-8", errors="replace"))
        if hits:
            bad[str(path.relative_to(REPO_ROOT))] = sorted(set(hits))[:3]
    assert not bad, f"absolute machine paths (record them with cvactive.outputs.portable_text): {bad}"
