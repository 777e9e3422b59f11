"""The select config's options, declared once: :class:`SelectOptions` (the keys of ``configs/select.yaml``).

Its fields are the config keys with their type, range, default and help; ``--strategy``, ``--k``
and ``--seed`` of ``cvactive select``, the config schema and docs/config-reference.md are derived
from them (:mod:`cvactive.declare`). Each strategy's own options are the keyword arguments of its
registered function (:mod:`cvactive.selection.base`), checked against its signature.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator

from cvactive.declare.check import checked_options
from cvactive.declare.fields import Declared, from_mapping, option
from cvactive.declare.ranges import PosInt, Seed, one_of

#: the strategy ``cvactive select`` runs when neither the config nor ``--strategy`` names one.
DEFAULT_STRATEGY = "uncertainty"


def strategy_names() -> list[str]:
    """The registered strategies (looked up when a config is checked)."""
    from cvactive.selection.base import available_strategies

    return list(available_strategies())


def _check_strategy_options(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """Each strategy's options, checked against its registered signature."""
    from cvactive.selection.base import get_strategy

    for name, options in (value or {}).items():
        checked_options(get_strategy(name).func, options or {}, f"{name}")
    return value


StrategyName = Annotated[str, one_of(strategy_names, "a selection strategy")]
#: ``strategies:`` of select.yaml: strategy -> its options (null options: the defaults).
StrategyOptions = Annotated[dict[StrategyName, dict[str, Any] | None], AfterValidator(_check_strategy_options)]


@dataclass(frozen=True)
class SelectOptions(Declared):
    """The options of ``cvactive select`` (every key of ``configs/select.yaml``)."""

    strategy: StrategyName | None = option(
        None, f"the strategy, see `cvactive select --list` (null: {DEFAULT_STRATEGY})", flag="--strategy"
    )
    k: PosInt | None = option(None, "how many records to select", flag="--k")
    seed: Seed | None = option(None, "the random seed: the same seed picks the same items", flag="--seed")
    strategies: StrategyOptions | None = option(None, "each strategy's options: {strategy: {option: value}}")

    where: ClassVar[str] = "select"

    @classmethod
    def of(cls, config: Mapping[str, Any] | None = None, **keys: Any) -> SelectOptions:
        """Options from a config mapping, with ``keys`` (set ones only) over them.

        Raises:
            ConfigError: the first invalid option.
        """
        built = from_mapping(cls, {**(config or {}), **{k: v for k, v in keys.items() if v is not None}}, cls.where)
        assert built is not None
        return built

    @property
    def name(self) -> str:
        """The strategy to run."""
        return self.strategy or DEFAULT_STRATEGY

    def options_of(self, name: str) -> dict[str, Any]:
        """The config's options of strategy ``name`` (empty when it lists none)."""
        return dict((self.strategies or {}).get(name) or {})
