import json
from pathlib import Path

import numpy as np
import pytest

from cvactive.errors import ConfigError
from cvactive.porch import PorchRecipe, render_scene, write_dataset
from cvactive.sources import iter_frames


def class_counts(root: Path) -> np.ndarray:
    ids = [int(line.split()[0]) for f in root.glob("labels/*/*.txt") for line in f.read_text().splitlines()]
    return np.bincount(ids, minlength=3)


def test_porch_data_set_shape_and_skews(porch_data):
    root = porch_data.parent
    assert len(list(root.glob("images/train/*.jpg"))) == 60 and len(list(root.glob("images/val/*.jpg"))) == 20
    counts = class_counts(root)
    assert counts[0] > counts[1] > counts[2] > 0  # brown > envelope > yellow
    meta = json.loads((root / "meta.json").read_text())
    night = sum(m["night"] for m in meta.values())
    assert 0 < night < len(meta) * 0.35
    centres = [float(line.split()[1]) for f in root.glob("labels/*/*.txt") for line in f.read_text().splitlines()]
    assert np.mean(np.array(centres) < 0.5) > 0.6  # skewed to the left


def test_porch_is_deterministic(tmp_path):
    recipe = PorchRecipe.load(train=5, val=2)
    a = write_dataset(tmp_path / "a", recipe, video=False).parent
    b = write_dataset(tmp_path / "b", recipe, video=False).parent
    for f in a.glob("labels/*/*.txt"):
        assert f.read_text() == (b / f.relative_to(a)).read_text()
    c = write_dataset(tmp_path / "c", PorchRecipe.load(train=5, val=2, seed=1), video=False).parent
    assert any(f.read_text() != (c / f.relative_to(a)).read_text() for f in a.glob("labels/*/*.txt"))


def test_masks_match_boxes():
    scene = render_scene(PorchRecipe(objects_per_image=(3, 3), empty_fraction=0), np.random.default_rng(3))
    assert len(scene.boxes) == len(scene.masks) > 0
    for box, mask in zip(scene.boxes, scene.masks):
        ys, xs = np.nonzero(mask)
        x1, y1, x2, y2 = box
        assert xs.min() >= x1 and xs.max() < x2 and ys.min() >= y1 and ys.max() < y2


def test_porch_video_is_readable(porch_data):
    frames = list(iter_frames(porch_data.parent / "videos" / "porch.mp4", stride=10))
    assert len(frames) == 6 and frames[0][0].shape == (256, 320, 3)


def test_bad_recipe():
    with pytest.raises(ConfigError, match="valid"):
        PorchRecipe(classes=("brown_box", "piano"), class_weights=(1, 1))
    with pytest.raises(ConfigError, match="unknown option"):
        PorchRecipe.load(colour="red")
