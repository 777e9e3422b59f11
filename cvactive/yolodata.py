"""Reading Ultralytics YOLO data sets: ``data.yaml`` (or a folder), splits, images and labels.

Read the way Ultralytics reads them (``ultralytics.data.utils.check_det_dataset`` and its
label verification; the tests compare the two on the same files):

* ``path`` is the data set root: relative to the current folder when it exists there, else
  under Ultralytics' datasets folder; no ``path`` means the YAML's folder. When that finds no
  split but the folder relative to the YAML does, the YAML's folder is used and a ``data_yaml``
  warning says that Ultralytics, run from here, would not find the images.
* A split is a folder (every image below it), a ``.txt`` list of images (``./`` lines relative
  to the list) or a **list** of those; a single entry starting with ``../`` that leads nowhere is
  retried without it. ``validation`` counts as ``val``.
* Images are the files Ultralytics takes (:data:`IMAGE_FORMATS`); labels are found by swapping
  the last ``images`` folder of an image path for ``labels``.
* Label lines are parsed by :func:`cvactive.yolo_labels.parse_label_text`: polygon lines become
  boxes, coordinates within Ultralytics' 1% tolerance are kept, and reading never stops at a bad
  line; every problem becomes a :class:`LabelIssue` with its file and line, an error when
  Ultralytics would drop the image, a warning when it tolerates or repairs the problem itself.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cvactive._config import load_yaml
from cvactive.boxes import yolo_to_xyxy
from cvactive.errors import ConfigError, DatasetError
from cvactive.outputs import write_text_atomic
from cvactive.yolo_labels import LabelIssue, parse_label_text

__all__ = [
    "IMAGE_FORMATS",
    "SPLITS",
    "YoloDataset",
    "YoloItem",
    "format_label_lines",
    "label_path_for",
    "link_view",
    "linked_data_yaml",
    "load_yolo_dataset",
]

SPLITS = ("train", "val", "test")
#: image file extensions Ultralytics reads (``ultralytics.data.utils.IMG_FORMATS``).
IMAGE_FORMATS = frozenset(
    {"avif", "bmp", "dng", "heic", "heif", "jp2", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp"}
)


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


def format_label_lines(boxes: np.ndarray, classes: np.ndarray) -> str:
    """YOLO label file text for normalised ``cx cy w h`` boxes (empty string for none)."""
    rows = [f"{int(c)} {b[0]:.6f} {b[1]:.6f} {b[2]:.6f} {b[3]:.6f}" for b, c in zip(np.asarray(boxes), classes)]
    return "\n".join(rows) + ("\n" if rows else "")


def label_path_for(image: Path) -> Path:
    """Ultralytics' convention: the last ``images`` folder of the path becomes ``labels``."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def _names(data: dict[str, Any], where: str) -> dict[int, str]:
    """Class id -> name from ``names`` (a list or a mapping) or ``nc`` (``class_<i>``, as Ultralytics names them)."""
    names, nc = data.get("names"), data.get("nc")
    if names is None and nc is None:
        raise DatasetError(f"{where}: no 'names' (or 'nc') for the classes")
    if nc is not None:
        try:
            nc = int(nc) if not isinstance(nc, bool) and float(nc) == int(float(nc)) else None
        except (TypeError, ValueError):
            nc = None
        if nc is None:
            raise DatasetError(f"{where}: 'nc: {data.get('nc')}' must be an integer")
    if names is None:
        return {i: f"class_{i}" for i in range(int(nc or 0))}
    if isinstance(names, list):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or not names:
        raise DatasetError(f"{where}: 'names' must be a non-empty list or mapping of class names, got {names!r}")
    try:
        out = {int(k): str(v) for k, v in names.items()}
    except (TypeError, ValueError) as err:
        raise DatasetError(f"{where}: class ids in 'names' must be integers, got {list(names)}") from err
    if max(out) >= len(out) or min(out) < 0:
        raise DatasetError(f"{where}: {len(out)} class names need ids 0-{len(out) - 1}, got {sorted(out)}")
    if nc is not None and int(nc) != len(out):
        raise DatasetError(f"{where}: 'names' has {len(out)} classes but 'nc: {nc}'")
    return out


def _split_entries(data: dict[str, Any], where: str) -> dict[str, list[str]]:
    """Each split's entries as strings (``validation`` is ``val``), Ultralytics' types checked."""
    if "val" not in data and "validation" in data:
        data = {**data, "val": data["validation"]}
    out: dict[str, list[str]] = {}
    for split in SPLITS:
        value = data.get(split)
        if not value:
            continue
        if not isinstance(value, (str, list)) or (
            isinstance(value, list) and not all(isinstance(v, str) for v in value)
        ):
            raise DatasetError(f"{where}: '{split}' must be a path or a list of paths, got {value!r}")
        out[split] = [value] if isinstance(value, str) else list(value)
    return out


def _targets(root: Path, entries: list[str]) -> list[Path]:
    """Where Ultralytics looks for one split: each entry under ``root`` (a lone ``../`` entry retried without it)."""
    if len(entries) == 1:
        p = (root / entries[0]).resolve()
        if not p.exists() and entries[0].startswith("../"):
            p = (root / entries[0][3:]).resolve()
        return [p]
    return [(root / e).resolve() for e in entries]


def resolve_splits(yaml_path: Path, data: dict[str, Any]) -> tuple[Path, dict[str, list[Path]], list[LabelIssue]]:
    """The root and each split's folders or lists, resolved as Ultralytics resolves them.

    Returns:
        ``(root, {split: [paths]}, notes)``; ``notes`` holds a ``data_yaml`` warning when the
        splits were only found relative to the YAML's folder (Ultralytics, run from the current
        folder, would not find them).
    """
    where = str(yaml_path)
    entries = _split_entries(data, where)
    notes = []
    if "train" not in entries or "val" not in entries:
        missing = " and ".join(s for s in ("train", "val") if s not in entries)
        notes.append(LabelIssue("data_yaml", where, None, f"no '{missing}' split: Ultralytics needs train and val"))
    path = data.get("path")
    if path is not None and not isinstance(path, str):
        raise DatasetError(f"{where}: 'path' must be a string, got {path!r}")
    if not path:
        root = yaml_path.parent.resolve()
        return root, {s: _targets(root, e) for s, e in entries.items()}, notes
    root = Path(path)
    if not root.exists() and not root.is_absolute():
        from cvactive.train_hooks import datasets_dir  # Ultralytics' settings, read by its adapter

        root = datasets_dir() / root
    targets = {s: _targets(root, e) for s, e in entries.items()}
    if all(p.exists() for ps in targets.values() for p in ps) or Path(path).is_absolute():
        return root.resolve(), targets, notes
    local = (yaml_path.parent / path).resolve()
    found = {s: _targets(local, e) for s, e in entries.items()}
    if not all(p.exists() for ps in found.values() for p in ps):
        return root.resolve(), targets, notes  # neither: the caller names the missing folder
    notes.append(
        LabelIssue(
            "data_yaml",
            where,
            None,
            f"path {path!r}: Ultralytics resolves it from the current folder ({Path.cwd()}) or its datasets "
            f"folder, where the splits are not; read from {local} (relative to the YAML) instead: train from "
            f"{yaml_path.parent} or give an absolute path",
        )
    )
    return local, found, notes


def _is_image(name: str) -> bool:
    return name.rpartition(".")[-1].lower() in IMAGE_FORMATS


def _list_file(target: Path) -> list[Path]:
    """The images a ``.txt`` list names: ``./`` lines relative to the list, others as they are."""
    lines = [x.strip() for x in target.read_text(encoding="utf-8-sig").strip().splitlines() if x.strip()]
    out = []
    for line in lines:
        p = target.parent / line[2:] if line.startswith("./") else Path(line)
        if not p.is_absolute() and not p.exists() and (target.parent / line).exists():
            p = target.parent / line  # relative to the current folder for Ultralytics; the list's folder here
        out.append(p)
    return out


def _split_images(targets: list[Path]) -> list[Path]:
    """Every image of a split: files below each folder (hidden ones skipped, as glob does) and listed files."""
    found: list[Path] = []
    for target in targets:
        if target.is_dir():
            for dirpath, dirnames, filenames in os.walk(target):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                found += [Path(dirpath) / f for f in filenames if not f.startswith(".") and "." in f and _is_image(f)]
        elif target.is_file():
            found += [p for p in _list_file(target) if _is_image(str(p))]
        else:
            raise DatasetError(f"split folder {target} does not exist")
    _refuse_undecodable(found)
    # sorting on the parts tuple gives Path's own order, without Path.__lt__'s per-comparison cost
    return sorted(found, key=lambda p: p.parts)


def _refuse_undecodable(paths: list[Path], what: str = "image") -> None:
    """A :class:`DatasetError` when a path is not valid UTF-8 (OpenCV, JSON and FiftyOne fail on it)."""
    bad = [p for p in paths if not str(p).isascii() and not _utf8(str(p))]
    if bad:
        shown = os.fsencode(bad[0]).decode("utf-8", "replace")
        raise DatasetError(f"{len(bad)} {what} path(s) are not valid UTF-8 (first: {shown!r}); rename them")


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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


def _read_split(ds: YoloDataset, split: str, targets: list[Path], nc: int | None, resolve: _Resolver) -> int:
    """Read one split's images and labels into ``ds``; returns the largest class id seen (-1: none)."""
    items, image_labels, max_class = [], set(), -1
    for image in _split_images(targets):
        label = label_path_for(image)
        if not label.is_file():
            ds.issues.append(LabelIssue("image_without_label", str(image), None, "image has no label file"))
            items.append(YoloItem(image=image, label=None, split=split))
            continue
        image_labels.add(resolve(label))
        with open(label, encoding="utf-8-sig", errors="replace") as fh:  # Path.read_text without its overhead
            text = fh.read()
        boxes, classes, lines, issues = parse_label_text(text, str(label), nc)
        ds.issues.extend(issues)
        if len(classes):
            max_class = max(max_class, int(classes.max()))
        items.append(YoloItem(image, label, split, boxes, classes, lines))
    ds.splits[split] = items
    for target in targets:
        label_dir = label_path_for(target / "x.jpg").parent if target.is_dir() else None
        if label_dir is not None and label_dir.is_dir():
            for label in sorted(label_dir.rglob("*.txt"), key=lambda p: p.parts):
                if resolve(label) not in image_labels:
                    ds.issues.append(LabelIssue("label_without_image", str(label), None, "label file has no image"))
    return max_class


def load_yolo_dataset(path: str | Path, *, splits: tuple[str, ...] | None = None) -> YoloDataset:
    """Read a YOLO data set from its ``data.yaml`` or its folder (see the module docstring).

    A folder with no YAML must hold ``images/<split>`` and ``labels/<split>``; its class
    names are then the class ids.

    Raises:
        DatasetError: the path does not exist, names no split, or its YAML is malformed.
    """
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"data set {str(p)!r} does not exist")
    _refuse_undecodable([p], "data set")
    yaml_path = _dataset_yaml(p)
    notes: list[LabelIssue] = []
    if yaml_path is not None:
        try:
            data = load_yaml(yaml_path)
        except ConfigError as err:
            raise DatasetError(str(err)) from err
        names = _names(data, str(yaml_path))
        root, split_dirs, notes = resolve_splits(yaml_path, data)
    else:
        root = p
        if not (p / "images").is_dir():
            raise DatasetError(f"{p}: no data.yaml and no images/ folder; not a YOLO data set")
        split_dirs = {d.name: [d] for d in sorted((p / "images").iterdir()) if d.is_dir()}
        if not split_dirs:
            split_dirs = {"train": [p / "images"]}
        names = {}
    if splits is not None:
        split_dirs = {k: v for k, v in split_dirs.items() if k in splits}
    if not split_dirs:
        raise DatasetError(f"{p}: names no train/val/test split")
    ds = YoloDataset(root=root, names=names, splits={}, issues=notes, yaml_path=yaml_path)
    resolve = _Resolver()
    max_class = max(
        _read_split(ds, split, targets, len(names) or None, resolve) for split, targets in split_dirs.items()
    )
    if not names:
        ds.names = {i: str(i) for i in range(max_class + 1)}
    return ds


def _ensure_link(link: Path, target: Path) -> None:
    """``link`` -> ``target`` (replaced atomically when it points elsewhere)."""
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)


def link_view(view: Path, split: str, images: Sequence[Path], labels: Sequence[Path | None]) -> list[Path]:
    """Symbolic links to ``images`` in ``view/images/<split>/`` and to their ``labels`` in
    ``view/labels/<split>/`` (Ultralytics' images -> labels rule); the links, in order.

    A link is named by its image's name and a hash of the image's resolved path, so two images of
    the same name in different folders get two links and a link never changes its target (the
    ``.npy`` cache beside it stays the image's). An image without labels gets no label link
    (a background image for Ultralytics).
    """
    image_dir, label_dir = view / "images" / split, view / "labels" / split
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for image, label in zip(images, labels):
        source = Path(image).resolve()
        stem = f"{source.stem}-{hashlib.sha1(str(source).encode()).hexdigest()[:10]}"
        link = image_dir / f"{stem}{source.suffix}"
        _ensure_link(link, source)
        label_link = label_dir / f"{stem}.txt"
        if label is not None and Path(label).is_file():
            _ensure_link(label_link, Path(label).resolve())
        elif label_link.is_symlink():
            label_link.unlink()
        out.append(link)
    return out


def linked_data_yaml(data_yaml: str | Path, view: str | Path, splits: Sequence[str] = ("train", "val")) -> Path:
    """A data.yaml in ``view`` whose ``splits`` are symbolic links to the images and labels of ``data_yaml``'s.

    Ultralytics writes ``labels/<split>.cache`` (and, asked to, ``.npy`` image caches) beside the
    files it reads; given this view instead of the user's data set it writes them in ``view``,
    which the caller owns, and never beside the user's labels. Splits the data set lacks are left out.

    Raises:
        DatasetError: the data set cannot be read, or has none of ``splits``.
    """
    import yaml

    ds = load_yolo_dataset(data_yaml, splits=tuple(splits))
    root = Path(view)
    entries = {}
    for split in splits:
        if split in ds.splits:
            items = ds.splits[split]
            links = link_view(root, split, [i.image for i in items], [i.label for i in items])
            listing = root / f"{split}.txt"  # a listing, not the folder: links left from an earlier view stay out
            write_text_atomic(listing, "".join(f"{link.parent.resolve() / link.name}\n" for link in links), fsync=False)
            entries[split] = str(listing.resolve())
    if not entries:
        raise DatasetError(f"{data_yaml}: no {' or '.join(splits)} split")
    for key in ("train", "val"):  # Ultralytics wants both keys; a split not asked for repeats the other
        entries.setdefault(key, entries.get("val") or entries["train"])
    out = root / "data.yaml"
    write_text_atomic(out, yaml.safe_dump({"path": str(root.resolve()), **entries, "names": ds.names}, sort_keys=False))
    return out
