"""Writing a synthetic set: images, YOLO labels, one provenance line per image, the data set YAMLs.

Layout of ``OUT``: ``images/train``, ``labels/train``, ``data.yaml`` (the synthetic set),
``combined.yaml`` with ``combined_train.txt`` (the labeled set plus the synthetic one),
``provenance.jsonl`` and ``summary.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from cvactive.boxes import xyxy_to_yolo
from cvactive.errors import ConfigError, DatasetError, SourceError
from cvactive.synthesis.gaps import Profile
from cvactive.synthesis.images import array_luma
from cvactive.synthesis.plan import Job
from cvactive.yolodata import YoloDataset, YoloItem

PROVENANCE = "provenance.jsonl"


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


def prepare_out(out_dir: Path, overwrite: bool) -> None:
    """Make sure ``out_dir`` may receive a synthetic set; with ``overwrite``, remove the one already there.

    Raises:
        ConfigError: ``out_dir`` holds a synthetic set and ``overwrite`` is off, or holds other files.
    """
    prov = out_dir / PROVENANCE
    if prov.exists():
        if not overwrite:
            raise ConfigError(
                f"{out_dir} already holds a synthetic set; pass overwrite=True (--overwrite) to replace it"
            )
        for entry in load_provenance(out_dir).values():
            for key in ("image", "label"):
                p = Path(entry.get(key, ""))
                if p.is_file() and out_dir in p.parents:
                    p.unlink()
        for name in (PROVENANCE, "summary.json", "data.yaml", "combined.yaml", "combined_train.txt"):
            (out_dir / name).unlink(missing_ok=True)
    elif out_dir.exists() and any(out_dir.iterdir()):
        raise ConfigError(f"{out_dir} exists and is not empty; give an empty or new folder for the synthetic set")


class SyntheticWriter:
    """Writes each synthetic image, its label file and its provenance line, and tallies what it wrote.

    Use as a context manager (it holds ``provenance.jsonl`` open). After the run, :meth:`profile`
    is the :class:`Profile` of the written images and :attr:`by_recipe` counts them per recipe.
    """

    def __init__(self, out_dir: Path, quality: int) -> None:
        self.out_dir, self.quality = out_dir, quality
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
        self._prov = (self.out_dir / PROVENANCE).open("w", encoding="utf-8")
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self._prov.close()

    def write(
        self, index: int, job: Job, parent: YoloItem, made: tuple[np.ndarray, np.ndarray, np.ndarray, Any], seed: int
    ) -> Path:
        """Write job ``index``'s image (RGB), label and provenance line; returns the image path."""
        import cv2

        image, boxes, classes, params = made
        h, w = image.shape[:2]
        stem = f"syn_{index:05d}_{job.recipe.name}_{parent.image.stem}"
        img_path = self.img_dir / f"{stem}.jpg"
        lbl_path = self.lbl_dir / f"{stem}.txt"
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:  # pragma: no cover - OpenCV always encodes uint8 RGB
            raise SourceError(f"cannot encode {img_path}")
        img_path.write_bytes(buf.tobytes())
        lbl_path.write_text(yolo_label_text(boxes, classes, w, h))
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
    data_yaml.write_text(yaml.safe_dump(data, sort_keys=False))
    listing = out_dir / "combined_train.txt"
    listing.write_text("\n".join([str(it.image.resolve()) for it in items] + list(written)) + "\n")
    combined = {"path": str(out_dir), "train": listing.name, "val": val or listing.name, "names": dict(names)}
    combined_yaml = out_dir / "combined.yaml"
    combined_yaml.write_text(yaml.safe_dump(combined, sort_keys=False))
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
