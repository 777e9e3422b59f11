"""Temperature calibration: the maths, the file format, and a real over-confident model on COCO val."""

import json

import cv2
import numpy as np
import pytest

from cvactive.consistency.calibration import Calibration, calibration_report
from cvactive.consistency.calibration_run import class_map
from cvactive.consistency.temperature import (
    ImagePredictions,
    apply_temperature,
    detection_ece,
    fit_temperature,
    match_to_truth,
    reliability,
)
from cvactive.errors import ConfigError, DatasetError
from cvactive.record import ImageRecord


def test_temperature_keeps_order_and_one_is_identity():
    s = np.array([0.01, 0.3, 0.5, 0.7, 0.99], np.float32)
    np.testing.assert_allclose(apply_temperature(s, 1.0), s, rtol=1e-5)
    soft, sharp = apply_temperature(s, 2.0), apply_temperature(s, 0.5)
    assert soft.dtype == np.float32 and np.all(np.diff(soft) > 0)
    assert soft[-1] < s[-1] and soft[0] > s[0] and sharp[-1] > s[-1] and soft[2] == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="positive"):
        apply_temperature(s, 0.0)


def test_fit_recovers_a_known_temperature(rng):
    z = rng.normal(0, 3, 20000)
    correct = rng.random(z.size) < 1 / (1 + np.exp(-z / 2.5))  # outcomes follow sigmoid(z / 2.5)
    conf = 1 / (1 + np.exp(-z))  # the model says sigmoid(z): over-confident
    t = fit_temperature(conf, correct)
    assert t == pytest.approx(2.5, rel=0.08)
    assert detection_ece(apply_temperature(conf, t), correct) < detection_ece(conf, correct) / 3
    with pytest.raises(DatasetError, match="both"):
        fit_temperature(conf[:10], np.ones(10, bool))
    with pytest.raises(DatasetError, match="no predictions"):
        fit_temperature(np.zeros(0), np.zeros(0, bool))


def test_ece_by_hand():
    conf = np.array([0.15, 0.15, 0.85, 0.85, 0.85, 0.85])
    correct = np.array([0, 0, 1, 1, 1, 0], bool)
    rel = reliability(conf, correct, bins=10)
    assert rel.count.sum() == 6 and rel.count[1] == 2 and rel.count[8] == 4
    # bin 1: |0 - 0.15| * 2/6; bin 8: |0.75 - 0.85| * 4/6
    assert rel.ece == pytest.approx(0.15 * 2 / 6 + 0.10 * 4 / 6)
    with pytest.raises(ConfigError):
        reliability(conf, correct, bins=0)


def test_matching_follows_the_coco_rule():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    pred = np.array([[0, 0, 10, 10], [0, 0, 10, 11], [20, 20, 30, 30], [50, 50, 60, 60]], np.float32)
    conf = np.array([0.6, 0.9, 0.8, 0.7])
    ok = match_to_truth(pred, np.array([0, 0, 1, 1]), conf, gt, np.array([0, 0]))
    # the more confident duplicate takes the ground truth; the wrong class and the stray box are false
    assert ok.tolist() == [False, True, False, False]
    assert match_to_truth(pred, np.zeros(4, int), conf, np.zeros((0, 4)), np.zeros(0, int)).sum() == 0


def test_calibration_file_round_trip_and_errors(tmp_path):
    path = Calibration(1.7, {"model": "m"}).save(tmp_path / "c.json")
    cal = Calibration.load(path)
    assert cal.temperature == 1.7 and cal.meta == {"model": "m"}
    rows = np.array([[0.9, 0.2], [0.3, 0.6]], np.float32)
    rec = ImageRecord("a", 10, 10, xyxy=[[0, 0, 1, 1]] * 2, confidence=rows.max(1), class_id=[0, 1], class_scores=rows)
    out = cal.apply(rec)
    assert out is not rec and out.class_id.tolist() == [0, 1]
    np.testing.assert_allclose(out.class_scores, apply_temperature(rows, 1.7), rtol=1e-6)
    np.testing.assert_allclose(out.confidence, out.class_scores.max(1))
    (tmp_path / "bad.json").write_text("{nope")
    (tmp_path / "nokey.json").write_text(json.dumps({"t": 1}))
    (tmp_path / "neg.json").write_text(json.dumps({"temperature": -1}))
    for name, match in (("missing.json", "does not exist"), ("bad.json", "not valid JSON"),
                        ("nokey.json", "'temperature' key"), ("neg.json", "positive")):  # fmt: skip
        with pytest.raises(ConfigError, match=match):
            Calibration.load(tmp_path / name)


def test_report_and_class_map_errors(rng):
    preds = [ImagePredictions(str(i), rng.random(5), rng.random(5) < 0.5, 3) for i in range(10)]
    report = calibration_report(preds, holdout=0.3, rng=0)
    assert report.fit_images == 7 and report.heldout_images == 3 and report.heldout_predictions == 15
    with pytest.raises(ConfigError, match="holdout"):
        calibration_report(preds, holdout=1.0)
    with pytest.raises(DatasetError, match="two labeled images"):
        calibration_report(preds[:1])
    with pytest.raises(DatasetError, match="share no name"):
        class_map({0: "person"}, {0: "fish", 1: "shark"})
    assert class_map({0: "person", 1: "car"}, {0: "car", 1: "dog"}) == {1: 0}


@pytest.mark.slow
def test_over_confident_model_is_calibrated_on_held_out_coco(openvino_model, assets, tmp_path, ultralytics_images):
    from cvactive.cli import main
    from cvactive.consistency.calibration import calibrate
    from cvactive.detect.model import Detector
    from cvactive.io import load_jsonl

    data = assets / "coco128" / "config.yaml"
    detector = Detector(openvino_model)
    # The real model's logits times 3: deliberately over-confident.
    report = calibrate(detector, data, split="val", sharpen=3.0, holdout=0.5, rng=0, progress=False)
    assert report.heldout_predictions > 100 and report.fit_predictions > 100
    assert report.temperature > 1.5  # it learns to soften
    assert report.ece_heldout_after < 0.75 * report.ece_heldout_before
    png = report.plot(tmp_path / "reliability.png")
    assert cv2.imread(str(png)).shape[:2] == (420, 900)

    # The CLI writes the temperature; score --calibration applies it before the measures.
    out = tmp_path / "cal.json"
    assert main(["calibrate", str(data), "--model", openvino_model, "--out", str(out), "--limit", "40",
                 "--no-progress"]) == 0  # fmt: skip
    saved = json.loads(out.read_text())
    assert saved["temperature"] > 0 and {"ece_heldout_before", "ece_heldout_after", "model"} <= set(saved)
    bus = ultralytics_images["bus"]
    for name, extra in (("plain", []), ("calibrated", ["--calibration", str(out)])):
        code = main(["score", bus, "--model", openvino_model, "--out", str(tmp_path / f"{name}.jsonl"),
                     "--measures", "entropy", "--with-class-scores", "--no-progress", *extra])  # fmt: skip
        assert code == 0
    (plain,) = load_jsonl(tmp_path / "plain.jsonl")
    (cal,) = load_jsonl(tmp_path / "calibrated.jsonl")
    np.testing.assert_allclose(cal.confidence, apply_temperature(plain.confidence, saved["temperature"]), atol=2e-5)
    assert cal.class_id.tolist() == plain.class_id.tolist()
