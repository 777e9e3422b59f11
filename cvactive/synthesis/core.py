"""Membership query synthesis: new labeled images where the data is thin, written as a YOLO data set.

:func:`synthesize` reads a YOLO data set, finds its gaps (or takes the classes and conditions it
is told to target), picks parents and recipes to fill them, runs each recipe on its parent with a
seed, and writes ``OUT/images/train``, ``OUT/labels/train``, ``OUT/data.yaml`` (same class names),
``OUT/combined.yaml`` (the labeled set plus the synthetic one), ``OUT/provenance.jsonl`` (one line
per synthetic image: parent, recipe, applied parameters, seed) and ``OUT/summary.json``.
The same seed gives the same files, byte for byte.

The steps, one module each: :mod:`~cvactive.synthesis.target` (what to fill),
:mod:`~cvactive.synthesis.parents` (read and profile the labeled split),
:mod:`~cvactive.synthesis.plan` (gaps -> plans -> jobs), :mod:`~cvactive.synthesis.run` (one job:
a recipe on a parent), :mod:`~cvactive.synthesis.output` (images, labels, provenance, YAMLs) and
:mod:`~cvactive.synthesis.summary` (before / after shares).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cvactive._random import as_rng
from cvactive.errors import ConfigError
from cvactive.outputs import write_text_atomic
from cvactive.synthesis.gaps import GapThresholds
from cvactive.synthesis.images import array_luma, image_luma
from cvactive.synthesis.options import SynthesisOptions
from cvactive.synthesis.output import (
    PROVENANCE,
    SyntheticWriter,
    load_provenance,
    prepare_out,
    write_yaml,
    yolo_label_text,
)
from cvactive.synthesis.parents import LabeledSplit
from cvactive.synthesis.plan import Job, Plan, instances, plan_jobs
from cvactive.synthesis.recipes import Recipe, load_recipes, pick
from cvactive.synthesis.run import MAX_ATTEMPTS, JobRunner
from cvactive.synthesis.summary import GapReport, SynthesisSummary, all_shares, gap_report
from cvactive.synthesis.target import TARGET_FORMS, Target, parse_target
from cvactive.yolodata import YoloDataset

__all__ = [
    "MAX_ATTEMPTS",
    "PROVENANCE",
    "TARGET_FORMS",
    "GapReport",
    "SynthesisSummary",
    "Target",
    "array_luma",
    "image_luma",
    "load_provenance",
    "parse_target",
    "synthesize",
    "yolo_label_text",
]


def synthesize(
    data: str | Path | YoloDataset,
    *,
    k: int,
    out: str | Path,
    recipes: str | Path | Iterable[str | Path] | Mapping[str, Recipe] | None = None,
    target: str | Sequence[str] | Target | None = "auto",
    options: SynthesisOptions | Mapping[str, Any] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    **keys: Any,
) -> SynthesisSummary:
    """Make ``k`` new labeled images where the data set is thin and write them as a YOLO data set.

    Args:
        data: a YOLO ``data.yaml``, its folder, or a loaded :class:`YoloDataset`.
        k: how many synthetic images to make (as ``select``'s ``k`` is how many to pick).
        out: the output folder (``images/train``, ``labels/train``, ``data.yaml`` ... go there).
        recipes: recipe files, folders or built-in names, or loaded recipes (default: every built-in).
        target: ``auto`` (the data's gaps), ``classes=a,b``, ``conditions=night,fog`` (see :func:`parse_target`).
        options: the seed, the parents' split, the JPEG quality and what counts as a gap: a
            :class:`~cvactive.synthesis.options.SynthesisOptions` (the keys of ``synthesize.yaml``,
            each declared there), a config mapping, or its fields as keyword arguments
            (``seed=1, split="val"``), set over it. The same seed gives the same bytes, and each
            image's own seed is recorded in its provenance line.
        overwrite: replace a synthetic set already in ``out`` (only its own files are removed).
        progress: show a progress bar.

    Raises:
        DatasetError: the data set has no labeled boxes in ``split``.
        ConfigError: a bad target, an unknown class or recipe name (valid ones listed), a malformed
            recipe, ``k < 1``, or ``out`` already holds files and ``overwrite`` is off.
    """
    from cvactive.synthesis import _albu

    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    opts = SynthesisOptions.of(options, **keys)
    thresholds = opts.thresholds
    tgt = parse_target(target)
    book = _recipe_book(recipes)
    parents = LabeledSplit.load(data, opts.split, tgt.classes)
    pick(book, tgt.conditions)
    out_dir = Path(out).resolve()
    inputs = [] if isinstance(data, YoloDataset) else [Path(data) if Path(data).is_dir() else Path(data).parent]
    with prepare_out(out_dir, overwrite, inputs=inputs) as owned:  # locked; only our own files removed
        parents.profile(progress)
        rng = as_rng(opts.seed)
        plans, jobs, notes = plan_jobs(tgt, book, parents, thresholds, k, rng)
        runner = JobRunner(parents.items, instances(parents.items, parents.readable), _albu)
        with SyntheticWriter(out_dir, opts.quality, owned) as writer:
            writer.plan(jobs, parents.items)
            dropped = _run_jobs(jobs, parents, writer, runner, progress)
        summary = _summarize(out_dir, parents, tgt, thresholds, plans, writer, k, dropped, notes)
        write_text_atomic(out_dir / "summary.json", json.dumps(summary.to_dict(), indent=1) + "\n", fsync=False)
    return summary


def _recipe_book(recipes: str | Path | Iterable[str | Path] | Mapping[str, Recipe] | None) -> dict[str, Recipe]:
    """The recipes by name, each validated (loaded ones are used as they are)."""
    book = dict(recipes) if isinstance(recipes, Mapping) else load_recipes(recipes)
    for r in book.values():
        r.validate()
    return book


def _run_jobs(
    jobs: Sequence[Job], parents: LabeledSplit, writer: SyntheticWriter, runner: JobRunner, progress: bool
) -> list[dict[str, Any]]:
    """Make and write every job's image; returns the jobs dropped (no seed left a box worth labeling)."""
    from tqdm import tqdm

    dropped: list[dict[str, Any]] = []
    for j, job in enumerate(tqdm(jobs, desc="synthesizing", unit="img", disable=not progress)):
        parent = parents.items[job.parent]
        made, job_seed = runner.make(job)
        if made is None:
            dropped.append({"parent": str(parent.image), "recipe": job.recipe.name, "seed": job.seed})
            continue
        writer.write(j, job, parent, made, job_seed)
    return dropped


def _summarize(
    out_dir: Path,
    parents: LabeledSplit,
    tgt: Target,
    thresholds: GapThresholds,
    plans: Sequence[Plan],
    writer: SyntheticWriter,
    requested: int,
    dropped: list[dict[str, Any]],
    notes: list[str],
) -> SynthesisSummary:
    """Measure the shares before and after, write the data set YAMLs and gather the summary."""
    source = parents.profiled
    synthetic = writer.profile(parents.num_classes)
    combined = source.concat(synthetic)
    reports = [gap_report(p, source, synthetic, combined, thresholds) for p in plans]
    shares = all_shares(parents.names, thresholds, {"before": source, "synthetic": synthetic, "after": combined})
    data_yaml, combined_yaml = write_yaml(
        out_dir, parents.dataset, parents.names, parents.split, parents.items, writer.written
    )
    return SynthesisSummary(
        out=str(out_dir),
        data_yaml=str(data_yaml),
        combined_yaml=str(combined_yaml),
        provenance=str(out_dir / PROVENANCE),
        target=tgt.text(),
        requested=requested,
        written=len(writer.written),
        source_images=int(parents.readable.sum()),
        source_boxes=int(source.boxes),
        synthetic_boxes=int(synthetic.boxes),
        gaps=reports,
        shares=shares,
        by_recipe=writer.by_recipe,
        dropped=dropped,
        unreadable=parents.unreadable,
        notes=notes,
    )
