"""The numbers of a health check: its measuring steps on a loaded label table and its image facts (numpy, no I/O).

:func:`label_figures` (class counts, sizes, positions per split), :func:`label_problems` (label
errors and unreadable images), :func:`image_figures` (sizes, brightness, duplicates, leakage),
:func:`apply_gates` and :func:`assemble` (the :class:`~cvactive.health.result.HealthReport`).
:func:`cvactive.health.check.analyse` runs them in that order.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cvactive.health import gates as G
from cvactive.health import stats as S
from cvactive.health.images import ImageInfo, cross_split_pairs, exact_groups, group_pairs, hamming_pairs
from cvactive.health.result import HealthReport
from cvactive.health.table import LabelTable
from cvactive.health.target import target_figures
from cvactive.selection.targets import TargetLike
from cvactive.yolo_labels import ERROR_KINDS, WARNING_KINDS

MAX_LISTED = 500  # problems listed one by one in report.json (all are counted)


def num(x: float | None) -> float | None:
    """A JSON-safe float: ``None`` for NaN and infinity."""
    return None if x is None or not math.isfinite(x) else round(float(x), 4)


# -- labels -----------------------------------------------------------------------------------
@dataclass
class LabelFigures:
    """Label figures overall and per split, centre heatmaps ``(C, G, G)``, and box sizes ``(B, 2)`` in pixels."""

    overall: dict[str, Any]
    per_split: dict[str, dict[str, Any]]
    heatmaps: np.ndarray
    empty_files: list[str | None]
    wh: np.ndarray


def label_figures(
    table: LabelTable, width: np.ndarray, height: np.ndarray, min_instances: int | None, heatmap_grid: int
) -> LabelFigures:
    """Figures of the labels, overall and per split, for images of the given pixel sizes."""
    n = table.num_images
    wh = S.pixel_wh(table.boxes, table.box_image, width, height)
    box_split = table.image_split[table.box_image]
    lim = min_instances or 0
    overall = split_figures(table, np.ones(n, bool), np.ones(len(table.box_class), bool), wh, lim)
    per_split = {
        s: split_figures(table, table.image_split == k, box_split == k, wh, lim) for k, s in enumerate(table.splits)
    }
    heatmaps = S.centre_heatmaps(table.boxes, table.box_class, table.num_classes, heatmap_grid)
    for k, name in table.names.items():
        overall["classes"][name]["centre"] = {key: round(v, 4) for key, v in S.quadrant_shares(heatmaps[k]).items()}
    empty_files = overall.pop("_empty_files")
    for fig in per_split.values():
        fig.pop("_empty_files")
    return LabelFigures(overall, per_split, heatmaps, empty_files, wh)


def split_figures(
    table: LabelTable,
    mask: np.ndarray,
    bmask: np.ndarray,
    wh: np.ndarray,
    min_instances: int,
) -> dict[str, Any]:
    """Figures of one split (or all) selected by an image mask and the matching box mask."""
    c = table.num_classes
    idx = np.flatnonzero(mask)
    remap = np.full(table.num_images, -1, np.int64)
    remap[idx] = np.arange(idx.size)
    box_img = remap[table.box_image[bmask]]
    cls = table.box_class[bmask]
    instances, images = S.class_counts(cls, box_img, c)
    per_image = S.boxes_per_image(box_img, idx.size)
    has_label = np.fromiter((table.label_paths[i] is not None for i in idx), bool, idx.size)
    issue_files = {i.path for i in table.issues}
    empty_files = [
        table.label_paths[i]
        for i, n in zip(idx, per_image)
        if n == 0 and table.label_paths[i] is not None and table.label_paths[i] not in issue_files
    ]
    sub_wh = wh[bmask]
    area = sub_wh[:, 0] * sub_wh[:, 1]
    imb = S.imbalance(instances, table.names, min_instances)
    imb["ratio"] = num(imb["ratio"])
    return {
        "images": int(idx.size),
        "images_with_boxes": int(np.count_nonzero(per_image)),
        "images_without_boxes": int(np.count_nonzero(per_image == 0)),
        "empty_label_files": len(empty_files),
        "images_without_label_file": int(np.count_nonzero(~has_label)) if table.kind == "yolo" else 0,
        "boxes": int(cls.size),
        "boxes_per_image": {**S.summary(per_image), "histogram": S.histogram_counts(per_image, 10)},
        "imbalance": imb,
        "sizes_known": bool(np.isfinite(area).all()),
        "classes": _class_figures(table, bmask, sub_wh, cls, instances, images),
        "_empty_files": empty_files,
    }


def _class_figures(
    table: LabelTable, bmask: np.ndarray, sub_wh: np.ndarray, cls: np.ndarray, instances: np.ndarray, images: np.ndarray
) -> dict[str, Any]:
    """Per class: instances, images, size buckets, aspect-ratio and side-length quantiles."""
    names, c = table.names, table.num_classes
    area = sub_wh[:, 0] * sub_wh[:, 1]
    buckets = S.size_buckets(cls, area, c)
    aspect = np.log2(sub_wh[:, 0] / sub_wh[:, 1])
    known = np.isfinite(aspect)
    if not known.all():  # no pixel size: the normalised aspect (true only for square images)
        b = table.boxes[bmask]
        aspect = np.where(known, aspect, np.log2(b[:, 2] / b[:, 3]))
    ar_q = 2.0 ** S.grouped_quantiles(aspect, cls, c)
    side_q = S.grouped_quantiles(np.sqrt(area), cls, c)
    classes: dict[str, Any] = {}
    for k in range(c):
        classes[names[k]] = {
            "instances": int(instances[k]),
            "images": int(images[k]),
            "small": int(buckets[k, 0]),
            "medium": int(buckets[k, 1]),
            "large": int(buckets[k, 2]),
            "aspect_ratio_w_over_h": {"p5": num(ar_q[k, 0]), "median": num(ar_q[k, 1]), "p95": num(ar_q[k, 2])},
            "sqrt_area_px": {"p5": num(side_q[k, 0]), "median": num(side_q[k, 1]), "p95": num(side_q[k, 2])},
        }
    return classes


# -- label errors -----------------------------------------------------------------------------
@dataclass
class Problems:
    """Every problem found (label issues, unreadable images), counted by kind and over the gated kinds,
    and the label warnings (problems Ultralytics copes with: listed, never gated)."""

    listed: list[dict[str, Any]]
    by_kind: Counter[str]
    counted: dict[str, int]
    warned: list[dict[str, Any]]


def label_problems(table: LabelTable, info: ImageInfo, error_kinds: Sequence[str]) -> Problems:
    """The label issues of the table plus the images that could not be decoded, and the label warnings."""
    problems = [_issue_dict(i) for i in table.issues if i.kind not in WARNING_KINDS]
    warned = [_issue_dict(i) for i in table.issues if i.kind in WARNING_KINDS]  # Ultralytics copes: never gated
    problems += [
        {"kind": "unreadable_image", "path": table.image_paths[i], "line": None, "message": reason}
        for i, reason in info.unreadable
    ]
    by_kind = Counter(p["kind"] for p in problems)
    return Problems(problems, by_kind, {k: by_kind.get(k, 0) for k in error_kinds}, warned)


def _issue_dict(issue: Any) -> dict[str, Any]:
    return {"kind": issue.kind, "path": issue.path, "line": issue.line, "message": issue.message}


# -- images -----------------------------------------------------------------------------------
@dataclass
class ImageFigures:
    """The ``images`` section of the report, brightness per split, and what the gates read of it."""

    figures: dict[str, Any]
    brightness: dict[str, np.ndarray]
    checked: int
    leaked: int


def image_figures(
    table: LabelTable,
    info: ImageInfo,
    width: np.ndarray,
    height: np.ndarray,
    *,
    image_checks: bool,
    max_images: int | None,
    near_duplicate_distance: int | None,
    dark_below: float,
    bright_above: float,
) -> ImageFigures:
    """Image sizes, brightness bands, exact and near duplicates, and duplicates across splits (leakage)."""
    checked = np.flatnonzero(info.checked)
    exact = exact_groups([info.sha1[i] for i in checked])
    exact_pairs = group_pairs(exact)
    exact_pairs = checked[exact_pairs] if len(exact_pairs) else exact_pairs
    near = np.zeros((0, 3), np.int64)
    if near_duplicate_distance is not None and checked.size:
        near = hamming_pairs(info.dhash[checked], near_duplicate_distance)
        near[:, :2] = checked[near[:, :2]]
        same = {(int(a), int(b)) for a, b in exact_pairs}
        near = near[[(int(a), int(b)) not in same for a, b, _ in near]] if len(near) else near
    leak_exact = cross_split_pairs(exact_pairs, table.image_split)
    leak_near = cross_split_pairs(near, table.image_split)
    brightness = {s: info.brightness[(table.image_split == k) & info.checked] for k, s in enumerate(table.splits)}
    all_b = info.brightness[info.checked]
    figures: dict[str, Any] = {
        "pixel_checked": int(checked.size),
        "sampled": bool(image_checks and max_images is not None and checked.size < table.num_images),
        "cache_hits": info.cache_hits,
        "width": S.summary(width),
        "height": S.summary(height),
        "common_sizes": S.top_sizes(width, height),
        "brightness": {
            "overall": {**S.summary(all_b), **S.brightness_bands(all_b, dark_below, bright_above)},
            "per_split": {
                s: {**S.summary(v), **S.brightness_bands(v, dark_below, bright_above)} for s, v in brightness.items()
            },
            "dark_below": dark_below,
            "bright_above": bright_above,
        },
        "exact_duplicates": {
            "groups": len(exact),
            "images": int(sum(len(g) for g in exact)),
            "listed": [[table.image_paths[checked[i]] for i in g] for g in exact[:MAX_LISTED]],
        },
        "near_duplicates": {
            "max_distance": near_duplicate_distance,
            "pairs": len(near),
            "listed": _pair_rows(table, near, True),
        },
        "leakage": {
            "exact_pairs": len(leak_exact),
            "near_pairs": len(leak_near),
            "exact": _pair_rows(table, leak_exact, False),
            "near": _pair_rows(table, leak_near, True),
        },
    }
    return ImageFigures(figures, brightness, int(checked.size), len(leak_exact) + len(leak_near))


def _pair_rows(table: LabelTable, pairs: np.ndarray, dist: bool) -> list[dict[str, Any]]:
    """The first :data:`MAX_LISTED` image pairs as paths and splits (with their hash distance)."""
    split_names = np.asarray(table.splits, dtype=object)
    rows = []
    for row in pairs[:MAX_LISTED]:
        a, b = int(row[0]), int(row[1])
        item = {
            "a": table.image_paths[a],
            "b": table.image_paths[b],
            "split_a": split_names[table.image_split[a]],
            "split_b": split_names[table.image_split[b]],
        }
        if dist:
            item["distance"] = int(row[2])
        rows.append(item)
    return rows


# -- gates and the report ---------------------------------------------------------------------
def apply_gates(
    labels: LabelFigures,
    problems: Problems,
    images: ImageFigures,
    *,
    min_instances: int | None,
    max_imbalance: float | None,
    max_label_errors: int | None,
    allow_leakage: bool,
    min_dark_images: int | None,
) -> list[G.GateResult]:
    """The result of every gate that is set (a gate set to ``None`` is not checked; leakage always is)."""
    results: list[G.GateResult] = []
    overall = labels.overall
    counts = {name: v["instances"] for name, v in overall["classes"].items()}
    if min_instances is not None:
        results.append(G.min_instances_gate(counts, min_instances))
    if max_imbalance is not None:
        ratio = overall["imbalance"]["ratio"]
        results.append(
            G.max_imbalance_gate(math.inf if ratio is None else ratio, max_imbalance, overall["imbalance"]["missing"])
        )
    if max_label_errors is not None:
        results.append(G.max_label_errors_gate(problems.counted, max_label_errors))
    results.append(G.leakage_gate(images.leaked, allow_leakage))
    if min_dark_images is not None:
        bands = images.figures["brightness"]["overall"]
        results.append(G.min_dark_images_gate(bands["dark"], images.checked, min_dark_images))
    return results


def assemble(
    table: LabelTable,
    labels: LabelFigures,
    problems: Problems,
    images: ImageFigures,
    gates: Sequence[G.GateResult],
    *,
    error_kinds: Sequence[str],
    heatmap_grid: int,
    class_target: TargetLike | None,
    settings: Mapping[str, Any],
    timing: Mapping[str, float],
) -> HealthReport:
    """The report: every figure, JSON-ready, in the order ``report.json`` lists them (``timing_s`` last,
    its ``total`` measured from ``timing["start"]``, a :func:`time.perf_counter` value), and the arrays
    the plots draw."""
    class_names = [table.names[k] for k in range(table.num_classes)]
    overall, per_split = labels.overall, labels.per_split
    figures = {
        "source": table.source,
        "kind": table.kind,
        "predictions": table.kind == "harvest",
        "classes": [table.names[k] for k in range(table.num_classes)],
        "splits": list(table.splits),
        "overall": overall,
        "per_split": per_split,
        "centre_heatmaps": {
            "grid": heatmap_grid,
            "rows": "y (top to bottom)",
            "columns": "x (left to right)",
            "per_class": {table.names[k]: labels.heatmaps[k].tolist() for k in range(table.num_classes)},
        },
        "empty_label_files": labels.empty_files[:MAX_LISTED],
        "label_errors": {
            "total": len(problems.listed),
            "counted": sum(problems.counted.values()),
            "counted_kinds": list(error_kinds),
            "by_kind": {k: problems.by_kind.get(k, 0) for k in ERROR_KINDS},
            "listed": problems.listed[:MAX_LISTED],
        },
        "label_warnings": {
            "total": len(problems.warned),
            "by_kind": {k: v for k, v in Counter(w["kind"] for w in problems.warned).items()},
            "listed": problems.warned[:MAX_LISTED],
        },
        "images": images.figures,
        "class_target": None if class_target is None else target_figures(class_target, overall, per_split, class_names),
        "gates": [g.to_dict() for g in gates],
        "passed": all(g.passed for g in gates),
        "settings": dict(settings),
        "timing_s": {"images": timing["images"], "total": round(time.perf_counter() - timing["start"], 3)},
    }
    areas = np.sqrt(labels.wh[:, 0] * labels.wh[:, 1])
    return HealthReport(
        figures=figures,
        gates=list(gates),
        heatmaps=labels.heatmaps,
        brightness=images.brightness,
        box_sqrt_area={table.names[k]: areas[table.box_class == k] for k in range(table.num_classes)},
    )
