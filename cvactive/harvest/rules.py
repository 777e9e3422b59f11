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
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import Field

from cvactive.declare.fields import Declared, from_mapping, option
from cvactive.declare.ranges import ImageScore, NonEmpty, NonNegFloat, NonNegInt, PosFloat, PosInt, Prob
from cvactive.errors import ConfigError
from cvactive.harvest.budget import Limits
from cvactive.record import ImageRecord

ClassList = list[str | int]


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


@dataclass
class Rule(Declared):
    """Base of every rule: a name and its own limits (``per_minute``, ``per_hour``, ``per_day``, ``total``).

    A rule's options are its fields (the declaration of its config keys, see
    :mod:`cvactive.declare.fields`); ``example`` is the config of the rule that the docs show and
    the tests check.
    """

    name: str = option("", "the rule's name in the manifest and the counts (default: its kind); unique")
    limits: Limits = option(factory=Limits, help="caps on the frames this rule keeps")

    kind: ClassVar[str] = ""
    needs_model: ClassVar[bool] = True
    example: ClassVar[dict[str, Any]] = {}

    @classmethod
    def variants(cls) -> list[type[Rule]]:
        """The registered rule classes (:data:`RULES`), one per ``kind``."""
        return list(RULES.values())

    @property
    def where(self) -> str:
        return f"rule {self.name or self.kind!r}"

    def __post_init__(self) -> None:
        self.name = str(self.name or self.kind)
        super().__post_init__()


@dataclass
class RandomRule(Rule):
    """Cheap random capture: fires with ``probability``, every ``every_n`` frames or every ``every_t`` seconds.

    Any of the three that is set can fire the rule. ``every_n``/``every_t`` count from the
    last frame this rule fired on (the timers are part of the saved state). Random capture is
    what catches the objects a model misses, which confidence rules never see.
    """

    probability: Prob = option(0.0, "fire on a seeded draw with this probability")
    every_n: PosInt | None = option(None, "fire every this many frames (from its last firing)")
    every_t: PosFloat | None = option(None, "fire every this many seconds (from its last firing)")

    kind: ClassVar[str] = "random"
    needs_model: ClassVar[bool] = False
    example: ClassVar[dict[str, Any]] = {"kind": "random", "name": "baseline", "probability": 0.01, "every_t": 30}

    def check(self) -> None:
        if not self.probability and self.every_n is None and self.every_t is None:
            raise ValueError("a random rule needs at least one of probability, every_n, every_t")

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

    keep_probability: Prob = option(1.0, "keep only this share of the frames the rule fires on (a seeded draw)")

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

    threshold: Prob = option(0.5, "the confidence threshold the boxes are close to")
    epsilon: PosFloat = option(0.1, "how close: |conf - threshold| < epsilon")
    min_boxes: PosInt = option(1, "boxes that must be that close")
    classes: ClassList | None = option(None, "class names or ids whose boxes count (null: all)")

    kind: ClassVar[str] = "confidence_band"
    example: ClassVar[dict[str, Any]] = {"kind": "confidence_band", "threshold": 0.5, "epsilon": 0.15}

    def matches(self, record: ImageRecord) -> bool:
        near = np.abs(record.confidence.astype(np.float64) - self.threshold) < self.epsilon
        return int(np.count_nonzero(near & _class_mask(record, self.classes))) >= int(self.min_boxes)


@dataclass
class UncertaintyRule(ModelRule):
    """An image score (``<measure>_<aggregation>``, e.g. ``entropy_max``) in ``[min_value, max_value]``."""

    score: ImageScore = option("entropy_max", "the image score, <measure>_<aggregation>")
    min_value: float = option(0.5, "fire when the score is at least this")
    max_value: float | None = option(None, "and at most this (null: no upper end)")

    kind: ClassVar[str] = "uncertainty"
    example: ClassVar[dict[str, Any]] = {"kind": "uncertainty", "score": "entropy_max", "min_value": 0.6}

    def matches(self, record: ImageRecord) -> bool:
        if self.score not in record.image_scores:
            raise ConfigError(
                f"rule {self.name!r}: image score {self.score!r} is not computed; "
                f"valid scores: {', '.join(sorted(record.image_scores))}"
            )
        value = record.image_scores[self.score]
        return value >= self.min_value and (self.max_value is None or value <= self.max_value)


@dataclass(kw_only=True)
class ClassesRule(ModelRule):
    """Target classes present: at least ``min_count`` boxes of ``classes`` with confidence >= ``min_confidence``."""

    classes: Annotated[ClassList, Field(min_length=1)] = option(help="the target classes (names or ids)")
    min_count: NonNegInt = option(1, "boxes of those classes needed")
    min_confidence: Prob = option(0.0, "count only boxes at least this confident")

    kind: ClassVar[str] = "classes"
    example: ClassVar[dict[str, Any]] = {"kind": "classes", "classes": ["person"], "min_confidence": 0.3}

    def matches(self, record: ImageRecord) -> bool:
        mask = _class_mask(record, self.classes) & (record.confidence >= self.min_confidence)
        return int(np.count_nonzero(mask)) >= int(self.min_count)


@dataclass
class CountRule(ModelRule):
    """Detection count in ``[min_count, max_count]`` (``classes`` optional, ``max_count`` open when ``None``)."""

    min_count: NonNegInt = option(1, "fire with at least this many detections")
    max_count: NonNegInt | None = option(None, "and at most this many (null: no upper end)")
    classes: ClassList | None = option(None, "count only these classes (null: all)")

    kind: ClassVar[str] = "count"
    example: ClassVar[dict[str, Any]] = {"kind": "count", "min_count": 5}

    def matches(self, record: ImageRecord) -> bool:
        n = int(np.count_nonzero(_class_mask(record, self.classes)))
        return n >= self.min_count and (self.max_count is None or n <= self.max_count)


@dataclass
class EmptyRule(ModelRule):
    """No detections at all: the frames where a missed object hides (confidence rules never see them)."""

    kind: ClassVar[str] = "empty"
    example: ClassVar[dict[str, Any]] = {"kind": "empty", "keep_probability": 0.05}

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
    kind = spec.get("kind")
    if kind not in RULES:
        raise ConfigError(f"rule: kind: got {kind!r}, expected one of {', '.join(RULES)}")
    options = {k: v for k, v in spec.items() if k != "kind"}
    rule = from_mapping(RULES[kind], options, f"rule {str(options.get('name') or kind)!r}")
    assert rule is not None
    return rule


def make_rules(specs: Sequence[Mapping[str, Any] | Rule]) -> list[Rule]:
    """Build the ordered rule list; names must be unique."""
    if not specs:
        raise ConfigError(f"a harvest needs at least one rule; valid kinds: {', '.join(RULES)}")
    rules = [make_rule(s) for s in specs]
    check_unique_names(rules)
    return rules


def check_unique_names(rules: Sequence[Any]) -> None:
    """Rule names (a rule's kind when it has none) must differ: they key the counts and the manifest."""
    names = [r.name or r.kind for r in rules]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"rule names must be unique; repeated: {dupes} (give each rule a 'name')")


@dataclass(kw_only=True)
class LearnedErrorRule(ModelRule):
    """The errors a fitted error model expects in the frame reach ``min_value``.

    The score is the ``learned_error`` selection strategy's: expected wrong boxes plus
    ``miss_weight`` x expected missed objects (divided by the expected objects with
    ``per_object``). ``predictor``: the file ``cvactive errors fit`` wrote for this detector.
    """

    predictor: NonEmpty = option(help="the error model `cvactive errors fit` wrote for this detector (.npz)")
    min_value: float = option(1.0, "fire when the expected errors in the frame reach this")
    miss_weight: NonNegFloat = option(1.0, "weight of an expected missed object against a wrong box")
    per_object: bool = option(False, "divide by the expected objects: the expected error rate")

    kind: ClassVar[str] = "learned_error"
    example: ClassVar[dict[str, Any]] = {
        "kind": "learned_error",
        "predictor": "runs/train/weights/best.errors.npz",
        "min_value": 3.0,
        "per_object": False,
        "limits": {"per_hour": 60},
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        from cvactive.errormodel.model import load_cached

        load_cached(self.predictor)  # a bad path fails when the config is read, not mid-stream

    def matches(self, record: ImageRecord) -> bool:
        from cvactive.errormodel.model import load_cached, record_utility

        model = load_cached(self.predictor)
        return record_utility(model, record, self.miss_weight, self.per_object) >= self.min_value


RULES[LearnedErrorRule.kind] = LearnedErrorRule
