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
    # FiftyOne: no usage tracking.
    "FIFTYONE_DO_NOT_TRACK": "true",
}


def offline_defaults() -> None:
    """Set the offline defaults for any of these variables not already set.

    FiftyOne's database validation is turned off only for the ``mongod`` 6.0 that FiftyOne
    bundles (no ``FIFTYONE_DATABASE_URI``): it is the oldest major version FiftyOne supports and
    validation would warn on every start. A server named by ``FIFTYONE_DATABASE_URI`` (a team's
    shared MongoDB) keeps FiftyOne's version and feature-compatibility checks.
    """
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)
    if not os.environ.get("FIFTYONE_DATABASE_URI"):
        os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
