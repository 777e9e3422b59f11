"""``cvactive harvest SOURCE [SOURCE ...] --model MODEL --config configs/harvest.yaml --out DIR``.

Several sources are harvested at once, one folder each under ``DIR`` (see
:func:`cvactive.harvest.harvest_feeds`), under the config's optional ``site_budget``.

``--out`` must be new, empty or a harvest folder (its ``.cvactive-owner.json``); a folder holding
anything else is refused, naming what it holds, and nothing in it is touched. The folder is locked
for the run: a second run into it fails at once, naming the first. ``--fresh`` moves a previous
harvest aside (``DIR.old-<time>``), it never deletes one.

Exit codes: 0 the harvest finished (every source read to its end, or the budget spent) with
no failure; 1 it finished but a source failed part-way (truncated or corrupt video, stream
given up on) or nothing could be read; 2 bad input (missing source, a video file that cannot be
opened, invalid config, a folder holding another config's harvest or files that are not a
harvest's, a folder another run holds); 130 / 143 stopped by SIGINT / SIGTERM, state saved: run
the same command again to carry on.
"""

from __future__ import annotations

import argparse
from typing import Any

from cvactive.cli._common import add_consistency_options, add_detector_options, make_detector

SIGNAL_EXIT = {"SIGINT": 130, "SIGTERM": 143}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "harvest",
        help="keep the frames of a video, folder of videos, stream or camera worth labeling (resumable)",
        description="Stream frames through composable rules (random, confidence band, uncertainty, target "
        "classes, detection count, no detections) under budgets, pacing and near-duplicate suppression; write "
        "kept frames as JPEGs plus one manifest line each. Rerunning the same command resumes. Exit codes: 0 "
        "done, 1 a source failed part-way, 2 bad input, 130/143 stopped by SIGINT/SIGTERM (state saved).",
    )
    p.add_argument(
        "source",
        nargs="+",
        help="video file, folder of videos, stream URL (rtsp/http) or camera index; several are harvested at "
        "once, one folder each under --out",
    )
    p.add_argument("--config", required=True, help="harvest YAML (see configs/harvest.yaml)")
    p.add_argument("--out", required=True, help="harvest folder: frames/, manifest.jsonl, state.json")
    add_detector_options(p)
    p.set_defaults(batch=None)  # --batch overrides the config's batch (default 1), not score's 8
    add_option_flags(p)
    p.add_argument(
        "--fresh",
        action="store_true",
        help="move a previous harvest in --out aside (renamed DIR.old-<time>, nothing deleted) and start over",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_consistency_options(p)
    p.set_defaults(func=run)


def add_option_flags(parser: argparse.ArgumentParser) -> None:
    """The flags :class:`~cvactive.harvest.options.HarvestOptions` declares (``--seed``, ``--workers``):
    each overrides its config key."""
    from cvactive.declare import add_flags
    from cvactive.harvest.options import HarvestOptions

    add_flags(parser, HarvestOptions)


def consistency_measures(options: dict[str, Any]) -> list[str]:
    """The TTA / committee / MC-dropout measures a harvest config's scorer, rules or pacing name.

    They need extra model passes, so the detector is wrapped to compute them, and the scorer is
    told to aggregate them like the class-score measures.
    """
    from cvactive.measures import CONSISTENCY_MEASURES

    scorer = options.get("scorer") or {}
    named = [str(m) for m in scorer.get("measures") or []]
    named += [str(r.get("score", "")) for r in options.get("rules") or []]
    named.append(str((options.get("pacing") or {}).get("score", "")))
    return sorted({m for m in CONSISTENCY_MEASURES for text in named if text == m or text.startswith(m + "_")})


def load_options(args: argparse.Namespace, sources: list[str]) -> tuple[Any, Any]:
    """The :class:`~cvactive.harvest.options.HarvestOptions` of ``args.config`` (the flags applied) and
    the detector they need (``None`` when no rule, pacing score or annotation needs a model).

    Every source is checked to exist (a video file: to open) and ``args.out`` to be able to take the
    harvest before the model loads; nothing is written.

    Raises:
        ConfigError: an invalid config (the message names the key and what it must be).
        SourceError: a source does not exist or holds no video, or a video file cannot be opened.
        OutputError: ``args.out`` cannot take this harvest.
    """
    from pathlib import Path

    from cvactive._config import load_yaml
    from cvactive.declare import flag_values
    from cvactive.errors import ConfigError
    from cvactive.harvest.feed import list_sources, probe
    from cvactive.harvest.folder import check_out, check_site
    from cvactive.harvest.options import HarvestOptions
    from cvactive.sources import is_stream

    raw = {**load_yaml(args.config), **flag_values(args, HarvestOptions)}
    if args.batch is not None:
        raw["batch"] = args.batch
    extra = consistency_measures(raw)
    if extra:
        from cvactive.measures import MEASURES

        scorer = dict(raw.get("scorer") or {})
        scorer["measures"] = list(dict.fromkeys([*(scorer.get("measures") or MEASURES), *extra]))
        raw["scorer"] = scorer
    args.measures = ",".join(extra)
    options = HarvestOptions.of(raw)
    if options.site_budget is not None and len(sources) < 2:
        raise ConfigError(f"{args.config}: site_budget caps several sources together; with one source use budget")
    for source in sources:
        list_sources(source)  # a missing source fails before the model loads
        if not is_stream(source) and Path(source).is_file():
            probe(source)  # a video file named as the source must open (a folder's may fail part-way)
    if len(sources) > 1 or options.site_budget is not None:
        check_site(args.out, sources)
    else:
        check_out(args.out, sources)
    detector = lazy_detector(args) if options.needs_model or args.model else None
    return options, detector


def lazy_detector(args: argparse.Namespace) -> Any:
    """The detector of the options, loaded only when a frame needs it: a rerun of a harvest that has
    nothing left (its sources read, its budget spent) says so without loading the model."""
    from pathlib import Path

    from cvactive.cli._common import default_model
    from cvactive.detect.model import _check_model_path
    from cvactive.harvest.infer import LazyDetector
    from cvactive.harvest.state import STATE_NAME

    path = _check_model_path(args.model or default_model())  # a missing model is named before any work
    detector = LazyDetector(lambda: make_detector(args), path, args.imgsz, args.conf, args.iou)
    outs = [Path(args.out)] + [p for p in Path(args.out).glob("*") if p.is_dir()]  # one source, or a site's
    if getattr(args, "fresh", False) or not any((o / STATE_NAME).is_file() for o in outs):
        detector.get()  # a new harvest: a model that cannot load is refused before the folder is taken
    return detector


def run(args: argparse.Namespace) -> int:
    from cvactive.harvest import harvest, harvest_feeds

    options, detector = load_options(args, args.source)
    if len(args.source) > 1 or options.site_budget is not None:
        site = harvest_feeds(args.source, args.out, options, detector=detector, fresh=args.fresh)
        return print_site(site)
    summary = harvest(
        args.source[0], args.out, options, detector=detector, fresh=args.fresh, progress=not args.no_progress
    )
    print_summary(summary)
    if summary.stopped:
        return SIGNAL_EXIT.get(summary.stopped, 130)
    if summary.report.failures or summary.counts.get("frames", 0) == 0:
        return 1
    return 0


def print_site(site: Any) -> int:
    """Print each source's summary of a :class:`~cvactive.harvest.SiteSummary`; return the exit code."""
    from cvactive.errors import CvactiveError

    errors = list(site.errors.values())
    if errors and len(errors) == len(site.folders) and all(isinstance(e, CvactiveError) for e in errors):
        raise errors[0]  # the same bad input for every source: one line, exit 2
    failed = bool(errors)
    for source, folder in site.folders.items():
        print(f"{source} -> {folder}")
        if source in site.errors:
            print(f"  failed: {site.errors[source]}")
            continue
        summary = site.feeds[source].summary
        print_summary(summary, indent="  ")
        failed |= bool(summary.report.failures) or summary.counts.get("frames", 0) == 0
    if site.site_kept_total is not None:
        print(f"site: {site.site_kept_total} kept under the site budget (all runs)")
    if site.stopped:
        return SIGNAL_EXIT.get(site.stopped, 130)
    return 1 if failed else 0


def print_summary(summary: Any, indent: str = "") -> None:
    """Print what a :class:`~cvactive.harvest.control.HarvestSummary` says, a few lines."""
    c = summary.counts
    print(
        f"{indent}harvest: looked at {summary.frames} frames, inferred {summary.inferred}, kept {summary.kept} "
        f"(total {summary.kept_total}) -> {summary.out}"
    )
    print(
        f"{indent}  all runs: {c.get('frames', 0)} frames, {c.get('candidates', 0)} candidates; refused: "
        + ", ".join(f"{k} {c[k]}" for k in ("rule_limit", "budget", "pacing", "duplicate", "site_budget") if k in c)
    )
    rules = {k[5:]: v for k, v in c.items() if k.startswith("rule:")}
    if rules:
        print(f"{indent}  kept by rule: " + ", ".join(f"{k} {v}" for k, v in rules.items()))
    if summary.delay_max is not None:
        print(
            f"{indent}  live: {summary.stale} frames dropped as stale this run ({c.get('stale', 0)} in all runs); "
            f"frames were {1000 * (summary.delay_mean or 0.0):.0f} ms old on average when taken, "
            f"{1000 * summary.delay_max:.0f} ms at most"
        )
    for event in summary.events:
        print(f"{indent}  {event}")
    for path, reason in summary.report.failures:
        print(f"{indent}  failed {path}: {reason}")
    if summary.stopped:
        print(f"{indent}  stopped by {summary.stopped}; state saved, run the same command again to continue")
    elif summary.budget_spent:
        print(f"{indent}  budget spent")
