"""The built-in synthetic porch-camera data set: packages on a doorstep, rendered from a seed.

Three classes in roughly 60/30/10 proportions (brown boxes, white envelopes, yellow boxes),
day and night lighting with night rare, and packages skewed to the left of the porch: the
imbalances a real doorstep camera shows. It is written as an Ultralytics YOLO data set
(``images/{train,val}``, ``labels/{train,val}``, ``data.yaml``) plus a short video in which
packages arrive and leave while day turns to night. Everything is deterministic for a seed.

The recipe is package data (``cvactive/resources/datasets/porch.yaml``, documented in the
repository's ``datasets/porch.yaml``); :class:`PorchRecipe` holds its values.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cvactive._config import DATASET_DIR, config_schema, load_yaml
from cvactive.boxes import box_iou, xyxy_to_yolo
from cvactive.config import check_kwargs
from cvactive.errors import ConfigError

#: The shipped recipe (package data; ``datasets/porch.yaml`` of the repository is a documented copy).
RECIPE_PATH = DATASET_DIR / "porch.yaml"
CLASS_COLORS = {  # BGR base colours
    "brown_box": (60, 105, 150),
    "white_envelope": (235, 238, 240),
    "yellow_box": (40, 200, 235),
}


@config_schema("porch")
@dataclass(frozen=True)
class PorchRecipe:
    """Parameters of the porch data set (see ``datasets/porch.yaml``)."""

    seed: int = 0
    width: int = 320
    height: int = 256
    train: int = 240
    val: int = 80
    classes: tuple[str, ...] = ("brown_box", "white_envelope", "yellow_box")
    class_weights: tuple[float, ...] = (0.6, 0.3, 0.1)
    night_fraction: float = 0.15
    left_bias: float = 0.75
    objects_per_image: tuple[int, int] = (0, 3)
    empty_fraction: float = 0.05
    video_seconds: float = 30.0
    video_fps: float = 10.0

    def __post_init__(self) -> None:
        if len(self.classes) != len(self.class_weights):
            raise ConfigError("classes and class_weights must have the same length")
        unknown = [c for c in self.classes if c not in CLASS_COLORS]
        if unknown:
            raise ConfigError(f"unknown porch classes {unknown}; valid: {', '.join(CLASS_COLORS)}")
        if self.width < 64 or self.height < 64:
            raise ConfigError(f"porch images must be at least 64x64, got {self.width}x{self.height}")

    @classmethod
    def load(cls, path: str | Path = RECIPE_PATH, **overrides: Any) -> PorchRecipe:
        """The recipe from a YAML file, with keyword overrides (every key checked, see :mod:`cvactive.schemas`)."""
        data = load_yaml(path)
        data.update(overrides)
        check_kwargs(cls, data, str(path))
        for key in ("classes", "class_weights", "objects_per_image"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


@dataclass
class Scene:
    """One rendered porch image with its instances."""

    image: np.ndarray  # (H, W, 3) uint8 BGR
    boxes: np.ndarray  # (N, 4) float32 xyxy pixels
    classes: np.ndarray  # (N,) int64
    masks: np.ndarray  # (N, H, W) bool, each instance's visible pixels
    night: bool = False
    meta: dict[str, Any] = field(default_factory=dict)


def _background(rng: np.random.Generator, w: int, h: int) -> tuple[np.ndarray, int]:
    img = np.empty((h, w, 3), np.float32)
    horizon = int(h * rng.uniform(0.5, 0.62))
    wall = np.array(rng.uniform([150, 160, 170], [205, 215, 225]), np.float32)
    img[:horizon] = wall
    for y in range(0, horizon, int(rng.integers(9, 15))):  # siding lines
        img[y : y + 1] *= 0.88
    floor = np.array(rng.uniform([70, 95, 120], [110, 135, 165]), np.float32)
    img[horizon:] = floor
    for x in range(int(rng.integers(0, 20)), w, int(rng.integers(24, 40))):  # plank seams
        img[horizon:, x : x + 1] *= 0.8
    door_w = int(w * rng.uniform(0.18, 0.25))
    door_x = int(rng.uniform(0.55, 0.95) * (w - door_w))
    door_top = int(horizon * rng.uniform(0.05, 0.2))
    img[door_top:horizon, door_x : door_x + door_w] = rng.uniform([40, 50, 70], [90, 90, 120])
    knob_y, knob_x = (door_top + horizon) // 2, door_x + int(door_w * 0.8)
    img[knob_y - 2 : knob_y + 2, knob_x - 2 : knob_x + 2] = (60, 170, 200)
    mat_w = int(door_w * 1.3)
    mat_x = max(0, door_x - (mat_w - door_w) // 2)
    img[horizon + 2 : horizon + int((h - horizon) * 0.25), mat_x : mat_x + mat_w] = rng.uniform(
        [30, 40, 50], [60, 80, 90]
    )
    img += rng.normal(0, 3.0, img.shape).astype(np.float32)
    return img, horizon


def _draw_package(
    img: np.ndarray, rng: np.random.Generator, name: str, x1: int, y1: int, x2: int, y2: int
) -> np.ndarray:
    """Draw one package filling the box; return its mask."""
    h, w = img.shape[:2]
    mask = np.zeros((h, w), bool)
    base = np.array(CLASS_COLORS[name], np.float32) * rng.uniform(0.85, 1.1)
    mask[y1:y2, x1:x2] = True
    img[y1:y2, x1:x2] = base
    bh, bw = y2 - y1, x2 - x1
    if name == "white_envelope":
        import cv2

        flap = tuple(float(v) for v in base * 0.7)
        mid = (x1 + bw // 2, y1 + int(bh * 0.5))
        cv2.line(img, (x1, y1), mid, flap, 1)
        cv2.line(img, (x2 - 1, y1), mid, flap, 1)
        img[y1:y2, x1 : x1 + 1] *= 0.85
        img[y1:y2, x2 - 1 : x2] *= 0.85
    else:
        top = max(2, int(bh * rng.uniform(0.2, 0.3)))
        img[y1 : y1 + top, x1:x2] = base * 1.15  # lit top face
        img[y1 + top :, x1:x2][: y2 - y1 - top, int(bw * 0.75) :] *= 0.8  # shaded side
        tape_x = x1 + bw // 2 - max(1, bw // 14)
        img[y1:y2, tape_x : tape_x + max(2, bw // 7)] = base * 0.7 + 40  # tape
        img[y1 + top - 1 : y1 + top + 1, x1:x2] *= 0.7  # edge
    np.clip(img, 0, 255, out=img)
    return mask


def _night(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    dark = img * rng.uniform(0.18, 0.3)
    dark[..., 0] *= 1.25  # bluish
    # A porch light: a soft glow near the top.
    cy, cx = int(h * rng.uniform(0.05, 0.2)), int(w * rng.uniform(0.3, 0.8))
    yy, xx = np.mgrid[0:h, 0:w]
    glow = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (0.35 * w) ** 2))[..., None]
    dark = dark * (1 + 1.2 * glow)
    dark += rng.normal(0, 6.0, dark.shape)
    return np.asarray(np.clip(dark, 0, 255), np.float32)


def render_scene(recipe: PorchRecipe, rng: np.random.Generator, *, night: bool | None = None) -> Scene:
    """Render one porch image and its labels (boxes, classes, instance masks)."""
    w, h = recipe.width, recipe.height
    img, horizon = _background(rng, w, h)
    if night is None:
        night = bool(rng.random() < recipe.night_fraction)
    lo, hi = recipe.objects_per_image
    n = 0 if rng.random() < recipe.empty_fraction else int(rng.integers(max(lo, 1), hi + 1))
    weights = np.asarray(recipe.class_weights, float)
    weights = weights / weights.sum()
    boxes: list[list[float]] = []
    classes: list[int] = []
    masks: list[np.ndarray] = []
    for _ in range(n):
        c = int(rng.choice(len(recipe.classes), p=weights))
        name = recipe.classes[c]
        for _attempt in range(20):
            if name == "white_envelope":
                bw = int(w * rng.uniform(0.12, 0.2))
                bh = int(bw * rng.uniform(0.45, 0.65))
            else:
                bw = int(w * rng.uniform(0.12, 0.24))
                bh = int(bw * rng.uniform(0.7, 1.05))
            left = rng.random() < recipe.left_bias
            cx = rng.uniform(0.05, 0.5) if left else rng.uniform(0.5, 0.95)
            x1 = int(np.clip(cx * w - bw / 2, 0, w - bw))
            bottom = int(rng.uniform(horizon + (h - horizon) * 0.3, h - 2))
            y1 = max(0, bottom - bh)
            x2, y2 = x1 + bw, min(h, y1 + bh)
            cand = np.array([x1, y1, x2, y2], float)
            if not boxes or box_iou(cand, boxes).max() < 0.05:
                break
        else:
            continue
        mask = _draw_package(img, rng, name, x1, y1, x2, y2)
        for m in masks:  # later packages occlude earlier ones
            m &= ~mask
        boxes.append([x1, y1, x2, y2])
        classes.append(c)
        masks.append(mask)
    if night:
        img = _night(img, rng)
    image = np.clip(img, 0, 255).astype(np.uint8)
    return Scene(
        image=image,
        boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
        classes=np.asarray(classes, np.int64),
        masks=np.asarray(masks, bool).reshape(-1, h, w),
        night=night,
    )


def yolo_lines(boxes: np.ndarray, classes: np.ndarray, width: int, height: int) -> list[str]:
    """YOLO label lines (``class cx cy w h``, normalised) for pixel ``xyxy`` boxes."""
    return [
        f"{int(c)} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}"
        for (cx, cy, bw, bh), c in zip(xyxy_to_yolo(boxes, width, height), classes)
    ]


def write_dataset(out: str | Path, recipe: PorchRecipe | None = None, *, video: bool = True) -> Path:
    """Render the porch data set into ``out`` and return the path of its ``data.yaml``.

    A folder that already holds a data set made from the same recipe is reused as it is.
    """
    import cv2
    import yaml

    recipe = recipe or PorchRecipe.load()
    root = Path(out).resolve()
    stamp = root / "recipe.json"
    data_yaml = root / "data.yaml"
    wanted = json.dumps(asdict(recipe), sort_keys=True)
    if (
        data_yaml.exists()
        and stamp.exists()
        and stamp.read_text() == wanted
        and (not video or video_path(root).exists())
    ):
        return data_yaml
    rng = np.random.default_rng(recipe.seed)
    meta: dict[str, dict[str, Any]] = {}
    for split, count in (("train", recipe.train), ("val", recipe.val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            scene = render_scene(recipe, rng)
            name = f"porch_{split}_{i:05d}"
            cv2.imwrite(str(root / "images" / split / f"{name}.jpg"), scene.image, [cv2.IMWRITE_JPEG_QUALITY, 92])
            lines = yolo_lines(scene.boxes, scene.classes, recipe.width, recipe.height)
            (root / "labels" / split / f"{name}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
            meta[f"{split}/{name}.jpg"] = {"night": scene.night, "objects": len(scene.classes)}
    (root / "meta.json").write_text(json.dumps(meta, indent=0, sort_keys=True))
    data = {
        "path": str(root),
        "train": "images/train",
        "val": "images/val",
        "names": dict(enumerate(recipe.classes)),
    }
    data_yaml.write_text(yaml.safe_dump(data, sort_keys=False))
    if video:
        write_video(video_path(root), recipe)
    stamp.write_text(wanted)
    return data_yaml


def video_path(root: str | Path) -> Path:
    """Where :func:`write_dataset` puts the porch video."""
    return Path(root) / "videos" / "porch.mp4"


def write_video(path: str | Path, recipe: PorchRecipe | None = None) -> Path:
    """A porch video: packages arrive and leave, a slow day-to-night fade, sensor noise.

    Long stretches show the same scene (as a real doorstep camera does), which is what
    near-duplicate suppression has to cope with.

    Raises:
        VideoError: OpenCV cannot write an ``mp4v`` video at ``path``.
    """
    from cvactive.sources import write_video as encode

    recipe = recipe or PorchRecipe.load()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    encode(path, _video_frames(recipe), fps=recipe.video_fps, size=(recipe.width, recipe.height))
    return path


def _video_frames(recipe: PorchRecipe) -> Iterator[np.ndarray]:
    """The frames of the porch video, BGR ``uint8`` ``(height, width, 3)``, made one at a time."""
    rng = np.random.default_rng(recipe.seed + 1)
    n_frames = int(recipe.video_seconds * recipe.video_fps)
    # The scene changes every few seconds: a new arrangement of packages on a fixed porch.
    seg = max(1, int(recipe.video_fps * rng.uniform(2.0, 4.0)))
    scene_rng_seed = int(rng.integers(1 << 30))
    base_rng = np.random.default_rng(scene_rng_seed)
    current: np.ndarray | None = None
    for f in range(n_frames):
        if current is None or f % seg == 0:
            current = render_scene(recipe, np.random.default_rng(base_rng.integers(1 << 30)), night=False).image
        light = 1.0 - 0.75 * (f / max(1, n_frames - 1)) ** 2  # day fades to night
        frame = current.astype(np.float32) * light + rng.normal(0, 2.0, current.shape)
        yield np.clip(frame, 0, 255).astype(np.uint8)
