"""The demo end to end (quick mode, its real round through Label Studio) and the README's Python quick start,
both run for real."""

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cvactive.cli import main

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def label_studio(session_tmp: Path) -> Any:  # the session's one server (test_annotate's, when it holds one)
    from labelstudio import running_server

    with running_server(session_tmp / "labelstudio-demo") as server:
        yield server


def test_quick_demo_runs_the_whole_cycle(tmp_path, capsys, label_studio, monkeypatch):
    """The whole tour, its real round (step 12) on the session's Label Studio named by LABEL_STUDIO_URL and
    LABEL_STUDIO_API_KEY (the demo starts its own without them: that start is the session server's own code,
    ``cvactive.store.labelstudio_server.running_server``)."""
    for key, value in label_studio.env().items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--dataset", "cvactive-test-demo"]) == 0
    text = capsys.readouterr().out
    for step in range(1, 14):
        assert f"[{step}/13]" in text
    # the real round: 10 images sent, the porch truth submitted through the API, collected box for box, evaluated
    assert f"Label Studio: {label_studio.url} (from LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY)" in text
    assert re.search(r"submitted \d+ boxes on 10 images through Label Studio's HTTP API", text)
    assert "collected ground truth equal to the submitted boxes, box for box (0.01 px): 10 of 10 images" in text
    assert re.search(r"round 1: 10 tasks in Label Studio project \d+, \d+ boxes on 10 images collected", text)
    assert re.search(r"per-class AP \(IoU 0.50:0.95, 40 val images, FiftyOne evaluation eval_round_1\): .*mAP", text)
    assert "round 1 complete" in text and label_studio.token not in text
    state = json.loads((out / "round" / "state.json").read_text())
    assert state["round"] == 2 and state["history"][0]["collect"]["images"] == 10
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
    rounds = fo.load_dataset("cvactive-test-demo-round")
    assert "eval_round_1" in rounds.list_evaluations()
    rounds.delete()


def test_readme_quick_start_runs(assets):
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"## Quick start.*?```python\n(.*?)```", readme, re.S)
    assert match, "README has no Python quick start"
    done = subprocess.run([sys.executable, "-c", match.group(1)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("frame")]
    assert len(lines) == 3 and all("entropy_max=" in ln for ln in lines)
