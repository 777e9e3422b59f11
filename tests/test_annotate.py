"""`cvactive annotate`: a batch goes to a real Label Studio server through FiftyOne's annotation API, an annotator's
work is submitted through Label Studio's HTTP API, and `collect` brings it back into the ground truth, box for box."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders import yolo_records
from labelstudio import REPO, Server, running_server

from cvactive.record import ImageRecord

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def label_studio(session_tmp: Path) -> Iterator[Server]:
    with running_server(session_tmp / "labelstudio") as server:
        yield server


@pytest.fixture
def ls_env(label_studio: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    for key, value in label_studio.env().items():
        monkeypatch.setenv(key, value)
    return label_studio


def _records(porch_data: Path, n: int) -> list[ImageRecord]:
    records = [r for r in yolo_records(porch_data, "val", np.random.default_rng(3)) if len(r) >= 2][:n]
    assert len(records) == n, "the porch val split has images with two or more objects"
    records[0].confidence[-1] = 0.1  # below the review queue's display confidence: not a pre-label
    return records


def _pixels(box: list[float], w: int, h: int) -> list[float]:
    x, y, bw, bh = box
    return [x * w, y * h, (x + bw) * w, (y + bh) * h]


def _fraction(result: dict[str, Any]) -> list[float]:
    """A Label Studio rectangle's ``[x, y, w, h]`` as fractions of the image."""
    return [result["value"][k] / 100 for k in ("x", "y", "width", "height")]


def _result(field: str, xyxy: list[float], label: str, w: int, h: int, rid: str) -> dict[str, Any]:
    """A rectangle as Label Studio's front end submits it (percent of the image, top-left corner)."""
    x0, y0, x1, y1 = xyxy
    value = {"x": x0 / w * 100, "y": y0 / h * 100, "width": (x1 - x0) / w * 100, "height": (y1 - y0) / h * 100}
    return {
        "id": rid, "from_name": field, "to_name": "image", "type": "rectanglelabels", "origin": "manual",
        "original_width": w, "original_height": h, "image_rotation": 0,
        "value": {**value, "rotation": 0, "rectanglelabels": [label]},
    }  # fmt: skip


def _gt(ds: Any, sid: str) -> list[tuple[str, list[float]]]:
    sample = ds[sid]
    w, h = sample.metadata.width, sample.metadata.height
    dets = sample["ground_truth"].detections
    return sorted((d.label, _pixels(d.bounding_box, w, h)) for d in dets)


def _same(got: list[tuple[str, list[float]]], want: list[tuple[str, list[float]]]) -> bool:
    """The same classes and boxes, each coordinate within a hundredth of a pixel."""
    want = sorted(want)
    return len(got) == len(want) and all(a[0] == b[0] and np.allclose(a[1], b[1], atol=0.01) for a, b in zip(got, want))


def test_a_batch_round_trips_through_label_studio(porch_data: Path, ls_env: Server):
    """Send the review queue (pre-labels shown, the low-confidence box not), send it again (one task set),
    annotate through Label Studio's API (accept, move + delete + add, relabel, no objects, skip, leave),
    collect: the ground truth is what was submitted, to the pixel; the rest stays pending, then comes in."""
    from cvactive.store import connect
    from cvactive.store.annotate import ANNO_FIELD, annotate, collect
    from cvactive.store.push import push_records

    fo = connect()
    name = f"annotate-{uuid.uuid4().hex[:6]}"
    records = _records(porch_data, 6)
    names = list(records[0].names.values())
    push_records(records, name, round_=1, strategy="uncertainty", review=True, progress=False)
    ds = fo.load_dataset(name)
    projects_before = ls_env.request("GET", "/api/projects")["count"]

    sent = annotate(name, "review-queue", classes=names)
    assert (sent.sent, sent.already_sent, sent.batch) == (6, 0, 6)
    assert sent.prelabels == sum(len(r) for r in records) - 1  # the 0.1-confidence box is left out
    again = annotate(name, "review-queue", classes=names)
    assert (again.sent, again.already_sent, again.anno_key) == (0, 6, "")
    assert ls_env.request("GET", "/api/projects")["count"] == projects_before + 1
    tasks = ls_env.tasks(sent.project)
    assert len(tasks) == 6

    ds.reload()
    by_task = {r["task"]: sid for sid, r in zip(*ds.values(["id", ANNO_FIELD]))}
    field = "predictions"
    want: dict[str, list[tuple[str, list[float]]]] = {}
    predictions = {sid: len(p.detections) for sid, p in zip(*ds.values(["id", field]))}
    for task in tasks:  # every pre-label is a pushed prediction at or above the display confidence, same box
        sample = ds[by_task[task["id"]]]
        shown = {d.id: d for d in sample[field].detections if d.confidence >= 0.25}
        pre = task["predictions"][-1]["result"]
        assert sorted(r["id"] for r in pre) == sorted(shown)
        for r in pre:
            assert np.allclose(_fraction(r), shown[r["id"]].bounding_box, atol=1e-9)
            assert r["value"]["rectanglelabels"] == [shown[r["id"]].label]
    # the annotator's work
    t_accept, t_edit, t_relabel, t_empty, t_skip, t_later = tasks
    s_accept = by_task[t_accept["id"]]
    ds.select(s_accept).tag_samples("approved")  # a reviewer's verdict in FiftyOne meanwhile
    for task, action in ((t_accept, "accept"), (t_edit, "edit"), (t_relabel, "relabel"), (t_empty, "empty")):
        sid = by_task[task["id"]]
        sample = ds[sid]
        w, h = sample.metadata.width, sample.metadata.height
        pre = task["predictions"][-1]["result"]
        boxes = [(r["value"]["rectanglelabels"][0], _pixels(_fraction(r), w, h), r["id"]) for r in pre]
        if action == "edit":  # move the first box 7 px right and 3 px down, delete the second, draw a new one
            label, (x0, y0, x1, y1), rid = boxes[0]
            drawn = (names[0], [10.0, 12.0, 61.0, 90.0], "drawn1")
            boxes = [(label, [x0 + 7, y0 + 3, x1 + 7, y1 + 3], rid), *boxes[2:], drawn]
        elif action == "relabel":
            label, xyxy, rid = boxes[0]
            boxes[0] = (next(n for n in names if n != label), xyxy, rid)
        elif action == "empty":
            boxes = []
        ls_env.submit(task["id"], [_result(field, b, lab, w, h, rid) for lab, b, rid in boxes])
        want[sid] = [(lab, b) for lab, b, _ in boxes]
    ls_env.submit(t_skip["id"], [], cancelled=True)

    got = collect(name)
    assert (got.collected, got.pending, got.skipped, got.updated) == (4, 2, 1, 0)
    emptied = len(t_empty["predictions"][-1]["result"])  # the pre-labels of the image found to have no objects
    assert (got.edited, got.deleted, got.added) == (2, 1 + emptied, 1)
    assert got.kept == sum(len(w) for w in want.values()) - got.edited - got.added
    assert got.annotators == {ls_env.username: 4}
    ds.reload()
    for sid, boxes in want.items():
        assert _same(_gt(ds, sid), boxes), sid
        record = ds[sid][ANNO_FIELD]
        assert record["status"] == "done" and record["annotator"] == ls_env.username and record["annotated_at"]
        assert "labeled" in ds[sid].tags and "to-review" in ds[sid].tags  # the review queue's tags are kept
    assert ds[by_task[t_empty["id"]]]["ground_truth"].detections == []  # an image with no objects
    assert "approved" in ds[s_accept].tags
    assert {sid: len(p.detections) for sid, p in zip(*ds.values(["id", field]))} == predictions  # untouched
    for task in (t_skip, t_later):
        assert ds[by_task[task["id"]]][ANNO_FIELD]["status"] == "pending"
        assert ds[by_task[task["id"]]]["ground_truth"] is None

    # later: the last task is annotated, and the empty one corrected (one box added)
    sample = ds[by_task[t_later["id"]]]
    w, h = sample.metadata.width, sample.metadata.height
    ls_env.submit(t_later["id"], [_result(field, [100.0, 50.0, 140.5, 99.25], names[-1], w, h, "late1")])
    want[sample.id] = [(names[-1], [100.0, 50.0, 140.5, 99.25])]
    s_empty = by_task[t_empty["id"]]
    sample = ds[s_empty]
    w, h = sample.metadata.width, sample.metadata.height
    annotation = ls_env.tasks(sent.project)[3]["annotations"][0]["id"]
    fixed = [_result(field, [5.0, 5.0, 25.0, 30.0], names[0], w, h, "fix1")]
    ls_env.request("PATCH", f"/api/annotations/{annotation}", {"result": fixed})
    want[s_empty] = [(names[0], [5.0, 5.0, 25.0, 30.0])]
    got = collect(name)
    assert (got.collected, got.updated, got.unchanged, got.pending) == (2, 1, 3, 1)
    ds.reload()
    for sid, boxes in want.items():
        assert _same(_gt(ds, sid), boxes), sid
    _no_token_in_database(fo, ls_env.token)


def _no_token_in_database(fo: Any, token: str) -> None:
    import fiftyone.core.odm.database as fodb

    db = fodb.get_db_conn()
    for name in db.list_collection_names():
        for doc in db[name].find():
            assert token not in json.dumps(doc, default=str), f"the token is stored in {name}"


def test_a_killed_collect_rerun_loses_nothing(porch_data: Path, ls_env: Server, monkeypatch: pytest.MonkeyPatch):
    """A collect stopped after writing ground truth but before its records, run again, ends where an
    uninterrupted collect ends; the CLI sends a selection file and collects with one line each."""
    from cvactive.io import write_jsonl
    from cvactive.store import connect
    from cvactive.store.annotate import ANNO_FIELD, collect

    fo = connect()
    name = f"annotate-kill-{uuid.uuid4().hex[:6]}"
    records = _records(porch_data, 3)
    names = list(records[0].names.values())
    selection = porch_data.parent / f"{name}-selected.jsonl"
    write_jsonl(selection, records)
    env = {**os.environ, **ls_env.env()}
    cli = [sys.executable, "-m", "cvactive.cli", "annotate", "--dataset", name]
    send = [*cli, "--batch", str(selection), "--classes", ",".join(names)]
    out = subprocess.run(send, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert f"{name}: sent 3 samples" in out.stdout and ls_env.token not in out.stdout + out.stderr
    ds = fo.load_dataset(name)
    project = ds.first()[ANNO_FIELD]["project"]
    for task in ls_env.tasks(project):
        ls_env.submit(task["id"], task["predictions"][-1]["result"])  # accept every pre-label

    import fiftyone as fo_module

    real = fo_module.Dataset.set_values

    def killed(self: Any, field_name: str, *args: Any, **kwargs: Any) -> Any:
        if field_name == ANNO_FIELD and any(v.get("status") == "done" for v in args[0].values()):
            raise KeyboardInterrupt  # the kill, between the ground truth and the records
        return real(self, field_name, *args, **kwargs)

    monkeypatch.setattr(fo_module.Dataset, "set_values", killed)
    with pytest.raises(KeyboardInterrupt):
        collect(name)
    monkeypatch.setattr(fo_module.Dataset, "set_values", real)
    ds.reload()
    assert set(ds.values(f"{ANNO_FIELD}.status")) == {"pending"}  # ground truth written, not yet marked done
    out = subprocess.run([*cli, "--collect"], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert f"{name}: collected 3 samples" in out.stdout and "0 pending" in out.stdout
    ds.reload()
    assert set(ds.values(f"{ANNO_FIELD}.status")) == {"done"}
    for sample in ds:
        w, h = sample.metadata.width, sample.metadata.height
        kept = [
            (d.label, _pixels(d.bounding_box, w, h)) for d in sample["predictions"].detections if d.confidence >= 0.25
        ]
        assert _same(_gt(ds, sample.id), kept)
    out = subprocess.run([*cli, "--collect"], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert "collected 0 samples" in out.stdout and "3 collected before" in out.stdout
