"""Ranges and name checks the config models share."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from cvactive.schemas.check import checked_options

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

    check.what = what  # type: ignore[attr-defined]  # how check.describe names it
    return AfterValidator(check)


def _measures() -> list[str]:
    from cvactive.measures import CONSISTENCY_MEASURES, MEASURES

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
