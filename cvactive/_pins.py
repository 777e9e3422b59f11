"""Where cvactive relies on a library's private API, the exact version it was checked against.

Every other dependency is declared as a tested range in ``pyproject.toml``; these are pinned
exactly there, and :func:`require` checks the installed version before the code that depends
on the private parts runs, so a different version fails with one clear line instead of an
``AttributeError`` deep inside a library. Ultralytics' private modules are reached only through
:func:`cvactive._ultralytics.private`, which runs this check first. ``CVACTIVE_ALLOW_UNPINNED=1`` turns the error into a
warning (to try a newer release on purpose).

torch/torchvision (the one pair that works together here) and albumentations (2.0.8, its last
MIT release) are pinned too, for those reasons, not for private APIs.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from importlib import metadata

from cvactive.errors import MissingDependencyError


@dataclass(frozen=True)
class Pin:
    """An exact version and the private parts of the library cvactive uses (with where)."""

    version: str
    uses: str
    modules: tuple[str, ...]


#: distribution -> the version whose private API cvactive uses.
PRIVATE: dict[str, Pin] = {
    "ultralytics": Pin(
        "8.4.190",
        "the predictor's preprocess/inference steps and raw head outputs, non_max_suppression(return_idxs=True), "
        "the checkpoint layout rebuilt from an OpenVINO export, and the NMS time limit lifted during "
        "training and validation (ultralytics.utils.nms.non_max_suppression swapped for the call), and the "
        "weights-only checkpoint allow-list (ultralytics.nn.tasks._SafeLoad.loading); its NMS and scale_boxes are "
        "reproduced in NumPy to the bit for the OpenVINO engine (detect.nms)",
        (
            "cvactive/_ultralytics.py",
            "cvactive/detect/model.py",
            "cvactive/detect/nms.py",
            "cvactive/train_hooks.py",
            "cvactive/weights/architecture.py",
            "cvactive/weights/checkpoint.py",
            "cvactive/weights/rebuild.py",
        ),
    ),
    "fiftyone": Pin(
        "1.22.1",
        "fiftyone.core.odm (the database connection, sample ids and _rand) and sample documents written "
        "straight to MongoDB in FiftyOne's schema",
        ("cvactive/store/_db.py", "cvactive/store/_lock.py", "cvactive/store/_service.py", "cvactive/store/write.py"),
    ),
}

_CHECKED: set[str] = set()


def require(dist: str) -> None:
    """Check that the installed ``dist`` is the version whose private API cvactive uses.

    Raises:
        MissingDependencyError: another version is installed (the message names both and the fix),
            unless ``CVACTIVE_ALLOW_UNPINNED=1``, which warns instead.
    """
    if dist in _CHECKED:
        return
    pin = PRIVATE[dist]
    try:
        installed = metadata.version(dist)
    except metadata.PackageNotFoundError as err:
        raise MissingDependencyError(f"{dist} is not installed: pip install '{dist}=={pin.version}'") from err
    if installed != pin.version:
        message = (
            f"cvactive uses private parts of {dist} ({pin.uses}) as of {dist}=={pin.version}, but {installed} is "
            f"installed: pip install '{dist}=={pin.version}' (CVACTIVE_ALLOW_UNPINNED=1 tries anyway)"
        )
        if os.environ.get("CVACTIVE_ALLOW_UNPINNED", "") not in ("1", "true", "yes"):
            raise MissingDependencyError(message)
        warnings.warn(message, stacklevel=2)
    _CHECKED.add(dist)
