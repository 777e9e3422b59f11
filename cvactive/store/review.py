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

from cvactive.errors import StoreError
from cvactive.store._db import connect, load_dataset
from cvactive.store.convert import APPROVED, FP, MISSED, REJECTED, REVIEW_VIEW, TO_REVIEW, WRONG_CLASS

log = logging.getLogger(__name__)

#: Tags pull puts on samples.
LABELED, TO_ANNOTATE = "labeled", "to-annotate"


@dataclass
class PullSummary:
    """What a pull did.

    Attributes:
        approved: approved samples whose ground truth was written.
        gt_boxes: boxes written as ground truth.
        fp_removed: predictions tagged ``fp`` left out.
        wrong_class_removed: predictions tagged ``wrong-class`` left out.
        kept_existing: approved samples that already had ground truth (left as they were).
        rejected: rejected samples queued for full annotation.
        corrections: approved samples queued for correction (``wrong-class``/``missed`` tags).
        pending: samples still tagged ``to-review`` with no verdict.
        out: the folder written (``pull.json``, ``annotate.txt``, ``ground_truth.jsonl``).
    """

    dataset: str
    approved: int = 0
    gt_boxes: int = 0
    fp_removed: int = 0
    wrong_class_removed: int = 0
    kept_existing: int = 0
    rejected: int = 0
    corrections: int = 0
    pending: int = 0
    out: str = ""
    annotate: list[dict[str, Any]] = field(default_factory=list)


def split_reviewed(detections: list[Any]) -> tuple[list[Any], int, int, bool]:
    """Split a reviewed sample's predictions: (kept, fp count, wrong-class count, any ``missed`` tag)."""
    kept, fp, wrong, missed = [], 0, 0, False
    for det in detections:
        tags = set(det.tags or ())
        missed = missed or MISSED in tags
        if FP in tags:
            fp += 1
        elif WRONG_CLASS in tags:
            wrong += 1
        else:
            kept.append(det)
    return kept, fp, wrong, missed


def pull_reviews(
    dataset: str,
    out: str | Path,
    *,
    pred_field: str = "predictions",
    gt_field: str = "ground_truth",
    overwrite: bool = False,
) -> PullSummary:
    """Turn the reviewers' tags into ground truth and annotation queues; write the results to ``out``.

    Args:
        dataset: the FiftyOne data set.
        out: a folder for ``pull.json`` (the summary), ``annotate.txt`` (one image path per line:
            rejected samples and those needing correction) and ``ground_truth.jsonl`` (the new
            ground truth as cvactive records, pixel ``xyxy``).
        pred_field: the reviewed predictions.
        gt_field: where ground truth goes.
        overwrite: replace ground truth an approved sample already has (kept by default).

    Raises:
        StoreError: the data set does not exist or has no ``pred_field``.
    """
    import fiftyone as fo

    from cvactive.io import JsonlWriter
    from cvactive.record import ImageRecord

    ds = load_dataset(dataset)
    if not ds.has_sample_field(pred_field):
        raise StoreError(f"data set {ds.name!r} has no field {pred_field!r}; push predictions first")
    has_gt = ds.has_sample_field(gt_field)
    summary = PullSummary(dataset=ds.name)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    approved = ds.match_tags(APPROVED).match_tags(REJECTED, bool=False)
    if len(approved):
        approved.compute_metadata(progress=False)
    gt_values: dict[str, Any] = {}
    tag_add: dict[str, set[str]] = {}
    classes = list(ds.default_classes or [])
    with JsonlWriter(out_dir / "ground_truth.jsonl") as writer:
        fields = ["id", "filepath", "tags", f"{pred_field}.detections", "metadata"]
        cols = approved.values(fields + ([gt_field] if has_gt else []))
        gts = cols[5] if has_gt else [None] * len(cols[0])
        for sid, path, tags, dets, meta, gt in zip(*cols[:5], gts):
            kept, fp, wrong, missed = split_reviewed(list(dets or []))
            missed = missed or MISSED in (tags or ())
            summary.fp_removed += fp
            summary.wrong_class_removed += wrong
            if wrong or missed:
                summary.corrections += 1
                reasons = [r for r, on in ((f"{wrong} wrong-class label(s)", wrong), ("missed objects", missed)) if on]
                summary.annotate.append({"filepath": path, "id": sid, "reason": "correct: " + ", ".join(reasons)})
                tag_add.setdefault(sid, set()).add(TO_ANNOTATE)
            if gt is not None and not overwrite:
                summary.kept_existing += 1
                continue
            new = [fo.Detection(label=d.label, bounding_box=list(d.bounding_box)) for d in kept]
            gt_values[sid] = fo.Detections(detections=new)
            tag_add.setdefault(sid, set()).add(LABELED)
            summary.approved += 1
            summary.gt_boxes += len(new)
            for d in kept:
                if d.label not in classes:
                    classes.append(d.label)
            w, h = int(meta.width), int(meta.height)
            tlwh = np.array([d.bounding_box for d in kept], np.float64).reshape(-1, 4)
            xyxy = np.stack(
                [tlwh[:, 0] * w, tlwh[:, 1] * h, (tlwh[:, 0] + tlwh[:, 2]) * w, (tlwh[:, 1] + tlwh[:, 3]) * h], 1
            )
            class_ids = [classes.index(d.label) for d in kept]
            writer.write(
                ImageRecord(
                    source=path,
                    width=w,
                    height=h,
                    xyxy=xyxy.astype(np.float32),
                    confidence=np.ones(len(kept), np.float32),
                    class_id=np.array(class_ids, np.int64),
                    names=dict(enumerate(classes)),
                    extra={"sample_id": sid},
                )
            )
    rejected = ds.match_tags(REJECTED)
    for sid, path in zip(*rejected.values(["id", "filepath"])):
        summary.rejected += 1
        summary.annotate.append({"filepath": path, "id": sid, "reason": "rejected: annotate in full"})
        tag_add.setdefault(sid, set()).add(TO_ANNOTATE)
    if gt_values:
        ds.set_values(gt_field, gt_values, key_field="id")
    if tag_add:
        old = dict(zip(*ds.select(list(tag_add)).values(["id", "tags"])))
        new_tags = {sid: sorted((set(old.get(sid) or ()) - {TO_REVIEW}) | add) for sid, add in tag_add.items()}
        ds.set_values("tags", new_tags, key_field="id")
    if not ds.default_classes and classes:
        ds.default_classes = classes
        ds.save()
    summary.pending = len(ds.match_tags(TO_REVIEW))
    summary.out = str(out_dir)
    (out_dir / "annotate.txt").write_text("".join(f"{a['filepath']}\n" for a in summary.annotate))
    (out_dir / "pull.json").write_text(json.dumps(asdict(summary), indent=2))
    return summary


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


def launch_review(
    dataset: str, *, port: int = 5151, address: str = "localhost", view: str | None = REVIEW_VIEW
) -> tuple[Any, str]:
    """Start the FiftyOne App server (remote mode) on the data set's ``view``; return (session, URL).

    Remote mode starts the server without opening a browser: on a server, forward the port
    (``ssh -N -L 5151:localhost:5151 host``) or pass ``address="0.0.0.0"``.

    Raises:
        StoreError: missing data set, or the port is taken.
    """
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
    session = fo.launch_app(ds, view=app_view, port=port, address=address, remote=True, auto=False)
    return session, str(session.url)
