"""The labels of a data set as flat arrays, read from YOLO folders, FiftyOne or a harvest manifest.

Every input becomes one :class:`LabelTable`: one row per image and one row per box, so the
statistics in :mod:`cvactive.health.stats` are array operations over the whole data set
instead of loops over files. Boxes are normalised ``cx cy w h`` (YOLO's convention, centre
origin); pixel sizes come from the image sizes where those are known.

The adapters here are the only code of the health check that knows about file formats:

* :func:`table_from_yolo` wraps :func:`cvactive.yolodata.load_yolo_dataset` (which reports
  every bad label line, image without label file and label file without image);
* :func:`table_from_fiftyone` reads a FiftyOne data set's detections field (through
  :func:`cvactive.store.read.detection_columns`: FiftyOne stays behind ``cvactive.store``);
* :func:`table_from_manifest` reads a harvest output folder's ``manifest.jsonl``
  (its boxes are model predictions, not reviewed labels).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cvactive.boxes import fiftyone_to_yolo, xyxy_to_yolo
from cvactive.errors import DatasetError, RecordError
from cvactive.yolo_labels import LabelIssue
from cvactive.yolodata import YoloDataset, load_yolo_dataset


@dataclass
class LabelTable:
    """Images and boxes of a data set as flat arrays.

    Attributes:
        names: class id -> class name (ids ``0 .. C-1``).
        splits: split names; ``image_split`` indexes into them.
        image_paths: ``I`` image paths (``""`` where an image file is not known, e.g. a video frame).
        label_paths: ``I`` label file paths, or ``None`` where the image has no label file.
        image_split: ``(I,)`` int64 split index of each image.
        width, height: ``(I,)`` float64 image size in pixels, NaN where not yet known.
        boxes: ``(M, 4)`` float32 normalised ``cx cy w h`` of every valid box.
        box_image: ``(M,)`` int64 image index of each box.
        box_class: ``(M,)`` int64 class id of each box.
        box_line: ``(M,)`` int64 1-based line of the box in its label file (0 where there are no lines).
        issues: every label problem found while reading, with file and line.
        kind: ``"yolo"``, ``"fiftyone"`` or ``"harvest"``.
        source: what was read (a path or ``fiftyone:<name>.<field>``).
    """

    names: dict[int, str]
    splits: tuple[str, ...]
    image_paths: list[str]
    label_paths: list[str | None]
    image_split: np.ndarray
    width: np.ndarray
    height: np.ndarray
    boxes: np.ndarray
    box_image: np.ndarray
    box_class: np.ndarray
    box_line: np.ndarray
    issues: list[LabelIssue] = field(default_factory=list)
    kind: str = "yolo"
    source: str = ""

    def __post_init__(self) -> None:
        i, m = len(self.image_paths), len(self.boxes)
        if len(self.label_paths) != i or self.image_split.shape != (i,):
            raise DatasetError(f"label table: {i} images but {len(self.label_paths)} label paths / splits")
        if self.width.shape != (i,) or self.height.shape != (i,):
            raise DatasetError(f"label table: image sizes must have shape ({i},)")
        if self.boxes.shape != (m, 4) or any(a.shape != (m,) for a in (self.box_image, self.box_class, self.box_line)):
            raise DatasetError(f"label table: box arrays must have M={m} rows")

    @property
    def num_images(self) -> int:
        return len(self.image_paths)

    @property
    def num_classes(self) -> int:
        return len(self.names)


def _table(
    names: dict[int, str],
    splits: list[str],
    rows: list[tuple[str, str | None, int, float, float]],
    box_parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    issues: list[LabelIssue],
    kind: str,
    source: str,
) -> LabelTable:
    """Assemble a table from per-image rows ``(image, label, split, w, h)`` and per-image box arrays."""
    counts = np.fromiter((len(c) for _, c, _ in box_parts), np.int64, len(box_parts))
    if box_parts and counts.sum():
        boxes = np.concatenate([b for b, _, _ in box_parts]).astype(np.float32).reshape(-1, 4)
        classes = np.concatenate([c for _, c, _ in box_parts]).astype(np.int64)
        lines = np.concatenate([ln for _, _, ln in box_parts]).astype(np.int64)
    else:
        boxes, classes, lines = np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return LabelTable(
        names=names,
        splits=tuple(splits),
        image_paths=[r[0] for r in rows],
        label_paths=[r[1] for r in rows],
        image_split=np.fromiter((r[2] for r in rows), np.int64, len(rows)),
        width=np.fromiter((r[3] for r in rows), np.float64, len(rows)),
        height=np.fromiter((r[4] for r in rows), np.float64, len(rows)),
        boxes=boxes,
        box_image=np.repeat(np.arange(len(rows), dtype=np.int64), counts),
        box_class=classes,
        box_line=lines,
        issues=list(issues),
        kind=kind,
        source=source,
    )


def table_from_yolo(data: str | Path | YoloDataset) -> LabelTable:
    """The table of an Ultralytics YOLO data set (its ``data.yaml``, its folder, or a loaded one).

    Raises:
        DatasetError: the data set cannot be read (see :func:`~cvactive.yolodata.load_yolo_dataset`)
            or holds no image at all.
    """
    ds = data if isinstance(data, YoloDataset) else load_yolo_dataset(data)
    if len(ds) == 0:
        raise DatasetError(f"{ds.yaml_path or ds.root}: no images found in any split")
    splits = list(ds.splits)
    rows: list[tuple[str, str | None, int, float, float]] = []
    parts = []
    for s, split in enumerate(splits):
        for item in ds.splits[split]:
            rows.append((str(item.image), None if item.label is None else str(item.label), s, np.nan, np.nan))
            parts.append((item.boxes, item.classes, item.lines))
    return _table(dict(ds.names), splits, rows, parts, ds.issues, "yolo", str(ds.yaml_path or ds.root))


def table_from_manifest(folder: str | Path) -> LabelTable:
    """The table of a harvest output folder: its ``manifest.jsonl`` records and their predicted boxes.

    Each record's image is its ``path`` field (relative to the folder unless absolute), else its
    ``source`` when that is an image file; its split is its ``split`` field, else ``"harvest"``.
    The classes are those the records name or predict (a manifest does not list the model's
    other classes), renumbered ``0 .. C-1`` in class-id order.

    Raises:
        DatasetError: the folder has no ``manifest.jsonl``, or a line of it is not a record.
    """
    from cvactive.io import read_jsonl

    root = Path(folder)
    manifest = root / "manifest.jsonl" if root.is_dir() else root
    if not manifest.is_file():
        raise DatasetError(f"{root}: no manifest.jsonl; not a harvest output folder")
    splits: list[str] = []
    names: dict[int, str] = {}
    rows: list[tuple[str, str | None, int, float, float]] = []
    parts = []
    try:
        for rec in read_jsonl(manifest):
            raw = (rec.harvested.path if rec.harvested is not None else None) or rec.extra.get("image")
            if raw:
                image = Path(str(raw))
                image = image if image.is_absolute() else root / image
            else:
                image = Path(rec.source) if rec.frame is None else Path()
            split = str(rec.extra.get("split") or "harvest")
            if split not in splits:
                splits.append(split)
            names.update(rec.names)
            rows.append((str(image) if str(image) != "." else "", None, splits.index(split), rec.width, rec.height))
            boxes = xyxy_to_yolo(rec.xyxy, rec.width, rec.height)
            parts.append((boxes, rec.class_id, np.zeros(len(rec), np.int64)))
    except RecordError as err:
        raise DatasetError(str(err)) from err
    if not rows:
        raise DatasetError(f"{manifest}: holds no records")
    # Keep the classes the model predicted (a manifest names all the model's), numbered 0..C-1 in id order.
    seen = sorted({int(c) for _, cls, _ in parts for c in np.unique(cls)})
    new_id = {old: i for i, old in enumerate(seen)}
    lookup = np.zeros(max(seen, default=0) + 1, np.int64)
    for old, i in new_id.items():
        lookup[old] = i
    parts = [(b, lookup[np.asarray(c, np.int64)], ln) for b, c, ln in parts]
    return _table(
        {i: names.get(old, str(old)) for old, i in new_id.items()}, splits, rows, parts, [], "harvest", str(manifest)
    )


def table_from_fiftyone(name: str, field: str = "ground_truth", *, split_tags: tuple[str, ...] = ()) -> LabelTable:
    """The table of a FiftyOne data set's ``Detections`` field.

    Splits are the sample tags named in ``split_tags`` (default: ``train``, ``val``,
    ``validation``, ``valid``, ``test`` where present), else one split ``"all"``. Classes are the
    field's (or the data set's default) class list when set, else the labels found, sorted.
    Boxes outside ``[0, 1]``, with no size, or with a label not in a set class list become
    label issues naming the sample id and the box's index (as its "line", 1-based).

    Raises:
        StoreError: the data set does not exist (the message lists those that do).
        DatasetError: the field is missing or is not a ``Detections`` field.
    """
    from cvactive.store.read import detection_columns

    cols = detection_columns(name, field)
    ids, paths, tags, widths, heights, labels, bbs = (
        cols.ids, cols.paths, cols.tags, cols.widths, cols.heights, cols.labels, cols.boxes,
    )  # fmt: skip
    classes: list[str] = list(cols.classes)
    fixed = bool(classes)
    if not fixed:
        classes = sorted({lab for per in labels if per for lab in per if lab is not None})
    index = {c: i for i, c in enumerate(classes)}
    wanted = split_tags or ("train", "val", "validation", "valid", "test")
    present = [t for t in wanted if any(t in (ts or []) for ts in tags)]
    splits = present or ["all"]
    rows: list[tuple[str, str | None, int, float, float]] = []
    parts: list[tuple[Any, Any, Any]] = []
    issues: list[LabelIssue] = []
    for sid, path, ts, w, h, labs, boxes in zip(ids, paths, tags, widths, heights, labels, bbs):
        split = next((splits.index(t) for t in present if t in (ts or [])), 0)
        keep_b, keep_c, keep_l = [], [], []
        for j, (lab, bb) in enumerate(zip(labs or [], boxes or []), 1):
            where = f"{name}:{sid}"
            if lab not in index:
                issues.append(LabelIssue("unknown_class", where, j, f"label {lab!r} not in the class list"))
                continue
            if bb is None or len(bb) != 4:
                issues.append(LabelIssue("malformed", where, j, f"bounding_box {bb!r} is not [x, y, w, h]"))
                continue
            x, y, bw, bh = (float(v) for v in bb)
            if bw <= 0 or bh <= 0:
                issues.append(LabelIssue("non_positive_size", where, j, f"width {bw} / height {bh} not positive"))
                continue
            if x < -1e-6 or y < -1e-6 or x + bw > 1 + 1e-6 or y + bh > 1 + 1e-6:
                issues.append(LabelIssue("out_of_range", where, j, f"bounding_box {bb} outside [0, 1]"))
                continue
            keep_b.append((x, y, bw, bh))
            keep_c.append(index[lab])
            keep_l.append(j)
        fw = np.nan if w is None else float(w)
        fh = np.nan if h is None else float(h)
        rows.append((str(path), None, split, fw, fh))
        yolo = fiftyone_to_yolo(keep_b).astype(np.float32)  # (N, 4) normalised cx cy w h
        parts.append((yolo, np.asarray(keep_c), np.asarray(keep_l)))
    if not rows:
        raise DatasetError(f"FiftyOne data set {name!r} has no samples")
    return _table(dict(enumerate(classes)), splits, rows, parts, issues, "fiftyone", f"fiftyone:{name}.{field}")


def load_table(
    data: str | Path | None = None, *, dataset: str | None = None, field: str = "ground_truth"
) -> LabelTable:
    """Read whatever ``data`` names: a YOLO ``data.yaml`` or folder, a harvest folder with
    ``manifest.jsonl``, or (with ``dataset``) a FiftyOne data set.

    Raises:
        DatasetError: nothing to read, or the input cannot be read.
        StoreError: the FiftyOne data set does not exist.
    """
    if dataset is not None:
        if data is not None:
            raise DatasetError("give either a DATA path or --dataset NAME, not both")
        return table_from_fiftyone(dataset, field)
    if data is None:
        raise DatasetError("nothing to check: give a DATA path (data.yaml, YOLO folder, harvest folder) or --dataset")
    p = Path(data)
    if not p.exists():
        raise DatasetError(f"{str(p)!r} does not exist")
    if p.name == "manifest.jsonl" or (p.is_dir() and (p / "manifest.jsonl").is_file()):
        return table_from_manifest(p)
    return table_from_yolo(p)
