"""The readable health report: markdown (``report.md``) and a self-contained HTML page of it.

:func:`markdown` puts the sections together in order (gates, splits, classes and the class-mix
target, box positions and sizes, label problems and warnings, images); each section is a
function of the report's figures that returns its lines.
"""

from __future__ import annotations

import html as html_lib
from typing import Any

from cvactive.health.result import HealthReport


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return [*out, ""]


def target_name(ct: dict[str, Any]) -> str:
    """The class-mix target as a reader sees it: its name, or the shares it was given."""
    t = ct["target"]
    return t if isinstance(t, str) else "given (" + ", ".join(f"{k} {v:g}" for k, v in t.items()) + ")"


def _target_section(f: dict[str, Any]) -> list[str]:
    """Markdown: how far each split's class mix is from the target distribution."""
    ct = f.get("class_target")
    if not ct:
        return []
    splits = list(ct["per_split"])
    md = ["", f"### Class mix against the {target_name(ct)} target", ""]
    md += [
        "Total variation distance (the share of instances that would have to change class): "
        + ", ".join(f"{s} {ct['per_split'][s]['total_variation_instances']}" for s in splits)
        + f", all {ct['overall']['total_variation_instances']} (by images: "
        + ", ".join(f"{s} {ct['per_split'][s]['total_variation_images']}" for s in splits)
        + f", all {ct['overall']['total_variation_images']}).",
        "",
    ]
    rows = []
    for name, c in ct["overall"]["per_class"].items():
        rows.append(
            [
                name,
                f"{c['target_share']:.1%}",
                *[f"{ct['per_split'][s]['per_class'][name]['instance_share']:.1%}" for s in splits],
                f"{c['instance_share']:.1%}",
                c["instances_to_add"],
            ]
        )
    md += _table(["class", "target", *[f"{s} share" for s in splits], "share", "instances to add"], rows)
    return md


def _gates_section(report: HealthReport) -> list[str]:
    """The title, what the boxes are, the result and the gates table."""
    f = report.figures
    md = [f"# Data set health: {f['source']}", ""]
    if f["predictions"]:
        md += ["Boxes are model predictions from a harvest manifest, not reviewed labels.", ""]
    md += [f"**Result: {'PASS' if report.passed else 'FAIL'}**", "", "## Gates", ""]
    md += _table(
        ["gate", "result", "value", "limit", "detail"],
        [[g.name, "PASS" if g.passed else "**FAIL**", g.value, g.limit, g.message] for g in report.gates],
    )
    return md


def _splits_section(f: dict[str, Any]) -> list[str]:
    """One row per split and one for all: images, boxes, empty and missing label files, imbalance."""
    rows = []
    for s, sf in [*f["per_split"].items(), ("all", f["overall"])]:
        imb = sf["imbalance"]
        rows.append(
            [
                s,
                sf["images"],
                sf["boxes"],
                sf["images_without_boxes"],
                sf["empty_label_files"],
                sf["images_without_label_file"],
                f"{sf['boxes_per_image']['median']}",
                "inf" if imb["ratio"] is None else f"{imb['ratio']:.1f}",
                imb["rarest"],
            ]
        )
    header = [
        "split",
        "images",
        "boxes",
        "images w/o boxes",
        "empty label files",
        "no label file",
        "median boxes/image",
        "imbalance",
        "rarest",
    ]
    return ["## Splits", "", *_table(header, rows)]


def _classes_section(f: dict[str, Any], plots: list[str]) -> list[str]:
    """One row per class: instances per split, images, sizes, shape, left/right; the class-mix target."""
    splits = list(f["per_split"])
    rows = []
    for name in f["classes"]:
        cf = f["overall"]["classes"][name]
        ar = cf["aspect_ratio_w_over_h"]["median"]
        side = cf["sqrt_area_px"]["median"]
        ctr = cf.get("centre", {})
        rows.append(
            [
                name,
                *[f["per_split"][s]["classes"][name]["instances"] for s in splits],
                cf["instances"],
                cf["images"],
                cf["small"],
                cf["medium"],
                cf["large"],
                None if ar is None else f"{ar:.2f}",
                None if side is None else f"{side:.0f}",
                f"{ctr.get('left', 0):.0%} / {ctr.get('right', 0):.0%}",
            ]
        )
    header = [
        "class",
        *[f"{s} inst." for s in splits],
        "instances",
        "images",
        "small",
        "medium",
        "large",
        "median w/h",
        "median √area px",
        "left / right",
    ]
    md = ["## Classes", "", *_table(header, rows)]
    md += [f"![class counts]({p})" for p in plots if p == "class_counts.png"]
    return md + _target_section(f)


def _labels_section(f: dict[str, Any]) -> list[str]:
    """Label problems (counted by the gates), warnings (not counted) and empty label files."""
    le = f["label_errors"]
    md = [f"## Label problems ({le['total']})", ""]
    if le["total"]:
        md += _table(["kind", "count"], [[k, v] for k, v in le["by_kind"].items() if v])
        md += _table(
            ["kind", "file", "line", "message"],
            [[p["kind"], p["path"], p["line"], p["message"].replace("|", "\\|")] for p in le["listed"][:200]],
        )
        if le["total"] > 200:
            md += [f"... and {le['total'] - 200} more in report.json", ""]
    lw = f.get("label_warnings", {"total": 0})
    if lw["total"]:
        md += [
            f"## Label warnings ({lw['total']})",
            "",
            "Ultralytics tolerates or repairs these; no gate counts them.",
            "",
        ]
        md += _table(
            ["kind", "file", "line", "message"],
            [[p["kind"], p["path"], p["line"], p["message"].replace("|", "\\|")] for p in lw["listed"][:200]],
        )
    if f["empty_label_files"]:
        md += ["Empty label files (images with no object):", ""]
        md += [f"- {p}" for p in f["empty_label_files"][:50]] + [""]
    return md


def _images_section(f: dict[str, Any], plots: list[str]) -> list[str]:
    """Pixel checks: sizes, brightness, duplicates and leakage between splits."""
    im = f["images"]
    md = ["## Images", ""]
    b = im["brightness"]["overall"]
    md += [
        f"Pixel checks on {im['pixel_checked']} image(s){' (a sample)' if im['sampled'] else ''}. "
        f"Width median {im['width']['median']}, height median {im['height']['median']}. "
        f"Brightness: {b['dark']} dark (< {im['brightness']['dark_below']}), {b['normal']} normal, "
        f"{b['bright']} bright (> {im['brightness']['bright_above']}).",
        "",
    ]
    md += _table(
        ["width", "height", "images"], [[s["width"], s["height"], s["images"]] for s in im["common_sizes"][:5]]
    )
    md += [f"![brightness]({p})" for p in plots if p == "brightness.png"] + [""]
    lk = im["leakage"]
    md += [
        f"Exact duplicate groups: {im['exact_duplicates']['groups']}; near-duplicate pairs "
        f"(dHash distance ≤ {im['near_duplicates']['max_distance']}): {im['near_duplicates']['pairs']}; "
        f"leaked between splits: {lk['exact_pairs']} exact, {lk['near_pairs']} near.",
        "",
    ]
    leaks = [[r["split_a"], r["a"], r["split_b"], r["b"], "exact"] for r in lk["exact"][:100]]
    leaks += [[r["split_a"], r["a"], r["split_b"], r["b"], r["distance"]] for r in lk["near"][:100]]
    if leaks:
        md += _table(["split", "image", "split", "image", "distance"], leaks)
    return md


def markdown(report: HealthReport, plots: list[str]) -> str:
    """The readable report: gates, overview per split, per-class table, problems, images, plots.

    Args:
        report: the analysed report.
        plots: the PNG file names written beside it (each is shown where its section is).
    """
    f = report.figures
    md = _gates_section(report) + _splits_section(f) + _classes_section(f, plots)
    md += ["", "## Box positions and sizes", ""]
    md += [f"![{p[:-4]}]({p})" for p in plots if p in ("centre_heatmaps.png", "box_sizes.png")] + [""]
    md += _labels_section(f) + _images_section(f, plots)
    return "\n".join(md) + "\n"


def html_page(md_text: str, title: str) -> str:
    """A minimal self-contained HTML rendering of the markdown report (tables, headings, images)."""
    body: list[str] = []
    rows: list[str] = []

    def flush() -> None:
        if rows:
            body.append("<table>" + "".join(rows) + "</table>")
            rows.clear()

    for line in md_text.splitlines():
        if line.startswith("|"):
            if set(line.replace("|", "").strip()) <= {"-"}:
                continue
            cells = [html_lib.escape(c.strip()).replace("**", "") for c in line.strip("|").split("|")]
            tag = "th" if not rows else "td"
            rows.append("<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>")
            continue
        flush()
        if line.startswith("!["):
            src = line[line.index("(") + 1 : -1]
            body.append(f'<p><img src="{html_lib.escape(src)}" style="max-width:100%"></p>')
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{html_lib.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.strip():
            body.append(f"<p>{html_lib.escape(line).replace('**', '')}</p>")
    flush()
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html_lib.escape(title)}</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )
