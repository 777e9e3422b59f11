import json

import numpy as np
import pytest

from cvactive.loop.report import area_under_curve, labels_to_reach, summarise, write_report


def rows_for(strategy, values, seeds=(0, 1, 2), labels=(10, 20, 30)):
    return [
        {
            "seed": s,
            "strategy": strategy,
            "round": r,
            "labels_used": n,
            "mAP50_95": v + 0.01 * s,
            "mAP50": 2 * v,
            "train_seconds": 1.0,
            "select_seconds": 0.5,
            "ap50": {"a": v, "b": v / 2},
            "ap50_95": {"a": v / 2, "b": v / 4},
        }
        for s in seeds
        for r, (n, v) in enumerate(zip(labels, values))
    ]


def test_curve_helpers():
    x, y = np.array([10, 20, 30]), np.array([0.1, 0.3, 0.5])
    assert area_under_curve(x, y) == pytest.approx(0.3)
    assert labels_to_reach(x, y, 0.4) == pytest.approx(25.0)
    assert labels_to_reach(x, y, 0.6) is None
    assert labels_to_reach(x, y, 0.05) == 10


def test_summary_says_who_beats_random(tmp_path):
    rows = rows_for("random", [0.1, 0.2, 0.3]) + rows_for("good", [0.1, 0.3, 0.4]) + rows_for("bad", [0.1, 0.15, 0.2])
    summary = summarise(rows)
    good, bad = summary["strategies"]["good"], summary["strategies"]["bad"]
    assert good["verdict"].startswith("beats random")
    assert good["labels_to_reach_random_final"] == pytest.approx(20.0)  # 0.31 reached at 20
    assert good["labels_saved_vs_random"] == pytest.approx(10.0)
    assert bad["verdict"] == "does not beat random on this data"
    assert bad["labels_to_reach_random_final"] is None
    write_report(rows, tmp_path)
    assert (tmp_path / "learning_curves.png").stat().st_size > 10_000
    md = (tmp_path / "summary.md").read_text()
    assert "not reached" in md and "does not beat random" in md
    header = (tmp_path / "rounds.csv").read_text().splitlines()[0]
    assert "AP50_a" in header and "AP50_95_b" in header
    assert len(json.loads((tmp_path / "rounds.json").read_text())) == 27


def test_noise_and_weak_models_are_called_what_they_are():
    noisy = rows_for("random", [0.1, 0.2, 0.3]) + rows_for("close", [0.1, 0.2, 0.305])
    for row in noisy:  # a seed spread of about 0.05
        row["mAP50_95"] += 0.05 * (row["seed"] - 1)
    assert summarise(noisy)["strategies"]["close"]["verdict"].startswith("not distinguishable")
    weak = rows_for("random", [0.0, 0.001, 0.002]) + rows_for("lucky", [0.0, 0.004, 0.009])
    assert summarise(weak)["strategies"]["lucky"]["verdict"].startswith("inconclusive")
