"""Labels stay right through every geometric recipe: each output box matches its transformed mask.

Porch scenes come with instance masks. Image, masks and boxes go through the same albumentations
pipeline (the recipe as shipped); every kept box must match the bounding box of its own
transformed mask (IoU >= 0.9), and every dropped box must have lost most of its mask.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cvactive.porch import PorchRecipe, render_scene
from cvactive.synthesis import _albu, load_recipes

RECIPES = load_recipes()
#: Boxes at least this many pixels on their short side are held to IoU >= 0.9 with their mask's box.
MIN_SIDE = 12
GEOMETRIC = sorted(name for name, r in RECIPES.items() if r.geometric and r.kind == "transform")


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@pytest.fixture(scope="module")
def scenes():
    recipe = PorchRecipe(width=480, height=384, objects_per_image=(2, 3), empty_fraction=0.0, night_fraction=0.0)
    rng = np.random.default_rng(11)
    out = []
    for _ in range(24):
        s = render_scene(recipe, rng)
        # Keep instances whose visible mask is its whole box (later packages may occlude earlier ones).
        keep = [i for i in range(len(s.boxes)) if iou(mask_box(s.masks[i]), s.boxes[i]) > 0.98]
        out.append((cv2.cvtColor(s.image, cv2.COLOR_BGR2RGB), s.boxes[keep], s.classes[keep], s.masks[keep]))
    return out


def test_every_geometric_recipe_is_covered():
    assert {"zoom_out", "zoom_in", "shift", "flip", "rotate"} <= set(GEOMETRIC)
    assert not RECIPES["night"].geometric and RECIPES["copy_paste"].geometric


@pytest.mark.parametrize("name", GEOMETRIC)
def test_boxes_match_transformed_masks(name, scenes):
    recipe = RECIPES[name]
    compose = _albu.build_compose(
        recipe.pipeline,
        min_visibility=recipe.bbox.min_visibility,
        min_area=recipe.bbox.min_area,
        clip=recipe.bbox.clip,
        seed=0,
    )
    checked = dropped = 0
    for k, (image, boxes, classes, masks) in enumerate(scenes):
        res = _albu.apply(compose, image, boxes, classes, seed=1000 + k, masks=list(masks))
        assert res["image"].shape[:2] == res["masks"][0].shape[:2]
        for box, inst, cls in zip(res["boxes"], res["instances"], res["classes"]):
            assert cls == classes[inst]
            mb = mask_box(res["masks"][inst])
            assert mb is not None, f"{name}: a box survived whose mask vanished"
            if min(mb[2] - mb[0], mb[3] - mb[1]) >= MIN_SIDE:
                assert iou(box, mb) >= 0.9, f"{name} seed {1000 + k}: box {box} vs mask box {mb}"
                checked += 1
            else:  # a few pixels across: the mask's pixel grid alone moves IoU; edges must agree to a pixel
                assert np.abs(box - mb).max() <= 1.5, f"{name} seed {1000 + k}: box {box} vs mask box {mb}"
        for inst in sorted(set(range(len(boxes))) - set(res["instances"].tolist())):
            before = masks[inst].sum()
            after = res["masks"][inst].astype(bool).sum()
            scale = (res["image"].shape[0] * res["image"].shape[1]) / (image.shape[0] * image.shape[1])
            # Dropped: little of the (area-scaled) mask is left, relative to the visibility threshold.
            assert after < before * max(scale, 1.0) * 1.3 * max(recipe.bbox.min_visibility, 0.05) or after < 40
            dropped += 1
    assert checked > 30
    if name == "flip":
        assert dropped == 0
