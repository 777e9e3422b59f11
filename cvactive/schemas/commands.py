"""The configs of health, evaluate, loop and porch, written as models (the others are derived from declarations)."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field, model_validator

from cvactive.declare.check import Section
from cvactive.declare.ranges import one_of as _one_of
from cvactive.recipes import DEFAULT_RECIPE
from cvactive.schemas.common import (
    Grey,
    ImageScore,
    LoopStrategyOptions,
    NonNegFloat,
    NonNegInt,
    PosInt,
    Prob,
    Seed,
    _strategies,
)
from cvactive.yolo_labels import ErrorKind

# -- cvactive health (cvactive.health.check.analyse) -------------------------------------------


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
    seed: Seed | None = 0
    cache: str | None = None
    workers: PosInt | None = None
    progress: bool = True
    class_target: Literal["uniform", "inverse"] | dict[str | int, NonNegFloat] | None = "uniform"

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
    store: Literal["results", "marks", "none"] = "results"
    progress: bool = False


# -- cvactive select / cvactive loop ----------------------------------------------------------
class EvalData(Section):
    """One further evaluation set of a loop study."""

    data: str
    split: str = "val"
    name: str | None = None


#: An arm of a loop study: a strategy, or ``<strategy>+cost`` (cost-aware under a cost budget).
LoopArm = Annotated[
    str,
    _one_of(
        lambda: [*_strategies(), *(f"{s}+cost" for s in _strategies())],
        "a selection strategy",
        lambda: f"one of {', '.join(_strategies())} (each may end in +cost: picks by utility per expected cost)",
    ),
]


class Loop(Section):
    """``configs/loop.yaml``: the fields of :class:`cvactive.loop.LoopConfig`."""

    strategies: list[LoopArm] = ["random", "uncertainty", "hybrid"]
    initial: PosInt = 40
    budget: PosInt = 40
    rounds: NonNegInt = 3
    seeds: PosInt | Annotated[list[Seed], Field(min_length=1)] = 3
    model: str = "auto"
    init: Literal["pretrained", "previous"] = "pretrained"
    freeze: NonNegInt | None = None
    recipe: Literal["epochs", "steps", "steps-frozen", "scaled"] = DEFAULT_RECIPE
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
    cost: dict[str, NonNegFloat] = {}
    budget_unit: Literal["images", "boxes", "seconds_draw", "seconds_correct"] = "images"


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
