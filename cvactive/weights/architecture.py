"""Matching folded weights to a YOLOv8 architecture and restoring batch norm from calibration images."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cvactive._ultralytics import private
from cvactive.errors import ConfigError, ModelError, SourceError

#: YOLOv8 scales tried, smallest first, when the IR does not say which one it is.
YOLOV8_SCALES = ("n", "s", "m", "l", "x")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def _architecture(scale: str, nc: int) -> Any:
    tasks = private("ultralytics.nn.tasks")
    return tasks.DetectionModel(f"yolov8{scale}.yaml", nc=nc, verbose=False)


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
    """Image files of a folder (recursively), a text file listing paths, or a list of paths; sorted.

    ``limit``: at most this many (the first ones), ``None`` for all.

    Raises:
        ConfigError: ``limit`` is below 1.
        SourceError: the source does not exist or names no image.
    """
    if limit is not None and limit < 1:
        raise ConfigError(f"calibration image limit must be at least 1 (None for all), got {limit}")
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
    return files if limit is None else files[:limit]


def letterboxed(files: Iterable[Path], imgsz: int, batch: int) -> Iterable[Any]:
    """Batches of float tensors (B, 3, imgsz, imgsz), RGB in [0, 1], letterboxed as Ultralytics does."""
    import torch

    from cvactive.sources import read_image

    box = private("ultralytics.data.augment").LetterBox((imgsz, imgsz), auto=False, stride=32)
    chunk: list[np.ndarray] = []
    for f in files:
        img = np.asarray(box(image=read_image(f)))
        chunk.append(np.ascontiguousarray(img[..., ::-1].transpose(2, 0, 1)))
        if len(chunk) == batch:
            yield torch.from_numpy(np.stack(chunk)).float() / 255.0
            chunk = []
    if chunk:
        yield torch.from_numpy(np.stack(chunk)).float() / 255.0


def restore_batch_norm(model: Any, convs: dict[str, tuple[np.ndarray, np.ndarray | None]], batches: Iterable) -> int:
    """Load folded weights; re-estimate every ``Conv`` block's batch norm; return the images seen."""
    import torch
    import torch.nn as nn

    conv_block = private("ultralytics.nn.modules.conv").Conv
    modules = dict(model.named_modules())
    blocks: dict[str, Any] = {}
    with torch.no_grad():
        for name, (weight, bias) in convs.items():
            conv = modules[name]
            conv.weight.copy_(torch.from_numpy(weight))
            b = torch.zeros(weight.shape[0]) if bias is None else torch.from_numpy(bias)
            parent = modules.get(name.rsplit(".", 1)[0]) if name.endswith(".conv") else None
            if isinstance(parent, conv_block) and isinstance(getattr(parent, "bn", None), nn.BatchNorm2d):
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
