"""What a synthesis run targets: the data's own gaps, named classes, named conditions (recipes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cvactive.errors import ConfigError

TARGET_FORMS = ("auto", "classes=NAME[,NAME...]", "conditions=RECIPE[,RECIPE...]")


@dataclass(frozen=True)
class Target:
    """What to synthesise: ``auto`` (the data's gaps), named classes, named conditions (recipes), or both."""

    auto: bool = False
    classes: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()

    def text(self) -> str:
        """The target as the command line writes it (``auto``, ``classes=a,b;conditions=night``)."""
        if self.auto:
            return "auto"
        parts = []
        if self.classes:
            parts.append("classes=" + ",".join(self.classes))
        if self.conditions:
            parts.append("conditions=" + ",".join(self.conditions))
        return ";".join(parts)


def parse_target(spec: str | Sequence[str] | Target | None) -> Target:
    """``auto``, ``classes=a,b``, ``conditions=night,fog`` (several joined with ``;`` or given as a list).

    Raises:
        ConfigError: a part has none of the valid forms (they are listed).
    """
    if isinstance(spec, Target):
        return spec
    parts: list[str] = []
    for s in [spec or "auto"] if isinstance(spec, (str, type(None))) else spec:
        parts.extend(p.strip() for p in str(s).split(";") if p.strip())
    auto, classes, conditions = False, [], []
    for part in parts or ["auto"]:
        key, _, value = part.partition("=")
        values = [v.strip() for v in value.split(",") if v.strip()]
        if part == "auto":
            auto = True
        elif key == "classes" and values:
            classes.extend(values)
        elif key == "conditions" and values:
            conditions.extend(values)
        else:
            raise ConfigError(f"bad target {part!r}; valid forms: {', '.join(TARGET_FORMS)}")
    if auto and (classes or conditions):
        raise ConfigError("target 'auto' cannot be combined with classes= or conditions=")
    return Target(auto=auto, classes=tuple(classes), conditions=tuple(conditions))
