"""cvactive.detect.nms: NumPy NMS and scaling equal Ultralytics' torch path to the bit.

Synthetic raw outputs with what real int8 outputs have: tied scores, tied best classes, many
overlapping boxes whose IoU sits near the threshold; the slow tests in test_pipeline_models.py
compare the OpenVINO engine (NumPy path) with the Ultralytics predictor (torch path) on real images.
"""

from __future__ import annotations

import numpy as np
import pytest

from cvactive.detect import nms
from cvactive.sources import FrameMeta
from tests.test_detect_candidates import bare_detector


def crowded_output(rng: np.random.Generator, anchors: int, nc: int) -> np.ndarray:
    """``(1, 4 + nc, anchors)``: clusters of jittered boxes (IoUs spread around 0.7), scores on a coarse grid."""
    raw = np.zeros((1, 4 + nc, anchors), np.float32)
    centres = rng.uniform(30, 610, (anchors // 8 + 1, 2))
    raw[0, 0:2] = (centres[rng.integers(0, len(centres), anchors)] + rng.normal(0, 4, (anchors, 2))).T
    raw[0, 2:4] = rng.uniform(10, 90, (2, anchors))
    grid = np.linspace(0.0, 1.0, 21, dtype=np.float32)  # int8-like: many exact ties
    raw[0, 4:] = rng.choice(grid, (nc, anchors), p=np.r_[0.7, np.full(20, 0.015)])
    return raw


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("shape", [(480, 640), (720, 1280), (427, 640), (640, 480), (3, 5)])
def test_numpy_nms_equals_ultralytics(seed, shape):
    nc = 1 + seed % 4
    det = bare_detector(nc=nc, conf=0.25)
    det.max_det = 300 if seed % 3 else 7
    raw = crowded_output(np.random.default_rng(seed), 600, nc)
    got = nms.kept_numpy(det, raw, (640, 640), [shape])
    want = nms.kept_torch(det, raw, (640, 640), [shape])
    assert got is not None
    (g,), (w,) = got, want
    assert len(w[0]) > 0
    for a, b in zip(g, w):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    # the class-score rows in the torch path's layout: the measures' row sums add in the same order
    assert g[1].flags.f_contiguous == w[1].flags.f_contiguous and g[1].flags.c_contiguous == w[1].flags.c_contiguous


def test_a_box_overlapping_a_kept_one_just_below_the_threshold_stays_and_just_above_goes():
    # two 100x100 boxes of one class, the second shifted right: IoU 0.4925 (shift 34 px) and 0.5038 (33 px)
    det = bare_detector(nc=1, conf=0.25)
    det.iou = 0.5
    for shift, both in ((34.0, True), (33.0, False)):
        raw = np.zeros((1, 5, 3), np.float32)
        raw[0, :, 0] = [100, 100, 100, 100, 0.9]
        raw[0, :, 1] = [100 + shift, 100, 100, 100, 0.8]
        got = nms.kept_numpy(det, raw, (640, 640), [(640, 640)])
        want = nms.kept_torch(det, raw, (640, 640), [(640, 640)])
        assert got is not None
        np.testing.assert_array_equal(got[0][0], want[0][0])
        assert (len(got[0][0]) == 2) is both


def test_boxes_of_different_classes_never_suppress_each_other():
    det = bare_detector(nc=2, conf=0.25)
    raw = np.zeros((1, 6, 2), np.float32)
    raw[0, :4] = 100.0  # the same box twice
    raw[0, 4, 0], raw[0, 5, 1] = 0.9, 0.8
    ((boxes, rows, conf, cls),) = nms.kept_numpy(det, raw, (640, 640), [(640, 640)])
    assert cls.tolist() == [0, 1] and conf.tolist() == pytest.approx([0.9, 0.8])
    assert rows.shape == (2, 2) and boxes.shape == (2, 4)


def test_too_many_candidates_go_back_to_torch():
    det = bare_detector(nc=1, conf=0.25)
    raw = np.zeros((1, 5, nms.MATRIX_LIMIT + 1), np.float32)
    raw[0, :4] = 100.0
    raw[0, 4] = 0.5
    assert nms.kept_numpy(det, raw, (640, 640), [(640, 640)]) is None
    (record,) = det.to_records(raw, (640, 640), [(640, 640)], [FrameMeta("x.jpg")])  # torch answers
    assert len(record) == 1  # 1,025 copies of one box: one kept


def test_no_candidate_gives_empty_arrays_of_the_right_types():
    det = bare_detector(nc=3)
    raw = np.zeros((1, 7, 50), np.float32)
    (g,), (w,) = nms.kept_numpy(det, raw, (640, 640), [(480, 640)]), nms.kept_torch(det, raw, (640, 640), [(480, 640)])
    for a, b in zip(g, w):
        assert a.shape == b.shape and a.dtype == b.dtype


def test_empty_boxes_are_kept_as_torchvision_keeps_them(recwarn):
    det = bare_detector(nc=1)
    raw = np.zeros((1, 5, 4), np.float32)
    raw[0, :2] = 100.0  # four boxes of no width or height at one point: 0 / 0 IoU, none suppressed
    raw[0, 4] = [0.5, 0.6, 0.5, 0.7]
    got, want = nms.kept_numpy(det, raw, (640, 640), [(640, 640)]), nms.kept_torch(det, raw, (640, 640), [(640, 640)])
    assert got is not None and len(got[0][0]) == 4
    for a, b in zip(got[0], want[0]):
        np.testing.assert_array_equal(a, b)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
