"""The active-learning loop end to end: real training, scoring, selection, and resume after SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow

ARGS = ["--strategies", "uncertainty", "--seeds", "1", "--initial", "10", "--budget", "10", "--rounds", "2"]
ARGS += ["--recipe", "epochs", "--epochs", "2", "--imgsz", "128", "--model", "pico", "--no-progress"]


def loop_cmd(data, out):
    return [sys.executable, "-m", "cvactive.cli", "loop", "--data", str(data), "--out", str(out), *ARGS]


def test_tiny_loop_killed_midway_resumes(porch_data, tmp_path):
    out = tmp_path / "study"
    env = dict(os.environ)
    proc = subprocess.Popen(loop_cmd(porch_data, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = out / "seed0" / "round0" / "round.json"
    deadline = time.time() + 300
    while not first.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert first.exists(), "round 0 never finished"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    round0_mtime = first.stat().st_mtime_ns
    assert not (out / "rounds.json").exists()

    done = subprocess.run(loop_cmd(porch_data, out), env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert first.stat().st_mtime_ns == round0_mtime  # the finished round was not trained again
    rows = json.loads((out / "rounds.json").read_text())
    assert sorted((r["strategy"], r["round"], r["labels_used"]) for r in rows) == [
        ("random", 0, 10),
        ("random", 1, 20),
        ("random", 2, 30),
        ("uncertainty", 0, 10),
        ("uncertainty", 1, 20),
        ("uncertainty", 2, 30),
    ]
    for row in rows:
        assert set(row["ap50"]) == {"brown_box", "white_envelope", "yellow_box"}
        assert row["eval_conf"] == 0.001 and row["iou_thresholds"] == "0.50:0.05:0.95"
    # Both strategies grow the same labeled set from the same start, with no image twice.
    for strategy in ("random", "uncertainty"):
        r1 = json.loads((out / "seed0" / strategy / "round1" / "round.json").read_text())
        r2 = json.loads((out / "seed0" / strategy / "round2" / "round.json").read_text())
        assert set(r1["labeled"]) < set(r2["labeled"]) and len(set(r2["labeled"])) == 30
    assert (out / "learning_curves.png").exists() and (out / "summary.md").exists()
    assert "uncertainty" in done.stdout

    # Re-running a finished study trains nothing and gives the same table.
    again = subprocess.run(loop_cmd(porch_data, out), env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and json.loads((out / "rounds.json").read_text()) == rows


def test_loop_rejects_a_budget_larger_than_the_pool(porch_data, tmp_path, capsys):
    from cvactive.cli import main

    code = main(["loop", "--data", str(porch_data), "--out", str(tmp_path), "--initial", "50", "--budget", "50"])
    assert code == 2
    assert "pool has only 60 images" in capsys.readouterr().err


def test_warm_start_extra_evaluation_set_and_frozen_layers(porch_data, tmp_path):
    """init=previous trains round 1 from round 0's weights; eval_data adds a per-round evaluation set;
    random is selected without scoring the pool (the registry says it needs no detections); with the
    disk cache nothing is written beside the data set's files, and the scored pool is kept by hash."""
    import yaml

    from cvactive.loop import LoopConfig, run_loop

    extra = tmp_path / "extra.yaml"  # the porch val split again, under another name
    extra.write_text(yaml.safe_dump({**yaml.safe_load(porch_data.read_text()), "path": str(porch_data.parent)}))
    cfg = LoopConfig(
        strategies=("random", "coreset"), initial=10, budget=10, rounds=1, seeds=1, model="pico", init="previous",
        freeze=2, recipe="epochs", epochs=1, imgsz=128,
        eval_data=({"data": str(extra), "split": "val", "name": "again"},),
    )  # fmt: skip
    user_files = sorted(porch_data.parent.rglob("*"))
    rows = json.loads(run_loop(porch_data, tmp_path / "study", cfg, progress=False, cache="disk").read_text())
    assert sorted(porch_data.parent.rglob("*")) == user_files  # no label cache, no .npy beside the user's files
    dataset = tmp_path / "study" / "dataset"
    assert len(list((dataset / "images" / "eval-main").glob("*.npy"))) == 20  # evaluation images decoded once
    assert (dataset / "labels" / "eval-main.cache").is_file() and (dataset / "labels" / "pool.cache").is_file()
    round0 = json.loads((tmp_path / "study" / "seed0" / "round0" / "round.json").read_text())
    for strategy in ("random", "coreset"):
        r1 = json.loads((tmp_path / "study" / "seed0" / strategy / "round1" / "round.json").read_text())
        assert r1["start_from"] == round0["weights"]
        assert set(r1["eval_sets"]) == {"again"}
        # The same images and labels under another name give the same AP.
        assert r1["eval_sets"]["again"]["mAP50_95"] == pytest.approx(r1["mAP50_95"], abs=1e-6)
    assert {r["strategy"] for r in rows} == {"random", "coreset"}
    settings = json.loads((tmp_path / "study" / "settings.json").read_text())
    assert settings["init"] == "previous" and settings["freeze"] == 2
    # Where each round's seconds go, and what its training did (issue #22).
    for strategy in ("random", "coreset"):
        r1 = json.loads((tmp_path / "study" / "seed0" / strategy / "round1" / "round.json").read_text())
        assert set(r1["seconds"]) == {"train", "score", "select", "evaluate"}
        assert r1["seconds"]["train"] == r1["train_seconds"] > 0 and r1["seconds"]["evaluate"] > 0
        # select_seconds covered the strategy and any pool scoring; score also has the corrections' predictions
        assert 0 <= r1["seconds"]["select"] <= r1["select_seconds"] <= r1["seconds"]["score"] + r1["seconds"]["select"]
        # 20 labeled images, 1 epoch of 16: 2 batches, gradients accumulated to 64 images: 1 step
        assert r1["training"] == {"recipe": "epochs", "epochs": 1, "steps": 1, "images": 20}
    coreset = json.loads((tmp_path / "study" / "seed0" / "coreset" / "round1" / "round.json").read_text())
    random_r1 = json.loads((tmp_path / "study" / "seed0" / "random" / "round1" / "round.json").read_text())
    # random scores no pool: only its 10 picks are predicted, for the corrections count; coreset scores
    # the pool of 60 once (its picks' predictions come from it)
    assert random_r1["scored_images"] == 10 and coreset["scored_images"] == 60 and coreset["seconds"]["score"] > 0
    assert round0["seconds"]["score"] == round0["seconds"]["select"] == 0.0
    # Another process on the same study reads round 0's scored pool back (keyed by the weights' hash).
    from cvactive.loop.study import Study

    first = Study(porch_data, tmp_path / "study", cfg)
    records = first.scored_pool(round0["weights"])
    assert first.scored_images == 0 and first.scores_reused == 1 and len(records) == 60
    assert len(list((tmp_path / "study" / "scores").glob("pool-*.jsonl"))) == 1


def test_a_cost_budget_and_the_annotation_recorded_each_round(porch_data, tmp_path):
    """budget_unit=boxes: a round labels, in the strategy's order, the images whose boxes fit in the
    budget; every round records its labeled set's images, boxes and corrections; the report has
    every cost axis."""
    from cvactive.cli import main

    out = tmp_path / "study"
    args = ["loop", "--data", str(porch_data), "--out", str(out), "--strategies", "uncertainty,uncertainty+cost"]
    args += ["--seeds", "1"]
    args += ["--initial", "10", "--budget", "12", "--budget-unit", "boxes", "--rounds", "1", "--epochs", "1"]
    args += ["--recipe", "epochs", "--imgsz", "128", "--model", "pico", "--no-progress"]
    assert main(args) == 0
    round0 = json.loads((out / "seed0" / "round0" / "round.json").read_text())
    ann0 = round0["annotation"]
    assert ann0["images"] == 10 and ann0["boxes"] > 0
    # No model before round 0: its images count as drawn in correct mode too.
    assert ann0["correct"] == {"images": 10, "accepted": 0, "deleted": 0, "missed": ann0["boxes"], "reboxed": 0,
                               "reclassed": 0}  # fmt: skip
    for strategy in ("random", "uncertainty", "uncertainty+cost"):  # +cost: picks by utility per expected box
        r1 = json.loads((out / "seed0" / strategy / "round1" / "round.json").read_text())
        ann = r1["annotation"]
        assert ann["images"] == r1["labels_used"] == 10 + len(r1["chosen"]) and r1["chosen"]
        assert 0 <= ann["boxes"] - ann0["boxes"] <= 12  # the round's spend never exceeds its budget
        c = ann["correct"]
        assert c["images"] == ann["images"]
        assert c["missed"] >= ann0["boxes"] and c["missed"] <= ann["boxes"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["axes"] == ["images", "boxes", "seconds_draw", "seconds_correct"]
    assert set(summary["strategies"]["uncertainty+cost"]["axes"]) == set(summary["axes"])
    assert (out / "cost_curves.png").exists()


def test_bad_loop_settings_are_refused_before_training(porch_data, tmp_path):
    from functools import partial

    from cvactive.errors import ConfigError
    from cvactive.loop import LoopConfig as Full
    from cvactive.loop import run_loop

    LoopConfig = partial(Full, initial=10, budget=10, rounds=1)
    with pytest.raises(ConfigError, match="unknown init 'warm'"):
        run_loop(porch_data, tmp_path, LoopConfig(init="warm", model="pico"))
    with pytest.raises(ConfigError, match="unknown recipe 'fast'; valid recipes: epochs, steps"):
        run_loop(porch_data, tmp_path, LoopConfig(recipe="fast", model="pico"))
    with pytest.raises(ConfigError, match="unknown selection strategy 'magic'"):
        run_loop(porch_data, tmp_path, LoopConfig(strategies=("magic",), model="pico"))
    with pytest.raises(ConfigError, match=r"strategy 'uncertainty': unknown option\(s\) \['k_means'\]"):
        run_loop(porch_data, tmp_path, LoopConfig(strategy_options={"uncertainty": {"k_means": 3}}, model="pico"))
    with pytest.raises(ConfigError, match="unknown budget_unit 'hours'"):
        run_loop(porch_data, tmp_path, LoopConfig(budget_unit="hours", model="pico"))
    with pytest.raises(ConfigError, match=r"cost: unknown option\(s\) \['per_box'\]"):
        run_loop(porch_data, tmp_path, LoopConfig(cost={"per_box": 3.0}, model="pico"))
    with pytest.raises(ConfigError, match=r"arm 'uncertainty\+cost' .* needs a cost budget"):
        run_loop(porch_data, tmp_path, LoopConfig(strategies=("uncertainty+cost",), model="pico"))
    other = tmp_path / "other.yaml"
    other.write_text("path: /nowhere\ntrain: images/train\nval: images/val\nnames: {0: cat}\n")
    with pytest.raises(Exception, match="eval_data"):
        run_loop(porch_data, tmp_path, LoopConfig(eval_data=({"data": str(other)},), model="pico"))


def test_a_study_resumes_when_its_checkpoint_is_reached_through_a_linked_folder(porch_data, tmp_path):
    """settings.json compares the model by the file it names: the same checkpoint through a linked data
    folder (a git worktree's data/ -> the checkout's) is the same study; another checkpoint is not."""
    from cvactive.errors import ConfigError
    from cvactive.loop import LoopConfig
    from cvactive.loop.study import Study

    weights = tmp_path / "data" / "w.pt"
    weights.parent.mkdir()
    weights.write_bytes(b"weights")
    (tmp_path / "linked").symlink_to(tmp_path / "data")
    other = tmp_path / "data" / "other.pt"
    other.write_bytes(b"other")
    out = tmp_path / "study"

    def settings_for(model):
        return Study(porch_data, out, LoopConfig(initial=10, budget=10, rounds=1, model=str(model)))

    settings_for(tmp_path / "linked" / "w.pt").write_settings()
    settings_for(weights).write_settings()  # the same file: accepted
    assert json.loads((out / "settings.json").read_text())["resolved_model"] == str(weights.resolve())
    with pytest.raises(ConfigError, match="holds a study with other settings"):
        settings_for(other).write_settings()
