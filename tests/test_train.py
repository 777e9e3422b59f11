import pytest

from cvactive.errors import ConfigError, DatasetError, ModelError
from cvactive.train import resolve_model, scaled_architecture, train_detector


def test_scaled_architecture_is_narrower(tmp_path):
    import yaml

    arch = yaml.safe_load(scaled_architecture("pico", tmp_path).read_text())
    assert arch["scales"] == {"n": [0.33, 0.125, 1024]}
    with pytest.raises(ConfigError, match="valid scales: pico, n, s"):
        scaled_architecture("xxl", tmp_path)


def test_bad_inputs(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        train_detector(tmp_path / "missing.yaml", tmp_path)
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model(tmp_path / "missing.pt", tmp_path)


@pytest.mark.slow
def test_porch_model_trains_and_detects(porch_model, porch_model_data):
    from cvactive.detector import Detector
    from cvactive.sources import iter_frames

    detector = Detector(porch_model, imgsz=256, conf=0.25)
    assert detector.names == {0: "brown_box", 1: "white_envelope", 2: "yellow_box"}
    frames = list(iter_frames(porch_model_data.parent / "images" / "val"))[:20]
    records = detector.predict([f for f, _ in frames], [m for _, m in frames])
    assert sum(len(r) for r in records) > 10  # a trained model finds packages


def test_training_and_validation_run_nms_without_its_time_limit():
    """Ultralytics stops NMS mid-batch after 2 s + 0.05 s an image; on a loaded CPU that silently
    drops the boxes of a batch's later images and lowers the mAP by chance."""
    import math

    from ultralytics.utils import nms

    from cvactive.train import full_nms

    original = nms.non_max_suppression
    with full_nms():
        inside = nms.non_max_suppression
        assert inside is not original and inside.keywords == {"max_time_img": math.inf}
        assert inside.func is original
    assert nms.non_max_suppression is original
    with pytest.raises(RuntimeError), full_nms():
        raise RuntimeError("a failed validation")
    assert nms.non_max_suppression is original  # restored however the block ends
