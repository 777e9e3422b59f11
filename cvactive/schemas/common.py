"""Ranges and name checks the config models share (the generic ones live in :mod:`cvactive.declare.ranges`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator

from cvactive.declare.ranges import (
    Aggregation,
    Grey,
    ImageScore,
    Measure,
    NonNegFloat,
    NonNegInt,
    PacingScore,
    Pair,
    PosFloat,
    PosInt,
    Prob,
    Quality,
    Seed,
)
from cvactive.selection.options import StrategyName, StrategyOptions, strategy_names
from cvactive.selection.options import _check_strategy_options as _check_strategy_options

__all__ = [
    "Aggregation",
    "Grey",
    "ImageScore",
    "LoopStrategyOptions",
    "Measure",
    "NonNegFloat",
    "NonNegInt",
    "PacingScore",
    "Pair",
    "PosFloat",
    "PosInt",
    "Prob",
    "Quality",
    "Seed",
    "StrategyName",
    "StrategyOptions",
]


def _strategies() -> list[str]:
    return strategy_names()


#: ``strategy_options:`` of loop.yaml.
LoopStrategyOptions = Annotated[dict[StrategyName, dict[str, Any]], AfterValidator(_check_strategy_options)]
