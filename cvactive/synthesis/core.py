"""Membership query synthesis: new labeled images where the data is thin, written as a YOLO data set.

:func:`synthesize` reads a YOLO data set, finds its gaps (or takes the classes and conditions it
is told to target), picks parents and recipes to fill them, runs each recipe on its parent with a
seed, and writes ``OUT/images/train``, ``OUT/labels/train``, ``OUT/data.yaml`` (same class names),
``OUT/combined.yaml`` (the labeled set plus the synthetic one), ``OUT/provenance.jsonl`` (one line
per synthetic image: parent, recipe, applied parameters, seed) and ``OUT/summary.json``.
The same seed gives the same files, byte for byte.
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cvactive.errors import ConfigError, DatasetError, SourceError
from cvactive.sources import read_image
from cvactive.synthesis.copypaste import Patch, paste
from cvactive.synthesis.gaps import (
    Gap,
    GapThresholds,
    Profile,
    allocate,
    bright_share,
    class_shares,
    dark_share,
    find_gaps,
    gap_share,
    side_share,
    small_share,
)
from cvactive.synthesis.recipes import Recipe, load_recipes, pick
from cvactive.yolodata import YoloDataset, YoloItem, load_yolo_dataset, xyxy_to_yolo

log = logging.getLogger(__name__)

TARGET_FORMS = ("auto", "classes=NAME[,NAME...]", "conditions=RECIPE[,RECIPE...]")
PROVENANCE = "provenance.jsonl"
RARE_BONUS = 4.0
MAX_ATTEMPTS = 3


# ----------------------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    """What to synthesise: ``auto`` (the data's gaps), named classes, named conditions (recipes), or both."""

    auto: bool = False
    classes: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()


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


# ----------------------------------------------------------------------------------------- summary


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


# ----------------------------------------------------------------------------------------- helpers


def image_luma(path: Path) -> float:
    """Mean grey level (0-255) of an image file, decoded at a quarter of its size."""
    import cv2

    data = np.fromfile(str(path), np.uint8) if path.is_file() else np.zeros(0, np.uint8)
    gray = cv2.imdecode(data, cv2.IMREAD_REDUCED_GRAYSCALE_4) if data.size else None
    if gray is None:
        raise SourceError(f"{path}: not a readable image")
    return float(gray.mean())


def array_luma(image_rgb: np.ndarray) -> float:
    """Mean grey level (0-255) of an RGB image (the same weights OpenCV's decoder uses)."""
    import cv2

    return float(cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY).mean())


def yolo_label_text(xyxy: np.ndarray, classes: np.ndarray, width: int, height: int) -> str:
    """YOLO label text for pixel boxes, clipped into the image and rounded so every box stays inside."""
    b = np.asarray(xyxy, np.float64).reshape(-1, 4) / [width, height, width, height]
    b = np.clip(b, 0.0, 1.0)
    b[:, :2] = np.ceil(b[:, :2] * 1e6) / 1e6
    b[:, 2:] = np.floor(b[:, 2:] * 1e6) / 1e6
    rows = []
    for (x1, y1, x2, y2), c in zip(b, classes):
        if x2 - x1 <= 0 or y2 - y1 <= 0:
            continue
        rows.append(f"{int(c)} {(x1 + x2) / 2:.6f} {(y1 + y2) / 2:.6f} {x2 - x1:.6f} {y2 - y1:.6f}")
    return "\n".join(rows) + ("\n" if rows else "")


class _ImageCache:
    """A few decoded RGB images, so parents and paste sources used twice are decoded once."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._data: OrderedDict[Path, np.ndarray] = OrderedDict()

    def get(self, path: Path) -> np.ndarray:
        import cv2

        if path in self._data:
            self._data.move_to_end(path)
            return self._data[path]
        image = cv2.cvtColor(read_image(path), cv2.COLOR_BGR2RGB)
        self._data[path] = image
        if len(self._data) > self.size:
            self._data.popitem(last=False)
        return image


def _draw(weights: np.ndarray, k: int, rng: np.random.Generator) -> list[int]:
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


@dataclass
class _Plan:
    label: str
    gap: Gap | None
    recipes: list[Recipe]
    weights: np.ndarray
    class_id: int | None = None
    count: int = 0
    used: dict[str, int] = field(default_factory=dict)
    paste_weights: np.ndarray | None = None


@dataclass
class _Job:
    plan: _Plan
    recipe: Recipe
    parent: int
    seed: int


# ----------------------------------------------------------------------------------------- main


def synthesize(
    data: str | Path | YoloDataset,
    *,
    n: int,
    out: str | Path,
    recipes: str | Path | Iterable[str | Path] | Mapping[str, Recipe] | None = None,
    target: str | Sequence[str] | Target | None = "auto",
    seed: int | np.random.Generator = 0,
    split: str = "train",
    overwrite: bool = False,
    quality: int = 95,
    progress: bool = True,
    rare_ratio: float = 0.5,
    dark_threshold: float = 85.0,
    min_dark_share: float = 0.25,
    bright_threshold: float = 190.0,
    min_bright_share: float = 0.0,
    small_size: float = 0.08,
    min_small_share: float = 0.1,
    min_side_share: float = 0.35,
) -> SynthesisSummary:
    """Make ``n`` new labeled images where the data set is thin and write them as a YOLO data set.

    Args:
        data: a YOLO ``data.yaml``, its folder, or a loaded :class:`YoloDataset`.
        n: how many synthetic images to make.
        out: the output folder (``images/train``, ``labels/train``, ``data.yaml`` ... go there).
        recipes: recipe files, folders or built-in names, or loaded recipes (default: every built-in).
        target: ``auto`` (the data's gaps), ``classes=a,b``, ``conditions=night,fog`` (see :func:`parse_target`).
        seed: the seed (or a numpy Generator) of every random choice; the same seed gives the same
            bytes, and each image's own seed is recorded in its provenance line.
        split: the split whose images are parents and whose gaps are measured.
        overwrite: replace a synthetic set already in ``out`` (only its own files are removed).
        quality: JPEG quality of the written images.
        progress: show a progress bar.
        rare_ratio, dark_threshold, min_dark_share, bright_threshold, min_bright_share, small_size,
        min_small_share, min_side_share: what counts as a gap (see :class:`GapThresholds`).

    Raises:
        DatasetError: the data set has no labeled boxes in ``split``.
        ConfigError: a bad target, an unknown class or recipe name (valid ones listed), a malformed
            recipe, ``n < 1``, or ``out`` already holds files and ``overwrite`` is off.
    """
    import cv2
    import yaml
    from tqdm import tqdm

    from cvactive.synthesis import _albu

    if n < 1:
        raise ConfigError(f"n must be at least 1, got {n}")
    thresholds = GapThresholds(
        rare_ratio=rare_ratio,
        dark_threshold=dark_threshold,
        min_dark_share=min_dark_share,
        bright_threshold=bright_threshold,
        min_bright_share=min_bright_share,
        small_size=small_size,
        min_small_share=min_small_share,
        min_side_share=min_side_share,
    )
    tgt = parse_target(target)
    book = dict(recipes) if isinstance(recipes, Mapping) else load_recipes(recipes)
    for r in book.values():
        r.validate()
    ds = data if isinstance(data, YoloDataset) else load_yolo_dataset(data)
    if split not in ds.splits:
        raise DatasetError(f"data set has no split {split!r}; it has {', '.join(ds.splits)}")
    items = list(ds.items(split))
    names = ds.names
    nc = ds.num_classes
    if not any(len(it.classes) for it in items):
        raise DatasetError(
            f"{ds.yaml_path or ds.root}: split {split!r} has no labeled boxes ({len(items)} images); "
            "synthesis needs labels to transform or copy"
        )
    unknown = [c for c in tgt.classes if c not in names.values()]
    if unknown:
        raise ConfigError(f"unknown class(es) {unknown}; valid classes: {', '.join(names.values())}")
    pick(book, tgt.conditions)
    out_dir = Path(out).resolve()
    _prepare_out(out_dir, overwrite)

    # Profile the labeled set (grey level per image, boxes) once.
    luma = np.full(len(items), np.nan, np.float32)
    unreadable: list[str] = []
    for i, it in enumerate(tqdm(items, desc="profiling", unit="img", disable=not progress)):
        try:
            luma[i] = image_luma(it.image)
        except SourceError:
            unreadable.append(str(it.image))
    ok = np.flatnonzero(~np.isnan(luma))
    source = Profile.from_images(luma[ok].tolist(), [items[i].boxes for i in ok], [items[i].classes for i in ok], nc)
    if not source.boxes:
        raise DatasetError(f"split {split!r}: no readable image has labeled boxes")
    readable = ~np.isnan(luma)
    has_boxes = np.array([len(it.classes) > 0 for it in items]) & readable

    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    plans, notes = _make_plans(tgt, book, items, names, source, thresholds, luma, has_boxes, readable)
    counts = allocate([0.5 + p.gap.deficit if p.gap and tgt.auto else 1.0 for p in plans], n)
    jobs: list[_Job] = []
    for plan, k in zip(plans, counts):
        plan.count = k
        planned = _jobs_for(plan, k, book, rng)
        if len(planned) < k:
            why = "no recipe fills it" if not plan.recipes else "no suitable parent image"
            notes.append(f"{plan.label}: {k - len(planned)} of {k} images not made ({why})")
        jobs.extend(planned)

    # Run.
    img_dir, lbl_dir = out_dir / "images" / "train", out_dir / "labels" / "train"
    img_dir.mkdir(parents=True, exist_ok=True)
    lbl_dir.mkdir(parents=True, exist_ok=True)
    cache = _ImageCache()
    composes: dict[str, Any] = {}
    instances = _instances(items, readable)
    syn_luma: list[float] = []
    syn_boxes: list[np.ndarray] = []
    syn_classes: list[np.ndarray] = []
    syn_plan: list[int] = []
    by_recipe: dict[str, int] = {}
    dropped: list[dict[str, Any]] = []
    written_paths: list[str] = []
    plan_index = {id(p): i for i, p in enumerate(plans)}
    with (out_dir / PROVENANCE).open("w", encoding="utf-8") as prov:
        for j, job in enumerate(tqdm(jobs, desc="synthesizing", unit="img", disable=not progress)):
            parent = items[job.parent]
            result = None
            for attempt in range(MAX_ATTEMPTS):
                job_seed = job.seed + attempt
                result = _run_job(job, parent, job_seed, items, instances, cache, composes, _albu)
                if result is not None:
                    break
            if result is None:
                dropped.append({"parent": str(parent.image), "recipe": job.recipe.name, "seed": job.seed})
                continue
            image, boxes, classes, params = result
            h, w = image.shape[:2]
            stem = f"syn_{j:05d}_{job.recipe.name}_{parent.image.stem}"
            img_path = img_dir / f"{stem}.jpg"
            lbl_path = lbl_dir / f"{stem}.txt"
            ok_write, buf = cv2.imencode(
                ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
            )
            if not ok_write:  # pragma: no cover - OpenCV always encodes uint8 RGB
                raise SourceError(f"cannot encode {img_path}")
            img_path.write_bytes(buf.tobytes())
            lbl_path.write_text(yolo_label_text(boxes, classes, w, h))
            entry = {
                "image": str(img_path),
                "parent": str(parent.image.resolve()),
                "recipe": job.recipe.name,
                "params": params,
                "seed": int(job_seed),
                "target": job.plan.label,
                "label": str(lbl_path),
                "boxes": len(classes),
            }
            prov.write(json.dumps(entry, separators=(",", ":")) + "\n")
            written_paths.append(str(img_path))
            syn_luma.append(array_luma(image))
            syn_boxes.append(xyxy_to_yolo(boxes, w, h))
            syn_classes.append(np.asarray(classes, np.int64))
            syn_plan.append(plan_index[id(job.plan)])
            by_recipe[job.recipe.name] = by_recipe.get(job.recipe.name, 0) + 1
            job.plan.used[job.recipe.name] = job.plan.used.get(job.recipe.name, 0) + 1

    synthetic = Profile.from_images(syn_luma, syn_boxes, syn_classes, nc)
    combined = source.concat(synthetic)
    reports = [_report(p, source, synthetic, combined, thresholds, book) for p in plans]
    shares = _all_shares(names, thresholds, {"before": source, "synthetic": synthetic, "after": combined})
    data_yaml, combined_yaml = _write_yaml(out_dir, ds, names, split, items, readable, written_paths, yaml)
    summary = SynthesisSummary(
        out=str(out_dir),
        data_yaml=str(data_yaml),
        combined_yaml=str(combined_yaml),
        provenance=str(out_dir / PROVENANCE),
        target=_target_text(tgt),
        requested=n,
        written=len(written_paths),
        source_images=len(ok),
        source_boxes=int(source.boxes),
        synthetic_boxes=int(synthetic.boxes),
        gaps=reports,
        shares=shares,
        by_recipe=by_recipe,
        dropped=dropped,
        unreadable=unreadable,
        notes=notes,
    )
    (out_dir / "summary.json").write_text(json.dumps(summary.to_dict(), indent=1) + "\n")
    return summary


def _target_text(t: Target) -> str:
    if t.auto:
        return "auto"
    parts = []
    if t.classes:
        parts.append("classes=" + ",".join(t.classes))
    if t.conditions:
        parts.append("conditions=" + ",".join(t.conditions))
    return ";".join(parts)


def _prepare_out(out_dir: Path, overwrite: bool) -> None:
    prov = out_dir / PROVENANCE
    if prov.exists():
        if not overwrite:
            raise ConfigError(
                f"{out_dir} already holds a synthetic set; pass overwrite=True (--overwrite) to replace it"
            )
        for entry in load_provenance(out_dir).values():
            for key in ("image", "label"):
                p = Path(entry.get(key, ""))
                if p.is_file() and out_dir in p.parents:
                    p.unlink()
        for name in (PROVENANCE, "summary.json", "data.yaml", "combined.yaml", "combined_train.txt"):
            (out_dir / name).unlink(missing_ok=True)
    elif out_dir.exists() and any(out_dir.iterdir()):
        raise ConfigError(f"{out_dir} exists and is not empty; give an empty or new folder for the synthetic set")


def _make_plans(
    tgt: Target,
    book: Mapping[str, Recipe],
    items: Sequence[YoloItem],
    names: Mapping[int, str],
    source: Profile,
    t: GapThresholds,
    luma: np.ndarray,
    has_boxes: np.ndarray,
    readable: np.ndarray,
) -> tuple[list[_Plan], list[str]]:
    """What to make: one plan per gap (or named class / condition), with candidate recipes and parent weights."""
    notes: list[str] = []
    by_name = {v: k for k, v in names.items()}
    counts = np.zeros((len(items), max(1, len(names))), float)
    for i, it in enumerate(items):
        if len(it.classes):
            counts[i] = np.bincount(it.classes, minlength=counts.shape[1])[: counts.shape[1]]
    nbox = np.maximum(counts.sum(1), 1)
    if tgt.auto:
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
        rare_ids = [g.class_id for g in gaps if g.kind == "class" and g.class_id is not None]
    else:
        rare_ids = [by_name[c] for c in tgt.classes]
        shares = class_shares(source)
        gaps = [Gap("class", c, float(shares[by_name[c]]), 1.0 / max(1, len(names)), by_name[c]) for c in tgt.classes]
    rare_frac = counts[:, rare_ids].sum(1) / nbox if rare_ids else np.zeros(len(items))
    bonus = (1.0 + RARE_BONUS * rare_frac) * has_boxes
    plans: list[_Plan] = []
    if tgt.conditions:
        for name in tgt.conditions:
            recipe = book[name]
            weights = bonus * (rare_frac > 0) if rare_ids else bonus.copy()
            if recipe.kind == "copy_paste":  # pastes the named classes, or else the rarest one
                shares = class_shares(source)
                for c in rare_ids or [int(np.argmin(np.where(shares > 0, shares, np.inf)))]:
                    cgap = Gap("class", names.get(c, str(c)), float(shares[c]), 1.0 / max(1, len(names)), c)
                    plans.append(_Plan(f"condition:{name}:{cgap.key}", cgap, [recipe], bonus.copy(), class_id=c))
                continue
            gap = _condition_gap(recipe, source, t)
            plans.append(_Plan(f"condition:{name}", gap, [recipe], weights))
        for p in plans:
            p.weights = np.where(readable, p.weights, 0.0)
            p.paste_weights = np.where(readable, 1.0 / (1.0 + counts.sum(1)), 0.0)
        return plans, notes
    for g in gaps:
        cands = [r for r in book.values() if g.kind in r.fills]
        if g.kind == "class":
            assert g.class_id is not None
            w = counts[:, g.class_id] / nbox * has_boxes
            plans.append(_Plan(f"class:{g.key}", g, cands, w, class_id=g.class_id))
        elif g.kind == "dark":
            plans.append(_Plan("dark", g, cands, bonus * (luma >= t.dark_threshold)))
        elif g.kind == "bright":
            plans.append(_Plan("bright", g, cands, bonus * (luma <= t.bright_threshold)))
        elif g.kind == "small_objects":
            plans.append(_Plan("small_objects", g, cands, bonus.copy()))
        else:  # position: mirror frames whose boxes sit mostly on the other side
            light_left = g.key == "left"
            w = np.zeros(len(items))
            for i, it in enumerate(items):
                if len(it.classes):
                    left = float(np.sum(it.boxes[:, 0] < 0.5))
                    heavy = len(it.classes) - left if light_left else left
                    w[i] = max(0.0, heavy - (len(it.classes) - heavy)) / len(it.classes)
            plans.append(_Plan(f"position:{g.key}", g, cands, (w if w.sum() else 1.0) * bonus))
    for p in plans:
        p.weights = np.where(readable, p.weights, 0.0)
        # Copy-paste prefers sparse frames: more room, and the pasted class weighs more there.
        p.paste_weights = np.where(readable, 1.0 / (1.0 + counts.sum(1)), 0.0)
    return plans, notes


def _condition_gap(recipe: Recipe, source: Profile, t: GapThresholds) -> Gap | None:
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


def _jobs_for(plan: _Plan, k: int, book: Mapping[str, Recipe], rng: np.random.Generator) -> list[_Job]:
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
    transform_parents = _draw(plan.weights, k, rng)
    paste_weights = plan.paste_weights if plan.paste_weights is not None else np.ones_like(plan.weights)
    for j, recipe in enumerate(chosen):
        if recipe.kind == "copy_paste":
            parent = _draw(paste_weights, 1, rng)[0]
        else:
            if not transform_parents:
                continue
            parent = transform_parents[j % len(transform_parents)]
        jobs.append(_Job(plan, recipe, parent, int(rng.integers(0, 2**31 - 1))))
    return jobs


def _instances(items: Sequence[YoloItem], readable: np.ndarray) -> dict[int, list[tuple[int, int]]]:
    """Per class, every (item, box) that copy-paste may cut."""
    out: dict[int, list[tuple[int, int]]] = {}
    for i, it in enumerate(items):
        if readable[i]:
            for b, c in enumerate(it.classes):
                out.setdefault(int(c), []).append((i, b))
    return out


def _run_job(
    job: _Job,
    parent: YoloItem,
    seed: int,
    items: Sequence[YoloItem],
    instances: Mapping[int, list[tuple[int, int]]],
    cache: _ImageCache,
    composes: dict[str, Any],
    albu: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]] | None:
    """One synthetic image (RGB, pixel boxes, classes, params), or ``None`` when nothing worth labeling remains."""
    image = cache.get(parent.image)
    h, w = image.shape[:2]
    boxes = parent.xyxy(w, h)
    recipe = job.recipe
    if recipe.kind == "copy_paste":
        return _run_paste(job, image, boxes, parent.classes, seed, items, instances, cache, composes, albu)
    if recipe.name not in composes:
        composes[recipe.name] = albu.build_compose(
            recipe.pipeline,
            min_visibility=recipe.bbox.min_visibility,
            min_area=recipe.bbox.min_area,
            clip=recipe.bbox.clip,
            seed=seed,
        )
    res = albu.apply(composes[recipe.name], image, boxes, parent.classes, seed=seed)
    if len(parent.classes) and not len(res["classes"]):
        return None
    params = {"transforms": res["params"], "kept_boxes": res["instances"].tolist(), "source_boxes": len(boxes)}
    return res["image"], res["boxes"], res["classes"], params


def _run_paste(
    job: _Job,
    image: np.ndarray,
    boxes: np.ndarray,
    classes: np.ndarray,
    seed: int,
    items: Sequence[YoloItem],
    instances: Mapping[int, list[tuple[int, int]]],
    cache: _ImageCache,
    composes: dict[str, Any],
    albu: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]] | None:
    recipe = job.recipe
    opts = recipe.copy_paste
    assert opts is not None and job.plan.class_id is not None
    c = job.plan.class_id
    rng = np.random.default_rng(seed)
    pool = [(i, b) for i, b in instances.get(c, []) if i != job.parent] or list(instances.get(c, []))
    if not pool:
        return None
    k = int(rng.integers(1, opts.max_instances + 1))
    patches: list[Patch] = []
    patch_params: list[Any] = []
    if recipe.pipeline and recipe.name not in composes:
        composes[recipe.name] = albu.build_image_compose(recipe.pipeline, seed=seed)
    for _ in range(k * 3):
        if len(patches) == k:
            break
        i, b = pool[int(rng.integers(len(pool)))]
        src = cache.get(items[i].image)
        sh, sw = src.shape[:2]
        x1, y1, x2, y2 = items[i].xyxy(sw, sh)[b]
        xi1, yi1, xi2, yi2 = (int(v) for v in np.rint([x1, y1, x2, y2]))
        if xi2 - xi1 < opts.min_size or yi2 - yi1 < opts.min_size:
            continue
        pixels = src[yi1:yi2, xi1:xi2]
        if recipe.name in composes:
            pixels, applied = albu.apply_image(
                composes[recipe.name], np.ascontiguousarray(pixels), seed=int(rng.integers(2**31))
            )
            patch_params.append(applied)
        patches.append(
            Patch(pixels, c, ((xi2 - xi1) / sw, (yi2 - yi1) / sh), str(items[i].image.resolve()), (xi1, yi1, xi2, yi2))
        )
    if not patches:
        return None
    ys = [np.array([it.boxes[b, 1] for it, b in ((items[i], b) for i, b in instances[c])], np.float32)] * len(patches)
    new_image, new_boxes, new_classes, done = paste(image, boxes, classes, patches, rng, opts, centre_y=ys)
    if not done:
        return None
    return new_image, new_boxes, new_classes, {"pastes": done, "patch_transforms": patch_params, "class_id": c}


def _report(
    plan: _Plan, source: Profile, synthetic: Profile, combined: Profile, t: GapThresholds, book: Mapping[str, Recipe]
) -> GapReport:
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


def _all_shares(
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


def _write_yaml(
    out_dir: Path,
    ds: YoloDataset,
    names: Mapping[int, str],
    split: str,
    items: Sequence[YoloItem],
    readable: np.ndarray,
    written: Sequence[str],
    yaml: Any,
) -> tuple[Path, Path]:
    """``data.yaml`` (the synthetic set) and ``combined.yaml`` (labeled + synthetic, via a list file)."""
    val = None
    for name in ("val", "test"):
        if name in ds.splits and name != split and ds.splits[name]:
            val = _split_dir(ds, name)
            break
    data = {"path": str(out_dir), "train": "images/train", "val": val or "images/train", "names": dict(names)}
    data_yaml = out_dir / "data.yaml"
    data_yaml.write_text(yaml.safe_dump(data, sort_keys=False))
    listing = out_dir / "combined_train.txt"
    listing.write_text("\n".join([str(it.image.resolve()) for it in items] + list(written)) + "\n")
    combined = {"path": str(out_dir), "train": listing.name, "val": val or listing.name, "names": dict(names)}
    combined_yaml = out_dir / "combined.yaml"
    combined_yaml.write_text(yaml.safe_dump(combined, sort_keys=False))
    return data_yaml, combined_yaml


def _split_dir(ds: YoloDataset, split: str) -> str:
    """The folder (or list file) of a split, as an absolute path."""
    images = [it.image for it in ds.splits[split]]
    return os.path.commonpath([str(p.parent.resolve()) for p in images])


def load_provenance(out: str | Path) -> dict[str, dict[str, Any]]:
    """The provenance of a synthetic set, keyed by the absolute path of each synthetic image.

    Each value has ``image``, ``parent``, ``recipe``, ``params`` and ``seed`` (and ``target``,
    ``label``, ``boxes``).

    Raises:
        DatasetError: ``out`` has no ``provenance.jsonl`` or a line of it is not valid JSON.
    """
    path = Path(out) / PROVENANCE if Path(out).is_dir() else Path(out)
    if not path.is_file():
        raise DatasetError(f"{path}: no provenance file (is {out} a cvactive synthetic set?)")
    entries: dict[str, dict[str, Any]] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                entries[str(entry["image"])] = entry
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise DatasetError(f"{path}:{lineno}: not a provenance line ({err})") from err
    return entries
