"""Per-class AP round by round: FiftyOne's COCO-style evaluation, a history, a plot and drop warnings.

Each round runs ``evaluate_detections(method="coco", compute_mAP=True)`` with the IoU sweep and
the confidence threshold pinned (and recorded), so rounds stay comparable. Per class it reports
AP50:95 (``results.mAP(classes=[c])``) and AP50 (the 0.5 row of the precision array FiftyOne
computes, averaged over the 101 recall points as COCO does). The history lives in the data set's
``info["cvactive_eval_history"]`` and in a JSON file; a PNG shows each class's AP over rounds,
and a class whose AP fell by more than ``ap_drop_warning`` since the previous round is a warning.

:func:`ap_per_iou` needs no FiftyOne; nor do the history's helpers (:mod:`cvactive.store.eval_history`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cvactive._config import config_schema
from cvactive.errors import ConfigError, StoreError
from cvactive.store._lock import dataset_lock
from cvactive.store.eval_history import ap_drops, merge_history, plot_history, previous_round

log = logging.getLogger(__name__)

#: COCO's IoU sweep, 0.50:0.05:0.95.
COCO_IOU_THRESHS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
HISTORY_KEY = "cvactive_eval_history"
#: How a round is stored in FiftyOne (see :func:`evaluate_round`).
STORE_MODES: tuple[str, ...] = ("results", "marks", "none")


@dataclass
class RoundResult:
    """One evaluation round.

    Attributes:
        round: the round number.
        dataset, pred_field, gt_field: what was compared.
        samples: samples evaluated (those with both fields, optionally one tag).
        map: mAP over IoU ``iou_threshs`` (COCO-style, classes with ground truth).
        map50: mAP at IoU 0.5 (``None`` if 0.5 is not in the sweep).
        per_class: class -> ``{"ap": AP50:95, "ap50": AP50, "gt": boxes, "pred": boxes}``; AP is
            ``None`` for a class with no ground truth in the evaluated samples.
        iou_threshs: the IoU sweep; ``iou``: the IoU that marks TP/FP on the labels.
        conf_threshold: predictions below it were ignored.
        eval_key: the FiftyOne evaluation key the round is stored under (``None`` when not stored).
        warnings: per-class AP drops beyond ``ap_drop_warning``.
        time: when it ran (UTC, ISO 8601).
    """

    round: int
    dataset: str
    pred_field: str
    gt_field: str
    samples: int
    map: float | None
    map50: float | None
    per_class: dict[str, dict[str, Any]]
    iou_threshs: list[float]
    iou: float
    conf_threshold: float
    eval_key: str | None
    warnings: list[str] = field(default_factory=list)
    time: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_pandas(self) -> Any:
        """Per-class AP as a DataFrame (one row per class)."""
        import pandas as pd

        return pd.DataFrame.from_dict(self.per_class, orient="index")

    def table(self) -> str:
        """A fixed-width table of per-class AP50 and AP50:95, then the mAP."""
        width = max([5, *(len(c) for c in self.per_class)])
        lines = [f"{'class':<{width}}  {'AP50':>7}  {'AP50:95':>7}  {'gt':>5}  {'pred':>5}"]
        for name, row in self.per_class.items():
            lines.append(
                f"{name:<{width}}  {_fmt(row['ap50']):>7}  {_fmt(row['ap']):>7}  {row['gt']:>5}  {row['pred']:>5}"
            )
        lines.append(f"{'mAP':<{width}}  {_fmt(self.map50):>7}  {_fmt(self.map):>7}")
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _valid(value: float) -> float | None:
    v = float(value)
    return None if v < 0 or math.isnan(v) else v


def ap_per_iou(precision: np.ndarray) -> np.ndarray:
    """COCO AP per IoU threshold and class from a ``(T, K, R)`` precision array (``-1`` = no ground truth).

    Returns ``(T, K)``: the mean precision over the ``R`` recall points, ``-1`` where a class
    has no ground truth.
    """
    p = np.asarray(precision, dtype=np.float64)
    if p.ndim != 3:
        raise ValueError(f"precision must be (T, K, R), got shape {p.shape}")
    valid = p > -1
    sums = np.where(valid, p, 0.0).sum(axis=2)
    counts = valid.sum(axis=2)
    return np.where(counts > 0, sums / np.maximum(counts, 1), -1.0)


def default_out_dir(dataset: str, data_dir: str | Path | None = None) -> Path:
    """Where evaluation history and plots go by default: ``eval/<dataset>`` under ``data_dir``
    (default: the data folder, :func:`cvactive.assets.data_dir`)."""
    if data_dir is None:
        from cvactive.assets import data_dir as default_data_dir

        data_dir = default_data_dir()
    return Path(data_dir) / "eval" / dataset


@config_schema("evaluate")
def evaluate_round(
    dataset: str,
    pred_field: str,
    gt_field: str,
    round_: int,
    *,
    iou_threshs: Sequence[float] = COCO_IOU_THRESHS,
    iou: float = 0.5,
    conf_threshold: float = 0.0,
    classes: Sequence[str] | None = None,
    tag: str | None = None,
    ap_drop_warning: float = 0.05,
    store: str = "results",
    out_dir: str | Path | None = None,
    progress: bool = False,
) -> tuple[RoundResult, Path, Path]:
    """Evaluate ``pred_field`` against ``gt_field`` for one round, record it and plot the history.

    Args:
        dataset: the FiftyOne data set.
        pred_field, gt_field: ``Detections`` fields; samples with both are evaluated.
        round_: the round number (re-evaluating a round replaces it in the history).
        iou_threshs: the pinned IoU sweep of the mAP (COCO's 0.50:0.95 by default).
        iou: the IoU that marks each label TP/FP in the App.
        conf_threshold: predictions with a lower confidence are ignored.
        classes: the classes to report (default: the data set's ``default_classes``, else the
            labels found in either field).
        tag: evaluate only samples with this tag (for example ``val``).
        ap_drop_warning: warn when a class's AP50:95 fell by more than this since the previous round.
        store: how the round is stored in FiftyOne under the evaluation key ``eval_round_<n>``
            (so ``dataset.list_evaluations()``, ``load_evaluation_results()`` and the App's
            evaluation panel show it): ``"results"`` (default) the evaluation run and its results;
            ``"marks"`` also FiftyOne's per-label TP/FP/FN marks (``eval_round_<n>`` label
            attributes, ``eval_round_<n>_tp/fp/fn`` sample counts), which FiftyOne writes sample by
            sample (slow with low-confidence predictions, see docs/fiftyone.md); ``"none"`` not
            stored. Nothing is stored when a field is evaluated against itself.
        out_dir: where ``history.json`` and ``per_class_ap.png`` go (default
            ``eval/<dataset>`` in the data folder, :func:`default_out_dir`).

    Returns:
        The :class:`RoundResult`, the history JSON path and the plot path.

    Raises:
        StoreError: missing data set or fields, or no sample has both fields.
        ConfigError: an invalid IoU sweep or threshold.
    """
    from cvactive.store._db import load_dataset

    ious = _check_thresholds(iou_threshs, conf_threshold)
    ds = load_dataset(dataset)
    view, certain = _eval_view(ds, pred_field, gt_field, tag, conf_threshold)
    classes = _classes(ds, view, pred_field, gt_field) if classes is None else list(classes)
    if store not in STORE_MODES:
        raise ConfigError(f"store must be one of {', '.join(STORE_MODES)}, got {store!r}")
    stored = store != "none" and pred_field != gt_field and not certain
    eval_key = f"eval_round_{int(round_)}" if stored else None
    with dataset_lock(ds, "evaluate", timeout_s=3600, ttl_s=3600):
        if eval_key is not None and eval_key in ds.list_evaluations():
            _delete_round(ds, eval_key)
        results = view.evaluate_detections(
            pred_field, gt_field=gt_field, eval_key=eval_key if store == "marks" else None, method="coco",
            iou=iou, iou_threshs=ious, compute_mAP=True, classes=classes, progress=progress,
        )  # fmt: skip
        if eval_key is not None and store == "results":
            _save_results(view, results, eval_key)
    result = RoundResult(
        round=int(round_), dataset=ds.name, pred_field=pred_field, gt_field=gt_field, samples=len(view),
        map=_valid(results.mAP()), map50=None, per_class=_per_class(view, results, ious, pred_field, gt_field),
        iou_threshs=ious, iou=float(iou), conf_threshold=float(conf_threshold), eval_key=eval_key,
        time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )  # fmt: skip
    map50_vals = [r["ap50"] for r in result.per_class.values() if r["ap50"] is not None]
    result.map50 = float(np.mean(map50_vals)) if map50_vals else None
    history = _record(ds, result, ap_drop_warning)
    disjoint = class_overlap_warning(view, pred_field, gt_field)
    if disjoint:
        log.warning("%s round %d: %s", ds.name, result.round, disjoint)
        result.warnings.append(disjoint)
    history_path, plot_path = _write_history(ds.name, history, out_dir)
    return result, history_path, plot_path


def _write_history(dataset: str, history: list[dict[str, Any]], out_dir: str | Path | None) -> tuple[Path, Path]:
    """``history.json`` (replaced atomically) and ``per_class_ap.png`` of a data set's rounds."""
    out = Path(out_dir) if out_dir is not None else default_out_dir(dataset)
    out.mkdir(parents=True, exist_ok=True)
    history_path = out / "history.json"
    tmp = history_path.with_suffix(f".json.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"dataset": dataset, "rounds": history}, indent=2))
    tmp.replace(history_path)
    plot_path = plot_history(history, out / "per_class_ap.png", title=f"{dataset}: per-class AP by round")
    return history_path, plot_path


def _check_thresholds(iou_threshs: Sequence[float], conf_threshold: float) -> list[float]:
    """The IoU sweep, rounded to 4 decimals, sorted, each in (0, 1]; the confidence threshold in [0, 1]."""
    ious = sorted({round(float(t), 4) for t in iou_threshs})
    if not ious or any(not 0 < t <= 1 for t in ious):
        raise ConfigError(f"iou_threshs must be values in (0, 1], got {list(iou_threshs)}")
    if not 0 <= conf_threshold <= 1:
        raise ConfigError(f"conf_threshold must lie in [0, 1], got {conf_threshold}")
    return ious


def _delete_round(ds: Any, eval_key: str) -> None:
    """Delete a stored round; its per-label marks too when it has them."""
    from fiftyone.utils.eval.base import BaseEvaluationMethod

    BaseEvaluationMethod.delete_run(ds, eval_key, cleanup=ds.has_sample_field(f"{eval_key}_tp"))


def _save_results(view: Any, results: Any, eval_key: str) -> None:
    """Register an evaluation run and its results under ``eval_key`` without per-label marks
    (FiftyOne's run API: what ``evaluate_detections(eval_key=...)`` does less the sample writes)."""
    method = results.config.build()
    method.register_run(view, eval_key)
    results._key = eval_key  # the results computed without a key carry none
    method.save_run_results(view, eval_key, results)


def _eval_view(ds: Any, pred_field: str, gt_field: str, tag: str | None, conf_threshold: float) -> tuple[Any, int]:
    """The samples to evaluate, predictions under ``conf_threshold`` hidden; and how many boxes had
    no confidence (ground truth used as predictions: ranked as confidence 1.0)."""
    from fiftyone import ViewField as F

    for name in (pred_field, gt_field):
        if not ds.has_sample_field(name):
            raise StoreError(f"data set {ds.name!r} has no field {name!r}; fields: {', '.join(ds.get_field_schema())}")
    view = ds.exists(pred_field).exists(gt_field)
    if tag is not None:
        view = view.match_tags(tag)
    if len(view) == 0:
        raise StoreError(
            f"no sample of {ds.name!r}{'' if tag is None else f' tagged {tag!r}'} has both {pred_field!r} and "
            f"{gt_field!r}; push predictions for labeled images first"
        )
    if conf_threshold > 0:
        # boxes with no confidence (ground truth used as predictions) are kept
        keep = (F("confidence") == None) | (F("confidence") >= conf_threshold)  # noqa: E711
        view = view.filter_labels(pred_field, keep, only_matches=False)
    no_conf = view.filter_labels(pred_field, F("confidence") == None).count(f"{pred_field}.detections")  # noqa: E711
    if no_conf:
        # PR curves need a confidence per box; labels without one count as certain.
        log.info("%d boxes of %s have no confidence; they are ranked as confidence 1.0", no_conf, pred_field)
        conf = F("confidence")
        view = view.set_field(f"{pred_field}.detections.confidence", (conf == None).if_else(1.0, conf))  # noqa: E711
    return view, int(no_conf)


def _classes(ds: Any, view: Any, pred_field: str, gt_field: str) -> list[str]:
    """The data set's classes, then any other label either field holds."""
    from cvactive.store.export import dataset_classes

    classes = dataset_classes(ds, gt_field)
    found = set(view.distinct(f"{gt_field}.detections.label")) | set(view.distinct(f"{pred_field}.detections.label"))
    return list(classes) + sorted(found - set(classes))


def class_overlap_warning(view: Any, pred_field: str, gt_field: str) -> str | None:
    """A warning when the predicted and the true labels share no class name (a model of another
    domain, such as COCO's on fish: every AP is 0 for that reason alone), else ``None``."""
    predicted = set(view.distinct(f"{pred_field}.detections.label"))
    truth = set(view.distinct(f"{gt_field}.detections.label"))
    if not predicted or not truth or predicted & truth:
        return None
    shown = ", ".join(sorted(predicted)[:5]) + (", ..." if len(predicted) > 5 else "")
    return (
        f"{pred_field} and {gt_field} share no class name (predicted: {shown}; true: "
        f"{', '.join(sorted(truth)[:5])}{', ...' if len(truth) > 5 else ''}): the model was trained on other "
        "classes, so its AP is 0 here; fine-tune it on this data set's classes first"
    )


def _per_class(view: Any, results: Any, ious: list[float], pred_field: str, gt_field: str) -> dict[str, dict]:
    """Class -> AP50:95, AP50, ground-truth and predicted box counts."""
    per_iou = ap_per_iou(results.precision)
    i50 = ious.index(0.5) if 0.5 in ious else None
    gt_counts = view.count_values(f"{gt_field}.detections.label")
    pred_counts = view.count_values(f"{pred_field}.detections.label")
    return {
        str(name): {
            "ap": _valid(results.mAP(classes=[name])),
            "ap50": None if i50 is None else _valid(per_iou[i50, k]),
            "gt": int(gt_counts.get(name, 0)),
            "pred": int(pred_counts.get(name, 0)),
        }
        for k, name in enumerate(results.classes)
    }


def _record(ds: Any, result: RoundResult, ap_drop_warning: float) -> list[dict[str, Any]]:
    """Warn about drops against the previous round and put the round in the data set's history."""
    with dataset_lock(ds, "history"):
        ds.reload()  # another process may have recorded a round meanwhile
        history = list(ds.info.get(HISTORY_KEY) or [])
        prev = previous_round(history, result.round)
        if prev is not None:
            result.warnings = ap_drops(prev["per_class"], result.per_class, ap_drop_warning)
            if prev.get("iou_threshs") != result.iou_threshs or prev.get("conf_threshold") != result.conf_threshold:
                result.warnings.append(
                    f"round {prev['round']} used IoU sweep {prev.get('iou_threshs')} and confidence threshold "
                    f"{prev.get('conf_threshold')}; this round {result.iou_threshs} and {result.conf_threshold}: "
                    "the rounds are not comparable"
                )
        history = merge_history(history, result.to_dict())
        ds.info[HISTORY_KEY] = history
        ds.save()
    for w in result.warnings:
        log.warning("%s round %d: %s", ds.name, result.round, w)
    return history
