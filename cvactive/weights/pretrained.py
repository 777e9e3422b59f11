"""The pretrained checkpoint of the shared assets, and what ``auto`` / ``pretrained`` mean as a model name.

The folders are arguments: ``assets_dir`` (the shared assets, with the OpenVINO YOLOv8n and the
coco128 calibration images) and ``data_dir`` (where the rebuilt checkpoint is cached, as
:data:`PRETRAINED_NAME` under it); ``None`` means the defaults of :mod:`cvactive.assets`.
"""

from __future__ import annotations

from pathlib import Path

from cvactive.errors import ModelError
from cvactive.weights.rebuild import rebuild_from_openvino

#: Where the default pretrained checkpoint is cached, under the data folder (:func:`cvactive.assets.data_dir`).
PRETRAINED_NAME = "weights/yolov8n-coco-rebuilt.pt"
_CALIBRATION = "coco128/images/train2017"


def _shared(assets_dir: str | Path | None) -> tuple[Path | None, Path | None]:
    """(the OpenVINO YOLOv8n, the coco128 calibration images) of the assets folder, ``None`` where absent."""
    from cvactive.assets import OPENVINO_MODEL, asset

    return asset(OPENVINO_MODEL, assets_dir), asset(_CALIBRATION, assets_dir)


def pretrained_available(assets_dir: str | Path | None = None) -> bool:
    """Whether the shared OpenVINO YOLOv8n and the coco128 calibration images are in ``assets_dir``."""
    ir, calib = _shared(assets_dir)
    return ir is not None and calib is not None


def pretrained_checkpoint(
    out: str | Path | None = None, *, assets_dir: str | Path | None = None, data_dir: str | Path | None = None
) -> Path:
    """The COCO-pretrained YOLOv8n rebuilt from the shared OpenVINO export (cached; built on first use).

    Args:
        out: the checkpoint to write or reuse (default: :data:`PRETRAINED_NAME` under ``data_dir``).
        assets_dir: the shared assets folder (default: :func:`cvactive.assets.assets_dir`).
        data_dir: the data folder of the default ``out`` (default: :func:`cvactive.assets.data_dir`).

    Calibration: the 128 coco128 train2017 images. Raises :class:`ModelError` when the shared
    assets are absent (set ``CVACTIVE_ASSETS``, or give your own ``.pt``).
    """
    ir, calib = _shared(assets_dir)
    if ir is None or calib is None:
        raise ModelError(
            "the pretrained checkpoint is rebuilt from the shared assets' OpenVINO YOLOv8n and coco128 images, "
            "which are not here (set CVACTIVE_ASSETS); give a .pt or a scale (pico, n, s) instead"
        )
    if out is None:
        from cvactive.assets import data_dir as default_data_dir

        out = Path(data_dir if data_dir is not None else default_data_dir()) / PRETRAINED_NAME
    return rebuild_from_openvino(ir, out, calib=calib).weights


def resolve_model_name(
    model: str | Path, *, assets_dir: str | Path | None = None, data_dir: str | Path | None = None
) -> str:
    """``auto`` -> ``pretrained`` when the shared assets are there, else ``pico``; ``pretrained`` -> its path.

    Anything else is returned unchanged (a ``.pt``, a YAML or a scale name). ``assets_dir`` and
    ``data_dir`` are those of :func:`pretrained_checkpoint`.
    """
    text = str(model)
    if text == "auto":
        text = "pretrained" if pretrained_available(assets_dir) else "pico"
    if text == "pretrained":
        return str(pretrained_checkpoint(assets_dir=assets_dir, data_dir=data_dir))
    return text
