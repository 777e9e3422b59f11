"""Where the real test material lives (``../shared/assets`` beside a checkout, or ``$CVACTIVE_ASSETS``)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
OPENVINO_MODEL = "weights/yolov8n_int8_openvino_model"


def assets_dir() -> Path | None:
    """The assets folder: ``$CVACTIVE_ASSETS`` if set, else ``../shared/assets`` beside the repo."""
    env = os.environ.get("CVACTIVE_ASSETS")
    candidates = [Path(env)] if env else [REPO_ROOT.parent / "shared" / "assets"]
    for path in candidates:
        if path.is_dir():
            return path
    return None


def asset(relative: str) -> Path | None:
    """One asset's path, or ``None`` when the assets folder or the file is absent."""
    root = assets_dir()
    if root is None:
        return None
    path = root / relative
    return path if path.exists() else None


def data_dir() -> Path:
    """Where cvactive writes generated data by default: ``$CVACTIVE_DATA`` or ``<repo>/data``."""
    return Path(os.environ.get("CVACTIVE_DATA", REPO_ROOT / "data"))
