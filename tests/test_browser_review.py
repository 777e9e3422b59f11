"""`cvactive review` serves the FiftyOne App; a real headless Chromium loads it and sees the samples."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from cvactive.io import write_jsonl
from cvactive.record import ImageRecord

pytestmark = [pytest.mark.slow, pytest.mark.browser]

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _records(data_yaml: Path) -> list[ImageRecord]:
    from cvactive.yolodata import load_yolo_dataset

    ds = load_yolo_dataset(data_yaml, splits=("val",))
    rng = np.random.default_rng(0)
    out = []
    for item in ds.items("val"):
        w, h = 320, 240
        k = len(item.classes)
        out.append(
            ImageRecord(
                source=str(item.image), width=w, height=h, xyxy=item.xyxy(w, h),
                confidence=rng.uniform(0.3, 0.9, k).astype(np.float32), class_id=item.classes, names=ds.names,
                image_scores={"entropy_max": float(rng.uniform())},
            )
        )  # fmt: skip
    return out


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_review_app_loads_the_dataset_and_shows_its_samples(porch_data: Path, tmp_path: Path):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium, or ./dev.sh test)")
    from playwright.sync_api import sync_playwright

    from cvactive.store import connect
    from cvactive.store.push import push_records
    from cvactive.store.review import free_port, port_free

    fo = connect()
    name = f"review-{uuid.uuid4().hex[:6]}"
    records = _records(porch_data)
    push_records(records, name, round_=1, progress=False)
    scores = tmp_path / "unused.jsonl"
    write_jsonl(scores, records)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cvactive.cli", "review", "--dataset", name, "--port", str(port)],
        cwd=REPO, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = None
        deadline = time.monotonic() + 120
        for line in proc.stdout:
            m = re.search(r"FiftyOne App for .* at (http://\S+)", line)
            if m:
                url = m.group(1)
                break
            if time.monotonic() > deadline:
                break
        assert url is not None and f":{port}" in url, "review did not print the App URL"
        text = ""
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            try:
                page = browser.new_page()
                page.goto(url, wait_until="domcontentloaded", timeout=90_000)
                deadline = time.monotonic() + 90
                while time.monotonic() < deadline:
                    text = page.inner_text("body")
                    if re.search(rf"\b{len(records)}\s+samples\b", text):
                        break
                    page.wait_for_timeout(1000)
                title = page.title()
                where = page.url + page.content()
            finally:
                browser.close()
        assert re.search(rf"\b{len(records)}\s+samples\b", text), text[-2000:]
        assert "review-queue" in text  # the saved view the App opened on
        assert name in where  # the App's route / page names the data set
        assert "FiftyOne" in title
    finally:
        _stop(proc)
        if fo.dataset_exists(name):
            fo.delete_dataset(name)
    assert proc.returncode == 0
    deadline = time.monotonic() + 20
    while not port_free(port) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert port_free(port), "the App server is still listening after review stopped"
