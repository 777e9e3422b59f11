"""Export a FiftyOne data set's labels as an Ultralytics YOLO data set for retraining."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cvactive._random import RngLike, as_rng
from cvactive.errors import OutputError, StoreError
from cvactive.outputs import OUR_NAMES, check_dir_output, claim_dir, move_aside, path_lock, read_owner, user_content
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
    #: where ``overwrite`` moved the previous export (``None``: there was none)
    moved_aside: Path | None = None


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


COMMAND = "export"


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

    The export is written to a hidden folder beside ``out`` and renamed to ``out`` only when
    complete, so a failed or killed export leaves ``out`` as it was. ``out`` may be missing or
    empty; an earlier export there (marked ``.cvactive-owner.json`` by this function) is moved
    aside to ``<out>.old-<time>`` with ``overwrite``; anything else in it is refused. Nothing is
    ever deleted but this function's own unfinished folders.

    Args:
        media: ``copy`` the images, or ``symlink`` them.
        tag: export only samples with this tag (for example ``approved``).
        overwrite: move an earlier export in ``out`` aside (:attr:`ExportSummary.moved_aside`).

    Raises:
        StoreError: missing data set or field, no class, nothing to export.
        OutputError: ``out`` is a file, is (or holds, or lies in) a folder of the data set's
            images, holds files that are not an export, holds an export and ``overwrite`` is off,
            or another export into it is running.
    """
    if media not in MEDIA_MODES:
        raise StoreError(f"unknown media mode {media!r}; valid modes: {', '.join(MEDIA_MODES)}")
    out_dir = check_dir_output(out).resolve()
    ds = load_dataset(dataset)
    if not ds.has_sample_field(label_field):
        raise StoreError(f"data set {ds.name!r} has no field {label_field!r}; label fields: {_label_fields(ds)}")
    media_dirs = sorted({str(Path(d).resolve()) for d in {os.path.dirname(f) for f in ds.values("filepath")}})
    check_dir_output(out_dir, inputs=media_dirs)
    view = ds if tag is None else ds.match_tags(tag)
    labeled = view.exists(label_field)
    summary = ExportSummary(data_yaml=out_dir / "data.yaml", skipped_unlabeled=len(view) - len(labeled))
    if len(labeled) == 0:
        raise StoreError(f"no sample of {ds.name!r}{'' if tag is None else f' tagged {tag!r}'} has {label_field!r}")
    summary.classes = dataset_classes(ds, label_field)
    if not summary.classes:
        raise StoreError(
            f"{label_field!r} of {ds.name!r} has no classes (no box is labeled and the data set names none); "
            "nothing to export"
        )
    ids, tags = labeled.values(["id", "tags"])
    splits = assign_splits(ids, tags, untagged=untagged, val_fraction=val_fraction, rng=rng)
    _existing(out_dir, overwrite)  # refused before the lock file is made; checked again under the lock
    with path_lock(out_dir, f"{COMMAND} {ds.name}"):
        previous = _existing(out_dir, overwrite)
        _remove_unfinished(out_dir)
        tmp = out_dir.with_name(f".{out_dir.name}.export-tmp-{os.getpid()}")
        try:
            claim_dir(tmp, COMMAND)
            _write_splits(labeled, splits, tmp, label_field, summary, media)
            _finish(tmp, out_dir)
            if previous == "empty":
                _remove_empty(out_dir)
            elif previous == "export":
                summary.moved_aside = move_aside(out_dir)
            os.rename(tmp, out_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # our own unfinished folder, made just now
            raise
    return summary


def _existing(out_dir: Path, overwrite: bool) -> str | None:
    """What is at ``out_dir``: ``None`` (nothing), ``"empty"``, or ``"export"`` (an earlier one, to move aside)."""
    if not out_dir.exists():
        return None
    content = user_content(out_dir)
    if not content:
        return "empty"
    owner = read_owner(out_dir)
    if owner is not None and owner.command == COMMAND:
        if not overwrite:
            raise OutputError(
                f"{out_dir} holds an earlier export; pass --overwrite to move it aside, or choose a new folder"
            )
        return "export"
    shown = ", ".join(p.name + ("/" if p.is_dir() else "") for p in content[:5])
    more = f", ... ({len(content)} in all)" if len(content) > 5 else ""
    raise OutputError(
        f"{out_dir} is not empty and is not a cvactive export (holds {shown}{more}); choose a new or empty folder"
    )


def _remove_unfinished(out_dir: Path) -> None:
    """Remove unfinished export folders of ``out_dir`` left by a killed run (we hold its lock: none is running)."""
    for stale in out_dir.parent.glob(f".{out_dir.name}.export-tmp-*"):
        owner = read_owner(stale) if stale.is_dir() else None
        if owner is not None and owner.command == COMMAND:
            shutil.rmtree(stale, ignore_errors=True)


def _remove_empty(out_dir: Path) -> None:
    """Remove an empty ``out_dir`` (only cvactive's bookkeeping files in it) so the export can take its name."""
    for entry in out_dir.iterdir():
        if entry.name in OUR_NAMES or entry.name.startswith(".cvactive"):
            entry.unlink()
    out_dir.rmdir()


@contextlib.contextmanager
def _merging_is_intended() -> Iterator[None]:
    """Drop FiftyOne's "already exists; export will be merged" warning: each split is merged on purpose."""

    def keep(record: logging.LogRecord) -> bool:
        return "export will be merged" not in str(record.msg)

    logger = logging.getLogger("fiftyone.core.collections")
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def _write_splits(
    labeled: Any, splits: dict[str, list[str]], folder: Path, label_field: str, summary: ExportSummary, media: str
) -> None:
    import fiftyone as fo

    with _merging_is_intended():
        for split, split_ids in splits.items():
            part = labeled.select(split_ids)
            part.export(
                export_dir=str(folder),
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


def _finish(tmp: Path, out_dir: Path) -> None:
    """Point ``data.yaml`` at the final folder and record every file written (the ownership marker)."""
    import yaml

    from cvactive.outputs import write_text_atomic

    data_yaml = tmp / "data.yaml"
    data = yaml.safe_load(data_yaml.read_text(encoding="utf-8")) or {}
    if "path" in data:
        data["path"] = str(out_dir)
        write_text_atomic(data_yaml, yaml.safe_dump(data, sort_keys=False), fsync=False)
    owned = claim_dir(tmp, COMMAND)
    files = sorted(p for p in tmp.rglob("*") if (p.is_file() or p.is_symlink()) and p.name not in OUR_NAMES)
    owned.files = [str(p.relative_to(tmp)) for p in files]  # not resolved: symlinked media point elsewhere
    owned.save()


def _label_fields(ds: Any) -> str:
    import fiftyone as fo

    return ", ".join(ds.get_field_schema(embedded_doc_type=fo.Detections).keys()) or "none"
