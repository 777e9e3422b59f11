"""Membership query synthesis: targeted, label-correct augmentation with albumentations.

When the labeled set is thin somewhere (a rare class, rare night frames, objects always on one
side), :func:`synthesize` makes new labeled images there from the existing ones: named recipes
(``night``, ``fog``, ``glare``, ``motion_blur``, ``zoom_out``, ``zoom_in``, ``shift``, ``flip``,
``rotate``, ``weather``, ``copy_paste``) in ``configs/synthesis/recipes``, boxes carried through
every transform by albumentations, and a provenance line per image so reviewers can trace and
reject it. Every albumentations import of cvactive lives in :mod:`cvactive.synthesis._albu`.

    >>> from cvactive.synthesis import synthesize
    >>> summary = synthesize("data/porch/data.yaml", k=100, out="runs/syn", target="auto")  # doctest: +SKIP
    >>> print("\\n".join(summary.lines()))  # doctest: +SKIP
"""

from __future__ import annotations

from cvactive.synthesis.copypaste import Patch, paste
from cvactive.synthesis.core import (
    PROVENANCE,
    GapReport,
    SynthesisSummary,
    Target,
    load_provenance,
    parse_target,
    synthesize,
    yolo_label_text,
)
from cvactive.synthesis.gaps import Gap, GapThresholds, Profile, find_gaps, gap_share
from cvactive.synthesis.recipes import (
    FILLS,
    RECIPE_DIR,
    BboxOptions,
    CopyPasteOptions,
    Recipe,
    builtin_names,
    load_recipes,
    pick,
    recipe_from_dict,
)

__all__ = [
    "FILLS",
    "PROVENANCE",
    "RECIPE_DIR",
    "BboxOptions",
    "CopyPasteOptions",
    "Gap",
    "GapReport",
    "GapThresholds",
    "Patch",
    "Profile",
    "Recipe",
    "SynthesisSummary",
    "Target",
    "builtin_names",
    "find_gaps",
    "gap_share",
    "load_provenance",
    "load_recipes",
    "parse_target",
    "paste",
    "pick",
    "recipe_from_dict",
    "synthesize",
    "yolo_label_text",
]
