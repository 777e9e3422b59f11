"""Export a FiftyOne data set's labels as an Ultralytics YOLO data set for retraining."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cvactive._random import RngLike, as_rng
from cvactive.errors import StoreError
from cvactive.store._db import load_dataset

SPLIT_TAGS = ("train", "val", "test")
MEDIA_MODES = {"copy": True, "symlink": "symlink"}


@dataclass
class ExportSummary:
    """What an export wrote: images and boxes per split, the classes and the ``data.yaml``."""

    data_yaml: Path
    splits: dict[str, int] = field(default_factory=dict)
    boxes: int = 0
    classes: list[str] = field(default_factory=list)
    skipped_unlabeled: int = 0


def dataset_classes(ds: Any, label_field: str) -> list[str]:
    """The data set's class list: ``default_classes``, else the labels found in ``label_field``, sorted."""
    if ds.default_classes:
        return list(ds.default_classes)
    if ds.info.get("cvactive_classes"):
        return list(ds.info["cvactive_classes"])
    return sorted(ds.distinct(f"{label_field}.detections.label"))


def assign_splits(
    ids: list[str], tags: list[list[str]], *, untagged: str = "train", val_fraction: float = 0.2, rng: RngLike = None
) -> dict[str, list[str]]:
    """Split sample ids by their ``train``/``val``/``test`` tag (untagged ones go to ``untagged``);
    when no sample is in ``val``, move a seeded random ``val_fraction`` of ``train`` there."""
    if untagged not in SPLIT_TAGS:
        raise StoreError(f"untagged split {untagged!r} is not one of {', '.join(SPLIT_TAGS)}")
    splits: dict[str, list[str]] = {s: [] for s in SPLIT_TAGS}
    for sid, tag_list in zip(ids, tags):
        split = next((s for s in SPLIT_TAGS if s in (tag_list or ())), untagged)
        splits[split].append(sid)
    if not splits["val"] and splits["train"]:
        gen = as_rng(rng)
        n_val = max(1, round(val_fraction * len(splits["train"])))
        if n_val >= len(splits["train"]):
            raise StoreError(f"{len(splits['train'])} training image(s) are too few to hold out a validation split")
        pick = set(gen.choice(len(splits["train"]), size=n_val, replace=False).tolist())
        splits["val"] = [s for i, s in enumerate(splits["train"]) if i in pick]
        splits["train"] = [s for i, s in enumerate(splits["train"]) if i not in pick]
    return {k: v for k, v in splits.items() if v}


def export_yolo(
    dataset: str,
    out: str | Path,
    *,
    label_field: str = "ground_truth",
    tag: str | None = None,
    untagged: str = "train",
    val_fraction: float = 0.2,
    media: str = "copy",
    overwrite: bool = False,
    rng: RngLike = 0,
) -> ExportSummary:
    """Write the samples that have ``label_field`` as an Ultralytics YOLO data set in ``out``.

    Splits come from the ``train``/``val``/``test`` tags (samples without one go to
    ``untagged``; with no ``val`` sample at all, ``val_fraction`` of train is held out, seeded by
    ``rng``). ``out/data.yaml`` is what ``YOLO(...).train(data=...)`` takes. Samples with no
    ``label_field`` (not yet labeled) are left out; an empty ``Detections`` is a background image.

    Args:
        media: ``copy`` the images, or ``symlink`` them.
        tag: export only samples with this tag (for example ``approved``).
        overwrite: replace an existing export in ``out``.

    Raises:
        StoreError: missing data set or field, nothing to export, or ``out`` already holds an export.
    """
    import fiftyone as fo

    if media not in MEDIA_MODES:
        raise StoreError(f"unknown media mode {media!r}; valid modes: {', '.join(MEDIA_MODES)}")
    ds = load_dataset(dataset)
    if not ds.has_sample_field(label_field):
        raise StoreError(f"data set {ds.name!r} has no field {label_field!r}; label fields: {_label_fields(ds)}")
    out_dir = Path(out).resolve()
    data_yaml = out_dir / "data.yaml"
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise StoreError(f"{out_dir} is not empty; choose a new folder or pass overwrite")
        shutil.rmtree(out_dir)
    view = ds if tag is None else ds.match_tags(tag)
    labeled = view.exists(label_field)
    summary = ExportSummary(data_yaml=data_yaml, skipped_unlabeled=len(view) - len(labeled))
    if len(labeled) == 0:
        raise StoreError(f"no sample of {ds.name!r}{'' if tag is None else f' tagged {tag!r}'} has {label_field!r}")
    summary.classes = dataset_classes(ds, label_field)
    ids, tags = labeled.values(["id", "tags"])
    splits = assign_splits(ids, tags, untagged=untagged, val_fraction=val_fraction, rng=rng)
    for split, split_ids in splits.items():
        part = labeled.select(split_ids)
        part.export(
            export_dir=str(out_dir),
            dataset_type=fo.types.YOLOv5Dataset,
            label_field=label_field,
            split=split,
            classes=summary.classes,
            yaml_path="data.yaml",
            export_media=MEDIA_MODES[media],
            progress=False,
        )
        summary.splits[split] = len(split_ids)
        summary.boxes += int(part.count(f"{label_field}.detections"))
    return summary


def _label_fields(ds: Any) -> str:
    import fiftyone as fo

    return ", ".join(ds.get_field_schema(embedded_doc_type=fo.Detections).keys()) or "none"
