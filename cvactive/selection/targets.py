"""Target class distributions and how far a class mix is from one (pure numpy).

A target says what share of the labeled set each class should have:

* ``"uniform"``: every class that occurs at all gets the same share;
* ``"inverse"``: shares proportional to ``1 / frequency`` (the rarer a class, the larger its share);
* a mapping ``{class name or id: weight}``: the given weights, normalised (unlisted classes 0).

Classes that occur nowhere (frequency 0) get no share under ``uniform`` and ``inverse``: no
selection can serve them. The selection strategy ``class_balanced`` and the health report
both use :func:`target_shares`; the health report gives :func:`total_variation` (the share of
the labeled set that would have to change class to match the target).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from cvactive.errors import ConfigError

TARGETS = ("uniform", "inverse")

TargetLike = str | Mapping[Any, float]


def target_shares(target: TargetLike, frequency: np.ndarray, names: Mapping[int, str]) -> np.ndarray:
    """The ``(C,)`` float64 target share of each class (sums to 1).

    Args:
        target: ``"uniform"``, ``"inverse"`` or ``{class name or id: weight >= 0}``.
        frequency: ``(C,)`` how often each class occurs (images or instances; only its zeros
            and, for ``inverse``, its ratios matter).
        names: class id -> name, to read a mapping's names.

    Raises:
        ConfigError: an unknown target, an unknown class, a negative weight or all weights 0.
    """
    freq = np.asarray(frequency, np.float64).reshape(-1)
    c = freq.shape[0]
    if isinstance(target, str):
        if target not in TARGETS:
            raise ConfigError(
                f"unknown class target {target!r}; valid targets: {', '.join(TARGETS)}, or a mapping class -> weight"
            )
        seen = freq > 0
        weights = seen.astype(np.float64) if target == "uniform" else np.where(seen, 1.0 / np.maximum(freq, 1e-300), 0)
    elif isinstance(target, Mapping):
        weights = _weights_from_mapping(target, c, names)
    else:
        raise ConfigError(f"class target must be 'uniform', 'inverse' or a mapping class -> weight, got {target!r}")
    total = weights.sum()
    if not total > 0:
        raise ConfigError(
            f"class target {target!r} gives every class weight 0 (no listed class occurs); "
            f"classes: {', '.join(names.get(k, str(k)) for k in range(c)) or 'none'}"
        )
    return weights / total


def _weights_from_mapping(target: Mapping[Any, float], c: int, names: Mapping[int, str]) -> np.ndarray:
    by_name = {str(v): int(k) for k, v in names.items()}
    weights = np.zeros(c, np.float64)
    for key, value in target.items():
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool) and 0 <= int(key) < c:
            k = int(key)
        elif str(key) in by_name and by_name[str(key)] < c:
            k = by_name[str(key)]
        else:
            valid = ", ".join(names.get(i, str(i)) for i in range(c)) or "none"
            raise ConfigError(f"class target: unknown class {key!r}; valid classes: {valid}")
        try:
            w = float(value)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"class target: the weight of {key!r} must be a number, got {value!r}") from err
        if not (np.isfinite(w) and w >= 0):
            raise ConfigError(f"class target: the weight of {key!r} must be >= 0, got {value!r}")
        weights[k] = w
    return weights


def shares(counts: np.ndarray) -> np.ndarray:
    """``counts / counts.sum()`` as float64 (all zeros when there are no counts)."""
    n = np.asarray(counts, np.float64)
    total = n.sum(axis=-1, keepdims=True)
    return np.where(total > 0, n / np.where(total > 0, total, 1.0), 0.0)


def total_variation(counts: np.ndarray, target: np.ndarray) -> float:
    """``0.5 * sum |share - target|`` in [0, 1]: the share of items that would have to change class."""
    return float(0.5 * np.abs(shares(counts) - np.asarray(target, np.float64)).sum())


def squared_distance(counts: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``sum (share - target)^2`` over the last axis (``(..., C)`` counts -> ``(...)``)."""
    return np.asarray(((shares(counts) - np.asarray(target, np.float64)) ** 2).sum(axis=-1), np.float64)
