"""The demo end to end (quick mode) and the README's Python quick start, both run for real."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from cvactive.cli import main

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def test_quick_demo_runs_the_whole_cycle(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--dataset", "cvactive-test-demo"]) == 0
    text = capsys.readouterr().out
    for step in range(1, 14):
        assert f"[{step}/13]" in text
    for command in ("cvactive harvest", "cvactive score", "cvactive select", "cvactive synthesize", "cvactive push"):
        assert command in text
    assert "summary: the whole cycle ran in" in text
    assert "cvactive review --dataset cvactive-test-demo" in text
    for path in ("porch/data.yaml", "selected.jsonl", "synthetic/provenance.jsonl", "health/report.md"):
        assert (out / path).exists(), path
    assert (out / "loop" / "learning_curves.png").exists()
    assert len((out / "selected.jsonl").read_text().splitlines()) == 20

    import fiftyone as fo

    dataset = fo.load_dataset("cvactive-test-demo")
    assert len(dataset.match_tags("to-review")) >= 20
    assert len(dataset.match_tags("synthetic")) > 0
    dataset.delete()


def test_readme_quick_start_runs(assets):
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"## Quick start.*?```python\n(.*?)```", readme, re.S)
    assert match, "README has no Python quick start"
    done = subprocess.run([sys.executable, "-c", match.group(1)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("frame")]
    assert len(lines) == 3 and all("entropy_max=" in ln for ln in lines)
