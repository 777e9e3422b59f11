"""Randomness as an argument: the one conversion of a seed, a generator or ``None`` to a numpy ``Generator``.

Every random step of cvactive (random capture, tie-breaks, k-means++ seeding, augmentation,
data splits) takes ``rng: int | np.random.Generator | None`` and turns it into a generator with
:func:`as_rng`, never the global numpy state.
"""

from __future__ import annotations

import numpy as np

from cvactive.errors import ConfigError

RngLike = int | np.random.Generator | None


def as_rng(rng: RngLike) -> np.random.Generator:
    """A numpy ``Generator`` from a seed, a generator (used as it is) or ``None`` (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(None if rng is None else int(rng))
    raise ConfigError(f"rng must be an int seed, a numpy Generator or None, got {type(rng).__name__}")
