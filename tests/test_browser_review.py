"""`cvactive review` serves the FiftyOne App; a real headless Chromium reviews in it, `cvactive pull` reads it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders import from_yolo_item

from cvactive.record import ImageRecord

pytestmark = [pytest.mark.slow, pytest.mark.browser]

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _records(data_yaml: Path) -> list[ImageRecord]:
    from cvactive.yolodata import load_yolo_dataset

    ds = load_yolo_dataset(data_yaml, splits=("val",))
    rng = np.random.default_rng(0)
    out = []
    for item in ds.items("val"):
        w, h = 320, 240
        k = len(item.classes)
        confidence = rng.uniform(0.3, 0.9, k).astype(np.float32)
        image_scores = {"entropy_max": float(rng.uniform())}
        out.append(from_yolo_item(item, w, h, confidence=confidence, names=ds.names, image_scores=image_scores))
    return out


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(90)  # the App server's shutdown is slow on a loaded 2-core machine
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _launch(name: str) -> tuple[subprocess.Popen[str], str, int]:
    from cvactive.store.review import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cvactive.cli", "review", "--dataset", name, "--port", str(port)],
        cwd=REPO, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        m = re.search(r"FiftyOne App for .* at (http://\S+)", line)
        if m:
            # Keep reading what the App server prints: a full pipe would block it (and its exit on Ctrl-C).
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc, m.group(1), port
        if time.monotonic() > deadline:
            break
    _stop(proc)
    raise AssertionError("review did not print the App URL")


def _open_queue(page: Any, url: str, n: int) -> str:
    """Load the App and wait for the review queue's samples; return the page text."""
    page.goto(url, wait_until="domcontentloaded", timeout=90_000)  # the App never reaches network idle
    text = ""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        text = page.inner_text("body")
        if re.search(rf"\b{n}\s+samples\b", text):
            break
        page.wait_for_timeout(1000)
    dismiss = page.get_by_text("Dismiss")
    if dismiss.count():  # FiftyOne's advertising pop-up covers the modal's tag button
        dismiss.first.click()
    return text


def _click_box(page: Any, det: Any, width: int, height: int) -> None:
    """Click the centre of a box in the modal's canvas (the image is fitted, centred)."""
    canvas = page.locator("#modal canvas").last.bounding_box()
    scale = min(canvas["width"] / width, canvas["height"] / height)
    x0 = canvas["x"] + (canvas["width"] - width * scale) / 2
    y0 = canvas["y"] + (canvas["height"] - height * scale) / 2
    bx, by, bw, bh = det.bounding_box
    page.mouse.click(x0 + (bx + bw / 2) * width * scale, y0 + (by + bh / 2) * height * scale)


def _tag(page: Any, tab: str | None, placeholder: str, tag: str) -> None:
    """Tag through the modal's tag button: its sample/label tab, the tag, Enter, Apply."""
    page.locator("#modal [data-cy=action-tag-sample-labels]").click()
    if tab:
        page.locator(f"[data-cy=tagger-switch-{tab}]").click()
    box = page.get_by_placeholder(re.compile(placeholder))
    box.fill(tag)
    box.press("Enter")
    page.get_by_text("Apply", exact=True).click()
    page.wait_for_timeout(1000)


def _wait_for(check: Any, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return False


def test_review_in_the_app_then_pull_returns_the_tags(porch_data: Path, tmp_path: Path):
    """A reviewer opens the queue, selects a sample, tags one of its boxes fp and the sample approved
    with the App's own controls; `cvactive pull` then returns both."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium, or ./dev.sh test)")
    from playwright.sync_api import sync_playwright

    from cvactive.store import connect
    from cvactive.store.push import push_records
    from cvactive.store.review import port_free

    fo = connect()
    name = f"review-{uuid.uuid4().hex[:6]}"
    records = _records(porch_data)
    push_records(records, name, round_=1, strategy="uncertainty", progress=False)
    proc, url, port = _launch(name)
    ds = fo.load_dataset(name)
    shot = tmp_path / "review-queue.png"
    try:
        assert f":{port}" in url
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                # a 2-core machine busy with other tests can take longer than Playwright's 30 s per action
                page.set_default_timeout(90_000)
                text = _open_queue(page, url, len(records))
                assert re.search(rf"\b{len(records)}\s+samples\b", text), text[-2000:]
                assert "review-queue" in text and "selection_strategy" in text and "entropy_max" in text
                assert "FiftyOne" in page.title() and name in page.url + page.content()
                page.screenshot(path=str(shot))
                if os.environ.get("CVACTIVE_DOCS_SCREENSHOT"):  # refresh docs/images/review-queue.png
                    page.screenshot(path=os.environ["CVACTIVE_DOCS_SCREENSHOT"])
                page.locator("[data-cy=looker]").first.click()  # the top of the queue
                page.wait_for_selector("#modal.modalon", timeout=30_000)
                page.wait_for_timeout(2000)
                filepath = page.locator("#modal [data-cy=sidebar-entry-filepath]").inner_text().strip()
                sample = ds.match(fo.ViewField("filepath") == filepath).first()
                target = max(sample.predictions.detections, key=lambda d: d.bounding_box[2] * d.bounding_box[3])
                _click_box(page, target, sample.metadata.width, sample.metadata.height)
                _tag(page, None, "tag selected label", "fp")
                _tag(page, "sample", "tag sample", "approved")
                page.screenshot(path=str(tmp_path / "tagged.png"))
            finally:
                browser.close()
        assert shot.stat().st_size > 10_000

        def tagged() -> bool:
            ds.reload()
            s = ds[sample.id]
            return "approved" in s.tags and any("fp" in d.tags for d in s.predictions.detections)

        assert _wait_for(tagged), "the App's tags did not reach the database"
        fp = [d.id for d in ds[sample.id].predictions.detections if "fp" in d.tags]
        assert fp == [target.id]  # exactly the box the reviewer clicked
    finally:
        _stop(proc)
    pulled = subprocess.run(
        [sys.executable, "-m", "cvactive.cli", "pull", "--dataset", name, "--out", str(tmp_path / "pull")],
        cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert pulled.returncode == 0, pulled.stderr[-2000:]
    assert "1 approved" in pulled.stdout and "1 fp" in pulled.stdout
    assert f"{filepath}: tags approved" in pulled.stdout and "label tags fp x1" in pulled.stdout
    import json

    summary = json.loads((tmp_path / "pull" / "pull.json").read_text())
    assert summary["reviewed"][0]["label_tags"] == {"fp": 1}
    ds.reload()
    gt = ds[sample.id].ground_truth
    assert gt is not None and len(gt.detections) == len(sample.predictions.detections) - 1
    assert proc.returncode == 0
    if fo.dataset_exists(name):
        fo.delete_dataset(name)
    assert _wait_for(lambda: port_free(port), 20), "the App server is still listening after review stopped"


def _action(page: Any, label: str) -> Any:
    """A plugin button of the App's action bars, by its exact text."""
    return page.locator("div:has(> span)", has=page.get_by_text(label, exact=True)).last


def test_the_app_shows_how_to_review_and_its_buttons_tag_the_database(porch_data: Path, tmp_path: Path):
    """The queue shows "How to review" with the tag words; an open sample has one button per verdict;
    fp on a clicked box and Approve on the sample reach the database, and Approve moves to the next
    sample of the queue."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium, or ./dev.sh test)")
    from playwright.sync_api import sync_playwright

    from cvactive.store import connect
    from cvactive.store.push import push_records
    from cvactive.store.verdicts import queue_order

    fo = connect()
    name = f"verdicts-{uuid.uuid4().hex[:6]}"
    records = _records(porch_data)[:6]
    push_records(records, name, round_=1, strategy="uncertainty", progress=False)
    ds = fo.load_dataset(name)
    assert "approved" in ds.description and "wrong-class" in ds.get_saved_view_info("review-queue")["description"]
    proc, url, _port = _launch(name)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.set_default_timeout(90_000)
                _open_queue(page, url, len(records))
                page.get_by_text("How to review", exact=True).click()  # the grid's plugin button
                page.get_by_text("Review the queue").wait_for()
                help_text = page.inner_text("body")
                for word in ("approved", "rejected", "fp", "wrong-class", "missed", "cvactive pull"):
                    assert word in help_text, word
                page.get_by_text("Cancel", exact=True).click()
                page.wait_for_timeout(500)
                page.locator("[data-cy=looker]").first.click()
                page.wait_for_selector("#modal.modalon", timeout=30_000)
                for label in ("Approve", "Reject", "fp", "wrong-class", "missed", "Next"):
                    _action(page, label).wait_for(state="visible", timeout=30_000)
                page.wait_for_timeout(1500)
                filepath = page.locator("#modal [data-cy=sidebar-entry-filepath]").inner_text().strip()
                sample = ds.match(fo.ViewField("filepath") == filepath).first()
                assert sample.id == queue_order(ds)[0]
                target = max(sample.predictions.detections, key=lambda d: d.bounding_box[2] * d.bounding_box[3])
                _click_box(page, target, sample.metadata.width, sample.metadata.height)
                page.wait_for_timeout(500)
                _action(page, "fp").click()

                def box_tagged() -> bool:
                    ds.reload()
                    return [d.id for d in ds[sample.id].predictions.detections if "fp" in d.tags] == [target.id]

                assert _wait_for(box_tagged), "the fp button did not tag the clicked box"
                _action(page, "Approve").click()

                def approved() -> bool:
                    ds.reload()
                    return "approved" in ds[sample.id].tags

                assert _wait_for(approved), "the Approve button did not tag the sample"

                def moved_on() -> bool:
                    shown = page.locator("#modal [data-cy=sidebar-entry-filepath]").inner_text().strip()
                    return shown != filepath

                assert _wait_for(moved_on, 20), "Approve did not open the next sample of the queue"
                page.screenshot(path=str(tmp_path / "verdicts.png"))
            finally:
                browser.close()
    finally:
        _stop(proc)
    assert not [d for d in ds[sample.id].predictions.detections if "fp" in d.tags and d.id != target.id]
    fo.delete_dataset(name)
