"""The health check: read labels, measure them, check images, apply the gates, write the report.

:func:`check_health` is the one public call (the keys of ``configs/health.yaml`` are its
keyword arguments); :func:`analyse` does the same on an already loaded
:class:`~cvactive.health.table.LabelTable`.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cvactive.errors import ConfigError
from cvactive.health import gates as G
from cvactive.health import stats as S
from cvactive.health.images import ImageInfo, cross_split_pairs, exact_groups, group_pairs, hamming_pairs, read_images
from cvactive.health.table import ISSUE_KINDS, LabelTable, load_table
from cvactive.health.target import target_figures
from cvactive.selection.targets import TargetLike
from cvactive.yolodata import WARNING_KINDS

#: Kinds of problem a health check reports: the label issues plus images that cannot be decoded.
ERROR_KINDS = (*ISSUE_KINDS, "unreadable_image")
MAX_LISTED = 500  # problems listed one by one in report.json (all are counted)


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
    gates: list[G.GateResult]
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
    def failed(self) -> list[G.GateResult]:
        return [g for g in self.gates if not g.passed]


def _num(x: float | None) -> float | None:
    """A JSON-safe float: ``None`` for NaN and infinity."""
    return None if x is None or not math.isfinite(x) else round(float(x), 4)


def _split_figures(
    table: LabelTable,
    mask: np.ndarray,
    bmask: np.ndarray,
    wh: np.ndarray,
    min_instances: int,
) -> dict[str, Any]:
    """Figures of one split (or all) selected by an image mask and the matching box mask."""
    names, c = table.names, table.num_classes
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
            "aspect_ratio_w_over_h": {"p5": _num(ar_q[k, 0]), "median": _num(ar_q[k, 1]), "p95": _num(ar_q[k, 2])},
            "sqrt_area_px": {"p5": _num(side_q[k, 0]), "median": _num(side_q[k, 1]), "p95": _num(side_q[k, 2])},
        }
    imb = S.imbalance(instances, names, min_instances)
    imb["ratio"] = _num(imb["ratio"])
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
        "classes": classes,
        "_empty_files": empty_files,
    }


def _issue_dict(issue: Any) -> dict[str, Any]:
    return {"kind": issue.kind, "path": issue.path, "line": issue.line, "message": issue.message}


def analyse(
    table: LabelTable,
    *,
    min_instances: int | None = 10,
    max_imbalance: float | None = 50.0,
    max_label_errors: int | None = 0,
    allow_leakage: bool = False,
    error_kinds: Sequence[str] = ERROR_KINDS,
    min_dark_images: int | None = None,
    image_sizes: bool = True,
    image_checks: bool = True,
    max_images: int | None = 20000,
    near_duplicate_distance: int | None = 4,
    dark_below: float = 50.0,
    bright_above: float = 200.0,
    heatmap_grid: int = 16,
    class_target: TargetLike | None = "uniform",
    rng: int | np.random.Generator | None = 0,
    cache: str | Path | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> HealthReport:
    """Measure a label table and apply the gates (see :func:`check_health` for the options)."""
    unknown = sorted(set(error_kinds) - set(ERROR_KINDS))
    if unknown:
        raise ConfigError(f"error_kinds: unknown {unknown}; valid: {', '.join(ERROR_KINDS)}")
    if heatmap_grid < 1:
        raise ConfigError(f"heatmap_grid must be at least 1, got {heatmap_grid}")
    if max_images is not None and max_images < 0:
        raise ConfigError(f"max_images must be None or >= 0, got {max_images}")
    t0 = time.perf_counter()
    n = table.num_images
    # -- images: sizes (headers) and pixel checks (sampled) ------------------------------------
    have_size = np.isfinite(table.width) & np.isfinite(table.height)
    paths = [p if (image_sizes and not have_size[i]) or image_checks else "" for i, p in enumerate(table.image_paths)]
    want = np.zeros(n, bool)
    if image_checks:
        readable = np.flatnonzero([bool(p) for p in table.image_paths])
        if max_images is not None and readable.size > max_images:
            gen = np.random.default_rng(rng)
            readable = np.sort(gen.choice(readable, size=max_images, replace=False))
        want[readable] = True
    if image_sizes or image_checks:
        info = read_images(paths, pixels=want, cache=cache, workers=workers, progress=progress)
    else:
        info = ImageInfo(
            np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, np.int64), [None] * n, want
        )
    width = np.where(have_size, table.width, info.width)
    height = np.where(have_size, table.height, info.height)
    t_images = time.perf_counter() - t0
    # -- labels --------------------------------------------------------------------------------
    wh = S.pixel_wh(table.boxes, table.box_image, width, height)
    box_split = table.image_split[table.box_image]
    lim = min_instances or 0
    overall = _split_figures(table, np.ones(n, bool), np.ones(len(table.box_class), bool), wh, lim)
    per_split = {
        s: _split_figures(table, table.image_split == k, box_split == k, wh, lim) for k, s in enumerate(table.splits)
    }
    heatmaps = S.centre_heatmaps(table.boxes, table.box_class, table.num_classes, heatmap_grid)
    for k, name in table.names.items():
        overall["classes"][name]["centre"] = {key: round(v, 4) for key, v in S.quadrant_shares(heatmaps[k]).items()}
    empty_files = overall.pop("_empty_files")
    for fig in per_split.values():
        fig.pop("_empty_files")
    # -- label errors --------------------------------------------------------------------------
    problems = [_issue_dict(i) for i in table.issues if i.kind not in WARNING_KINDS]
    warned = [_issue_dict(i) for i in table.issues if i.kind in WARNING_KINDS]  # Ultralytics copes: never gated
    problems += [
        {"kind": "unreadable_image", "path": table.image_paths[i], "line": None, "message": reason}
        for i, reason in info.unreadable
    ]
    by_kind = Counter(p["kind"] for p in problems)
    counted = {k: by_kind.get(k, 0) for k in error_kinds}
    # -- images: brightness, sizes, duplicates, leakage ------------------------------------------
    checked = np.flatnonzero(info.checked)
    split_names = np.asarray(table.splits, dtype=object)
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

    def pair_rows(pairs: np.ndarray, dist: bool) -> list[dict[str, Any]]:
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

    brightness = {s: info.brightness[(table.image_split == k) & info.checked] for k, s in enumerate(table.splits)}
    all_b = info.brightness[info.checked]
    images_fig: dict[str, Any] = {
        "pixel_checked": int(checked.size),
        "sampled": bool(image_checks and max_images is not None and checked.size < n),
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
            "listed": pair_rows(near, True),
        },
        "leakage": {
            "exact_pairs": len(leak_exact),
            "near_pairs": len(leak_near),
            "exact": pair_rows(leak_exact, False),
            "near": pair_rows(leak_near, True),
        },
    }
    # -- gates ---------------------------------------------------------------------------------
    gate_results: list[G.GateResult] = []
    counts = {name: v["instances"] for name, v in overall["classes"].items()}
    if min_instances is not None:
        gate_results.append(G.min_instances_gate(counts, min_instances))
    if max_imbalance is not None:
        ratio = overall["imbalance"]["ratio"]
        gate_results.append(
            G.max_imbalance_gate(math.inf if ratio is None else ratio, max_imbalance, overall["imbalance"]["missing"])
        )
    if max_label_errors is not None:
        gate_results.append(G.max_label_errors_gate(counted, max_label_errors))
    gate_results.append(G.leakage_gate(len(leak_exact) + len(leak_near), allow_leakage))
    if min_dark_images is not None:
        bands = images_fig["brightness"]["overall"]
        gate_results.append(G.min_dark_images_gate(bands["dark"], int(checked.size), min_dark_images))
    class_names = [table.names[k] for k in range(table.num_classes)]
    figures: dict[str, Any] = {
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
            "per_class": {table.names[k]: heatmaps[k].tolist() for k in range(table.num_classes)},
        },
        "empty_label_files": empty_files[:MAX_LISTED],
        "label_errors": {
            "total": len(problems),
            "counted": sum(counted.values()),
            "counted_kinds": list(error_kinds),
            "by_kind": {k: by_kind.get(k, 0) for k in ERROR_KINDS},
            "listed": problems[:MAX_LISTED],
        },
        "label_warnings": {
            "total": len(warned),
            "by_kind": {k: v for k, v in Counter(w["kind"] for w in warned).items()},
            "listed": warned[:MAX_LISTED],
        },
        "images": images_fig,
        "class_target": None if class_target is None else target_figures(class_target, overall, per_split, class_names),
        "gates": [g.to_dict() for g in gate_results],
        "passed": all(g.passed for g in gate_results),
        "settings": {
            "min_instances": min_instances,
            "max_imbalance": max_imbalance,
            "max_label_errors": max_label_errors,
            "allow_leakage": allow_leakage,
            "min_dark_images": min_dark_images,
            "near_duplicate_distance": near_duplicate_distance,
            "max_images": max_images,
            "class_target": class_target,
            "image_checks": image_checks,
            "image_sizes": image_sizes,
        },
        "timing_s": {"images": round(t_images, 3), "total": round(time.perf_counter() - t0, 3)},
    }
    areas = np.sqrt(wh[:, 0] * wh[:, 1])
    return HealthReport(
        figures=figures,
        gates=gate_results,
        heatmaps=heatmaps,
        brightness=brightness,
        box_sqrt_area={table.names[k]: areas[table.box_class == k] for k in range(table.num_classes)},
    )


def check_health(
    data: str | Path | None = None,
    *,
    dataset: str | None = None,
    field: str = "ground_truth",
    out: str | Path | None = None,
    plots: bool = True,
    html: bool = False,
    **options: Any,
) -> HealthReport:
    """Check a data set's class balance, boxes, label errors and images, and apply the gates.

    Args:
        data: a YOLO ``data.yaml`` or folder, or a harvest output folder (``manifest.jsonl``).
        dataset: a FiftyOne data set name instead of ``data``; ``field`` is its Detections field.
        out: folder for ``report.json``, ``report.md`` (and ``report.html`` with ``html``) and
            the PNG plots; ``None`` writes nothing.
        plots: draw the PNG plots.
        **options: the options of :func:`analyse`: the gates ``min_instances`` (each class, all
            splits together), ``max_imbalance`` (largest over smallest class), ``max_label_errors``
            (problems of the kinds in ``error_kinds``), ``allow_leakage`` (exact or near-duplicate
            images in two splits), ``min_dark_images``; a gate set to ``None`` is not checked.
            Image checks: ``image_sizes`` (read headers), ``image_checks`` (brightness and
            hashes), ``max_images`` (a seeded sample of ``rng``), ``near_duplicate_distance``
            (bits of a 64-bit dHash), ``dark_below`` / ``bright_above`` (mean grey level),
            ``heatmap_grid``, ``cache`` (default ``<out>/image-cache.json``), ``workers``, ``progress``.
            ``class_target``: the class distribution the labels are measured against (``uniform``,
            ``inverse`` frequency, or ``{class: weight}``; ``None``: not measured).

    Raises:
        DatasetError / StoreError: the input cannot be read (the CLI exits 2).
        ConfigError: an unknown option or a bad value.
    """
    from cvactive.config import check_kwargs

    check_kwargs(analyse, options, "health options")
    if "table" in options:
        raise ConfigError("health options: 'table' is not an option; give data or dataset")
    table = load_table(data, dataset=dataset, field=field)
    if out is not None and "cache" not in options:
        options["cache"] = Path(out) / "image-cache.json"
    report = analyse(table, **options)
    if out is not None:
        from cvactive.health.report import write_report

        write_report(report, out, plots=plots, html=html)
    return report
