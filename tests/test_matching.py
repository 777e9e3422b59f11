"""cvactive.matching: the greedy (COCO) rule and the Hungarian assignment, against hand cases and brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from cvactive.errors import ConfigError
from cvactive.matching import greedy_match, hungarian_match


def test_greedy_goes_by_falling_confidence_and_takes_each_column_once():
    iou = np.array([[0.6, 0.9], [0.8, 0.7], [0.55, 0.0]])
    # row 1 (0.9) first takes column 0, row 0 then takes column 1, row 2 finds nothing left
    assert greedy_match(iou, [0.5, 0.9, 0.4], 0.5).tolist() == [1, 0, -1]
    # by index order instead, row 0 takes its best (column 1), row 1 column 0
    assert greedy_match(iou, [0.9, 0.5, 0.4], 0.5).tolist() == [1, 0, -1]
    assert greedy_match(iou, [0.9, 0.5, 0.4], 0.85).tolist() == [1, -1, -1]


def test_greedy_ties_keep_order_and_the_threshold_is_inclusive():
    iou = np.array([[0.5, 0.5], [0.5, 0.5]])
    assert greedy_match(iou, [0.7, 0.7], 0.5).tolist() == [0, 1]  # equal confidence: row order, first column
    assert greedy_match(iou, [0.7, 0.7], 0.51).tolist() == [-1, -1]


def test_greedy_masks():
    iou = np.array([[0.9, 0.6], [0.8, 0.7]])
    allowed = np.array([[False, True], [True, True]])
    assert greedy_match(iou, [0.9, 0.8], 0.5, allowed=allowed).tolist() == [1, 0]
    assert greedy_match(iou, [0.9, 0.8], 0.5, free=[False, True]).tolist() == [1, -1]
    assert greedy_match(iou, [0.9, 0.8], 0.5, allowed=allowed, free=[True, False]).tolist() == [-1, 0]


def test_greedy_empty():
    assert greedy_match(np.zeros((0, 3)), [], 0.5).tolist() == []
    assert greedy_match(np.zeros((2, 0)), [0.1, 0.2], 0.5).tolist() == [-1, -1]


def _greedy_reference(iou, conf, min_iou):
    """The rule written out plainly: for each prediction by falling confidence, the best free column."""
    out, used = [-1] * len(conf), set()
    for i in sorted(range(len(conf)), key=lambda i: -conf[i]):
        best, best_iou = -1, -1.0
        for j in range(iou.shape[1]):
            if j not in used and iou[i, j] > best_iou:
                best, best_iou = j, iou[i, j]
        if best >= 0 and best_iou >= min_iou:
            out[i] = best
            used.add(best)
    return out


def test_greedy_matches_the_plain_rule_on_random_cases():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n, m = rng.integers(0, 6, size=2)
        iou = np.round(rng.random((n, m)), 1)  # rounded: ties occur
        conf = rng.random(n).tolist()
        assert greedy_match(iou, conf, 0.4).tolist() == _greedy_reference(iou, conf, 0.4)


def _best_total(gain):
    n, m = gain.shape
    best = 0.0
    for cols in itertools.permutations(range(max(n, m)), n):
        best = max(best, sum(gain[i, j] for i, j in enumerate(cols) if j < m))
    return best


def test_hungarian_maximises_the_total_iou():
    iou = np.array([[0.6, 0.9], [0.8, 0.0]])
    assert hungarian_match(iou, 0.3).tolist() == [1, 0]  # greedy by rows would take 0.9 and leave row 1 only 0.0
    rng = np.random.default_rng(1)
    for _ in range(100):
        n, m = rng.integers(1, 5, size=2)
        iou = rng.random((n, m))
        out = hungarian_match(iou, 0.3)
        gain = np.where(iou >= 0.3, iou, 0.0)
        matched = [(i, j) for i, j in enumerate(out.tolist()) if j >= 0]
        assert len({j for _, j in matched}) == len(matched)
        assert all(iou[i, j] >= 0.3 for i, j in matched)
        assert sum(gain[i, j] for i, j in matched) == pytest.approx(_best_total(gain))


def test_hungarian_empty_and_bad_threshold():
    assert hungarian_match(np.zeros((3, 0))).tolist() == [-1, -1, -1]
    assert hungarian_match(np.array([[0.2]]), 0.3).tolist() == [-1]
    with pytest.raises(ConfigError, match="min_iou"):
        hungarian_match(np.ones((1, 1)), 1.5)
