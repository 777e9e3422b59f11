"""``cvactive harvest`` on the real videos with the real OpenVINO model, in subprocesses that get killed."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from cvactive._config import CONFIG_DIR
from cvactive.harvest.dedup import hamming, phash

pytestmark = pytest.mark.slow
PACED = CONFIG_DIR / "harvest-paced.yaml"


def manifest(out):
    path = Path(out) / "manifest.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def cli(video, model, out):
    return [
        sys.executable,
        "-m",
        "cvactive.cli",
        "harvest",
        str(video),
        "--model",
        model,
        "--config",
        str(PACED),
        "--out",
        str(out),
        "--no-progress",
    ]


def start(args):
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy())


def wait_for_lines(out, n, proc, timeout=120.0):
    deadline = time.monotonic() + timeout
    while len(manifest(out)) < n:
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "harvest too slow"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def people(assets):
    return assets / "videos" / "one-by-one-person-detection.mp4"


@pytest.fixture(scope="module")
def uninterrupted(people, openvino_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("harvest-full")
    done = subprocess.run(cli(people, openvino_model, out), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return out, done.stdout


def video_frame(path, index):
    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, image = cap.read()
    cap.release()
    assert ok
    return image


def test_paced_budget_spreads_20_distinct_frames(uninterrupted, people):
    out, stdout = uninterrupted
    lines = manifest(out)
    frames = [ln["frame"] for ln in lines]
    assert len(lines) == 20 and "budget spent" in stdout
    assert sum(f < 1394 / 4 for f in frames) <= 10
    assert max(frames) >= 1394 * 3 / 4
    assert all(cv2.imread(ln["path"]).shape == (432, 768, 3) for ln in lines)
    hashes = [phash(video_frame(people, f)) for f in frames]  # the decoded frames, before JPEG
    distances = [hamming(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :]]
    assert min(distances) > 6  # the configured max_distance: no two near-duplicates
    assert all(set(ln["rules"]) <= {"objects", "empty"} and ln["rules"] for ln in lines)
    assert sum(len(ln["boxes"]) for ln in lines) >= 19  # people, mostly


def test_sigkill_then_rerun_equals_uninterrupted(uninterrupted, people, openvino_model, tmp_path):
    out = tmp_path / "killed"
    proc = start(cli(people, openvino_model, out))
    wait_for_lines(out, 6, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 6 <= len(manifest(out)) < 20
    # the dead run's lock file stays but is not held; its ownership record names its files
    assert (out / ".cvactive.lock").is_file()
    assert set(json.loads((out / ".cvactive-owner.json").read_text())["files"]) == {"state.json", "manifest.jsonl"}
    photo = out / "frames" / "mine" / "holiday.jpg"  # a user's file under frames/: the rerun leaves it alone
    photo.parent.mkdir()
    photo.write_bytes(b"a photo the user put there")
    done = subprocess.run(cli(people, openvino_model, out), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert photo.read_bytes() == b"a photo the user put there"
    full, resumed = manifest(uninterrupted[0]), manifest(out)
    assert [ln["frame"] for ln in resumed] == [ln["frame"] for ln in full]
    assert [ln["rules"] for ln in resumed] == [ln["rules"] for ln in full]
    assert len({ln["path"] for ln in resumed}) == 20 == len(list((out / "frames").rglob("*.jpg"))) - 1


def test_sigterm_flushes_exits_143_and_resumes(uninterrupted, people, openvino_model, tmp_path):
    out = tmp_path / "termed"
    proc = start(cli(people, openvino_model, out))
    wait_for_lines(out, 3, proc)
    proc.send_signal(signal.SIGTERM)
    stdout = proc.communicate(timeout=60)[0]
    assert proc.returncode == 143, stdout
    assert "stopped by SIGTERM; state saved" in stdout
    state = json.loads((out / "state.json").read_text())
    assert state["manifest_bytes"] == (out / "manifest.jsonl").stat().st_size
    assert state["kept"] == len(manifest(out)) < 20
    done = subprocess.run(cli(people, openvino_model, out), capture_output=True, text=True)
    assert done.returncode == 0
    assert [ln["frame"] for ln in manifest(out)] == [ln["frame"] for ln in manifest(uninterrupted[0])]


def test_truncated_real_video_and_missing_path(people, tmp_path):
    truncated = tmp_path / "cut.mp4"
    data = people.read_bytes()
    truncated.write_bytes(data[: int(len(data) * 0.4)])
    config = tmp_path / "random.yaml"
    config.write_text("annotate: false\nrules:\n  - {kind: random, every_t: 5}\n")
    args = [sys.executable, "-m", "cvactive.cli", "harvest", "--config", str(config), "--no-progress"]
    done = subprocess.run([*args, str(truncated), "--out", str(tmp_path / "h")], capture_output=True, text=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"failed {truncated}: video ended at frame" in done.stdout
    assert "of 1394 (truncated or corrupt)" in done.stdout
    reached = int(done.stdout.split("video ended at frame ")[1].split()[0])
    assert 300 < reached < 1394
    assert [ln["frame"] for ln in manifest(tmp_path / "h")] == list(range(0, reached, 50))
    missing = subprocess.run([*args, str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "m")], capture_output=True)
    assert missing.returncode == 2
    assert b"source" in missing.stderr and b"does not exist" in missing.stderr


def test_feed_command_logs_counts_and_finishes(people, openvino_model, tmp_path):
    config = tmp_path / "feed.yaml"
    config.write_text("annotate: false\nstride: 5\nrules:\n  - {kind: random, every_t: 20}\n")
    args = [
        sys.executable,
        "-m",
        "cvactive.cli",
        "feed",
        str(people),
        "--config",
        str(config),
        "--out",
        str(tmp_path / "h"),
    ]
    done = subprocess.run([*args, "--model", openvino_model, "--log-every", "0"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "INFO cvactive.harvest.runner: harvest" in done.stderr  # the periodic count lines
    assert "7 kept (total 7)" in done.stderr and "finished: all sources read" in done.stderr
    assert [ln["frame"] for ln in manifest(tmp_path / "h")] == list(range(0, 1394, 200))
