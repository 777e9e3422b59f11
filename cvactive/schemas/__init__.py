"""The type, range and default of every config key: one pydantic model per config file.

The harvest config's models are derived from the declarations of its options
(:mod:`cvactive.schemas.harvest`, from :class:`cvactive.harvest.options.HarvestOptions` and the
registered rules, see :mod:`cvactive.declare`); the other commands' are written in
:mod:`cvactive.schemas.commands`. A field's annotation is the key's type and range, its default
the value the function uses when the key is absent. Models are strict (``1`` is not ``true``,
``"0.5"`` is not a number; an integer is a fine float) and refuse unknown keys.
:func:`cvactive.config.check_config` validates a mapping with :func:`validate`; the first
problem becomes one line naming the file, the key, the value and what is expected
(:mod:`cvactive.declare.check`).

A function or dataclass whose keyword options a hand-written model checks says so itself
(``@config_schema(kind)`` of :mod:`cvactive._config`), so the name can never go stale; the tests
check that each such model's keys and defaults match the code it describes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from cvactive.declare.check import Section, validate_model
from cvactive.declare.fields import reference as _table
from cvactive.schemas.commands import Evaluate, Health, Loop, Porch
from cvactive.schemas.harvest import EXAMPLES, RULE_MODELS, Dedup, Harvest, Limits, Pacing, Retry, Scorer
from cvactive.schemas.stages import Bbox, CopyPaste, Recipe, Select, Synthesize

__all__ = ["SCHEMAS", "Section", "model", "reference", "reference_page", "validate"]

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

#: The naming rule, as this page states it (markdown).
NAMES = """\
One concept has one name on the command line, in config files and in Python:

- `k`: how many items a command picks or makes: `cvactive select --k`, `cvactive synthesize --k`,
  `synthesize(k=...)`. `n` is the size of a pool. A loop study's `budget` (labels added per round)
  is the `k` of each round's selection; `initial` and `budget` keep the names of the study's
  parameters.
- `seed`: the integer that makes a run repeatable: every `--seed` flag and `seed:` config key, and
  the keyword argument of the functions those configs feed (`check_health(seed=...)`,
  `synthesize(seed=...)`, `harvest(seed=...)`). `rng` is the lower-level Python argument that
  takes a seed *or* a `numpy.random.Generator`: `select(..., rng=...)` and every selection
  strategy, the k-center and k-means kernels, the calibration and export splits, MC dropout.
- `stride`: keep every `stride`-th video frame: `cvactive score --stride`, `score_source(stride=...)`,
  the video shards of `--engine ray`, the harvest config's `stride:` and `harvest(stride=...)`."""


def model(kind: str) -> type[BaseModel]:
    """The model of schema ``kind``; an unknown name lists the valid ones."""
    if kind not in SCHEMAS:
        raise KeyError(f"no config schema {kind!r}; valid: {', '.join(SCHEMAS)}")
    return SCHEMAS[kind]


def validate(kind: str, data: Mapping[str, Any], where: str, *, partial: bool = False) -> None:
    """Validate ``data`` against schema ``kind`` (see :func:`cvactive.declare.check.validate_model`)."""
    validate_model(model(kind), data, where, partial=partial)


def reference(kind: str) -> str:
    """A markdown table of schema ``kind``: every key, what it must be, its default (docs/config-reference.md)."""
    return _table(model(kind), _yaml)


def _dump(data: Any) -> str:
    import yaml

    return str(yaml.safe_dump(data, sort_keys=False, default_flow_style=None))


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
        "Every key of every config file, what it must be, its default and what it does. Generated from the",
        "declarations (`cvactive.schemas`, `cvactive.declare`) by `python tools/render_config_reference.py`;",
        "a test keeps this page equal to them. See [install.md](install.md) for where the files live.",
        "",
    ]
    for kind, where in REFERENCE_ORDER:
        parts += [f"## `{kind}`", "", f"{where}.", "", reference(kind), ""]
        if kind in EXAMPLES:
            parts += ["For example:", "", "```yaml", _dump(EXAMPLES[kind]).rstrip(), "```", ""]
    parts += [
        "## Names",
        "",
        NAMES,
        "",
    ]
    return "\n".join(parts)
