"""Review in the FiftyOne App, and pulling the reviewers' verdicts back.

Reviewers open the ``review-queue`` saved view (:func:`launch_review`), tag samples
``approved`` or ``rejected`` and tag wrong labels ``fp``, ``wrong-class`` or ``missed``.
:func:`pull_reviews` then turns each approved sample's predictions, less the labels tagged
``fp`` or ``wrong-class``, into ground truth; queues rejected samples for full annotation;
queues approved samples with a ``wrong-class`` or ``missed`` tag (on the sample or a label)
for correction, since their ground truth is incomplete; and writes what it did to a folder.
"""

from __future__ import annotations

import json
import logging
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cvactive.boxes import fiftyone_to_xyxy
from cvactive.errors import StoreError
from cvactive.store._db import connect, load_dataset
from cvactive.store._lock import dataset_lock
from cvactive.store.merge import REVIEWED_SUFFIX
from cvactive.store.queue import review_settings
from cvactive.store.tags import (
    APPROVED,
    FP,
    LABELED,
    MISSED,
    REJECTED,
    REVIEW_VIEW,
    TO_ANNOTATE,
    TO_REVIEW,
    WRONG_CLASS,
)

log = logging.getLogger(__name__)


@dataclass
class PullSummary:
    """What a pull did.

    Attributes:
        approved: approved samples whose ground truth was written.
        gt_boxes: boxes written as ground truth.
        fp_removed: predictions tagged ``fp`` left out.
        wrong_class_removed: predictions tagged ``wrong-class`` left out.
        below_display: predictions under the review queue's display confidence left out (the
            reviewer did not see them).
        kept_existing: approved samples that already had ground truth (left as they were).
        rejected: rejected samples queued for full annotation.
        corrections: approved samples queued for correction (``wrong-class``/``missed`` tags).
        pending: samples still tagged ``to-review`` with no verdict.
        min_conf: the confidence below which predictions were left out.
        out: the folder written (``pull.json``, ``annotate.txt``, ``ground_truth.jsonl``).
        annotate: the samples queued for annotation, with the reason.
        reviewed: each sample with a verdict: its id, file, sample tags and label tag counts.
    """

    dataset: str
    approved: int = 0
    gt_boxes: int = 0
    fp_removed: int = 0
    wrong_class_removed: int = 0
    below_display: int = 0
    kept_existing: int = 0
    rejected: int = 0
    corrections: int = 0
    pending: int = 0
    min_conf: float = 0.0
    out: str = ""
    annotate: list[dict[str, Any]] = field(default_factory=list)
    reviewed: list[dict[str, Any]] = field(default_factory=list)


def split_reviewed(detections: list[Any], min_conf: float = 0.0) -> tuple[list[Any], int, int, bool, int]:
    """Split a reviewed sample's predictions: (kept, fp count, wrong-class count, any ``missed`` tag,
    boxes below ``min_conf``). A box with no confidence counts as certain."""
    kept, fp, wrong, missed, low = [], 0, 0, False, 0
    for det in detections:
        tags = set(det.tags or ())
        missed = missed or MISSED in tags
        conf = getattr(det, "confidence", None)
        if FP in tags:
            fp += 1
        elif WRONG_CLASS in tags:
            wrong += 1
        elif conf is not None and conf < min_conf:
            low += 1
        else:
            kept.append(det)
    return kept, fp, wrong, missed, low


def label_tag_counts(*detection_lists: list[Any] | None) -> dict[str, int]:
    """How many boxes carry each label tag, over several lists of detections."""
    counts: dict[str, int] = {}
    for dets in detection_lists:
        for det in dets or ():
            for tag in det.tags or ():
                counts[tag] = counts.get(tag, 0) + 1
    return dict(sorted(counts.items()))


def _to_record(path: str, meta: Any, kept: list[Any], classes: list[str], sid: str) -> Any:
    """Approved boxes as a cvactive record (pixel ``xyxy``), growing ``classes`` with new labels."""
    from cvactive.record import ImageRecord

    for d in kept:
        if d.label not in classes:
            classes.append(d.label)
    w, h = int(meta.width), int(meta.height)
    xyxy = fiftyone_to_xyxy([d.bounding_box for d in kept], w, h)
    return ImageRecord(
        source=path, width=w, height=h, xyxy=xyxy.astype(np.float32),
        confidence=np.ones(len(kept), np.float32), class_id=np.array([classes.index(d.label) for d in kept], np.int64),
        names=dict(enumerate(classes)), extra={"sample_id": sid},
    )  # fmt: skip


@dataclass
class _Pull:
    """What a pull collects before writing: ground truth per sample id, tags to add per tag."""

    gt_values: dict[str, Any] = field(default_factory=dict)
    add: dict[str, set[str]] = field(default_factory=dict)  # tag -> sample ids
    done: set[str] = field(default_factory=set)  # samples that leave the review queue


def _approve(ds: Any, summary: PullSummary, plan: _Pull, writer: Any, opts: dict[str, Any]) -> None:
    """Approved samples: their shown, untagged predictions become ground truth; corrections queued."""
    import fiftyone as fo

    pred_field, gt_field, reviewed_field = opts["pred_field"], opts["gt_field"], opts["pred_field"] + REVIEWED_SUFFIX
    approved = ds.match_tags(APPROVED).match_tags(REJECTED, bool=False)
    if len(approved):
        approved.compute_metadata(progress=False)
    extra = [f for f in (gt_field, reviewed_field) if ds.has_sample_field(f)]
    cols = approved.values(["id", "filepath", "tags", f"{pred_field}.detections", "metadata", *extra])
    by_name = dict(zip(extra, cols[5:]))
    gts = by_name.get(gt_field, [None] * len(cols[0]))
    kept_aside = [k.detections if k is not None else [] for k in by_name.get(reviewed_field, [None] * len(cols[0]))]
    for sid, path, tags, dets, meta, gt, aside in zip(*cols[:5], gts, kept_aside):
        kept, fp, wrong, missed, low = split_reviewed(list(dets or []), opts["min_conf"])
        _, _, wrong_aside, missed_aside, _ = split_reviewed(list(aside or []))
        wrong, missed = wrong + wrong_aside, missed or missed_aside or MISSED in (tags or ())
        summary.fp_removed += fp
        summary.wrong_class_removed += wrong - wrong_aside
        summary.below_display += low
        summary.reviewed.append(
            {"id": sid, "filepath": path, "tags": sorted(tags or ()), "label_tags": label_tag_counts(dets, aside)}
        )
        plan.done.add(sid)
        if wrong or missed:
            summary.corrections += 1
            reasons = [r for r, on in ((f"{wrong} wrong-class label(s)", wrong), ("missed objects", missed)) if on]
            summary.annotate.append({"filepath": path, "id": sid, "reason": "correct: " + ", ".join(reasons)})
            plan.add.setdefault(TO_ANNOTATE, set()).add(sid)
        if gt is not None and not opts["overwrite"]:
            summary.kept_existing += 1
            continue
        plan.gt_values[sid] = fo.Detections(
            detections=[fo.Detection(label=d.label, bounding_box=list(d.bounding_box)) for d in kept]
        )
        plan.add.setdefault(LABELED, set()).add(sid)
        summary.approved += 1
        summary.gt_boxes += len(kept)
        writer.write(_to_record(path, meta, kept, opts["classes"], sid))


def _reject(ds: Any, summary: PullSummary, plan: _Pull, pred_field: str) -> None:
    rejected = ds.match_tags(REJECTED)
    has_pred = ds.has_sample_field(pred_field)
    cols = rejected.values(["id", "filepath", "tags", *([f"{pred_field}.detections"] if has_pred else [])])
    dets_col = cols[3] if has_pred else [None] * len(cols[0])
    for sid, path, tags, dets in zip(cols[0], cols[1], cols[2], dets_col):
        summary.rejected += 1
        summary.annotate.append({"filepath": path, "id": sid, "reason": "rejected: annotate in full"})
        summary.reviewed.append(
            {"id": sid, "filepath": path, "tags": sorted(tags or ()), "label_tags": label_tag_counts(dets)}
        )
        plan.add.setdefault(TO_ANNOTATE, set()).add(sid)
        plan.done.add(sid)


def pull_reviews(
    dataset: str,
    out: str | Path,
    *,
    pred_field: str = "predictions",
    gt_field: str = "ground_truth",
    overwrite: bool = False,
    min_conf: float | None = None,
) -> PullSummary:
    """Turn the reviewers' tags into ground truth and annotation queues; write the results to ``out``.

    Args:
        dataset: the FiftyOne data set.
        out: a folder for ``pull.json`` (the summary, with each reviewed sample's tags and label
            tags), ``annotate.txt`` (one image path per line: rejected samples and those needing
            correction) and ``ground_truth.jsonl`` (the new ground truth as cvactive records, pixel ``xyxy``).
        pred_field: the reviewed predictions.
        gt_field: where ground truth goes.
        overwrite: replace ground truth an approved sample already has (kept by default).
        min_conf: predictions below this confidence are not ground truth (default: the review
            queue's display confidence for ``pred_field``, the boxes the reviewer saw; else 0).

    Tags change in the database by ``$addToSet``/``$pull`` only (``labeled``, ``to-annotate``
    added, ``to-review`` removed), so tags a reviewer adds meanwhile are kept.

    Raises:
        StoreError: the data set does not exist or has no ``pred_field``.
    """
    from cvactive.io import JsonlWriter

    ds = load_dataset(dataset)
    if not ds.has_sample_field(pred_field):
        raise StoreError(f"data set {ds.name!r} has no field {pred_field!r}; push predictions first")
    if min_conf is None:
        settings = review_settings(ds)
        min_conf = float(settings.get("display_conf", 0.0)) if settings.get("label_field") == pred_field else 0.0
    summary = PullSummary(dataset=ds.name, min_conf=float(min_conf))
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    classes = list(ds.default_classes or [])
    opts = {"pred_field": pred_field, "gt_field": gt_field, "overwrite": overwrite, "min_conf": min_conf}
    plan = _Pull()
    with JsonlWriter(out_dir / "ground_truth.jsonl") as writer:
        _approve(ds, summary, plan, writer, {**opts, "classes": classes})
    _reject(ds, summary, plan, pred_field)
    _write_pull(ds, plan, gt_field, classes)
    for item in summary.reviewed:  # the tags as the pull left them
        added = {tag for tag, ids in plan.add.items() if item["id"] in ids}
        item["tags"] = sorted((set(item["tags"]) - {TO_REVIEW}) | added)
    summary.pending = len(ds.match_tags(TO_REVIEW))
    summary.out = str(out_dir)
    (out_dir / "annotate.txt").write_text("".join(f"{a['filepath']}\n" for a in summary.annotate))
    (out_dir / "pull.json").write_text(json.dumps(asdict(summary), indent=2))
    return summary


def _write_pull(ds: Any, plan: _Pull, gt_field: str, classes: list[str]) -> None:
    """Ground truth, then tags (atomic adds and removes), then the class list."""
    if plan.gt_values:
        ds.set_values(gt_field, plan.gt_values, key_field="id")
    for tag, ids in plan.add.items():
        ds.select(sorted(ids)).tag_samples(tag)
    if plan.done:
        ds.select(sorted(plan.done)).untag_samples(TO_REVIEW)
    if classes and not ds.default_classes:
        with dataset_lock(ds):
            ds.reload()
            if not ds.default_classes:
                ds.default_classes = classes
                ds.save()


def port_free(port: int, address: str = "127.0.0.1") -> bool:
    """True when nothing listens on ``address:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address if address not in ("localhost", "") else "127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: the App's default address: this machine only
LOOPBACK = "127.0.0.1"
#: addresses that reach only this machine
LOOPBACKS = frozenset({"127.0.0.1", "localhost", "::1"})


def exposed_warning(address: str, port: int) -> str:
    """What FiftyOne's App gives whoever reaches ``address:port`` (one line)."""
    return (
        f"warning: the FiftyOne App on {address}:{port} has no authentication: anyone who can reach this port can "
        "read and change the data sets and read any file this process can read (GET /media?filepath=/any/file)"
    )


def check_address(address: str, port: int, *, expose: bool = False) -> None:
    """Refuse a port outside 1-65535, and an address other than loopback unless ``expose``.

    FiftyOne's App has no authentication, and its ``/media?filepath=`` route answers with any
    file the server process can read; on a non-loopback address that is everyone on the network.

    Raises:
        ConfigError: the port or the address.
    """
    from cvactive.errors import ConfigError

    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigError(f"--port must be a TCP port in 1-65535, got {port}")
    if address not in LOOPBACKS and not expose:
        raise ConfigError(
            f"--address {address} would serve the FiftyOne App beyond this machine, without authentication and "
            "with read access to any file this process can read; add --expose to do it anyway, or keep the "
            f"default {LOOPBACK} and forward the port (ssh -N -L {port}:127.0.0.1:{port} host)"
        )


def launch_review(
    dataset: str,
    *,
    port: int = 5151,
    address: str = LOOPBACK,
    view: str | None = REVIEW_VIEW,
    expose: bool = False,
) -> tuple[Any, str]:
    """Start the FiftyOne App server (remote mode) on the data set's ``view``; return (session, URL).

    Remote mode starts the server without opening a browser. It listens on loopback
    (``127.0.0.1``) unless ``expose``: on a server, forward the port
    (``ssh -N -L 5151:127.0.0.1:5151 host``); ``address="0.0.0.0", expose=True`` serves every
    interface, and with it every file the process can read (:func:`check_address`).

    Raises:
        ConfigError: a port outside 1-65535, or a non-loopback address without ``expose``.
        StoreError: missing data set, or the port is taken.
    """
    check_address(address, port, expose=expose)
    ds = load_dataset(dataset)
    fo = connect()
    if not port_free(port, address):
        raise StoreError(f"port {port} on {address} is already in use; pick another with --port")
    app_view = None
    if view:
        if ds.has_saved_view(view):
            app_view = ds.load_saved_view(view)
        else:
            log.warning("data set %s has no saved view %r; showing all of it", ds.name, view)
    from cvactive.store.plugins import quiet_removed_app_options, use_review_plugin

    use_review_plugin()  # the App server it starts loads the verdict buttons (FIFTYONE_PLUGINS_DIR)
    quiet_removed_app_options()
    session = fo.launch_app(ds, view=app_view, port=port, address=address, remote=True, auto=False)
    return session, str(session.url)
