import json

import numpy as np
import pytest

from cvactive.loop.report import write_report
from cvactive.loop.stats import area_under_curve, labels_to_reach, summarise, t_interval


def rows_for(strategy, values, seeds=(0, 1, 2), labels=(10, 20, 30), jitter=None):
    """Rows of one strategy: ``values`` per round, shifted by 0.01 per seed (+ an optional per-seed jitter)."""
    jitter = jitter or {}
    return [
        {
            "seed": s,
            "strategy": strategy,
            "round": r,
            "labels_used": n,
            "mAP50_95": v + 0.01 * s + (jitter.get(s, 0.0) if r else 0.0),
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


def test_t_interval_matches_the_textbook():
    ci = t_interval([1.0, 2.0, 3.0])  # sd 1, n 3, t(0.975, 2) = 4.302653
    assert ci["mean"] == pytest.approx(2.0)
    assert ci["ci_high"] - ci["mean"] == pytest.approx(4.302653 / np.sqrt(3), rel=1e-5)
    one = t_interval([0.5])
    assert one["n"] == 1 and np.isnan(one["ci_low"])


def test_paired_verdicts(tmp_path):
    rows = rows_for("random", [0.1, 0.2, 0.3])
    rows += rows_for("good", [0.1, 0.3, 0.4], jitter={0: 0.004, 1: -0.003, 2: 0.0})
    rows += rows_for("bad", [0.1, 0.15, 0.2], jitter={0: 0.002, 1: -0.004, 2: 0.001})
    rows += rows_for("close", [0.1, 0.2, 0.3], jitter={0: 0.02, 1: -0.03, 2: 0.015})
    summary = summarise(rows)
    good, bad, close = (summary["strategies"][s] for s in ("good", "bad", "close"))
    assert good["verdict"] == "beats random"
    assert good["paired_final_diff"]["ci_low"] > 0 and good["paired_final_diff"]["mean"] == pytest.approx(0.1, abs=0.01)
    # Random of seed s ends at 0.3 + 0.01 s; "good" of seed s passes 0.2 + 0.01 s at 10 labels and reaches
    # its random's final at 20 + 10 * (0.3 - 0.3) / 0.1 = 20 labels (jitter aside): 1/3 fewer labels.
    assert good["labels_to_reach_random_final"] == pytest.approx(20.0, abs=0.5)
    assert good["labels_saved_fraction"] == pytest.approx(1 / 3, abs=0.02)
    assert bad["verdict"] == "worse than random"
    assert bad["labels_to_reach_random_final"] is None and bad["labels_saved_fraction"] is None
    assert close["verdict"].startswith("no detectable difference (final")
    assert close["paired_final_diff"]["ci_low"] < 0 < close["paired_final_diff"]["ci_high"]
    assert summary["strategies"]["random"]["final_map50_95"]["sd"] == pytest.approx(0.01)

    write_report(rows, tmp_path)
    assert (tmp_path / "learning_curves.png").stat().st_size > 10_000
    md = (tmp_path / "summary.md").read_text()
    assert "not reached in every seed" in md and "worse than random" in md and "beats random" in md
    saved = json.loads((tmp_path / "summary.json").read_text())["strategies"]["good"]
    for key in ("seeds", "final_map50_95", "paired_final_diff", "paired_auc_diff", "labels_to_reach_random_final"):
        assert key in saved
    assert set(saved["paired_final_diff"]) >= {"mean", "ci_low", "ci_high"}
    header = (tmp_path / "rounds.csv").read_text().splitlines()[0]
    assert "AP50_a" in header and "AP50_95_b" in header
    assert len(json.loads((tmp_path / "rounds.json").read_text())) == 36


def test_one_seed_and_weak_models_get_no_verdict():
    one = rows_for("random", [0.1, 0.2, 0.3], seeds=(0,)) + rows_for("lucky", [0.1, 0.4, 0.6], seeds=(0,))
    assert summarise(one)["strategies"]["lucky"]["verdict"] == "one seed: no verdict"
    weak = rows_for("random", [0.0, 0.001, 0.002]) + rows_for("lucky", [0.0, 0.004, 0.009])
    for row in weak:
        row["mAP50_95"] -= 0.01 * row["seed"]
    assert summarise(weak)["strategies"]["lucky"]["verdict"].startswith("inconclusive")


def test_a_seed_still_running_is_left_out_of_the_summary_not_paired_at_another_label_count(tmp_path):
    done = rows_for("random", [0.2, 0.3, 0.4], seeds=(0, 1)) + rows_for("uncertainty", [0.2, 0.35, 0.5], seeds=(0, 1))
    running = rows_for("random", [0.1, 0.15], seeds=(2,), labels=(10, 20))  # seed 2 has two of its three rounds
    running += rows_for("uncertainty", [0.1], seeds=(2,), labels=(10,))
    full = summarise(done)
    partial = summarise(done + running)
    assert partial["unfinished"] == ["random/seed2", "uncertainty/seed2"]
    assert partial["strategies"] == full["strategies"]  # nothing of seed 2 enters the comparison
    assert partial["random_final_mAP50_95"] == pytest.approx(0.405)  # seeds 0 and 1 only (0.40, 0.41)
    write_report(done + running, tmp_path)
    assert "left out of this table" in (tmp_path / "summary.md").read_text()
    assert len(json.loads((tmp_path / "rounds.json").read_text())) == len(done) + 3  # every round is still kept


def test_paired_difference_at_each_label_count(tmp_path):
    # "early" leads random by 0.05 at 20 labels in every seed and ends level; all share the initial set (10 labels).
    rows = rows_for("random", [0.1, 0.2, 0.3])
    rows += rows_for("early", [0.1, 0.25, 0.3], jitter={0: 0.004, 1: -0.003, 2: 0.0})
    by = summarise(rows)["strategies"]["early"]["paired_diff_by_labels"]
    assert set(by) == {"10", "20", "30"}
    assert by["10"]["mean"] == 0 and by["10"]["ci_high"] == 0
    assert by["20"]["mean"] == pytest.approx(0.05 + 0.001 / 3) and by["20"]["ci_low"] > 0
    assert by["30"]["ci_low"] < 0 < by["30"]["ci_high"]
    write_report(rows, tmp_path)
    md = (tmp_path / "summary.md").read_text()
    table = md[md.index("at each label count") :]
    assert "| strategy | 20 labels | 30 labels |" in table  # no column for the shared initial set
    assert "| early | +0.0503 [" in table
    assert "paired_diff_by_labels" in json.loads((tmp_path / "summary.json").read_text())["strategies"]["early"]


def with_annotation(rows, boxes_per_image, correct=True, first=10):
    """Give each row the annotation record of its labeled set: the initial ``first`` images hold 10 boxes
    each (shared by every strategy of a seed), every image added later ``boxes_per_image``; in correct
    mode half of the boxes are accepted predictions and half are drawn misses."""
    for row in rows:
        n = int(row["labels_used"])
        boxes = 10 * first + boxes_per_image * (n - first)
        counts = {"images": n, "accepted": boxes // 2, "missed": boxes - boxes // 2}
        row["annotation"] = {"images": n, "boxes": boxes, "correct": counts if correct else None}
    return rows


def test_per_axis_verdicts_and_savings_in_boxes(tmp_path):
    # The same mAP50-95 curve against images, paid for in different numbers of boxes: "cheap" adds images of
    # 5 boxes, random of 10, "pricey" of 20. Random: 100, 200, 300 boxes at 10, 20, 30 images.
    jitter = {0: 0.02, 1: -0.004, 2: 0.0}
    rows = with_annotation(rows_for("random", [0.1, 0.2, 0.3]), 10)
    rows += with_annotation(rows_for("cheap", [0.1, 0.2, 0.305], jitter=jitter), 5)  # 100, 150, 200 boxes
    rows += with_annotation(rows_for("pricey", [0.1, 0.2, 0.305], jitter=jitter), 20)  # 100, 300, 500 boxes
    summary = summarise(rows)
    assert summary["axes"] == ["images", "boxes", "seconds_draw", "seconds_correct"]
    cheap, pricey = summary["strategies"]["cheap"], summary["strategies"]["pricey"]
    # Against images nothing differs; the images axis is the table the report always had.
    assert cheap["verdict"].startswith("no detectable difference")
    assert cheap["axes"]["images"]["verdict"] == cheap["verdict"]
    assert cheap["axes"]["images"]["paired_diff_at_equal_spend"] == pytest.approx(cheap["paired_final_diff"])
    assert cheap["axes"]["images"]["spend_vs_random"]["mean"] == 0
    boxes = cheap["axes"]["boxes"]
    # At 200 boxes (the most both reached) cheap is at its final 0.305 (+ jitter), random at its 0.2.
    assert boxes["paired_diff_at_equal_spend"]["mean"] == pytest.approx(0.105 + 0.016 / 3)
    assert boxes["verdict"] == "beats random"
    # Cheap reaches random's final (0.3 + 0.01 s) at about 200 boxes; random itself needs 300: a third saved.
    assert boxes["to_reach_random_final"] == pytest.approx(200, abs=5)
    assert boxes["saved_fraction"] == pytest.approx(1 / 3, abs=0.02)
    assert boxes["saved_fraction_ci"]["ci_low"] > 0
    assert boxes["spend_vs_random"]["mean"] == pytest.approx(200 / 300 - 1)
    assert boxes["final_spend"] == 200
    pb = pricey["axes"]["boxes"]
    assert pb["verdict"] == "worse than random"
    assert pb["spend_vs_random"]["mean"] == pytest.approx(500 / 300 - 1)
    # It reaches random's final only between 300 and 500 boxes, where random needed 300: it costs more.
    assert -1 - 2 / 3 < pb["saved_fraction"] < -0.4 and pb["saved_fraction_ci"]["ci_high"] < 0
    # Seconds to draw: 1.6 per image + 7.0 per box (the default cost model); random spends 48 + 2100 s.
    assert summary["strategies"]["random"]["axes"]["seconds_draw"]["final_spend"] == pytest.approx(30 * 1.6 + 7 * 300)
    assert cheap["axes"]["seconds_draw"]["verdict"] == "beats random"
    assert cheap["axes"]["seconds_correct"]["saved_fraction"] > 0
    # Without the corrections of one round, the seconds_correct axis is left out, not invented.
    rows[-1]["annotation"]["correct"] = None
    partial = summarise(rows)
    assert "seconds_correct" not in partial["axes"] and "seconds_correct" in partial["axes_left_out"]
    assert "seconds_correct" not in partial["strategies"]["cheap"]["axes"]

    write_report(rows, tmp_path)
    md = (tmp_path / "summary.md").read_text()
    assert "On the boxes axis" in md and "| cheap | 200 | -33% [" in md
    assert "Axes not in this report: seconds_correct" in md
    assert (tmp_path / "cost_curves.png").stat().st_size > 10_000
    header = (tmp_path / "rounds.csv").read_text().splitlines()[0]
    assert "boxes,seconds_draw,seconds_correct" in header
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["strategies"]["cheap"]["axes"]["boxes"]["saved_fraction_ci"]["ci_low"] > 0
    assert saved["cost_model"]["box_draw"] == 7.0


def test_rows_without_annotation_have_only_the_images_axis():
    rows = rows_for("random", [0.1, 0.2, 0.3]) + rows_for("good", [0.1, 0.3, 0.4])
    summary = summarise(rows)
    assert summary["axes"] == ["images"]
    assert set(summary["strategies"]["good"]["axes"]) == {"images"}


def test_where_a_rounds_seconds_go(tmp_path):
    """Round 0 counted once per seed; each strategy's later rounds; untimed rows left out."""
    from cvactive.loop.stats import time_split

    rows = rows_for("random", [0.1, 0.2, 0.3]) + rows_for("uncertainty", [0.1, 0.25, 0.35])
    for row in rows:
        r = row["round"]
        score = 0.0 if r == 0 or row["strategy"] == "random" else 4.0
        row["seconds"] = {"train": 10.0 * (r + 1), "score": score, "select": 1.0 if r else 0.0, "evaluate": 2.0}
    split = time_split(rows)
    assert split["round 0"] == {"train": 10.0, "score": 0.0, "select": 0.0, "evaluate": 2.0, "total": 12.0, "rounds": 3}
    assert split["uncertainty"]["score"] == 4.0 and split["random"]["score"] == 0.0
    assert split["random"]["train"] == 25.0 and split["random"]["rounds"] == 6  # rounds 1 and 2 of 3 seeds
    assert time_split(rows_for("random", [0.1, 0.2])) == {}  # recorded before rounds were timed by part
    write_report(rows, tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["seconds_per_round"]["uncertainty"]["total"] == pytest.approx(25.0 + 4.0 + 1.0 + 2.0)
    assert "| uncertainty | 6 | 25.0 | 4.0 | 1.0 | 2.0 | 32.0 |" in (tmp_path / "summary.md").read_text()


def test_a_cost_budget_study_counts_its_seeds_and_random_final_over_every_seed(tmp_path):
    """Under a cost budget each seed's rounds end at their own label counts: the seeds are still
    three, random's final is the mean of the three seeds' last rounds (not the one seed whose last
    count is the largest), and no label-count table is drawn from counts no two seeds share."""
    rows = []
    for seed, labels in enumerate([(10, 22, 31), (10, 19, 28), (10, 24, 35)]):
        rows += rows_for("random", [0.1, 0.2, 0.3], seeds=(seed,), labels=labels)
        rows += rows_for("other", [0.1, 0.19, 0.28], seeds=(seed,), labels=(10, labels[1] - 1, labels[2] + 1))
    summary = summarise(rows)
    assert summary["strategies"]["random"]["seeds"] == 3 and summary["strategies"]["other"]["seeds"] == 3
    assert summary["random_final_mAP50_95"] == pytest.approx(np.mean([0.30, 0.31, 0.32]))
    assert summary["random_final_labels"] == pytest.approx(np.mean([31, 28, 35]))
    assert summary["shared_label_counts"] is False
    # Paired after each round instead (both spent the same budget by then): -0.01 and -0.02 in every seed.
    by_round = summary["strategies"]["other"]["paired_diff_by_round"]
    assert set(by_round) == {"1", "2"}
    assert by_round["1"]["mean"] == pytest.approx(-0.01) and by_round["2"]["mean"] == pytest.approx(-0.02)
    assert by_round["2"]["n"] == 3
    write_report(rows, tmp_path)
    md = (tmp_path / "summary.md").read_text()
    assert "at each label count" not in md
    table = md[md.index("after each round") :]
    assert "| strategy | round 1 | round 2 |" in table and "| other | -0.0100 [" in table
    # The mean curve is taken after each round too: labels (22, 19, 24) -> 22 images after round 1.
    assert "| random | 0.110 (10 images) | 0.210 (22 images) | 0.310 (31 images) |" in md
    assert (tmp_path / "learning_curves.png").stat().st_size > 0


def test_an_image_budget_study_keeps_the_label_count_table(tmp_path):
    rows = rows_for("random", [0.1, 0.2, 0.3]) + rows_for("other", [0.1, 0.22, 0.3], jitter={0: 0.003})
    summary = summarise(rows)
    assert summary["shared_label_counts"] is True
    # The rounds are the label counts here: the two pairings agree.
    by_round = summary["strategies"]["other"]["paired_diff_by_round"]
    by_labels = summary["strategies"]["other"]["paired_diff_by_labels"]
    assert by_round["1"]["mean"] == pytest.approx(by_labels["20"]["mean"])
    write_report(rows, tmp_path)
    md = (tmp_path / "summary.md").read_text()
    assert "at each label count" in md and "after each round" not in md and "Mean over seeds" not in md
