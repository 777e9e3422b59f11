"""What a synthesis run did: the share of each targeted gap before and after, per recipe counts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from cvactive.synthesis.gaps import (
    GapThresholds,
    Profile,
    bright_share,
    class_shares,
    dark_share,
    gap_share,
    side_share,
    small_share,
)
from cvactive.synthesis.plan import Plan


@dataclass
class GapReport:
    """How the synthetic set moves one share.

    Attributes:
        kind: gap kind (``class``, ``dark``, ``bright``, ``small_objects``, ``position``) or ``condition``.
        key: the class name, condition or side.
        before: the share in the labeled set.
        after: the share in the combined set (labeled + synthetic).
        synthetic: the share within the synthetic images alone.
        target: the share below which it counted as a gap (``None`` when it was named, not found).
        planned: synthetic images planned for it (dropped ones included).
        recipes: the recipes used for it, with how many images each wrote.
    """

    kind: str
    key: str
    before: float | None
    after: float | None
    synthetic: float | None
    target: float | None
    planned: int
    recipes: list[str]


@dataclass
class SynthesisSummary:
    """What :func:`synthesize` did."""

    out: str
    data_yaml: str
    combined_yaml: str
    provenance: str
    target: str
    requested: int
    written: int
    source_images: int
    source_boxes: int
    synthetic_boxes: int
    gaps: list[GapReport]
    shares: dict[str, dict[str, float]]
    by_recipe: dict[str, int]
    dropped: list[dict[str, Any]] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """A short human-readable report."""

        def pct(v: float | None) -> str:
            return "   -  " if v is None else f"{100 * v:5.1f}%"

        out = [
            f"synthesized {self.written}/{self.requested} images ({self.synthetic_boxes} boxes) -> {self.out}",
            f"  from {self.source_images} labeled images ({self.source_boxes} boxes); target: {self.target}",
            "  targeted gap                  before   after   in synthetic  images  recipes",
        ]
        for g in self.gaps:
            name = f"{g.kind}:{g.key}"
            out.append(
                f"  {name:<28} {pct(g.before)}  {pct(g.after)}  {pct(g.synthetic):>12}  {g.planned:6d}  "
                + ",".join(g.recipes)
            )
        out.append("  by recipe: " + ", ".join(f"{k} {v}" for k, v in sorted(self.by_recipe.items())))
        if self.dropped:
            out.append(f"  dropped {len(self.dropped)} (no box above the visibility threshold or no room to paste)")
        if self.unreadable:
            out.append(f"  {len(self.unreadable)} unreadable source image(s) skipped")
        out.extend(f"  note: {n}" for n in self.notes)
        out.append(f"  data set: {self.data_yaml}   combined with the labeled set: {self.combined_yaml}")
        return out


def gap_report(plan: Plan, source: Profile, synthetic: Profile, combined: Profile, t: GapThresholds) -> GapReport:
    """The before / after / in-synthetic shares of the gap one plan filled."""
    g = plan.gap
    used = [f"{k} {v}" for k, v in sorted(plan.used.items())]
    if g is None:
        return GapReport("condition", plan.label.split(":", 1)[-1], None, None, None, None, plan.count, used)
    return GapReport(
        kind=g.kind,
        key=g.key,
        before=round(gap_share(source, g, t), 4),
        after=round(gap_share(combined, g, t), 4),
        synthetic=round(gap_share(synthetic, g, t), 4) if synthetic.images else None,
        target=round(g.target, 4),
        planned=plan.count,
        recipes=used,
    )


def all_shares(
    names: Mapping[int, str], t: GapThresholds, profiles: Mapping[str, Profile]
) -> dict[str, dict[str, float]]:
    """Every share the gap analysis looks at, for each profile (before / synthetic / after)."""
    out: dict[str, dict[str, float]] = {}
    for label, p in profiles.items():
        shares = class_shares(p)
        row = {f"class:{names.get(c, str(c))}": round(float(s), 4) for c, s in enumerate(shares)}
        row["dark"] = round(dark_share(p, t.dark_threshold), 4)
        row["bright"] = round(bright_share(p, t.bright_threshold), 4)
        row["small_objects"] = round(small_share(p, t.small_size), 4)
        row["position:left"] = round(side_share(p, "left"), 4)
        row["position:right"] = round(side_share(p, "right"), 4)
        row["images"] = p.images
        row["boxes"] = p.boxes
        out[label] = row
    return out
