"""The README's figures are generated from benchmarks/results/, never typed: the blocks must match."""

from __future__ import annotations

import importlib.util
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


def load_renderer():
    spec = importlib.util.spec_from_file_location("render_readme", REPO / "tools" / "render_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_study_budgeted_in_boxes_is_told_in_the_images_its_boxes_bought():
    """Every arm of a box budget spends random's boxes by design, so "+0% boxes" says nothing:
    the line gives the images each arm's boxes bought instead, with its paired interval."""
    render = load_renderer()
    no_difference = "no detectable difference (final ...)"
    summary = {
        "axes": ["images", "boxes"],
        "random_final_labels": 200.0,
        "strategies": {"random": {"axes": {"boxes": {"final_spend": 1900.0}}}},
    }
    strategies = {
        "crowded": {
            "axes": {
                "boxes": {"verdict": no_difference, "spend_vs_random": {"mean": 0.0}},
                "images": {"spend_vs_random": {"mean": -0.28, "ci_low": -0.52, "ci_high": -0.04}},
            }
        },
        "one_seed": {
            "axes": {
                "boxes": {"verdict": no_difference, "spend_vs_random": {"mean": 0.001}},
                "images": {"spend_vs_random": {"mean": 0.05, "ci_low": None, "ci_high": None}},
            }
        },
    }
    line = render.boxes_verdicts(summary, strategies, "boxes")
    assert "**Budgeted in boxes**" in line and "random's 1,900 boxes" in line and "random's 200" in line
    assert "`crowded` -28% [-52%, -4%]" in line and "`one_seed` +5%" in line
    assert "at equal boxes: `crowded`, `one_seed` show no difference" in line
    # Budgeted in images: the boxes each labeled set holds against random's.
    assert "**Counted in boxes drawn**" in render.boxes_verdicts(summary, strategies, "images")
