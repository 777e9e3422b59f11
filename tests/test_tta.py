"""TTA consistency: view geometry, the per-box maths, and real detections under real views."""

import cv2
import numpy as np
import pytest
from builders import from_rows as record

from cvactive.consistency.tta import DEFAULT_VIEWS, View, mapped_back, tta_box_scores, views_by_name
from cvactive.detect.scorer import Scorer
from cvactive.errors import ConfigError, MissingClassScoresError
from cvactive.record import ImageRecord


def forward(view: View, xyxy, w, h):
    ax, bx, ay, by = view.affine(w, h)
    b = np.asarray(xyxy, np.float64)
    x, y = b[:, [0, 2]] * ax + bx, b[:, [1, 3]] * ay + by
    return np.stack([x.min(1), y.min(1), x.max(1), y.max(1)], 1)


@pytest.mark.parametrize("view", [*DEFAULT_VIEWS, View("all", flip=True, scale=0.7, shift=(0.1, 0.05))])
def test_boxes_back_inverts_the_view(view):
    boxes = np.array([[10, 20, 60, 90], [120, 5, 190, 40]], np.float32)
    np.testing.assert_allclose(view.boxes_back(forward(view, boxes, 200, 100), 200, 100), boxes, atol=1e-3)


@pytest.mark.parametrize("view", [*DEFAULT_VIEWS, View("all", flip=True, scale=0.7, shift=(0.1, 0.05))])
def test_view_moves_image_content_where_the_box_map_says(view):
    image = np.zeros((100, 200, 3), np.uint8)
    image[20:60, 30:90] = 255  # the box [30, 20, 90, 60]
    out = view.apply(image)
    assert out.shape[:2] == view.size(200, 100)[::-1]
    ys, xs = np.nonzero(out[..., 0] > 200)
    expected = forward(view, [[30, 20, 90, 60]], 200, 100)[0]
    np.testing.assert_allclose([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], expected, atol=2)
    # the shift pads the canvas: the whole image is still there
    assert (out[..., 0] > 200).sum() == pytest.approx(60 * 40 * view.scale**2, rel=0.1)


def test_stable_moved_and_vanished_boxes():
    rows = [[0.9, 0.05], [0.8, 0.1], [0.6, 0.3]]
    base = record([[0, 0, 50, 50], [100, 0, 150, 50], [60, 60, 90, 90]], rows)
    # view: box 0 identical, box 1 moved by 10 px, box 2 gone; an extra box nobody matches
    view = record([[0, 0, 50, 50], [110, 0, 160, 50], [10, 60, 20, 70]], [[0.9, 0.05], [0.1, 0.8], [0.5, 0.5]])
    s = tta_box_scores(base, [view, base])
    iou = (40 * 50) / (2 * 50 * 50 - 40 * 50)
    np.testing.assert_allclose(s["tta_localization"], [0.0, 1 - iou, 1.0])
    assert s["tta_consistency"][0] == 0.0 and 0.3 < s["tta_consistency"][1] < 1.0 and s["tta_consistency"][2] == 1.0
    mean = tta_box_scores(base, [view, base], reduce="mean")
    np.testing.assert_allclose(mean["tta_localization"], [0.0, (1 - iou) / 2, 0.5])


def test_edge_cases_and_errors():
    empty = ImageRecord("img", 10, 10, class_scores=np.zeros((0, 2)))
    assert all(v.shape == (0,) for v in tta_box_scores(empty, [empty]).values())
    base = record([[0, 0, 5, 5]], [[0.9, 0.1]], width=10, height=10)
    assert tta_box_scores(base, [empty])["tta_localization"].tolist() == [1.0]  # nothing in the view
    with pytest.raises(ConfigError, match="at least one view"):
        tta_box_scores(base, [])
    with pytest.raises(ConfigError, match="valid reductions: max, mean"):
        tta_box_scores(base, [base], reduce="min")
    no_rows = ImageRecord("img", 10, 10, xyxy=[[0, 0, 5, 5]], confidence=[0.9], class_id=[0])
    with pytest.raises(MissingClassScoresError):
        tta_box_scores(no_rows, [base])
    with pytest.raises(ConfigError, match="valid views: hflip, scale, shift"):
        views_by_name(["hflip", "rotate"])
    with pytest.raises(ConfigError, match="scale"):
        View("tiny", scale=0.0)


def test_scorer_aggregates_detector_measures_and_refuses_missing_ones():
    base = record([[0, 0, 50, 50], [100, 0, 150, 50]], [[0.9, 0.1], [0.6, 0.4]])
    base.box_scores["tta_localization"] = np.array([0.1, 0.5])
    out = Scorer(measures=("entropy", "tta_localization"), aggregations=("max", "mean"))(base)
    assert out.image_scores["tta_localization_max"] == 0.5
    assert out.image_scores["tta_localization_mean"] == pytest.approx(0.3)
    with pytest.raises(ConfigError, match="MeasuredDetector"):
        Scorer(measures=("tta_consistency",))(base)
    with pytest.raises(ConfigError, match="tta_localization"):
        Scorer(measures=("tta_loc",))


class OccludingFlip(View):
    """A mirror view that also greys out part of the mirrored image (in original coordinates)."""

    def __init__(self, region):
        super().__init__("hflip-occluded", flip=True)
        object.__setattr__(self, "region", region)

    def apply(self, image):
        out = super().apply(image)
        x1, y1, x2, y2 = self.region
        w = image.shape[1]
        out[y1:y2, w - x2 : w - x1] = 114
        return out


@pytest.mark.slow
def test_real_boxes_unstable_under_flip_score_higher(openvino_model, ultralytics_images):
    from cvactive.consistency.measured import MeasuredDetector
    from cvactive.detect.model import Detector

    detector = Detector(openvino_model)
    image = cv2.imread(ultralytics_images["bus"])
    (plain,) = detector.predict([image])
    people = np.flatnonzero((plain.class_id == 0) & (plain.confidence > 0.8))
    assert len(people) >= 3
    target = people[np.argmin(plain.xyxy[people, 0] - 224)]  # the person in the middle, x ~ 224..341
    x1, y1, x2, y2 = plain.xyxy[target].astype(int)
    lower_half = (x1 - 5, (y1 + y2) // 2, x2 + 5, y2 + 5)

    flip = MeasuredDetector(detector, ["tta_localization", "tta_consistency"], views=[View("hflip", flip=True)])
    occluded = MeasuredDetector(detector, ["tta_localization"], views=[OccludingFlip(lower_half)])
    (stable,) = flip.predict([image])
    (unstable,) = occluded.predict([image])
    loc = stable.box_scores["tta_localization"]
    # the real model is nearly flip-equivariant on the confident people
    assert np.all(loc[people] < 0.15)
    assert np.all(stable.box_scores["tta_consistency"][people] < 0.05)
    # hiding the lower half of one person in the mirrored view moves that box: it scores higher
    moved = unstable.box_scores["tta_localization"]
    others = np.setdiff1d(people, [target])
    assert moved[target] > 0.3
    assert moved[target] > moved[others].max() + 0.2
    assert unstable.image_scores["tta_localization_max"] >= moved[target]


@pytest.mark.slow
def test_default_views_on_real_images(openvino_model, ultralytics_images):
    from cvactive.consistency.measured import MeasuredDetector
    from cvactive.detect.model import Detector

    detector = Detector(openvino_model)
    images = [cv2.imread(p) for p in ultralytics_images.values()]
    measured = MeasuredDetector(detector, ["tta_localization", "tta_consistency"])
    records = measured.predict(images)
    for rec, plain in zip(records, detector.predict(images)):
        np.testing.assert_allclose(rec.xyxy, plain.xyxy)  # the written boxes are the plain ones
        for name in ("tta_localization", "tta_consistency"):
            s = rec.box_scores[name]
            assert s.shape == (len(rec),) and np.all((s >= 0) & (s <= 1))
        # confident boxes are more stable than the least confident one
        order = np.argsort(-rec.confidence)
        assert rec.box_scores["tta_localization"][order[0]] < 0.15
    # mapping a real view's boxes back lands them on the original boxes
    view = DEFAULT_VIEWS[2]
    (base,) = detector.predict(images[:1])
    (shifted,) = detector.predict([view.apply(images[0])])
    back = mapped_back(shifted, view, base)
    assert back.width == base.width and np.all(back.xyxy[:, 2] <= base.width)
