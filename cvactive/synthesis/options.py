"""The synthesize config's options, declared once: :class:`SynthesisOptions` (``configs/synthesis/synthesize.yaml``).

Its fields are the config keys with their type, range, default and help: the seed, the parents'
split, the JPEG quality, and what counts as a gap (the fields of
:class:`~cvactive.synthesis.gaps.GapThresholds` it extends). ``--seed`` and ``--split`` of
``cvactive synthesize``, the config schema and docs/config-reference.md are derived from them
(:mod:`cvactive.declare`). :func:`cvactive.synthesis.synthesize` takes one, or its fields as
keyword arguments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from cvactive.declare.fields import from_mapping, option
from cvactive.declare.ranges import Quality, Seed
from cvactive.synthesis.gaps import GapThresholds


@dataclass(frozen=True)
class SynthesisOptions(GapThresholds):
    """The options of :func:`~cvactive.synthesis.synthesize` (every key of ``synthesize.yaml``).

    ``seed`` may also be a ``numpy.random.Generator`` from Python.
    """

    seed: Seed = option(0, "seeds every random choice: the same seed gives the same bytes", flag="--seed")
    split: str = option("train", "the split whose images are parents and whose gaps are measured", flag="--split")
    quality: Quality = option(95, "JPEG quality of the written images")

    where: ClassVar[str] = "synthesize"

    @classmethod
    def of(cls, options: SynthesisOptions | Mapping[str, Any] | None = None, **keys: Any) -> SynthesisOptions:
        """Options from an object or a config mapping, with ``keys`` set over them.

        Raises:
            ConfigError: the first invalid option.
        """
        if isinstance(options, SynthesisOptions):
            return dataclasses.replace(options, **keys) if keys else options
        built = from_mapping(cls, {**(options or {}), **keys}, cls.where)
        assert built is not None
        return built

    @property
    def thresholds(self) -> GapThresholds:
        """What counts as a gap."""
        return GapThresholds(**{f.name: getattr(self, f.name) for f in dataclasses.fields(GapThresholds)})
