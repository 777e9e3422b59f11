"""Gates: thresholds a retraining pipeline trusts. Each one passes or fails with a reason.

A gate whose threshold is ``None`` is not checked. The ``cvactive health`` command exits 0
when every gate passes, 1 when any fails, and 2 when the input cannot be read.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class GateResult:
    """One gate: its name, whether it passed, the measured value, the limit and a one-line reason."""

    name: str
    passed: bool
    value: Any
    limit: Any
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def min_instances_gate(instances: dict[str, int], limit: int) -> GateResult:
    """Every class has at least ``limit`` instances."""
    low = {name: n for name, n in instances.items() if n < limit}
    if low:
        ordered = sorted(low.items(), key=lambda kv: kv[1])
        listed = ", ".join(f"{k} {v}" for k, v in ordered[:10]) + (" ..." if len(ordered) > 10 else "")
        msg = f"{len(low)} class(es) under {limit} instances: {listed}"
    else:
        msg = f"every class has at least {limit} instances"
    return GateResult("min_instances", not low, min(instances.values(), default=0), limit, msg)


def max_imbalance_gate(ratio: float | None, limit: float, missing: list[str]) -> GateResult:
    """The largest class is at most ``limit`` times the smallest (a class with none fails)."""
    if ratio is None or math.isinf(ratio):
        what = f"class(es) with no instance: {', '.join(missing)}" if missing else "no classes"
        return GateResult("max_imbalance", False, None, limit, f"imbalance ratio infinite, {what}")
    ok = ratio <= limit
    return GateResult("max_imbalance", ok, round(ratio, 3), limit, f"imbalance ratio {ratio:.1f} vs limit {limit:g}")


def max_label_errors_gate(by_kind: dict[str, int], limit: int) -> GateResult:
    """At most ``limit`` label errors of the counted kinds."""
    total = sum(by_kind.values())
    detail = ", ".join(f"{k} {v}" for k, v in by_kind.items() if v) or "none"
    return GateResult("max_label_errors", total <= limit, total, limit, f"{total} label error(s) ({detail})")


def leakage_gate(leaked_pairs: int, allowed: bool) -> GateResult:
    """No image appears (exactly or nearly) in two splits, unless leakage is allowed."""
    ok = allowed or leaked_pairs == 0
    msg = f"{leaked_pairs} image pair(s) shared between splits" + (" (allowed)" if allowed and leaked_pairs else "")
    return GateResult("leakage", ok, leaked_pairs, "allowed" if allowed else 0, msg)


def min_dark_images_gate(dark: int, checked: int, limit: int) -> GateResult:
    """At least ``limit`` dark (night) images among those whose pixels were checked."""
    return GateResult(
        "min_dark_images", dark >= limit, dark, limit, f"{dark} dark image(s) of {checked} checked, need {limit}"
    )
