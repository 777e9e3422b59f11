"""The one door to Ultralytics' private API: :func:`private` checks the pinned version, then imports.

Ultralytics' public API is ``YOLO`` and its settings (``ultralytics.utils``: ``LOGGER``,
``DATASETS_DIR``, ``checks``, ``torch_utils``). cvactive also reaches into its internals, which
change between releases without notice; every such module is listed in :data:`MODULES` with
what cvactive takes from it, and every module of cvactive gets it from :func:`private`, never by
``import``: a different Ultralytics is then refused with one line (:func:`cvactive._pins.require`,
exit code 2) before any private call runs, instead of failing with an ``AttributeError`` deep
inside Ultralytics or, worse, silently doing something else. ``tests/test_dependencies.py``
checks that no other module imports these.

Objects a public call returns (the predictor of a ``YOLO``, a checkpoint's layout, the trainer
whose ``validate``, ``final_eval`` and ``optimizer_step`` :func:`cvactive.train.train_detector`
replaces) are private too; the code that uses them calls :func:`cvactive._pins.require` first
(:class:`cvactive.detect.model.Detector`, :func:`cvactive.weights.rebuild.rebuild_from_openvino`,
:func:`cvactive.weights.checkpoint.checkpoint_loading`, which training enters before the trainer
exists, and :func:`cvactive.train_hooks.full_nms`).
"""

from __future__ import annotations

import importlib
from typing import Any

from cvactive._pins import require

#: Ultralytics' private modules cvactive uses -> what it takes from them and where.
MODULES: dict[str, str] = {
    "ultralytics.utils.nms": "non_max_suppression: return_idxs=True in the detector (detect.model); "
    "swapped to lift its time limit while training and validating (train_hooks.full_nms)",
    "ultralytics.utils.ops": "scale_boxes, from the input's pixels to the image's (detect.nms)",
    "ultralytics.nn.tasks": "DetectionModel (weights.architecture), the _SafeLoad allow-list (weights.checkpoint)",
    "ultralytics.nn.modules.conv": "Conv, whose batch norm a rebuilt checkpoint re-estimates (weights.architecture)",
    "ultralytics.data.augment": "LetterBox, the exact letterbox of Ultralytics' predictor (weights.architecture)",
    "ultralytics.cfg": "DEFAULT_CFG_DICT, the train_args of a rebuilt checkpoint (weights.rebuild)",
}


def private(module: str) -> Any:
    """Ultralytics' private ``module`` (a key of :data:`MODULES`), after the pin check.

    Its attributes are typed ``Any``: Ultralytics' internals carry no stable types.

    Raises:
        MissingDependencyError: Ultralytics is missing or not the pinned version (one line, exit code 2;
            ``CVACTIVE_ALLOW_UNPINNED=1`` warns instead).
        ValueError: ``module`` is not listed in :data:`MODULES` (list it there, with what it is used for).
    """
    if module not in MODULES:
        raise ValueError(f"{module} is not a listed private module of Ultralytics: add it to MODULES with its use")
    require("ultralytics")
    return importlib.import_module(module)
