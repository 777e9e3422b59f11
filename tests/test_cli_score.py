"""``cvactive score`` end to end on real images and video with the real OpenVINO model."""

import json

import pytest

from cvactive.cli import main
from cvactive.measures import AGGREGATIONS, MEASURES

pytestmark = pytest.mark.slow
KEYS = ["source", "frame", "timestamp", "width", "height", "boxes", "image_scores"]


def read_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_score_bus_with_class_scores(tmp_path, openvino_model, ultralytics_images):
    out = tmp_path / "s.jsonl"
    code = main(
        ["score", ultralytics_images["bus"], "--model", openvino_model, "--out", str(out), "--with-class-scores"]
    )
    assert code == 0
    (line,) = read_lines(out)
    assert list(line) == [*KEYS, "names"]  # the first line carries the model's full class names
    assert len(line["names"]) == 80 and line["names"]["5"] == "bus"
    assert sorted(b["class_name"] for b in line["boxes"]) == ["bus", "person", "person", "person", "person"]
    for box in line["boxes"]:
        assert len(box["class_scores"]) == 80
        assert set(box["scores"]) == set(MEASURES)
        assert len(box["xyxy"]) == 4 and 0 < box["confidence"] <= 1
    assert set(line["image_scores"]) == {f"{m}_{a}" for m in MEASURES for a in AGGREGATIONS}
    assert line["frame"] is None and (line["width"], line["height"]) == (810, 1080)


def test_score_video_with_stride(tmp_path, openvino_model, assets, capsys):
    out = tmp_path / "v.jsonl"
    video = assets / "videos" / "slow_traffic_small.mp4"
    args = ["score", str(video), "--model", openvino_model, "--out", str(out), "--stride", "30", "--no-progress"]
    assert main(args) == 0
    lines = read_lines(out)
    assert [ln["frame"] for ln in lines] == list(range(0, 901, 30))
    assert lines[1]["timestamp"] == pytest.approx(30 / 29.97, abs=1e-3)
    assert all(ln["source"] == str(video) for ln in lines)
    assert sum(len(ln["boxes"]) for ln in lines) > 31  # traffic: cars everywhere
    assert "scored 31 images/frames" in capsys.readouterr().out


def test_missing_source_exits_2(tmp_path, openvino_model, capsys):
    code = main(["score", str(tmp_path / "missing.mp4"), "--model", openvino_model, "--out", str(tmp_path / "x")])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


def test_unknown_measure_is_a_clear_error(tmp_path, openvino_model, ultralytics_images, capsys):
    code = main(["score", ultralytics_images["bus"], "--out", str(tmp_path / "x"), "--measures", "bald"])
    assert code == 2
    assert "valid measures" in capsys.readouterr().err


def test_pipelined_and_sequential_runs_write_the_same_file(tmp_path, openvino_model, assets):
    video = assets / "videos" / "slow_traffic_small.mp4"
    outs = {}
    for workers in ("0", "3"):
        outs[workers] = tmp_path / f"w{workers}.jsonl"
        args = ["score", str(video), "--model", openvino_model, "--out", str(outs[workers])]
        assert main([*args, "--stride", "45", "--workers", workers, "--with-class-scores", "--no-progress"]) == 0
    text = outs["0"].read_text()
    assert text == outs["3"].read_text()
    assert sum(len(ln["boxes"]) for ln in read_lines(outs["0"])) > 100


def test_negative_workers_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["score", "x.jpg", "--out", str(tmp_path / "x"), "--workers", "-1"])
    assert exit_info.value.code == 2
    assert "give 0 (no pipeline) or more" in capsys.readouterr().err
