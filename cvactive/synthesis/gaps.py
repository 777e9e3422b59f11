"""Where a labeled set is thin: class counts, brightness, box positions and sizes (pure numpy).

A :class:`Profile` holds what the gap analysis needs of a data set, one value per image and per
box, so the analysis never re-reads an image. :func:`find_gaps` compares each share with its
target and returns the :class:`Gap` s below it; :func:`gap_share` measures a gap's share in any
profile, which is how the synthesis summary reports the before and after of each gap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field

from cvactive.declare.fields import Declared, option
from cvactive.declare.ranges import Grey, Prob
from cvactive.errors import ConfigError

Share = Annotated[float, Field(gt=0, le=1)]
GapKind = Literal["class", "dark", "bright", "small_objects", "position"]
SIDES = ("left", "right")


@dataclass(frozen=True)
class GapThresholds(Declared):
    """What counts as thin, and the thresholds that define each condition.

    Attributes:
        rare_ratio: a class is rare when its box share is below ``rare_ratio / num_classes``.
        dark_threshold: an image whose mean grey level (0-255) is below this is a dark (night) frame.
        min_dark_share: dark frames are a gap when fewer than this share of the images.
        bright_threshold: an image whose mean grey level is above this is a bright (glare) frame.
        min_bright_share: bright frames are a gap when fewer than this share (0 turns it off).
        small_size: a box is small when ``sqrt(w * h)`` (normalised) is below this.
        min_small_share: small boxes are a gap when fewer than this share of the boxes.
        min_side_share: a half of the frame (left or right) is a gap when it holds fewer box
            centres than this share.
    """

    rare_ratio: Share = option(0.5, "a class is rare when its box share is below rare_ratio / classes")
    dark_threshold: Grey = option(85.0, "an image darker than this mean grey level (0-255) is a night frame")
    min_dark_share: Prob = option(0.25, "night frames are a gap below this share of the images")
    bright_threshold: Grey = option(190.0, "an image brighter than this mean grey level is a glare frame")
    min_bright_share: Prob = option(0.0, "glare frames are a gap below this share (0: off)")
    small_size: Share = option(0.08, "a box is small when sqrt(w * h), normalised, is below this")
    min_small_share: Prob = option(0.1, "small boxes are a gap below this share of the boxes")
    min_side_share: Prob = option(0.35, "a half of the frame is a gap when it holds fewer box centres than this share")

    where: ClassVar[str] = "synthesize"


@dataclass
class Profile:
    """Per-image and per-box facts of a set of labeled images.

    Attributes:
        luma: ``(I,)`` float32 mean grey level of each image, 0-255.
        box_image: ``(B,)`` int64 index into the images of each box.
        centres: ``(B, 2)`` float32 normalised box centres ``cx cy``.
        sizes: ``(B,)`` float32 normalised box size ``sqrt(w * h)``.
        classes: ``(B,)`` int64 class id of each box.
        num_classes: the number of classes.
    """

    luma: np.ndarray
    box_image: np.ndarray
    centres: np.ndarray
    sizes: np.ndarray
    classes: np.ndarray
    num_classes: int

    @classmethod
    def empty(cls, num_classes: int) -> Profile:
        return cls(
            luma=np.zeros(0, np.float32),
            box_image=np.zeros(0, np.int64),
            centres=np.zeros((0, 2), np.float32),
            sizes=np.zeros(0, np.float32),
            classes=np.zeros(0, np.int64),
            num_classes=num_classes,
        )

    @classmethod
    def from_images(
        cls, luma: Sequence[float], boxes: Sequence[np.ndarray], classes: Sequence[np.ndarray], num_classes: int
    ) -> Profile:
        """From each image's grey level, normalised ``cx cy w h`` boxes ``(N, 4)`` and class ids ``(N,)``."""
        if not (len(luma) == len(boxes) == len(classes)):
            raise ConfigError(f"luma, boxes and classes differ in length: {len(luma)}, {len(boxes)}, {len(classes)}")
        b = [np.asarray(x, np.float32).reshape(-1, 4) for x in boxes]
        allb = np.concatenate(b) if b else np.zeros((0, 4), np.float32)
        return cls(
            luma=np.asarray(luma, np.float32).reshape(-1),
            box_image=np.repeat(np.arange(len(b), dtype=np.int64), [len(x) for x in b]),
            centres=allb[:, :2].copy(),
            sizes=np.sqrt(np.clip(allb[:, 2] * allb[:, 3], 0, None)).astype(np.float32),
            classes=np.concatenate([np.asarray(c, np.int64).reshape(-1) for c in classes])
            if classes
            else np.zeros(0, np.int64),
            num_classes=num_classes,
        )

    @property
    def images(self) -> int:
        return len(self.luma)

    @property
    def boxes(self) -> int:
        return len(self.classes)

    def concat(self, other: Profile) -> Profile:
        """This profile followed by ``other`` (the combined set)."""
        return Profile(
            luma=np.concatenate([self.luma, other.luma]),
            box_image=np.concatenate([self.box_image, other.box_image + self.images]),
            centres=np.concatenate([self.centres, other.centres]),
            sizes=np.concatenate([self.sizes, other.sizes]),
            classes=np.concatenate([self.classes, other.classes]),
            num_classes=max(self.num_classes, other.num_classes),
        )


@dataclass(frozen=True)
class Gap:
    """One thin spot of a data set.

    Attributes:
        kind: ``class``, ``dark``, ``bright``, ``small_objects`` or ``position``.
        key: what it is about: the class name, ``dark``, ``bright``, ``small`` or the side (``right``).
        share: its share now (boxes for class / small / position, images for dark / bright).
        target: the share below which it is a gap.
        class_id: the class of a ``class`` gap.
    """

    kind: GapKind
    key: str
    share: float
    target: float
    class_id: int | None = None
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def deficit(self) -> float:
        """How far below its target it is, relative to the target (0 to 1)."""
        return float(max(0.0, self.target - self.share) / self.target) if self.target > 0 else 0.0


def class_shares(profile: Profile) -> np.ndarray:
    """``(C,)`` share of the boxes in each class (zeros when there are no boxes)."""
    counts = np.bincount(profile.classes, minlength=profile.num_classes)[: profile.num_classes].astype(float)
    return counts / counts.sum() if counts.sum() else counts


def dark_share(profile: Profile, threshold: float) -> float:
    """Share of images whose mean grey level is below ``threshold``."""
    return float(np.mean(profile.luma < threshold)) if profile.images else 0.0


def bright_share(profile: Profile, threshold: float) -> float:
    """Share of images whose mean grey level is above ``threshold``."""
    return float(np.mean(profile.luma > threshold)) if profile.images else 0.0


def small_share(profile: Profile, size: float) -> float:
    """Share of boxes whose normalised size ``sqrt(w * h)`` is below ``size``."""
    return float(np.mean(profile.sizes < size)) if profile.boxes else 0.0


def side_share(profile: Profile, side: str) -> float:
    """Share of box centres in the left (``cx < 0.5``) or right half of the frame."""
    if side not in SIDES:
        raise ConfigError(f"unknown side {side!r}; valid: {', '.join(SIDES)}")
    if not profile.boxes:
        return 0.0
    left = profile.centres[:, 0] < 0.5
    return float(np.mean(left if side == "left" else ~left))


def gap_share(profile: Profile, gap: Gap, thresholds: GapThresholds) -> float:
    """The share ``gap`` measures, in ``profile`` (for before/after reports)."""
    if gap.kind == "class":
        shares = class_shares(profile)
        return float(shares[gap.class_id]) if gap.class_id is not None and gap.class_id < len(shares) else 0.0
    if gap.kind == "dark":
        return dark_share(profile, thresholds.dark_threshold)
    if gap.kind == "bright":
        return bright_share(profile, thresholds.bright_threshold)
    if gap.kind == "small_objects":
        return small_share(profile, thresholds.small_size)
    if gap.kind == "position":
        return side_share(profile, gap.key)
    raise ConfigError(f"unknown gap kind {gap.kind!r}")


def find_gaps(
    profile: Profile,
    names: Mapping[int, str],
    thresholds: GapThresholds | None = None,
    *,
    kinds: Sequence[str] | None = None,
) -> list[Gap]:
    """The gaps of a profile, largest relative deficit first within each kind.

    Args:
        profile: the labeled set.
        names: class id to name.
        thresholds: what counts as thin (defaults of :class:`GapThresholds`).
        kinds: only these gap kinds (default: all).
    """
    t = thresholds or GapThresholds()
    gaps: list[Gap] = []
    want = set(kinds) if kinds is not None else {"class", "dark", "bright", "small_objects", "position"}
    if "class" in want and profile.boxes:
        target = t.rare_ratio / max(1, profile.num_classes)
        shares = class_shares(profile)
        rare = [Gap("class", names.get(c, str(c)), float(s), target, c) for c, s in enumerate(shares) if s < target]
        gaps.extend(sorted(rare, key=lambda g: -g.deficit))
    if "dark" in want and profile.images:
        share = dark_share(profile, t.dark_threshold)
        if share < t.min_dark_share:
            gaps.append(Gap("dark", "dark", share, t.min_dark_share))
    if "bright" in want and profile.images:
        share = bright_share(profile, t.bright_threshold)
        if share < t.min_bright_share:
            gaps.append(Gap("bright", "bright", share, t.min_bright_share))
    if "small_objects" in want and profile.boxes:
        share = small_share(profile, t.small_size)
        if share < t.min_small_share:
            gaps.append(Gap("small_objects", "small", share, t.min_small_share))
    if "position" in want and profile.boxes:
        for side in SIDES:
            share = side_share(profile, side)
            if share < t.min_side_share:
                gaps.append(Gap("position", side, share, t.min_side_share))
    return gaps


def allocate(weights: Sequence[float], n: int) -> list[int]:
    """Split ``n`` into integer parts proportional to ``weights`` (largest remainder; each >= 1 when n allows)."""
    w = np.asarray(weights, float)
    if not len(w):
        return []
    if n <= 0:
        return [0] * len(w)
    w = np.where(w > 0, w, 0.0)
    w = w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))
    base = np.zeros(len(w), int)
    if n >= len(w):
        base += 1
    rest = n - int(base.sum())
    raw = w * rest
    parts = base + np.floor(raw).astype(int)
    order = np.argsort(-(raw - np.floor(raw)), kind="stable")
    for i in order[: n - int(parts.sum())]:
        parts[i] += 1
    return [int(x) for x in parts]
