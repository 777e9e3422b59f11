"""The result of a health check, :class:`HealthReport`: what :mod:`~cvactive.health.check` measures
and :mod:`~cvactive.health.report` writes (its own module, so neither of the two imports the other)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cvactive.health.gates import GateResult


@dataclass
class HealthReport:
    """The result of a health check.

    Attributes:
        figures: every figure, JSON-ready (what ``report.json`` holds).
        gates: one result per gate that was checked.
        heatmaps: ``(C, G, G)`` centre counts per class, overall.
        files: the files written (name -> path).
    """

    figures: dict[str, Any]
    gates: list[GateResult]
    heatmaps: np.ndarray
    brightness: dict[str, np.ndarray] = field(default_factory=dict)
    box_sqrt_area: dict[str, np.ndarray] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def exit_code(self) -> int:
        """0 when every gate passes, 1 when any fails."""
        return 0 if self.passed else 1

    @property
    def failed(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]
