"""Writing and drawing a health report: ``report.json``, ``report.md`` (and ``report.html``), PNG plots,
a terminal summary.

The numbers come from :mod:`cvactive.health.measure`, the markdown and HTML text from
:mod:`cvactive.health.markdown`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from cvactive.health.markdown import html_page, markdown, target_name
from cvactive.health.result import HealthReport
from cvactive.outputs import check_dir_output, write_text_atomic
from cvactive.plots import new_figure, save_figure

PLOTS = ("class_counts.png", "centre_heatmaps.png", "box_sizes.png", "brightness.png")


def summary_lines(report: HealthReport, max_errors: int = 5) -> list[str]:
    """A short terminal summary: classes, imbalance, label errors, duplicates, gates."""
    f = report.figures
    ov = f["overall"]
    what = "predicted boxes (harvest, not reviewed labels)" if f["predictions"] else "boxes"
    lines = [f"{f['source']}: {ov['images']} images, {ov['boxes']} {what}, {len(f['classes'])} classes"]
    for s, fig in f["per_split"].items():
        lines.append(
            f"  {s}: {fig['images']} images, {fig['boxes']} boxes, {fig['empty_label_files']} empty label file(s), "
            f"{fig['images_without_label_file']} image(s) without label file"
        )
    counts = sorted(ov["classes"].items(), key=lambda kv: -kv[1]["instances"])
    shown = counts if len(counts) <= 12 else [*counts[:8], *counts[-3:]]
    text = ", ".join(f"{k} {v['instances']}" for k, v in shown[:8])
    if len(counts) > 12:
        text += f", ... ({len(counts) - 11} more) ..., " + ", ".join(f"{k} {v['instances']}" for k, v in shown[8:])
    elif len(shown) > 8:
        text += ", " + ", ".join(f"{k} {v['instances']}" for k, v in shown[8:])
    lines.append("  instances: " + text)
    imb = ov["imbalance"]
    ratio = "infinite" if imb["ratio"] is None else f"{imb['ratio']:.1f}"
    lines.append(f"  imbalance ratio {ratio} ({imb['largest']} / {imb['rarest']}); rarest: {imb['rarest']}")
    if imb["missing"]:
        lines.append(f"  classes with no instance: {', '.join(imb['missing'])}")
    ct = f.get("class_target")
    if ct:
        per_split = ", ".join(f"{s} {v['total_variation_instances']}" for s, v in ct["per_split"].items())
        lines.append(
            f"  class mix vs {target_name(ct)} target: total variation {ct['overall']['total_variation_instances']}"
            f" ({per_split}); {ct['overall']['instances_to_add']} instances to add to reach it"
        )
    empty = f["empty_label_files"]
    if empty:
        more = f" (+{len(empty) - 3} more)" if len(empty) > 3 else ""
        lines.append(f"  empty label files (images with no object): {', '.join(empty[:3])}{more}")
    le = f["label_errors"]
    kinds = ", ".join(f"{k} {v}" for k, v in le["by_kind"].items() if v)
    lines.append(f"  label problems: {le['total']} ({kinds})" if kinds else "  label problems: none")
    for p in le["listed"][:max_errors]:
        where = p["path"] + (f":{p['line']}" if p["line"] else "")
        lines.append(f"    {p['kind']}: {where}: {p['message']}")
    if le["total"] > max_errors:
        lines.append(f"    ... {le['total'] - max_errors} more in report.json")
    lw = f.get("label_warnings", {"total": 0})
    if lw["total"]:
        lines.append(f"  label warnings (Ultralytics copes; not gated): {lw['total']} {lw['by_kind']}")
        for p in lw["listed"][:max_errors]:
            where = p["path"] + (f":{p['line']}" if p["line"] else "")
            lines.append(f"    {p['kind']}: {where}: {p['message']}")
    im = f["images"]
    b = im["brightness"]["overall"]
    lines.append(
        f"  images checked: {im['pixel_checked']}{' (sample)' if im['sampled'] else ''}; "
        f"dark {b['dark']}, normal {b['normal']}, bright {b['bright']}; "
        f"exact duplicate groups {im['exact_duplicates']['groups']}, near-duplicate pairs "
        f"{im['near_duplicates']['pairs']}, leaked pairs {im['leakage']['exact_pairs']} exact + "
        f"{im['leakage']['near_pairs']} near"
    )
    for g in report.gates:
        lines.append(f"  gate {g.name}: {'PASS' if g.passed else 'FAIL'} - {g.message}")
    lines.append("health: PASS" if report.passed else f"health: FAIL ({', '.join(g.name for g in report.failed)})")
    return lines


# -- plots ---------------------------------------------------------------------------------------
def _ticks(ax: Any, x: np.ndarray, classes: list[str]) -> None:
    many = len(classes) > 8
    ax.set_xticks(x, classes, rotation=60 if many else 0, ha="right" if many else "center")


def _class_counts(report: HealthReport, path: Path) -> None:
    """Instances per class, stacked by split (log scale when the spread is wide)."""
    f, classes = report.figures, report.figures["classes"]
    x = np.arange(len(classes))
    fig = new_figure((max(6.0, 0.35 * len(classes) + 2), 4))
    ax = fig.subplots()
    bottom = np.zeros(len(classes))
    for s, sf in f["per_split"].items():
        v = np.array([sf["classes"][c]["instances"] for c in classes], float)
        ax.bar(x, v, bottom=bottom, label=s)
        bottom += v
    _ticks(ax, x, classes)
    ax.set_ylabel("instances")
    ax.set_title("Instances per class")
    if bottom.max(initial=0) > 0 and bottom.max() / max(bottom[bottom > 0].min(), 1) > 50:
        ax.set_yscale("log")
    ax.legend()
    save_figure(fig, path, dpi=90)


def _centre_heatmaps(report: HealthReport, path: Path) -> None:
    """Where box centres fall: one panel per class."""
    classes = report.figures["classes"]
    c = len(classes)
    cols = min(c, 6) or 1
    rows = max(1, -(-c // cols))
    fig = new_figure((2.2 * cols, 2.5 * rows + 0.5))
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= c:
            ax.axis("off")
            continue
        ax.imshow(report.heatmaps[k], cmap="magma", extent=(0, 1, 1, 0), interpolation="nearest")
        ax.set_title(f"{classes[k]} ({int(report.heatmaps[k].sum())})", fontsize=8)
    fig.suptitle("Where box centres fall (per class)")
    save_figure(fig, path, dpi=80)


def _box_sizes(report: HealthReport, path: Path) -> None:
    """COCO size buckets per class, and the histogram of sqrt(box area) in pixels."""
    classes = report.figures["classes"]
    x = np.arange(len(classes))
    fig = new_figure((11, 4))
    ax1, ax2 = fig.subplots(1, 2)
    ov = report.figures["overall"]["classes"]
    bottom = np.zeros(len(classes))
    for bucket in ("small", "medium", "large"):
        v = np.array([ov[k][bucket] for k in classes], float)
        ax1.bar(x, v, bottom=bottom, label=bucket)
        bottom += v
    _ticks(ax1, x, classes)
    ax1.set_title("COCO size buckets (area < 32², < 96², larger)")
    ax1.legend()
    drawn = 0
    for name, v in report.box_sqrt_area.items():
        v = v[np.isfinite(v)]
        if v.size:
            ax2.hist(v, bins=40, histtype="step", label=name)
            drawn += 1
    if not drawn:
        ax2.text(0.5, 0.5, "image sizes unknown", ha="center", va="center", transform=ax2.transAxes)
    ax2.axvline(32, color="grey", ls=":")
    ax2.axvline(96, color="grey", ls=":")
    ax2.set_xlabel("sqrt(box area) in pixels")
    ax2.set_title("Box sizes")
    if 0 < drawn <= 10:
        ax2.legend(fontsize=7)
    save_figure(fig, path, dpi=90)


def _brightness(report: HealthReport, path: Path) -> None:
    """Mean grey level per split, with the dark and bright limits."""
    fig = new_figure((6, 3.5))
    ax = fig.subplots()
    for s, v in report.brightness.items():
        if v.size:
            ax.hist(v, bins=np.linspace(0, 255, 52).tolist(), alpha=0.6, label=f"{s} ({v.size})")
    bset = report.figures["images"]["brightness"]
    ax.axvline(bset["dark_below"], color="k", ls="--", lw=1)
    ax.axvline(bset["bright_above"], color="k", ls="--", lw=1)
    ax.set_xlabel("mean grey level (0-255)")
    ax.set_ylabel("images")
    ax.set_title("Image brightness (dashed: dark / bright limits)")
    if report.brightness and any(v.size for v in report.brightness.values()):
        ax.legend()
    save_figure(fig, path, dpi=90)


_DRAW = {
    "class_counts.png": _class_counts,
    "centre_heatmaps.png": _centre_heatmaps,
    "box_sizes.png": _box_sizes,
    "brightness.png": _brightness,
}


def _plots(report: HealthReport, out: Path) -> list[str]:
    """Draw :data:`PLOTS` into ``out``; returns their file names."""
    for name in PLOTS:
        tmp = out / f".{name}.tmp-{os.getpid()}.png"  # whole files only; the suffix tells matplotlib the format
        try:
            _DRAW[name](report, tmp)
            os.replace(tmp, out / name)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return list(PLOTS)


# -- the files --------------------------------------------------------------------------------------
def write_report(report: HealthReport, out: str | Path, *, plots: bool = True, html: bool = False) -> dict[str, str]:
    """Write ``report.json``, ``report.md``, the PNG plots and (with ``html``) ``report.html`` into ``out``.

    Each file is written whole or not at all (a temporary name, then a rename): a failed run leaves
    the files of the previous report as they were, never an empty or cut one.

    Raises:
        OutputError: ``out`` is a file, sits under a file or is not writable.
    """
    folder = check_dir_output(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = _plots(report, folder) if plots else []
    md_text = markdown(report, written)
    json_text = json.dumps(report.figures, indent=1, allow_nan=False)
    write_text_atomic(folder / "report.json", json_text, fsync=False)
    write_text_atomic(folder / "report.md", md_text, fsync=False)
    files = {"report.json": str(folder / "report.json"), "report.md": str(folder / "report.md")}
    if html:
        write_text_atomic(
            folder / "report.html", html_page(md_text, f"health: {report.figures['source']}"), fsync=False
        )
        files["report.html"] = str(folder / "report.html")
    files.update({p: str(folder / p) for p in written})
    report.files = files
    return files
