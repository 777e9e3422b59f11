"""Harvest rules: which frames of a stream are worth keeping.

A rule has a ``name``, its own parameters and its own :class:`~cvactive.harvest.budget.Limits`.
Rules are evaluated in the order the config lists them; a frame is a *candidate* when at least
one rule with limit left fires, and its manifest line lists every such rule.

Two families:

* **cheap** rules (:class:`RandomRule`) decide from the frame index, the clock and a seeded
  draw alone, before anything is decoded or inferred;
* **model** rules (the others) look at the frame's scored
  :class:`~cvactive.record.ImageRecord`. A frame is only run through the detector when some
  model rule needs it.

Randomness comes from :func:`unit_draw`, a counter-based generator keyed by
``(seed, source, frame, salt)``: the same frame always gets the same draw, so a run that is
stopped and resumed makes exactly the decisions an uninterrupted run makes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from cvactive.config import check_kwargs
from cvactive.errors import ConfigError
from cvactive.harvest.budget import Limits
from cvactive.record import ImageRecord


def unit_draw(seed: int, source: str, frame: int, salt: str = "") -> float:
    """A uniform number in [0, 1) that depends only on ``(seed, source, frame, salt)``."""
    digest = hashlib.blake2b(f"{seed}|{source}|{frame}|{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0**64


@dataclass
class FrameInfo:
    """What a rule may know of a frame before (or without) the model.

    Attributes:
        source: the video path or stream URL.
        frame: frame index in the source.
        clock: seconds on the harvest clock (stream time for files, wall time for live sources).
        seed: the harvest seed (see :func:`unit_draw`).
    """

    source: str
    frame: int
    clock: float
    seed: int = 0

    def draw(self, salt: str) -> float:
        return unit_draw(self.seed, self.source, self.frame, salt)


def _prob(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must lie in [0, 1], got {value}")
    return value


@dataclass
class Rule:
    """Base of every rule: a name and its own limits (``per_minute``, ``per_hour``, ``per_day``, ``total``)."""

    name: str = ""
    limits: Limits = field(default_factory=Limits)

    kind: ClassVar[str] = ""
    needs_model: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.name = str(self.name or self.kind)
        if isinstance(self.limits, Mapping):
            self.limits = Limits.from_mapping(self.limits, where=f"rule {self.name!r} limits")
        elif self.limits is None:
            self.limits = Limits()


@dataclass
class RandomRule(Rule):
    """Cheap random capture: fires with ``probability``, every ``every_n`` frames or every ``every_t`` seconds.

    Any of the three that is set can fire the rule. ``every_n``/``every_t`` count from the
    last frame this rule fired on (the timers are part of the saved state). Random capture is
    what catches the objects a model misses, which confidence rules never see.
    """

    probability: float = 0.0
    every_n: int | None = None
    every_t: float | None = None

    kind: ClassVar[str] = "random"
    needs_model: ClassVar[bool] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        self.probability = _prob(f"rule {self.name!r} probability", self.probability)
        if self.every_n is not None and int(self.every_n) < 1:
            raise ConfigError(f"rule {self.name!r}: every_n must be at least 1, got {self.every_n}")
        if self.every_t is not None and float(self.every_t) <= 0:
            raise ConfigError(f"rule {self.name!r}: every_t must be positive, got {self.every_t}")
        if not self.probability and self.every_n is None and self.every_t is None:
            raise ConfigError(f"rule {self.name!r}: set at least one of probability, every_n, every_t")

    def fires(self, info: FrameInfo, last: tuple[str, int, float] | None) -> bool:
        """Decide on a frame; ``last`` is ``(source, frame, clock)`` of this rule's previous firing."""
        if self.probability and info.draw(self.name) < self.probability:
            return True
        if self.every_n is not None and (
            last is None or last[0] != info.source or info.frame - last[1] >= self.every_n
        ):
            return True
        return self.every_t is not None and (last is None or info.clock - last[2] >= self.every_t)


@dataclass
class ModelRule(Rule):
    """A rule that looks at the frame's detections; ``keep_probability`` thins what it fires on."""

    keep_probability: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.keep_probability = _prob(f"rule {self.name!r} keep_probability", self.keep_probability)

    def matches(self, record: ImageRecord) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def fires(self, info: FrameInfo, record: ImageRecord) -> bool:
        if not self.matches(record):
            return False
        return self.keep_probability >= 1.0 or info.draw(self.name) < self.keep_probability


def _class_mask(record: ImageRecord, classes: Sequence[str | int] | None) -> np.ndarray:
    """Boolean ``(N,)``: boxes whose class name or id is in ``classes`` (all boxes when ``None``)."""
    if classes is None:
        return np.ones(len(record), dtype=bool)
    wanted = {str(c) for c in classes}
    names = record.class_names
    return np.array([names[i] in wanted or str(int(record.class_id[i])) in wanted for i in range(len(record))], bool)


@dataclass
class ConfidenceBandRule(ModelRule):
    """Roboflow's "close to threshold": at least ``min_boxes`` boxes with ``|conf - threshold| < epsilon``.

    ``classes`` (names or ids) restricts which boxes count.
    """

    threshold: float = 0.5
    epsilon: float = 0.1
    min_boxes: int = 1
    classes: list[str | int] | None = None

    kind: ClassVar[str] = "confidence_band"

    def __post_init__(self) -> None:
        super().__post_init__()
        _prob(f"rule {self.name!r} threshold", self.threshold)
        if self.epsilon <= 0:
            raise ConfigError(f"rule {self.name!r}: epsilon must be positive, got {self.epsilon}")
        if int(self.min_boxes) < 1:
            raise ConfigError(f"rule {self.name!r}: min_boxes must be at least 1, got {self.min_boxes}")

    def matches(self, record: ImageRecord) -> bool:
        near = np.abs(record.confidence.astype(np.float64) - self.threshold) < self.epsilon
        return int(np.count_nonzero(near & _class_mask(record, self.classes))) >= int(self.min_boxes)


@dataclass
class UncertaintyRule(ModelRule):
    """An image score (``<measure>_<aggregation>``, e.g. ``entropy_max``) in ``[min_value, max_value]``."""

    score: str = "entropy_max"
    min_value: float = 0.5
    max_value: float | None = None

    kind: ClassVar[str] = "uncertainty"

    def matches(self, record: ImageRecord) -> bool:
        if self.score not in record.image_scores:
            raise ConfigError(
                f"rule {self.name!r}: image score {self.score!r} is not computed; "
                f"valid scores: {', '.join(sorted(record.image_scores))}"
            )
        value = record.image_scores[self.score]
        return value >= self.min_value and (self.max_value is None or value <= self.max_value)


@dataclass
class ClassesRule(ModelRule):
    """Target classes present: at least ``min_count`` boxes of ``classes`` with confidence >= ``min_confidence``."""

    classes: list[str | int] = field(default_factory=list)
    min_count: int = 1
    min_confidence: float = 0.0

    kind: ClassVar[str] = "classes"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.classes:
            raise ConfigError(f"rule {self.name!r}: list the target classes (names or ids)")

    def matches(self, record: ImageRecord) -> bool:
        mask = _class_mask(record, self.classes) & (record.confidence >= self.min_confidence)
        return int(np.count_nonzero(mask)) >= int(self.min_count)


@dataclass
class CountRule(ModelRule):
    """Detection count in ``[min_count, max_count]`` (``classes`` optional, ``max_count`` open when ``None``)."""

    min_count: int = 1
    max_count: int | None = None
    classes: list[str | int] | None = None

    kind: ClassVar[str] = "count"

    def matches(self, record: ImageRecord) -> bool:
        n = int(np.count_nonzero(_class_mask(record, self.classes)))
        return n >= self.min_count and (self.max_count is None or n <= self.max_count)


@dataclass
class EmptyRule(ModelRule):
    """No detections at all: the frames where a missed object hides (confidence rules never see them)."""

    kind: ClassVar[str] = "empty"

    def matches(self, record: ImageRecord) -> bool:
        return len(record) == 0


#: rule kind -> class.
RULES: dict[str, type[Rule]] = {
    cls.kind: cls for cls in (RandomRule, ConfidenceBandRule, UncertaintyRule, ClassesRule, CountRule, EmptyRule)
}


def make_rule(spec: Mapping[str, Any] | Rule) -> Rule:
    """Build a rule from a config mapping ``{kind: ..., name: ..., <parameters>, limits: {...}}``.

    Raises:
        ConfigError: unknown kind or parameter (the message lists the valid ones).
    """
    if isinstance(spec, Rule):
        return spec
    if not isinstance(spec, Mapping):
        raise ConfigError(f"a rule must be a mapping with a 'kind', got {spec!r}")
    options = dict(spec)
    kind = options.pop("kind", None)
    if kind not in RULES:
        raise ConfigError(f"unknown rule kind {kind!r}; valid kinds: {', '.join(RULES)}")
    cls = RULES[kind]
    check_kwargs(cls, options, f"rule kind {kind!r}")
    try:
        return cls(**options)
    except TypeError as err:
        raise ConfigError(f"rule kind {kind!r}: {err}") from err


def make_rules(specs: Sequence[Mapping[str, Any] | Rule]) -> list[Rule]:
    """Build the ordered rule list; names must be unique."""
    if not specs:
        raise ConfigError(f"a harvest needs at least one rule; valid kinds: {', '.join(RULES)}")
    rules = [make_rule(s) for s in specs]
    names = [r.name for r in rules]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"rule names must be unique; repeated: {dupes} (give each rule a 'name')")
    return rules


@dataclass
class LearnedErrorRule(ModelRule):
    """The errors a fitted error model expects in the frame reach ``min_value``.

    The score is the ``learned_error`` selection strategy's: expected wrong boxes plus
    ``miss_weight`` x expected missed objects (divided by the expected objects with
    ``per_object``). ``predictor``: the file ``cvactive errors fit`` wrote for this detector.
    """

    predictor: str = ""
    min_value: float = 1.0
    miss_weight: float = 1.0
    per_object: bool = False

    kind: ClassVar[str] = "learned_error"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.predictor:
            raise ConfigError(f"rule {self.name!r}: give predictor: PATH (an error model from `cvactive errors fit`)")
        from cvactive.errormodel.model import load_cached

        load_cached(self.predictor)  # a bad path fails when the config is read, not mid-stream

    def matches(self, record: ImageRecord) -> bool:
        from cvactive.errormodel.model import load_cached, record_utility

        model = load_cached(self.predictor)
        return record_utility(model, record, self.miss_weight, self.per_object) >= self.min_value


RULES[LearnedErrorRule.kind] = LearnedErrorRule
