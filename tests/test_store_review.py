"""Nothing a reviewer did is lost, and several processes share one database (real FiftyOne + MongoDB; slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders import yolo_records

from cvactive.io import write_jsonl
from cvactive.record import Harvested, ImageRecord, Selection
from tests.test_store_fiftyone import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fo() -> Any:
    from cvactive.store import connect

    return connect()


@pytest.fixture
def name(fo: Any) -> Any:
    ds_name = f"r-{uuid.uuid4().hex[:8]}"
    yield ds_name
    if fo.dataset_exists(ds_name):
        fo.delete_dataset(ds_name)


def _picked(i: int) -> Selection:
    """The selection result of the ``i``-th record of a batch (what makes push queue it for review)."""
    return Selection(rank=i + 1, utility=0.0, strategy="test")


def _jitter(records: list[ImageRecord], pixels: float) -> list[ImageRecord]:
    return [ImageRecord(**{**r.__dict__, "xyxy": r.xyxy + np.float32(pixels)}) for r in records]


def test_label_tags_survive_a_repush_and_dropped_reviewed_boxes_are_kept(
    porch_data: Path, name: str, fo: Any, tmp_path: Path
):
    from cvactive.store.push import push_records
    from cvactive.store.review import pull_reviews

    records = [r for r in yolo_records(porch_data, "val", np.random.default_rng(4)) if len(r) >= 2][:4]
    push_records(records, name, round_=1, review=True, progress=False)
    ds = fo.load_dataset(name)
    by_key = {s.cva_key: s for s in ds}
    first = by_key[str(Path(records[0].source).resolve())]
    second = by_key[str(Path(records[1].source).resolve())]
    fp_box = first.predictions.detections[0]
    ds.select_labels(ids=[fp_box.id]).tag_labels("fp")
    ds.select_labels(ids=[second.predictions.detections[1].id]).tag_labels("wrong-class")
    ds.select([first.id, second.id]).tag_samples("approved")
    # round 2: the model moves every box by one pixel and drops the second sample's reviewed box
    moved = _jitter(records, 1.0)
    keep = np.ones(len(moved[1]), bool)
    keep[1] = False
    moved[1] = moved[1][keep]
    summary = push_records(moved, name, round_=2, review=True, progress=False)
    assert (summary.added, summary.updated) == (0, 4)
    ds.reload()
    again = ds[first.id]
    tagged = [d for d in again.predictions.detections if d.tags]
    assert [(d.id, d.tags) for d in tagged] == [(fp_box.id, ["fp"])]  # same label id, tag kept
    assert tagged[0].bounding_box != fp_box.bounding_box  # the new box, not the old one
    assert {"approved", "round-1", "round-2", "to-review"} <= set(again.tags)
    kept = ds[second.id].predictions_reviewed.detections
    assert [d.tags for d in kept] == [["wrong-class"]] and len(ds[second.id].predictions.detections) == 1
    assert all(not d.tags for d in ds[second.id].predictions.detections)
    # pushing the same round again changes nothing a reviewer did
    push_records(moved, name, round_=2, review=True, progress=False)
    ds.reload()
    assert [d.tags for d in ds[first.id].predictions.detections if d.tags] == [["fp"]]
    assert len(ds[second.id].predictions_reviewed.detections) == 1
    pulled = pull_reviews(name, tmp_path / "pull", overwrite=True)
    assert pulled.approved == 2 and pulled.fp_removed == 1 and pulled.corrections == 1  # wrong-class seen aside
    assert len(ds.load_saved_view("review-queue")) == 2
    # issue #25: pushing the same selection after the pull does not queue the finished reviews again
    push_records(moved, name, round_=2, review=True, progress=False)
    ds.reload()
    assert len(ds.load_saved_view("review-queue")) == 2
    assert "to-review" not in ds[first.id].tags and "labeled" in ds[first.id].tags
    assert "to-review" not in ds[second.id].tags and "to-annotate" in ds[second.id].tags
    again_pulled = pull_reviews(name, tmp_path / "pull2", overwrite=False)
    assert again_pulled.approved == 0 and again_pulled.pending == 2


def test_tags_added_during_a_slow_push_in_another_process_survive(porch_data: Path, name: str, fo: Any, tmp_path):
    from cvactive.store.push import push_records

    base = [r for r in yolo_records(porch_data, "train", np.random.default_rng(6)) if len(r)]
    records = [
        ImageRecord(**{**r.__dict__, "frame": copy, "harvested": Harvested(path=r.source), "selection": _picked(copy)})
        for copy in range(12)
        for r in base
    ]
    push_records(records, name, round_=1, progress=False)
    scores = tmp_path / "again.jsonl"
    write_jsonl(scores, records)
    cmd = [sys.executable, "-m", "cvactive.cli", "push", str(scores), "--dataset", name, "--round", "2"]
    cmd += ["--batch-size", "8", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=dict(os.environ), stderr=subprocess.PIPE, text=True)
    ds = fo.load_dataset(name)
    ids = ds.values("id")
    rng = np.random.default_rng(0)
    assert proc.stderr is not None
    for line in proc.stderr:  # start tagging once the push writes
        if "batch 1:" in line:
            break
    sample_tags: dict[str, str] = {}
    label_tags: dict[str, str] = {}
    while proc.poll() is None and len(sample_tags) < 200:
        sid = str(ids[int(rng.integers(len(ids)))])
        tag = f"s{len(sample_tags)}"
        ds.select(sid).tag_samples(tag)
        sample_tags[tag] = sid
        lid = str(ids[int(rng.integers(len(ids)))])
        ltag = f"l{len(label_tags)}"
        ds.select(lid).tag_labels(ltag, label_fields="predictions")
        label_tags[ltag] = lid
    proc.stderr.read()
    assert proc.wait(300) == 0
    # every tagging round above started while the push was writing
    assert len(sample_tags) >= 10, f"the push ended after {len(sample_tags)} tagging rounds: too short to overlap"
    ds.reload()
    tags = dict(zip(*ds.values(["id", "tags"])))
    lost = [t for t, sid in sample_tags.items() if t not in tags[sid]]
    assert not lost, f"{len(lost)} of {len(sample_tags)} sample tags lost"
    boxes = dict(zip(*ds.values(["id", "predictions.detections.tags"])))
    lost_labels = [t for t, sid in label_tags.items() if not all(t in box for box in boxes[sid])]
    assert not lost_labels, f"{len(lost_labels)} of {len(label_tags)} label tags lost"
    assert len(ds) == len(records) and all("round-2" in t for t in tags.values())


def _fresh_env(db: Path) -> dict[str, str]:
    """The environment of a process that uses its own local database folder from cold."""
    env = {k: v for k, v in os.environ.items() if k not in ("FIFTYONE_PRIVATE_DATABASE_PORT", "FIFTYONE_DATABASE_URI")}
    env["FIFTYONE_DATABASE_DIR"] = str(db)
    return env


def _mongods_of(db: Path) -> list[Any]:
    import psutil

    want = os.path.realpath(db)
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        mongod = bool(cmd) and os.path.basename(cmd[0]) == "mongod" and "--dbpath" in cmd
        if mongod and os.path.realpath(cmd[cmd.index("--dbpath") + 1]) == want:
            found.append(p)
    return found


def _wait_stopped(db: Path, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while _mongods_of(db) and time.monotonic() < deadline:
        time.sleep(0.5)
    return not _mongods_of(db)


_PREPARE = """
import sys
from cvactive.cli import main
from cvactive.store import connect
assert main(["import", sys.argv[1], "--dataset", "conc", "--splits", "val", "--no-progress"]) == 0
assert main(["push", sys.argv[2], "--dataset", "conc", "--no-progress"]) == 0  # evaluation predictions
assert main(["push", sys.argv[3], "--dataset", "conc", "--review", "--no-progress"]) == 0  # 5 unlabeled images
fo = connect()
ds = fo.load_dataset("conc")
ds.match_tags("to-review").tag_samples("approved")
"""

_CHECK = """
import json
from cvactive.store import connect
fo = connect()
ds = fo.load_dataset("conc")
keys = ds.values("cva_key")
print(json.dumps({"samples": len(ds), "keys": len(set(keys)), "evaluations": ds.list_evaluations(),
                  "labeled": len(ds.match_tags("labeled"))}))
"""


def test_four_processes_started_together_on_a_cold_database(porch_data: Path, tmp_path: Path):
    """push, push, pull and evaluate start at the same moment; the bundled mongod is not running yet."""
    db = tmp_path / "db"
    env = _fresh_env(db)
    val = yolo_records(porch_data, "val", np.random.default_rng(8))
    train = yolo_records(porch_data, "train", np.random.default_rng(9))
    write_jsonl(tmp_path / "val.jsonl", val)
    # two pushes of overlapping records: train images 0..39 and 20..59, with selection ranks
    for part, (lo, hi) in {"a": (0, 40), "b": (20, 60)}.items():
        chunk = [ImageRecord(**{**r.__dict__, "selection": _picked(i)}) for i, r in enumerate(train[lo:hi])]
        write_jsonl(tmp_path / f"{part}.jsonl", chunk)
    write_jsonl(tmp_path / "first.jsonl", train[:5])
    prep = subprocess.run(
        [sys.executable, "-c", _PREPARE, str(porch_data), str(tmp_path / "val.jsonl"), str(tmp_path / "first.jsonl")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert prep.returncode == 0, prep.stderr[-3000:]
    assert _wait_stopped(db), "the database of the preparing process did not stop with it"
    logs_before = len(list((db / "log").glob("mongo.log*")))
    cli = [sys.executable, "-m", "cvactive.cli"]
    commands = {
        "push-a": [*cli, "push", str(tmp_path / "a.jsonl"), "--dataset", "conc", "--no-progress"],
        "push-b": [*cli, "push", str(tmp_path / "b.jsonl"), "--dataset", "conc", "--no-progress"],
        "pull": [*cli, "pull", "--dataset", "conc", "--out", str(tmp_path / "pull")],
        "evaluate": [*cli, "evaluate", "--dataset", "conc", "--pred", "predictions", "--gt", "ground_truth",
                     "--round", "1", "--tag", "val", "--out", str(tmp_path / "eval")],
    }  # fmt: skip
    # output to files: the database service a process starts inherits its stdout, so pipes stay open
    # until the last client leaves
    logs = {k: (tmp_path / f"{k}.out", tmp_path / f"{k}.err") for k in commands}
    procs = {}
    for k, c in commands.items():
        with logs[k][0].open("w") as out, logs[k][1].open("w") as err:
            procs[k] = subprocess.Popen(c, cwd=REPO, env=env, stdout=out, stderr=err, text=True)
    deadline = time.monotonic() + 600
    while any(p.poll() is None for p in procs.values()) and time.monotonic() < deadline:
        time.sleep(1)
    results = {k: (logs[k][0].read_text(), logs[k][1].read_text()) for k in commands}
    for k, p in procs.items():
        if p.poll() is None:
            p.kill()
        assert p.returncode == 0, (k, p.returncode, results[k][1][-3000:])
        assert "ServiceListenTimeout" not in results[k][1]
    # one mongod start for the four (each start renames the previous log file)
    assert len(list((db / "log").glob("mongo.log*"))) == logs_before + 1
    assert "5 approved" in results["pull"][0]
    check = subprocess.run([sys.executable, "-c", _CHECK], cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=120)  # fmt: skip
    assert check.returncode == 0, check.stderr[-3000:]
    state = json.loads(check.stdout.strip().splitlines()[-1])
    assert state["samples"] == state["keys"] == 80  # every image once: the 60 train + 20 val
    assert state["evaluations"] == ["eval_round_1"] and state["labeled"] == 5
    if not _wait_stopped(db):
        for p in _mongods_of(db):
            p.terminate()
        pytest.fail("the database kept running after its last client exited")
