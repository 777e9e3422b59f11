"""``cvactive feed`` on a real MJPEG camera over loopback that keeps dropping: restarts, stops, gives up."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mjpeg_stream import MjpegCamera

from cvactive.cli import main

ROOT = Path(__file__).resolve().parent.parent


def feed_args(url, tmp_path, *extra):
    config = tmp_path / "feed.yaml"
    config.write_text("annotate: false\nretry: {attempts: 0}\nrules:\n  - {kind: random, name: r, every_n: 5}\n")
    out = tmp_path / "out"
    return [sys.executable, "-m", "cvactive.cli", "feed", url, "--config", str(config), "--out", str(out), *extra]


def manifest(out):
    path = out / "manifest.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_feed_restarts_a_camera_that_drops_and_stops_cleanly_on_sigterm(tmp_path):
    with MjpegCamera(25.0, 1000, drop_after=15) as camera:  # every connection drops after 0.6 s
        args = feed_args(camera.url, tmp_path, "--restart-wait", "0.2", "--log-every", "0.5")
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
        deadline = time.monotonic() + 60
        while len(camera.sent) < 3:  # two restarts
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "feed ended; restart 1 in 0 s" in err and "feed ended; restart 2 in 0 s" in err
    assert "stopped by SIGTERM; state saved" in err
    lines = manifest(tmp_path / "out")
    frames = [ln["frame"] for ln in lines]
    assert len(lines) >= 4 and frames == sorted(set(frames))  # numbered on across restarts, nothing twice
    state = json.loads((tmp_path / "out" / "state.json").read_text())
    assert (
        state["kept"] == len(lines) and state["manifest_bytes"] == (tmp_path / "out" / "manifest.jsonl").stat().st_size
    )
    assert "stale" in state["counts"]


def test_feed_gives_up_after_max_restarts(tmp_path):
    with MjpegCamera(25.0, 1000, drop_after=5) as camera:
        done = subprocess.run(
            feed_args(camera.url, tmp_path, "--restart-wait", "0.1", "--max-restarts", "1"),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1, done.stderr
    assert "gave up after 1 restarts" in done.stderr and len(camera.sent) == 2


def test_feed_bad_input_is_one_line_exit_2(tmp_path, capsys):
    config = tmp_path / "feed.yaml"
    config.write_text("rules:\n  - {kind: random, every_n: 5}\nbogus: 1\n")
    out = str(tmp_path / "o")
    assert main(["feed", str(tmp_path / "nope.mp4"), "--config", str(config), "--out", out]) == 2
    assert "valid options: rules" in capsys.readouterr().err
    config.write_text("annotate: false\nrules:\n  - {kind: random, every_n: 5}\n")
    assert main(["feed", str(tmp_path / "nope.mp4"), "--config", str(config), "--out", out]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["feed", "0", "--config", str(config), "--out", out, "--max-restarts", "-2"]) == 2


def test_the_checkout_script_is_the_same_command():
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "harvest_feed.py"), "--help"], capture_output=True)
    assert done.returncode == 0 and b"usage: cvactive feed" in done.stdout and b"--restart-wait" in done.stdout
