"""Writing a synthetic set: images, YOLO labels, one provenance line per image, the data set YAMLs.

Layout of ``OUT``: ``images/train``, ``labels/train``, ``data.yaml`` (the synthetic set),
``combined.yaml`` with ``combined_train.txt`` (the labeled set plus the synthetic one),
``provenance.jsonl`` and ``summary.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from cvactive.boxes import xyxy_to_yolo
from cvactive.errors import ConfigError, DatasetError, OutputError, SourceError
from cvactive.outputs import (
    OwnedDir,
    atomic_path,
    check_dir_output,
    claim_dir,
    folder_lock,
    read_owner,
    user_content,
    write_text_atomic,
)
from cvactive.synthesis.gaps import Profile
from cvactive.synthesis.images import array_luma
from cvactive.synthesis.plan import Job
from cvactive.yolodata import YoloDataset, YoloItem

PROVENANCE = "provenance.jsonl"
SUMMARY = "summary.json"
COMMAND = "synthesize"
#: the files of a synthetic set besides its images and labels (summary.json is written last)
SET_FILES = (PROVENANCE, "data.yaml", "combined.yaml", "combined_train.txt", SUMMARY)


def yolo_label_text(xyxy: np.ndarray, classes: np.ndarray, width: int, height: int) -> str:
    """YOLO label text for pixel boxes, clipped into the image and rounded so every box stays inside."""
    b = np.asarray(xyxy, np.float64).reshape(-1, 4) / [width, height, width, height]
    b = np.clip(b, 0.0, 1.0)
    b[:, :2] = np.ceil(b[:, :2] * 1e6) / 1e6
    b[:, 2:] = np.floor(b[:, 2:] * 1e6) / 1e6
    rows = []
    for (x1, y1, x2, y2), c in zip(b, classes):
        if x2 - x1 <= 0 or y2 - y1 <= 0:
            continue
        rows.append(f"{int(c)} {(x1 + x2) / 2:.6f} {(y1 + y2) / 2:.6f} {x2 - x1:.6f} {y2 - y1:.6f}")
    return "\n".join(rows) + ("\n" if rows else "")


def check_out(out_dir: Path, *, inputs: Iterable[str | os.PathLike[str]] = ()) -> None:
    """Refuse, before any work, an ``out_dir`` that cannot take a synthetic set: a file, under a
    file, not writable, overlapping an input (the labeled set), or holding files cvactive did not
    write there (or that another cvactive command wrote).

    Raises:
        OutputError: what is wrong, in one line.
    """
    check_dir_output(out_dir, inputs=inputs)
    owner = read_owner(out_dir)
    if owner is not None:
        if owner.command != COMMAND:
            raise OutputError(f"{out_dir} holds the output of cvactive {owner.command}; choose another --out")
        return
    if (out_dir / PROVENANCE).is_file():
        return  # a set written before the ownership marker: its provenance lists its files
    content = user_content(out_dir)
    if content:
        shown = ", ".join(p.name + ("/" if p.is_dir() else "") for p in content[:5])
        more = f", ... ({len(content)} in all)" if len(content) > 5 else ""
        raise OutputError(
            f"{out_dir} is not empty and was not written by cvactive synthesize (holds {shown}{more}); "
            "give an empty or new folder for the synthetic set"
        )


@contextlib.contextmanager
def prepare_out(out_dir: Path, overwrite: bool, *, inputs: Iterable[str | os.PathLike[str]] = ()) -> Iterator[OwnedDir]:
    """Lock ``out_dir`` for the run and make it ready for a synthetic set; yields its ownership record.

    A complete set already there (``summary.json``) needs ``overwrite``; then, as with the files of
    an unfinished run (killed midway), only the files cvactive recorded writing are removed: other
    files in the folder stay.

    Raises:
        OutputError: see :func:`check_out`, or another run holds the folder.
        ConfigError: ``out_dir`` holds a synthetic set and ``overwrite`` is off.
    """
    check_out(out_dir, inputs=inputs)
    with folder_lock(out_dir, COMMAND):
        owned = read_owner(out_dir) or _adopt(out_dir)
        if (out_dir / SUMMARY).is_file() and not overwrite:
            raise ConfigError(
                f"{out_dir} already holds a synthetic set; pass overwrite=True (--overwrite) to replace it"
            )
        owned.remove_owned()  # the earlier set, or what a killed run left
        _remove_stale_temporaries(out_dir)
        yield owned


def _remove_stale_temporaries(out_dir: Path) -> None:
    """Remove the temporary files (``.NAME.tmp-PID``) a killed run left in the set's folders; we hold
    the folder's lock, so no run is writing them."""
    import re

    pattern = re.compile(r"^\..+\.tmp-\d+(\.png)?$")
    for folder in (out_dir, out_dir / "images" / "train", out_dir / "labels" / "train"):
        if folder.is_dir():
            for entry in folder.iterdir():
                if pattern.match(entry.name) and entry.is_file():
                    entry.unlink()


def _adopt(out_dir: Path) -> OwnedDir:
    """The ownership record of ``out_dir``: new, or rebuilt from a set's provenance (written before the marker)."""
    prov = out_dir / PROVENANCE
    if not prov.is_file():
        return claim_dir(out_dir, COMMAND)
    files: list[Path] = []
    for entry in load_provenance(out_dir).values():
        for key in ("image", "label"):
            p = Path(entry.get(key, ""))
            if p.is_file() and out_dir in p.parents:
                files.append(p)
    owned = OwnedDir(out_dir, COMMAND)
    owned.record([*files, *(out_dir / name for name in SET_FILES)])
    return owned


class SyntheticWriter:
    """Writes each synthetic image, its label file and its provenance line, and tallies what it wrote.

    Use as a context manager (it holds ``provenance.jsonl`` open). After the run, :meth:`profile`
    is the :class:`Profile` of the written images and :attr:`by_recipe` counts them per recipe.
    """

    def __init__(self, out_dir: Path, quality: int, owned: OwnedDir | None = None) -> None:
        self.out_dir, self.quality, self.owned = out_dir, quality, owned
        self.img_dir, self.lbl_dir = out_dir / "images" / "train", out_dir / "labels" / "train"
        self.img_dir.mkdir(parents=True, exist_ok=True)
        self.lbl_dir.mkdir(parents=True, exist_ok=True)
        self.written: list[str] = []
        self.by_recipe: dict[str, int] = {}
        self._luma: list[float] = []
        self._boxes: list[np.ndarray] = []
        self._classes: list[np.ndarray] = []
        self._prov: Any = None

    def __enter__(self) -> SyntheticWriter:
        # provenance.jsonl appears (under its name) only when every image is written
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_path(self.out_dir / PROVENANCE, fsync=False))
        self._prov = self._stack.enter_context(tmp.open("w", encoding="utf-8"))
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self._stack.__exit__(kind, err, tb)

    @staticmethod
    def stem(index: int, job: Job, parent: YoloItem) -> str:
        """The file name (no suffix) of job ``index``'s image and label."""
        return f"syn_{index:05d}_{job.recipe.name}_{parent.image.stem}"

    def plan(self, jobs: Sequence[Job], items: Sequence[YoloItem]) -> None:
        """Record every file the run may write before it writes any, so a later run can remove them
        (and nothing else) even when this one is killed midway."""
        if self.owned is None:
            return
        paths = [self.out_dir / name for name in SET_FILES]
        for j, job in enumerate(jobs):
            stem = self.stem(j, job, items[job.parent])
            paths += [self.img_dir / f"{stem}.jpg", self.lbl_dir / f"{stem}.txt"]
        self.owned.record(paths)

    def write(
        self, index: int, job: Job, parent: YoloItem, made: tuple[np.ndarray, np.ndarray, np.ndarray, Any], seed: int
    ) -> Path:
        """Write job ``index``'s image (RGB), label and provenance line; returns the image path."""
        import cv2

        image, boxes, classes, params = made
        h, w = image.shape[:2]
        stem = self.stem(index, job, parent)
        img_path = self.img_dir / f"{stem}.jpg"
        lbl_path = self.lbl_dir / f"{stem}.txt"
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:  # pragma: no cover - OpenCV always encodes uint8 RGB
            raise SourceError(f"cannot encode {img_path}")
        with atomic_path(img_path, fsync=False) as tmp:
            tmp.write_bytes(buf.tobytes())
        write_text_atomic(lbl_path, yolo_label_text(boxes, classes, w, h), fsync=False)
        entry = {
            "image": str(img_path),
            "parent": str(parent.image.resolve()),
            "recipe": job.recipe.name,
            "params": params,
            "seed": int(seed),
            "target": job.plan.label,
            "label": str(lbl_path),
            "boxes": len(classes),
        }
        self._prov.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self.written.append(str(img_path))
        self._luma.append(array_luma(image))
        self._boxes.append(xyxy_to_yolo(boxes, w, h))
        self._classes.append(np.asarray(classes, np.int64))
        self.by_recipe[job.recipe.name] = self.by_recipe.get(job.recipe.name, 0) + 1
        job.plan.used[job.recipe.name] = job.plan.used.get(job.recipe.name, 0) + 1
        return img_path

    def profile(self, num_classes: int) -> Profile:
        """The :class:`Profile` of the images written so far."""
        return Profile.from_images(self._luma, self._boxes, self._classes, num_classes)


def write_yaml(
    out_dir: Path,
    ds: YoloDataset,
    names: Mapping[int, str],
    split: str,
    items: Sequence[YoloItem],
    written: Sequence[str],
) -> tuple[Path, Path]:
    """``data.yaml`` (the synthetic set) and ``combined.yaml`` (labeled + synthetic, via a list file)."""
    import yaml

    val = None
    for name in ("val", "test"):
        if name in ds.splits and name != split and ds.splits[name]:
            val = split_dir(ds, name)
            break
    data = {"path": str(out_dir), "train": "images/train", "val": val or "images/train", "names": dict(names)}
    data_yaml = out_dir / "data.yaml"
    write_text_atomic(data_yaml, yaml.safe_dump(data, sort_keys=False), fsync=False)
    listing = out_dir / "combined_train.txt"
    lines = [str(it.image.resolve()) for it in items] + list(written)
    write_text_atomic(listing, "\n".join(lines) + "\n", fsync=False)
    combined = {"path": str(out_dir), "train": listing.name, "val": val or listing.name, "names": dict(names)}
    combined_yaml = out_dir / "combined.yaml"
    write_text_atomic(combined_yaml, yaml.safe_dump(combined, sort_keys=False), fsync=False)
    return data_yaml, combined_yaml


def split_dir(ds: YoloDataset, split: str) -> str:
    """The folder (or list file) of a split, as an absolute path."""
    images = [it.image for it in ds.splits[split]]
    return os.path.commonpath([str(p.parent.resolve()) for p in images])


def load_provenance(out: str | Path) -> dict[str, dict[str, Any]]:
    """The provenance of a synthetic set, keyed by the absolute path of each synthetic image.

    Each value has ``image``, ``parent``, ``recipe``, ``params`` and ``seed`` (and ``target``,
    ``label``, ``boxes``).

    Raises:
        DatasetError: ``out`` has no ``provenance.jsonl`` or a line of it is not valid JSON.
    """
    path = Path(out) / PROVENANCE if Path(out).is_dir() else Path(out)
    if not path.is_file():
        raise DatasetError(f"{path}: no provenance file (is {out} a cvactive synthetic set?)")
    entries: dict[str, dict[str, Any]] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                entries[str(entry["image"])] = entry
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise DatasetError(f"{path}:{lineno}: not a provenance line ({err})") from err
    return entries
