"""Reading Ultralytics YOLO data sets: ``data.yaml`` (or a folder), splits, images and labels.

Label files hold one box per line, ``class cx cy w h`` normalised to [0, 1] with a centre
origin. Reading never stops at a bad line: every problem becomes a :class:`LabelIssue` with
the file and line, and the good lines are kept. Paths resolve the way Ultralytics resolves
them: ``path`` relative to the YAML's folder (``path: .`` means that folder here, not
Ultralytics' datasets folder), split entries relative to ``path``, a leading ``../`` that
leads nowhere retried without it, and labels found by swapping the last ``images`` folder of
an image path for ``labels``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cvactive.config import load_yaml
from cvactive.errors import ConfigError, DatasetError
from cvactive.sources import IMAGE_SUFFIXES

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class LabelIssue:
    """One problem in a label file (or a missing file), with where it is."""

    kind: (
        str  # out_of_range | non_positive_size | unknown_class | malformed | label_without_image | image_without_label
    )
    path: str
    line: int | None
    message: str


@dataclass
class YoloItem:
    """One image of a split and its labels.

    Attributes:
        image: the image path.
        label: the label file path, or ``None`` when the image has none.
        split: the split name.
        boxes: ``(N, 4)`` float32 normalised ``cx cy w h`` (the valid lines only).
        classes: ``(N,)`` int64 class ids.
        lines: ``(N,)`` the 1-based line number of each box in the label file.
    """

    image: Path
    label: Path | None
    split: str
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    classes: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    lines: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))

    def xyxy(self, width: int, height: int) -> np.ndarray:
        """The boxes as absolute pixel ``xyxy`` for an image of this size."""
        return yolo_to_xyxy(self.boxes, width, height)


@dataclass
class YoloDataset:
    """A parsed YOLO data set: class names, items per split, and every label issue found."""

    root: Path
    names: dict[int, str]
    splits: dict[str, list[YoloItem]]
    issues: list[LabelIssue] = field(default_factory=list)
    yaml_path: Path | None = None

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def items(self, split: str | None = None) -> Iterator[YoloItem]:
        """Every item, or those of one split."""
        if split is not None and split not in self.splits:
            raise DatasetError(f"no split {split!r}; this data set has {', '.join(self.splits)}")
        for name, items in self.splits.items():
            if split is None or name == split:
                yield from items

    def __len__(self) -> int:
        return sum(len(v) for v in self.splits.values())


def yolo_to_xyxy(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Normalised ``cx cy w h`` ``(N, 4)`` to pixel ``xyxy`` ``(N, 4)`` float32."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    out = np.empty_like(b)
    out[:, 0] = (b[:, 0] - b[:, 2] / 2) * width
    out[:, 1] = (b[:, 1] - b[:, 3] / 2) * height
    out[:, 2] = (b[:, 0] + b[:, 2] / 2) * width
    out[:, 3] = (b[:, 1] + b[:, 3] / 2) * height
    return out


def xyxy_to_yolo(xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixel ``xyxy`` ``(N, 4)`` to normalised ``cx cy w h`` ``(N, 4)`` float32."""
    b = np.asarray(xyxy, np.float32).reshape(-1, 4)
    out = np.empty_like(b)
    out[:, 0] = (b[:, 0] + b[:, 2]) / 2 / width
    out[:, 1] = (b[:, 1] + b[:, 3]) / 2 / height
    out[:, 2] = (b[:, 2] - b[:, 0]) / width
    out[:, 3] = (b[:, 3] - b[:, 1]) / height
    return out


def format_label_lines(boxes: np.ndarray, classes: np.ndarray) -> str:
    """YOLO label file text for normalised ``cx cy w h`` boxes (empty string for none)."""
    rows = [f"{int(c)} {b[0]:.6f} {b[1]:.6f} {b[2]:.6f} {b[3]:.6f}" for b, c in zip(np.asarray(boxes), classes)]
    return "\n".join(rows) + ("\n" if rows else "")


def parse_label_text(
    text: str, path: str, num_classes: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[LabelIssue]]:
    """Parse a label file's text; return boxes, classes, line numbers and issues."""
    boxes: list[list[float]] = []
    classes: list[int] = []
    lines: list[int] = []
    issues: list[LabelIssue] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        parts = raw.split()
        if not parts:
            continue
        if len(parts) != 5:
            issues.append(LabelIssue("malformed", path, lineno, f"expected 5 fields, got {len(parts)}: {raw!r}"))
            continue
        try:
            cls_f = float(parts[0])
            vals = [float(v) for v in parts[1:]]
        except ValueError:
            issues.append(LabelIssue("malformed", path, lineno, f"not numbers: {raw!r}"))
            continue
        if not cls_f.is_integer() or cls_f < 0 or (num_classes is not None and cls_f >= num_classes):
            issues.append(LabelIssue("unknown_class", path, lineno, f"class id {parts[0]} not in [0, {num_classes})"))
            continue
        if not all(map(math.isfinite, vals)):
            issues.append(LabelIssue("malformed", path, lineno, f"non-finite value: {raw!r}"))
            continue
        cx, cy, w, h = vals
        if w <= 0 or h <= 0:
            issues.append(LabelIssue("non_positive_size", path, lineno, f"width {w} / height {h} not positive"))
            continue
        if (
            min(vals) < 0
            or max(vals) > 1
            or cx - w / 2 < -1e-6
            or cy - h / 2 < -1e-6
            or cx + w / 2 > 1 + 1e-6
            or (cy + h / 2 > 1 + 1e-6)
        ):
            issues.append(LabelIssue("out_of_range", path, lineno, f"coordinates outside [0, 1]: {raw!r}"))
            continue
        boxes.append(vals)
        classes.append(int(cls_f))
        lines.append(lineno)
    return (
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(classes, np.int64),
        np.asarray(lines, np.int64),
        issues,
    )


def label_path_for(image: Path) -> Path:
    """Ultralytics' convention: the last ``images`` folder of the path becomes ``labels``."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def _names(data: dict[str, Any], where: str) -> dict[int, str]:
    names = data.get("names")
    if isinstance(names, dict):
        return {int(k): str(v) for k, v in names.items()}
    if isinstance(names, list):
        return dict(enumerate(str(n) for n in names))
    if "nc" in data:
        return {i: str(i) for i in range(int(data["nc"]))}
    raise DatasetError(f"{where}: no 'names' (or 'nc') for the classes")


def _resolve(root: Path, entry: str) -> Path:
    p = Path(entry)
    p = p if p.is_absolute() else (root / p)
    if not p.exists() and entry.startswith("../"):
        p = root / entry[3:]  # Ultralytics' fallback for Roboflow exports
    return p.resolve()


def _split_images(target: Path) -> list[Path]:
    if target.is_dir():
        # sorting on the parts tuple gives Path's own order, without Path.__lt__'s per-comparison cost
        return sorted((p for p in target.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: p.parts)
    if target.is_file() and target.suffix == ".txt":
        base = target.parent
        return [_resolve(base, line.strip()) for line in target.read_text().splitlines() if line.strip()]
    raise DatasetError(f"split folder {target} does not exist")


class _Resolver:
    """The real path of a file as a string, like ``str(path.resolve())`` but resolving each folder once."""

    def __init__(self) -> None:
        self._dirs: dict[str, str] = {}

    def __call__(self, path: Path) -> str:
        text = str(path)
        if os.path.islink(text):
            return os.path.realpath(text)
        head, tail = os.path.split(text)
        real = self._dirs.get(head)
        if real is None:
            real = self._dirs[head] = os.path.realpath(head)
        return os.path.join(real, tail)


def _dataset_yaml(path: Path) -> Path | None:
    if path.is_file():
        return path
    for name in ("data.yaml", "dataset.yaml", "config.yaml"):
        if (path / name).is_file():
            return path / name
    return None


def load_yolo_dataset(path: str | Path, *, splits: tuple[str, ...] | None = None) -> YoloDataset:
    """Read a YOLO data set from its ``data.yaml`` or its folder.

    A folder with no YAML must hold ``images/<split>`` and ``labels/<split>``; its class
    names are then the class ids.

    Raises:
        DatasetError: the path does not exist, names no split, or its YAML is malformed.
    """
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"data set {str(p)!r} does not exist")
    yaml_path = _dataset_yaml(p)
    split_dirs: dict[str, Path] = {}
    if yaml_path is not None:
        try:
            data = load_yaml(yaml_path)
        except ConfigError as err:
            raise DatasetError(str(err)) from err
        names = _names(data, str(yaml_path))
        root = yaml_path.parent
        if data.get("path") not in (None, "", "."):
            root = _resolve(yaml_path.parent, str(data["path"]))
        for split in SPLITS:
            if data.get(split):
                split_dirs[split] = _resolve(root, str(data[split]))
    else:
        root = p
        if not (p / "images").is_dir():
            raise DatasetError(f"{p}: no data.yaml and no images/ folder; not a YOLO data set")
        split_dirs = {d.name: d for d in sorted((p / "images").iterdir()) if d.is_dir()}
        if not split_dirs:
            split_dirs = {"train": p / "images"}
        names = {}
    if splits is not None:
        split_dirs = {k: v for k, v in split_dirs.items() if k in splits}
    if not split_dirs:
        raise DatasetError(f"{p}: names no train/val/test split")
    nc = len(names) if names else None
    ds = YoloDataset(root=root, names=names, splits={}, yaml_path=yaml_path)
    max_class = -1
    resolve = _Resolver()
    for split, target in split_dirs.items():
        images = _split_images(target)
        items = []
        image_labels = set()
        for image in images:
            label = label_path_for(image)
            if not label.is_file():
                ds.issues.append(LabelIssue("image_without_label", str(image), None, "image has no label file"))
                items.append(YoloItem(image=image, label=None, split=split))
                continue
            image_labels.add(resolve(label))
            with open(label, errors="replace") as fh:  # what Path.read_text does, without its overhead
                text = fh.read()
            boxes, classes, lines, issues = parse_label_text(text, str(label), nc)
            ds.issues.extend(issues)
            if len(classes):
                max_class = max(max_class, int(classes.max()))
            items.append(YoloItem(image, label, split, boxes, classes, lines))
        ds.splits[split] = items
        label_dir = label_path_for(target / "x.jpg").parent if target.is_dir() else None
        if label_dir is not None and label_dir.is_dir():
            for label in sorted(label_dir.rglob("*.txt"), key=lambda p: p.parts):
                if resolve(label) not in image_labels:
                    ds.issues.append(LabelIssue("label_without_image", str(label), None, "label file has no image"))
    if not names:
        ds.names = {i: str(i) for i in range(max_class + 1)}
    return ds
