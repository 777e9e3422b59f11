"""`cvactive round`: the project folder, the order of the steps, resuming, refusals; and (slow) two real
rounds on the porch data through a real Label Studio server, FiftyOne and Ultralytics training."""

from __future__ import annotations

import json
import os
import shutil
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


def _settings(data: Path, pool: Path, folder: Path, **kw: Any) -> Settings:
    return Settings(data=str(data), pool=[str(pool)], model=str(folder / "model.pt"), dataset="round-test", **kw)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    data = _tiny_yolo(tmp_path / "labeled-src")
    (tmp_path / "model.pt").write_bytes(b"")  # never loaded by the fast tests
    init_project(tmp_path / "proj", _settings(data, tmp_path / "labeled-src" / "images" / "train", tmp_path))
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
    from cvactive.recipes import DEFAULT_RECIPE

    assert open_project(project).settings.train["recipe"] == DEFAULT_RECIPE  # the loop's measured recipe, not 30 epochs
    s = status(project)
    assert (s.round, s.next, s.done) == (1, "select", []) and "cvactive round next" in s.advice


def test_init_refuses_a_foreign_folder_a_project_and_bad_settings(tmp_path: Path, project: Path):
    data = _tiny_yolo(tmp_path / "src")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    (tmp_path / "m.pt").write_bytes(b"")
    base = ["init", "--data", str(data), "--pool", str(tmp_path), "--model", str(tmp_path / "m.pt"), "--dataset", "d"]
    for target, words in ((foreign, "is not empty"), (project, "is a round project already")):
        before = _tree(target)
        out = _cli(*base[:1], str(target), *base[1:])
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and words in out.stderr, out.stderr
        assert _tree(target) == before
    out = _cli("init", str(tmp_path / "new"), *base[1:], "--strategy", "nonesuch")
    assert out.returncode == 2 and "unknown strategy 'nonesuch'" in out.stderr and not (tmp_path / "new").exists()
    for flag, value, words in (
        ("--model", str(tmp_path / "none.pt"), "none.pt' does not exist"),
        ("--pool", str(tmp_path / "nowhere"), "pool source"),
        ("--budget", "0", "budget must be a positive integer"),
    ):
        out = _cli("init", str(tmp_path / "new"), *base[1:], flag, value)
        assert out.returncode == 2 and words in out.stderr and not (tmp_path / "new").exists(), out.stderr
    (project / "round.yaml").write_text((project / "round.yaml").read_text().replace("recipe: scaled", "recipe: stepz"))
    out = _cli("status", str(project))
    assert out.returncode == 2 and "train.recipe 'stepz' is not a recipe" in out.stderr, out.stderr
    (project / "round.yaml").write_text((project / "round.yaml").read_text().replace("recipe: stepz", "recipe: scaled"))
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
    out = _cli("status", str(project))
    assert out.returncode == 0 and f"{project}: round 2 (1 done)" in out.stdout
    assert "[ ] select [ ] annotate" in out.stdout and f"next: run: cvactive round select {project}" in out.stdout


def test_a_killed_step_rerun_gives_the_uninterrupted_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    data = _tiny_yolo(tmp_path / "src")
    states = []
    for kill in (False, True):
        root = tmp_path / f"proj-{kill}"
        (tmp_path / "model.pt").write_bytes(b"")
        init_project(root, _settings(data, tmp_path / "src", tmp_path))
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


# --- two real rounds: Label Studio, FiftyOne, Ultralytics -------------------------------------------------------


@pytest.fixture(scope="session")
def label_studio(session_tmp: Path) -> Any:  # the session's one server when test_annotate holds it already
    from labelstudio import running_server

    with running_server(session_tmp / "labelstudio-round") as server:
        yield server


def _initial_and_pool(porch: Path, root: Path, initial: int) -> tuple[Path, Path, dict[str, Path]]:
    """The porch set split into an initial labeled set (the first train images and val) and a pool of the rest
    (images only); returns its data.yaml, the pool folder and each pool image's true label file."""
    src = porch.parent
    names = yaml.safe_load(porch.read_text())["names"]
    train = sorted((src / "images" / "train").glob("*.jpg"))
    for split, images in (("train", train[:initial]), ("val", sorted((src / "images" / "val").glob("*.jpg")))):
        for folder in ("images", "labels"):
            (root / "initial" / folder / split).mkdir(parents=True, exist_ok=True)
        for image in images:
            shutil.copyfile(image, root / "initial" / "images" / split / image.name)
            shutil.copyfile(src / "labels" / split / f"{image.stem}.txt", root / "initial" / "labels" / split /
                            f"{image.stem}.txt")  # fmt: skip
    data = root / "initial" / "data.yaml"
    data.write_text(yaml.safe_dump({"path": str(root / "initial"), "train": "images/train", "val": "images/val",
                                    "names": names}))  # fmt: skip
    (root / "pool").mkdir()
    truth = {}
    for image in train[initial:]:
        shutil.copyfile(image, root / "pool" / image.name)
        truth[image.name] = src / "labels" / "train" / f"{image.stem}.txt"
    return data, root / "pool", truth


def _truth_boxes(label: Path, names: list[str], w: int, h: int) -> list[tuple[str, list[float]]]:
    """A YOLO label file's boxes in pixels ``x0 y0 x1 y1``."""
    out = []
    for line in label.read_text().split("\n"):
        if line.strip():
            c, cx, cy, bw, bh = line.split()
            x, y, ww, hh = float(cx) * w, float(cy) * h, float(bw) * w, float(bh) * h
            out.append((names[int(c)], [x - ww / 2, y - hh / 2, x + ww / 2, y + hh / 2]))
    return sorted(out)


def _annotate_round(dataset: str, truth: dict[str, Path], names: list[str], skip: frozenset[str] = frozenset()) -> Any:
    """The porch truth of the round's unannotated tasks (but images named in ``skip``), submitted through Label
    Studio's API as an annotator would; returns sample id -> the boxes submitted."""
    from cvactive.store.stand_in import submit_known_labels

    def labels_for(path: str, w: int, h: int) -> Any:
        name = Path(path).name
        return None if name in skip else _truth_boxes(truth[name], names, w, h)

    return submit_known_labels(dataset, labels_for)


def _collected(ds: Any, sid: str) -> list[tuple[str, list[float]]]:
    sample = ds[sid]
    w, h = sample.metadata.width, sample.metadata.height
    out = []
    for d in sample["ground_truth"].detections:
        x, y, bw, bh = d.bounding_box
        out.append((d.label, [x * w, y * h, (x + bw) * w, (y + bh) * h]))
    return sorted(out)


def _same_boxes(got: list[tuple[str, list[float]]], want: list[tuple[str, list[float]]], atol: float) -> bool:
    return len(got) == len(want) and all(a[0] == b[0] and np.allclose(a[1], b[1], atol=atol) for a, b in zip(got, want))


@pytest.mark.slow
def test_two_real_rounds_through_label_studio(
    tmp_path: Path, porch_data: Path, porch_model: Path, label_studio: Any, monkeypatch: pytest.MonkeyPatch
):
    """select -> annotate -> annotations submitted through Label Studio's API -> collect -> check -> train ->
    evaluate, twice: the collected ground truth is what was submitted (to a hundredth of a pixel in FiftyOne, the
    YOLO label files to the porch truth), a collect interrupted midway and a train killed midway give the same
    state when run again, and the second round's per-class AP is in FiftyOne's evaluations and in the history."""
    import uuid

    from labelstudio import net_attempts

    from cvactive.store import connect
    from cvactive.store.stand_in import matching_ground_truth
    from cvactive.yolodata import load_yolo_dataset

    outside_before = len(net_attempts(label_studio))  # the session's server may have served the browser test
    for key, value in label_studio.env().items():
        monkeypatch.setenv(key, value)
    data, pool, truth = _initial_and_pool(porch_data, tmp_path, initial=20)
    names = list(yaml.safe_load(data.read_text())["names"].values())
    dataset = f"round-{uuid.uuid4().hex[:6]}"
    settings = Settings(
        data=str(data), pool=[str(pool)], model=str(porch_model), dataset=dataset, budget=6, imgsz=256,
        train={"epochs": 1, "batch": 8, "imgsz": 64, "val": False, "workers": 0},
        health={"min_instances": 1, "max_imbalance": None, "max_label_errors": None, "image_checks": False},
    )  # fmt: skip
    root = tmp_path / "proj"
    init_project(root, settings)
    ds = connect().load_dataset  # the data set appears at the first push
    everything: dict[str, Any] = {}
    for n in (1, 2):
        state_round1: Any = json.loads((root / "state.json").read_text()).get("history", [None])[0] if n == 2 else None
        assert run_next(root) == ["select", "annotate"]  # collect found every annotation pending
        project = open_project(root)
        assert status(root).pending == 6 and project.round == n
        first = json.loads((project.round_dir() / "selected.jsonl").read_text().split("\n")[0])["source"]
        submitted = _annotate_round(dataset, truth, names, skip=frozenset([Path(first).name] if n == 1 else []))
        if n == 1:  # one task left: collect takes the five, the round waits
            with pytest.raises(Pending):
                run_step(root, "collect")
            assert status(root).pending == 1 and "collect" not in open_project(root).done
            submitted.update(_annotate_round(dataset, truth, names))
            _interrupted_collect(root, monkeypatch)
            run_step(root, "collect")
            run_step(root, "check")
            _kill_train(root)
            assert run_next(root) == ["train", "evaluate"]
        else:  # meanwhile a reviewer corrects a round-1 image in Label Studio: round 2's collect carries it over
            moved = _move_a_box(label_studio, ds(dataset), state_round1["annotate"]["project"])
            assert run_next(root) == ["collect", "check", "train", "evaluate"]
        assert len(submitted) == 6 and not set(submitted) & set(everything)
        assert matching_ground_truth(dataset, submitted) == (6, 6)  # FiftyOne's ground truth: what was submitted
        everything.update(submitted)
        fo_ds = ds(dataset)
        for sid in submitted:  # what the porch truth says, to a hundredth of a pixel
            sample = fo_ds[sid]
            want = _truth_boxes(truth[Path(sample.filepath).name], names, sample.metadata.width, sample.metadata.height)
            assert _same_boxes(_collected(fo_ds, sid), want, atol=0.01), sample.filepath
    # the labeled set on disk: the initial 20 and the 12 collected, their labels the porch truth
    labeled = load_yolo_dataset(root / "labeled" / "data.yaml")
    added = [i for i in labeled.items("train") if i.image.name.startswith("r00")]
    assert len(list(labeled.items("train"))) == 32 and len(added) == 12 and not labeled.issues
    for item in added:
        original = item.image.name.split("-", 2)[2]
        true = next(i for i in load_yolo_dataset(porch_data).items("train") if i.image.name == original)
        expected = true.boxes.copy()
        if original == moved[0]:  # the corrected box: 1 % of the width to the right
            row = int(np.argmin(np.abs(expected[:, :2] - moved[1]).sum(axis=1)))
            expected[row, 0] += 0.01
        order, true_order = np.lexsort(item.boxes.T), np.lexsort(expected.T)
        assert item.classes[order].tolist() == true.classes[true_order].tolist()
        assert np.allclose(item.boxes[order], expected[true_order], atol=2e-6), original
    # the rounds in FiftyOne and in the history
    state = json.loads((root / "state.json").read_text())
    assert state["round"] == 3 and [h["round"] for h in state["history"]] == [1, 2]
    assert state["weights"].endswith("round-002.pt") and Path(state["weights"]).is_file()
    assert state["history"][1]["train"]["from"].endswith("round-001.pt")
    fo_ds = ds(dataset)
    assert {"eval_round_1", "eval_round_2"} <= set(fo_ds.list_evaluations())
    history = json.loads((root / "eval" / "history.json").read_text())
    rounds = history["rounds"] if isinstance(history, dict) else history
    second = next(r for r in rounds if r["round"] == 2)
    assert set(second["per_class"]) == set(names) and second["samples"] == 20
    assert state["history"][1]["evaluate"]["per_class_ap"] == {c: v["ap"] for c, v in second["per_class"].items()}
    assert (root / "eval" / "per_class_ap.png").is_file()
    text = "".join(p.read_text(errors="replace") for p in root.rglob("*") if p.suffix in (".json", ".yaml", ".md"))
    assert label_studio.token not in text

    # round 1, its collect interrupted and its train killed, left the files the uninterrupted round 2 left
    def files(n: int) -> list[str]:
        folder = root / "rounds" / f"{n:03d}"
        return sorted(
            str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != ".cvactive.lock"
        )

    assert files(1) == files(2) and "train/weights/best.pt" in files(1)
    assert not [p for p in root.rglob(".*.tmp-*")], "a temporary file left behind"
    assert net_attempts(label_studio)[outside_before:] == []  # Label Studio reached nothing outside loopback


def _move_a_box(server: Any, ds: Any, project: int) -> tuple[str, np.ndarray]:
    """Move the first box of a round-1 annotation 1 % of the image width right (a reviewer's correction in
    Label Studio); returns the image name and the box's original centre (fractions)."""
    from cvactive.store.annotate import ANNO_FIELD

    task = next(t for t in server.tasks(project) if t["annotations"] and t["annotations"][-1]["result"])
    annotation = task["annotations"][-1]
    result = annotation["result"]
    value = result[0]["value"]
    centre = np.array([value["x"] + value["width"] / 2, value["y"] + value["height"] / 2]) / 100
    value["x"] += 1.0
    server.request("PATCH", f"/api/annotations/{annotation['id']}", {"result": result})
    path = next(p for p, r in zip(*ds.exists(ANNO_FIELD).values(["filepath", ANNO_FIELD])) if r["task"] == task["id"])
    return Path(path).name, centre


def _interrupted_collect(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run collect and stop it (KeyboardInterrupt) after it has written two label files of the labeled set."""
    real, calls = steps_mod._add_to_labeled, []

    def interrupted(*args: Any, **kwargs: Any) -> int:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(steps_mod, "_add_to_labeled", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_step(root, "collect")
    monkeypatch.setattr(steps_mod, "_add_to_labeled", real)
    assert len(calls) == 3 and "collect" not in open_project(root).done


def _kill_train(root: Path) -> None:
    """Start `cvactive round train` and kill it (SIGKILL) once Ultralytics has begun its run."""
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "cvactive.cli", "round", "train", str(root), "--no-progress"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    run = root / "rounds" / "001" / "train"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and not (run / "args.yaml").exists():
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert "train" not in open_project(root).done and (run / "args.yaml").exists()


def test_annotate_without_a_server_is_one_line_and_leaves_the_step_to_do(project: Path):
    """No LABEL_STUDIO_URL/API_KEY: annotate says what to set (exit 2) and the round still waits for annotate."""
    state = json.loads((project / "state.json").read_text())
    state["done"] = {"select": {"selected": 2}}
    (project / "state.json").write_text(json.dumps(state))
    env = {k: v for k, v in os.environ.items() if "LABEL_STUDIO" not in k and "LABELSTUDIO" not in k}
    out = _cli("annotate", str(project), env=env)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "LABEL_STUDIO_URL" in out.stderr, out.stderr
    assert open_project(project).done.keys() == {"select"} and status(project).next == "annotate"
