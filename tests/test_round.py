"""`cvactive round`: the project folder, the order of the steps, resuming, refusals; and (slow) two real
rounds on the porch data through a real Label Studio server, FiftyOne and Ultralytics training."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from cvactive.errors import DatasetError
from cvactive.round import (
    STEPS,
    Pending,
    RoundOrderError,
    Settings,
    init_project,
    open_project,
    run_next,
    run_step,
    status,
)
from cvactive.round import steps as steps_mod

REPO = Path(__file__).resolve().parent.parent


def _tiny_yolo(root: Path, train: int = 4, val: int = 2) -> Path:
    """A small YOLO data set of noise images with one or two boxes each; returns its data.yaml."""
    import cv2

    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("val", val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            cv2.imwrite(str(root / "images" / split / f"{split}{i}.jpg"), rng.integers(0, 255, (64, 80, 3), np.uint8))
            rows = [f"{i % 2} 0.5 0.5 0.25 0.3", f"{(i + 1) % 2} 0.3 0.4 0.2 0.2"][: 1 + i % 2]
            (root / "labels" / split / f"{split}{i}.txt").write_text("\n".join(rows) + "\n")
    data = root / "data.yaml"
    data.write_text(yaml.safe_dump({"path": str(root), "train": "images/train", "val": "images/val",
                                    "names": {0: "cat", 1: "dog"}}))  # fmt: skip
    return data


def _settings(data: Path, pool: Path, **kw: Any) -> Settings:
    return Settings(data=str(data), pool=[str(pool)], model="model.pt", dataset="round-test", **kw)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    data = _tiny_yolo(tmp_path / "labeled-src")
    init_project(tmp_path / "proj", _settings(data, tmp_path / "labeled-src" / "images" / "train"))
    return tmp_path / "proj"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cvactive.cli", "round", *args],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_init_writes_settings_state_and_a_yolo_copy_of_the_labeled_set(project: Path):
    from cvactive.yolodata import load_yolo_dataset

    settings = yaml.safe_load((project / "round.yaml").read_text())
    assert settings["dataset"] == "round-test" and settings["strategy"] == "uncertainty" and settings["budget"] == 20
    assert Path(settings["data"]).is_absolute() and Path(settings["pool"][0]).is_absolute()
    state = json.loads((project / "state.json").read_text())
    assert state["round"] == 1 and state["done"] == {} and state["classes"] == ["cat", "dog"]
    copy = load_yolo_dataset(project / "labeled" / "data.yaml")
    assert {s: len(v) for s, v in copy.splits.items()} == {"train": 4, "val": 2}
    assert sum(len(i.classes) for i in copy.items()) == 9 and not copy.issues
    assert "token" not in (project / "round.yaml").read_text().lower()
    s = status(project)
    assert (s.round, s.next, s.done) == (1, "select", []) and "cvactive round next" in s.advice


def test_init_refuses_a_foreign_folder_a_project_and_bad_settings(tmp_path: Path, project: Path):
    data = _tiny_yolo(tmp_path / "src")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    base = ["init", "--data", str(data), "--pool", str(tmp_path), "--model", "m.pt", "--dataset", "d"]
    for target, words in ((foreign, "is not empty"), (project, "is a round project already")):
        before = _tree(target)
        out = _cli(*base[:1], str(target), *base[1:])
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and words in out.stderr, out.stderr
        assert _tree(target) == before
    out = _cli("init", str(tmp_path / "new"), *base[1:], "--strategy", "nonesuch")
    assert out.returncode == 2 and "unknown strategy 'nonesuch'" in out.stderr and not (tmp_path / "new").exists()
    out = _cli("init", str(tmp_path / "new"), *base[1:], "--eval-split", "test")
    assert out.returncode == 2 and "no 'test' split" in out.stderr and not (tmp_path / "new").exists()
    (project / "round.yaml").write_text((project / "round.yaml").read_text() + "budgett: 3\n")
    out = _cli("status", str(project))
    assert out.returncode == 2 and "unknown setting(s) budgett" in out.stderr
    out = _cli("status", str(tmp_path))
    assert out.returncode == 2 and "is not a round project" in out.stderr


def _fake_runners(monkeypatch: pytest.MonkeyPatch, calls: list[str], fail: dict[str, BaseException]) -> None:
    """Steps that write one file each, so the order, the records and the resumes can be checked without models."""

    def runner(name: str) -> Any:
        def run(project: Any, progress: bool) -> dict[str, Any]:
            calls.append(name)
            out = project.round_dir() / f"{name}.txt"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(name)
            if name in fail:
                raise fail.pop(name)
            return {"file": str(out.relative_to(project.root))}

        return run

    monkeypatch.setattr(steps_mod, "RUNNERS", {name: runner(name) for name in STEPS})


def test_steps_run_in_order_and_a_step_out_of_order_is_one_line(project: Path, monkeypatch: pytest.MonkeyPatch):
    calls: list[str] = []
    _fake_runners(monkeypatch, calls, {})
    with pytest.raises(RoundOrderError, match=r"round 1: train comes after select, which is not done; run: cvactive "
                                              r"round select"):  # fmt: skip
        run_step(project, "train")
    assert calls == []
    run_step(project, "select")
    with pytest.raises(RoundOrderError, match="round 1: select is done already; next: cvactive round annotate"):
        run_step(project, "select")
    for step in STEPS[1:]:
        run_step(project, step)
    state = json.loads((project / "state.json").read_text())
    assert state["round"] == 2 and state["done"] == {} and calls == list(STEPS)
    assert state["history"][0]["round"] == 1 and set(state["history"][0]) == {"round", *STEPS}
    assert status(project).next == "select" and status(project).rounds_done == 1
    # the real CLI refuses out of order with one line, exit 2, nothing written
    before = _tree(project)
    out = _cli("check", str(project))
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "round 2: check comes after select, which is not done; run: cvactive round select" in out.stderr
    assert _tree(project) == before


def test_a_killed_step_rerun_gives_the_uninterrupted_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    data = _tiny_yolo(tmp_path / "src")
    states = []
    for kill in (False, True):
        root = tmp_path / f"proj-{kill}"
        init_project(root, _settings(data, tmp_path / "src"))
        calls: list[str] = []
        _fake_runners(monkeypatch, calls, {"train": KeyboardInterrupt()} if kill else {})
        for step in STEPS[:4]:
            run_step(root, step)
        if kill:
            with pytest.raises(KeyboardInterrupt):
                run_step(root, "train")
            assert open_project(root).done.keys() == set(STEPS[:4])  # not marked: the step did not finish
        run_step(root, "train")
        run_step(root, "evaluate")
        state = json.loads((root / "state.json").read_text())
        files = {k: v.replace(str(root).encode(), b"ROOT") for k, v in _tree(root / "labeled").items()}
        states.append((state, _tree(root / "rounds"), files))
    assert states[0] == states[1]


def test_next_stops_while_annotations_are_pending_and_goes_on_when_they_are_in(
    project: Path, monkeypatch: pytest.MonkeyPatch
):
    calls: list[str] = []
    _fake_runners(monkeypatch, calls, {"collect": Pending({"pending": 3, "labeled": 1, "collected_now": 1})})
    assert run_next(project) == ["select", "annotate"]
    s = status(project)
    assert s.next == "collect" and s.pending == 3 and "3 image(s) still to annotate" in s.advice
    assert run_next(project) == ["collect", "check", "train", "evaluate"]
    assert status(project).round == 2 and "pending" not in json.loads((project / "state.json").read_text())


def test_a_failing_health_gate_stops_the_round_with_the_report(project: Path):
    """The real health check on the labeled copy: 9 boxes cannot pass min_instances 100 (exit 1, one line)."""
    settings = yaml.safe_load((project / "round.yaml").read_text())
    settings["health"] = {"min_instances": 100, "image_checks": False}
    (project / "round.yaml").write_text(yaml.safe_dump(settings))
    state = json.loads((project / "state.json").read_text())
    state["done"] = {"select": {}, "annotate": {}, "collect": {}}
    (project / "state.json").write_text(json.dumps(state))
    out = _cli("check", str(project), "--no-progress")
    assert out.returncode == 1 and out.stderr.count("\n") == 1, out.stderr
    assert "the health gate failed (min_instances)" in out.stderr and "cvactive round check" in out.stderr
    report = project / "rounds" / "001" / "health" / "report.md"
    assert report.is_file() and str(report) in out.stderr
    assert "check" not in open_project(project).done and "health gate failed" in status(project).advice
    settings["health"] = {"min_instances": 1, "max_imbalance": None, "max_label_errors": None, "image_checks": False}
    (project / "round.yaml").write_text(yaml.safe_dump(settings))
    out = _cli("check", str(project), "--no-progress")
    assert out.returncode == 0 and "round 1: check done" in out.stdout
    assert "next: run: cvactive round train" in out.stdout
    assert "gate_failed" not in json.loads((project / "state.json").read_text())


def test_collected_boxes_become_yolo_labels_of_the_train_split(project: Path):
    from cvactive.yolodata import load_yolo_dataset

    src = project.parent / "labeled-src" / "images" / "val" / "val0.jpg"
    p = open_project(project)
    n = steps_mod._add_to_labeled(p, str(src), ["dog", "cat"], [[0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.25, 0.1]],
                                  {"cat": 0, "dog": 1})  # fmt: skip
    steps_mod._add_to_labeled(p, str(src), [], [], {"cat": 0, "dog": 1})  # rewritten: no objects now
    assert n == 2
    data = load_yolo_dataset(project / "labeled" / "data.yaml")
    added = [i for i in data.items("train") if i.image.name.startswith("r001-")]
    assert len(added) == 1 and len(added[0].classes) == 0
    steps_mod._add_to_labeled(p, str(src), ["dog"], [[0.1, 0.2, 0.3, 0.4]], {"cat": 0, "dog": 1})
    items = load_yolo_dataset(project / "labeled" / "data.yaml").items("train")
    item = next(i for i in items if i.image == added[0].image)
    assert item.classes.tolist() == [1] and np.allclose(item.boxes, [[0.25, 0.4, 0.3, 0.4]], atol=1e-6)
    with pytest.raises(DatasetError, match="bird"):
        steps_mod._add_to_labeled(p, str(src), ["bird"], [[0.1, 0.2, 0.3, 0.4]], {"cat": 0, "dog": 1})
