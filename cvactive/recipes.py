"""Training recipes: how a labeled set is fine-tuned (an epoch schedule or a fixed number of optimizer steps).

:func:`cvactive.train.train_detector` takes a :class:`Recipe` or the name of one in :data:`RECIPES`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np

from cvactive.errors import ConfigError

#: Ultralytics' nominal batch size: gradients accumulate over ``round(64 / batch)`` batches per step.
NOMINAL_BATCH = 64


@dataclass(frozen=True)
class Recipe:
    """How a labeled set is fine-tuned: a schedule in epochs (Ultralytics' own) or in optimizer steps.

    ``epochs`` recipe (``steps=None``): the run's ``epochs`` and ``batch`` go to Ultralytics as they
    are, with its defaults: ``optimizer=auto`` (AdamW at ``0.002 * 5 / (4 + classes)`` for short
    runs), 3 warm-up epochs, gradients accumulated to a nominal batch of 64, mosaic closed for the
    last 10 epochs. On 40 images at batch 16 that is 3 batches an epoch: 10 epochs are 30 batches
    and about 10 optimizer steps, most of them inside the warm-up.

    ``steps`` recipe: a fixed number of optimizer steps whatever the labeled-set size (the epochs
    follow from the set size and the batch, rounded up to whole epochs), one step per batch (no
    accumulation), ``warmup_steps`` of linear warm-up, an explicit optimizer and learning rate, and
    mosaic only for sets of at least ``mosaic_min`` images (closed for the last quarter of the epochs).
    With ``min_passes`` the step count grows with the set: at least that many passes over it.

    Attributes:
        name: the recipe's name (``LoopConfig.recipe``).
        steps: optimizer steps of a run (``None``: an epoch schedule).
        batch: images per batch (``None``: the caller's).
        warmup_steps: optimizer steps of linear warm-up (learning rate from 0, bias lr from
            ``warmup_bias_lr``).
        optimizer, lr0, lrf, cos_lr, momentum, weight_decay: as in ``YOLO.train`` (``lrf``: the
            final learning rate as a fraction of ``lr0``).
        mosaic_min: labeled sets smaller than this train without mosaic (0: mosaic always).
        freeze: layers frozen (YOLOv8's backbone is the first 10; ``None``: the caller's).
        min_passes: the ``steps`` recipe runs at least this many passes over the labeled set
            (``steps`` is then a floor; 0: exactly ``steps``).
    """

    name: str
    steps: int | None = None
    batch: int | None = None
    warmup_steps: int = 0
    optimizer: str = "auto"
    lr0: float = 0.01
    lrf: float = 0.01
    cos_lr: bool = False
    momentum: float = 0.937
    weight_decay: float = 0.0005
    warmup_bias_lr: float = 0.0
    mosaic_min: int = 0
    freeze: int | None = None
    min_passes: int = 0

    def plan(self, images: int, *, epochs: int, batch: int) -> TrainPlan:
        """The epochs, batch and Ultralytics arguments for a labeled set of ``images`` images.

        ``epochs`` and ``batch`` are the caller's (the ``epochs`` recipe uses both; the ``steps``
        recipe its own batch when it has one, and no ``epochs``).
        """
        if images < 1:
            raise ConfigError(f"a labeled set needs at least 1 image, got {images}")
        if self.steps is None:
            return TrainPlan(epochs=epochs, batch=batch, args={})
        if self.steps < 1 or self.warmup_steps < 0 or self.min_passes < 0:
            raise ConfigError(f"recipe {self.name!r}: steps must be >= 1, warmup_steps and min_passes >= 0")
        size = self.batch or batch
        per_epoch = math.ceil(images / size)  # Ultralytics keeps the last, partial batch
        run_epochs = max(math.ceil(self.steps / per_epoch), self.min_passes)
        mosaic = images >= self.mosaic_min
        args: dict[str, Any] = {
            "nbs": size,  # one optimizer step per batch
            "optimizer": self.optimizer,
            "lr0": self.lr0,
            "lrf": self.lrf,
            "cos_lr": self.cos_lr,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "warmup_epochs": self.warmup_steps / per_epoch,
            "warmup_bias_lr": self.warmup_bias_lr,
            "mosaic": 1.0 if mosaic else 0.0,
            "close_mosaic": max(1, run_epochs // 4) if mosaic else 0,
        }
        if self.freeze is not None:
            args["freeze"] = self.freeze
        return TrainPlan(epochs=run_epochs, batch=size, args=args)


@dataclass(frozen=True)
class TrainPlan:
    """What a recipe gives Ultralytics for one labeled set: epochs, batch and further arguments."""

    epochs: int
    batch: int
    args: dict[str, Any]

    def batches(self, images: int) -> int:
        """Batches forward-backward over the run."""
        return self.epochs * math.ceil(images / self.batch)


#: The named recipes. ``epochs``: Ultralytics' defaults for the caller's epochs and batch (the
#: loop's recipe before issue #22). ``steps``: 80 optimizer steps of 8 images (640 images
#: processed whatever the set size), 8 warm-up steps, AdamW at 0.001 with a cosine decay to a
#: tenth, mosaic from 100 labeled images. ``steps-frozen``: the same with the backbone (the
#: first 10 layers of YOLOv8) frozen. ``scaled``: as ``steps``, but at least 10 passes over the
#: labeled set (80 steps up to 64 images, then as many images as the ``epochs`` recipe's 10 epochs,
#: one step per batch of 8). See ``benchmarks/results/recipe/`` for how they compare.
_STEPS = Recipe(
    "steps",
    steps=80,
    batch=8,
    warmup_steps=8,
    optimizer="AdamW",
    lr0=0.001,
    lrf=0.1,
    cos_lr=True,
    momentum=0.9,
    weight_decay=0.0005,
    mosaic_min=100,
)
#: The recipe of ``cvactive loop`` and ``cvactive round`` when none is given (chosen from the recipe table).
DEFAULT_RECIPE: Final = "scaled"

RECIPES: dict[str, Recipe] = {
    "epochs": Recipe("epochs"),
    "steps": _STEPS,
    "steps-frozen": replace(_STEPS, name="steps-frozen", freeze=10),
    "scaled": replace(_STEPS, name="scaled", min_passes=10),
}


def epoch_schedule_steps(images: int, *, epochs: int, batch: int, warmup_epochs: float = 3.0) -> int:
    """Optimizer steps of Ultralytics' epoch schedule: ``images`` in batches of ``batch`` for ``epochs``.

    Gradients accumulate over ``round(64 / batch)`` batches per step; during the warm-up
    (``warmup_epochs``, at most all epochs but the last) the accumulation rises linearly from one
    batch. 40 images at batch 16 for 10 epochs: 30 batches, 9 steps.
    """
    per_epoch = math.ceil(images / batch)
    total = per_epoch * epochs
    target = min(max(round(NOMINAL_BATCH / batch), 1), total)
    warmup = round(min(warmup_epochs, max(epochs - 1, 0)) * per_epoch) if warmup_epochs > 0 else 0
    steps, last, accumulate = 0, -1, target
    for i in range(total):
        if warmup and i <= warmup:
            accumulate = max(1, int(np.interp(i, [0, warmup], [1, target]).round()))
        if i - last >= accumulate:
            steps, last = steps + 1, i
    return steps


def get_recipe(name: str | Recipe) -> Recipe:
    """The recipe called ``name`` (a :class:`Recipe` is returned as it is)."""
    if isinstance(name, Recipe):
        return name
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe {name!r}; valid recipes: {', '.join(RECIPES)}")
    return RECIPES[name]
