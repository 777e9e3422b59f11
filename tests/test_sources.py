from pathlib import Path

import cv2
import numpy as np
import pytest

from cvactive.errors import SourceError, VideoError
from cvactive.sources import SourceReport, expand, iter_frames, read_image


def write_video(path: Path, frames: int = 40, fps: float = 10.0, size=(64, 48)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), (i * 5) % 255, np.uint8))
    writer.release()
    return path


def test_folder_with_corrupt_image_is_reported_not_fatal(tmp_path):
    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "b.jpg").write_bytes(b"not an image")
    (tmp_path / "c.png").write_bytes(b"")
    report = SourceReport()
    got = list(iter_frames(tmp_path, report=report))
    assert [m.source for _, m in got] == [str(tmp_path / "a.jpg")]
    assert {Path(p).name for p, _ in report.failures} == {"b.jpg", "c.png"}
    with pytest.raises(SourceError, match=r"b\.jpg"):
        list(iter_frames(tmp_path, strict=True))


def test_missing_source_and_empty_pattern(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        list(iter_frames(tmp_path / "nope.mp4"))
    with pytest.raises(SourceError, match="matches no files"):
        expand(str(tmp_path / "*.jpg"))
    with pytest.raises(SourceError):
        read_image(tmp_path / "missing.jpg")


def test_video_stride_frames_and_timestamps(tmp_path):
    video = write_video(tmp_path / "v.mp4", frames=40, fps=10.0)
    got = list(iter_frames(video, stride=15))
    assert [m.frame for _, m in got] == [0, 15, 30]
    assert [m.timestamp for _, m in got] == pytest.approx([0.0, 1.5, 3.0])
    assert got[0][0].shape == (48, 64, 3)


def test_glob_mixes_images_and_videos(tmp_path):
    write_video(tmp_path / "v.mp4", frames=10)
    cv2.imwrite(str(tmp_path / "x.jpg"), np.zeros((8, 8, 3), np.uint8))
    got = list(iter_frames(str(tmp_path / "*"), stride=5))
    assert [(Path(m.source).name, m.frame) for _, m in got] == [("v.mp4", 0), ("v.mp4", 5), ("x.jpg", None)]


def test_truncated_video_is_read_as_far_as_it_goes(tmp_path):
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(tmp_path / "v.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for _ in range(100):
        writer.write(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    writer.release()
    data = (tmp_path / "v.avi").read_bytes()
    truncated = tmp_path / "t.avi"
    truncated.write_bytes(data[: len(data) // 2])
    report = SourceReport()
    frames = list(iter_frames(truncated, report=report))
    assert 30 < len(frames) < 100
    ((path, reason),) = report.failures
    assert path == str(truncated)
    assert f"ended at frame {len(frames)} of 100" in reason
    with pytest.raises(VideoError, match="truncated"):
        list(iter_frames(truncated, strict=True))


def test_garbage_video_cannot_be_opened(tmp_path):
    garbage = tmp_path / "g.mp4"
    garbage.write_bytes(b"\x00" * 1000)
    report = SourceReport()
    assert list(iter_frames(garbage, report=report)) == []
    assert report.failures == [(str(garbage), "cannot open video (missing, not a video, or unsupported codec)")]
    with pytest.raises(VideoError, match="cannot open"):
        list(iter_frames(garbage, strict=True))


def test_write_video_reads_back_frame_by_frame(tmp_path):
    from cvactive.sources import Capture, write_video

    frames = (np.full((48, 64, 3), 40 * i, np.uint8) for i in range(6))  # a generator: consumed as written
    assert write_video(tmp_path / "w.mp4", frames, fps=5.0, size=(64, 48)) == 6
    cap = Capture(str(tmp_path / "w.mp4"))
    try:
        assert (cap.info.frame_count, cap.info.width, cap.info.height, cap.info.fps) == (6, 64, 48, 5.0)
        means = []
        while cap.grab():
            image = cap.retrieve()
            assert image is not None
            means.append(float(image.mean()))
    finally:
        cap.release()
    assert len(means) == 6 and np.allclose(means, [40 * i for i in range(6)], atol=3)
    with pytest.raises(VideoError, match="cannot write a video to"):
        write_video(tmp_path / "no" / "such" / "folder" / "w.mp4", iter([]), fps=5.0, size=(64, 48))
