"""The README's figures are generated from benchmarks/results/, never typed: the blocks must match."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_readme_blocks_are_what_the_results_say():
    done = subprocess.run(
        [sys.executable, "tools/render_readme.py", "--check"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_every_generated_block_names_a_known_kind_and_the_readme_has_them_all():
    text = (REPO / "README.md").read_text()
    for kind in ("study:aquarium-pretrained", "study:porch-pretrained", "measured", "verdicts:"):
        assert f"<!-- generated:{kind}" in text, kind
    assert text.count("<!-- generated:") == text.count("<!-- /generated -->")
