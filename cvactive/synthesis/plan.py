"""Planning a synthesis run: which gaps to fill, with which recipes, from which parents (pure numpy).

:func:`make_plans` turns the target into one :class:`Plan` per gap (or named class /
condition) with its candidate recipes and parent weights; :func:`plan_jobs` shares the ``n``
images among the plans and draws, with the run's generator, the recipe, parent and seed of
every image (:class:`Job`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from cvactive.synthesis.gaps import (
    Gap,
    GapThresholds,
    Profile,
    allocate,
    bright_share,
    class_shares,
    dark_share,
    find_gaps,
    side_share,
    small_share,
)
from cvactive.synthesis.parents import LabeledSplit
from cvactive.synthesis.recipes import Recipe
from cvactive.synthesis.target import Target
from cvactive.yolodata import YoloItem

#: How much more a parent weighs per unit share of its boxes in the targeted rare classes.
RARE_BONUS = 4.0


@dataclass
class Plan:
    """What to make for one gap: candidate recipes, parent weights and how many images it got.

    Attributes:
        label: the gap as the summary names it (``class:starfish``, ``condition:night``).
        gap: the gap, or ``None`` for a named condition that moves no measured share.
        recipes: the recipes that may fill it.
        weights: ``(I,)`` how likely each parent is drawn for a transform recipe.
        class_id: the class copy-paste pastes (class gaps only).
        count: images planned.
        used: recipe name -> images written with it (filled while running).
        paste_weights: ``(I,)`` how likely each image is the backdrop of a paste.
    """

    label: str
    gap: Gap | None
    recipes: list[Recipe]
    weights: np.ndarray
    class_id: int | None = None
    count: int = 0
    used: dict[str, int] = field(default_factory=dict)
    paste_weights: np.ndarray | None = None


@dataclass
class Job:
    """One synthetic image to make: its plan, recipe, parent (item index) and seed."""

    plan: Plan
    recipe: Recipe
    parent: int
    seed: int


def draw(weights: np.ndarray, k: int, rng: np.random.Generator) -> list[int]:
    """``k`` indices drawn by weight, without replacement until the candidates run out, then again."""
    w = np.asarray(weights, float)
    idx = np.flatnonzero(w > 0)
    out: list[int] = []
    if not len(idx):
        return out
    while len(out) < k:
        take = min(k - len(out), len(idx))
        p = w[idx] / w[idx].sum()
        out.extend(int(i) for i in rng.choice(idx, size=take, replace=False, p=p))
    return out


def plan_jobs(
    tgt: Target,
    book: Mapping[str, Recipe],
    parents: LabeledSplit,
    thresholds: GapThresholds,
    n: int,
    rng: np.random.Generator,
) -> tuple[list[Plan], list[Job], list[str]]:
    """The plans, the ``n`` jobs shared among them (fewer when a plan cannot be filled) and notes."""
    plans, notes = make_plans(tgt, book, parents, thresholds)
    counts = allocate([0.5 + p.gap.deficit if p.gap and tgt.auto else 1.0 for p in plans], n)
    jobs: list[Job] = []
    for plan, k in zip(plans, counts):
        plan.count = k
        planned = jobs_for(plan, k, rng)
        if len(planned) < k:
            why = "no recipe fills it" if not plan.recipes else "no suitable parent image"
            notes.append(f"{plan.label}: {k - len(planned)} of {k} images not made ({why})")
        jobs.extend(planned)
    return plans, jobs, notes


def box_counts(items: Sequence[YoloItem], num_classes: int) -> np.ndarray:
    """``(I, C)`` float boxes of each class in each item."""
    counts = np.zeros((len(items), max(1, num_classes)), float)
    for i, it in enumerate(items):
        if len(it.classes):
            counts[i] = np.bincount(it.classes, minlength=counts.shape[1])[: counts.shape[1]]
    return counts


def make_plans(
    tgt: Target, book: Mapping[str, Recipe], parents: LabeledSplit, t: GapThresholds
) -> tuple[list[Plan], list[str]]:
    """What to make: one plan per gap (or named class / condition), with candidate recipes and parent weights."""
    notes: list[str] = []
    items, names, source = parents.items, parents.names, parents.profiled
    counts = box_counts(items, len(names))
    nbox = np.maximum(counts.sum(1), 1)
    gaps, rare_ids = _target_gaps(tgt, book, names, source, t, notes)
    rare_frac = counts[:, rare_ids].sum(1) / nbox if rare_ids else np.zeros(len(items))
    bonus = (1.0 + RARE_BONUS * rare_frac) * parents.has_boxes
    if tgt.conditions:
        plans = _condition_plans(tgt, book, names, source, t, rare_ids, rare_frac, bonus)
    else:
        plans = _gap_plans(gaps, book, items, parents.luma, t, counts, nbox, parents.has_boxes, bonus)
    readable = parents.readable
    for p in plans:
        p.weights = np.where(readable, p.weights, 0.0)
        # Copy-paste prefers sparse frames: more room, and the pasted class weighs more there.
        p.paste_weights = np.where(readable, 1.0 / (1.0 + counts.sum(1)), 0.0)
    return plans, notes


def _target_gaps(
    tgt: Target,
    book: Mapping[str, Recipe],
    names: Mapping[int, str],
    source: Profile,
    t: GapThresholds,
    notes: list[str],
) -> tuple[list[Gap], list[int]]:
    """The gaps to fill and the rare class ids: found in the data (``auto``) or named by the target."""
    if not tgt.auto:
        by_name = {v: k for k, v in names.items()}
        shares = class_shares(source)
        gaps = [Gap("class", c, float(shares[by_name[c]]), 1.0 / max(1, len(names)), by_name[c]) for c in tgt.classes]
        return gaps, [by_name[c] for c in tgt.classes]
    gaps = find_gaps(source, names, t)
    fillable = {f for r in book.values() for f in r.fills}
    for g in [g for g in gaps if g.kind not in fillable]:
        notes.append(f"gap {g.kind}:{g.key} found but no recipe fills {g.kind!r}")
    gaps = [g for g in gaps if g.kind in fillable]
    if not gaps:
        shares = class_shares(source)
        c = int(np.argmin(shares))
        gaps = [Gap("class", names.get(c, str(c)), float(shares[c]), float(shares[c]), c)]
        notes.append(f"no share below its threshold; targeting the rarest class {gaps[0].key!r}")
    return gaps, [g.class_id for g in gaps if g.kind == "class" and g.class_id is not None]


def _condition_plans(
    tgt: Target,
    book: Mapping[str, Recipe],
    names: Mapping[int, str],
    source: Profile,
    t: GapThresholds,
    rare_ids: list[int],
    rare_frac: np.ndarray,
    bonus: np.ndarray,
) -> list[Plan]:
    """One plan per named condition (copy-paste: one per class it pastes)."""
    plans: list[Plan] = []
    for name in tgt.conditions:
        recipe = book[name]
        weights = bonus * (rare_frac > 0) if rare_ids else bonus.copy()
        if recipe.kind == "copy_paste":  # pastes the named classes, or else the rarest one
            shares = class_shares(source)
            for c in rare_ids or [int(np.argmin(np.where(shares > 0, shares, np.inf)))]:
                cgap = Gap("class", names.get(c, str(c)), float(shares[c]), 1.0 / max(1, len(names)), c)
                plans.append(Plan(f"condition:{name}:{cgap.key}", cgap, [recipe], bonus.copy(), class_id=c))
            continue
        plans.append(Plan(f"condition:{name}", condition_gap(recipe, source, t), [recipe], weights))
    return plans


def _gap_plans(
    gaps: Sequence[Gap],
    book: Mapping[str, Recipe],
    items: Sequence[YoloItem],
    luma: np.ndarray,
    t: GapThresholds,
    counts: np.ndarray,
    nbox: np.ndarray,
    has_boxes: np.ndarray,
    bonus: np.ndarray,
) -> list[Plan]:
    """One plan per gap, with the recipes that fill its kind and the parents that suit it."""
    plans: list[Plan] = []
    for g in gaps:
        cands = [r for r in book.values() if g.kind in r.fills]
        if g.kind == "class":
            assert g.class_id is not None
            w = counts[:, g.class_id] / nbox * has_boxes
            plans.append(Plan(f"class:{g.key}", g, cands, w, class_id=g.class_id))
        elif g.kind == "dark":
            plans.append(Plan("dark", g, cands, bonus * (luma >= t.dark_threshold)))
        elif g.kind == "bright":
            plans.append(Plan("bright", g, cands, bonus * (luma <= t.bright_threshold)))
        elif g.kind == "small_objects":
            plans.append(Plan("small_objects", g, cands, bonus.copy()))
        else:  # position: mirror frames whose boxes sit mostly on the other side
            w = _side_weights(items, light_left=g.key == "left")
            plans.append(Plan(f"position:{g.key}", g, cands, (w if w.sum() else 1.0) * bonus))
    return plans


def _side_weights(items: Sequence[YoloItem], light_left: bool) -> np.ndarray:
    """``(I,)`` how much more of each item's boxes sit on the heavy side than on the light one."""
    w = np.zeros(len(items))
    for i, it in enumerate(items):
        if len(it.classes):
            left = float(np.sum(it.boxes[:, 0] < 0.5))
            heavy = len(it.classes) - left if light_left else left
            w[i] = max(0.0, heavy - (len(it.classes) - heavy)) / len(it.classes)
    return w


def condition_gap(recipe: Recipe, source: Profile, t: GapThresholds) -> Gap | None:
    """The share a named condition moves (night: dark frames; glare: bright; zoom_out: small boxes)."""
    for kind in recipe.fills:
        if kind == "dark":
            return Gap("dark", "dark", dark_share(source, t.dark_threshold), t.min_dark_share)
        if kind == "bright":
            return Gap("bright", "bright", bright_share(source, t.bright_threshold), t.min_bright_share)
        if kind == "small_objects":
            return Gap("small_objects", "small", small_share(source, t.small_size), t.min_small_share)
        if kind == "position":
            side = "left" if side_share(source, "left") < side_share(source, "right") else "right"
            return Gap("position", side, side_share(source, side), t.min_side_share)
    return None


def jobs_for(plan: Plan, k: int, rng: np.random.Generator) -> list[Job]:
    """``k`` jobs for one plan: recipes in a seeded order (copy-paste every other one), parents by weight."""
    if k == 0 or not plan.recipes:
        return []
    paste = [r for r in plan.recipes if r.kind == "copy_paste"] if plan.class_id is not None else []
    others = [r for r in plan.recipes if r.kind != "copy_paste"]
    order = [others[i] for i in rng.permutation(len(others))] if others else []
    chosen: list[Recipe] = []
    for j in range(k):
        if paste and (j % 2 == 0 or not order):
            chosen.append(paste[0])
        elif order:
            chosen.append(order[j % len(order)] if not paste else order[(j // 2) % len(order)])
    jobs = []
    transform_parents = draw(plan.weights, k, rng)
    paste_weights = plan.paste_weights if plan.paste_weights is not None else np.ones_like(plan.weights)
    for j, recipe in enumerate(chosen):
        if recipe.kind == "copy_paste":
            parent = draw(paste_weights, 1, rng)[0]
        else:
            if not transform_parents:
                continue
            parent = transform_parents[j % len(transform_parents)]
        jobs.append(Job(plan, recipe, parent, int(rng.integers(0, 2**31 - 1))))
    return jobs


def instances(items: Sequence[YoloItem], readable: np.ndarray) -> dict[int, list[tuple[int, int]]]:
    """Per class, every (item, box) that copy-paste may cut."""
    out: dict[int, list[tuple[int, int]]] = {}
    for i, it in enumerate(items):
        if readable[i]:
            for b, c in enumerate(it.classes):
                out.setdefault(int(c), []).append((i, b))
    return out
