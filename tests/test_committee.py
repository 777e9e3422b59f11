"""Query by committee: the per-box maths, and real committees of identical and different checkpoints."""

import cv2
import numpy as np
import pytest
from builders import from_rows as record

from cvactive.consistency.committee import committee_box_scores
from cvactive.errors import ConfigError
from cvactive.record import ImageRecord

REF = record([[0, 0, 50, 50], [100, 0, 150, 50]], [[0.9, 0.05, 0.1], [0.7, 0.2, 0.1]])


def test_identical_members_disagree_exactly_zero():
    s = committee_box_scores([REF, REF, REF])
    for part in (s.disagreement, s.class_spread, s.position_spread, s.presence):
        assert part.tolist() == [0.0, 0.0]
    assert s.missed == [0, 0]


def test_each_kind_of_disagreement():
    moved = record([[0, 0, 50, 50], [110, 0, 160, 50]], [[0.9, 0.05, 0.1], [0.7, 0.2, 0.1]])
    other_class = record([[0, 0, 50, 50], [100, 0, 150, 50]], [[0.05, 0.9, 0.1], [0.7, 0.2, 0.1]])
    only_first = record([[0, 0, 50, 50], [160, 60, 190, 90]], [[0.9, 0.05, 0.1], [0.1, 0.1, 0.9]])

    s = committee_box_scores([REF, moved])
    iou = 40 / 60
    np.testing.assert_allclose(s.position_spread, [0.0, 1 - iou])
    np.testing.assert_allclose(s.disagreement, [0.0, 1 - iou])

    s = committee_box_scores([REF, other_class])
    assert s.class_spread[0] > 0.3 and s.class_spread[1] == 0.0 and s.position_spread.tolist() == [0.0, 0.0]

    s = committee_box_scores([REF, only_first, REF])
    np.testing.assert_allclose(s.presence, [0.0, 0.5])  # one of two other members misses box 1
    assert s.disagreement[1] >= 0.5 and s.missed == [1, 0]

    s = committee_box_scores([REF, record(np.zeros((0, 4)), np.zeros((0, 3)))])
    np.testing.assert_allclose(s.disagreement, [1.0, 1.0])


def test_committee_errors_and_empty_reference():
    with pytest.raises(ConfigError, match="at least two"):
        committee_box_scores([REF])
    two_classes = ImageRecord(
        "img", 200, 100, xyxy=[[0, 0, 5, 5]], confidence=[0.9], class_id=[0], class_scores=[[0.9, 0.1]]
    )
    with pytest.raises(ConfigError, match="number of classes"):
        committee_box_scores([REF, two_classes])
    empty = record(np.zeros((0, 4)), np.zeros((0, 3)))
    s = committee_box_scores([empty, REF])
    assert s.disagreement.shape == (0,) and s.missed == [2]


@pytest.fixture(scope="module")
def members(tmp_path_factory, ultralytics_images):
    """Two random-init YOLOv8n checkpoints (different seeds), batch-norm statistics from real images."""
    from cvactive.architectures import random_checkpoint

    images = [cv2.imread(p) for p in ultralytics_images.values()]
    folder = tmp_path_factory.mktemp("committee")
    return [random_checkpoint(folder / f"seed{s}.pt", images, seed=s) for s in (0, 1)]


@pytest.mark.slow
def test_real_committees(members, openvino_model, ultralytics_images):
    from cvactive.consistency.measured import MeasuredDetector
    from cvactive.detect.model import Detector
    from cvactive.detect.scorer import Scorer

    images = [cv2.imread(p) for p in ultralytics_images.values()]
    # identical checkpoints: exactly zero, for the OpenVINO model and for a PyTorch one
    ov = Detector(openvino_model)
    same = MeasuredDetector(ov, ["committee_disagreement"], committee=[openvino_model, openvino_model])
    for rec in same.predict(images):
        assert len(rec) and np.all(rec.box_scores["committee_disagreement"] == 0.0)
        assert rec.image_scores["committee_disagreement_max"] == 0.0
    base = Detector(members[0], conf=0.001, imgsz=320)
    same_pt = MeasuredDetector(base, ["committee_disagreement"], committee=[members[0]])
    (rec,) = same_pt.predict(images[:1])
    assert len(rec) > 5 and np.all(rec.box_scores["committee_disagreement"] == 0.0)

    # different checkpoints: positive, and the Scorer aggregates what the detector computed
    diff = MeasuredDetector(base, ["committee_disagreement"], committee=[members[1]])
    (rec,) = diff.predict(images[:1])
    s = rec.box_scores["committee_disagreement"]
    assert s.shape == (len(rec),) and np.all((s >= 0) & (s <= 1)) and s.mean() > 0.1
    scored = Scorer(measures=("committee_disagreement",), aggregations=("mean",))(rec)
    assert scored.image_scores["committee_disagreement_mean"] == pytest.approx(s.mean())

    with pytest.raises(ConfigError, match="needs committee members"):
        MeasuredDetector(ov, ["committee_disagreement"])


@pytest.mark.slow
def test_cli_refuses_bad_consistency_options(openvino_model, ultralytics_images, tmp_path, capsys):
    from cvactive.cli import main

    base = ["score", ultralytics_images["bus"], "--model", openvino_model, "--out", str(tmp_path / "s.jsonl")]
    cases = [
        (["--measures", "committee_disagreement"], "needs committee members"),
        (["--measures", "mc_bald"], "needs a PyTorch model"),
        (["--measures", "tta_localization", "--tta-views", "hflip,rotate"], "valid views: hflip, scale, shift"),
        (["--calibration", str(tmp_path / "none.json")], "does not exist"),
    ]
    for extra, message in cases:
        assert main([*base, "--no-progress", *extra]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "s.jsonl").exists()
