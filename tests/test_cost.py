"""The annotation cost model on hand-made images whose cost can be read off the table."""

from __future__ import annotations

import numpy as np
import pytest

from cvactive.cost import Corrections, CostModel, corrections
from cvactive.errors import ConfigError

GT = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50], [60, 60, 70, 70]], float)
GT_CLASS = np.array([0, 0, 1, 1])


def test_three_false_positives_and_two_misses_cost_what_the_table_says() -> None:
    # Two ground-truth boxes found exactly, two missed; three predictions far from any object.
    pred = np.array([GT[0], GT[1], [100, 100, 110, 110], [120, 0, 130, 10], [0, 120, 10, 130]], float)
    c = corrections(pred, [0, 0, 1, 0, 1], [0.9] * 5, GT, GT_CLASS)
    assert c == Corrections(images=1, accepted=2, deleted=3, missed=2, reboxed=0, reclassed=0)
    model = CostModel()
    # 1.6 (image) + 2 x 1.6 (accept) + 3 x 1.6 (delete) + 2 x 7.0 (draw a miss)
    assert model.correct_seconds(c) == pytest.approx(1.6 + 2 * 1.6 + 3 * 1.6 + 2 * 7.0)
    # Drawing the same image from scratch: 1.6 + 4 boxes x 7.0.
    assert model.draw_seconds(1, len(GT)) == pytest.approx(1.6 + 4 * 7.0)


def test_an_empty_image_costs_its_look_only() -> None:
    c = corrections(np.zeros((0, 4)), [], [], np.zeros((0, 4)), [])
    assert c == Corrections(images=1)
    model = CostModel()
    assert model.correct_seconds(c) == pytest.approx(model.image_correct)
    assert model.draw_seconds(1, 0) == pytest.approx(model.image_draw)
    # A prediction on an image with no objects is one deletion.
    fp = corrections([[0, 0, 5, 5]], [1], [0.8], np.zeros((0, 4)), [])
    assert fp == Corrections(images=1, deleted=1)


def test_a_reclassed_box_and_a_reboxed_box() -> None:
    pred = np.array(
        [
            GT[0],  # exact, right class: accepted
            GT[1],  # exact, wrong class: re-classed
            [40, 40, 50, 56],  # IoU 10x10 / 10x16 = 0.625: kept extent, right class: accepted
            [60, 60, 75, 75],  # IoU 100 / 225 = 0.44: matched (>= 0.3), re-boxed
        ],
        float,
    )
    c = corrections(pred, [0, 1, 1, 1], [0.9, 0.9, 0.9, 0.9], GT, GT_CLASS)
    assert c == Corrections(images=1, accepted=2, deleted=0, missed=0, reboxed=1, reclassed=1)
    model = CostModel()
    assert model.correct_seconds(c) == pytest.approx(1.6 + 2 * 1.6 + 7.0 + 3.2)
    # A box both off and of the wrong class pays both fixes, and is not accepted.
    both = corrections([[60, 60, 75, 75]], [0], [0.9], GT[3:], GT_CLASS[3:])
    assert both == Corrections(images=1, reboxed=1, reclassed=1)


def test_below_the_operating_confidence_is_not_shown_and_far_boxes_are_not_matched() -> None:
    # The exact box at 0.2 is not shown (conf 0.25): the object is a miss, not an accept.
    c = corrections([GT[0]], [0], [0.2], GT[:1], GT_CLASS[:1])
    assert c == Corrections(images=1, missed=1)
    # IoU 0.14 < match_iou 0.3: a deletion and a miss, not a re-box.
    c = corrections([[5, 5, 15, 15]], [0], [0.9], GT[:1], GT_CLASS[:1], match_iou=0.3)
    assert c == Corrections(images=1, deleted=1, missed=1)
    # One prediction cannot serve two objects (one-to-one matching).
    c = corrections([[0, 0, 30, 30]], [0], [0.9], [[0, 0, 15, 30], [15, 0, 30, 30]], [0, 0])
    assert c.accepted + c.reboxed == 1 and c.missed == 1


def test_counts_add_and_round_trip() -> None:
    a = Corrections(images=1, accepted=2, deleted=3, missed=4, reboxed=5, reclassed=6)
    assert (a + a).to_dict() == {k: 2 * v for k, v in a.to_dict().items()}
    assert Corrections.from_dict(a.to_dict()) == a
    assert Corrections.drawn(3, 7) == Corrections(images=3, missed=7)
    # Drawing everything in correct mode costs the miss rate, not the draw rate.
    assert CostModel(miss=5.0, image_correct=1.0).correct_seconds(Corrections.drawn(2, 4)) == pytest.approx(22.0)


def test_cost_model_from_a_config_section() -> None:
    model = CostModel.from_dict({"box_draw": 30, "conf": 0.4})
    assert model.box_draw == 30.0 and model.conf == 0.4 and model.image_draw == CostModel().image_draw
    assert CostModel.from_dict(None) == CostModel()
    assert CostModel.from_dict(model.to_dict()) == model
    spend = model.spend(2, 3, None)
    assert spend == {"images": 2.0, "boxes": 3.0, "seconds_draw": 2 * 1.6 + 3 * 30.0, "seconds_correct": None}
    with pytest.raises(ConfigError, match=r"unknown option.*box_drw"):
        CostModel.from_dict({"box_drw": 3})
    with pytest.raises(ConfigError, match=r"cost\.box_draw must be a number >= 0"):
        CostModel.from_dict({"box_draw": -1})
    with pytest.raises(ConfigError, match="accept_iou"):
        CostModel(match_iou=0.6, accept_iou=0.5)
    with pytest.raises(ConfigError, match=r"cost\.conf must lie in"):
        CostModel(conf=1.5)
