"""The loop fits an error predictor for strategies that need one (real training, scoring and selection)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_tiny_study_with_learned_error_and_class_balanced(porch_data, tmp_path):
    from cvactive.errormodel import TOTAL, ErrorModel
    from cvactive.loop.config import LoopConfig
    from cvactive.loop.study import Study
    from cvactive.selection import select

    cfg = LoopConfig(
        strategies=("learned_error", "class_balanced"),
        initial=10,
        budget=10,
        rounds=1,
        seeds=1,
        model="pico",
        recipe="epochs",
        epochs=2,
        imgsz=128,
        strategy_options={"class_balanced": {"target": "inverse"}},
    )
    study = Study(porch_data, tmp_path / "study", cfg)
    rows = study.run(progress=False)
    assert sorted((r["strategy"], r["round"], r["labels_used"]) for r in rows) == [
        ("class_balanced", 0, 10),
        ("class_balanced", 1, 20),
        ("learned_error", 0, 10),
        ("learned_error", 1, 20),
        ("random", 0, 10),
        ("random", 1, 20),
    ]
    key = lambda r: (r["strategy"], r["round"])  # noqa: E731
    assert sorted(study.finished_rows(), key=key) == sorted(rows, key=key)  # the report-only path: same rows
    from dataclasses import replace

    narrowed = Study(porch_data, tmp_path / "study", replace(cfg, strategies=("class_balanced",)))
    assert sorted(narrowed.finished_rows(), key=key) == sorted(rows, key=key)  # arms run before stay reported
    round0 = json.loads((tmp_path / "study" / "seed0" / "round0" / "round.json").read_text())
    weights = Path(round0["weights"])
    saved = weights.parent / "error_model.npz"
    report = json.loads(saved.with_suffix(".json").read_text())
    assert report["fit"]["images"] == 20  # the porch val split, never the pool
    assert report["cross_validation"]["per_image"]["images"] == 20

    # The picks are the top of the saved predictor's expected errors on the pool the round-0 model scored.
    fresh = Study(porch_data, tmp_path / "study", cfg)
    records = ErrorModel.load(saved).attach(fresh.scored_pool(str(weights)))
    assert all(TOTAL in r.image_scores for r in records)
    rng = np.random.default_rng([0, 1, sum(map(ord, "learned_error"))])
    expected = select(records, 10, "learned_error", labeled=np.asarray(round0["labeled"]), rng=rng)[0]
    chosen = json.loads((tmp_path / "study" / "seed0" / "learned_error" / "round1" / "round.json").read_text())
    assert chosen["chosen"] == sorted(int(i) for i in expected)
    assert not set(chosen["chosen"]) & set(round0["labeled"])


def test_a_second_study_into_a_running_study_folder_fails_at_once(porch_data, tmp_path, capsys):
    """Issue #24: one writer per study folder; the second run names the first and trains nothing."""
    from cvactive.cli import main
    from cvactive.outputs import folder_lock

    out = tmp_path / "study"
    with folder_lock(out, "loop (the first run)"):
        code = main(
            [
                "loop",
                "--data",
                str(porch_data),
                "--out",
                str(out),
                "--model",
                "pico",
                "--seeds",
                "1",
                "--initial",
                "10",
                "--budget",
                "10",
                "--rounds",
                "1",
            ]
        )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "is in use by pid" in err[0] and "the first run" in err[0]
    assert sorted(p.name for p in out.iterdir()) == [".cvactive.lock"]
