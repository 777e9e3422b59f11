"""The pretrained checkpoint of the shared assets, and what ``auto`` / ``pretrained`` mean as a model name."""

from __future__ import annotations

from pathlib import Path

from cvactive.errors import ModelError
from cvactive.weights.rebuild import rebuild_from_openvino

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
