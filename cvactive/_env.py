"""Environment defaults that keep third-party libraries offline and quiet.

Adapters call :func:`offline_defaults` before importing Ultralytics, FiftyOne or
albumentations. Each value is only a default: a variable the user already set wins.
"""

from __future__ import annotations

import os

_DEFAULTS = {
    # Ultralytics: no DNS probes, no pip installs at run time.
    "YOLO_OFFLINE": "1",
    "YOLO_AUTOINSTALL": "false",
    # albumentations checks PyPI for updates on import unless told not to.
    "NO_ALBUMENTATIONS_UPDATE": "1",
    # FiftyOne: no usage tracking; the bundled mongod 6.0 is older than it prefers.
    "FIFTYONE_DO_NOT_TRACK": "true",
    "FIFTYONE_DATABASE_VALIDATION": "false",
}


def offline_defaults() -> None:
    """Set the offline defaults for any of these variables not already set."""
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)
