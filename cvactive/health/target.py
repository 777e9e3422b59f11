"""How far a labeled set's class mix is from a target class distribution (pure numpy).

The target is any of :mod:`cvactive.selection.targets` (``uniform``, ``inverse`` frequency, or
given per class), worked out once from the instances of the whole data set, and every split
is measured against it: the total variation distance between its instance shares and the
target (the share of instances that would have to change class), the same for its image
shares, and per class how many instances would have to be added (removing none) to reach the
target share.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from cvactive.selection.targets import TargetLike, shares, target_shares, total_variation


def instances_to_add(counts: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``(C,)`` the fewest instances to add per class so that every class reaches its target share.

    The grown set has ``N* = max_c counts_c / target_c`` instances (over classes with a target
    share), and class ``c`` needs ``target_c * N* - counts_c`` more (rounded up).
    """
    n = np.asarray(counts, np.float64)
    t = np.asarray(target, np.float64)
    wanted = t > 0
    if not wanted.any() or n.sum() == 0:
        return np.zeros(n.shape, np.int64)
    grown = max(float(np.max(n[wanted] / t[wanted])), float(n.sum()))
    return np.ceil(np.clip(t * grown - n, 0.0, None) - 1e-9).astype(np.int64)


def split_target_figures(classes: Mapping[str, Mapping[str, Any]], names: list[str], target: np.ndarray) -> dict:
    """Distance of one split's instance and image shares from ``target`` (``classes``: its per-class figures)."""
    inst = np.array([classes[n]["instances"] for n in names], np.float64)
    imgs = np.array([classes[n]["images"] for n in names], np.float64)
    add = instances_to_add(inst, target)
    inst_share, img_share = shares(inst), shares(imgs)
    return {
        "total_variation_instances": round(total_variation(inst, target), 4),
        "total_variation_images": round(total_variation(imgs, target), 4),
        "instances_to_add": int(add.sum()),
        "per_class": {
            n: {
                "target_share": round(float(target[k]), 4),
                "instance_share": round(float(inst_share[k]), 4),
                "image_share": round(float(img_share[k]), 4),
                "instances_to_add": int(add[k]),
            }
            for k, n in enumerate(names)
        },
    }


def target_figures(
    target: TargetLike, overall: Mapping[str, Any], per_split: Mapping[str, Mapping[str, Any]], names: list[str]
) -> dict[str, Any]:
    """The ``class_target`` section of the health report: the target, then the distance of every split."""
    inst = np.array([overall["classes"][n]["instances"] for n in names], np.float64)
    t = target_shares(target, inst, dict(enumerate(names)))
    return {
        "target": target if isinstance(target, str) else {str(k): float(v) for k, v in target.items()},
        "overall": split_target_figures(overall["classes"], names, t),
        "per_split": {s: split_target_figures(fig["classes"], names, t) for s, fig in per_split.items()},
    }
