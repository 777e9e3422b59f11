"""Writes a learning-curve study's report into its folder (the numbers: :mod:`cvactive.loop.stats`).

* ``rounds.json`` / ``rounds.csv``: one row per (seed, strategy, round).
* ``learning_curves.png`` and ``cost_curves.png``: the curves against labels and against each cost axis.
* ``summary.json`` / ``summary.md``: :func:`cvactive.loop.stats.summarise`, as JSON and as tables.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from cvactive.cost import AXES, AXIS_LABELS, CostModel
from cvactive.loop.stats import (
    CONFIDENCE,
    SECONDS_PARTS,
    _fmt_ci,
    by_labels_intervals,
    complete_rows,
    fmt_fraction,
    mean_curves,
    paired,
    paired_by_round,
    round_means,
    seed_axis_curves,
    seed_curves,
    shared_label_counts,
    summarise,
    with_spend,
)


def _time_table(summary: dict[str, Any]) -> list[str]:
    """``summary.md``'s table of where a round's seconds go (nothing when no round was timed by part)."""
    split = summary.get("seconds_per_round") or {}
    if not split:
        return []
    lines = ["", "Where a round's wall seconds go (mean per round):", ""]
    lines += ["| rounds of | rounds | " + " | ".join(SECONDS_PARTS) + " | total |", "|---" * 7 + "|"]
    for key, s in split.items():
        cells = " | ".join(f"{s[p]:.1f}" for p in (*SECONDS_PARTS, "total"))
        lines.append(f"| {key} | {s['rounds']:.0f} | {cells} |")
    return lines


def _rare_classes(rows: list[dict[str, Any]], how_many: int = 2) -> list[str]:
    """The classes with the lowest mean AP50-95 over random's rounds (the hard, usually rare ones)."""
    per: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        if row["strategy"] == "random":
            for c, v in row.get("ap50_95", {}).items():
                per[c].append(float(v))
    return sorted(per, key=lambda c: np.mean(per[c]))[:how_many]


def plot_curves(rows: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Per-seed thin lines and the mean per strategy; paired difference to random with its interval."""
    from cvactive.plots import new_figure, save_figure

    fig = new_figure((12, 4.6))
    ax, axd = fig.subplots(1, 2)
    colors = {}
    per_seed = seed_curves(rows, "mAP50_95")
    by_round = not shared_label_counts(rows)  # a cost budget: the seeds share rounds, not label counts
    means = round_means(rows, "mAP50_95") if by_round else mean_curves(rows, "mAP50_95")
    for i, (strategy, c) in enumerate(sorted(means.items())):
        color = "black" if strategy == "random" else f"C{i}"
        colors[strategy] = color
        style = "--" if strategy == "random" else "-"
        for labels, values in per_seed[strategy].values():
            ax.plot(labels, values, color=color, alpha=0.25, linewidth=0.8, linestyle=style)
        ax.plot(
            c["labels"], c["mean"], color=color, marker="o", linewidth=2, linestyle=style,
            label=f"{strategy} (n={c['n'].min()})",
        )  # fmt: skip
    ax.set_xlabel("labeled images")
    ax.set_ylabel("mAP50-95")
    ax.set_title(f"mean over seeds{' after each round' if by_round else ''} (thick), each seed (thin)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    for strategy in sorted(per_seed):
        if strategy == "random":
            continue
        diffs = paired_by_round(rows, strategy) if by_round else paired(rows, strategy)["by_labels"]
        by = by_labels_intervals(diffs)
        xs = np.array(list(by))
        cis = list(by.values())
        mean = np.array([ci["mean"] for ci in cis])
        axd.plot(xs, mean, marker="o", color=colors[strategy], label=strategy)
        low, high = np.array([ci["ci_low"] for ci in cis]), np.array([ci["ci_high"] for ci in cis])
        if np.isfinite(low).all():
            axd.fill_between(xs, low, high, color=colors[strategy], alpha=0.12)
    axd.axhline(0.0, color="black", linestyle="--", linewidth=1)
    if by_round:
        from matplotlib.ticker import MaxNLocator

        axd.xaxis.set_major_locator(MaxNLocator(integer=True))
    axd.set_xlabel("round (the same budget spent)" if by_round else "labeled images")
    axd.set_ylabel("mAP50-95 minus random's (same seed)")
    axd.set_title(f"paired difference to random, {int(CONFIDENCE * 100)}% t interval over seeds", fontsize=9)
    axd.grid(alpha=0.3)
    if axd.get_legend_handles_labels()[0]:
        axd.legend(fontsize=7)
    fig.suptitle(title or "Learning curves")
    save_figure(fig, path, dpi=110)
    return path


def _markdown(summary: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    rare = _rare_classes(rows)
    finals: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    last: dict[tuple[str, int], dict[str, Any]] = {}
    for row in rows:
        key = (row["strategy"], int(row["seed"]))
        if key not in last or int(row["labels_used"]) > int(last[key]["labels_used"]):
            last[key] = row
    for (strategy, _seed), row in last.items():
        for c in rare:
            finals[strategy][c].append(float(row.get("ap50_95", {}).get(c, 0.0)))
    head = "| strategy | seeds | final mAP50-95 (sd) | paired final diff [95% CI] | paired AUC diff [95% CI] |"
    head += " labels to reach random's final | labels saved |"
    head += "".join(f" AP50-95 {c} |" for c in rare) + " verdict |"
    lines = [head, "|" + "---|" * (7 + len(rare) + 1)]
    for strategy, s in summary.get("strategies", {}).items():
        f = s["final_map50_95"]
        rare_cells = "".join(f" {np.mean(finals[strategy][c]):.4f} |" for c in rare)
        if strategy == "random":
            lines.append(
                f"| random | {s['seeds']} | {f['mean']:.4f} ({f['sd']:.4f}) | | | "
                f"{s['labels_to_reach_own_final']:.0f} (first reached) | |{rare_cells} baseline |"
            )
            continue
        reach = s["labels_to_reach_random_final"]
        saved = s["labels_saved_fraction_ci"]
        saved_txt = "" if saved is None else f"{saved['mean']:.0%} [{saved['ci_low']:.0%}, {saved['ci_high']:.0%}]"
        if saved is not None and not np.isfinite(saved["ci_low"]):
            saved_txt = f"{saved['mean']:.0%}"
        lines.append(
            f"| {strategy} | {s['seeds']} | {f['mean']:.4f} ({f['sd']:.4f}) | {_fmt_ci(s['paired_final_diff'])} | "
            f"{_fmt_ci(s['paired_auc_diff'])} | {'not reached in every seed' if reach is None else f'{reach:.0f}'} | "
            f"{saved_txt} |{rare_cells} {s['verdict']} |"
        )
    if "random_final_mAP50_95" in summary:
        lines.append(
            f"\nRandom reaches mAP50-95 {summary['random_final_mAP50_95']:.4f} with "
            f"{summary['random_final_labels']:.0f} labels. Intervals: {summary['interval']}, "
            f"{int(summary['confidence'] * 100)}%."
        )
    if summary.get("unfinished"):
        lines.append(
            f"Not yet finished, so left out of this table (their rounds are in rounds.csv): "
            f"{', '.join(summary['unfinished'])}."
        )
    lines += _round_means_table(rows)
    lines += _by_labels_table(summary)
    lines += _axes_tables(summary)
    lines += _time_table(summary)
    return "\n".join(lines) + "\n"


def _fmt_spend(value: float, axis: str) -> str:
    if axis == "seconds_draw" or axis == "seconds_correct":
        return f"{value / 3600:.2f} h"
    return f"{value:,.0f}"


def _axes_tables(summary: dict[str, Any]) -> list[str]:
    """One table per cost axis: spend, comparisons at equal spend, spend to reach random's final, savings."""
    strategies = summary.get("strategies", {})
    lines: list[str] = []
    for axis in summary.get("axes", []):
        if axis == "images" or "random" not in strategies:
            continue
        rand = strategies["random"]["axes"][axis]
        lines += [
            f"\nOn the {axis} axis ({AXIS_LABELS[axis]}): random spends {_fmt_spend(rand['final_spend'], axis)} "
            f"and first reaches its final mAP50-95 at {_fmt_spend(rand['to_reach_own_final'], axis)}. Curves are "
            "compared at equal spend (mean [95% CI] over seeds):\n",
            "| strategy | spend at the end | vs random's spend | mAP50-95 diff at equal spend | AUC diff at equal "
            "spend | spend to reach random's final | saved | verdict at equal spend |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, s in strategies.items():
            if name == "random":
                continue
            a = s["axes"][axis]
            reach = a["to_reach_random_final"]
            lines.append(
                f"| {name} | {_fmt_spend(a['final_spend'], axis)} | {fmt_fraction(a['spend_vs_random'])} | "
                f"{_fmt_ci(a['paired_diff_at_equal_spend'])} | {_fmt_ci(a['paired_auc_diff_at_equal_spend'])} | "
                f"{'not reached in every seed' if reach is None else _fmt_spend(reach, axis)} | "
                f"{fmt_fraction(a['saved_fraction_ci'])} | {a['verdict']} |"
            )
    if summary.get("axes_left_out"):
        lines.append(
            f"\nAxes not in this report: {', '.join(summary['axes_left_out'])} (not recorded for every round)."
        )
    model = summary.get("cost_model")
    if model and any(a.startswith("seconds") for a in summary.get("axes", [])):
        priced = ", ".join(f"{k} {v:g}" for k, v in model.items())
        lines.append(f"Seconds priced by the cost model (docs/cost.md): {priced}.")
    return lines


def _round_means_table(rows: list[dict[str, Any]]) -> list[str]:
    """Under a cost budget (the seeds' label counts differ), each strategy's mean over seeds after
    each round: mAP50-95, the images labeled and their ground-truth boxes per image."""
    if shared_label_counts(rows):
        return []
    means = round_means(rows, "mAP50_95")
    rounds = sorted({int(r["round"]) for r in rows})
    lines = [
        "\nMean over seeds after each round: mAP50-95, images labeled, ground-truth boxes per image:\n",
        "| strategy |" + "".join(f" round {r} |" for r in rounds),
        "|" + "---|" * (len(rounds) + 1),
    ]
    for strategy, m in means.items():
        cells = []
        for value, labels, per_image in zip(m["mean"], m["labels"], m["boxes_per_image"]):
            boxes = f", {per_image:.1f} boxes/image" if np.isfinite(per_image) else ""
            cells.append(f" {value:.3f} ({labels:.0f} images{boxes}) |")
        lines.append(f"| {strategy} |" + "".join(cells))
    return lines


def _by_labels_table(summary: dict[str, Any]) -> list[str]:
    """Paired difference to random at each label count (mean [interval]), one row per strategy; after
    each round instead when the seeds' label counts differ (a cost budget: the seeds share rounds)."""
    strategies = {k: v for k, v in summary.get("strategies", {}).items() if k != "random"}
    if not summary.get("shared_label_counts", True):
        rows = {k: v.get("paired_diff_by_round", {}) for k, v in strategies.items()}
        columns = sorted({int(r) for by in rows.values() for r in by})
        title = "after each round, the same budget spent by both"
        names = [f"round {r}" for r in columns]
    else:
        rows = {k: v["paired_diff_by_labels"] for k, v in strategies.items()}
        # The smallest label count is the initial set every strategy shares with random: a difference of 0.
        counts = sorted({int(x) for by in rows.values() for x in by})[1:]
        # A count that no two seeds share has no interval.
        columns = [c for c in counts if any(by.get(str(c), {}).get("n", 0) > 1 for by in rows.values())]
        title = "at each label count"
        names = [f"{c} labels" for c in columns]
    if not columns:
        return []
    lines = [
        f"\nPaired difference to random in mAP50-95 {title} (mean [95% CI] over seeds):\n",
        "| strategy |" + "".join(f" {n} |" for n in names),
        "|" + "---|" * (len(columns) + 1),
    ]
    for strategy, by in rows.items():
        cells = "".join(f" {_fmt_ci(by[str(c)]) if str(c) in by else ''} |" for c in columns)
        lines.append(f"| {strategy} |{cells}")
    return lines


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def plot_cost_curves(rows: list[dict[str, Any]], path: Path, axes: list[str]) -> Path:
    """mAP50-95 against each cost axis (rows with ``spend``): each seed thin, the mean over seeds
    of spend and mAP50-95 at each round thick."""
    from cvactive.plots import new_figure, save_figure

    shown = [a for a in axes if a != "images"] or ["images"]
    fig = new_figure((5.2 * len(shown), 4.4))
    panels = fig.subplots(1, len(shown), squeeze=False)[0]
    for ax, axis in zip(panels, shown):
        scale = 3600.0 if axis.startswith("seconds") else 1.0  # seconds are shown in hours
        curves = {
            s: {seed: (x / scale, y) for seed, (x, y) in seeds.items()}
            for s, seeds in seed_axis_curves(rows, axis).items()
        }
        for i, strategy in enumerate(sorted(curves)):
            color = "black" if strategy == "random" else f"C{i}"
            style = "--" if strategy == "random" else "-"
            seeds = list(curves[strategy].values())
            for x, y in seeds:
                ax.plot(x, y, color=color, alpha=0.25, linewidth=0.8, linestyle=style)
            n = min(len(x) for x, _ in seeds)
            mx = np.mean([x[:n] for x, _ in seeds], axis=0)
            my = np.mean([y[:n] for _, y in seeds], axis=0)
            ax.plot(mx, my, color=color, marker="o", linewidth=2, linestyle=style, label=f"{strategy} (n={len(seeds)})")
        ax.set_xlabel(AXIS_LABELS[axis] + (" (h)" if axis.startswith("seconds") else ""))
        ax.set_ylabel("mAP50-95")
        ax.grid(alpha=0.3)
    panels[0].legend(fontsize=7)
    fig.suptitle("Learning curves against annotation cost (mean over seeds thick, each seed thin)")
    save_figure(fig, path, dpi=110)
    return path


def write_report(rows: list[dict[str, Any]], out_dir: Path, cfg: Any = None) -> Path:
    """Write rounds.json/csv, learning_curves.png, cost_curves.png and summary.json/md into ``out_dir``.

    ``cfg``'s ``cost`` section (a mapping of :class:`~cvactive.cost.CostModel` fields) prices the
    seconds axes; without one the defaults do."""
    model = CostModel.from_dict(getattr(cfg, "cost", None))
    rows = with_spend(rows, model)
    slim = [{k: v for k, v in row.items() if k not in ("labeled", "chosen", "weights")} for row in rows]
    rounds_json = out_dir / "rounds.json"
    rounds_json.write_text(json.dumps(slim, indent=1))
    classes = sorted({c for row in rows for c in row.get("ap50", {})})
    with (out_dir / "rounds.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["seed", "strategy", "round", "labels_used", "mAP50", "mAP50_95", "train_seconds", "select_seconds"]
            + [a for a in AXES if a != "images"]
            + [f"AP50_{c}" for c in classes]
            + [f"AP50_95_{c}" for c in classes]
        )
        for row in rows:
            writer.writerow(
                [row["seed"], row["strategy"], row["round"], row["labels_used"]]
                + [f"{row[k]:.4f}" for k in ("mAP50", "mAP50_95", "train_seconds", "select_seconds")]
                + ["" if row["spend"][a] is None else f"{row['spend'][a]:.1f}" for a in AXES if a != "images"]
                + [f"{row.get('ap50', {}).get(c, 0.0):.4f}" for c in classes]
                + [f"{row.get('ap50_95', {}).get(c, 0.0):.4f}" for c in classes]
            )
    finished = complete_rows(rows)
    plot_curves(finished, out_dir / "learning_curves.png")
    summary = summarise(rows, model)
    if finished and "random" in {r["strategy"] for r in finished}:
        plot_cost_curves(finished, out_dir / "cost_curves.png", summary["axes"])
    (out_dir / "summary.json").write_text(json.dumps(_json_safe(summary), indent=1))
    (out_dir / "summary.md").write_text(_markdown(summary, finished))
    return rounds_json
