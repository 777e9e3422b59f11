"""Object copy-paste: paste cut-out instances onto a frame, away from the objects already there.

Pure numpy (and OpenCV for resizing). A patch is a rectangle cut from a labeled box, so its new
label is exactly the rectangle it is pasted into. A placement is accepted only when the patch
covers at most ``max_overlap`` of every box already in the frame (existing or pasted), and those
boxes cover at most ``max_overlap`` of the patch, so existing labels stay true.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cvactive.synthesis.recipes import CopyPasteOptions


@dataclass
class Patch:
    """One instance to paste.

    Attributes:
        pixels: ``(h, w, 3)`` uint8, the instance's box cut from its frame.
        class_id: its class.
        rel_size: ``(w, h)`` of the box relative to its own frame's width and height.
        source: where it was cut from (image path), for provenance.
        source_box: its pixel ``xyxy`` box in that image.
    """

    pixels: np.ndarray
    class_id: int
    rel_size: tuple[float, float]
    source: str = ""
    source_box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)


def overlap_ok(box: np.ndarray, others: np.ndarray, max_overlap: float) -> bool:
    """Whether ``box`` (4,) covers at most ``max_overlap`` of each of ``others`` (N, 4) and vice versa."""
    if not len(others):
        return True
    o = np.asarray(others, np.float64).reshape(-1, 4)
    ix = np.clip(np.minimum(box[2], o[:, 2]) - np.maximum(box[0], o[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], o[:, 3]) - np.maximum(box[1], o[:, 1]), 0, None)
    inter = ix * iy
    area_o = np.clip((o[:, 2] - o[:, 0]) * (o[:, 3] - o[:, 1]), 1e-9, None)
    area_b = max((box[2] - box[0]) * (box[3] - box[1]), 1e-9)
    return bool(np.all(inter / area_o <= max_overlap) and np.all(inter / area_b <= max_overlap))


def _alpha(h: int, w: int, feather: int) -> np.ndarray:
    """``(h, w, 1)`` blend weights: 1 inside, a linear ramp over ``feather`` pixels at the edges."""
    if feather <= 0:
        return np.ones((h, w, 1), np.float32)
    ramp_y = np.minimum(np.arange(h) + 1, np.arange(h)[::-1] + 1) / (feather + 1)
    ramp_x = np.minimum(np.arange(w) + 1, np.arange(w)[::-1] + 1) / (feather + 1)
    a = np.minimum(np.clip(ramp_y, 0, 1)[:, None], np.clip(ramp_x, 0, 1)[None, :])
    return a.astype(np.float32)[..., None]


def paste(
    image: np.ndarray,
    boxes: np.ndarray,
    classes: np.ndarray,
    patches: Sequence[Patch],
    rng: np.random.Generator,
    options: CopyPasteOptions,
    *,
    centre_y: Sequence[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, object]]]:
    """Paste ``patches`` onto ``image`` where they do not overlap existing boxes.

    Args:
        image: ``(H, W, 3)`` uint8 destination.
        boxes: ``(N, 4)`` pixel ``xyxy`` boxes already in it.
        classes: ``(N,)`` their class ids.
        patches: the instances to paste (each tried ``options.attempts`` times).
        rng: the random generator (placement and scale).
        options: the copy-paste options.
        centre_y: per patch, normalised box-centre heights seen for its class; a placement's height is
            drawn near one of them (so packages stay on the floor, fish in the water). ``None``: anywhere.

    Returns:
        The new image, boxes ``(N + P, 4)``, classes, and one dict per pasted patch (its source,
        source box, new box, scale). Patches with no room are left out.
    """
    import cv2

    out = image.copy()
    height, width = out.shape[:2]
    all_boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    all_classes = np.asarray(classes, np.int64).reshape(-1)
    done: list[dict[str, object]] = []
    for k, patch in enumerate(patches):
        for _ in range(options.attempts):
            scale = float(rng.uniform(*options.scale))
            pw = round(patch.rel_size[0] * width * scale)
            ph = round(patch.rel_size[1] * height * scale)
            if pw < options.min_size or ph < options.min_size or pw > width * 0.6 or ph > height * 0.6:
                continue
            x1 = int(rng.integers(0, width - pw + 1))
            ys = centre_y[k] if centre_y is not None and len(centre_y[k]) else None
            if ys is not None:
                cy = float(rng.choice(ys)) * height + rng.normal(0, 0.05 * height)
                y1 = int(np.clip(round(cy - ph / 2), 0, height - ph))
            else:
                y1 = int(rng.integers(0, height - ph + 1))
            box = np.array([x1, y1, x1 + pw, y1 + ph], np.float32)
            if not overlap_ok(box, all_boxes, options.max_overlap):
                continue
            pix = cv2.resize(patch.pixels, (pw, ph), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
            alpha = _alpha(ph, pw, options.feather)
            region = out[y1 : y1 + ph, x1 : x1 + pw].astype(np.float32)
            out[y1 : y1 + ph, x1 : x1 + pw] = np.clip(alpha * pix + (1 - alpha) * region + 0.5, 0, 255).astype(np.uint8)
            all_boxes = np.vstack([all_boxes, box[None]])
            all_classes = np.append(all_classes, patch.class_id)
            done.append(
                {
                    "source": patch.source,
                    "source_box": [round(float(v), 2) for v in patch.source_box],
                    "class_id": int(patch.class_id),
                    "box": [float(v) for v in box],
                    "scale": round(scale, 4),
                }
            )
            break
    return out, all_boxes, all_classes, done
