"""Test-time-augmentation consistency: ``tta_localization`` and ``tta_consistency``.

In the spirit of CALD (Yu et al., 2022) and localisation-aware active learning (Kao et al.,
2018): the detector also predicts on augmented views of the image (a horizontal flip, a
zoom-out, a small shift), the view's boxes are mapped back into the original frame, and each
original box is matched one-to-one to a view box by IoU (Hungarian). Per box and view:

* localisation instability ``1 - IoU(box, matched view box)``;
* class inconsistency, the Jensen-Shannon divergence (bits, in [0, 1]) between the two boxes'
  normalised class distributions.

A box with no match in a view (it vanished, or moved so far that IoU < ``match_iou``) scores 1
on both. The views are then reduced per box, by default with ``max`` (the worst view), so a
box that vanishes in any view scores 1. Per-image aggregation is the usual
:func:`cvactive.measures.aggregate`.

Every view is an affine map ``x' = a x + b`` per axis, so it is exactly invertible for boxes:
:class:`View` applies it to an image (OpenCV ``warpAffine``, grey 114 padding, the YOLO
letterbox colour) and maps boxes back. The flip and the zoom-out keep the image size; the
shift pads the canvas instead of pushing content out of the frame, so an object at the border
is not cut (its instability would be the crop's, not the model's). Cost: one more forward pass
per view, all views of a batch in one call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cvactive.boxes import box_iou
from cvactive.consistency.divergence import js_divergence, reduce_views
from cvactive.errors import ConfigError, MissingClassScoresError
from cvactive.matching import hungarian_match
from cvactive.measures import TTA_MEASURES
from cvactive.record import ImageRecord


@dataclass(frozen=True)
class View:
    """One augmented view: optional horizontal flip, zoom about the centre, then a shift.

    Attributes:
        name: a label for reports.
        flip: mirror left-right.
        scale: zoom factor about the image centre (< 1 zooms out and pads with grey).
        shift: ``(dx, dy)`` translation as fractions of the image width and height; the canvas
            grows by as much, so nothing leaves the frame.
    """

    name: str
    flip: bool = False
    scale: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if not 0.05 <= self.scale <= 20.0:
            raise ConfigError(f"view {self.name!r}: scale must lie in [0.05, 20], got {self.scale}")

    def affine(self, width: int, height: int) -> tuple[float, float, float, float]:
        """``(ax, bx, ay, by)`` with ``x' = ax * x + bx`` and ``y' = ay * y + by`` in pixels."""
        s = float(self.scale)
        ax = -s if self.flip else s
        bx = (s * width / 2 if self.flip else -s * width / 2) + width / 2 + max(self.shift[0], 0.0) * width
        return ax, bx, s, (1 - s) * height / 2 + max(self.shift[1], 0.0) * height

    def size(self, width: int, height: int) -> tuple[int, int]:
        """The view's ``(width, height)``: a shift grows the canvas so that nothing is cut off."""
        return round(width * (1 + abs(self.shift[0]))), round(height * (1 + abs(self.shift[1])))

    def apply(self, image: np.ndarray) -> np.ndarray:
        """The view of a BGR ``(H, W, 3)`` image, grey (114) where nothing maps."""
        import cv2

        h, w = image.shape[:2]
        ax, bx, ay, by = self.affine(w, h)
        if self.flip and self.scale == 1.0 and self.shift == (0.0, 0.0):
            return np.ascontiguousarray(image[:, ::-1])
        m = np.array([[ax, 0.0, bx], [0.0, ay, by]], np.float64)
        return cv2.warpAffine(image, m, self.size(w, h), flags=cv2.INTER_LINEAR, borderValue=(114, 114, 114))

    def boxes_back(self, xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
        """Map ``(N, 4)`` pixel boxes found in the view back into the original frame (clipped)."""
        ax, bx, ay, by = self.affine(width, height)
        b = np.asarray(xyxy, np.float64).reshape(-1, 4)
        x = (b[:, [0, 2]] - bx) / ax
        y = (b[:, [1, 3]] - by) / ay
        out = np.stack([x.min(1), y.min(1), x.max(1), y.max(1)], axis=1)
        out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
        out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
        return out.astype(np.float32)


#: The default views: a mirror, a 0.8x zoom-out, and a shift of 6% right and 4% down.
DEFAULT_VIEWS: tuple[View, ...] = (
    View("hflip", flip=True),
    View("scale", scale=0.8),
    View("shift", shift=(0.06, 0.04)),
)
VIEWS_BY_NAME: dict[str, View] = {v.name: v for v in DEFAULT_VIEWS}


def views_by_name(names: Sequence[str]) -> tuple[View, ...]:
    """The built-in views named (``hflip``, ``scale``, ``shift``); unknown names raise ConfigError."""
    unknown = [n for n in names if n not in VIEWS_BY_NAME]
    if unknown or not names:
        raise ConfigError(f"unknown TTA view(s) {unknown or list(names)}; valid views: {', '.join(VIEWS_BY_NAME)}")
    return tuple(VIEWS_BY_NAME[n] for n in names)


def tta_box_scores(
    base: ImageRecord,
    views: Sequence[ImageRecord],
    *,
    match_iou: float = 0.3,
    reduce: str = "max",
) -> dict[str, np.ndarray]:
    """Per-box TTA measures of ``base`` against view records already mapped back to its frame.

    Args:
        base: the record of the original image.
        views: one record per view, boxes in the original frame (see :meth:`View.boxes_back`).
        match_iou: the least IoU for a view box to count as the same object.
        reduce: how the per-view scores of a box combine: ``max`` (worst view) or ``mean``.

    Returns:
        ``{"tta_localization": (N,), "tta_consistency": (N,)}``, float64 in [0, 1].
    """
    n = len(base)
    if not views:
        raise ConfigError("TTA needs at least one view")
    if n == 0:
        return {name: np.zeros(0) for name in TTA_MEASURES}
    base_rows = base.require_class_scores("tta_consistency")
    loc = np.ones((len(views), n))
    cls = np.ones((len(views), n))
    for v, view in enumerate(views):
        if len(view) == 0:
            continue
        if view.class_scores is None:
            raise MissingClassScoresError(f"tta_consistency needs class scores in every view record ({view.key})")
        iou = box_iou(base.xyxy, view.xyxy)
        match = hungarian_match(iou, match_iou)
        hit = match >= 0
        loc[v, hit] = 1.0 - iou[hit, match[hit]]
        cls[v, hit] = js_divergence(base_rows[hit], view.class_scores[match[hit]])
    return {
        "tta_localization": np.clip(reduce_views(loc, reduce), 0.0, 1.0),
        "tta_consistency": np.clip(reduce_views(cls, reduce), 0.0, 1.0),
    }


def mapped_back(record: ImageRecord, view: View, base: ImageRecord) -> ImageRecord:
    """A view's record with its boxes mapped into the original frame of ``base``."""
    from dataclasses import replace

    return replace(
        record, xyxy=view.boxes_back(record.xyxy, base.width, base.height), width=base.width, height=base.height
    )
