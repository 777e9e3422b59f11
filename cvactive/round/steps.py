"""The steps of a round, each a library call of another stage, each resumable.

Every step holds the project's folder lock, writes its files whole (atomically) and records
itself in ``state.json`` last, so a step killed midway and run again gives the state an
uninterrupted run gives. A step asked for out of order is refused with one line naming the
step to run (:func:`~cvactive.round.project.check_order`).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cvactive.errors import DatasetError, EmptyPoolError
from cvactive.round.project import (
    STEPS,
    GateFailed,
    Project,
    Status,
    check_order,
    next_step,
    open_project,
)

log = logging.getLogger(__name__)

SELECTED = "selected.jsonl"
EVAL_FIELD = "eval_predictions"
GT_FIELD = "ground_truth"


def _round_tag(n: int) -> str:
    return f"round-{n}"


def _push_options(project: Project) -> dict[str, Any]:
    return {
        "round_": project.round, "strategy": project.settings.strategy, "review": True, "brain": False,
        "progress": False,
    }  # fmt: skip


def _detector(project: Project, model: str, conf: float | None = None) -> Any:
    from cvactive.detect.model import Detector

    s = project.settings
    embed = conf is None and _needs_embeddings(s.strategy)
    return Detector(model, imgsz=s.imgsz, conf=s.conf if conf is None else conf, embed=embed)


def _needs_embeddings(strategy: str) -> bool:
    from cvactive.selection import get_strategy

    return bool(get_strategy(strategy).needs_embeddings)


def _picked_before(project: Project) -> set[str]:
    from cvactive.io import read_jsonl

    keys: set[str] = set()
    for n in range(1, project.round):
        path = project.round_dir(n) / SELECTED
        if path.is_file():
            keys.update(r.key for r in read_jsonl(path))
    return keys


def step_select(project: Project, progress: bool = False) -> dict[str, Any]:
    """Score the pool with the current model, pick ``budget`` images not picked before, push them."""
    from dataclasses import replace

    import numpy as np

    from cvactive.detect.stage import score_source
    from cvactive.io import load_jsonl, write_jsonl
    from cvactive.record import Selection
    from cvactive.selection import Pool, select
    from cvactive.store.push import push_file

    s = project.settings
    folder = project.round_dir()
    folder.mkdir(parents=True, exist_ok=True)
    detector = _detector(project, project.weights)
    records = []
    for i, source in enumerate(s.pool):
        out = folder / f"pool-{i}.jsonl"
        if not out.is_file():  # score_source resumes its own .partial after a kill
            score_source(source, detector, out, class_scores=True, progress=progress)
        records += load_jsonl(out)
    if not records:
        raise EmptyPoolError(f"the pool ({', '.join(s.pool)}) holds no image or frame")
    before = _picked_before(project)
    labeled = np.array([r.key in before for r in records], dtype=bool)
    if labeled.all():
        raise EmptyPoolError(f"every one of the pool's {len(records)} images was picked in an earlier round")
    k = min(s.budget, int((~labeled).sum()))
    pool = Pool.from_records(records)
    indices, utilities = select(pool, k, s.strategy, labeled=labeled, rng=s.seed + project.round, **s.strategy_options)
    picks = [Selection(rank=r, utility=round(float(u), 6), strategy=s.strategy) for r, u in enumerate(utilities, 1)]
    chosen = [replace(records[i], selection=sel) for i, sel in zip(indices.tolist(), picks)]
    selected = folder / SELECTED
    write_jsonl(selected, chosen, class_scores=True)
    pushed = push_file(selected, s.dataset, **_push_options(project))
    return {"pool": len(records), "picked_before": int(labeled.sum()), "selected": len(chosen),
            "pushed": pushed.added + pushed.updated,
            "model": project.weights}  # fmt: skip


def step_annotate(project: Project, progress: bool = False) -> dict[str, Any]:
    """Send the round's selection to the annotation backend, the model's boxes as pre-labels."""
    from cvactive.store.annotate import annotate

    s = project.settings
    summary = annotate(
        s.dataset, project.round_dir() / SELECTED, backend=s.backend, classes=project.state["classes"],
        push=_push_options(project),
    )  # fmt: skip
    if summary.missing:
        raise DatasetError(
            f"{len(summary.missing)} selected images have no sample (missing at push): {summary.missing[0]}"
        )
    info: dict[str, Any] = {"batch": summary.batch, "sent": summary.sent, "already_sent": summary.already_sent,
                            "prelabels": summary.prelabels}  # fmt: skip
    if summary.anno_key:
        info.update(anno_key=summary.anno_key, project=summary.project)
    return info


class Pending(Exception):
    """Annotations of the round are still pending (collect ran, took what was done, and stops here)."""

    def __init__(self, info: dict[str, Any]) -> None:
        super().__init__(f"{info['pending']} pending")
        self.info = info


def step_collect(project: Project, progress: bool = False) -> dict[str, Any]:
    """Collect the finished annotations; when the whole round is annotated, add it to the labeled set.

    Raises:
        Pending: some of the round's images are not annotated yet (what was done is collected).
    """
    from cvactive.store.collect import collect
    from cvactive.store.read import detection_columns

    s = project.settings
    summary = collect(s.dataset)
    selected = project.state["done"]["select"]["selected"]
    info = {"collected_now": summary.collected, "updated": summary.updated, "annotators": summary.annotators,
            "edited": summary.edited, "deleted": summary.deleted, "added": summary.added}  # fmt: skip
    try:
        cols = detection_columns(s.dataset, GT_FIELD)
    except DatasetError:  # no ground truth in the data set yet: nothing annotated
        raise Pending({**info, "pending": selected, "labeled": 0}) from None
    tag = _round_tag(project.round)
    rows = [i for i, tags in enumerate(cols.tags) if tag in tags]
    labeled = [i for i in rows if cols.labels[i] is not None and "labeled" in cols.tags[i]]
    if len(labeled) < selected or len(rows) < selected:
        raise Pending({**info, "pending": selected - len(labeled), "labeled": len(labeled)})
    names = {name: i for i, name in enumerate(project.state["classes"])}
    boxes = 0
    for i in labeled:
        boxes += _add_to_labeled(project, cols.paths[i], cols.labels[i] or [], cols.boxes[i] or [], names)
    earlier = {f"round-{k}": k for k in range(1, project.round)}  # corrections made since their round was collected
    for i, tags in enumerate(cols.tags):
        k = next((earlier[t] for t in tags if t in earlier), None)
        if k is not None and cols.labels[i] is not None and "labeled" in tags:
            _add_to_labeled(project, cols.paths[i], cols.labels[i] or [], cols.boxes[i] or [], names, round_=k)
    return {**info, "images": len(labeled), "boxes": boxes, "pending": 0}


def _add_to_labeled(
    project: Project,
    image: str,
    labels: list[str],
    boxes: list[list[float]],
    names: dict[str, int],
    round_: int | None = None,
) -> int:
    """Copy one collected image (of ``round_``, default the current round) and write its YOLO label file into
    the labeled set's train split (rewritten each time: a corrected annotation replaces the earlier one)."""
    from cvactive.outputs import atomic_path, write_text_atomic

    src = Path(image)
    unknown = sorted(set(labels) - set(names))
    if unknown:
        raise DatasetError(f"{src}: collected label(s) {', '.join(unknown)} are not classes of the labeled set")
    n = project.round if round_ is None else round_
    stem = f"r{n:03d}-{hashlib.sha1(str(src).encode()).hexdigest()[:8]}-{src.stem}"
    root = project.root / "labeled"
    dst = root / "images" / "train" / f"{stem}{src.suffix.lower()}"
    rows = []
    for label, (x, y, w, h) in zip(labels, boxes):
        rows.append(f"{names[label]} {x + w / 2:.6f} {y + h / 2:.6f} {w:.6f} {h:.6f}")
    write_text_atomic(root / "labels" / "train" / f"{stem}.txt", "".join(f"{r}\n" for r in rows), fsync=False)
    if not dst.is_file():
        with atomic_path(dst, fsync=False) as tmp:
            shutil.copyfile(src, tmp)
    return len(rows)


def step_check(project: Project, progress: bool = False) -> dict[str, Any]:
    """The health gates on the grown labeled set; a failing gate stops the round with the report.

    Raises:
        GateFailed: a gate failed (the message names the gates and the report).
    """
    from cvactive.health import check_health

    out = project.round_dir() / "health"
    report = check_health(project.labeled, out=out, progress=progress, **project.settings.health)
    where = report.files.get("report.md") or str(out / "report.md")
    if not report.passed:
        names = ", ".join(g.name for g in report.failed)
        raise GateFailed(
            f"round {project.round}: the health gate failed ({names}); see {where}; fix the labels (or the gates in "
            f"round.yaml) and run: cvactive round check {project.root}"
        )
    return {"report": where, "gates": len(report.gates)}


def step_train(project: Project, progress: bool = False) -> dict[str, Any]:
    """Fine-tune from the last round's weights (or the starting model) on the labeled set."""
    from cvactive.outputs import atomic_path
    from cvactive.train import train_detector

    s = project.settings
    start = project.weights if s.finetune == "last" else s.model
    options = {"imgsz": s.imgsz, **s.train}
    result = train_detector(  # the labeled set is the project's own copy: Ultralytics' caches may sit in it
        project.labeled, project.round_dir(), model=start, name="train", progress=progress, own_data=True, **options
    )
    weights = project.root / "weights" / f"round-{project.round:03d}.pt"
    weights.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(weights) as tmp:
        shutil.copyfile(result.weights, tmp)
    project.state["weights"] = str(weights.resolve())
    return {"from": start, "weights": str(weights.resolve()), "seconds": round(result.seconds, 1),
            "epochs": result.epochs, "steps": result.steps}  # fmt: skip


def step_evaluate(project: Project, progress: bool = False) -> dict[str, Any]:
    """Per-class AP of the round's weights on the fixed split, stored as the round's FiftyOne evaluation."""
    from cvactive.detect.stage import score_source
    from cvactive.io import load_jsonl
    from cvactive.store.evaluate import evaluate_round
    from cvactive.store.labels import import_yolo_dataset
    from cvactive.store.push import push_records

    s = project.settings
    weights = project.state["done"]["train"]["weights"]
    import_yolo_dataset(project.labeled, s.dataset, splits=(s.eval_split,), progress=False)
    scores = project.round_dir() / "eval-scores.jsonl"
    detector = _detector(project, weights, conf=0.001)  # the whole precision-recall curve
    images = (project.root / "labeled" / "images" / s.eval_split).resolve()
    score_source(images, detector, scores, progress=progress)
    push_records(load_jsonl(scores), s.dataset, label_field=EVAL_FIELD, review=False, brain=False,
                 progress=False, base_dir=scores.parent)  # fmt: skip
    result, history, plot = evaluate_round(
        s.dataset, EVAL_FIELD, GT_FIELD, project.round, tag=s.eval_split, out_dir=project.root / "eval"
    )
    per_class = {c: v.get("ap") for c, v in result.per_class.items()}
    return {"map": result.map, "per_class_ap": per_class, "eval_key": result.eval_key, "samples": result.samples,
            "history": str(history), "plot": str(plot)}  # fmt: skip


RUNNERS: dict[str, Callable[[Project, bool], dict[str, Any]]] = {
    "select": step_select,
    "annotate": step_annotate,
    "collect": step_collect,
    "check": step_check,
    "train": step_train,
    "evaluate": step_evaluate,
}


def run_step(root: str | Path, step: str, *, progress: bool = False) -> tuple[Project, dict[str, Any]]:
    """Run one step of the current round (refused out of order), record it, return the project and its record.

    Raises:
        RoundOrderError: ``step`` is not the next step.
        Pending: collect found annotations still pending (recorded in the state; the step is not done).
        GateFailed: the health gate failed.
    """
    from cvactive.outputs import folder_lock

    project = open_project(root)
    check_order(project, step)
    with folder_lock(project.root, f"round {step}"):
        project = open_project(root)  # as another holder may have left it
        check_order(project, step)
        n = project.round
        try:
            info = RUNNERS[step](project, progress)
        except Pending as pending:
            project.state["pending"] = pending.info
            project.save()
            raise
        except GateFailed as failed:
            project.state["gate_failed"] = str(failed)
            project.save()
            raise
        project.state.pop("pending", None)
        project.state.pop("gate_failed", None)
        project.mark(step, info)
        log.debug("round %d: %s done", n, step)
    return project, info


def run_next(
    root: str | Path, *, progress: bool = False, on_step: Callable[[str, int], None] | None = None
) -> list[str]:
    """Run every step of the current round that needs no person, up to the end of the round.

    Stops (returning the steps run) when collect finds annotations pending, and after evaluate.
    """
    ran: list[str] = []
    project = open_project(root)
    start = project.round
    while project.round == start:
        step = next_step(project.done)
        if on_step is not None:
            on_step(step, project.round)
        try:
            project, _ = run_step(root, step, progress=progress)
        except Pending:
            return ran
        ran.append(step)
    return ran


def status(root: str | Path) -> Status:
    """Where the project stands and what to run next."""
    project = open_project(root)
    done = list(project.done)
    step = next_step(done)
    pending = (project.state.get("pending") or {}).get("pending") if step == "collect" else None
    last = project.state["history"][-1]["evaluate"] if project.state["history"] else None
    r = project.root
    if project.state.get("gate_failed"):
        advice = f"{project.state['gate_failed']}"
    elif step == "collect" and pending:
        info = project.state["done"].get("annotate", {})
        advice = (
            f"{pending} image(s) still to annotate in Label Studio (project {info.get('project', '?')}); "
            f"then: cvactive round collect {r}"
        )
    elif step == "collect":
        advice = f"annotate the batch in Label Studio, then: cvactive round collect {r}"
    elif step == "select" and not project.state["history"]:
        advice = f"start round 1: cvactive round next {r} (select and send the batch for annotation)"
    else:
        advice = f"run: cvactive round {step} {r}" + (
            f" (or cvactive round next {r} for every step up to the annotations)" if step in ("select", "annotate") else
            f" (or cvactive round next {r} for the rest of the round)"
        )  # fmt: skip
    return Status(
        root=r, round=project.round, done=done, next=step, pending=pending, rounds_done=len(project.state["history"]),
        last_map=None if last is None else last.get("map"), advice=advice,
    )  # fmt: skip


__all__ = ["STEPS", "Pending", "run_next", "run_step", "status"]
