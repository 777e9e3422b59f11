"""The pipeline against the sequential detector on real models, images and video frames.

Records must be identical: the same boxes, classes, confidences, class-score rows, embeddings
and image scores (the OpenVINO engine compiles the IR again with the input conversions in the
graph and the THROUGHPUT hint, and still gives the same numbers on these inputs).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from cvactive.detect.engines import BatchedEngine, OpenVINOEngine, engine_for
from cvactive.detect.model import Detector
from cvactive.detect.pipeline import Pipeline, default_workers, run_detector
from cvactive.detect.scorer import Scorer
from cvactive.sources import iter_frames

pytestmark = pytest.mark.slow


def sample(assets, images: int, stride: int) -> list:
    """A few coco128 val2017 images (mixed sizes) then every ``stride``-th traffic frame."""
    coco = list(itertools.islice(iter_frames(assets / "coco128" / "images" / "val2017"), images))
    video = list(iter_frames(assets / "videos" / "slow_traffic_small.mp4", stride=stride))
    return coco + video


def assert_same_records(got, want) -> int:
    assert len(got) == len(want)
    for a, b in zip(got, want):
        for key in ("source", "frame", "timestamp", "width", "height"):
            assert getattr(a, key) == getattr(b, key)
        np.testing.assert_array_equal(a.class_id, b.class_id)
        np.testing.assert_array_equal(a.xyxy, b.xyxy)
        np.testing.assert_array_equal(a.confidence, b.confidence)
        np.testing.assert_array_equal(a.class_scores, b.class_scores)
        assert a.image_scores == b.image_scores
        assert a.box_scores.keys() == b.box_scores.keys()
        for key in a.box_scores:
            np.testing.assert_array_equal(a.box_scores[key], b.box_scores[key])
        if b.embedding is None:
            assert a.embedding is None
        else:
            np.testing.assert_array_equal(a.embedding, b.embedding)
    return sum(len(r) for r in want)


def test_openvino_engine_gives_the_sequential_records(assets, openvino_model):
    frames = sample(assets, images=24, stride=40)
    detector = Detector(openvino_model)
    scorer = Scorer()
    want = list(run_detector(detector, frames, batch=8, workers=0, scorer=scorer))
    engine = engine_for(detector)
    assert isinstance(engine, OpenVINOEngine) and engine.depth >= 1
    got = list(Pipeline(detector, workers=2, scorer=scorer)(frames))
    boxes = assert_same_records(got, want)
    assert boxes > 100  # coco scenes and traffic: plenty of boxes were compared
    # A second stream through the same pipeline object and engine.
    assert_same_records(list(run_detector(detector, frames[:5], workers=3, scorer=scorer)), want[:5])


def test_batched_pytorch_engine_gives_the_sequential_records_and_embeddings(assets):
    # Random init: a low threshold so that boxes exist; batches mix image sizes and video frames.
    frames = sample(assets, images=6, stride=150)
    detector = Detector("yolov8n.yaml", imgsz=320, conf=0.0001, embed=True)
    assert isinstance(engine_for(detector, 4), BatchedEngine)
    scorer = Scorer()
    want = list(run_detector(detector, frames, batch=4, workers=0, scorer=scorer))
    got = list(run_detector(detector, frames, batch=4, workers=2, scorer=scorer))
    assert assert_same_records(got, want) > 0
    assert all(r.embedding is not None and r.embedding.shape == (448,) for r in got)


def test_a_pytorch_model_on_the_cpu_scores_batch_after_batch_by_default(openvino_model):
    # torch's forward pass already takes every core; the pipeline's threads only compete with it
    assert default_workers(Detector("yolov8n.yaml", imgsz=160)) == 0
    assert default_workers(Detector(openvino_model)) == default_workers() >= 2
