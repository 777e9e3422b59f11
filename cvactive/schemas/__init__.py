"""The type, range and default of every config key: one pydantic model per config file.

Each model (in :mod:`cvactive.schemas.harvest` and :mod:`cvactive.schemas.commands`) is the
reference of one config file (``configs/<name>.yaml`` in the repository,
``cvactive/resources/configs`` once installed); a field's annotation is the key's type and
range, its default the value the function uses when the key is absent. Models are strict
(``1`` is not ``true``, ``"0.5"`` is not a number; an integer is a fine float) and refuse
unknown keys. :func:`cvactive.config.check_config` validates a mapping with :func:`validate`;
the first problem becomes one line naming the file, the key, the value and what is expected
(:mod:`cvactive.schemas.check`).

Keys stay the keyword arguments of the functions the commands call; the tests check that each
model's keys and defaults match the signature or dataclass it describes (:data:`TARGETS`).
Names that other modules own (measures, strategies) are checked against those modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cvactive._renamed import NAMES
from cvactive.schemas.check import Section, describe, validate_model
from pydantic import BaseModel

from cvactive.schemas.commands import (
    Bbox,
    CopyPaste,
    Evaluate,
    Health,
    Loop,
    Porch,
    Recipe,
    Select,
    Synthesize,
)
from cvactive.schemas.harvest import RULE_MODELS, Dedup, Harvest, Limits, Pacing, Retry, Scorer

__all__ = ["RENAMED", "SCHEMAS", "TARGETS", "Section", "model", "reference", "reference_page", "validate"]

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
    "cvactive.harvest.frames.Retry": "retry",
    "cvactive.detect.scorer.Scorer": "scorer",
    "cvactive.harvest.rules.RandomRule": "rule:random",
    "cvactive.harvest.rules.ConfidenceBandRule": "rule:confidence_band",
    "cvactive.harvest.rules.UncertaintyRule": "rule:uncertainty",
    "cvactive.harvest.rules.ClassesRule": "rule:classes",
    "cvactive.harvest.rules.CountRule": "rule:count",
    "cvactive.harvest.rules.EmptyRule": "rule:empty",
    "cvactive.loop.config.LoopConfig": "loop",
    "cvactive.synthesis.core.synthesize": "synthesize",
    "cvactive.synthesis.recipes.BboxOptions": "bbox",
    "cvactive.synthesis.recipes.CopyPasteOptions": "copy_paste",
    "cvactive.porch.PorchRecipe": "porch",
}


#: schema -> {old key: new key}: top-level config keys renamed so that one concept has one name
#: (:mod:`cvactive._renamed`); :func:`cvactive.config.check_config` still reads the old key, with a
#: warning, until the next release.
RENAMED: dict[str, dict[str, str]] = {
    "select": {"rng": "seed"},
    "health": {"rng": "seed"},
    "harvest": {"frame_stride": "stride"},
}


def model(kind: str) -> type[BaseModel]:
    """The model of schema ``kind``; an unknown name lists the valid ones."""
    if kind not in SCHEMAS:
        raise KeyError(f"no config schema {kind!r}; valid: {', '.join(SCHEMAS)}")
    return SCHEMAS[kind]


def validate(kind: str, data: Mapping[str, Any], where: str, *, partial: bool = False) -> None:
    """Validate ``data`` against schema ``kind`` (see :func:`cvactive.schemas.check.validate_model`)."""
    validate_model(model(kind), data, where, partial=partial)


def reference(kind: str) -> str:
    """A markdown table of schema ``kind``: every key, what it must be, its default (docs/config-reference.md)."""
    rows = ["| key | type and range | default |", "|---|---|---|"]
    for name, f in model(kind).model_fields.items():
        default = "required" if f.is_required() else f"`{_yaml(f.default)}`"
        rows.append(f"| `{name}` | {describe(f.annotation, list(f.metadata))} | {default} |")
    return "\n".join(rows)


def _yaml(value: Any) -> str:
    if isinstance(value, BaseModel):
        return "{}" if not value.model_dump(exclude_defaults=True) else str(value.model_dump())
    if value is None:
        return "null"
    if value == "":
        return '""'
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list) and len(value) > 6:
        return f"[{', '.join(map(str, value[:3]))}, ... ({len(value)} values)]"
    return str(value).replace("'", "")


#: (schema, where it is used) in the order docs/config-reference.md lists them.
REFERENCE_ORDER = (
    ("health", "`configs/health.yaml` (`cvactive health`)"),
    ("evaluate", "`configs/evaluate.yaml` (`cvactive evaluate`)"),
    ("harvest", "`configs/harvest*.yaml` (`cvactive harvest`)"),
    ("limits", "`budget:` of a harvest config, and each rule's `limits:`"),
    ("pacing", "`pacing:` of a harvest config"),
    ("dedup", "`dedup:` of a harvest config"),
    ("scorer", "`scorer:` of a harvest config"),
    ("retry", "`retry:` of a harvest config"),
    *[(f"rule:{m.model_fields['kind'].default}", "a rule of a harvest config's `rules:`") for m in RULE_MODELS],
    ("select", "`configs/select.yaml` (`cvactive select`); each entry of `strategies:` holds a strategy's options"),
    ("loop", "`configs/loop.yaml` (`cvactive loop`)"),
    ("synthesize", "`configs/synthesis/synthesize.yaml` (`cvactive synthesize`)"),
    ("recipe", "a recipe, `configs/synthesis/recipes/*.yaml` (or `recipes: [...]` of several)"),
    ("bbox", "`bbox:` of a recipe"),
    ("copy_paste", "`copy_paste:` of a copy-paste recipe"),
    ("porch", "`datasets/porch.yaml` (`cvactive porch`)"),
)


def reference_page() -> str:
    """docs/config-reference.md: every schema's table (regenerate it with this function)."""
    parts = [
        "# Config reference",
        "",
        "Every key of every config file, what it must be and its default. Generated from `cvactive/schemas.py`",
        "(`python -c \"from cvactive.schemas import reference_page; print(reference_page(), end='')\"`);",
        "a test keeps this page equal to the schemas. See [install.md](install.md) for where the files live.",
        "",
    ]
    for kind, where in REFERENCE_ORDER:
        parts += [f"## `{kind}`", "", f"{where}.", "", reference(kind), ""]
    parts += [
        "## Names",
        "",
        NAMES,
        "",
        "Renamed config keys (the old key is read, with the warning):",
        "",
        "| config | old key | new key |",
        "|---|---|---|",
        *(f"| `{kind}` | `{old}` | `{new}` |" for kind, renames in RENAMED.items() for old, new in renames.items()),
        "",
    ]
    return "\n".join(parts)
