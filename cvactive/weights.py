"""Rebuild a trainable Ultralytics checkpoint from an OpenVINO export of a YOLOv8 detector.

An OpenVINO IR exported by Ultralytics keeps each convolution's module path in its node name
(``__module.model.2.cv1.conv/aten::_convolution/Convolution``) and stores its weights as a
small constant chain (``Constant`` int8 -> ``Convert`` -> optional ``Subtract`` zero point ->
``Multiply`` scale, or plain FP16/FP32 constants); the bias is the constant of the ``Add`` after
the convolution. Batch norm was folded into both at export.

:func:`rebuild_from_openvino` evaluates those chains, loads the folded weights into the matching
``YOLO("yolov8<scale>.yaml")`` model and restores each ``Conv`` block as convolution + batch norm
whose running statistics are re-estimated on calibration images: with per-channel mean ``m`` and
variance ``v`` of the convolution's output, the batch norm gets ``running_mean = m``,
``running_var = v``, ``weight = sqrt(v + eps)`` and ``bias = b + m``, so in eval mode it computes
exactly ``W x + b`` (the export's output) and in train mode it normalises by batch statistics of
the size the layer really sees. The result is an ordinary Ultralytics ``.pt`` that fine-tunes.

The rebuilt checkpoint is cached: a sidecar ``<out>.json`` records a key over the IR files, the
calibration images and the settings, and a second call with the same inputs returns at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cvactive._env import offline_defaults
from cvactive._pins import require as require_pinned
from cvactive.errors import ConfigError, MissingDependencyError, ModelError, SourceError

log = logging.getLogger(__name__)

#: Bump when the rebuild changes what it writes, so cached checkpoints are rebuilt.
REBUILD_VERSION = 1
#: YOLOv8 scales tried, smallest first, when the IR does not say which one it is.
YOLOV8_SCALES = ("n", "s", "m", "l", "x")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
_PREFIX = "__module."


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


def find_ir(ir: str | Path) -> tuple[Path, Path, Path | None]:
    """The ``.xml``, ``.bin`` and ``metadata.yaml`` (or ``None``) of an IR folder or ``.xml`` path."""
    path = Path(ir)
    if path.is_dir():
        xmls = sorted(path.glob("*.xml"))
        if len(xmls) != 1:
            raise ModelError(f"{path}: expected one OpenVINO .xml in the folder, found {len(xmls)}")
        xml = xmls[0]
    elif path.suffix == ".xml" and path.is_file():
        xml = path
    else:
        raise ModelError(f"OpenVINO model {str(path)!r} does not exist (give the export folder or its .xml)")
    binf = xml.with_suffix(".bin")
    if not binf.is_file():
        raise ModelError(f"{xml}: its weights file {binf.name} is missing")
    meta = xml.parent / "metadata.yaml"
    return xml, binf, meta if meta.is_file() else None


# ---------------------------------------------------------------------------------------------
# Reading folded weights out of the IR


def _const_value(output: Any) -> np.ndarray:
    """Evaluate a constant sub-graph (Constant, Convert, Subtract, Multiply, Reshape...) to float32."""
    node = output.get_node()
    kind = node.get_type_name()
    if kind == "Constant":
        return np.asarray(node.get_data()).astype(np.float32)
    if kind == "Convert":
        return _const_value(node.input_value(0))
    if kind in ("Subtract", "Multiply", "Add", "Divide"):
        a, b = _const_value(node.input_value(0)), _const_value(node.input_value(1))
        op = {"Subtract": np.subtract, "Multiply": np.multiply, "Add": np.add, "Divide": np.divide}[kind]
        return op(a, b).astype(np.float32)
    if kind in ("Reshape", "Unsqueeze", "Squeeze"):
        return _const_value(node.input_value(0)).reshape(tuple(node.get_output_shape(0).to_shape()))
    if kind == "FakeQuantize":  # weights quantised in place: evaluate the quantisation grid
        x = _const_value(node.input_value(0))
        lo, hi = _const_value(node.input_value(1)), _const_value(node.input_value(2))
        olo, ohi = _const_value(node.input_value(3)), _const_value(node.input_value(4))
        levels = int(node.get_attributes()["levels"])
        q = np.round((np.clip(x, lo, hi) - lo) / (hi - lo) * (levels - 1))
        return (q / (levels - 1) * (ohi - olo) + olo).astype(np.float32)
    raise ModelError(f"node {node.get_friendly_name()!r}: cannot evaluate a {kind} node as a constant weight")


def read_folded_convolutions(xml: Path) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Module path (``model.2.cv1.conv``) -> (folded float32 weight, bias or ``None``) of every convolution."""
    try:
        import openvino as ov
    except ImportError as err:
        raise MissingDependencyError(
            "reading an OpenVINO model needs openvino: pip install 'cvactive[openvino]'"
        ) from err
    try:
        model = ov.Core().read_model(str(xml))
    except RuntimeError as err:
        raise ModelError(f"{xml}: OpenVINO cannot read it: {err}") from err
    out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    unnamed: list[str] = []
    for node in model.get_ordered_ops():
        if node.get_type_name() != "Convolution":
            continue
        name = node.get_friendly_name()
        head = name.split("/", 1)[0]
        if not head.startswith(_PREFIX):
            unnamed.append(name)
            continue
        weight = _const_value(node.input_value(1))
        bias = None
        for target in node.output(0).get_target_inputs():
            add = target.get_node()
            if add.get_type_name() != "Add":
                continue
            other = add.input_value(1 - target.get_index())
            try:
                bias = _const_value(other).reshape(-1)
            except ModelError:
                continue
        out[head[len(_PREFIX) :]] = (weight, bias)
    if unnamed:
        raise ModelError(
            f"{xml}: {len(unnamed)} convolution(s) do not carry an Ultralytics module name, e.g. {unnamed[0]!r}; "
            "export the model with Ultralytics (model.export(format='openvino'))"
        )
    if not out:
        raise ModelError(f"{xml}: no convolution found; is it a detection model?")
    return out


# ---------------------------------------------------------------------------------------------
# Matching the IR to an Ultralytics architecture


def _architecture(scale: str, nc: int) -> Any:
    from ultralytics.nn.tasks import DetectionModel

    return DetectionModel(f"yolov8{scale}.yaml", nc=nc, verbose=False)


def _mismatch(model: Any, convs: dict[str, tuple[np.ndarray, np.ndarray | None]]) -> list[str]:
    """What keeps ``convs`` from loading into ``model`` (empty when every convolution maps)."""
    import torch.nn as nn

    modules = dict(model.named_modules())
    problems = []
    for name, (weight, _bias) in convs.items():
        conv = modules.get(name)
        if not isinstance(conv, nn.Conv2d):
            problems.append(f"{name}: no such convolution in the architecture")
        elif tuple(conv.weight.shape) != weight.shape:
            problems.append(f"{name}: weight {weight.shape} vs architecture {tuple(conv.weight.shape)}")
    missing = [
        n for n, m in modules.items() if isinstance(m, nn.Conv2d) and n not in convs and not n.endswith("dfl.conv")
    ]
    problems += [f"{n}: in the architecture but not in the IR" for n in missing]
    return problems


def match_architecture(convs: dict[str, tuple[np.ndarray, np.ndarray | None]], nc: int, scale: str | None) -> tuple:
    """The YOLOv8 model (and its scale) whose convolutions match the IR's one to one."""
    tried: dict[str, list[str]] = {}
    for s in [scale] if scale else YOLOV8_SCALES:
        model = _architecture(s, nc)
        problems = _mismatch(model, convs)
        if not problems:
            return model, s
        tried[s] = problems
    best = min(tried, key=lambda s: len(tried[s]))
    detail = "; ".join(tried[best][:3]) + (f" (+{len(tried[best]) - 3} more)" if len(tried[best]) > 3 else "")
    raise ModelError(
        f"the IR's {len(convs)} convolutions match no YOLOv8 detection architecture (scales tried: "
        f"{', '.join(tried)}); closest yolov8{best}: {detail}"
    )


# ---------------------------------------------------------------------------------------------
# Calibration images and batch-norm statistics


def calibration_images(source: str | Path | Sequence[str | Path], limit: int | None = 128) -> list[Path]:
    """Image files of a folder (recursively), a text file listing paths, or a list of paths; sorted."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file() and path.suffix == ".txt":
            files = [Path(line.strip()) for line in path.read_text().splitlines() if line.strip()]
        elif path.is_file():
            files = [path]
        else:
            raise SourceError(f"calibration images {str(path)!r} do not exist")
    else:
        files = [Path(p) for p in source]
    if not files:
        raise SourceError(f"no calibration images found in {source!r}")
    return files[:limit] if limit else files


def _letterboxed(files: Iterable[Path], imgsz: int, batch: int) -> Iterable[Any]:
    """Batches of float tensors (B, 3, imgsz, imgsz), RGB in [0, 1], letterboxed as Ultralytics does."""
    import torch
    from ultralytics.data.augment import LetterBox

    from cvactive.sources import read_image

    box = LetterBox((imgsz, imgsz), auto=False, stride=32)
    chunk: list[np.ndarray] = []
    for f in files:
        img = np.asarray(box(image=read_image(f)))
        chunk.append(np.ascontiguousarray(img[..., ::-1].transpose(2, 0, 1)))
        if len(chunk) == batch:
            yield torch.from_numpy(np.stack(chunk)).float() / 255.0
            chunk = []
    if chunk:
        yield torch.from_numpy(np.stack(chunk)).float() / 255.0


def _restore_batch_norm(model: Any, convs: dict[str, tuple[np.ndarray, np.ndarray | None]], batches: Iterable) -> int:
    """Load folded weights; re-estimate every ``Conv`` block's batch norm; return the images seen."""
    import torch
    import torch.nn as nn
    from ultralytics.nn.modules.conv import Conv

    modules = dict(model.named_modules())
    blocks: dict[str, Any] = {}
    with torch.no_grad():
        for name, (weight, bias) in convs.items():
            conv = modules[name]
            conv.weight.copy_(torch.from_numpy(weight))
            b = torch.zeros(weight.shape[0]) if bias is None else torch.from_numpy(bias)
            parent = modules.get(name.rsplit(".", 1)[0]) if name.endswith(".conv") else None
            if isinstance(parent, Conv) and isinstance(getattr(parent, "bn", None), nn.BatchNorm2d):
                bn = parent.bn
                bn.weight.fill_(1.0)
                bn.bias.copy_(b)
                bn.reset_running_stats()
                bn.running_var.fill_(1.0 - bn.eps)  # type: ignore[union-attr]  # eval: y = W x + b exactly
                blocks[name] = bn
            elif conv.bias is not None:
                conv.bias.copy_(b)
            elif bias is not None and np.any(bias != 0):
                raise ModelError(f"{name}: the IR has a bias but the architecture's convolution has none")
    sums = {n: torch.zeros(bn.num_features, dtype=torch.float64) for n, bn in blocks.items()}
    squares = {n: torch.zeros_like(s) for n, s in sums.items()}
    counts = dict.fromkeys(blocks, 0)

    def hook(name: str) -> Any:
        def record(_module: Any, _inputs: Any, output: Any) -> None:
            y = output.detach().double()
            sums[name] += y.sum(dim=(0, 2, 3))
            squares[name] += (y * y).sum(dim=(0, 2, 3))
            counts[name] += y.shape[0] * y.shape[2] * y.shape[3]

        return record

    handles = [modules[n].register_forward_hook(hook(n)) for n in blocks]
    model.eval()
    images = 0
    try:
        with torch.no_grad():
            for batch in batches:
                model(batch)
                images += batch.shape[0]
    finally:
        for h in handles:
            h.remove()
    if images == 0:
        raise SourceError("no calibration image could be read")
    with torch.no_grad():
        for name, bn in blocks.items():
            mean = sums[name] / counts[name]
            var = (squares[name] / counts[name] - mean * mean).clamp_min(0.0)
            bn.running_mean.copy_(mean.float())
            bn.running_var.copy_(var.float())
            bn.weight.copy_(torch.sqrt(var + bn.eps).float())
            bn.bias.add_(mean.float())
    return images


# ---------------------------------------------------------------------------------------------
# The public entry point


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
    seen = _restore_batch_norm(model, convs, _letterboxed(files, size, batch))
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
    from ultralytics.cfg import DEFAULT_CFG_DICT

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
# The pretrained checkpoint of the shared assets

#: Where the default pretrained checkpoint is cached, under :func:`cvactive.assets.data_dir`.
PRETRAINED_NAME = "weights/yolov8n-coco-rebuilt.pt"


def pretrained_available() -> bool:
    """Whether the shared OpenVINO YOLOv8n and the coco128 calibration images are present."""
    from cvactive.assets import OPENVINO_MODEL, asset

    return asset(OPENVINO_MODEL) is not None and asset("coco128/images/train2017") is not None


def pretrained_checkpoint(out: str | Path | None = None) -> Path:
    """The COCO-pretrained YOLOv8n rebuilt from the shared OpenVINO export (cached; built on first use).

    Calibration: the 128 coco128 train2017 images. Raises :class:`ModelError` when the shared
    assets are absent (set ``CVACTIVE_ASSETS``, or give your own ``.pt``).
    """
    from cvactive.assets import OPENVINO_MODEL, asset, data_dir

    ir, calib = asset(OPENVINO_MODEL), asset("coco128/images/train2017")
    if ir is None or calib is None:
        raise ModelError(
            "the pretrained checkpoint is rebuilt from the shared assets' OpenVINO YOLOv8n and coco128 images, "
            "which are not here (set CVACTIVE_ASSETS); give a .pt or a scale (pico, n, s) instead"
        )
    target = Path(out) if out is not None else data_dir() / PRETRAINED_NAME
    return rebuild_from_openvino(ir, target, calib=calib).weights


def resolve_model_name(model: str | Path) -> str:
    """``auto`` -> ``pretrained`` when the shared assets are there, else ``pico``; ``pretrained`` -> its path.

    Anything else is returned unchanged (a ``.pt``, a YAML or a scale name).
    """
    text = str(model)
    if text == "auto":
        text = "pretrained" if pretrained_available() else "pico"
    if text == "pretrained":
        return str(pretrained_checkpoint())
    return text
