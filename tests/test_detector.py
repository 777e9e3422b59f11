"""The detector adapter against plain ``YOLO(model).predict`` on real images (real models)."""

import cv2
import numpy as np
import pytest

from cvactive.detect.model import Detector
from cvactive.errors import ModelError
from cvactive.sources import FrameMeta

pytestmark = pytest.mark.slow


def assert_agrees_with_predict(detector: Detector, image: np.ndarray) -> int:
    from ultralytics import YOLO

    (record,) = detector.predict([image], [FrameMeta("img")])
    (result,) = YOLO(detector.model_path, task="detect").predict(image, verbose=False, **detector.predict_kwargs())
    boxes = result.boxes
    assert len(record) == len(boxes)
    np.testing.assert_allclose(record.xyxy, boxes.xyxy.numpy(), atol=1e-3)
    np.testing.assert_allclose(record.confidence, boxes.conf.numpy(), atol=1e-5)
    np.testing.assert_array_equal(record.class_id, boxes.cls.numpy().astype(int))
    # The kept row of class scores is the pre-NMS row: its maximum is the confidence, at the class.
    assert record.class_scores is not None and record.class_scores.shape == (len(record), len(detector.names))
    if len(record):
        np.testing.assert_allclose(record.class_scores.max(1), record.confidence, atol=1e-5)
        np.testing.assert_array_equal(record.class_scores.argmax(1), record.class_id)
    return len(record)


def test_openvino_model_agrees_with_predict(openvino_model, ultralytics_images):
    detector = Detector(openvino_model)
    counts = {}
    for name, path in ultralytics_images.items():
        counts[name] = assert_agrees_with_predict(detector, cv2.imread(path))
    (bus,) = detector.predict([cv2.imread(ultralytics_images["bus"])])
    assert sorted(bus.class_names) == ["bus", "person", "person", "person", "person"]
    assert counts["zidane"] >= 3


def test_yaml_model_agrees_with_predict_and_embeds(ultralytics_images):
    # Random init: a tiny confidence threshold so that there are boxes to compare.
    detector = Detector("yolov8n.yaml", conf=0.0001, imgsz=320, embed=True)
    image = cv2.imread(ultralytics_images["zidane"])
    assert assert_agrees_with_predict(detector, image) > 0
    records = detector.predict([image, image[:, ::-1].copy()])
    assert records[0].embedding is not None and records[0].embedding.shape == (448,)
    assert not np.allclose(records[0].embedding, records[1].embedding)
    # Batched and one-at-a-time inference give the same embedding.
    (single,) = detector.predict([image])
    np.testing.assert_allclose(single.embedding, records[0].embedding, rtol=1e-3, atol=1e-4)


def test_embeddings_refused_for_exported_models(openvino_model):
    with pytest.raises(ModelError, match="PyTorch"):
        Detector(openvino_model, embed=True)


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        Detector(tmp_path / "nope.pt")


def test_a_pytorch_detector_on_the_cpu_runs_torch_on_every_core(monkeypatch):
    """Ultralytics sets torch to one thread less than the cores when it picks the CPU (for dataloader
    processes a detector never has); the detector takes them all back."""
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        monkeypatch.setattr("os.cpu_count", lambda: 3)
        detector = Detector("yolov8n.yaml", imgsz=64, device="cpu")
        assert detector.device == "cpu" and torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
