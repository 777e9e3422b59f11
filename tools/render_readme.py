#!/usr/bin/env python
"""Render the README's generated blocks from benchmarks/results/ (figures are generated, never typed).

A generated block sits between two markers in README.md:

    <!-- generated:study:aquarium-pretrained -->
    ... the study's summary table, written by this script ...
    <!-- /generated -->

    <!-- generated:verdicts:aquarium-pretrained,porch-pretrained -->
    ... one line per study: which strategies beat random, which do worse, which cannot be told apart ...
    <!-- /generated -->

    <!-- generated:recipe -->
    ... the training recipes' paired comparisons (mAP50-95 differences, by seed) ...
    <!-- /generated -->

    <!-- generated:measured -->
    ... the "Measured" table: one row per benchmark figure (what, baseline, result, goal, met) ...
    <!-- /generated -->

``python tools/render_readme.py`` rewrites the blocks in place; ``--check`` exits 1 when README.md
differs from what the results say (tests/test_readme_generated.py runs that check).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cvactive.loop.stats import fmt_fraction

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BLOCK = re.compile(r"(<!-- generated:(?P<kind>[\w:.,-]+) -->\n)(?P<body>.*?)(<!-- /generated -->)", re.S)


def study_block(name: str) -> str:
    """A study's summary table (summary.md) and a link to its plot and command."""
    folder = RESULTS / name
    if not (folder / "summary.md").exists():
        raise SystemExit(f"no study results in {folder}")
    summary = json.loads((folder / "summary.json").read_text())
    seeds = sorted({s["seeds"] for s in summary["strategies"].values()})
    body = (folder / "summary.md").read_text().rstrip() + "\n"
    body += (
        f"\n*{'/'.join(map(str, seeds))} seeds per strategy; "
        f"[rounds and settings](benchmarks/results/{name}/), [the command](benchmarks/results/{name}/COMMAND.md).*\n"
    )
    return body


#: verdict text (as cvactive.loop.stats.verdict words it) -> what is said of one strategy, of several.
GROUPS = (
    ("beats random", "beats random", "beat random"),
    ("worse than random", "does worse than random", "do worse than random"),
    (
        "mixed",
        "is mixed (one interval above zero, the other below)",
        "are mixed (one interval above zero, the other below)",
    ),
    (
        "no detectable difference",
        "shows no difference the paired intervals can detect",
        "show no difference the paired intervals can detect",
    ),
    ("inconclusive", "is inconclusive (models too weak)", "are inconclusive (models too weak)"),
    ("one seed", "has one finished seed so far, so no verdict", "have one finished seed so far, so no verdict"),
)


def verdict_block(names: list[str]) -> str:
    """One line per study: which strategies beat random, which do worse, which cannot be told apart."""
    lines = []
    for name in names:
        summary = json.loads((RESULTS / name / "summary.json").read_text())
        strategies = {k: v for k, v in summary["strategies"].items() if k != "random"}
        if not strategies:
            lines.append(f"- **{name}**: no finished comparison yet.")
            continue
        seeds = sorted({int(v["seeds"]) for v in strategies.values()})
        parts = []
        for prefix, one, several in GROUPS:
            members = [f"`{k}`" for k, v in strategies.items() if v["verdict"].startswith(prefix)]
            if members:
                parts.append(f"{', '.join(members)} {one if len(members) == 1 else several}")
        left = summary.get("unfinished") or []
        curves = "seed curve is" if len(left) == 1 else "seed curves are"
        tail = f" ({len(left)} unfinished {curves} not counted yet.)" if left else ""
        lines.append(
            f"- **{name}** ({'/'.join(map(str, seeds))} paired seeds; random ends at mAP50-95 "
            f"{summary['random_final_mAP50_95']:.3f} with {summary['random_final_labels']:.0f} labels): "
            + "; ".join(parts)
            + "."
            + tail
            + boxes_verdicts(summary, strategies, budget_unit(name))
        )
    return "\n".join(lines) + "\n"


def budget_unit(name: str) -> str:
    """What a study's rounds were budgeted in (its settings.json; images when it does not say)."""
    settings = RESULTS / name / "settings.json"
    unit = json.loads(settings.read_text()).get("budget_unit") if settings.exists() else None
    return str(unit or "images")


def boxes_verdicts(summary: dict[str, Any], strategies: dict[str, Any], unit: str = "images") -> str:
    """The same study counted in ground-truth boxes: the verdicts at equal spend, and what each
    strategy's labeled set cost in boxes against random's (empty when the study has no boxes axis).
    A study budgeted in boxes spends random's boxes by design: then the images they bought."""
    if "boxes" not in summary.get("axes", []):
        return ""
    parts = []
    for prefix, one, several in GROUPS:
        members = [f"`{k}`" for k, v in strategies.items() if v["axes"]["boxes"]["verdict"].startswith(prefix)]
        if members:
            parts.append(f"{', '.join(members)} {one if len(members) == 1 else several}")
    spend = summary["strategies"]["random"]["axes"]["boxes"]["final_spend"]
    if unit == "boxes":
        images = ", ".join(
            f"`{k}` {fmt_fraction(v['axes']['images']['spend_vs_random'])}" for k, v in strategies.items()
        )
        return (
            f" **Budgeted in boxes** (every arm's labeled set holds about random's {spend:,.0f} boxes; the images "
            f"those boxes bought against random's {summary['random_final_labels']:.0f}, paired by seed: {images}), "
            "at equal boxes: " + "; ".join(parts) + "."
        )
    costs = ", ".join(f"`{k}` {v['axes']['boxes']['spend_vs_random']['mean']:+.0%}" for k, v in strategies.items())
    return (
        f" **Counted in boxes drawn** (random's labeled set holds {spend:,.0f} boxes; the others' hold, paired "
        f"by seed: {costs}), at equal spend: " + "; ".join(parts) + "."
    )


#: benchmark JSON file -> function returning its README rows (what, baseline, result, goal, met).
Row = dict[str, Any]
MEASURED: dict[str, Callable[[dict[str, Any]], list[Row]]] = {}


def measured(file: str) -> Callable[[Callable[[dict[str, Any]], list[Row]]], Callable[[dict[str, Any]], list[Row]]]:
    def wrap(func: Callable[[dict[str, Any]], list[Row]]) -> Callable[[dict[str, Any]], list[Row]]:
        MEASURED[file] = func
        return func

    return wrap


def _x(value: float) -> str:
    return f"{value:.2f}x"


@measured("score.json")
def _score(d: dict[str, Any]) -> list[Row]:
    rows = []
    for t in d["throughput"]:
        model = "OpenVINO INT8 YOLOv8n" if "openvino" in t["model"] else "rebuilt COCO YOLOv8n `.pt` (CPU)"
        source = "coco128 val2017" if "coco" in t["source"] else "slow_traffic video"
        ips, r = t["images_per_second"], t["ratios"]
        boxes = t["boxes_per_run"]["cvactive_score"]
        rows.append(
            {
                "what": f"`cvactive score` (pipelined), {model}, {source} ({boxes} boxes)",
                "baseline": f"compiled model on ready tensors {ips['engine_limit']:.0f}/s; "
                f"`YOLO.predict` loop {ips['predict_loop']:.0f}/s",
                "result": f"{ips['cvactive_score']:.0f} images/s: {_x(r['cvactive_score_vs_engine_limit'])} the "
                f"engine limit, {_x(r['cvactive_score_vs_predict_loop'])} the predict loop"
                + (
                    f"; {_x(r['cvactive_score_vs_ceiling'])} the most the cores allow once frames are decoded "
                    f"({t['ceiling_images_per_second']:.0f}/s)"
                    if "cvactive_score_vs_ceiling" in r
                    else ""
                )
                + (
                    f", a ceiling that is {_x(t['ceiling_ratios']['ceiling_vs_engine_limit'])} the limit and "
                    f"{_x(t['ceiling_ratios']['ceiling_vs_predict_loop'])} the loop"
                    if "ceiling_ratios" in t
                    else ""
                )
                + (
                    f". Batch after batch (`--workers 0`, the default for a `.pt` on the CPU since this run): "
                    f"{ips['cvactive_sequential']:.0f} images/s, "
                    f"{_x(ips['cvactive_sequential'] / ips['engine_limit'])} the limit, "
                    f"{_x(r['cvactive_sequential_vs_predict_loop'])} the loop"
                    if t["engine"] == "BatchedEngine" and "cvactive_sequential_vs_predict_loop" in r
                    else ""
                ),
                "goal": f">= {d['goals']['vs_engine_limit']}x limit, >= {d['goals']['vs_predict_loop']}x loop",
                "met": all(t["goals_met"].values()),
            }
        )
    for m in d["measures_cost"]:
        model = "OpenVINO INT8 YOLOv8n" if "openvino" in m["model"] else "rebuilt COCO YOLOv8n `.pt`"
        ratios = m["ratio_to_plain_predict"]
        extra = ratios.get("cvactive_measures_and_embeddings")
        rows.append(
            {
                "what": f"all uncertainty measures, {model} ({m['boxes']['cvactive_all_measures']} boxes)",
                "baseline": "plain prediction, same frames",
                "result": f"{_x(ratios['cvactive_all_measures'])} its time"
                + (f"; with embeddings {_x(extra)}" if extra else ""),
                "goal": f"<= {d['goals']['measures']}x"
                + (f" (embeddings <= {d['goals']['embeddings']}x)" if extra else ""),
                "met": ratios["cvactive_all_measures"] <= d["goals"]["measures"]
                and (extra is None or extra <= d["goals"]["embeddings"]),
            }
        )
    return rows


@measured("harvest.json")
def _harvest(d: dict[str, Any]) -> list[Row]:
    a, b, c = d["model_rule_vs_predict"], d["random_vs_decode"], d["memory_long_run"]
    return [
        {
            "what": f"harvest with a model rule on every frame ({a['work']['harvest']['inferred']} frames, "
            f"{a['work']['harvest']['boxes']} boxes)",
            "baseline": "decode + `YOLO.predict` loop, same frames",
            "result": f"{a['ratio']:.2f} of its throughput",
            "goal": f">= {a['goal']}",
            "met": a["ratio"] >= a["goal"],
        },
        {
            "what": f"harvest with random rules only ({b['work']['harvest']['frames']} frames)",
            "baseline": f"bare OpenCV grabbing every frame, decoding the same {b['work']['baseline']['decoded']}"
            + (
                f" and writing the same {b['work']['baseline']['written']} kept frames"
                if "written" in b["work"]["baseline"]
                else ""
            ),
            "result": f"{b['ratio']:.3f} of its throughput (median of {len(b['round_ratios'])} paired rounds)",
            "goal": f">= {b['goal']}",
            "met": b["ratio"] >= b["goal"],
        },
        {
            "what": f"resident memory over the video looped {c['loops']} times",
            "baseline": "start of the run",
            "result": f"{c['growth_mb']:+.1f} MB",
            "goal": f"< {c['goal_mb']} MB",
            "met": c["growth_mb"] < c["goal_mb"],
        },
    ]


@measured("select.json")
def _select(d: dict[str, Any]) -> list[Row]:
    goal_s = d["goals"]["seconds"]
    scale, million = d["scale"], d["million"]
    main = ("coreset", "cluster", "hybrid", "badge")
    rows = [
        {
            "what": f"select {scale['k']:,} of {scale['n']:,} ({scale['dim']}-d embeddings)",
            "baseline": "",
            "result": ", ".join(f"{s} {scale['strategies'][s]['seconds']:.1f} s" for s in main),
            "goal": f"< {goal_s:.0f} s each",
            "met": all(scale["strategies"][s]["within_goal"] for s in main),
        },
        {
            "what": f"select {million['k']:,} of {million['n']:,} ({million['dim']}-d, memory-mapped shards)",
            "baseline": "",
            "result": ", ".join(
                f"{s} {m['seconds']:.1f} s / {m['peak_rss_mb'] / 1024:.1f} GB"
                for s, m in ((s, million["strategies"][s]) for s in main)
            ),
            "goal": f"< {goal_s:.0f} s and < {d['goals']['bytes'] / 2**30:.0f} GB each",
            "met": all(million["strategies"][s]["within_goal"] for s in main),
        },
    ]
    naive = d["naive"]
    rows.append(
        {
            "what": f"vectorised kernels vs naive loops ({naive['n']:,} items, same picks)",
            "baseline": "the same algorithms as Python loops",
            "result": ", ".join(f"{s} {v['speedup']:.0f}x" for s, v in naive["strategies"].items()),
            "goal": f">= {d['goals']['speedup']:.0f}x",
            "met": all(v["speedup"] >= d["goals"]["speedup"] and v["same_picks"] for v in naive["strategies"].values()),
        }
    )
    for key in ("sklearn", "million_kmeans"):
        block = d.get(key)
        if not block:
            continue
        methods = block["methods"]
        others = [m for m in methods if m != "cvactive_kmeans"]
        rows.append(
            {
                "what": f"k-means, {block['n']:,} x {block['dim']}, {methods['cvactive_kmeans']['clusters']} clusters",
                "baseline": ", ".join(o.replace("_", " ") for o in others),
                "result": f"cvactive {methods['cvactive_kmeans']['seconds']:.1f} s; "
                + ", ".join(
                    f"{o.split('_', 1)[1]} {methods[o]['seconds']:.1f} s "
                    f"(objective {methods[o]['objective_ratio_to_cvactive']:.3f}x)"
                    for o in others
                ),
                "goal": "",
                "met": None,
            }
        )
    return rows


@measured("ray.json")
def _ray(d: dict[str, Any]) -> list[Row]:
    paths = d["paths"]
    ray = {k: v for k, v in paths.items() if k.startswith("ray")}
    best = min(ray, key=lambda k: ray[k]["ratio_to_local"])
    return [
        {
            "what": f"`cvactive score --engine ray` ({d['work']['records']} frames, {d['work']['boxes']} boxes), "
            "same 2 cores",
            "baseline": f"local path {paths['local']['seconds']:.1f} s",
            "result": f"{_x(ray[best]['ratio_to_local'])} its time end to end "
            f"({_x(ray[best]['ratio_to_local_after_actor_startup'])} after actor start-up)",
            "goal": f"<= {d['goal_ratio']}x",
            "met": ray[best]["ratio_to_local"] <= d["goal_ratio"],
        }
    ]


@measured("push.json")
def _push(d: dict[str, Any]) -> list[Row]:
    speedup = d["naive_s"] / d["batched_s"]
    return [
        {
            "what": f"push {d['records']:,} records x {d['boxes_per_record']} boxes to FiftyOne",
            "baseline": "one `add_sample` at a time",
            "result": f"{speedup:.1f}x faster",
            "goal": ">= 10x",
            "met": speedup >= 10,
        }
    ]


@measured("health.json")
def _health(d: dict[str, Any]) -> list[Row]:
    return [
        {
            "what": f"health statistics over {d['files']:,} label files ({d['boxes']:,} boxes)",
            "baseline": "a plain Python script computing the same statistics",
            "result": f"{d['stats_only']['speedup']:.1f}x faster; end to end {d['cvactive']['total_s']:.1f} s "
            f"(the script, which only counts: {d['naive']['total_s']:.1f} s)",
            "goal": "seconds",
            "met": d["cvactive"]["total_s"] < 60,
        },
        {
            "what": f"near-duplicate search, {d['near_duplicates']['hashes']:,} image hashes",
            "baseline": "Python pair loop",
            "result": f"{d['near_duplicates']['speedup']:.0f}x faster",
            "goal": "",
            "met": None,
        },
    ]


@measured("synthesis.json")
def _synthesis(d: dict[str, Any]) -> list[Row]:
    speeds = {r: v["end_to_end_img_s"] for r, v in d["recipes"].items()}
    slow, fast = min(speeds, key=speeds.get), max(speeds, key=speeds.get)  # type: ignore[arg-type]
    return [
        {
            "what": f"synthesis, {d['image_size'][0]}x{d['image_size'][1]} images, per recipe end to end",
            "baseline": f"JPEG decode + encode ({d['baseline_img_s']:.0f} img/s)",
            "result": f"{speeds[slow]:.0f} ({slow}) to {speeds[fast]:.0f} ({fast}) img/s",
            "goal": "",
            "met": None,
        }
    ]


@measured("measures.json")
def _measures(d: dict[str, Any]) -> list[Row]:
    ov, pt = d["openvino_yolov8n"], d["pytorch_yolov8n"]
    return [
        {
            "what": "consistency measures",
            "baseline": "plain prediction",
            "result": f"TTA 3 views {ov['tta (3 views)']['ratio']:.1f}x, committee of 2 "
            f"{ov['committee (2 members)']['ratio']:.1f}x, calibration {ov['calibration']['ratio']:.2f}x (OpenVINO); "
            f"MC dropout T=10 {pt['mc dropout (T=10)']['ratio']:.1f}x (PyTorch)",
            "goal": "",
            "met": None,
        }
    ]


def measured_block() -> str:
    lines = [
        "| benchmark | what | baseline in the same run | result | goal | met |",
        "|---|---|---|---|---|---|",
    ]
    for file, rows_of in MEASURED.items():
        path = RESULTS / file
        if not path.exists():
            continue
        for row in rows_of(json.loads(path.read_text())):
            met = {True: "yes", False: "**no**", None: ""}[row.get("met")]
            lines.append(
                f"| [`{file}`](benchmarks/results/{file}) | {row['what']} | {row['baseline']} | {row['result']} | "
                f"{row.get('goal', '')} | {met} |"
            )
    return "\n".join(lines) + "\n"


def recipe_block() -> str:
    """The recipe table's paired comparisons (benchmarks/results/recipe/summary.json), one row each."""
    summary = json.loads((RESULTS / "recipe" / "summary.json").read_text())
    lines = [
        "| data, labeled images | recipe | against | per seed | mean [95% CI] | images processed |",
        "|---|---|---|---|---|---|",
    ]
    for baseline in ("epochs", "steps"):
        for r in summary.get(f"paired_vs_{baseline}", []):
            ci = r["ci"]
            shown = f"[{ci['ci_low']:+.3f}, {ci['ci_high']:+.3f}]" if ci["n"] > 1 else "(one seed)"
            seeds = ", ".join(f"{v:+.3f}" for v in r["per_seed"].values())
            lines.append(
                f"| {r['data']} {r['size']} ({r['imgsz']} px) | `{r['recipe']}` | `{baseline}` | {seeds} "
                f"| {r['mean']:+.3f} {shown} | {r['images_ratio']:.2f}x |"
            )
    return "\n".join(lines) + "\n"


def render(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        kind = match.group("kind")
        if kind.startswith("study:"):
            body = study_block(kind.split(":", 1)[1])
        elif kind == "measured":
            body = measured_block()
        elif kind == "recipe":
            body = recipe_block()
        elif kind.startswith("verdicts:"):
            body = verdict_block(kind.split(":", 1)[1].split(","))
        else:
            raise SystemExit(f"unknown generated block {kind!r}")
        return match.group(1) + body + match.group(4)

    return BLOCK.sub(replace, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is not what the results say")
    parser.add_argument("--readme", default=str(ROOT / "README.md"))
    args = parser.parse_args(argv)
    path = Path(args.readme)
    old = path.read_text()
    new = render(old)
    if args.check:
        if new != old:
            print(f"{path} is out of date with benchmarks/results: run tools/render_readme.py", file=sys.stderr)
            return 1
        return 0
    path.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
