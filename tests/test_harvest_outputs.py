"""A harvest never destroys a user's files, one run writes a folder at a time, bad input is one line.

Each hostile case runs the real ``cvactive`` command in a subprocess on real (small) videos and
checks: exit code 2, one line on stderr, no traceback, and every file that was there before is
byte-identical afterwards, with nothing added.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from mjpeg_stream import MjpegCamera

from cvactive.errors import OutputError
from cvactive.harvest import harvest
from cvactive.outputs import LOCK_NAME, OWNER_NAME, folder_lock, read_owner

RANDOM = "annotate: false\nrules:\n  - {kind: random, name: r, probability: 0.3}\n"


def write_video(path: Path, frames: int = 40, size: tuple[int, int] = (64, 48), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    writer.release()
    return path


def cvactive(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "cvactive.cli", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=os.environ.copy())


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def manifest(out: Path) -> list[dict]:
    path = out / "manifest.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def lines_written(out: Path) -> int:
    """Complete lines in a manifest another process is writing (a half-written last line not counted)."""
    path = out / "manifest.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


def a_harvest(tmp: Path) -> Path:
    """A finished harvest of ``tmp/v.avi`` into ``tmp/h`` (the config ``tmp/h.yaml``)."""
    harvest(tmp / "v.avi", tmp / "h", rules=[{"kind": "random", "name": "r", "probability": 0.3}], annotate=False,
            progress=False, handle_signals=False)  # fmt: skip
    assert manifest(tmp / "h")
    return tmp / "h"


def user_folder(tmp: Path) -> list[str | Path]:
    """The issue's case: a user's manifest and a photo under frames/ in --out."""
    (tmp / "h" / "frames" / "mine").mkdir(parents=True)
    (tmp / "h" / "frames" / "mine" / "holiday.jpg").write_bytes(b"\xff\xd8 a holiday photo")
    (tmp / "h" / "manifest.jsonl").write_text('{"mine": true}\n')
    return ["harvest", tmp / "v.avi", "--config", tmp / "h.yaml", "--out", tmp / "h", "--no-progress"]


def user_folder_fresh(tmp: Path) -> list[str | Path]:
    return [*user_folder(tmp), "--fresh"]


def user_folder_feed(tmp: Path) -> list[str | Path]:
    return ["feed", *user_folder(tmp)[1:-1]]


def state_is_a_list(tmp: Path) -> list[str | Path]:
    out = a_harvest(tmp)
    (out / "state.json").write_text("[1, 2]\n")
    return ["harvest", tmp / "v.avi", "--config", tmp / "h.yaml", "--out", out, "--no-progress"]


def state_is_unreadable(tmp: Path) -> list[str | Path]:
    out = a_harvest(tmp)
    (out / "state.json").write_text('{"version": 1, "fingerp')
    return ["feed", tmp / "v.avi", "--config", tmp / "h.yaml", "--out", out]


def lines_it_did_not_write(tmp: Path) -> list[str | Path]:
    """A user appended to a harvest's manifest: the lines past the saved size are not cut."""
    out = a_harvest(tmp)
    with (out / "manifest.jsonl").open("a") as fh:
        fh.write('{"path": "/home/me/notes.jpg", "note": "mine"}\n')
    return ["harvest", tmp / "v.avi", "--config", tmp / "h.yaml", "--out", out, "--no-progress"]


def another_config(tmp: Path) -> list[str | Path]:
    out = a_harvest(tmp)
    return ["harvest", tmp / "v.avi", "--config", tmp / "h.yaml", "--out", out, "--seed", "7"]


def stride_zero_harvest(tmp: Path) -> list[str | Path]:
    (tmp / "h.yaml").write_text(RANDOM + "stride: 0\n")
    return ["harvest", tmp / "v.avi", "--config", tmp / "h.yaml", "--out", tmp / "h"]


def stride_zero_score(tmp: Path) -> list[str | Path]:
    return ["score", tmp / "v.avi", "--stride", "0", "--out", tmp / "pool.jsonl"]


def unopenable_feed(tmp: Path) -> list[str | Path]:
    (tmp / "broken.avi").write_bytes(b"not a video at all")  # (an .mp4 makes FFmpeg print a line of its own)
    return ["feed", tmp / "broken.avi", "--config", tmp / "h.yaml", "--out", tmp / "h"]


def unopenable_harvest(tmp: Path) -> list[str | Path]:
    return ["harvest", *unopenable_feed(tmp)[1:]]


def out_inside_the_source(tmp: Path) -> list[str | Path]:
    return ["harvest", tmp, "--config", tmp / "h.yaml", "--out", tmp / "h"]


def several_sources_into_one_harvest(tmp: Path) -> list[str | Path]:
    out = a_harvest(tmp)
    write_video(tmp / "w.avi", seed=1)
    return ["harvest", tmp / "v.avi", tmp / "w.avi", "--config", tmp / "h.yaml", "--out", out, "--no-progress"]


def several_sources_into_a_user_folder(tmp: Path) -> list[str | Path]:
    write_video(tmp / "w.avi", seed=1)
    (tmp / "h").mkdir()
    (tmp / "h" / "site.json").write_text('{"mine": true}')
    return ["feed", tmp / "v.avi", tmp / "w.avi", "--config", tmp / "h.yaml", "--out", tmp / "h", "--fresh"]


CASES: dict[str, tuple[Callable[[Path], list[str | Path]], str]] = {
    "user files in --out": (user_folder, "holds no harvest (it holds frames/, manifest.jsonl); nothing there"),
    "user files in --out, --fresh": (user_folder_fresh, "holds no harvest"),
    "user files in --out, feed": (user_folder_feed, "holds no harvest"),
    "state.json is a list": (state_is_a_list, "state is unreadable (a JSON list, not an object); nothing was"),
    "state.json cut short": (state_is_unreadable, "state is unreadable"),
    "manifest lines it did not write": (lines_it_did_not_write, "that this harvest did not write"),
    "another config": (another_config, "different config"),
    "stride 0 (harvest config)": (stride_zero_harvest, "stride"),
    "--stride 0 (score)": (stride_zero_score, "--stride must be at least 1"),
    "unopenable video (feed)": (unopenable_feed, "cannot open video"),
    "unopenable video (harvest)": (unopenable_harvest, "cannot open video"),
    "--out inside the source folder": (out_inside_the_source, "overlaps the input"),
    "several sources into a one-source harvest": (several_sources_into_one_harvest, "holds the harvest of one"),
    "several sources into a user folder": (several_sources_into_a_user_folder, "holds no harvest (it holds site"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_input_is_one_line_exit_2_and_changes_nothing(case, tmp_path):
    make, expected = CASES[case]
    write_video(tmp_path / "v.avi")
    (tmp_path / "h.yaml").write_text(RANDOM)
    args = make(tmp_path)
    before = snapshot(tmp_path)
    done = cvactive(*args)
    lines = done.stderr.splitlines()
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert expected in lines[0], lines[0]
    assert snapshot(tmp_path) == before  # every file byte-identical, nothing added


def test_a_second_run_into_a_held_folder_fails_at_once_naming_the_first(tmp_path):
    config = tmp_path / "h.yaml"
    config.write_text("annotate: false\nretry: {attempts: 0}\nrules:\n  - {kind: random, name: r, every_n: 3}\n")
    out = tmp_path / "out"
    with MjpegCamera(25.0, 100000) as camera:
        args = [sys.executable, "-m", "cvactive.cli", "feed", camera.url, "--config", str(config), "--out", str(out)]
        first = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
        try:
            deadline = time.monotonic() + 60
            while lines_written(out) < 3:
                assert first.poll() is None and time.monotonic() < deadline, first.communicate()
                time.sleep(0.05)
            started = time.monotonic()
            second = cvactive("harvest", camera.url, "--config", config, "--out", out, "--no-progress")
            assert time.monotonic() - started < 10  # at once, not after the first
            also = cvactive("feed", camera.url, "--config", config, "--out", out, "--fresh")
        finally:
            first.send_signal(signal.SIGTERM)
            err = first.communicate(timeout=30)[1]
    assert first.returncode == 143, err
    for done in (second, also):
        (line,) = done.stderr.splitlines()
        assert done.returncode == 2 and f"{out} is in use by pid {first.pid} on " in line and "(feed, since" in line
    assert not list(tmp_path.glob("out.old-*"))  # --fresh moved nothing while the folder was held
    lines = manifest(out)
    frames = [ln["frame"] for ln in lines]
    assert frames == sorted(set(frames))  # one writer: no frame twice
    state = json.loads((out / "state.json").read_text())
    assert state["kept"] == len(lines) and state["manifest_bytes"] == (out / "manifest.jsonl").stat().st_size


def test_feed_of_a_video_that_fails_part_way_exits_1(tmp_path):
    data = write_video(tmp_path / "v.avi", frames=100).read_bytes()
    (tmp_path / "t.avi").write_bytes(data[: len(data) // 2])
    (tmp_path / "h.yaml").write_text(RANDOM)
    done = cvactive("feed", tmp_path / "t.avi", "--config", tmp_path / "h.yaml", "--out", tmp_path / "h")
    assert done.returncode == 1, done.stderr  # it exited 0 before
    assert "of 100 (truncated or corrupt)" in done.stderr and "Traceback" not in done.stderr


def test_fresh_moves_the_old_harvest_aside_whole(tmp_path):
    write_video(tmp_path / "v.avi")
    out = a_harvest(tmp_path)
    (out / "frames" / "mine").mkdir()
    (out / "frames" / "mine" / "holiday.jpg").write_bytes(b"a photo the user put there")
    before = snapshot(out)
    rules = [{"kind": "random", "name": "r", "probability": 0.3}]
    s = harvest(tmp_path / "v.avi", out, rules=rules, annotate=False, seed=3, fresh=True, progress=False)
    (aside,) = tmp_path.glob("h.old-*")
    moved = snapshot(aside)
    # the old harvest, the user's photo with it, byte for byte; the lock file went along too, holding the
    # new run's details (it locked the folder before moving it), so its content may differ by a second
    assert moved.pop(LOCK_NAME) and before.pop(LOCK_NAME)
    assert moved == before
    assert s.kept == s.kept_total == len(manifest(out)) > 0  # a new harvest from nothing
    assert not (out / "frames" / "mine").exists()
    owner = read_owner(out)
    assert owner is not None and owner.command == "harvest" and set(owner.files) == {"state.json", "manifest.jsonl"}
    # the old harvest stays a harvest: pointing --out at it resumes it (nothing more to keep)
    again = harvest(tmp_path / "v.avi", aside, rules=rules, annotate=False, progress=False)
    assert again.kept == 0 and again.complete and (aside / "frames" / "mine" / "holiday.jpg").is_file()


def test_a_harvest_from_before_ownership_records_is_resumed(tmp_path):
    write_video(tmp_path / "v.avi")
    out = a_harvest(tmp_path)
    (out / OWNER_NAME).unlink()
    (out / ".cvactive.lock").unlink()
    rules = [{"kind": "random", "name": "r", "probability": 0.3}]
    s = harvest(tmp_path / "v.avi", out, rules=rules, annotate=False, progress=False)
    assert s.kept == 0 and s.complete and read_owner(out) is not None


def test_a_lock_held_elsewhere_refuses_the_api_too(tmp_path):
    write_video(tmp_path / "v.avi")
    with folder_lock(tmp_path / "h", "feed"), pytest.raises(OutputError, match="is in use by pid"):
        harvest(
            tmp_path / "v.avi", tmp_path / "h", rules=[{"kind": "random", "every_n": 1}], annotate=False, progress=False
        )


def everything(folder: Path) -> dict[str, object]:
    """A harvest's outputs: its JPEGs by name, the manifest and the state."""
    jpegs = {str(p.relative_to(folder)): p.read_bytes() for p in sorted((folder / "frames").rglob("*.jpg"))}
    text = (folder / "manifest.jsonl").read_text().replace(str(folder.resolve()), "OUT")
    return {"jpegs": jpegs, "manifest": text, "state": json.loads((folder / "state.json").read_text())}


def test_sigkill_then_rerun_equals_an_uninterrupted_run(tmp_path):
    """A real process killed (SIGKILL) mid-harvest: the lock dies with it, a user's file stays, and the
    rerun ends with the uninterrupted run's JPEGs, manifest and state."""
    video = write_video(tmp_path / "v.avi", frames=200, size=(320, 240))
    config = tmp_path / "h.yaml"
    config.write_text("annotate: false\nfsync: true\nrules:\n  - {kind: random, name: r, probability: 0.5}\n")
    args = ["harvest", video, "--config", config, "--no-progress", "--out"]
    assert cvactive(*args, tmp_path / "full").returncode == 0
    full = everything(tmp_path / "full")
    kill = tmp_path / "kill"  # a name as long as "full": the manifest's size is the same
    proc = subprocess.Popen([sys.executable, "-m", "cvactive.cli", *map(str, args), str(kill)], env=os.environ.copy())
    deadline = time.monotonic() + 120
    while lines_written(kill) < 20:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 20 <= lines_written(kill) < len(manifest(tmp_path / "full"))  # killed mid-run
    assert (kill / ".cvactive.lock").exists()  # the dead process's lock file, no longer held
    (kill / "frames" / "mine").mkdir()
    (kill / "frames" / "mine" / "holiday.jpg").write_bytes(b"a photo the user put there")
    done = cvactive(*args, kill)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (kill / "frames" / "mine" / "holiday.jpg").read_bytes() == b"a photo the user put there"
    (kill / "frames" / "mine" / "holiday.jpg").unlink()
    (kill / "frames" / "mine").rmdir()
    assert everything(kill) == full
