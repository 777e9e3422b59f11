"""YOLO label files read the way Ultralytics' label verification reads them, every problem with its line.

A label file holds one object per line: ``class cx cy w h`` (a box, normalised to [0, 1], centre
origin) or ``class x1 y1 x2 y2 x3 y3 ...`` (a polygon, as segmentation data sets write them;
its box is the polygon's extent, as Ultralytics' ``segments2boxes`` makes it). Ultralytics
(``ultralytics.data.utils.verify_image_label``) checks a whole file at a time:

* it **drops the image** (logs it as corrupt and trains without it) when any line is not
  numbers, has the wrong number of fields, mixes polygon and box rows, names a class that is not
  an integer in ``[0, nc)``, has a coordinate above 1.01 or below -0.01, or a negative size;
* it **keeps** coordinates within that 1% tolerance of [0, 1] (boxes are clipped to the image
  later), removes rows that repeat another row exactly, and keeps zero-size boxes, which
  training then drops.

Here every line is judged on its own, so the good lines of a file are kept and each bad line
is named. The problems that make Ultralytics drop the image are errors (their kinds are
:data:`ERROR_KINDS`; the health gate counts them); the ones it tolerates or repairs by itself are
warnings (:data:`WARNING_KINDS`: reported with their lines, never a gate failure). Kept boxes
are clipped to [0, 1], as Ultralytics trains them; duplicates and zero-size boxes are left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

import numpy as np

#: The one list of error kinds: the problems of a data set that make Ultralytics drop an image
#: (``verify_image_label`` logs it as corrupt and trains without it), plus missing files on
#: either side. The label reader here finds the first six; ``unreadable_image`` (an image file
#: that does not decode, which Ultralytics' ``im.verify()`` drops too) is found by the health
#: check's image pass. The health gate counts these; ``configs/health.yaml``'s ``error_kinds``
#: chooses among them (its schema is this ``Literal``).
ErrorKind = Literal[
    "out_of_range",
    "non_positive_size",
    "unknown_class",
    "malformed",
    "label_without_image",
    "image_without_label",
    "unreadable_image",
]
ERROR_KINDS: tuple[ErrorKind, ...] = get_args(ErrorKind)
#: Problems Ultralytics tolerates or repairs by itself: warnings, listed and never gated.
WarningKind = Literal["clipped", "duplicate", "zero_size", "data_yaml"]
WARNING_KINDS: tuple[WarningKind, ...] = get_args(WarningKind)
IssueKind = ErrorKind | WarningKind

#: Ultralytics' tolerance: coordinates up to 1.01 and down to -0.01 pass its check (in float32).
HIGH, LOW = np.float32(1.01), np.float32(-0.01)
_DROPPED = "Ultralytics drops this image"


@dataclass(frozen=True)
class LabelIssue:
    """One problem in a label file, a missing file or the data set's YAML, with where it is.

    Attributes:
        kind: one of :data:`ERROR_KINDS` or :data:`WARNING_KINDS`.
        path: the file.
        line: the 1-based line, or ``None`` for a whole file.
        message: what is wrong, for people.
    """

    kind: IssueKind
    path: str
    line: int | None
    message: str

    @property
    def severity(self) -> str:
        """``"warning"`` for what Ultralytics tolerates or repairs, else ``"error"``."""
        return "warning" if self.kind in WARNING_KINDS else "error"


def _polygon_box(coords: list[float]) -> list[float]:
    """``cx cy w h`` of a polygon's extent, in float32 as Ultralytics' ``segments2boxes`` computes it."""
    pts = np.asarray(coords, np.float32).reshape(-1, 2)
    lo, hi = pts.min(0), pts.max(0)
    return [*((lo + hi) / 2).tolist(), *(hi - lo).tolist()]


def _parse_line(parts: list[str], raw: str, polygons: bool, num_classes: int | None) -> tuple[Any, ...]:
    """``(class, cx cy w h, key)`` of one line, or ``(kind, message)`` of its error."""
    n = len(parts)
    if polygons and n == 5:
        return (
            "malformed",
            f"a box row among polygon rows (Ultralytics: labels mix segment and detection rows): {raw!r}",
        )
    if polygons and n % 2 == 0:
        return "malformed", f"a polygon needs x y pairs, got {n - 1} coordinates: {raw!r}"
    if not polygons and n != 5:
        return (
            "malformed",
            f"expected 5 fields (class cx cy w h) or a polygon (class x1 y1 x2 y2 ...), got {n}: {raw!r}",
        )
    try:
        nums = [float(v) for v in parts]
    except ValueError:
        return "malformed", f"not numbers: {raw!r}"
    cls, coords = nums[0], nums[1:]
    if not all(map(math.isfinite, nums)):
        return "malformed", f"non-finite value: {raw!r}"
    if not cls.is_integer() or cls < 0 or (num_classes is not None and cls >= num_classes):
        return "unknown_class", f"class id {parts[0]} not in [0, {num_classes})"
    if polygons:
        return int(cls), _polygon_box(coords), (int(cls), np.asarray(coords, np.float32).tobytes())
    return int(cls), coords, None


def parse_label_text(
    text: str, path: str, num_classes: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[LabelIssue]]:
    """Parse a label file's text as Ultralytics does; return boxes, classes, line numbers and issues.

    Returns:
        ``(N, 4)`` float32 normalised ``cx cy w h`` of the kept objects (clipped to [0, 1]),
        ``(N,)`` int64 class ids, ``(N,)`` int64 1-based line numbers, and every problem found
        (in line order).
    """
    rows = [(n, raw.split(), raw.strip()) for n, raw in enumerate(text.lstrip("\ufeff").splitlines(), 1)]
    rows = [r for r in rows if r[1]]
    polygons = any(len(parts) > 6 for _, parts, _ in rows)
    issues: list[LabelIssue] = []
    kept: list[tuple[int, int, list[float], object, str]] = []
    for lineno, parts, raw in rows:
        parsed = _parse_line(parts, raw, polygons, num_classes)
        if isinstance(parsed[0], str):
            issues.append(LabelIssue(cast(ErrorKind, parsed[0]), path, lineno, f"{parsed[1]}; {_DROPPED}"))
        else:
            kept.append((lineno, parsed[0], parsed[1], parsed[2], raw))
    vals = np.asarray([k[2] for k in kept], np.float32).reshape(-1, 4)
    boxes, reached = _clip(vals)
    good = np.zeros(len(kept), bool)
    seen: dict[object, int] = {}
    for i, (lineno, cls, _, key, raw) in enumerate(kept):
        kind, msg = _judge(vals[i], boxes[i], bool(reached[i]), seen.get((cls, vals[i].tobytes(), key)), raw)
        seen.setdefault((cls, vals[i].tobytes(), key), lineno)
        good[i] = kind in ("", "clipped")
        if kind:
            issues.append(LabelIssue(kind, path, lineno, msg))
    issues.sort(key=lambda issue: issue.line or 0)
    return (
        boxes[good],
        np.asarray([k[1] for k in kept], np.int64).reshape(-1)[good],
        np.asarray([k[0] for k in kept], np.int64).reshape(-1)[good],
        issues,
    )


def _judge(
    val: np.ndarray, box: np.ndarray, reached: bool, first: int | None, raw: str
) -> tuple[IssueKind | Literal[""], str]:
    """The kind and message of a parsed line's problem (``""`` when it is fine), Ultralytics' rules in order."""
    if (val[2:] < 0).any():
        return "non_positive_size", f"negative width or height: {raw!r}; {_DROPPED}"
    if (val > HIGH).any() or (val < LOW).any():
        return "out_of_range", f"coordinates outside [-0.01, 1.01]: {raw!r}; {_DROPPED}"
    if first is not None:
        return "duplicate", f"repeats line {first} exactly; Ultralytics keeps one of them"
    if (val[2:] == 0).any() or (box[2:] <= 0).any():
        return "zero_size", f"zero width or height: {raw!r}; Ultralytics drops this box when training"
    if reached:
        return "clipped", f"reaches outside [0, 1] within Ultralytics' 1% tolerance (kept, clipped): {raw!r}"
    return "", ""


def _clip(vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes ``cx cy w h`` clipped to [0, 1], and which ones reached outside."""
    x1, y1 = vals[:, 0] - vals[:, 2] / 2, vals[:, 1] - vals[:, 3] / 2
    x2, y2 = vals[:, 0] + vals[:, 2] / 2, vals[:, 1] + vals[:, 3] / 2
    edges = np.stack([x1, y1, x2, y2], 1)
    eps = np.float32(1e-6)
    reached: np.ndarray = np.asarray(((edges < -eps) | (edges > 1 + eps)).any(1))
    c = np.clip(edges, 0, 1)
    out = np.stack([(c[:, 0] + c[:, 2]) / 2, (c[:, 1] + c[:, 3]) / 2, c[:, 2] - c[:, 0], c[:, 3] - c[:, 1]], 1)
    return np.where(reached[:, None], out, vals).astype(np.float32), reached
