"""Results of a learning-curve study: tables, curves, area under the curve and label savings.

* ``rounds.json`` / ``rounds.csv``: one row per (seed, strategy, round) with labels used,
  mAP50, mAP50-95, per-class AP and the seconds spent training and selecting.
* ``learning_curves.png``: mean and spread (min to max over seeds) of mAP50-95 and mAP50
  against labels used, one line per strategy.
* ``summary.json`` / ``summary.md``: per strategy the normalised area under the mean curve,
  the final mean mAP, and how many labels it needs to reach random's final mean mAP50-95
  (linear interpolation on its mean curve; "not reached" if it never does), with a plain
  sentence saying whether it beat random. A strategy whose final mean mAP50-95 lies within
  the pooled standard deviation over seeds of random's is "not distinguishable from random";
  when random's final mAP50-95 is below 0.02 the models are too weak to compare anything.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

METRICS = ("mAP50_95", "mAP50")


def mean_curves(rows: list[dict[str, Any]], metric: str) -> dict[str, dict[str, np.ndarray]]:
    """strategy -> {labels, mean, low, high, n} of a metric over seeds, by labels used."""
    by: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        by[row["strategy"]][int(row["labels_used"])].append(float(row[metric]))
    out = {}
    for strategy, points in by.items():
        labels = np.array(sorted(points))
        values = [np.asarray(points[x]) for x in labels]
        out[strategy] = {
            "labels": labels,
            "mean": np.array([v.mean() for v in values]),
            "low": np.array([v.min() for v in values]),
            "high": np.array([v.max() for v in values]),
            "n": np.array([len(v) for v in values]),
        }
    return out


def area_under_curve(labels: np.ndarray, values: np.ndarray) -> float:
    """Trapezoid area under a curve, normalised by its label range (so it is a mean mAP)."""
    if len(labels) < 2:
        return float(values[0]) if len(values) else 0.0
    y = np.asarray(values, float)
    x = np.asarray(labels, float)
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)) / (x[-1] - x[0]))


def labels_to_reach(labels: np.ndarray, values: np.ndarray, target: float) -> float | None:
    """Labels at which a curve first reaches ``target`` (linear interpolation), or ``None``."""
    for i, v in enumerate(values):
        if v >= target:
            if i == 0:
                return float(labels[0])
            x0, x1, y0, y1 = labels[i - 1], labels[i], values[i - 1], values[i]
            return float(x0 + (target - y0) / (y1 - y0) * (x1 - x0)) if y1 != y0 else float(x1)
    return None


WEAK_MAP = 0.02


def _final_values(rows: list[dict[str, Any]], metric: str) -> dict[str, list[float]]:
    """strategy -> the metric of each seed's last round."""
    last: dict[tuple[str, int], tuple[int, float]] = {}
    for row in rows:
        key = (row["strategy"], int(row["seed"]))
        if key not in last or int(row["labels_used"]) >= last[key][0]:
            last[key] = (int(row["labels_used"]), float(row[metric]))
    out: dict[str, list[float]] = defaultdict(list)
    for (strategy, _seed), (_labels, value) in sorted(last.items()):
        out[strategy].append(value)
    return out


def _pooled_sd(a: list[float], b: list[float]) -> float:
    """Pooled standard deviation of two samples (0 with fewer than two values in each)."""
    if len(a) < 2 or len(b) < 2:
        return 0.0
    va, vb = np.var(a, ddof=1), np.var(b, ddof=1)
    return float(np.sqrt(((len(a) - 1) * va + (len(b) - 1) * vb) / (len(a) + len(b) - 2)))


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """AUC, final mAP and label savings of every strategy against random."""
    curves = mean_curves(rows, "mAP50_95")
    curves50 = mean_curves(rows, "mAP50")
    if "random" not in curves:
        return {"strategies": {}, "note": "no random baseline in the results"}
    rand = curves["random"]
    target = float(rand["mean"][-1])
    finals = _final_values(rows, "mAP50_95")
    rand_labels = float(rand["labels"][-1])
    result: dict[str, Any] = {"random_final_mAP50_95": target, "random_final_labels": rand_labels, "strategies": {}}
    for strategy, c in curves.items():
        reach = labels_to_reach(c["labels"], c["mean"], target)
        auc = area_under_curve(c["labels"], c["mean"])
        rauc = area_under_curve(rand["labels"], rand["mean"])
        final = float(c["mean"][-1])
        spread = _pooled_sd(finals.get(strategy, []), finals.get("random", []))
        if strategy == "random":
            verdict = "baseline"
        elif target < WEAK_MAP:
            verdict = f"inconclusive: models too weak at this scale (random's final mAP50-95 < {WEAK_MAP})"
        elif abs(final - target) <= spread:
            verdict = "not distinguishable from random (final mAP within the spread over seeds)"
        elif auc > rauc and final >= target:
            verdict = "beats random (higher area under the curve and final mAP)"
        elif auc > rauc or final > target:
            verdict = "mixed: better than random on one of area under the curve and final mAP, not both"
        else:
            verdict = "does not beat random on this data"
        result["strategies"][strategy] = {
            "seeds": int(c["n"].min()),
            "auc_mAP50_95": auc,
            "auc_mAP50": area_under_curve(curves50[strategy]["labels"], curves50[strategy]["mean"]),
            "final_mAP50_95": final,
            "final_mAP50": float(curves50[strategy]["mean"][-1]),
            "labels_to_reach_random_final": reach,
            "labels_saved_vs_random": None if reach is None else rand_labels - reach,
            "final_spread_sd": spread,
            "verdict": verdict,
        }
    return result


def plot_curves(rows: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, metric in zip(axes, METRICS):
        for strategy, c in sorted(mean_curves(rows, metric).items()):
            style = {"color": "black", "linestyle": "--"} if strategy == "random" else {}
            (line,) = ax.plot(c["labels"], c["mean"], marker="o", label=f"{strategy} (n={c['n'].min()})", **style)
            ax.fill_between(c["labels"], c["low"], c["high"], alpha=0.15, color=line.get_color())
        ax.set_xlabel("labeled images")
        ax.set_ylabel(metric.replace("_", "-"))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title or "Learning curves: mean over seeds, band = min to max")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(rows: list[dict[str, Any]], out_dir: Path, cfg: Any = None) -> Path:
    """Write rounds.json/csv, learning_curves.png and summary.json/md into ``out_dir``."""
    slim = [{k: v for k, v in row.items() if k not in ("labeled", "chosen", "weights")} for row in rows]
    rounds_json = out_dir / "rounds.json"
    rounds_json.write_text(json.dumps(slim, indent=1))
    classes = sorted({c for row in rows for c in row.get("ap50", {})})
    with (out_dir / "rounds.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["seed", "strategy", "round", "labels_used", "mAP50", "mAP50_95", "train_seconds", "select_seconds"]
            + [f"AP50_{c}" for c in classes]
            + [f"AP50_95_{c}" for c in classes]
        )
        for row in rows:
            writer.writerow(
                [row["seed"], row["strategy"], row["round"], row["labels_used"]]
                + [f"{row[k]:.4f}" for k in ("mAP50", "mAP50_95", "train_seconds", "select_seconds")]
                + [f"{row.get('ap50', {}).get(c, 0.0):.4f}" for c in classes]
                + [f"{row.get('ap50_95', {}).get(c, 0.0):.4f}" for c in classes]
            )
    plot_curves(rows, out_dir / "learning_curves.png")
    summary = summarise(rows)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    lines = [
        "| strategy | seeds | AUC mAP50-95 | final mAP50-95 | final mAP50 | labels to reach random's final | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for strategy, s in summary.get("strategies", {}).items():
        reach = s["labels_to_reach_random_final"]
        lines.append(
            f"| {strategy} | {s['seeds']} | {s['auc_mAP50_95']:.4f} | {s['final_mAP50_95']:.4f} | "
            f"{s['final_mAP50']:.4f} | {'not reached' if reach is None else f'{reach:.0f}'} | {s['verdict']} |"
        )
    if "random_final_mAP50_95" in summary:
        lines.append(
            f"\nRandom reaches mAP50-95 {summary['random_final_mAP50_95']:.4f} with "
            f"{summary['random_final_labels']:.0f} labels."
        )
    (out_dir / "summary.md").write_text("\n".join(lines) + "\n")
    return rounds_json
