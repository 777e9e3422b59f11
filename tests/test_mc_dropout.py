"""MC dropout: the per-box maths, and dropout on a real PyTorch detector's head features."""

import cv2
import numpy as np
import pytest

from cvactive.consistency.divergence import mutual_information
from cvactive.consistency.mc_dropout import mc_box_scores
from cvactive.errors import ConfigError, ModelError


def test_identical_passes_score_zero_and_opposite_passes_one():
    rows = np.array([[0.8, 0.1], [0.3, 0.6]])
    same = mc_box_scores(np.stack([rows] * 7), np.array([0, 1]))
    assert same["mc_variance"].tolist() == [0.0, 0.0] and same["mc_bald"].tolist() == [0.0, 0.0]
    flip = mc_box_scores(np.array([[[1.0, 0.0]], [[0.0, 1.0]]]), np.array([0]))
    assert flip["mc_variance"].tolist() == [1.0]  # scores 1 and 0: variance 1/4, scaled by 4
    assert flip["mc_bald"].tolist() == [pytest.approx(1.0)]  # H(mean) = 1 bit, mean H = 0
    empty = mc_box_scores(np.zeros((5, 0, 3)), np.zeros(0, int))
    assert empty["mc_variance"].shape == (0,)


def test_mutual_information_masks_draws():
    s = np.array([[[1.0, 0.0]], [[0.0, 1.0]], [[0.5, 0.5]]])
    assert mutual_information(s, mask=np.array([[True], [False], [False]])).tolist() == [0.0]
    both = mutual_information(s, mask=np.array([[True], [True], [False]]))
    assert both[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"\(T, N, C\)"):
        mutual_information(np.zeros((2, 3)))


@pytest.fixture(scope="module")
def torch_model(tmp_path_factory, ultralytics_images):
    from cvactive.architectures import random_checkpoint

    images = [cv2.imread(p) for p in ultralytics_images.values()]
    return random_checkpoint(tmp_path_factory.mktemp("mc") / "model.pt", images, seed=0)


@pytest.mark.slow
def test_dropout_off_gives_zero_and_on_gives_positive(torch_model, ultralytics_images):
    from cvactive.consistency.mc_dropout import MCDropout
    from cvactive.detect.model import Detector

    detector = Detector(torch_model, conf=0.001, imgsz=320)
    image = cv2.imread(ultralytics_images["bus"])
    (plain,) = detector.predict([image])
    assert len(plain) > 5

    off = MCDropout(detector, passes=4, p=0.0, rng=0)
    (rec,) = off.predict([image])
    off.close()
    np.testing.assert_array_equal(rec.xyxy, plain.xyxy)  # the written boxes are the plain ones
    assert np.all(rec.box_scores["mc_variance"] == 0.0) and np.all(rec.box_scores["mc_bald"] == 0.0)

    on = MCDropout(detector, passes=6, p=0.3, rng=0)
    (rec,) = on.predict([image])
    on.close()
    var, bald = rec.box_scores["mc_variance"], rec.box_scores["mc_bald"]
    assert np.all((var >= 0) & (var <= 1)) and np.all((bald >= 0) & (bald <= 1))
    assert var.max() > 0 and bald.max() > 0
    again = MCDropout(detector, passes=6, p=0.3, rng=0)  # the seed is an argument: same masks, same scores
    (rec2,) = again.predict([image])
    again.close()
    np.testing.assert_allclose(rec2.box_scores["mc_variance"], var)


@pytest.mark.slow
def test_mc_dropout_through_measured_detector_and_refusals(torch_model, openvino_model, ultralytics_images):
    from cvactive.consistency.mc_dropout import MCDropout
    from cvactive.consistency.measured import MeasuredDetector
    from cvactive.detect.model import Detector

    detector = Detector(torch_model, conf=0.001, imgsz=320, embed=True)
    images = [cv2.imread(p) for p in ultralytics_images.values()]
    measured = MeasuredDetector(detector, ["mc_variance", "mc_bald"], mc_passes=3, mc_dropout=0.2, rng=1)
    records = list(measured.predict_stream(((im, _meta(i)) for i, im in enumerate(images)), batch=2))
    assert [r.source for r in records] == ["img0", "img1"]
    for rec in records:
        assert set(rec.box_scores) == {"mc_variance", "mc_bald"}
        assert "mc_bald_max" in rec.image_scores
        assert rec.embedding is not None and rec.embedding.shape == (448,)  # the embedding hook still works
    with pytest.raises(ModelError, match="PyTorch"):
        MCDropout(Detector(openvino_model))
    with pytest.raises(ConfigError, match="at least 2 passes"):
        MCDropout(detector, passes=1)
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        MCDropout(detector, p=1.0)


def _meta(i):
    from cvactive.sources import FrameMeta

    return FrameMeta(f"img{i}")
