"""The ranges and names option declarations share (``Annotated`` types pydantic checks).

A field declared ``stride: PosInt`` is an integer of at least 1 in the config check, in the
reference page and when the object is built in Python. The measure and aggregation names are
looked up in :mod:`cvactive.measures` when a config is checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, Field

Prob = Annotated[float, Field(ge=0, le=1)]
NonNegInt = Annotated[int, Field(ge=0)]
PosInt = Annotated[int, Field(ge=1)]
NonNegFloat = Annotated[float, Field(ge=0)]
PosFloat = Annotated[float, Field(gt=0)]
Grey = Annotated[float, Field(ge=0, le=255)]
Seed = Annotated[int, Field(ge=0)]
Quality = Annotated[int, Field(ge=1, le=100)]
Pair = Annotated[list[PosFloat], Field(min_length=2, max_length=2)]
Cosine = Annotated[float, Field(ge=-1, le=1)]
Bits = Annotated[int, Field(ge=0, le=64)]
NonEmpty = Annotated[str, Field(min_length=1)]


def one_of(valid: Callable[[], Any], what: str, listed: Callable[[], str] | None = None) -> AfterValidator:
    """A check that a string is one of ``valid()`` (looked up when a config is checked)."""

    def check(value: str) -> str:
        names = list(valid())
        if value not in names:
            choices = listed() if listed is not None else "one of " + ", ".join(map(str, names))
            raise ValueError(f"got {value!r}, expected {what}: {choices}")
        return value

    check.what = what  # type: ignore[attr-defined]  # how check.describe names it
    return AfterValidator(check)


def measures() -> list[str]:
    from cvactive.measures import CONSISTENCY_MEASURES, MEASURES

    return [*MEASURES, *CONSISTENCY_MEASURES]


def aggregations() -> tuple[str, ...]:
    from cvactive.measures import AGGREGATIONS

    return AGGREGATIONS


def image_scores() -> list[str]:
    return [f"{m}_{a}" for m in measures() for a in aggregations()]


def _score_parts() -> str:
    return f"measure one of {', '.join(measures())}; aggregation one of {', '.join(aggregations())}"


Measure = Annotated[str, one_of(measures, "a measure")]
Aggregation = Annotated[str, one_of(aggregations, "an aggregation")]
ImageScore = Annotated[str, one_of(image_scores, "an image score <measure>_<aggregation>", _score_parts)]
PacingScore = Annotated[
    str, one_of(lambda: ["random", *image_scores()], "random or an image score <measure>_<aggregation>", _score_parts)
]
