"""Labels into FiftyOne: Ultralytics YOLO data sets as samples, and labels annotated elsewhere
(YOLO txt folders, COCO JSON) into a ``ground_truth`` field of existing samples.

YOLO data sets are read with :func:`cvactive.yolodata.load_yolo_dataset` (every bad label line
is reported, the good ones kept); each image becomes a sample keyed by its absolute path, with
its split as a tag, so later pushes of predictions for those images update these samples.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cvactive.boxes import yolo_to_fiftyone
from cvactive.errors import ConfigError, DatasetError, StoreError
from cvactive.store._db import load_dataset, open_dataset
from cvactive.store.provenance import PROVENANCE_FILE, provenance_fields, read_provenance
from cvactive.store.tags import KEY_FIELD, SYNTHETIC
from cvactive.yolo_labels import LabelIssue, parse_label_text
from cvactive.yolodata import load_yolo_dataset

log = logging.getLogger(__name__)

LabelFormat = Literal["yolo", "coco"]
LABEL_FORMATS: tuple[str, ...] = ("yolo", "coco")


@dataclass
class ImportSummary:
    """What an import did: samples and boxes added or updated, per split, and label issues."""

    dataset: str
    samples: int = 0
    added: int = 0
    updated: int = 0
    boxes: int = 0
    splits: dict[str, int] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)
    synthetic: int = 0
    issues: list[LabelIssue] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


def coco_to_tlwh(bbox: Iterable[float], width: int, height: int) -> list[float]:
    """COCO pixel ``[x, y, w, h]`` to normalised top-left ``[x, y, w, h]``."""
    x, y, w, h = (float(v) for v in bbox)
    return [x / width, y / height, w / width, h / height]


def _unreadable(paths: list[Path]) -> list[str]:
    """The images whose header PIL cannot read (empty, truncated or not an image); no pixel is decoded."""
    from PIL import Image, UnidentifiedImageError

    bad = []
    for path in paths:
        try:
            with Image.open(path) as im:
                im.size  # noqa: B018 - reading the header is the check
        except (OSError, UnidentifiedImageError, ValueError, ImportError):
            # ImportError: Ultralytics patches PIL's Image.open to try the pi-heif plugin on a
            # file PIL cannot identify, and that plugin is not installed
            bad.append(str(path))
    return bad


def _detections(fo: Any, tlwh: Any, labels: list[str]) -> Any:
    return fo.Detections(
        detections=[fo.Detection(label=lab, bounding_box=[float(v) for v in box]) for box, lab in zip(tlwh, labels)]
    )


def _readable_items(ydata: Any) -> tuple[list[Any], list[str]]:
    """The data set's items and the images among them whose header cannot be read (none readable: an error)."""
    items = list(ydata.items())
    unreadable = _unreadable([item.image for item in items])
    if unreadable and len(unreadable) == len(items):
        raise DatasetError(f"none of the {len(items)} images can be read (first: {unreadable[0]}); nothing imported")
    return items, unreadable


def _item_fields(
    fo: Any,
    item: Any,
    names: dict[int, str],
    label_field: str,
    provenance: dict[str, Any],
    summary: ImportSummary,
) -> tuple[str, list[str], dict[str, Any]]:
    """One YOLO item's sample key, tags and fields (its boxes, and its synthesis provenance if any),
    counted in ``summary``."""
    key = str(item.image.resolve())
    labels = [names.get(int(c), str(int(c))) for c in item.classes]
    dets = _detections(fo, yolo_to_fiftyone(item.boxes), labels)
    summary.boxes += len(labels)
    summary.splits[item.split] = summary.splits.get(item.split, 0) + 1
    tags = [item.split]
    fields: dict[str, Any] = {label_field: dets}
    prov = provenance.get(key)
    if prov is not None:
        tags.append(SYNTHETIC)
        fields.update(provenance_fields(prov))
        summary.synthetic += 1
    return key, tags, fields


def import_yolo_dataset(
    data: str | Path,
    dataset: str,
    *,
    label_field: str = "ground_truth",
    splits: tuple[str, ...] | None = None,
    batch_size: int = 1000,
    progress: bool = True,
) -> ImportSummary:
    """Import an Ultralytics YOLO data set (``data.yaml`` or a folder) into a FiftyOne data set.

    Each image becomes a sample keyed (``cva_key``) by its absolute path, tagged with its split,
    its boxes a ``fo.Detections`` ``label_field``. Re-importing updates the samples in place.
    The class list becomes the data set's ``default_classes``. A data set root that holds a
    ``provenance.jsonl`` (written by cvactive's synthesis) marks its images ``synthetic`` with
    ``synthetic_parent``/``synthetic_recipe``/``synthetic_params`` fields.

    Images whose header cannot be read (empty, truncated, not an image) are skipped and listed
    in ``unreadable``.

    Raises:
        DatasetError: the data set is missing or malformed, or none of its images can be read.
        StoreError: the database is unreachable.
    """
    from tqdm import tqdm

    ydata = load_yolo_dataset(data, splits=splits)
    items, unreadable = _readable_items(ydata)
    skip = set(unreadable)
    ds = open_dataset(dataset)
    import fiftyone as fo

    from cvactive.store.write import ensure_key_index

    ensure_key_index(ds)  # before adding: a concurrent push of the same image cannot make it twice

    from cvactive.store.push import existing_keys

    names = ydata.names
    summary = ImportSummary(dataset=ds.name, classes=[names[i] for i in sorted(names)], issues=list(ydata.issues))
    summary.unreadable = unreadable
    prov_file = ydata.root / PROVENANCE_FILE
    provenance = read_provenance(prov_file) if prov_file.is_file() else {}
    known = existing_keys(ds)
    new: list[Any] = []
    updates: dict[str, dict[str, Any]] = {}

    def flush() -> None:
        if new:
            ds.add_samples(new, progress=False)
            summary.added += len(new)
            new.clear()

    for item in tqdm(items, desc=f"import -> {ds.name}", unit="img", disable=not progress):
        if str(item.image) in skip:
            continue
        key, tags, fields = _item_fields(fo, item, names, label_field, provenance, summary)
        hit = known.get(key)
        if hit is None:
            new.append(fo.Sample(filepath=key, tags=tags, **{KEY_FIELD: key}, **fields))
            if len(new) >= batch_size:
                flush()
            continue
        sid, old_tags = hit
        fields["tags"] = sorted(set(old_tags) | set(tags))
        fields[KEY_FIELD] = key
        for name, value in fields.items():
            updates.setdefault(name, {})[sid] = value
    flush()
    for name, by_id in updates.items():
        ds.set_values(name, by_id, key_field="id")
    summary.updated = len(next(iter(updates.values()), {}))
    ds.default_classes = summary.classes
    ds.info["cvactive_classes"] = summary.classes
    ds.save()
    summary.samples = len(ds)
    return summary


def _coco_labels(path: Path) -> tuple[dict[str, list[tuple[list[float], str]]], list[str]]:
    """COCO JSON -> image file name -> [(normalised tlwh, label)], and the category names."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        images = {int(im["id"]): im for im in data["images"]}
        cats = {int(c["id"]): str(c["name"]) for c in data["categories"]}
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise DatasetError(f"{path}: not a COCO detection JSON ({err!r})") from err
    out: dict[str, list[tuple[list[float], str]]] = {Path(str(im["file_name"])).name: [] for im in images.values()}
    for ann in data.get("annotations", []):
        try:
            im = images[int(ann["image_id"])]
            label = cats[int(ann["category_id"])]
            box = coco_to_tlwh(ann["bbox"], int(im["width"]), int(im["height"]))
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as err:
            log.warning("%s: skipped annotation %s (%r)", path, ann.get("id"), err)
            continue
        out[Path(str(im["file_name"])).name].append((box, label))
    return out, [cats[k] for k in sorted(cats)]


def _yolo_folder_labels(folder: Path, names: dict[int, str], issues: list[LabelIssue]) -> dict[str, Any]:
    """A folder of YOLO ``.txt`` files -> file stem -> [(normalised tlwh, label)]."""
    out: dict[str, list[tuple[list[float], str]]] = {}
    for txt in sorted(folder.rglob("*.txt")):
        boxes, classes, _, found = parse_label_text(txt.read_text(errors="replace"), str(txt), len(names) or None)
        issues.extend(found)
        tlwh = yolo_to_fiftyone(boxes)
        out[txt.stem] = [([float(v) for v in b], names.get(int(c), str(int(c)))) for b, c in zip(tlwh, classes)]
    return out


def import_labels(
    path: str | Path,
    dataset: str,
    *,
    fmt: str | None = None,
    label_field: str = "ground_truth",
    classes: list[str] | None = None,
) -> ImportSummary:
    """Import labels annotated elsewhere into ``label_field`` of the data set's existing samples.

    ``fmt`` is ``"yolo"`` (a folder of ``.txt`` files, matched to samples by file stem; class
    names from ``classes``, else a ``data.yaml`` in or above the folder, else the data set's
    ``default_classes``) or ``"coco"`` (a COCO JSON file, matched by file name); by default it
    is guessed from the path. Samples with no matching label file keep their field and are
    counted in ``unmatched``.

    Raises:
        ConfigError: an unknown format.
        DatasetError: the labels are missing or malformed.
        StoreError: the data set does not exist.
    """
    import fiftyone as fo

    p = Path(path)
    if not p.exists():
        raise DatasetError(f"labels {str(p)!r} do not exist")
    fmt = fmt or ("coco" if p.suffix.lower() == ".json" else "yolo")
    if fmt not in LABEL_FORMATS:
        raise ConfigError(f"unknown label format {fmt!r}; valid formats: {', '.join(LABEL_FORMATS)}")
    ds = load_dataset(dataset)
    summary = ImportSummary(dataset=ds.name)
    by_name: dict[str, Any]
    if fmt == "coco":
        if not p.is_file():
            raise DatasetError(f"{p}: a COCO label file must be a JSON file")
        by_name, cat_names = _coco_labels(p)
        summary.classes = cat_names

        def match(filepath: str) -> Any:
            return by_name.get(Path(filepath).name)

    else:
        if not p.is_dir():
            raise DatasetError(f"{p}: YOLO labels must be a folder of .txt files")
        names = dict(enumerate(classes)) if classes else _yolo_names(p, ds)
        by_name = _yolo_folder_labels(p, names, summary.issues)
        summary.classes = [names[i] for i in sorted(names)]

        def match(filepath: str) -> Any:
            return by_name.get(Path(filepath).stem)

    ids, paths = ds.values(["id", "filepath"])
    values: dict[str, Any] = {}
    for sid, filepath in zip(ids, paths):
        found = match(filepath)
        if found is None:
            summary.unmatched.append(filepath)
            continue
        values[sid] = _detections(fo, [b for b, _ in found], [lab for _, lab in found])
        summary.boxes += len(found)
    if not values:
        raise DatasetError(f"no label in {p} matches a sample of data set {ds.name!r} (by file name)")
    ds.set_values(label_field, values, key_field="id")
    if not ds.default_classes:
        ds.default_classes = summary.classes
        ds.save()
    summary.updated = len(values)
    summary.samples = len(ds)
    return summary


def _yolo_names(folder: Path, ds: Any) -> dict[int, str]:
    from cvactive._config import load_yaml
    from cvactive.yolodata import _names

    for parent in [folder, *list(folder.parents)[:3]]:
        for name in ("data.yaml", "dataset.yaml"):
            if (parent / name).is_file():
                return _names(load_yaml(parent / name), str(parent / name))
    if ds.default_classes:
        return dict(enumerate(ds.default_classes))
    raise StoreError(
        f"no class names for the YOLO labels in {folder}: pass classes, put a data.yaml beside them, "
        f"or set the data set's default_classes (import its YOLO data set first)"
    )


__all__ = ["LABEL_FORMATS", "ImportSummary", "import_labels", "import_yolo_dataset"]
