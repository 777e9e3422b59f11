"""The sharded scorer's parts without a model: shard plans, frame ranges, shard files, manifests."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from cvactive.errors import ConfigError, SourceError
from cvactive.record import ImageRecord
from cvactive.scale import DetectorSpec, Shard, plan_shards, score_sharded
from cvactive.scale.engine import _user_error, write_manifest
from cvactive.scale.shards import (
    ShardResult,
    check_settings,
    read_done,
    remove_stale_temporaries,
    shard_path,
    write_shard,
)
from cvactive.scale.work import shard_frames
from cvactive.sources import SourceReport, iter_video


def write_video(path: Path, frames: int, size: tuple[int, int] = (64, 48)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, size)
    rng = np.random.default_rng(0)
    for i in range(frames):
        img = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        cv2.putText(img, str(i), (5, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
        writer.write(img)
    writer.release()
    return path


@pytest.fixture
def pool_dir(tmp_path) -> Path:
    folder = tmp_path / "pool"
    (folder / "sub").mkdir(parents=True)
    for i in range(5):
        cv2.imwrite(str(folder / f"im{i}.jpg"), np.full((8, 8, 3), i * 40, np.uint8))
    cv2.imwrite(str(folder / "sub" / "im9.png"), np.zeros((8, 8, 3), np.uint8))
    write_video(folder / "clip.mp4", 25)
    return folder


def test_plan_keeps_the_local_order_runs_of_images_and_frame_ranges(pool_dir):
    shards = plan_shards(pool_dir, shard_size=2, stride=3)
    # expand() order: clip.mp4, im0..im4.jpg, sub/im9.png
    videos = [s for s in shards if s.video]
    assert [(s.start, s.stop, s.stride) for s in videos] == [
        (0, 6, 3),
        (6, 12, 3),
        (12, 18, 3),
        (18, 24, 3),
        (24, None, 3),
    ]
    images = [s.paths for s in shards if not s.video]
    assert [len(p) for p in images] == [2, 2, 2]
    assert [Path(p).name for run in images for p in run] == [
        "im0.jpg",
        "im1.jpg",
        "im2.jpg",
        "im3.jpg",
        "im4.jpg",
        "im9.png",
    ]
    assert [s.index for s in shards] == list(range(len(shards)))
    assert all(Shard.from_dict(json.loads(json.dumps(s.to_dict()))) == s for s in shards)


def test_image_list_files_and_bad_sources(pool_dir, tmp_path):
    listing = pool_dir / "list.txt"
    listing.write_text("# two images\nim3.jpg\n" + str(pool_dir / "im1.jpg") + "\n\n")
    (shard,) = plan_shards(listing)
    assert shard.paths == (str(pool_dir / "im3.jpg"), str(pool_dir / "im1.jpg"))
    with pytest.raises(ConfigError, match="live stream"):
        plan_shards("rtsp://127.0.0.1/cam")
    with pytest.raises(ConfigError, match="shard_size must be at least 1"):
        plan_shards(pool_dir, shard_size=0)
    with pytest.raises(SourceError, match="does not exist"):
        plan_shards(tmp_path / "nothing")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(SourceError, match="names no files"):
        plan_shards(tmp_path / "empty.txt")


def test_frame_ranges_give_exactly_the_frames_of_one_pass(pool_dir):
    video = str(pool_dir / "clip.mp4")
    whole = list(iter_video(video, stride=3))
    parts = []
    for shard in plan_shards(video, shard_size=3, stride=3):
        parts.extend(shard_frames(shard, SourceReport()))
    assert [m.frame for _, m in parts] == [m.frame for _, m in whole] == list(range(0, 25, 3))
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(parts, whole))


def test_unreadable_images_are_reported_not_fatal(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "notes.gif").write_bytes(b"GIF89a")
    report = SourceReport()
    frames = list(shard_frames(Shard(0, (str(tmp_path / "bad.jpg"), str(tmp_path / "notes.gif"))), report))
    assert frames == []
    assert [reason.split()[0] for _, reason in report.failures] == ["not", "unsupported"]


def test_shard_files_are_replaced_whole_and_the_done_marker_comes_last(tmp_path):
    shard = Shard(3, ("a.jpg",))
    rec = ImageRecord("a.jpg", 10, 10, embedding=np.arange(4, dtype=np.float32), image_scores={"entropy_max": 0.5})
    assert read_done(tmp_path, 3) is None
    (tmp_path / "shards").mkdir()
    shard_path(tmp_path, shard, ".jsonl.tmp-999").write_text("half a shard")
    assert remove_stale_temporaries(tmp_path) == 1
    for _ in range(2):  # a retried shard writes the same files again, never appends
        write_shard(tmp_path, shard, [rec], ShardResult(3, 1, 0), embedding_dtype="float16")
    assert len(shard_path(tmp_path, shard, ".jsonl").read_text().splitlines()) == 1
    assert np.load(shard_path(tmp_path, shard, ".emb.npy")).dtype == np.float16
    done = read_done(tmp_path, 3)
    assert done is not None and (done.records, done.embedding_dim) == (1, 4)
    shard_path(tmp_path, shard, ".done.json").write_text("{broken")
    assert read_done(tmp_path, 3) is None


def test_resume_refuses_other_settings_and_names_the_fix(tmp_path):
    check_settings({"stride": 1}, {"stride": 1}, tmp_path)
    with pytest.raises(ConfigError, match=r"stride=1, this run asks for 2; .*--overwrite"):
        check_settings({"stride": 1}, {"stride": 2}, tmp_path)
    write_manifest(tmp_path, {"formats": ["jsonl"]}, [Shard(0, ("a.jpg",))], {})
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert data["complete"] is False and data["shards"][0]["done"] is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"formats": ["csv"]}, "unknown shard format 'csv'"),
        ({"engine": "dask"}, "unknown engine 'dask'"),
        ({"embedding_dtype": "int8"}, "unknown embedding dtype 'int8'"),
        ({"batch": 0}, "batch must be at least 1"),
    ],
)
def test_bad_options_are_config_errors(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        score_sharded(tmp_path, tmp_path / "out", DetectorSpec("yolov8n.yaml"), **kwargs)


def test_a_cvactive_error_inside_a_ray_failure_is_found():
    inner = ConfigError("bad model")
    try:
        try:
            raise inner
        except ConfigError as err:
            raise RuntimeError("actor died") from err
    except RuntimeError as outer:
        assert _user_error(outer) is inner
    assert _user_error(RuntimeError("plain")) is None
