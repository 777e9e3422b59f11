"""Detector.candidates: NMS on the candidate columns alone gives the records of the whole output.

The OpenVINO engine copies only these columns out of a finished request; the records must not
change (the slow tests in test_pipeline_models.py check the same on real models end to end).
"""

from __future__ import annotations

import numpy as np
import pytest

from cvactive.detect.model import Detector
from cvactive.sources import FrameMeta


def bare_detector(nc: int = 3, conf: float = 0.25) -> Detector:
    """A Detector's post-processing without a model: names and thresholds are all it reads."""
    det = Detector.__new__(Detector)
    det.names = {i: f"c{i}" for i in range(nc)}
    det.conf, det.iou, det.max_det = conf, 0.7, 300
    return det


def raw_output(rng: np.random.Generator, anchors: int, hits: int, nc: int = 3) -> np.ndarray:
    """``(1, 4 + nc, anchors)``: boxes scattered over a 640 input, low scores but ``hits`` anchors above 0.25
    (ties included: int8 outputs repeat values), overlapping pairs among them."""
    raw = np.zeros((1, 4 + nc, anchors), np.float32)
    raw[0, 0:2] = rng.uniform(20, 620, (2, anchors))
    raw[0, 2:4] = rng.uniform(8, 120, (2, anchors))
    raw[0, 4:] = rng.choice(np.array([0.0, 0.05, 0.1, 0.25], np.float32), (nc, anchors))  # 0.25 itself is not > 0.25
    picked = rng.choice(anchors, hits, replace=False)
    raw[0, 4 + rng.integers(0, nc, hits), picked] = rng.choice(np.array([0.3, 0.5, 0.5, 0.9], np.float32), hits)
    raw[0, :2, picked[1::2]] = raw[0, :2, picked[::2][: len(picked[1::2])]] + 2.0  # near-duplicates
    return raw


@pytest.mark.parametrize("hits", [0, 1, 4, 5, 6, 7, 60])
def test_the_candidates_give_the_records_of_the_whole_output(hits):
    det = bare_detector()
    rng = np.random.default_rng(hits)
    raw = raw_output(rng, 400, hits)
    compact = det.candidates(raw)
    assert compact.shape[:2] == raw.shape[:2] and compact.shape[2] != 6
    assert compact.shape[2] - 1 <= hits + 1  # the candidates and one or two empty columns
    meta = [FrameMeta("x.jpg")]
    (want,) = det.to_records(raw, (640, 640), [(480, 640)], meta)
    (got,) = det.to_records(compact, (640, 640), [(480, 640)], meta)
    assert len(want) == len(got) and (hits == 0 or len(want) > 0)
    np.testing.assert_array_equal(got.xyxy, want.xyxy)
    np.testing.assert_array_equal(got.confidence, want.confidence)
    np.testing.assert_array_equal(got.class_id, want.class_id)
    np.testing.assert_array_equal(got.class_scores, want.class_scores)


def test_the_candidates_are_a_copy_in_anchor_order():
    det = bare_detector()
    raw = raw_output(np.random.default_rng(0), 50, 10)
    compact = det.candidates(raw)
    best = raw[0, 4:].max(0)
    np.testing.assert_array_equal(compact[0, :, :-1], raw[0][:, best > 0.25])
    raw[:] = 0  # the request's buffer is reused: the candidates must not change
    assert compact[0, 4:, :-1].max() > 0.25
