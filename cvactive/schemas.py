"""The type, range and default of every config key: one pydantic model per config file.

Each model below is the reference of one config file (``configs/<name>.yaml`` in the
repository, ``cvactive/resources/configs`` once installed); a field's annotation is the key's
type and range, its default the value the function uses when the key is absent. Models are
strict (``1`` is not ``true``, ``"0.5"`` is not a number; an integer is a fine float) and refuse
unknown keys. :func:`cvactive.config.check_config` validates a mapping with :func:`validate`;
the first problem becomes one line naming the file, the key, the value and what is expected.

Keys stay the keyword arguments of the functions the commands call; the tests check that each
model's keys and defaults match the signature or dataclass it describes (:data:`TARGETS`).
Names that other modules own (measures, strategies) are checked against those modules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, Field, model_validator

from cvactive.schema_check import DISCRIMINATOR_TAGS, Section, checked_options, validate_model

__all__ = ["SCHEMAS", "TARGETS", "Section", "validate"]

# -- reusable ranges --------------------------------------------------------------------------
Prob = Annotated[float, Field(ge=0, le=1)]
NonNegInt = Annotated[int, Field(ge=0)]
PosInt = Annotated[int, Field(ge=1)]
NonNegFloat = Annotated[float, Field(ge=0)]
PosFloat = Annotated[float, Field(gt=0)]
Grey = Annotated[float, Field(ge=0, le=255)]
Seed = Annotated[int, Field(ge=0)]
Quality = Annotated[int, Field(ge=1, le=100)]
Pair = Annotated[list[PosFloat], Field(min_length=2, max_length=2)]


def _one_of(valid: Callable[[], Any], what: str, listed: Callable[[], str] | None = None) -> AfterValidator:
    """A check that a string is one of ``valid()`` (looked up when a config is checked)."""

    def check(value: str) -> str:
        names = list(valid())
        if value not in names:
            choices = listed() if listed is not None else "one of " + ", ".join(map(str, names))
            raise ValueError(f"got {value!r}, expected {what}: {choices}")
        return value

    return AfterValidator(check)


def _measures() -> list[str]:
    from cvactive.consistency import CONSISTENCY_MEASURES
    from cvactive.measures import MEASURES

    return [*MEASURES, *CONSISTENCY_MEASURES]


def _aggregations() -> tuple[str, ...]:
    from cvactive.measures import AGGREGATIONS

    return AGGREGATIONS


def _image_scores() -> list[str]:
    return [f"{m}_{a}" for m in _measures() for a in _aggregations()]


def _strategies() -> list[str]:
    from cvactive.selection import available_strategies

    return list(available_strategies())


Measure = Annotated[str, _one_of(_measures, "a measure")]
Aggregation = Annotated[str, _one_of(_aggregations, "an aggregation")]


def _score_parts() -> str:
    return f"measure one of {', '.join(_measures())}; aggregation one of {', '.join(_aggregations())}"


ImageScore = Annotated[str, _one_of(_image_scores, "an image score <measure>_<aggregation>", _score_parts)]
PacingScore = Annotated[
    str, _one_of(lambda: ["random", *_image_scores()], "random or an image score <measure>_<aggregation>", _score_parts)
]
StrategyName = Annotated[str, _one_of(_strategies, "a selection strategy")]


def _strategy_options(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """Each strategy's options, checked against its registered signature."""
    from cvactive.selection import get_strategy

    for name, options in (value or {}).items():
        checked_options(get_strategy(name).func, options or {}, f"{name}")
    return value


#: ``strategies:`` of select.yaml (null options: the defaults).
StrategyOptions = Annotated[dict[StrategyName, dict[str, Any] | None], AfterValidator(_strategy_options)]
#: ``strategy_options:`` of loop.yaml.
LoopStrategyOptions = Annotated[dict[StrategyName, dict[str, Any]], AfterValidator(_strategy_options)]


# -- cvactive health (cvactive.health.check.analyse) -------------------------------------------
ErrorKind = Literal[
    "out_of_range",
    "non_positive_size",
    "unknown_class",
    "malformed",
    "label_without_image",
    "image_without_label",
    "unreadable_image",
]


class Health(Section):
    """``configs/health.yaml``: the gates and the image checks."""

    min_instances: NonNegInt | None = 10
    max_imbalance: Annotated[float, Field(ge=1)] | None = 50.0
    max_label_errors: NonNegInt | None = 0
    allow_leakage: bool = False
    error_kinds: list[ErrorKind] = list(get_args(ErrorKind))
    min_dark_images: NonNegInt | None = None
    image_sizes: bool = True
    image_checks: bool = True
    max_images: NonNegInt | None = 20000
    near_duplicate_distance: Annotated[int, Field(ge=0, le=64)] | None = 4
    dark_below: Grey = 50.0
    bright_above: Grey = 200.0
    heatmap_grid: Annotated[int, Field(ge=1, le=1024)] = 16
    rng: Seed | None = 0
    cache: str | None = None
    workers: PosInt | None = None
    progress: bool = True

    @model_validator(mode="after")
    def _bands(self) -> Health:
        if self.dark_below >= self.bright_above:
            raise ValueError(f"dark_below ({self.dark_below}) must be below bright_above ({self.bright_above})")
        return self


# -- cvactive evaluate (cvactive.store.evaluate.evaluate_round) --------------------------------
Iou = Annotated[float, Field(gt=0, le=1)]


class Evaluate(Section):
    """``configs/evaluate.yaml``: the IoU sweep and thresholds pinned for a whole study."""

    iou_threshs: Annotated[list[Iou], Field(min_length=1)] = [round(0.5 + 0.05 * i, 2) for i in range(10)]
    iou: Iou = 0.5
    conf_threshold: Prob = 0.0
    classes: list[str] | None = None
    tag: str | None = None
    ap_drop_warning: Prob = 0.05
    marks: bool = False
    progress: bool = False


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
    frame_stride: PosInt = 1
    jpeg_quality: Quality = 90
    seed: Seed = 0
    batch: PosInt = 1
    annotate: bool = True
    retry: Retry | None = None
    checkpoint_seconds: NonNegFloat = 5.0
    log_every: PosFloat = 60.0
    fsync: bool = False

    @model_validator(mode="after")
    def _unique_names(self) -> Harvest:
        names = [r.name or r.kind for r in self.rules]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"rule names must be unique; repeated: {repeated} (give each rule a 'name')")
        return self


# -- cvactive select / cvactive loop ----------------------------------------------------------
class Select(Section):
    """``configs/select.yaml``: the strategy, k, the seed and each strategy's options."""

    strategy: StrategyName | None = None
    k: PosInt | None = None
    rng: Seed | None = None
    strategies: StrategyOptions | None = None


class EvalData(Section):
    """One further evaluation set of a loop study."""

    data: str
    split: str = "val"
    name: str | None = None


class Loop(Section):
    """``configs/loop.yaml``: the fields of :class:`cvactive.loop.LoopConfig`."""

    strategies: list[StrategyName] = ["random", "uncertainty", "hybrid"]
    initial: PosInt = 40
    budget: PosInt = 40
    rounds: NonNegInt = 3
    seeds: PosInt | Annotated[list[Seed], Field(min_length=1)] = 3
    model: str = "auto"
    init: Literal["pretrained", "previous"] = "pretrained"
    freeze: NonNegInt | None = None
    epochs: PosInt = 20
    imgsz: Annotated[int, Field(ge=32, le=8192)] = 256
    batch: PosInt | Literal[-1] = 16
    device: str | NonNegInt | None = None
    pool_split: str = "train"
    eval_split: str = "val"
    eval_data: list[EvalData] = []
    score_conf: Prob = 0.05
    eval_conf: Prob = 0.001
    measure: ImageScore = "entropy_max"
    strategy_options: LoopStrategyOptions = {}


# -- cvactive synthesize (cvactive.synthesis.synthesize) and its recipes -------------------------
class Synthesize(Section):
    """``configs/synthesis/synthesize.yaml``: the seed, split, JPEG quality and gap thresholds."""

    seed: Seed = 0
    split: str = "train"
    quality: Quality = 95
    rare_ratio: Annotated[float, Field(gt=0, le=1)] = 0.5
    dark_threshold: Grey = 85.0
    min_dark_share: Prob = 0.25
    bright_threshold: Grey = 190.0
    min_bright_share: Prob = 0.0
    small_size: Annotated[float, Field(gt=0, le=1)] = 0.08
    min_small_share: Prob = 0.1
    min_side_share: Prob = 0.35


Fill = Literal["class", "dark", "bright", "small_objects", "position"]


def _transform_spec(value: Any) -> Any:
    if isinstance(value, dict) and len(value) != 1:
        raise ValueError(f"got {value!r}, expected one transform: 'Name' or {{Name: {{option: value}}}}")
    return value


TransformSpec = Annotated[str | dict[str, dict[str, Any] | None], AfterValidator(_transform_spec)]


class Bbox(Section):
    """A recipe's ``bbox:``: how boxes follow the transform."""

    min_visibility: Prob = 0.35
    min_area: NonNegFloat = 16.0
    clip: bool = True


class CopyPaste(Section):
    """A copy-paste recipe's ``copy_paste:`` options."""

    max_instances: PosInt = 3
    max_overlap: Annotated[float, Field(ge=0, lt=1)] = 0.1
    scale: Pair = [0.8, 1.2]
    feather: NonNegInt = 2
    min_size: PosInt = 8
    attempts: PosInt = 30

    @model_validator(mode="after")
    def _scale(self) -> CopyPaste:
        if self.scale[0] > self.scale[1]:
            raise ValueError(f"scale must be [low, high] with low <= high, got {self.scale}")
        return self


class Recipe(Section):
    """One synthesis recipe (``configs/synthesis/recipes/*.yaml``)."""

    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    kind: Literal["transform", "copy_paste"] | None = None
    fills: list[Fill] | Fill = []
    bbox: Bbox | None = None
    transforms: list[TransformSpec] = []
    copy_paste: CopyPaste | None = None


# -- cvactive porch (cvactive.porch.PorchRecipe) -------------------------------------------------
Side = Annotated[int, Field(ge=64, le=4096)]


class Porch(Section):
    """``datasets/porch.yaml``: the built-in porch-camera data set."""

    seed: Seed = 0
    width: Side = 320
    height: Side = 256
    train: Annotated[int, Field(ge=0, le=100_000)] = 240
    val: Annotated[int, Field(ge=0, le=100_000)] = 80
    classes: Annotated[list[Literal["brown_box", "white_envelope", "yellow_box"]], Field(min_length=1)] = [
        "brown_box",
        "white_envelope",
        "yellow_box",
    ]
    class_weights: Annotated[list[NonNegFloat], Field(min_length=1)] = [0.6, 0.3, 0.1]
    night_fraction: Prob = 0.15
    left_bias: Prob = 0.75
    objects_per_image: Annotated[list[Annotated[int, Field(ge=0, le=20)]], Field(min_length=2, max_length=2)] = [0, 3]
    empty_fraction: Prob = 0.05
    video_seconds: Annotated[float, Field(ge=0, le=3600)] = 30.0
    video_fps: Annotated[float, Field(gt=0, le=120)] = 10.0

    @model_validator(mode="after")
    def _consistent(self) -> Porch:
        if len(self.classes) != len(self.class_weights):
            raise ValueError(f"classes ({len(self.classes)}) and class_weights ({len(self.class_weights)}) differ")
        if sum(self.class_weights) <= 0:
            raise ValueError(f"class_weights must not all be 0, got {self.class_weights}")
        if self.objects_per_image[0] > self.objects_per_image[1]:
            raise ValueError(f"objects_per_image must be [low, high] with low <= high, got {self.objects_per_image}")
        return self


#: schema name -> model.
SCHEMAS: dict[str, type[BaseModel]] = {
    "health": Health,
    "evaluate": Evaluate,
    "harvest": Harvest,
    "limits": Limits,
    "pacing": Pacing,
    "dedup": Dedup,
    "scorer": Scorer,
    "retry": Retry,
    **{f"rule:{m.model_fields['kind'].default}": m for m in RULE_MODELS},
    "select": Select,
    "loop": Loop,
    "synthesize": Synthesize,
    "recipe": Recipe,
    "bbox": Bbox,
    "copy_paste": CopyPaste,
    "porch": Porch,
}

#: ``module.qualname`` of a function or dataclass -> the schema of its keyword options
#: (:func:`cvactive.config.check_kwargs` checks options for these with the schema).
TARGETS: dict[str, str] = {
    "cvactive.health.check.analyse": "health",
    "cvactive.store.evaluate.evaluate_round": "evaluate",
    "cvactive.harvest.budget.Limits": "limits",
    "cvactive.harvest.budget.Pacing": "pacing",
    "cvactive.harvest.dedup.Dedup": "dedup",
    "cvactive.harvest.feed.Retry": "retry",
    "cvactive.scoring.Scorer": "scorer",
    "cvactive.harvest.rules.RandomRule": "rule:random",
    "cvactive.harvest.rules.ConfidenceBandRule": "rule:confidence_band",
    "cvactive.harvest.rules.UncertaintyRule": "rule:uncertainty",
    "cvactive.harvest.rules.ClassesRule": "rule:classes",
    "cvactive.harvest.rules.CountRule": "rule:count",
    "cvactive.harvest.rules.EmptyRule": "rule:empty",
    "cvactive.loop.run.LoopConfig": "loop",
    "cvactive.synthesis.core.synthesize": "synthesize",
    "cvactive.synthesis.recipes.BboxOptions": "bbox",
    "cvactive.synthesis.recipes.CopyPasteOptions": "copy_paste",
    "cvactive.porch.PorchRecipe": "porch",
}


def model(kind: str) -> type[BaseModel]:
    """The model of schema ``kind``; an unknown name lists the valid ones."""
    if kind not in SCHEMAS:
        raise KeyError(f"no config schema {kind!r}; valid: {', '.join(SCHEMAS)}")
    return SCHEMAS[kind]


def validate(kind: str, data: Mapping[str, Any], where: str, *, partial: bool = False) -> None:
    """Validate ``data`` against schema ``kind`` (see :func:`cvactive.schema_check.validate_model`)."""
    validate_model(model(kind), data, where, partial=partial)
