"""The settings of a simulated active-learning study (:class:`LoopConfig`) and their checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cvactive._config import config_schema
from cvactive.errors import ConfigError
from cvactive.recipes import DEFAULT_RECIPE

INITS = ("pretrained", "previous")
#: An arm named ``<strategy>+cost`` runs ``strategy`` cost-aware: under a cost budget its picks are
#: labeled in order of utility per expected cost (:func:`cvactive.selection.costaware.per_cost_order`).
COST_AWARE = "+cost"


def arm_strategy(arm: str) -> str:
    """The registered strategy an arm of the study runs (``uncertainty+cost`` -> ``uncertainty``)."""
    return arm[: -len(COST_AWARE)] if arm.endswith(COST_AWARE) else arm


@config_schema("loop")
@dataclass(frozen=True)
class LoopConfig:
    """Settings of a learning-curve study (the YAML keys of ``configs/loop.yaml``).

    Attributes:
        strategies: selection strategies; ``random`` is always included as the baseline. Under a
            cost budget, ``<strategy>+cost`` is an arm of that strategy whose picks are labeled in
            order of utility per expected cost.
        initial: size of the initial labeled set (drawn at random per seed).
        budget: images labeled per round.
        rounds: selection rounds after round 0.
        seeds: number of seeds (0, 1, ...), or an explicit list.
        model: what every round starts from: ``auto`` (the COCO-pretrained YOLOv8n rebuilt from
            the shared OpenVINO model when it is there, else ``pico``), ``pretrained`` (that
            checkpoint, or an error), a ``.pt``, an architecture YAML or a scale name
            (``pico``, ``n``, ``s``: random init).
        init: ``pretrained``: each round trains from ``model``; ``previous``: each round after
            round 0 warm-starts from the previous round's weights.
        freeze: freeze the first ``freeze`` layers while training (``None``: train all).
        recipe: how each round fine-tunes (:data:`cvactive.recipes.RECIPES`): ``steps`` (the
            default) a fixed number of optimizer steps whatever the labeled-set size, with a warm-up
            and learning rate set for fine-tuning (``epochs`` and ``batch`` unused); ``epochs`` trains
            ``epochs`` epochs of ``batch`` images with Ultralytics' defaults. See ``docs/loop.md`` for
            how they compare.
        epochs, imgsz, batch, device: training settings.
        pool_split: the split whose images form the pool (their labels are the oracle).
        eval_split: the fixed evaluation split.
        eval_data: further evaluation sets, each ``{data: data.yaml, split: val, name: ...}``
            with the same class names; their per-class AP is recorded per round too.
        score_conf: NMS confidence for scoring the pool (low, so uncertain boxes are seen).
        eval_conf: confidence threshold of evaluation (recorded with the results).
        measure: the image score given to every strategy that takes a ``score`` option.
        strategy_options: per-strategy keyword options for the selection registry.
        cost: the annotation cost model's unit costs and matching settings (fields of
            :class:`cvactive.cost.CostModel`; missing keys keep the documented defaults): every
            round records its labeled set's images, boxes and corrections, and the report prices them.
        budget_unit: what ``budget`` counts: ``images`` (default), or a spend of ``boxes``,
            ``seconds_draw`` or ``seconds_correct`` per round (the strategy's ranking is labeled in
            order until the next image would exceed it; see ``docs/loop.md``).
    """

    strategies: tuple[str, ...] = ("random", "uncertainty", "hybrid")
    initial: int = 40
    budget: int = 40
    rounds: int = 3
    seeds: int | tuple[int, ...] = 3
    model: str = "auto"
    init: str = "pretrained"
    freeze: int | None = None
    recipe: str = DEFAULT_RECIPE
    epochs: int = 20
    imgsz: int = 256
    batch: int = 16
    device: str | None = None
    pool_split: str = "train"
    eval_split: str = "val"
    eval_data: tuple[dict[str, Any], ...] = ()
    score_conf: float = 0.05
    eval_conf: float = 0.001
    measure: str = "entropy_max"
    strategy_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)
    budget_unit: str = "images"

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else [int(s) for s in self.seeds]

    @property
    def strategy_list(self) -> list[str]:
        names = [s for s in self.strategies if s]
        return names if "random" in names else ["random", *names]

    def check(self, pool_size: int) -> None:
        """Refuse settings that cannot run, before any training starts."""
        from cvactive.selection import get_strategy

        if self.initial < 1 or self.budget < 1 or self.rounds < 0:
            raise ConfigError("initial and budget must be at least 1, rounds at least 0")
        if self.init not in INITS:
            raise ConfigError(f"unknown init {self.init!r}; valid values: {', '.join(INITS)}")
        if self.freeze is not None and self.freeze < 0:
            raise ConfigError(f"freeze must be >= 0 layers, got {self.freeze}")
        from cvactive.recipes import get_recipe

        get_recipe(self.recipe)  # an unknown name lists the valid ones
        from cvactive.cost import AXES, CostModel

        if self.budget_unit not in AXES:
            raise ConfigError(f"unknown budget_unit {self.budget_unit!r}; valid units: {', '.join(AXES)}")
        CostModel.from_dict(self.cost)  # unknown or negative unit costs are refused before training
        needed = self.initial + (self.budget if self.budget_unit == "images" else 1) * self.rounds
        if needed > pool_size:
            raise ConfigError(
                f"initial + budget x rounds = {needed} labels, but the pool has only {pool_size} images; "
                "lower --initial, --budget or --rounds"
            )
        for name in self.strategy_list:
            if name != arm_strategy(name) and self.budget_unit == "images":
                raise ConfigError(
                    f"arm {name!r} orders its picks by utility per expected cost, so it needs a cost budget: "
                    "set budget_unit (--budget-unit) to boxes, seconds_draw or seconds_correct"
                )
            strategy = get_strategy(arm_strategy(name))  # an unknown name lists the valid ones
            strategy.check_options(self.options_for(name))

    @property
    def cost_model(self) -> Any:
        """The :class:`cvactive.cost.CostModel` of the ``cost`` section."""
        from cvactive.cost import CostModel

        return CostModel.from_dict(self.cost)

    def options_for(self, strategy: str) -> dict[str, Any]:
        """The keyword options the study passes to ``strategy`` (an arm ``<name>+cost`` takes those
        given for it, else those of ``<name>``)."""
        from cvactive.selection import get_strategy

        base = arm_strategy(strategy)
        options = dict(self.strategy_options.get(strategy, self.strategy_options.get(base, {})))
        if "score" in get_strategy(base).options:
            options.setdefault("score", self.measure)
        return options
