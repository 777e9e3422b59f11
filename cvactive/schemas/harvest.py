"""The harvest config (``configs/harvest*.yaml``, keyword arguments of :func:`cvactive.harvest.harvest`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from cvactive.schemas.check import DISCRIMINATOR_TAGS, Section
from cvactive.schemas.common import (
    Aggregation,
    ImageScore,
    Measure,
    NonNegFloat,
    NonNegInt,
    PacingScore,
    PosFloat,
    PosInt,
    Prob,
    Quality,
    Seed,
)


# -- cvactive harvest (cvactive.harvest.harvest) ------------------------------------------------
class Limits(Section):
    """Caps on kept frames (``budget:`` and each rule's ``limits:``); null is no cap."""

    per_minute: NonNegInt | None = None
    per_hour: NonNegInt | None = None
    per_day: NonNegInt | None = None
    total: NonNegInt | None = None


class Pacing(Section):
    """``pacing:``: spread a budget over the stream."""

    budget: PosInt | None = None
    score: PacingScore = "random"
    horizon: PosFloat | None = None
    period: PosFloat | None = None
    window: Annotated[int, Field(ge=2)] = 256
    warmup: NonNegInt = 16
    slack: NonNegFloat | None = None


class Dedup(Section):
    """``dedup:``: near-duplicate suppression."""

    method: Literal["phash", "dhash", "embedding"] = "phash"
    max_distance: Annotated[int, Field(ge=0, le=64)] = 8
    min_cosine: Annotated[float, Field(ge=-1, le=1)] = 0.95
    recent: PosInt = 32
    force_after: PosFloat | None = None


class Scorer(Section):
    """``scorer:``: the measures and aggregations computed for every inferred frame."""

    measures: list[Measure] = [
        "least_confidence",
        "margin",
        "ratio",
        "entropy",
        "binary_entropy",
        "threshold_closeness",
    ]
    aggregations: list[Aggregation] = ["max", "mean", "sum", "topk", "count"]
    threshold: Prob = 0.5
    if_empty: float = 0.0
    topk: PosInt = 3
    band: Annotated[list[float], Field(min_length=2, max_length=2)] = [0.5, 1.0]


class Retry(Section):
    """``retry:``: reconnecting a live source."""

    attempts: NonNegInt = 5
    backoff: NonNegFloat = 1.0
    max_backoff: NonNegFloat = 30.0
    reset_after: NonNegFloat = 60.0


ClassList = list[str | int]


class _Rule(Section):
    name: str = ""
    limits: Limits | None = Limits()


class RandomRule(_Rule):
    """``kind: random``: cheap capture by probability, every n frames or every t seconds."""

    kind: Literal["random"] = "random"
    probability: Prob = 0.0
    every_n: PosInt | None = None
    every_t: PosFloat | None = None

    @model_validator(mode="after")
    def _fires(self) -> RandomRule:
        if not self.probability and self.every_n is None and self.every_t is None:
            raise ValueError("a random rule needs at least one of probability, every_n, every_t")
        return self


class _ModelRule(_Rule):
    keep_probability: Prob = 1.0


class ConfidenceBandRule(_ModelRule):
    """``kind: confidence_band``: boxes with ``|conf - threshold| < epsilon``."""

    kind: Literal["confidence_band"] = "confidence_band"
    threshold: Prob = 0.5
    epsilon: PosFloat = 0.1
    min_boxes: PosInt = 1
    classes: ClassList | None = None


class UncertaintyRule(_ModelRule):
    """``kind: uncertainty``: an image score in ``[min_value, max_value]``."""

    kind: Literal["uncertainty"] = "uncertainty"
    score: ImageScore = "entropy_max"
    min_value: float = 0.5
    max_value: float | None = None


class ClassesRule(_ModelRule):
    """``kind: classes``: target classes present."""

    kind: Literal["classes"] = "classes"
    classes: Annotated[ClassList, Field(min_length=1)] = []
    min_count: NonNegInt = 1
    min_confidence: Prob = 0.0


class CountRule(_ModelRule):
    """``kind: count``: a detection count in ``[min_count, max_count]``."""

    kind: Literal["count"] = "count"
    min_count: NonNegInt = 1
    max_count: NonNegInt | None = None
    classes: ClassList | None = None


class EmptyRule(_ModelRule):
    """``kind: empty``: no detections at all."""

    kind: Literal["empty"] = "empty"


RULE_MODELS = (RandomRule, ConfidenceBandRule, UncertaintyRule, ClassesRule, CountRule, EmptyRule)
DISCRIMINATOR_TAGS.update(m.model_fields["kind"].default for m in RULE_MODELS)
Rule = Annotated[
    RandomRule | ConfidenceBandRule | UncertaintyRule | ClassesRule | CountRule | EmptyRule,
    Field(discriminator="kind"),
]


class Harvest(Section):
    """``configs/harvest*.yaml``: rules, budgets, pacing, dedup and the harvest's own settings."""

    rules: Annotated[list[Rule], Field(min_length=1)]
    budget: Limits | None = None
    pacing: Pacing | None = None
    dedup: Dedup | None = None
    scorer: Scorer | None = None
    stride: PosInt = 1
    jpeg_quality: Quality = 90
    seed: Seed = 0
    batch: PosInt = 1
    annotate: bool = True
    retry: Retry | None = None
    checkpoint_seconds: NonNegFloat = 5.0
    log_every: PosFloat = 60.0
    fsync: bool = False
    keep_up: bool = True
    workers: NonNegInt | None = None
    site_budget: Limits | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> Harvest:
        names = [r.name or r.kind for r in self.rules]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"rule names must be unique; repeated: {repeated} (give each rule a 'name')")
        return self
