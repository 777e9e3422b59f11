"""Environment defaults that keep third-party libraries offline and quiet.

Adapters call :func:`offline_defaults` before importing Ultralytics, FiftyOne, OpenVINO or
albumentations. Each value is only a default: a variable the user already set wins.

What each library would otherwise do on its own:

* **Ultralytics** probes DNS to decide whether it is online, sends usage events (``sync``),
  checks PyPI for updates and pip-installs missing packages: ``YOLO_OFFLINE`` and
  ``YOLO_AUTOINSTALL`` turn all of that off.
* **OpenVINO**: ``import openvino`` imports its model converter, which starts
  ``openvino_telemetry``; with no consent file that package counts the user as agreeing, writes a
  client id under ``~/intel/`` and sends a Google Analytics event on every import. It has no
  environment switch (only ``CI=true``, which would change other libraries too, or an opt-out
  file under ``~/intel/``). So the import of ``openvino_telemetry`` is blocked before OpenVINO is
  imported: OpenVINO then falls back to its own do-nothing stub (``openvino.tools.ovc.telemetry_stub``),
  nothing is written under ``~/intel/`` and nothing is sent. ``CVACTIVE_OPENVINO_TELEMETRY=1``
  leaves OpenVINO as it ships.
* **FiftyOne**: ``FIFTYONE_DO_NOT_TRACK`` (usage tracking).
* **albumentations** checks PyPI for a newer version on import: ``NO_ALBUMENTATIONS_UPDATE``.
* **Ray** (``score --engine ray``) reports usage statistics: ``RAY_USAGE_STATS_ENABLED=0``.
* matplotlib, OpenCV, scikit-learn and torch make no connections of their own.

``tests/test_offline.py`` runs score (OpenVINO), harvest, push and review with a guard that
records any connection to a non-loopback address, and fails on one.
"""

from __future__ import annotations

import os
import sys

_DEFAULTS = {
    # Ultralytics: no DNS probes, no pip installs at run time.
    "YOLO_OFFLINE": "1",
    "YOLO_AUTOINSTALL": "false",
    # albumentations checks PyPI for updates on import unless told not to.
    "NO_ALBUMENTATIONS_UPDATE": "1",
    # FiftyOne: no usage tracking.
    "FIFTYONE_DO_NOT_TRACK": "true",
    # Ray: no usage statistics.
    "RAY_USAGE_STATS_ENABLED": "0",
}

#: set to 1 to let OpenVINO load its telemetry package (it then sends events, as it ships)
OPENVINO_TELEMETRY_VAR = "CVACTIVE_OPENVINO_TELEMETRY"


def block_openvino_telemetry() -> bool:
    """Keep ``openvino_telemetry`` from being imported, so OpenVINO uses its do-nothing stub.

    Must run before ``openvino`` is imported; returns False (and changes nothing) when the
    user allowed telemetry, or when the package is already imported.
    """
    if os.environ.get(OPENVINO_TELEMETRY_VAR, "").strip().lower() in ("1", "true", "yes"):
        return False
    if sys.modules.get("openvino_telemetry") is not None:
        return False
    # A None entry makes ``import openvino_telemetry`` raise ImportError (Python's documented
    # way to block an import); OpenVINO catches it and imports its stub instead.
    sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]
    return True


def offline_defaults() -> None:
    """Set the offline defaults for any of these variables not already set, and block OpenVINO's telemetry.

    FiftyOne's database validation is turned off only for the ``mongod`` 6.0 that FiftyOne
    bundles (no ``FIFTYONE_DATABASE_URI``): it is the oldest major version FiftyOne supports and
    validation would warn on every start. A server named by ``FIFTYONE_DATABASE_URI`` (a team's
    shared MongoDB) keeps FiftyOne's version and feature-compatibility checks.
    """
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)
    if not os.environ.get("FIFTYONE_DATABASE_URI"):
        os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    block_openvino_telemetry()
