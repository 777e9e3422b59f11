"""The harvest config's schemas, derived from the declarations in :mod:`cvactive.harvest`.

Nothing is declared here: :class:`cvactive.harvest.options.HarvestOptions`, the rule classes
registered in :data:`cvactive.harvest.rules.RULES`, and the sections they hold (``Limits``,
``Pacing``, ``Dedup``, ``Retry``, ``Scorer``) declare every key once, with its type, range,
default and help; :func:`cvactive.declare.schema_of` turns each into the model a config is checked
against. A rule registered in ``RULES`` is in the schema's rule union by that alone.
"""

from __future__ import annotations

from cvactive.declare.fields import schema_of
from cvactive.detect.scorer import Scorer as _Scorer
from cvactive.harvest import budget, dedup, frames
from cvactive.harvest.options import HarvestOptions
from cvactive.harvest.rules import RULES

Harvest = schema_of(HarvestOptions)
Limits = schema_of(budget.Limits)
Pacing = schema_of(budget.Pacing)
Dedup = schema_of(dedup.Dedup)
Retry = schema_of(frames.Retry)
Scorer = schema_of(_Scorer)
#: one model per registered rule kind, in the order of ``RULES``.
RULE_MODELS = tuple(schema_of(cls) for cls in RULES.values())
#: ``rule:<kind>`` -> the rule's documented example (its class's ``example``), shown in the reference.
EXAMPLES = {f"rule:{kind}": {"rules": [cls.example]} for kind, cls in RULES.items()}
