"""``rebuild_from_openvino``: the cached rebuild of a trainable checkpoint (see :mod:`cvactive.weights`)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cvactive._env import offline_defaults
from cvactive._pins import require as require_pinned
from cvactive._ultralytics import private
from cvactive.errors import ConfigError, ModelError
from cvactive.weights.architecture import (
    YOLOV8_SCALES,
    calibration_images,
    letterboxed,
    match_architecture,
    restore_batch_norm,
)
from cvactive.weights.ir import find_ir, read_folded_convolutions

log = logging.getLogger(__name__)

#: Bump when the rebuild changes what it writes, so cached checkpoints are rebuilt.
REBUILD_VERSION = 1


@dataclass(frozen=True)
class RebuildResult:
    """What :func:`rebuild_from_openvino` produced."""

    weights: Path
    scale: str
    classes: int
    convolutions: int
    calibration_images: int
    cached: bool
    seconds: float


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _cache_key(xml: Path, binf: Path, meta: Path | None, files: list[Path], imgsz: int, scale: str | None) -> str:
    import ultralytics

    h = hashlib.sha256()
    for part in (xml, binf, meta):
        h.update((_file_digest(part) if part else "-").encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}:{st.st_size}:{int(st.st_mtime)}".encode())
    h.update(f"{imgsz}:{scale}:{REBUILD_VERSION}:{ultralytics.__version__}".encode())
    return h.hexdigest()


def _metadata(meta: Path | None) -> dict[str, Any]:
    import yaml

    if meta is None:
        return {}
    data = yaml.safe_load(meta.read_text()) or {}
    if not isinstance(data, dict):
        raise ModelError(f"{meta}: expected a mapping")
    return data


def rebuild_from_openvino(
    ir: str | Path,
    out: str | Path,
    *,
    calib: str | Path | Sequence[str | Path],
    calib_limit: int | None = 128,
    imgsz: int | None = None,
    scale: str | None = None,
    batch: int = 8,
    force: bool = False,
) -> RebuildResult:
    """Rebuild a trainable ``.pt`` from an Ultralytics OpenVINO export (INT8, FP16 or FP32 weights).

    Args:
        ir: the export folder (``*_openvino_model/``) or its ``.xml``.
        out: the checkpoint to write (a ``<out>.json`` sidecar records how it was made).
        calib: calibration images for batch norm: a folder, a ``.txt`` list of paths, or paths.
        calib_limit: use at most this many of them (sorted by path), ``None`` for all.
        imgsz: calibration image size; default the export's ``imgsz`` from ``metadata.yaml`` (or 640).
        scale: the YOLOv8 scale (``n``, ``s``, ...); by default the one whose convolutions match.
        batch: calibration batch size.
        force: rebuild even when the cached checkpoint matches.

    Raises:
        ModelError: the IR cannot be read or its convolutions match no YOLOv8 architecture.
        SourceError: no calibration image could be found or read.
    """
    offline_defaults()
    require_pinned("ultralytics")  # the checkpoint layout is Ultralytics' own
    start = time.perf_counter()
    xml, binf, meta = find_ir(ir)
    if scale is not None and scale not in YOLOV8_SCALES:
        raise ConfigError(f"unknown YOLOv8 scale {scale!r}; valid scales: {', '.join(YOLOV8_SCALES)}")
    info = _metadata(meta)
    if info.get("task", "detect") != "detect":
        raise ModelError(f"{xml}: a {info.get('task')!r} model; only detection models can be rebuilt")
    size = int(imgsz or (info.get("imgsz") or [640])[0])
    files = calibration_images(calib, calib_limit)
    out_path = Path(out)
    sidecar = out_path.with_name(out_path.name + ".json")
    key = _cache_key(xml, binf, meta, files, size, scale)
    if not force and out_path.is_file() and sidecar.is_file():
        made = json.loads(sidecar.read_text())
        if made.get("key") == key:
            return RebuildResult(
                out_path,
                made["scale"],
                made["classes"],
                made["convolutions"],
                made["calibration_images"],
                True,
                time.perf_counter() - start,
            )
    convs = read_folded_convolutions(xml)
    raw_names = info.get("names")
    names = {int(k): str(v) for k, v in raw_names.items()} if isinstance(raw_names, dict) else {}
    nc = len(names) or _classes_from_head(convs)
    names = names or {i: f"class{i}" for i in range(nc)}
    model, found = match_architecture(convs, nc, scale)
    seen = restore_batch_norm(model, convs, letterboxed(files, size, batch))
    _save_checkpoint(model, names, size, out_path, source=str(xml))
    record = {
        "key": key,
        "ir": str(xml.resolve()),
        "scale": found,
        "classes": nc,
        "convolutions": len(convs),
        "calibration_images": seen,
        "imgsz": size,
        "rebuild_version": REBUILD_VERSION,
    }
    tmp = sidecar.with_name(sidecar.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, sidecar)
    seconds = time.perf_counter() - start
    log.info("rebuilt yolov8%s (%d classes) from %s in %.1f s", found, nc, xml, seconds)
    return RebuildResult(out_path, found, nc, len(convs), seen, False, seconds)


def _classes_from_head(convs: dict[str, tuple[np.ndarray, np.ndarray | None]]) -> int:
    """The class count from the last classification convolution (``model.22.cv3.0.2``)."""
    heads = [w.shape[0] for name, (w, _b) in convs.items() if name.endswith("cv3.0.2")]
    if not heads:
        raise ModelError("the IR has no metadata.yaml with class names and no cv3 head to count classes from")
    return int(heads[0])


def _save_checkpoint(model: Any, names: dict[int, str], imgsz: int, out: Path, *, source: str) -> None:
    """Write an Ultralytics checkpoint that ``YOLO(out)`` loads and ``YOLO(out).train`` fine-tunes."""
    import datetime

    import torch
    import ultralytics

    DEFAULT_CFG_DICT = private("ultralytics.cfg").DEFAULT_CFG_DICT

    model.names = names
    model.nc = len(names)
    model.args = {**DEFAULT_CFG_DICT, "imgsz": imgsz, "task": "detect"}
    model.eval()
    ckpt = {
        "model": model.float(),
        "train_args": {"imgsz": imgsz, "task": "detect", "model": f"rebuilt from {source}"},
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "version": ultralytics.__version__,
        "epoch": -1,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, out)


# ---------------------------------------------------------------------------------------------
