"""Harvest configs that name consistency measures get a detector that computes them."""

import json

import pytest

from cvactive.cli import main
from cvactive.cli.harvest import consistency_measures


def test_consistency_measures_named_by_a_config():
    options = {
        "rules": [{"kind": "uncertainty", "score": "tta_localization_max"}, {"kind": "random"}],
        "pacing": {"score": "mc_bald_mean"},
        "scorer": {"measures": ["entropy", "committee_disagreement"]},
    }
    assert consistency_measures(options) == ["committee_disagreement", "mc_bald", "tta_localization"]
    assert consistency_measures({"rules": [{"kind": "uncertainty", "score": "entropy_max"}]}) == []


@pytest.mark.slow
def test_harvest_rule_on_tta_localization(tmp_path, openvino_model, assets):
    config = tmp_path / "h.yaml"
    config.write_text(
        "seed: 0\nstride: 60\nrules:\n  - {kind: uncertainty, name: unstable, score: tta_localization_max, "
        "min_value: 0.0}\nbudget: {total: 3}\n"
    )
    video = assets / "videos" / "slow_traffic_small.mp4"
    out = tmp_path / "out"
    args = ["harvest", str(video), "--model", openvino_model, "--config", str(config), "--out", str(out)]
    assert main([*args, "--imgsz", "320", "--no-progress"]) == 0
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(lines) == 3
    assert all("tta_localization_max" in ln["image_scores"] and ln["rules"] == ["unstable"] for ln in lines)
