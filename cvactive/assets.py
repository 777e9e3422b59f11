"""Where cvactive looks for the shared assets and keeps its data: the one place these defaults are resolved.

Library functions take the folders they read or write as arguments (``out``, ``out_dir``,
``data_dir``, ``assets_dir``); ``None`` means the default below. Nothing is derived from where
the package is installed, so a wheel in site-packages behaves like a checkout.

- **Data folder** (generated data and caches: the pretrained checkpoint rebuilt from the shared
  assets under ``weights/``, the default output of ``cvactive porch`` (``porch/``) and of
  ``cvactive evaluate`` (``eval/<dataset>/``)): ``cvactive --data-dir DIR``, else
  ``$CVACTIVE_DATA``, else ``$XDG_CACHE_HOME/cvactive``, else ``~/.cache/cvactive``. ``./dev.sh``
  sets ``CVACTIVE_DATA`` to the checkout's ``data/``; the tests set it to a temporary folder.
- **Shared assets** (the real models and data sets: the default ``--model`` is their COCO YOLOv8n
  OpenVINO export, the pretrained checkpoint is rebuilt from it and their coco128 images):
  ``$CVACTIVE_ASSETS``, else ``../shared/assets`` relative to the working directory (a checkout
  beside ``shared/``, used from its root).
"""

from __future__ import annotations

import os
from pathlib import Path

#: The COCO YOLOv8n OpenVINO export inside the shared assets folder.
OPENVINO_MODEL = "weights/yolov8n_int8_openvino_model"


def data_dir() -> Path:
    """The data folder: ``$CVACTIVE_DATA``, else ``$XDG_CACHE_HOME/cvactive``, else ``~/.cache/cvactive``.

    (``cvactive --data-dir DIR`` sets ``CVACTIVE_DATA`` for the command it runs.) Not created here.
    """
    env = os.environ.get("CVACTIVE_DATA")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache) if cache and Path(cache).is_absolute() else Path.home() / ".cache"  # XDG: absolute only
    return base / "cvactive"


def assets_dir() -> Path | None:
    """The shared assets folder: ``$CVACTIVE_ASSETS``, else ``../shared/assets`` from the working
    directory (returned absolute); ``None`` when that folder is not there."""
    env = os.environ.get("CVACTIVE_ASSETS")
    path = Path(env) if env else Path.cwd().parent / "shared" / "assets"
    return path if path.is_dir() else None


def asset(relative: str, root: str | Path | None = None) -> Path | None:
    """One asset's path under ``root`` (default :func:`assets_dir`); ``None`` when the folder or file is absent."""
    base = Path(root) if root is not None else assets_dir()
    if base is None:
        return None
    path = base / relative
    return path if path.exists() else None
