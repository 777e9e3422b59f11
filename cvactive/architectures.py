"""Model architectures to train from scratch, and random-init checkpoints.

:func:`scaled_architecture` writes a narrower YOLOv8 variant (the ``pico`` scale, an eighth of
YOLOv8's base width) that trains from scratch on a CPU in a few minutes; :func:`resolve_model`
turns a model argument (a ``.pt``, ``pretrained``, a YAML or a scale name) into what Ultralytics
loads. :func:`random_checkpoint` writes a random-init model with real batch-norm statistics (an
offline stand-in for committee members and MC-dropout models).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cvactive._env import offline_defaults
from cvactive.errors import ConfigError, ModelError

#: name -> (depth, width, max_channels) multipliers of the YOLOv8 architecture.
SCALES: dict[str, tuple[float, float, int]] = {
    "pico": (0.33, 0.125, 1024),
    "n": (0.33, 0.25, 1024),
    "s": (0.33, 0.50, 1024),
}


def scaled_architecture(scale: str, out_dir: str | Path, base: str = "yolov8.yaml") -> Path:
    """Write Ultralytics' ``base`` architecture YAML with one scale, ``yolov8-<scale>.yaml``, into ``out_dir``."""
    import yaml
    from ultralytics.utils import checks

    if scale not in SCALES:
        raise ConfigError(f"unknown scale {scale!r}; valid scales: {', '.join(SCALES)}")
    arch = yaml.safe_load(Path(checks.check_yaml(base)).read_text())
    arch["scales"] = {"n": list(SCALES[scale])}  # a lone scale is used whatever the file name says
    # The "yolov8n" in the name only silences Ultralytics' "no model scale" warning: the file holds one scale.
    out = Path(out_dir) / f"cvactive-{scale}-yolov8n.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(arch, sort_keys=False))
    return out


def resolve_model(model: str | Path, work_dir: str | Path) -> str:
    """A model argument for training: ``pico``/``n``/``s`` become architecture YAMLs in ``work_dir``."""
    text = str(model)
    if text in ("pretrained", "auto"):
        from cvactive.weights import resolve_model_name

        text = resolve_model_name(text)
    if text in SCALES:
        return str(scaled_architecture(text, work_dir))
    if not Path(text).exists() and not text.endswith((".yaml", ".yml")):
        raise ModelError(
            f"model {text!r} does not exist; give a .pt, a model .yaml, or one of the scales {', '.join(SCALES)}"
        )
    return text


def random_checkpoint(
    out: str | Path, images: Sequence[np.ndarray], *, seed: int = 0, arch: str = "yolov8n.yaml", imgsz: int = 320
) -> Path:
    """Write a random-init ``arch`` with batch-norm statistics taken from ``images`` to ``out``.

    An offline stand-in for committee members and MC-dropout models. A randomly initialised
    YOLOv8 as it is scores every image alike: its batch-norm layers still hold their initial
    statistics, so activations shrink layer by layer and every class score equals the head's
    bias. Re-estimating the statistics on a few real images (forward passes in train mode, no
    gradients) makes the scores depend on the image. Different seeds give different members.
    They detect nothing meaningful: use them to exercise the machinery, trained snapshots for
    real committees.

    Args:
        out: the ``.pt`` file to write (:class:`~cvactive.detect.model.Detector` loads it).
        images: a few BGR ``uint8`` images (any sizes; each is resized to ``imgsz`` square).
        seed: the torch seed of the initial weights.
        arch: an Ultralytics architecture YAML.
        imgsz: the square size the statistics are taken at.
    """
    offline_defaults()
    import cv2
    import torch
    from ultralytics import YOLO

    torch.manual_seed(seed)
    yolo = YOLO(arch, task="detect")
    net = yolo.model
    assert isinstance(net, torch.nn.Module)
    batch = np.stack([cv2.resize(im, (imgsz, imgsz))[..., ::-1] for im in images]).astype(np.float32) / 255.0
    x = torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the passes
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net(x)
    net.eval()
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    yolo.save(path)
    return path
