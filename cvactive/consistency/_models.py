"""Offline stand-ins for committee members and MC-dropout models: random-init YOLO checkpoints.

No trainable pretrained checkpoint exists offline. A randomly initialised YOLOv8 is useless
as-is for these measures: its batch-norm layers still hold their initial statistics, so
activations shrink layer by layer and every class score equals the head's bias whatever the
image. :func:`random_checkpoint` re-estimates the batch-norm statistics on a few real images
(forward passes in train mode, no gradients), which makes the scores depend on the image, and
saves a ``.pt`` that :class:`~cvactive.detector.Detector` loads. Different seeds give different
members. They detect nothing meaningful: use them to exercise the machinery, trained
snapshots (``cvactive train`` or a user's checkpoints) for real committees.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cvactive._env import offline_defaults


def random_checkpoint(
    out: str | Path, images: Sequence[np.ndarray], *, seed: int = 0, arch: str = "yolov8n.yaml", imgsz: int = 320
) -> Path:
    """Write a random-init ``arch`` with batch-norm statistics taken from ``images`` to ``out``.

    Args:
        out: the ``.pt`` file to write.
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
