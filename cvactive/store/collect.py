"""Collect finished annotations from Label Studio into FiftyOne's ground truth (``cvactive annotate --collect``).

:func:`collect` reads each annotation run's tasks (runs that :func:`cvactive.store.annotate.annotate`
made) and writes the latest submitted annotation of every finished task into the ground-truth field
(pixel-exact: Label Studio's percentages become FiftyOne's normalised boxes); unfinished (or only
skipped) tasks stay ``pending``. Ground truth is written before the record that says it is done, so
a collect killed midway and run again gives the same state. See :mod:`cvactive.store.annotate`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from cvactive.errors import ConfigError
from cvactive.store._db import load_dataset
from cvactive.store._lock import dataset_lock
from cvactive.store.annotate import ANNO_FIELD, ANNO_INFO, DONE, cva_runs, now_utc, reconcile, sent_records
from cvactive.store.labelstudio_client import LabelStudio, credentials
from cvactive.store.review import LABELED, TO_ANNOTATE


@dataclass
class CollectSummary:
    """What :func:`collect` did.

    Attributes:
        dataset: the data set name.
        runs: the annotation runs read.
        collected: samples whose ground truth was written now (first time or updated).
        updated: of those, samples collected before whose annotation changed since.
        unchanged: finished samples already collected as they are.
        pending: samples whose task has no submitted annotation yet (left for the next collect).
        skipped: of those, tasks an annotator skipped (cancelled annotations only).
        missing_tasks: tasks deleted in the backend (their samples stay pending).
        boxes: ground-truth boxes written.
        kept: pre-labels submitted unchanged; ``edited``: moved, resized or relabelled;
            ``deleted``: removed by the annotator; ``added``: boxes drawn by the annotator.
        rotated: rotated rectangles written as their axis-aligned hull.
        annotators: annotator -> samples collected now.
    """

    dataset: str
    runs: list[str] = field(default_factory=list)
    collected: int = 0
    updated: int = 0
    unchanged: int = 0
    pending: int = 0
    skipped: int = 0
    missing_tasks: int = 0
    boxes: int = 0
    kept: int = 0
    edited: int = 0
    deleted: int = 0
    added: int = 0
    rotated: int = 0
    annotators: dict[str, int] = field(default_factory=dict)


def _box(value: dict[str, Any], width: float, height: float) -> tuple[list[float], bool]:
    """Label Studio's rectangle (percent, top-left, rotated clockwise by ``rotation`` degrees about
    its top-left corner) as FiftyOne's normalised ``[x, y, w, h]``; rotated ones become their hull."""
    x, y, w, h = (float(value[k]) / 100 for k in ("x", "y", "width", "height"))
    angle = float(value.get("rotation") or 0) % 360
    if angle == 0:
        return [x, y, w, h], False
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    px, py, pw, ph = x * width, y * height, w * width, h * height
    xs = [px + dx * c - dy * s for dx, dy in ((0, 0), (pw, 0), (pw, ph), (0, ph))]
    ys = [py + dx * s + dy * c for dx, dy in ((0, 0), (pw, 0), (pw, ph), (0, ph))]
    x0, x1 = max(min(xs), 0.0) / width, min(max(xs), width) / width
    y0, y1 = max(min(ys), 0.0) / height, min(max(ys), height) / height
    return [x0, y0, x1 - x0, y1 - y0], True


def _same_box(a: dict[str, Any], b: dict[str, Any]) -> bool:
    va, vb = a.get("value", {}), b.get("value", {})
    same = all(abs(float(va.get(k, 0)) - float(vb.get(k, 0))) < 1e-6 for k in ("x", "y", "width", "height", "rotation"))
    return same and va.get("rectanglelabels") == vb.get("rectanglelabels")


@dataclass
class _Task:
    """One finished task, converted: ground-truth boxes and the record that says who and when."""

    detections: list[Any]
    record: dict[str, Any]


def _convert(
    fo: Any, task: dict[str, Any], annotation: dict[str, Any], ctx: dict[str, Any], s: CollectSummary
) -> _Task:
    field_name = ctx["field"]
    preds = [p for p in task.get("predictions") or [] if p.get("result") is not None]
    prelabels = {r["id"]: r for r in (preds[-1]["result"] if preds else []) if r.get("from_name") == field_name}
    width, height = ctx["size"]
    dets, kept, edited, added, seen = [], 0, 0, 0, set()
    for item in annotation.get("result") or []:
        if item.get("type") != "rectanglelabels" or item.get("from_name") != field_name:
            continue
        value = item["value"]
        box, rotated = _box(
            value, float(item.get("original_width") or width), float(item.get("original_height") or height)
        )
        s.rotated += rotated
        attrs: dict[str, Any] = {}
        rid = item.get("id")
        if rid in prelabels:
            seen.add(rid)
            attrs["prelabel_id"] = rid
            if _same_box(item, prelabels[rid]):
                kept += 1
            else:
                edited += 1
        else:
            added += 1
        dets.append(fo.Detection(label=str(value["rectanglelabels"][0]), bounding_box=box, **attrs))
    deleted = len(set(prelabels) - seen)
    s.kept, s.edited, s.added, s.deleted = s.kept + kept, s.edited + edited, s.added + added, s.deleted + deleted
    record = {
        **ctx["record"], "status": DONE, "annotation": int(annotation["id"]),
        "annotator": ctx["users"].get(int(annotation.get("completed_by") or 0), str(annotation.get("completed_by"))),
        "annotated_at": annotation.get("updated_at") or annotation.get("created_at"), "collected_at": now_utc(),
        "boxes": len(dets), "kept": kept, "edited": edited, "deleted": deleted, "added": added,
    }  # fmt: skip
    return _Task(dets, record)


def collect(
    dataset: str,
    *,
    anno_key: str | None = None,
    url: str | None = None,
    api_key: str | None = None,
) -> CollectSummary:
    """Write the finished annotations of the data set's annotation runs into its ground truth.

    For each run (or only ``anno_key``) that has samples not yet collected or may have changed,
    the backend's tasks are read; a task with a submitted (not skipped) annotation is finished and
    its latest annotation replaces the sample's ground truth (an empty annotation: no objects);
    other tasks stay pending. A sample collected before is written again only when its latest
    annotation changed. Each ground-truth box keeps the id of the pre-label it came from in
    ``prelabel_id``.

    Raises:
        ConfigError: no server configured, or ``anno_key`` is not one of cvactive's runs.
        StoreError: the data set is missing, or the server cannot be reached or refuses the token.
    """
    url, api_key = credentials(url, api_key)
    client = LabelStudio(url, api_key)
    users = client.users()  # reachable, token accepted: before the database
    ds = load_dataset(dataset)
    runs = cva_runs(ds)
    if anno_key is not None and anno_key not in runs:
        raise ConfigError(
            f"data set {ds.name!r} has no annotation run {anno_key!r}; its runs: {', '.join(runs) or 'none'}"
        )
    summary = CollectSummary(dataset=ds.name, runs=[anno_key] if anno_key else runs)
    if not summary.runs:
        return summary
    with dataset_lock(ds, "annotate", timeout_s=120, ttl_s=900):
        ds.reload()
        reconcile(ds, url, api_key)
        for key in summary.runs:
            _collect_run(ds, key, client, users, summary)
    return summary


def _collect_run(ds: Any, key: str, client: LabelStudio, users: dict[int, str], summary: CollectSummary) -> None:
    import fiftyone as fo

    info = dict((ds.info.get(ANNO_INFO) or {}).get(key) or {})
    results = ds.load_annotation_results(key, url=client.url, api_key=client._key)
    field_name = info.get("field") or next(iter(results.config.label_schema))
    label_field = info.get("label_field", "ground_truth")
    sent = sent_records(ds)
    mine = {sid: int(task) for task, sid in results.uploaded_tasks.items() if sent.get(sid, {}).get("key") == key}
    if not mine:
        return
    tasks = client.tasks(int(results.project_id))
    view = ds.select(list(mine))
    sizes = {str(i): (m.width, m.height) if m is not None else (0, 0) for i, m in zip(*view.values(["id", "metadata"]))}
    gt: dict[str, Any] = {}
    records: dict[str, dict[str, Any]] = {}
    for sid, task_id in mine.items():
        task = tasks.get(task_id)
        if task is None:
            summary.missing_tasks += 1
            summary.pending += sent[sid].get("status") != DONE
            continue
        submitted = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
        if not submitted:
            summary.pending += 1
            summary.skipped += bool(task.get("annotations"))
            continue
        latest = max(submitted, key=lambda a: (a.get("updated_at") or "", a["id"]))
        before = sent[sid]
        stamp = latest.get("updated_at") or latest.get("created_at")
        if (
            before.get("status") == DONE
            and before.get("annotation") == latest["id"]
            and before.get("annotated_at") == stamp
        ):
            summary.unchanged += 1
            continue
        record = {k: before[k] for k in ("key", "backend", "project", "task", "sent_at") if k in before}
        ctx = {"field": field_name, "size": sizes.get(sid, (0, 0)), "users": users, "record": record}
        converted = _convert(fo, task, latest, ctx, summary)
        gt[sid] = fo.Detections(detections=converted.detections)
        records[sid] = converted.record
        summary.collected += 1
        summary.updated += before.get("status") == DONE
        summary.boxes += len(converted.detections)
        who = converted.record["annotator"]
        summary.annotators[who] = summary.annotators.get(who, 0) + 1
    if not gt:
        return
    ds.set_values(label_field, gt, key_field="id")  # ground truth first: a killed collect redoes these samples
    ds.set_values(ANNO_FIELD, {**{s: sent[s] for s in sent if s in records}, **records}, key_field="id")
    done = ds.select(sorted(records))
    done.tag_samples(LABELED)
    done.untag_samples(TO_ANNOTATE)
    classes = info.get("classes")
    if classes and not ds.default_classes:
        with dataset_lock(ds):
            ds.reload()
            if not ds.default_classes:
                ds.default_classes = list(classes)
                ds.save()
