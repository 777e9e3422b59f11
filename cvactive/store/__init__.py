"""The FiftyOne adapter: push candidates for review, pull reviewed labels back, import and export
YOLO data sets, and evaluate per-class AP round by round.

All FiftyOne imports live in this package and happen inside functions, after
:func:`cvactive._env.offline_defaults`; importing ``cvactive.store`` does not import FiftyOne.
The database is FiftyOne's own ``mongod`` or the server ``FIFTYONE_DATABASE_URI`` names
(see :func:`cvactive.store.connect`).
"""

from __future__ import annotations

from cvactive._env import offline_defaults

offline_defaults()  # before any submodule imports fiftyone

from cvactive.store._db import connect, dataset_names, load_dataset, open_dataset, probe_uri  # noqa: E402
from cvactive.store.tags import KEY_FIELD, REVIEW_VIEW, TO_REVIEW  # noqa: E402

__all__ = [
    "KEY_FIELD",
    "REVIEW_VIEW",
    "TO_REVIEW",
    "connect",
    "dataset_names",
    "load_dataset",
    "open_dataset",
    "probe_uri",
]
