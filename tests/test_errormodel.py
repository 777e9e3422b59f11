"""The error predictor's maths on constructed cases: matching, outcome labels, features, metrics, fitting."""

from __future__ import annotations

import numpy as np
import pytest
from builders import from_classes

from cvactive.detect.scorer import Scorer
from cvactive.errormodel import (
    BOX_ERRORS,
    BOX_SCORE,
    MISSES,
    TOTAL,
    ErrorModel,
    FeatureSpec,
    LabeledRecord,
    cover_misses,
    default_path,
    evaluate_error_model,
    fit_error_model,
    label_predictions,
)
from cvactive.errormodel.labels import CORRECT, FALSE_POSITIVE, POOR_LOCALISATION, WRONG_CLASS
from cvactive.errormodel.quality import auroc, average_precision, brier, expected_calibration_error, spearman
from cvactive.errormodel.synthetic import synthetic_truth
from cvactive.errors import ConfigError, MissingClassScoresError, RecordError
from cvactive.record import ImageRecord
from cvactive.selection import select
from cvactive.selection.synthetic import synthetic_records

GT = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60], [80, 80, 90, 90]], np.float64)
GT_CLASS = np.array([0, 1, 0, 2])


def test_each_prediction_gets_its_outcome_and_misses_are_found():
    xyxy = np.array(
        [
            [0, 0, 10, 10],  # class 0 on gt 0: correct
            [0, 0, 10, 9],  # class 0 on gt 0 again, lower confidence: a duplicate -> poorly localised
            [20, 20, 30, 30],  # class 0 on gt 1 (class 1): wrong class
            [50, 50, 56, 56],  # class 0, IoU 0.36 with gt 2: poorly localised
            [200, 200, 210, 210],  # nothing there: false positive
        ],
        np.float64,
    )
    m = label_predictions(xyxy, [0, 0, 0, 0, 1], [0.9, 0.8, 0.7, 0.6, 0.5], GT, GT_CLASS)
    assert m.outcome.tolist() == [CORRECT, POOR_LOCALISATION, WRONG_CLASS, POOR_LOCALISATION, FALSE_POSITIVE]
    assert m.truth.tolist() == [0, 0, 1, 2, -1]
    assert m.missed.tolist() == [False, True, True, True]
    assert m.errors == 4 + 3 and m.correct == 1


def test_the_more_confident_prediction_takes_the_object():
    xyxy = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float64)
    m = label_predictions(xyxy, [0, 0], [0.3, 0.9], GT[:1], GT_CLASS[:1])
    assert m.outcome.tolist() == [POOR_LOCALISATION, CORRECT]


def test_a_small_overlap_is_background_and_the_thresholds_are_checked():
    m = label_predictions(np.array([[9, 9, 19, 19]], np.float64), [0], [0.9], GT[:1], GT_CLASS[:1])
    assert m.outcome.tolist() == [FALSE_POSITIVE]  # IoU 1/199 < loc_iou 0.1
    with pytest.raises(ConfigError, match="0 < loc_iou <= iou <= 1"):
        label_predictions(np.zeros((0, 4)), [], [], GT, GT_CLASS, iou=0.3, loc_iou=0.5)


def test_no_predictions_or_no_truth():
    m = label_predictions(np.zeros((0, 4)), [], [], GT, GT_CLASS)
    assert m.outcome.size == 0 and m.missed.all() and m.errors == 4
    m = label_predictions(GT, GT_CLASS, np.ones(4), np.zeros((0, 4)), [])
    assert (m.outcome == FALSE_POSITIVE).all() and m.errors == 4


def test_sub_threshold_boxes_cover_each_missed_object_once():
    missed = np.array([False, True, True, False])
    xyxy = np.array([[20, 20, 30, 30], [21, 21, 30, 30], [0, 0, 10, 10], [50, 50, 52, 52]], np.float64)
    covers = cover_misses(xyxy, [0.1, 0.2, 0.15, 0.1], GT, missed)
    # the second box (higher confidence) takes gt 1, the first finds it taken; gt 0 was found; the last is too small
    assert covers.tolist() == [False, True, False, False]


def record(xyxy, cls, conf, c=3, **kw):
    return Scorer()(from_classes(xyxy, cls, conf, num_classes=c, **kw))


def test_box_features_read_geometry_neighbours_and_scores():
    rec = record([[0, 0, 50, 25], [0, 0, 50, 24], [60, 10, 70, 40]], [1, 1, 2], [0.9, 0.2, 0.6])
    spec = FeatureSpec(num_classes=3, threshold=0.25)
    x = spec.box_features(rec)
    assert x.shape == (3, len(spec.box_names))
    col = {name: x[:, i] for i, name in enumerate(spec.box_names)}
    assert col["kept"].tolist() == [1, 0, 1]
    assert col["cx"][0] == pytest.approx(0.25) and col["cy"][0] == pytest.approx(0.25)
    assert col["width"][0] == pytest.approx(0.5) and col["log_aspect"][2] == pytest.approx(np.log(10 / 30))
    assert col["border"][0] == 0 and col["border"][2] == pytest.approx(10 / 50)
    assert col["max_iou_same_class"][:2] == pytest.approx([0.96, 0.96]) and col["max_iou_same_class"][2] == 0
    assert col["image_kept"].tolist() == [2, 2, 2] and col["image_sub_threshold"].tolist() == [1, 1, 1]
    assert col["is_class_1"].tolist() == [1, 1, 0] and col["score_2"][2] == pytest.approx(0.6)
    assert col["conf_rank"].tolist() == [0, 1, 0.5]
    g = spec.image_features(rec)
    assert g.shape == (len(spec.image_names),)
    img = dict(zip(spec.image_names, g))
    assert img["kept"] == 2 and img["sub_threshold"] == 1 and img["sub_conf_max"] == pytest.approx(0.2)
    assert img["kept_class_1"] == 1 and img["kept_class_2"] == 1 and img["kept_overlap_max"] == 0


def test_features_of_an_empty_image_and_refusals():
    spec = FeatureSpec(num_classes=3)
    empty = ImageRecord.empty("e.jpg", 10, 10)
    assert spec.box_features(empty).shape == (0, len(spec.box_names))
    assert spec.image_features(empty)[:2].tolist() == [0, 0]
    with pytest.raises(RecordError, match="fitted on 4"):
        FeatureSpec(num_classes=4).box_features(record([[0, 0, 5, 5]], [0], [0.5]))
    no_rows = ImageRecord("b.jpg", 10, 10, [[0, 0, 5, 5]], [0.5], [0])
    with pytest.raises(MissingClassScoresError, match="the error model needs the full per-class score row"):
        spec.box_features(no_rows)
    with pytest.raises(RecordError, match=r"uses the measures \['tta_consistency'\]"):
        FeatureSpec(3, extra_measures=("tta_consistency",)).box_features(record([[0, 0, 5, 5]], [0], [0.5]))


def test_embedding_projection_on_principal_axes():
    recs = synthetic_records(30, rng=0, dim=6)
    spec = FeatureSpec.fit(recs, embedding_dims=2)
    assert spec.embedding_dims == 2 and spec.image_names[-2:] == ["embedding_0", "embedding_1"]
    proj = np.stack([spec.image_features(r)[-2:] for r in recs])
    assert proj.mean(axis=0) == pytest.approx([0, 0], abs=1e-9)
    assert proj[:, 0].var() >= proj[:, 1].var()
    with pytest.raises(RecordError, match="needs an embedding in every record"):
        FeatureSpec.fit(synthetic_records(5, rng=0, embeddings=False), embedding_dims=2)


def test_metrics_agree_with_scikit_learn():
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.3
    p = np.round(rng.random(300) * 0.5 + y * 0.3, 2)  # ties on purpose
    assert auroc(y, p) == pytest.approx(roc_auc_score(y, p))
    assert average_precision(y, p) == pytest.approx(average_precision_score(y, p))
    assert brier(y, p) == pytest.approx(brier_score_loss(y, p))
    assert auroc(np.ones(4, bool), p[:4]) is None and average_precision(np.zeros(4, bool), p[:4]) is None


def test_spearman_and_calibration_error():
    from scipy.stats import spearmanr

    a, b = np.array([1, 2, 2, 5, 3.0]), np.array([0.1, 0.4, 0.3, 0.9, 0.2])
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic)
    assert spearman(np.ones(5), b) is None
    # half the predictions at 0.2 (right 20% of the time), half at 0.9 (right 50%): ECE = (0 + 0.4) / 2
    y = np.r_[np.arange(10) < 2, np.arange(10) < 5]
    assert expected_calibration_error(y, np.r_[np.full(10, 0.2), np.full(10, 0.9)]) == pytest.approx(0.2)


@pytest.fixture(scope="module")
def fitted():
    samples = synthetic_truth(synthetic_records(150, rng=11), rng=1)
    return samples, fit_error_model(samples, folds=3, seed=0)


def test_fit_reports_held_out_quality_and_beats_chance(fitted):
    _, model = fitted
    fit, cv = model.report["fit"], model.report["cross_validation"]
    assert fit["images"] == 150 and sum(fit["outcomes"].values()) > fit["kept_boxes"] > 100
    assert cv["folds"] == 3 and cv["box"]["boxes"] == fit["kept_boxes"]
    assert cv["box"]["auroc"] > 0.6 and 0 <= cv["box"]["ece"] < 0.3
    rho = cv["per_image"]["spearman"]
    assert rho["learned_errors"]["errors"] > 0.3 and "entropy_max" in rho and "objects (ground truth)" in rho
    assert model.components["miss"].startswith("constant (0 of 0")  # synthetic records have no sub-threshold box


def test_attach_adds_box_and_image_scores_without_touching_the_input(fitted):
    _, model = fitted
    recs = synthetic_records(12, rng=5)
    out = model.attach(recs)
    assert all(TOTAL not in r.image_scores for r in recs)
    for r in out:
        assert r.image_scores[TOTAL] == pytest.approx(r.image_scores[BOX_ERRORS] + r.image_scores[MISSES])
        assert r.box_scores[BOX_SCORE].shape == (len(r),)
        assert r.image_scores[BOX_ERRORS] == pytest.approx(r.box_scores[BOX_SCORE].sum())
        assert r.image_scores[MISSES] > 0  # the residual model expects some misses everywhere


def test_save_load_round_trip_and_bad_files(fitted, tmp_path):
    _, model = fitted
    path = model.save(tmp_path / "m.errors.npz")
    assert (tmp_path / "m.errors.json").is_file()
    recs = synthetic_records(8, rng=2)
    a, b = model.attach(recs), ErrorModel.load(path).attach(recs)
    assert [r.image_scores[TOTAL] for r in a] == [r.image_scores[TOTAL] for r in b]
    with pytest.raises(ConfigError, match="does not exist; fit one with `cvactive errors fit`"):
        ErrorModel.load(tmp_path / "none.pkl")
    (tmp_path / "bad.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ConfigError, match="not an error model"):
        ErrorModel.load(tmp_path / "bad.pkl")
    assert default_path("runs/w/best.pt").name == "best.errors.npz"


def test_fitting_is_deterministic_and_logistic_works(fitted):
    samples, model = fitted
    again = fit_error_model(samples, folds=0, seed=0)
    recs = synthetic_records(10, rng=4)
    assert [r.image_scores[TOTAL] for r in model.attach(recs)] == [r.image_scores[TOTAL] for r in again.attach(recs)]
    lin = fit_error_model(samples, kind="logistic", folds=0)
    assert lin.components["box"].startswith("logistic")
    report = evaluate_error_model(lin, synthetic_truth(synthetic_records(60, rng=21), rng=2))
    assert report["box"]["auroc"] > 0.6 and report["per_image"]["images"] == 60


def test_bad_settings_and_too_few_examples():
    samples = synthetic_truth(synthetic_records(20, rng=0), rng=0)
    with pytest.raises(ConfigError, match="unknown error-model kind 'forest'; valid kinds: boosting, logistic"):
        fit_error_model(samples, kind="forest")
    with pytest.raises(ConfigError, match="folds must be 0"):
        fit_error_model(samples, folds=1)
    # every kept box correct and no object missed: the box model is the smoothed rate, not a fit
    perfect = [LabeledRecord(s.record, s.record.xyxy, s.record.class_id) for s in samples]
    model = fit_error_model(perfect, folds=0)
    assert model.components["box"].startswith("constant (0 of")
    out = model.attach([s.record for s in samples])
    n = sum(len(s.record) for s in samples)
    assert out[0].box_scores[BOX_SCORE] == pytest.approx(np.full(len(out[0]), 1 / (n + 2)))


def test_learned_error_ranks_by_box_errors_plus_weighted_misses(fitted):
    _, model = fitted
    recs = model.attach(synthetic_records(40, rng=8))
    box = np.array([r.image_scores[BOX_ERRORS] for r in recs])
    miss = np.array([r.image_scores[MISSES] for r in recs])
    idx, util = select(recs, 5, "learned_error", rng=0)
    assert np.allclose((box + miss)[idx], util)
    assert util == pytest.approx(np.sort(box + miss)[::-1][:5])
    _, util = select(recs, 5, "learned_error", rng=0, miss_weight=0.0)
    assert util == pytest.approx(np.sort(box)[::-1][:5])
    with pytest.raises(ConfigError, match="miss_weight must be a number >= 0"):
        select(recs, 5, "learned_error", miss_weight=-1)


def test_a_detector_that_finds_nothing_still_gives_a_predictor():
    samples = [LabeledRecord(ImageRecord.empty(f"{i}.jpg", 64, 48), GT[: i % 3], GT_CLASS[: i % 3]) for i in range(12)]
    with pytest.raises(RecordError, match="found lengths none"):
        fit_error_model(samples, folds=0)
    model = fit_error_model(samples, folds=3, num_classes=3)
    assert model.components["box"] == "constant (0 of 0 positive)"
    out = model.attach([ImageRecord.empty("x.jpg", 64, 48)])
    assert out[0].image_scores[BOX_ERRORS] == 0 and out[0].image_scores[MISSES] > 0


def test_learned_error_per_object_ranks_by_the_expected_error_rate(fitted):
    from cvactive.errormodel import OBJECTS

    _, model = fitted
    recs = model.attach(synthetic_records(40, rng=8))
    total = np.array([r.image_scores[TOTAL] for r in recs])
    objects = np.array([r.image_scores[OBJECTS] for r in recs])
    kept = np.array([(r.confidence >= 0.25).sum() for r in recs])
    box = np.array([r.image_scores[BOX_ERRORS] for r in recs])
    miss = np.array([r.image_scores[MISSES] for r in recs])
    assert objects == pytest.approx(kept - box + miss)
    idx, util = select(recs, 5, "learned_error", rng=0, per_object=True)
    assert util == pytest.approx((total / np.maximum(objects, 1))[idx])
    assert util == pytest.approx(np.sort(total / np.maximum(objects, 1))[::-1][:5])
