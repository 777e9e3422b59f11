"""Live streams at the live edge: a real MJPEG camera served over loopback, read by OpenCV."""

import json
import time

import cv2
import pytest
from mjpeg_stream import MjpegCamera, read_number

from cvactive.harvest import harvest
from cvactive.harvest.feed import iter_feed
from cvactive.harvest.frames import Retry
from cvactive.harvest.live import LiveReader
from cvactive.sources import SourceReport


def behind(camera, taken):
    """For each (frame number, take time): seconds the frame had been superseded by a newer one."""
    return [camera.behind(k, at) for k, at in taken]


def test_reader_keeps_only_the_newest_frame_when_the_consumer_is_slow():
    fps, served, work = 25.0, 50, 0.12  # the consumer needs 3 frame intervals per frame
    with MjpegCamera(fps, served) as camera:
        report = SourceReport()
        taken, stale, grabbed_late = [], 0, []
        for frame in LiveReader(camera.url, report=report, retry=Retry(attempts=0)).frames():
            k = read_number(frame.image())
            assert k == frame.index  # the reader numbers frames as the camera sent them
            taken.append((k, frame.taken))
            stale += frame.stale
            grabbed_late.append(frame.timestamp - camera.sent[0][k])
            time.sleep(work)
    assert len(taken) + stale == served  # every frame was either looked at or counted as stale
    assert stale >= served / 2
    assert max(behind(camera, taken)) < 1 / fps  # never a frame interval behind the camera
    assert max(grabbed_late) < 1 / fps  # stamped at grab, within a frame interval of being sent
    assert report.failures == [(camera.url, f"stream dropped at frame {served}; gave up after 0 tries")]


def test_reading_in_order_falls_behind_the_same_camera():
    """Without the reader thread (keep_up off) the same slow consumer drifts ever further behind."""
    with MjpegCamera(25.0, 75) as camera:
        taken = []
        for frame in iter_feed(camera.url, retry=Retry(attempts=0), keep_up=False):
            taken.append((read_number(frame.image()), time.time()))
            time.sleep(0.12)
            if len(taken) == 20:
                break
    late = behind(camera, taken)
    assert max(late) > 1.0 and late[-1] > late[len(late) // 2] > late[2]  # ever further behind


def test_stride_on_a_live_stream_hands_out_grid_frames_only():
    with MjpegCamera(25.0, 40) as camera:
        frames = list(LiveReader(camera.url, stride=4, retry=Retry(attempts=0)).frames())
    assert frames and all(f.index % 4 == 0 and read_number(f.image()) == f.index for f in frames)
    assert len(frames) + sum(f.stale for f in frames) == 10


def test_harvest_records_stale_frames_and_delays(tmp_path):
    fps, served = 25.0, 50
    with MjpegCamera(fps, served) as camera:
        s = harvest(
            camera.url,
            tmp_path / "h",
            rules=[{"kind": "random", "every_n": 1}],
            annotate=False,
            retry={"attempts": 0},
            progress=False,
            handle_signals=False,
        )
    lines = [json.loads(x) for x in (tmp_path / "h" / "manifest.jsonl").read_text().splitlines()]
    state = json.loads((tmp_path / "h" / "state.json").read_text())
    assert s.frames + s.stale == served and s.kept == len(lines) == s.frames
    assert state["counts"]["stale"] == s.stale == s.counts["stale"]
    assert all(read_number(cv2.imread(ln["path"])) == ln["frame"] for ln in lines)
    assert all(ln["delay"] >= 0 for ln in lines) and s.delay_mean is not None
    assert max(behind(camera, [(ln["frame"], ln["timestamp"] + ln["delay"]) for ln in lines])) < 1 / fps
    assert s.delay_max is not None and s.delay_max == pytest.approx(max(ln["delay"] for ln in lines), abs=1e-4)


@pytest.mark.slow
def test_harvest_with_a_real_model_stays_at_the_live_edge(tmp_path, openvino_model):
    """A 100 fps camera; the OpenVINO YOLOv8n with TTA (4 passes a frame) on every frame it can take.

    The model is slower than the camera (four 640 px passes take well over 10 ms on a CPU), so
    frames are dropped as stale, but each frame it does look at is the newest one, never more
    than one frame behind the camera. (At 25 fps a fast CI machine nearly kept up: 22 ms a frame.)
    """
    from cvactive.consistency.measured import MeasuredDetector
    from cvactive.detect.model import Detector

    detector = MeasuredDetector(Detector(openvino_model), ["tta_localization"])
    fps, served = 100.0, 300
    with MjpegCamera(fps, served, size=(640, 360)) as camera:
        s = harvest(
            camera.url,
            tmp_path / "h",
            detector=detector,
            rules=[{"kind": "count", "name": "all", "min_count": 0}],  # a model rule: every frame inferred
            retry={"attempts": 0},
            progress=False,
            handle_signals=False,
        )
    lines = [json.loads(x) for x in (tmp_path / "h" / "manifest.jsonl").read_text().splitlines()]
    assert s.inferred == s.frames == len(lines) and s.frames + s.stale == served
    assert s.stale > 0 and s.frames > 0  # the model could not keep up with the camera...
    taken = [(read_number(cv2.imread(ln["path"])), ln["timestamp"] + ln["delay"]) for ln in lines]
    assert [k for k, _ in taken] == [ln["frame"] for ln in lines]
    assert max(behind(camera, taken)) < 1 / fps  # ...and still looked at the newest frame each time
    state = json.loads((tmp_path / "h" / "state.json").read_text())
    assert state["counts"]["stale"] == s.stale
