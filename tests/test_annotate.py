"""`cvactive annotate`: a batch goes to a real Label Studio server through FiftyOne's annotation API, an annotator's
work is submitted through Label Studio's HTTP API, and `collect` brings it back into the ground truth, box for box."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders import yolo_records
from labelstudio import REPO, Server, running_server

from cvactive.record import ImageRecord


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "cvactive.cli", "annotate", *args]
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_no_server_no_batch_or_a_refused_token_is_one_line(tmp_path: Path):
    """Without LABEL_STUDIO_URL/API_KEY, without --batch, or with a server that refuses: one line, exit 2."""
    env = {k: v for k, v in os.environ.items() if "LABELSTUDIO" not in k and "LABEL_STUDIO" not in k}
    out = _cli("--dataset", "none", "--batch", "review-queue", env=env)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().count("\n") == 0 and "set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY" in out.stderr
    out = _cli("--dataset", "none", env=env)
    assert out.returncode == 2 and "annotate needs --batch" in out.stderr
    from cvactive.store.review import free_port

    env.update(LABEL_STUDIO_URL=f"http://127.0.0.1:{free_port()}", LABEL_STUDIO_API_KEY="s3cret-token")
    out = _cli("--dataset", "none", "--collect", env=env)
    assert out.returncode == 2 and "cannot reach Label Studio at http://127.0.0.1:" in out.stderr
    assert "s3cret-token" not in out.stderr + out.stdout


def test_label_studio_rectangles_become_normalised_boxes_and_rotated_ones_their_hull():
    from cvactive.store.collect import _box

    box, rotated = _box({"x": 12.5, "y": 10.0, "width": 20.0, "height": 30.0, "rotation": 0}, 640, 480)
    assert box == [0.125, 0.1, 0.2, 0.3] and not rotated  # percent -> fraction, nothing rounded
    # 90 degrees clockwise about the top-left corner (Label Studio's convention, y down): 20 x 10 px -> 10 x 20 px
    box, rotated = _box({"x": 10.0, "y": 10.0, "width": 20.0, "height": 10.0, "rotation": 90}, 100, 100)
    assert rotated and np.allclose(box, [0.0, 0.1, 0.1, 0.2])
    box, _ = _box({"x": 5.0, "y": 50.0, "width": 20.0, "height": 10.0, "rotation": 90}, 100, 100)
    assert np.allclose(box, [0.0, 0.5, 0.05, 0.2])  # the hull is clipped to the image


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


@pytest.mark.slow
def test_a_batch_round_trips_through_label_studio(porch_data: Path, ls_env: Server):
    """Send the review queue (pre-labels shown, the low-confidence box not), send it again (one task set),
    annotate through Label Studio's API (accept, move + delete + add, relabel, no objects, skip, leave),
    collect: the ground truth is what was submitted, to the pixel; the rest stays pending, then comes in."""
    from cvactive.store import connect
    from cvactive.store.annotate import ANNO_FIELD, annotate
    from cvactive.store.collect import collect
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


@pytest.mark.slow
def test_a_killed_collect_rerun_loses_nothing(porch_data: Path, ls_env: Server, monkeypatch: pytest.MonkeyPatch):
    """A send or a collect stopped between its writes, run again, ends where an uninterrupted one ends;
    the CLI sends a selection file and collects with one line each."""
    from cvactive.io import write_jsonl
    from cvactive.store import connect
    from cvactive.store.annotate import ANNO_FIELD, annotate
    from cvactive.store.collect import collect

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
    tasks = ds.values(f"{ANNO_FIELD}.task")
    ds.set_values(ANNO_FIELD, [None] * len(ds))  # a send killed after FiftyOne saved its run, before the records
    again = annotate(name, str(selection))
    assert (again.sent, again.already_sent) == (0, 3)  # the run's tasks are found, not sent again
    ds.reload()
    assert ds.values(f"{ANNO_FIELD}.task") == tasks and set(ds.values(f"{ANNO_FIELD}.status")) == {"pending"}
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


CHROMIUM = "/usr/bin/chromium"


def _free_corner(boxes: np.ndarray, w: int, h: int, size: tuple[int, int], visible: Any) -> list[float]:
    """A ``size`` box whose corners lie in no pre-label (a drag there draws rather than grabs a box) and
    on the visible part of the image (``visible(x, y)``: the editor may show it zoomed and clipped)."""
    for y in range(4, h - size[1] - 4, 6):
        for x in range(4, w - size[0] - 4, 6):
            corners = [(x, y), (x + size[0], y + size[1])]
            if not all(visible(cx, cy) for cx, cy in corners):
                continue
            if not any(x0 <= cx <= x1 and y0 <= cy <= y1 for cx, cy in corners for x0, y0, x1, y1 in boxes):
                return [float(x), float(y), float(x + size[0]), float(y + size[1])]
    raise AssertionError("no free corner in the image")


@pytest.mark.slow
@pytest.mark.browser
def test_a_box_drawn_in_label_studios_ui_is_collected(porch_data: Path, ls_env: Server):
    """An annotator logs in to Label Studio in a real headless Chromium, opens the task, picks a class,
    drags a new box over the image and submits; collect brings that box into the ground truth."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium, or ./dev.sh test)")
    from playwright.sync_api import sync_playwright

    from cvactive.store import connect
    from cvactive.store.annotate import ANNO_FIELD, annotate
    from cvactive.store.collect import collect
    from cvactive.store.push import push_records

    fo = connect()
    name = f"annotate-ui-{uuid.uuid4().hex[:6]}"
    record = _records(porch_data, 1)[0]
    names = list(record.names.values())
    push_records([record], name, review=True, progress=False)
    sent = annotate(name, "review-queue", classes=names)
    ds = fo.load_dataset(name)
    sample = ds.first()
    task = sample[ANNO_FIELD]["task"]
    shown = [d for d in sample["predictions"].detections if d.confidence >= 0.25]
    taken = np.array([_pixels(d.bounding_box, record.width, record.height) for d in shown])
    label = names[-1]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{ls_env.url}/user/login", wait_until="domcontentloaded", timeout=90_000)
            page.fill("input[name=email]", ls_env.username)
            page.fill("input[name=password]", ls_env.password)
            page.click("button[type=submit]")
            page.wait_for_load_state("domcontentloaded")
            page.goto(f"{ls_env.url}/projects/{sent.project}/data?task={task}", wait_until="domcontentloaded")
            image = page.locator("img[src^=blob]")  # the image Label Studio draws the regions over
            image.wait_for(timeout=90_000)
            page.get_by_text("Submit", exact=True).wait_for(timeout=60_000)
            page.wait_for_timeout(2000)  # the editor lays its canvas out after the image shows
            natural = image.evaluate("e => [e.naturalWidth, e.naturalHeight]")
            assert natural == [record.width, record.height]
            box, stage = image.bounding_box(), page.locator("canvas").last.bounding_box()  # the image, its viewport
            assert box is not None and stage is not None
            scale = box["width"] / natural[0]

            def visible(x: float, y: float) -> bool:
                sx, sy = box["x"] + x * scale, box["y"] + y * scale
                return (
                    stage["x"] + 2 < sx < stage["x"] + stage["width"] - 2
                    and stage["y"] + 2 < sy < stage["y"] + stage["height"] - 2
                )

            want = _free_corner(taken, record.width, record.height, (70, 55), visible)
            page.keyboard.press(str(names.index(label) + 1))  # the class of the next box, by its hotkey
            page.wait_for_timeout(300)
            x0, y0, x1, y1 = want
            page.mouse.move(box["x"] + x0 * scale, box["y"] + y0 * scale)
            page.mouse.down()
            for t in np.linspace(0.1, 1.0, 10):
                page.mouse.move(box["x"] + (x0 + (x1 - x0) * t) * scale, box["y"] + (y0 + (y1 - y0) * t) * scale)
            page.mouse.up()
            page.wait_for_timeout(500)
            page.get_by_text("Submit", exact=True).click()
            deadline = time.monotonic() + 60
            while not ls_env.request("GET", f"/api/tasks/{task}/annotations") and time.monotonic() < deadline:
                page.wait_for_timeout(500)
        finally:
            browser.close()
    got = collect(name)
    assert (got.collected, got.added, got.kept, got.pending) == (1, 1, len(shown), 0)
    ds.reload()
    gt = _gt(ds, sample.id)
    drawn = [b for lab, b in gt if lab == label and np.allclose(b, want, atol=1.0)]
    assert len(drawn) == 1, (gt, want)  # the box drawn in the UI, to within a pixel of where the mouse went
    kept = sorted((d.label, _pixels(d.bounding_box, record.width, record.height)) for d in shown)
    assert _same([g for g in gt if not (g[0] == label and np.allclose(g[1], want, atol=1.0))], kept)
    assert ds.first()[ANNO_FIELD]["annotator"] == ls_env.username
