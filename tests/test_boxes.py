"""cvactive.boxes: hand-computed cases, torchvision.ops as the reference, and the older copies it replaced."""

from __future__ import annotations

import numpy as np
import pytest

from cvactive import boxes as B


def random_xyxy(rng: np.random.Generator, n: int, w: float = 640, h: float = 480) -> np.ndarray:
    """``n`` boxes of positive size inside a ``w`` x ``h`` image."""
    x = np.sort(rng.uniform(0, w, (n, 2)), axis=1)
    y = np.sort(rng.uniform(0, h, (n, 2)), axis=1)
    x[:, 1] += 1e-3
    y[:, 1] += 1e-3
    return np.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], axis=1)


def test_iou_hand_computed_cases():
    a = [[0, 0, 10, 10]]
    assert B.box_iou(a, [[5, 5, 15, 15]])[0, 0] == pytest.approx(25 / 175)  # 5x5 overlap, union 100+100-25
    assert B.box_iou(a, a)[0, 0] == 1.0
    assert B.box_iou(a, [[2, 2, 4, 4]])[0, 0] == pytest.approx(4 / 100)  # inside: its area over the outer one
    assert B.box_iou(a, [[10, 0, 20, 10]])[0, 0] == 0.0  # touching edges
    assert B.box_iou(a, [[20, 20, 30, 30]])[0, 0] == 0.0
    iou = B.box_iou([[0, 0, 10, 10], [0, 0, 20, 10]], [[0, 0, 10, 10], [10, 0, 20, 10], [0, 0, 5, 5]])
    assert iou.shape == (2, 3) and iou.dtype == np.float64
    np.testing.assert_allclose(iou, [[1.0, 0.0, 0.25], [0.5, 0.5, 0.125]])


def test_iou_of_degenerate_and_empty_inputs():
    line = [[1, 1, 1, 5]]
    assert B.box_iou(line, [[0, 0, 10, 10]])[0, 0] == 0.0
    assert B.box_iou(line, line)[0, 0] == 0.0  # no NaN where the union is 0
    assert B.box_iou(np.zeros((0, 4)), [[0, 0, 1, 1]] * 3).shape == (0, 3)
    assert B.box_iou([[0, 0, 1, 1]], np.zeros((0, 4))).shape == (1, 0)
    np.testing.assert_array_equal(B.box_area([[0, 0, 2, 3], [5, 5, 4, 9]]), [6.0, 0.0])  # x2 < x1: area 0


def test_conversions_hand_computed():
    xyxy = [[10, 20, 50, 100]]  # in a 200 x 400 image
    np.testing.assert_allclose(B.xyxy_to_yolo(xyxy, 200, 400), [[0.15, 0.15, 0.2, 0.2]], rtol=1e-6)
    np.testing.assert_allclose(B.xyxy_to_fiftyone(xyxy, 200, 400), [[0.05, 0.05, 0.2, 0.2]])
    np.testing.assert_allclose(B.yolo_to_xyxy([[0.15, 0.15, 0.2, 0.2]], 200, 400), xyxy, rtol=1e-6)
    np.testing.assert_allclose(B.fiftyone_to_xyxy([[0.05, 0.05, 0.2, 0.2]], 200, 400), xyxy)
    np.testing.assert_allclose(B.yolo_to_fiftyone([[0.15, 0.15, 0.2, 0.2]]), [[0.05, 0.05, 0.2, 0.2]])
    np.testing.assert_allclose(B.fiftyone_to_yolo([[0.05, 0.05, 0.2, 0.2]]), [[0.15, 0.15, 0.2, 0.2]])
    # FiftyOne boxes are clipped into the image; YOLO ones are not.
    np.testing.assert_allclose(B.xyxy_to_fiftyone([[-10, 0, 50, 500]], 100, 100), [[0.0, 0.0, 0.5, 1.0]])
    assert B.xyxy_to_yolo([[-10, 0, 50, 500]], 100, 100)[0, 3] == pytest.approx(5.0)
    assert B.xyxy_to_yolo(xyxy, 200, 400).dtype == np.float32
    assert B.xyxy_to_fiftyone(xyxy, 200, 400).dtype == np.float64
    for f in (B.xyxy_to_yolo, B.yolo_to_xyxy, B.xyxy_to_fiftyone, B.fiftyone_to_xyxy):
        assert f(np.zeros((0, 4)), 10, 10).shape == (0, 4)


def test_round_trips(rng):
    xyxy = random_xyxy(rng, 50)
    np.testing.assert_allclose(B.yolo_to_xyxy(B.xyxy_to_yolo(xyxy, 640, 480), 640, 480), xyxy, atol=1e-3)
    np.testing.assert_allclose(B.fiftyone_to_xyxy(B.xyxy_to_fiftyone(xyxy, 640, 480), 640, 480), xyxy, atol=1e-9)
    yolo = B.xyxy_to_yolo(xyxy, 640, 480).astype(np.float64)
    np.testing.assert_allclose(B.fiftyone_to_yolo(B.yolo_to_fiftyone(yolo)), yolo, atol=1e-12)


def test_same_as_torchvision_ops(rng):
    torch = pytest.importorskip("torch")
    ops = pytest.importorskip("torchvision.ops")
    a, b = random_xyxy(rng, 40), random_xyxy(rng, 30)
    b[:10] = a[:10] + rng.uniform(-20, 20, (10, 4))  # near matches, so many IoUs are well above 0
    b[:10, 2:] = np.maximum(b[:10, 2:], b[:10, :2] + 1)
    expected = ops.box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    assert (expected > 0.3).sum() >= 5
    np.testing.assert_allclose(B.box_iou(a, b), expected, rtol=1e-12, atol=1e-15)
    size = torch.tensor([640, 480, 640, 480], dtype=torch.float64)
    cxcywh = (ops.box_convert(torch.from_numpy(a), "xyxy", "cxcywh") / size).numpy()
    np.testing.assert_allclose(B.xyxy_to_yolo(a, 640, 480), cxcywh, rtol=1e-5, atol=1e-6)
    xywh = (ops.box_convert(torch.from_numpy(a), "xyxy", "xywh") / size).numpy()
    np.testing.assert_allclose(B.xyxy_to_fiftyone(a, 640, 480), xywh, rtol=1e-12, atol=1e-15)
    back = ops.box_convert(torch.from_numpy(cxcywh) * size, "cxcywh", "xyxy").numpy()
    np.testing.assert_allclose(B.yolo_to_xyxy(cxcywh, 640, 480), back, rtol=1e-5, atol=1e-3)


# The copies cvactive.boxes replaced (yolodata.py, store/convert.py, store/review.py, store/merge.py,
# health/table.py), written out as they were: the one module must give their bits exactly.
def _old_yolodata_xyxy_to_yolo(xyxy, width, height):
    b = np.asarray(xyxy, np.float32).reshape(-1, 4)
    out = np.empty_like(b)
    out[:, 0] = (b[:, 0] + b[:, 2]) / 2 / width
    out[:, 1] = (b[:, 1] + b[:, 3]) / 2 / height
    out[:, 2] = (b[:, 2] - b[:, 0]) / width
    out[:, 3] = (b[:, 3] - b[:, 1]) / height
    return out


def _old_yolodata_yolo_to_xyxy(boxes, width, height):
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    out = np.empty_like(b)
    out[:, 0] = (b[:, 0] - b[:, 2] / 2) * width
    out[:, 1] = (b[:, 1] - b[:, 3] / 2) * height
    out[:, 2] = (b[:, 0] + b[:, 2] / 2) * width
    out[:, 3] = (b[:, 1] + b[:, 3] / 2) * height
    return out


def _old_convert_xyxy_to_tlwh(xyxy, width, height):
    b = np.asarray(xyxy, np.float64).reshape(-1, 4)
    x1 = np.clip(b[:, 0] / width, 0.0, 1.0)
    y1 = np.clip(b[:, 1] / height, 0.0, 1.0)
    x2 = np.clip(b[:, 2] / width, 0.0, 1.0)
    y2 = np.clip(b[:, 3] / height, 0.0, 1.0)
    return np.stack([x1, y1, np.maximum(x2 - x1, 0.0), np.maximum(y2 - y1, 0.0)], axis=1)


def _old_convert_yolo_to_tlwh(boxes):
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 2], b[:, 3]], axis=1)


def _old_review_tlwh_to_xyxy(tlwh_list, w, h):
    tlwh = np.array(tlwh_list, np.float64).reshape(-1, 4)
    return np.stack([tlwh[:, 0] * w, tlwh[:, 1] * h, (tlwh[:, 0] + tlwh[:, 2]) * w, (tlwh[:, 1] + tlwh[:, 3]) * h], 1)


def _old_merge_tlwh_to_xyxy(boxes):
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)


def _old_table_tlwh_to_yolo(tlwh_list):
    return np.asarray([(x + bw / 2, y + bh / 2, bw, bh) for x, y, bw, bh in tlwh_list], np.float32).reshape(-1, 4)


def test_bit_for_bit_the_copies_it_replaces(rng):
    xyxy = random_xyxy(rng, 200)
    xyxy[:5] -= 50  # some outside the image
    yolo = B.xyxy_to_yolo(xyxy, 640, 480)
    np.testing.assert_array_equal(yolo, _old_yolodata_xyxy_to_yolo(xyxy, 640, 480))
    np.testing.assert_array_equal(B.yolo_to_xyxy(yolo, 640, 480), _old_yolodata_yolo_to_xyxy(yolo, 640, 480))
    tlwh = B.xyxy_to_fiftyone(xyxy, 640, 480)
    np.testing.assert_array_equal(tlwh, _old_convert_xyxy_to_tlwh(xyxy, 640, 480))
    np.testing.assert_array_equal(B.yolo_to_fiftyone(yolo), _old_convert_yolo_to_tlwh(yolo))
    listed = tlwh.tolist()  # FiftyOne hands boxes over as lists of floats
    np.testing.assert_array_equal(B.fiftyone_to_xyxy(listed, 640, 480), _old_review_tlwh_to_xyxy(listed, 640, 480))
    np.testing.assert_array_equal(B.fiftyone_to_xyxy(listed, 1.0, 1.0), _old_merge_tlwh_to_xyxy(listed))
    table = B.fiftyone_to_yolo(listed).astype(np.float32)
    np.testing.assert_array_equal(table, _old_table_tlwh_to_yolo(listed))
    for empty in ([], np.zeros((0, 4))):
        assert B.fiftyone_to_yolo(empty).astype(np.float32).shape == _old_table_tlwh_to_yolo([]).shape == (0, 4)
