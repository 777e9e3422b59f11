"""The Python API takes what an Ultralytics user passes (issue #25, item 7).

``Detector(YOLO(...))``; ``Detector.predict`` and ``iter_scored`` on a path, a list of paths, a
folder, a glob, arrays, a PIL image and a video; and Ultralytics ``Results`` into records.
The fast tests cover the source helpers; the slow ones run the real OpenVINO YOLOv8n.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from cvactive.errors import ModelError, SourceError
from cvactive.in_memory import as_image, source_items
from cvactive.sources import FrameMeta, iter_frames, read_image, write_video


def test_source_items_and_as_image():
    a = np.zeros((4, 5, 3), np.uint8)
    assert len(source_items(np.zeros((2, 4, 5, 3), np.uint8))) == 2
    assert len(source_items([a, np.zeros((3, 4, 5, 3), np.uint8), "x.jpg"])) == 5
    assert source_items("x.jpg") == ["x.jpg"] and source_items(Path("y")) == [Path("y")]
    assert as_image(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)  # greyscale -> BGR
    assert as_image(np.zeros((4, 5, 4), np.uint8)).shape == (4, 5, 3)  # BGRA -> BGR
    with pytest.raises(SourceError, match="uint8"):
        as_image(np.zeros((4, 5, 3), np.float32))
    with pytest.raises(SourceError, match="cannot read a dict"):
        as_image({})
    with pytest.raises(SourceError, match="empty"):
        source_items([])


def test_pil_image_is_rgb_and_becomes_bgr():
    from PIL import Image

    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[..., 0] = 255  # red
    bgr = as_image(Image.fromarray(rgb))
    assert bgr[0, 0].tolist() == [0, 0, 255]


def test_iter_frames_of_a_list_mixes_paths_and_arrays(tmp_path, ultralytics_images):
    a = np.full((8, 8, 3), 7, np.uint8)
    pairs = list(iter_frames([ultralytics_images["bus"], a, Path(ultralytics_images["zidane"]), a]))
    assert [m for _, m in pairs] == [
        FrameMeta(ultralytics_images["bus"]),
        FrameMeta("image-0"),
        FrameMeta(ultralytics_images["zidane"]),
        FrameMeta("image-1"),
    ]
    with pytest.raises(SourceError, match="does not exist"):
        list(iter_frames([ultralytics_images["bus"], str(tmp_path / "missing.jpg")]))


def test_a_model_that_is_neither_a_path_nor_a_yolo_object_is_one_short_line():
    from cvactive.detect.model import Detector

    with pytest.raises(ModelError) as err:
        Detector(list(range(10_000)))  # type: ignore[arg-type]
    assert "got a list" in str(err.value) and len(str(err.value)) < 200


# -- with the real model ------------------------------------------------------------------


@pytest.fixture(scope="module")
def yolo(openvino_model):
    from ultralytics import YOLO

    return YOLO(openvino_model, task="detect")


@pytest.fixture(scope="module")
def detector(yolo):
    from cvactive.detect.model import Detector

    return Detector(yolo)


def boxes(records):
    return [(r.source, r.frame, np.round(r.xyxy, 2).tolist(), r.class_id.tolist()) for r in records]


@pytest.mark.slow
def test_detector_from_a_yolo_object_equals_from_its_path(detector, openvino_model, ultralytics_images):
    from cvactive.detect.model import Detector

    assert detector.model_path == openvino_model or Path(detector.model_path).name in openvino_model
    bus = ultralytics_images["bus"]
    by_path = Detector(openvino_model).predict(bus)
    by_object = detector.predict(bus)
    assert boxes(by_object) == boxes(by_path)
    assert by_object[0].class_scores is not None and by_object[0].class_scores.shape[1] == 80
    assert sorted(by_object[0].names[c] for c in by_object[0].class_id) == [
        "bus",
        "person",
        "person",
        "person",
        "person",
    ]


@pytest.mark.slow
def test_predict_takes_paths_lists_folders_globs_arrays_and_videos(detector, ultralytics_images, tmp_path):
    from PIL import Image

    bus, zidane = ultralytics_images["bus"], ultralytics_images["zidane"]
    folder = tmp_path / "imgs"
    folder.mkdir()
    shutil.copy(bus, folder / "a.jpg")
    shutil.copy(zidane, folder / "b.jpg")
    reference = detector.predict([read_image(bus), read_image(zidane)])
    expected = [(r.xyxy.round(2).tolist(), r.class_id.tolist()) for r in reference]

    def same(records):
        return [(r.xyxy.round(2).tolist(), r.class_id.tolist()) for r in records] == expected

    assert same(detector.predict([bus, zidane])) and same(detector.predict([Path(bus), zidane]))
    assert same(detector.predict(folder)) and same(detector.predict(str(folder / "*.jpg")))
    assert same(detector.predict(np.stack([read_image(bus)[:500, :500]] * 2))) is False  # a crop differs
    assert same(detector.predict([Image.open(bus), Image.open(zidane)]))
    assert [r.source for r in detector.predict([bus, read_image(zidane)])] == [bus, "image-0"]
    assert len(detector.predict(read_image(bus))) == 1  # one array is one image, not its rows

    video = tmp_path / "v.avi"
    frame = cv2.resize(read_image(bus), (640, 480))
    write_video(video, [frame] * 3, fps=5.0, size=(640, 480), codec="MJPG")
    frames = detector.predict(video)
    assert [(r.source, r.frame) for r in frames] == [(str(video), 0), (str(video), 1), (str(video), 2)]
    assert all(len(r) >= 3 for r in frames)
    with pytest.raises(SourceError, match="does not exist"):
        detector.predict([bus, str(tmp_path / "nope.jpg")])


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_iter_scored_takes_a_list_of_paths(detector, ultralytics_images, workers):
    from cvactive.detect.scorer import Scorer
    from cvactive.detect.stage import iter_scored

    paths = [ultralytics_images["zidane"], ultralytics_images["bus"]]
    records = list(iter_scored(paths, detector, Scorer(), workers=workers))
    assert [r.source for r in records] == paths
    assert all("entropy_max" in r.image_scores for r in records)
    arrays = list(iter_scored([read_image(p) for p in paths], detector, Scorer(), workers=workers))
    assert [r.image_scores["entropy_max"] for r in arrays] == [r.image_scores["entropy_max"] for r in records]


@pytest.mark.slow
def test_results_bridge(detector, yolo, ultralytics_images):
    from cvactive.detect.results import records_from_results
    from cvactive.detect.scorer import Scorer

    bus, zidane = ultralytics_images["bus"], ultralytics_images["zidane"]
    results = yolo.predict([bus, zidane], **detector.predict_kwargs(), verbose=False)
    records = records_from_results(results)
    ours = detector.predict([bus, zidane])
    assert [r.source for r in records] == [bus, zidane]
    for got, want in zip(records, ours):
        assert (got.width, got.height) == (want.width, want.height)
        assert got.class_id.tolist() == want.class_id.tolist()
        np.testing.assert_allclose(got.xyxy, want.xyxy, atol=0.5)
        np.testing.assert_allclose(got.confidence, want.confidence, atol=1e-4)
        assert got.class_scores is None and got.names == want.names
    one = records_from_results(results[0])
    assert len(one) == 1 and len(one[0]) == len(records[0])
    scored = Scorer().for_record(one[0])(one[0])
    assert "binary_entropy_max" in scored.image_scores and "entropy_max" not in scored.image_scores
    with pytest.raises(ModelError, match="not an Ultralytics detection Results"):
        records_from_results(["x"])


def _example(text: str, heading: str) -> tuple[str, list[str]]:
    """The first python block after ``heading`` in ``text`` and the output block that follows it."""
    import re

    match = re.search(re.escape(heading) + r".*?```python\n(.*?)```\n\n```\n(.*?)```", text, re.S)
    assert match, f"no example under {heading!r}"
    return match.group(1), match.group(2).splitlines()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("doc", "heading"),
    [("docs/scoring.md", "### What the Python API takes"), ("README.md", "From an Ultralytics `YOLO`")],
)
def test_documented_examples_run_and_print_what_they_show(assets, doc, heading):
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    code, shown = _example((root / doc).read_text(), heading)
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    # Ultralytics' own notes (settings file, model loading) come first
    assert done.stdout.splitlines()[-len(shown) :] == shown
