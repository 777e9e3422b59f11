"""Harvesting through the inference pipeline: the same kept frames, manifest and state as frame by frame.

Real model (the OpenVINO YOLOv8n, and the rebuilt COCO ``.pt`` for the batched engine), real
video frames (clips cut from the shared traffic and people videos), real MJPEG camera on
loopback. ``workers=0`` is the sequential path cvactive had before; ``workers=2`` the pipeline.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import cv2
import pytest
from mjpeg_stream import MjpegCamera, read_number

from cvactive.detect.engines import engine_for
from cvactive.detect.model import Detector
from cvactive.harvest import harvest, harvest_feeds
from cvactive.harvest.infer import SharedDetector, SharedEngine, live_window, pipeline_engine
from cvactive.harvest.runner import _Harvester

pytestmark = pytest.mark.slow

PACED = {
    "rules": [
        {"kind": "count", "name": "objects", "min_count": 1},
        {"kind": "empty", "name": "empty", "keep_probability": 0.2},
    ],
    "budget": {"total": 6},
    "pacing": {"score": "binary_entropy_max", "warmup": 4},
    "dedup": {"method": "phash", "max_distance": 6},
}
# The budget runs out inside a batch of 3: the rest of that batch is still decided, then the run stops.
SPENT_IN_A_BATCH = {
    "rules": [{"kind": "uncertainty", "name": "uncertain", "score": "entropy_max", "min_value": 0.0}],
    "budget": {"total": 4},
    "batch": 3,
}


def cut(video: Path, out: Path, frames: int, step: int, start: int = 0) -> Path:
    """Every ``step``-th frame of ``video`` from ``start``, ``frames`` of them, as an MJPG clip (real scenes
    that change from frame to frame, quick to decode)."""
    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    fps = cap.get(cv2.CAP_PROP_FPS)
    writer = None
    for _ in range(frames):
        for _ in range(step):
            ok, image = cap.read()
            assert ok
        if writer is None:
            size = (image.shape[1], image.shape[0])
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
        writer.write(image)
    cap.release()
    assert writer is not None
    writer.release()
    return out


@pytest.fixture(scope="module")
def clips(assets, tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    videos = assets / "videos"
    return (
        cut(videos / "slow_traffic_small.mp4", folder / "traffic.avi", 48, step=8),
        cut(videos / "one-by-one-person-detection.mp4", folder / "people.avi", 40, step=10, start=300),
    )


@pytest.fixture(scope="module")
def detector(openvino_model):
    return Detector(openvino_model)


def harvested(folder: Path) -> dict:
    """Everything a harvest wrote, with the folder's own path taken out of the manifest and state."""
    manifest = (folder / "manifest.jsonl").read_text().replace(str(folder.resolve()), "OUT")
    jpegs = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.jpg"))}
    state = json.loads((folder / "state.json").read_text())
    state.pop("manifest_bytes")  # the manifest holds the folder's path, whose length differs
    return {"manifest": manifest, "jpegs": jpegs, "state": state}


def run(source, out, detector, workers, **config):
    return harvest(source, out, detector=detector, workers=workers, progress=False, handle_signals=False, **config)


@pytest.mark.parametrize("config", [PACED, SPENT_IN_A_BATCH], ids=["paced", "spent-in-a-batch"])
def test_pipelined_harvest_writes_what_the_sequential_one_writes(tmp_path, clips, detector, config):
    traffic = clips[0]
    alone = run(traffic, tmp_path / "w0", detector, 0, **config)
    piped = run(traffic, tmp_path / "w2", detector, 2, **config)
    assert alone.kept > 0 and alone.inferred > 0
    assert (piped.frames, piped.inferred, piped.kept, piped.counts) == (
        alone.frames,
        alone.inferred,
        alone.kept,
        alone.counts,
    )
    assert harvested(tmp_path / "w2") == harvested(tmp_path / "w0")
    if config is SPENT_IN_A_BATCH:  # stopped at the end of the batch the budget ran out in
        assert alone.budget_spent and alone.frames == 6 and alone.counts["budget"] == 2


def test_a_crash_in_the_pipelined_loop_resumes_to_the_uninterrupted_harvest(tmp_path, clips, detector, monkeypatch):
    traffic = clips[0]
    run(traffic, tmp_path / "full", detector, 0, **PACED)
    keep, calls = _Harvester.keep, {"n": 0}

    def crashing_keep(self, *args):
        keep(self, *args)
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("power cut")

    monkeypatch.setattr(_Harvester, "keep", crashing_keep)
    with pytest.raises(RuntimeError, match="power cut"):
        run(traffic, tmp_path / "part", detector, 2, **PACED)  # the pipeline had read ahead of the crash
    monkeypatch.setattr(_Harvester, "keep", keep)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("cvactive-")]  # the pipeline stopped
    run(traffic, tmp_path / "part", detector, 2, **PACED)  # resumed (workers is not part of the config's hash)
    full, part = harvested(tmp_path / "full"), harvested(tmp_path / "part")
    assert part["jpegs"] == full["jpegs"] and part["manifest"] == full["manifest"]
    assert part["state"]["sources"] == full["state"]["sources"] and part["state"]["kept"] == full["state"]["kept"]


def test_several_sources_share_one_engine_and_keep_what_each_keeps_alone(tmp_path, clips, detector):
    for i, clip in enumerate(clips):
        run(clip, tmp_path / f"alone{i}", detector, 0, **PACED)
    site = harvest_feeds(list(map(str, clips)), tmp_path / "site", detector=detector, workers=2, **PACED)
    assert not site.errors
    for i, clip in enumerate(clips):
        folder = site.folders[str(clip)]
        assert harvested(folder) == harvested(tmp_path / f"alone{i}")
        assert site.feeds[str(clip)].summary.kept > 0


def test_the_batched_engine_shared_by_several_sources_keeps_each_ones_batches(tmp_path, clips, pretrained_pt):
    """The ``.pt`` model (batched engine, batches of 2): each camera's batches are its own, as alone."""
    pt = Detector(pretrained_pt)
    config = {**PACED, "batch": 2, "stride": 2}
    for i, clip in enumerate(clips):
        run(clip, tmp_path / f"alone{i}", pt, 0, **config)
    shared = SharedDetector(pt)
    engine = pipeline_engine(shared, 2)
    assert isinstance(engine, SharedEngine) and engine.batch == 2 and live_window(engine) == 2
    site = harvest_feeds(list(map(str, clips)), tmp_path / "site", detector=pt, workers=2, **config)
    assert not site.errors
    for i, clip in enumerate(clips):
        assert harvested(site.folders[str(clip)]) == harvested(tmp_path / f"alone{i}")
        assert site.feeds[str(clip)].summary.kept > 0


def test_a_live_camera_through_the_pipeline_is_read_at_its_live_edge(tmp_path, detector):
    """Only as many frames as the engine runs at once are in flight; each was the newest when taken."""
    fps, served = 30.0, 90
    window = live_window(engine_for(detector))
    assert 1 <= window <= 4
    with MjpegCamera(fps, served, size=(640, 360)) as camera:
        s = harvest(
            camera.url,
            tmp_path / "h",
            detector=detector,
            rules=[{"kind": "count", "name": "all", "min_count": 0}],  # a model rule: every frame inferred
            retry={"attempts": 0},
            workers=2,
            progress=False,
            handle_signals=False,
        )
    lines = [json.loads(x) for x in (tmp_path / "h" / "manifest.jsonl").read_text().splitlines()]
    assert s.inferred == s.frames == len(lines) > 0 and s.frames + s.stale == served
    taken = [(read_number(cv2.imread(ln["path"])), ln["timestamp"] + ln["delay"]) for ln in lines]
    assert [k for k, _ in taken] == [ln["frame"] for ln in lines]
    assert max(camera.behind(k, at) for k, at in taken) < 1 / fps  # never a frame interval behind
    assert s.report.failures == [(camera.url, f"stream dropped at frame {served}; gave up after 0 tries")]


def test_a_stop_does_not_wait_for_a_hung_camera_in_the_pipeline(tmp_path, detector):
    """The pipeline's reader waits on the hung camera's slot; a stop ends it at once, state saved."""
    stop = threading.Event()
    with MjpegCamera(25.0, 1000, size=(640, 360), stall_after=10) as camera:
        threading.Timer(2.0, stop.set).start()
        started = time.monotonic()
        s = harvest(
            camera.url,
            tmp_path / "h",
            detector=detector,
            rules=[{"kind": "count", "name": "all", "min_count": 0}],
            workers=2,
            stop=stop,
            progress=False,
            handle_signals=False,
        )
        took = time.monotonic() - started
    assert s.stopped == "stop" and took < 2.0 + 1.5
    assert 0 < s.frames <= 10 and s.inferred == s.frames and not s.report.failures
    state = json.loads((tmp_path / "h" / "state.json").read_text())
    assert state["counts"]["frames"] == s.frames
    assert not [t.name for t in threading.enumerate() if t.name.startswith("cvactive-")]
