"""The numbers of a learning-curve study's report: curves, paired comparisons with random, a verdict
(:mod:`cvactive.loop.report` writes them as tables and figures).

* ``rounds.json`` / ``rounds.csv``: one row per (seed, strategy, round) with labels used,
  mAP50, mAP50-95, per-class AP and the seconds spent training and selecting.
* ``seconds_per_round`` in ``summary.json`` (a table in ``summary.md``): where a round's wall
  seconds go (train, score, select, evaluate; :func:`time_split`), for round 0 and per strategy.
* ``learning_curves.png``: mAP50-95 against labels, each seed a thin line and the mean over
  seeds a thick one per strategy; beside it the paired difference to random (mean and 95%
  interval over seeds) at every label count.
* ``summary.json`` / ``summary.md``: per strategy, compared **paired by seed** with random (every
  strategy of a seed starts from random's initial set, so seed-to-seed luck cancels):

  - ``paired_final_diff``: final mAP50-95 minus random's final, same seed; mean and a 95%
    Student-t interval over seeds (``mean +- t(0.975, n-1) * sd / sqrt(n)``).
  - ``paired_auc_diff``: the same for the area under the mAP50-95 curve (normalised by its
    label range, so it is a mean mAP over the study).
  - ``labels_to_reach_random_final``: per seed, the labels at which the strategy's curve first
    reaches random's final mAP50-95 of that seed (linear interpolation), averaged over seeds;
    ``None`` unless it is reached in every seed. ``labels_saved_fraction`` is
    ``1 - labels / the labels random itself needed to first reach that value``, with its own
    interval over seeds.
  - ``paired_diff_by_labels``: the paired difference at every label count both curves reached
    (label count -> mean and interval), to see where along the curve a strategy leads or lags;
    ``summary.md`` shows it as a second table. ``paired_diff_by_round`` is the same after each
    round (same seed, same round): under a cost budget (``shared_label_counts`` false) the seeds
    reach their own label counts but equal spend by each round, so ``summary.md`` and the plot
    show the rounds instead.
  - ``verdict``: "beats random" only when an interval lies above 0 and none below it; "worse
    than random" likewise below; "mixed" when one lies above and the other below; otherwise "no
    detectable difference (CI ...)". One seed gives "one seed: no verdict"; when random's final
    mAP50-95 is below 0.02 the models are too weak to compare anything.

* The same comparisons **on every cost axis** (:data:`cvactive.cost.AXES`: images, ground-truth
  boxes, seconds to draw, seconds to correct the model's predictions), in ``axes`` of each
  strategy. A row's spend comes from its ``annotation`` record (images, boxes and the counted
  corrections of the labeled set) priced by the study's :class:`~cvactive.cost.CostModel`. On a cost
  axis two strategies of a seed reach different spends, so the curves are compared **at equal
  spend** (linear interpolation over the spend both reached): the mAP50-95 difference at the
  largest spend both reached and the area difference over the common range, with the same verdict
  rule; ``to_reach_random_final`` and ``saved_fraction`` are the spend at which the strategy first
  reaches random's final mAP50-95 and ``1 -`` it over random's own, per seed, with intervals; and
  ``spend_vs_random`` is the strategy's final spend over random's, minus 1 (what the same number of
  images cost). An axis enters only when every finished row has it (``seconds_correct`` needs the
  predictions of the selecting model, which older studies did not record).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from cvactive.cost import AXES, Corrections, CostModel

METRICS = ("mAP50_95", "mAP50")
WEAK_MAP = 0.02
CONFIDENCE = 0.95
#: The parts of a round's wall time recorded in its ``seconds`` (scoring the pool is its own part).
SECONDS_PARTS = ("train", "score", "select", "evaluate")


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


def round_means(rows: list[dict[str, Any]], metric: str) -> dict[str, dict[str, np.ndarray]]:
    """strategy -> {labels, mean, boxes_per_image, n}: the mean over seeds of the labels, of a metric
    and of the labeled set's ground-truth boxes per image after each round (the mean curve of a
    cost budget, whose seeds reach their own label counts; ``nan`` boxes where a row has no spend)."""
    by: dict[str, dict[int, list[tuple[float, float, float]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        labels = float(row["labels_used"])
        boxes = (row.get("spend") or {}).get("boxes")
        per_image = float("nan") if boxes is None else float(boxes) / labels
        by[row["strategy"]][int(row["round"])].append((labels, float(row[metric]), per_image))
    out = {}
    for strategy, rounds in by.items():
        points = [np.asarray(rounds[r]) for r in sorted(rounds)]
        out[strategy] = {
            "labels": np.array([p[:, 0].mean() for p in points]),
            "mean": np.array([p[:, 1].mean() for p in points]),
            "boxes_per_image": np.array([p[:, 2].mean() for p in points]),
            "n": np.array([len(p) for p in points]),
        }
    return out


def seed_curves(rows: list[dict[str, Any]], metric: str) -> dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """strategy -> seed -> (labels, values) of one seed's curve, sorted by labels."""
    by: dict[str, dict[int, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for row in rows:
        by[row["strategy"]][int(row["seed"])][int(row["labels_used"])] = float(row[metric])
    return {
        s: {seed: (np.array(sorted(p)), np.array([p[x] for x in sorted(p)])) for seed, p in seeds.items()}
        for s, seeds in by.items()
    }


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


def t_interval(values: list[float] | np.ndarray, confidence: float = CONFIDENCE) -> dict[str, float | int]:
    """Mean and two-sided Student-t confidence interval of the mean (``nan`` bounds with one value)."""
    from scipy import stats

    x = np.asarray(values, float)
    n = int(x.size)
    if n == 0:
        return {"mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "n": 0}
    mean = float(x.mean())
    if n < 2:
        return {"mean": mean, "ci_low": float("nan"), "ci_high": float("nan"), "n": 1}
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * x.std(ddof=1) / np.sqrt(n))
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "n": n}


def _common_labels(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The label counts of either curve inside the range both cover (the same counts when both
    grew by the same image budget; under a cost budget their counts differ)."""
    lo, hi = max(a[0][0], b[0][0]), min(a[0][-1], b[0][-1])
    grid = np.union1d(a[0], b[0])
    return grid[(grid >= lo) & (grid <= hi)]


def _at(curve: tuple[np.ndarray, np.ndarray], labels: np.ndarray) -> np.ndarray:
    """The curve at ``labels``, linearly interpolated (exact at its own points)."""
    return np.interp(labels, curve[0].astype(float), curve[1])


def paired(rows: list[dict[str, Any]], strategy: str, metric: str = "mAP50_95") -> dict[str, Any]:
    """Per-seed paired comparisons of ``strategy`` with random over the label counts both reached."""
    curves = seed_curves(rows, metric)
    mine, base = curves.get(strategy, {}), curves.get("random", {})
    final, auc, reach, saved, seeds = [], [], [], [], []
    by_labels: dict[int, list[float]] = defaultdict(list)
    for seed in sorted(set(mine) & set(base)):
        labels = _common_labels(mine[seed], base[seed])
        if labels.size == 0:
            continue
        a, b = _at(mine[seed], labels), _at(base[seed], labels)
        seeds.append(seed)
        final.append(float(a[-1] - b[-1]))
        auc.append(area_under_curve(labels, a) - area_under_curve(labels, b))
        for x, d in zip(labels, a - b):
            by_labels[int(x)].append(float(d))
        r = labels_to_reach(labels, a, float(b[-1]))
        # Random's own labels to its final (its curve need not rise monotonically).
        own = labels_to_reach(labels, b, float(b[-1])) or float(labels[-1])
        reach.append(r)
        saved.append(None if r is None else 1.0 - r / own)
    return {"seeds": seeds, "final": final, "auc": auc, "reach": reach, "saved": saved, "by_labels": by_labels}


def shared_label_counts(rows: list[dict[str, Any]]) -> bool:
    """Whether every seed and strategy labeled the same number of images by each round (an image
    budget); under a cost budget the counts differ and the rounds are the common ground."""
    counts: dict[int, set[int]] = defaultdict(set)
    for row in rows:
        counts[int(row["round"])].add(int(row["labels_used"]))
    return all(len(c) == 1 for c in counts.values())


def paired_by_round(rows: list[dict[str, Any]], strategy: str, metric: str = "mAP50_95") -> dict[int, list[float]]:
    """Round -> the strategy's ``metric`` minus random's after the same round of the same seed, for
    the rounds after the shared round 0 (under a cost budget both spent the same budget by then)."""
    by: dict[tuple[str, int, int], float] = {}
    for row in rows:
        by[row["strategy"], int(row["seed"]), int(row["round"])] = float(row[metric])
    out: dict[int, list[float]] = defaultdict(list)
    for (name, seed, rnd), value in sorted(by.items()):
        if name == strategy and rnd > 0 and ("random", seed, rnd) in by:
            out[rnd].append(value - by["random", seed, rnd])
    return dict(out)


def by_labels_intervals(by_labels: dict[int, list[float]]) -> dict[int, dict[str, float | int]]:
    """The paired differences at each label count (:func:`paired`'s ``by_labels``) as intervals, by label count."""
    return {x: t_interval(d) for x, d in sorted(by_labels.items())}


def spend_of(row: dict[str, Any], model: CostModel) -> dict[str, float | None]:
    """The spend of a row's labeled set on every axis of :data:`~cvactive.cost.AXES` (``None``
    where the row's ``annotation`` record does not give it)."""
    ann = row.get("annotation")
    if not ann:
        return {axis: float(row["labels_used"]) if axis == "images" else None for axis in AXES}
    corrected = Corrections.from_dict(ann["correct"]) if ann.get("correct") else None
    return model.spend(int(row["labels_used"]), int(ann["boxes"]), corrected)


def with_spend(rows: list[dict[str, Any]], model: CostModel | None = None) -> list[dict[str, Any]]:
    """The rows, each with its ``spend`` priced by ``model`` (the default :class:`CostModel` when ``None``)."""
    model = model or CostModel()
    return [{**row, "spend": spend_of(row, model)} for row in rows]


def available_axes(rows: list[dict[str, Any]]) -> list[str]:
    """The axes every row has a spend on (rows as :func:`with_spend` returns them)."""
    return [a for a in AXES if rows and all(r.get("spend", {}).get(a) is not None for r in rows)]


def seed_axis_curves(
    rows: list[dict[str, Any]], axis: str, metric: str = "mAP50_95"
) -> dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """strategy -> seed -> (spend on ``axis``, metric) of one seed's curve, in round order."""
    by: dict[str, dict[int, dict[int, tuple[float, float]]]] = defaultdict(lambda: defaultdict(dict))
    for row in rows:
        by[row["strategy"]][int(row["seed"])][int(row["labels_used"])] = (
            float(row["spend"][axis]),
            float(row[metric]),
        )
    out: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
    for strategy, seeds in by.items():
        out[strategy] = {}
        for seed, points in seeds.items():
            ordered = [points[n] for n in sorted(points)]
            out[strategy][seed] = (np.array([p[0] for p in ordered]), np.array([p[1] for p in ordered]))
    return out


def paired_axis(rows: list[dict[str, Any]], strategy: str, axis: str, metric: str = "mAP50_95") -> dict[str, Any]:
    """Per-seed comparisons of ``strategy`` with random at equal spend on ``axis`` (rows with ``spend``).

    Per seed: the metric difference at the largest spend both curves reached and the area
    difference over the spend both covered (both curves linearly interpolated), the spend at which
    the strategy first reaches random's final value and the fraction of random's own spend to it
    that saves, and the strategy's final spend over random's, minus 1.
    """
    curves = seed_axis_curves(rows, axis, metric)
    mine, base = curves.get(strategy, {}), curves.get("random", {})
    out: dict[str, list[Any]] = {k: [] for k in ("seeds", "at_equal", "auc", "reach", "saved", "spend_ratio", "final")}
    for seed in sorted(set(mine) & set(base)):
        (xs, ys), (xr, yr) = mine[seed], base[seed]
        lo, hi = max(xs[0], xr[0]), min(xs[-1], xr[-1])
        grid = np.unique(np.concatenate([xs, xr]))
        grid = grid[(grid >= lo) & (grid <= hi)]
        if grid.size == 0:
            continue
        a, b = np.interp(grid, xs, ys), np.interp(grid, xr, yr)
        target = float(yr[-1])
        reach = labels_to_reach(xs, ys, target)
        own = labels_to_reach(xr, yr, target) or float(xr[-1])
        out["seeds"].append(seed)
        out["at_equal"].append(float(a[-1] - b[-1]))
        out["auc"].append(area_under_curve(grid, a) - area_under_curve(grid, b))
        out["reach"].append(reach)
        out["saved"].append(None if reach is None or own <= 0 else 1.0 - reach / own)
        out["spend_ratio"].append(float(xs[-1] / xr[-1] - 1.0) if xr[-1] > 0 else float("nan"))
        out["final"].append(float(xs[-1]))
    return out


def axis_summary(rows: list[dict[str, Any]], strategy: str, axis: str, random_final: float) -> dict[str, Any]:
    """One strategy's paired comparison with random on one axis (see the module docstring)."""
    p = paired_axis(rows, strategy, axis)
    at, auc = t_interval(p["at_equal"]), t_interval(p["auc"])
    reached = [r for r in p["reach"] if r is not None]
    saved_values = [s for s in p["saved"] if s is not None]
    everywhere = bool(p["reach"]) and len(saved_values) == len(p["reach"])
    saved = t_interval(saved_values) if everywhere else None
    return {
        "paired_seeds": p["seeds"],
        "final_spend": float(np.mean(p["final"])) if p["final"] else float("nan"),
        "spend_vs_random": t_interval(p["spend_ratio"]),
        "paired_diff_at_equal_spend": at,
        "paired_auc_diff_at_equal_spend": auc,
        "to_reach_random_final": float(np.mean(reached)) if everywhere else None,
        "to_reach_per_seed": p["reach"],
        "saved_fraction": saved["mean"] if saved else None,
        "saved_fraction_ci": saved,
        "verdict": verdict(at, auc, random_final),
    }


def _random_axis(rows: list[dict[str, Any]], axis: str) -> dict[str, float]:
    """Random's mean final spend on ``axis`` and its mean spend to first reach its own final value."""
    curves = seed_axis_curves(rows, axis).get("random", {})
    finals = [float(x[-1]) for x, _y in curves.values()]
    own = [labels_to_reach(x, y, float(y[-1])) for x, y in curves.values()]
    reached = [r for r in own if r is not None]
    return {
        "final_spend": float(np.mean(finals)) if finals else float("nan"),
        "to_reach_own_final": float(np.mean(reached)) if reached else float("nan"),
    }


def _side(ci: dict[str, Any]) -> int:
    """+1 when an interval lies above 0, -1 below, 0 otherwise (or undefined)."""
    low, high = ci["ci_low"], ci["ci_high"]
    if not (np.isfinite(low) and np.isfinite(high)):
        return 0
    return 1 if low > 0 else -1 if high < 0 else 0


def _fmt_ci(ci: dict[str, Any]) -> str:
    if not (np.isfinite(ci["ci_low"]) and np.isfinite(ci["ci_high"])):
        return f"{ci['mean']:+.4f} (one seed: no interval)"
    return f"{ci['mean']:+.4f} [{ci['ci_low']:+.4f}, {ci['ci_high']:+.4f}]"


def fmt_fraction(ci: dict[str, Any] | None) -> str:
    """A relative difference with its interval, ``+12% [+3%, +21%]`` (the mean alone without a
    finite interval; empty without one at all). Takes intervals as summarise() makes them or as
    summary.json stores them (``None`` for a bound that is not finite)."""
    if ci is None:
        return ""
    low, high = ci.get("ci_low"), ci.get("ci_high")
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return f"{ci['mean']:+.0%}"
    return f"{ci['mean']:+.0%} [{low:+.0%}, {high:+.0%}]"


def verdict(final_ci: dict[str, Any], auc_ci: dict[str, Any], random_final: float) -> str:
    """A plain verdict from the paired intervals (see the module docstring for the rule)."""
    if final_ci["n"] < 2:
        return "one seed: no verdict"
    if random_final < WEAK_MAP:
        return f"inconclusive: models too weak at this scale (random's final mAP50-95 < {WEAK_MAP})"
    sides = {_side(final_ci), _side(auc_ci)}
    if sides == {1} or sides == {0, 1}:
        return "beats random"
    if sides == {-1} or sides == {0, -1}:
        return "worse than random"
    if sides == {-1, 1}:
        return "mixed: one interval above 0, the other below"
    return f"no detectable difference (final {_fmt_ci(final_ci)}, AUC {_fmt_ci(auc_ci)})"


def complete_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of the (strategy, seed) curves that reach the study's last round.

    A seed still running (or stopped mid-way) would otherwise pair its last round with random's
    final at another label count; its rounds stay in ``rounds.csv``/``rounds.json`` and enter
    the summary once it is finished.
    """
    if not rows:
        return rows
    top = max(int(r["round"]) for r in rows)  # rounds, not labels: under a cost budget label counts differ
    done = {(r["strategy"], int(r["seed"])) for r in rows if int(r["round"]) == top}
    return [r for r in rows if (r["strategy"], int(r["seed"])) in done]


def unfinished(rows: list[dict[str, Any]]) -> list[str]:
    """``strategy/seed<n>`` of every curve :func:`complete_rows` leaves out, sorted."""
    done = {(r["strategy"], int(r["seed"])) for r in complete_rows(rows)}
    return sorted({f"{r['strategy']}/seed{int(r['seed'])}" for r in rows} - {f"{s}/seed{n}" for s, n in done})


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


def summarise(rows: list[dict[str, Any]], cost: CostModel | None = None) -> dict[str, Any]:
    """Paired comparisons of every strategy with random, and a verdict each (see the module docstring).

    Only finished curves count (:func:`complete_rows`); the others are listed under ``unfinished``.
    ``cost`` prices the cost axes (the default :class:`~cvactive.cost.CostModel` when ``None``).
    """
    left_out = unfinished(rows)
    model = cost or CostModel()
    rows = with_spend(complete_rows(rows), model)
    axes = available_axes(rows)
    curves = mean_curves(rows, "mAP50_95")
    curves50 = mean_curves(rows, "mAP50")
    if "random" not in curves:
        return {"strategies": {}, "note": "no random baseline in the results"}
    finals = _final_values(rows, "mAP50_95")
    per_seed = seed_curves(rows, "mAP50_95")
    # The mean of each seed's last round: under a cost budget the seeds end at different label
    # counts, so the mean curve's last point would be one seed's alone.
    random_final = float(np.mean(finals["random"]))
    result: dict[str, Any] = {
        "random_final_mAP50_95": random_final,
        "random_final_labels": float(np.mean([labels[-1] for labels, _ in per_seed["random"].values()])),
        "confidence": CONFIDENCE,
        "interval": "Student t over seeds, paired by seed",
        "unfinished": left_out,
        "shared_label_counts": shared_label_counts(rows),
        "axes": axes,
        "axes_left_out": {
            a: "not recorded for every round (seconds_correct needs the selecting model's predictions)"
            for a in AXES
            if a not in axes
        },
        "cost_model": model.to_dict(),
        "strategies": {},
    }
    for strategy, c in curves.items():
        values = finals.get(strategy, [])
        entry: dict[str, Any] = {
            "seeds": len(per_seed[strategy]),
            "final_map50_95": {
                "mean": float(np.mean(values)) if values else float("nan"),
                "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            },
            "final_map50": float(curves50[strategy]["mean"][-1]),
            "auc_map50_95": area_under_curve(c["labels"], c["mean"]),
        }
        if strategy != "random":
            p = paired(rows, strategy)
            final_ci, auc_ci = t_interval(p["final"]), t_interval(p["auc"])
            reached = [r for r in p["reach"] if r is not None]
            everywhere = bool(p["reach"]) and len(reached) == len(p["reach"])
            saved = t_interval([s for s in p["saved"] if s is not None]) if everywhere else None
            entry.update(
                {
                    "paired_seeds": p["seeds"],
                    "paired_final_diff": final_ci,
                    "paired_auc_diff": auc_ci,
                    "paired_diff_by_labels": {str(x): ci for x, ci in by_labels_intervals(p["by_labels"]).items()},
                    "paired_diff_by_round": {
                        str(r): ci for r, ci in by_labels_intervals(paired_by_round(rows, strategy)).items()
                    },
                    "per_seed_final_diff": p["final"],
                    "labels_to_reach_random_final": float(np.mean(reached)) if everywhere else None,
                    "labels_to_reach_per_seed": p["reach"],
                    "labels_saved_fraction": saved["mean"] if saved else None,
                    "labels_saved_fraction_ci": saved,
                    "verdict": verdict(final_ci, auc_ci, random_final),
                    "axes": {axis: axis_summary(rows, strategy, axis, random_final) for axis in axes},
                }
            )
        else:
            # Where random itself first reached its final value (its curve need not rise monotonically):
            # the labels the savings of the other strategies are counted against.
            own = [labels_to_reach(x, y, float(y[-1])) for x, y in seed_curves(rows, "mAP50_95")["random"].values()]
            entry["labels_to_reach_own_final"] = float(np.mean([r for r in own if r is not None]))
            entry["verdict"] = "baseline"
            entry["axes"] = {axis: _random_axis(rows, axis) for axis in axes}
        result["strategies"][strategy] = entry
    result["seconds_per_round"] = time_split(rows)
    return result


def time_split(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean wall seconds per round of each part (:data:`SECONDS_PARTS`) and their total.

    ``round 0`` (trained once per seed, shared by its strategies) is counted once per seed; each
    strategy's entry is its rounds after round 0. Rows recorded before rounds were timed by part
    are left out; ``rounds`` says how many rounds each mean is over.
    """
    groups: dict[str, list[dict[str, float]]] = defaultdict(list)
    first: set[int] = set()
    for row in rows:
        seconds = row.get("seconds")
        if not seconds:
            continue
        if int(row["round"]) == 0:
            if int(row["seed"]) in first:
                continue
            first.add(int(row["seed"]))
        groups["round 0" if int(row["round"]) == 0 else str(row["strategy"])].append(seconds)
    out = {}
    for key, timed in groups.items():
        means = {part: float(np.mean([t.get(part, 0.0) for t in timed])) for part in SECONDS_PARTS}
        out[key] = {**means, "total": sum(means.values()), "rounds": float(len(timed))}
    return out
