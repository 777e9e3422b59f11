"""The health check: read labels, measure them, check images, apply the gates, write the report.

:func:`check_health` is the one public call (the keys of ``configs/health.yaml`` are its
keyword arguments); :func:`analyse` does the same on an already loaded
:class:`~cvactive.health.table.LabelTable`, step by step (the steps are in
:mod:`~cvactive.health.measure`, the numbers); :mod:`~cvactive.health.report` writes and draws the result.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cvactive._config import config_schema
from cvactive._random import as_rng
from cvactive.errors import ConfigError, DatasetError
from cvactive.health import measure as F
from cvactive.health.images import ImageInfo, read_images
from cvactive.health.measure import MAX_LISTED
from cvactive.health.report import write_report
from cvactive.health.result import HealthReport
from cvactive.health.table import LabelTable, load_table
from cvactive.selection.targets import TargetLike
from cvactive.yolo_labels import ERROR_KINDS

__all__ = ["MAX_LISTED", "HealthReport", "analyse", "check_health"]

#: The options of :func:`analyse` that are gates (a gate set to ``None`` is not checked).
GATE_OPTIONS = ("min_instances", "max_imbalance", "max_label_errors", "allow_leakage", "min_dark_images")


@config_schema("health")
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
    seed: int | np.random.Generator | None = 0,
    cache: str | Path | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> HealthReport:
    """Measure a label table and apply the gates (see :func:`check_health` for the options)."""
    _check_options(error_kinds, heatmap_grid, max_images)
    t0 = time.perf_counter()
    info, width, height = read_image_info(
        table,
        sizes=image_sizes,
        pixels=image_checks,
        max_images=max_images,
        rng=seed,
        cache=cache,
        workers=workers,
        progress=progress,
    )
    t_images = time.perf_counter() - t0
    labels = F.label_figures(table, width, height, min_instances, heatmap_grid)
    problems = F.label_problems(table, info, error_kinds)
    images = F.image_figures(
        table,
        info,
        width,
        height,
        image_checks=image_checks,
        max_images=max_images,
        near_duplicate_distance=near_duplicate_distance,
        dark_below=dark_below,
        bright_above=bright_above,
    )
    settings: dict[str, Any] = {
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
    }
    gates = F.apply_gates(labels, problems, images, **{k: settings[k] for k in GATE_OPTIONS})
    return F.assemble(
        table,
        labels,
        problems,
        images,
        gates,
        error_kinds=error_kinds,
        heatmap_grid=heatmap_grid,
        class_target=class_target,
        settings=settings,
        timing={"images": round(t_images, 3), "start": t0},
    )


def _check_options(error_kinds: Sequence[str], heatmap_grid: int, max_images: int | None) -> None:
    unknown = sorted(set(error_kinds) - set(ERROR_KINDS))
    if unknown:
        raise ConfigError(f"error_kinds: unknown {unknown}; valid: {', '.join(ERROR_KINDS)}")
    if heatmap_grid < 1:
        raise ConfigError(f"heatmap_grid must be at least 1, got {heatmap_grid}")
    if max_images is not None and max_images < 0:
        raise ConfigError(f"max_images must be None or >= 0, got {max_images}")


def read_image_info(
    table: LabelTable,
    *,
    sizes: bool,
    pixels: bool,
    max_images: int | None,
    rng: int | np.random.Generator | None,
    cache: str | Path | None,
    workers: int | None,
    progress: bool,
) -> tuple[ImageInfo, np.ndarray, np.ndarray]:
    """Image headers (``sizes``: where the table lacks them) and pixel checks (``pixels``: on a seeded sample
    of at most ``max_images``); returns the facts and the ``(I,)`` pixel width and height of every image."""
    n = table.num_images
    have_size = np.isfinite(table.width) & np.isfinite(table.height)
    paths = [p if (sizes and not have_size[i]) or pixels else "" for i, p in enumerate(table.image_paths)]
    want = np.zeros(n, bool)
    if pixels:
        readable = np.flatnonzero([bool(p) for p in table.image_paths])
        if max_images is not None and readable.size > max_images:
            gen = as_rng(rng)
            readable = np.sort(gen.choice(readable, size=max_images, replace=False))
        want[readable] = True
    if sizes or pixels:
        info = read_images(paths, pixels=want, cache=cache, workers=workers, progress=progress)
    else:
        info = ImageInfo(
            np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, np.int64), [None] * n, want
        )
    width = np.where(have_size, table.width, info.width)
    height = np.where(have_size, table.height, info.height)
    return info, width, height


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
            hashes), ``max_images`` (a sample drawn with ``seed``: an integer or a numpy
            Generator),
            ``near_duplicate_distance`` (bits of a 64-bit dHash), ``dark_below`` /
            ``bright_above`` (mean grey level), ``heatmap_grid``, ``cache`` (default
            ``<out>/image-cache.json``), ``workers``, ``progress``.
            ``class_target``: the class distribution the labels are measured against (``uniform``,
            ``inverse`` frequency, or ``{class: weight}``; ``None``: not measured).

    Raises:
        DatasetError / StoreError: the input cannot be read (the CLI exits 2).
        ConfigError: an unknown option or a bad value.
    """
    from cvactive.config import check_kwargs

    options = check_kwargs(analyse, options, "health options")
    if "table" in options:
        raise ConfigError("health options: 'table' is not an option; give data or dataset")
    table = load_table(data, dataset=dataset, field=field)
    if table.kind == "yolo" and table.image_paths and not any(table.label_paths):
        raise DatasetError(
            f"{table.source}: none of its {len(table.image_paths)} images has a label file "
            "(the labels folder is empty or missing); label them first"
        )
    if out is not None and "cache" not in options:
        options["cache"] = Path(out) / "image-cache.json"
    report = analyse(table, **options)
    if out is not None:
        write_report(report, out, plots=plots, html=html)
    return report
