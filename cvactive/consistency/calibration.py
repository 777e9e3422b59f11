"""Temperature calibration of detection confidences, detection ECE and reliability diagrams.

A YOLO class score is a sigmoid ``s = sigmoid(z)``. Temperature scaling (Guo et al., 2017)
replaces it with ``sigmoid(z / T)``: ``T > 1`` softens an over-confident model, ``T < 1``
sharpens an under-confident one, and the order of the scores never changes (so the boxes,
classes and NMS are the same). ``T`` is fitted by minimising the binary cross-entropy of each
prediction's confidence against whether it is a true positive: a prediction is correct when it
matches an unmatched ground-truth box of the same class with IoU >= 0.5, taken in order of
falling confidence (the COCO rule).

The detection expected calibration error (D-ECE, Küppers et al., 2020) bins the predictions by
confidence and averages ``|precision(bin) - mean confidence(bin)|`` weighted by the bin's share
of predictions. A :class:`CalibrationReport` gives D-ECE before and after on the fitting images
and on held-out images, and draws the reliability diagram.

The maths here is pure numpy/scipy; :func:`collect_predictions` is the adapter that runs a
detector over a labeled YOLO split.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cvactive.consistency.matching import box_iou
from cvactive.errors import ConfigError, DatasetError
from cvactive.record import ImageRecord

if TYPE_CHECKING:
    from cvactive.detector import Detector

_CLIP = 1e-7


def logit(scores: np.ndarray) -> np.ndarray:
    """``log(s / (1 - s))`` of scores clipped to ``[1e-7, 1 - 1e-7]``."""
    s = np.clip(np.asarray(scores, np.float64), _CLIP, 1 - _CLIP)
    return np.log(s) - np.log1p(-s)


def apply_temperature(scores: np.ndarray, temperature: float) -> np.ndarray:
    """``sigmoid(logit(s) / T)`` element-wise, same shape and dtype (float32 stays float32)."""
    if not temperature > 0:
        raise ConfigError(f"temperature must be positive, got {temperature}")
    arr = np.asarray(scores)
    out = 1.0 / (1.0 + np.exp(-logit(arr) / float(temperature)))
    return out.astype(arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.float64)


def fit_temperature(confidence: np.ndarray, correct: np.ndarray, bounds: tuple[float, float] = (0.02, 50.0)) -> float:
    """The temperature minimising the binary cross-entropy of ``confidence`` against ``correct``.

    Args:
        confidence: ``(N,)`` confidences in [0, 1].
        correct: ``(N,)`` bool, whether each prediction is a true positive.
        bounds: the search interval of ``T``.
    """
    from scipy.optimize import minimize_scalar

    z = logit(np.asarray(confidence).reshape(-1))
    y = np.asarray(correct, np.float64).reshape(-1)
    if z.size == 0:
        raise DatasetError("no predictions to fit a temperature on: lower --conf or use a larger split")
    if y.min() == y.max():
        kind = "true" if y[0] else "false"
        raise DatasetError(f"every one of the {y.size} predictions is a {kind} positive; a temperature needs both")

    def nll(log_t: float) -> float:
        q = z / np.exp(log_t)
        # log(1 + exp(-q)) for positives, log(1 + exp(q)) for negatives, computed stably.
        return float(np.mean(np.logaddexp(0.0, -q) * y + np.logaddexp(0.0, q) * (1 - y)))

    res = minimize_scalar(nll, bounds=(np.log(bounds[0]), np.log(bounds[1])), method="bounded")
    return float(np.exp(res.x))


@dataclass
class Reliability:
    """Per confidence bin: its edges, the predictions in it, their mean confidence and precision."""

    edges: np.ndarray
    count: np.ndarray
    confidence: np.ndarray
    precision: np.ndarray

    @property
    def ece(self) -> float:
        """The detection expected calibration error of these bins."""
        total = self.count.sum()
        if total == 0:
            return 0.0
        gap = np.abs(self.precision - self.confidence)
        return float(np.sum(np.where(self.count > 0, gap, 0.0) * self.count) / total)


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> Reliability:
    """Equal-width confidence bins over [0, 1] with each bin's precision (empty bins are NaN)."""
    if bins < 1:
        raise ConfigError(f"bins must be at least 1, got {bins}")
    c = np.asarray(confidence, np.float64).reshape(-1)
    y = np.asarray(correct, np.float64).reshape(-1)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(c, edges[1:-1], right=True), 0, bins - 1)
    count = np.bincount(which, minlength=bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(which, weights=c, minlength=bins) / count
        prec = np.bincount(which, weights=y, minlength=bins) / count
    return Reliability(edges, count.astype(np.int64), conf, prec)


def detection_ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """D-ECE: ``sum_b n_b / N * |precision_b - confidence_b|`` over equal-width bins."""
    return reliability(confidence, correct, bins).ece


def match_to_truth(
    xyxy: np.ndarray,
    class_id: np.ndarray,
    confidence: np.ndarray,
    gt_xyxy: np.ndarray,
    gt_class: np.ndarray,
    iou: float = 0.5,
) -> np.ndarray:
    """Which predictions of one image are true positives (COCO rule: by falling confidence, each
    ground-truth box matched at most once, same class, IoU >= ``iou``); ``(N,)`` bool."""
    n = len(confidence)
    correct = np.zeros(n, bool)
    if n == 0 or len(gt_class) == 0:
        return correct
    ious = box_iou(xyxy, gt_xyxy)
    same = np.asarray(class_id)[:, None] == np.asarray(gt_class)[None, :]
    ious = np.where(same, ious, -1.0)
    taken = np.zeros(len(gt_class), bool)
    for i in np.argsort(-np.asarray(confidence), kind="stable"):
        cand = np.where(taken, -1.0, ious[i])
        j = int(np.argmax(cand))
        if cand[j] >= iou:
            taken[j] = True
            correct[i] = True
    return correct


@dataclass
class ImagePredictions:
    """One labeled image's predictions: confidences and whether each is a true positive."""

    source: str
    confidence: np.ndarray
    correct: np.ndarray
    ground_truth: int


@dataclass
class Calibration:
    """A fitted temperature and where it came from; :meth:`apply` rescales a record's scores."""

    temperature: float
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (isinstance(self.temperature, (int, float)) and np.isfinite(self.temperature) and self.temperature > 0):
            raise ConfigError(f"temperature must be a positive number, got {self.temperature!r}")
        self.temperature = float(self.temperature)

    def apply(self, record: ImageRecord) -> ImageRecord:
        """A new record with every class score and confidence passed through the temperature."""
        if self.temperature == 1.0 or len(record) == 0:
            return record
        scores = None if record.class_scores is None else apply_temperature(record.class_scores, self.temperature)
        return replace(record, class_scores=scores, confidence=apply_temperature(record.confidence, self.temperature))

    def save(self, path: str | Path) -> Path:
        """Write ``{"temperature": T, ...meta}`` as JSON."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps({"temperature": self.temperature, **self.meta}, indent=2) + "\n")
        return p

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        """Read a calibration JSON written by :meth:`save` (``cvactive calibrate --out``)."""
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"calibration file {str(p)!r} does not exist; write one with cvactive calibrate")
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(f"{p}: not valid JSON ({err})") from err
        if not isinstance(data, dict) or "temperature" not in data:
            raise ConfigError(f"{p}: expected a JSON object with a 'temperature' key")
        meta = {k: v for k, v in data.items() if k != "temperature"}
        return cls(data["temperature"], meta)


@dataclass
class CalibrationReport:
    """Temperature fitted on some images, D-ECE before/after on those and on held-out images."""

    temperature: float
    bins: int
    iou: float
    fit_images: int
    heldout_images: int
    fit_predictions: int
    heldout_predictions: int
    ece_fit_before: float
    ece_fit_after: float
    ece_heldout_before: float
    ece_heldout_after: float
    before: Reliability
    after: Reliability

    def summary(self) -> dict[str, Any]:
        """The figures as a JSON-ready dict (without the per-bin arrays)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("before", "after")}
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in out.items()}

    def calibration(self, **meta: Any) -> Calibration:
        """The :class:`Calibration` to save, carrying this report's figures."""
        figures = {k: v for k, v in self.summary().items() if k != "temperature"}
        return Calibration(self.temperature, {**figures, **meta})

    def plot(self, path: str | Path) -> Path:
        """Draw the held-out reliability diagram, before and after, as a PNG."""
        from cvactive.plots import new_figure, save_figure

        fig = new_figure((9, 4.2))
        axes = fig.subplots(1, 2, sharey=True)
        for ax, rel, title, ece in (
            (axes[0], self.before, "before", self.ece_heldout_before),
            (axes[1], self.after, f"after (T = {self.temperature:.3g})", self.ece_heldout_after),
        ):
            width = np.diff(rel.edges)
            ok = rel.count > 0
            ax.bar(
                rel.edges[:-1][ok],
                rel.precision[ok],
                width=width[ok],
                align="edge",
                alpha=0.75,
                edgecolor="black",
                label="precision",
            )
            ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
            ax.plot(rel.confidence[ok], rel.precision[ok], "o", color="tab:red", ms=4, label="bin mean confidence")
            ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", title=f"{title}: D-ECE {ece:.3f}")
            ax.legend(loc="upper left", fontsize=8)
        axes[0].set_ylabel(f"precision (IoU >= {self.iou:.2g})")
        fig.suptitle(f"held-out reliability ({self.heldout_predictions} predictions, {self.heldout_images} images)")
        return save_figure(fig, path, dpi=100)


def calibration_report(
    predictions: Sequence[ImagePredictions],
    *,
    holdout: float = 0.5,
    bins: int = 10,
    iou: float = 0.5,
    rng: int | np.random.Generator | None = 0,
) -> CalibrationReport:
    """Split images into fitting and held-out parts, fit ``T``, and measure D-ECE on both.

    Args:
        predictions: per image, confidences and true-positive flags.
        holdout: the share of images held out of the fit (in (0, 1)).
        bins: confidence bins of D-ECE.
        iou: the IoU the true-positive flags were made with (recorded in the report).
        rng: seed or Generator of the image split.
    """
    if not 0.0 < holdout < 1.0:
        raise ConfigError(f"holdout must lie in (0, 1), got {holdout}")
    if len(predictions) < 2:
        raise DatasetError(f"calibration needs at least two labeled images, got {len(predictions)}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    order = gen.permutation(len(predictions))
    n_held = min(max(1, round(holdout * len(predictions))), len(predictions) - 1)
    held, fit = order[:n_held], order[n_held:]

    def gather(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        conf = [predictions[i].confidence for i in idx]
        ok = [predictions[i].correct for i in idx]
        return np.concatenate(conf) if conf else np.zeros(0), np.concatenate(ok) if ok else np.zeros(0, bool)

    fit_c, fit_y = gather(fit)
    held_c, held_y = gather(held)
    t = fit_temperature(fit_c, fit_y)
    held_after = apply_temperature(held_c, t)
    return CalibrationReport(
        temperature=t,
        bins=bins,
        iou=iou,
        fit_images=len(fit),
        heldout_images=len(held),
        fit_predictions=int(fit_c.size),
        heldout_predictions=int(held_c.size),
        ece_fit_before=detection_ece(fit_c, fit_y, bins),
        ece_fit_after=detection_ece(apply_temperature(fit_c, t), fit_y, bins),
        ece_heldout_before=detection_ece(held_c, held_y, bins),
        ece_heldout_after=detection_ece(held_after, held_y, bins),
        before=reliability(held_c, held_y, bins),
        after=reliability(held_after, held_y, bins),
    )


def class_map(model_names: dict[int, str], data_names: dict[int, str]) -> dict[int, int]:
    """Model class id -> data set class id, by class name (ids when the data set names are ids)."""
    if all(v == str(k) for k, v in data_names.items()):
        return {k: k for k in model_names if k in data_names}
    by_name = {v: k for k, v in data_names.items()}
    mapping = {k: by_name[v] for k, v in model_names.items() if v in by_name}
    if not mapping:
        raise DatasetError(
            f"the model's classes ({', '.join(list(model_names.values())[:5])}, ...) share no name with the data "
            f"set's ({', '.join(list(data_names.values())[:5])}, ...); calibrate on data labeled with the "
            "model's classes"
        )
    return mapping


def collect_predictions(
    detector: Detector,
    data: str | Path,
    *,
    split: str = "val",
    iou: float = 0.5,
    batch: int = 8,
    limit: int | None = None,
    progress: bool = True,
) -> list[ImagePredictions]:
    """Run ``detector`` over a labeled YOLO split and flag each prediction true or false positive.

    Predictions of classes the data set does not have count as false positives.
    """
    from tqdm import tqdm

    from cvactive.sources import read_image
    from cvactive.yolodata import load_yolo_dataset

    ds = load_yolo_dataset(data, splits=(split,))
    if split not in ds.splits:
        raise DatasetError(f"{data}: no split {split!r}; it has {', '.join(ds.splits) or 'none'}")
    items = list(ds.items(split))[: limit if limit else None]
    if not items:
        raise DatasetError(f"{data}: split {split!r} holds no images")
    mapping = class_map(detector.names, ds.names)
    out: list[ImagePredictions] = []
    for start in tqdm(range(0, len(items), batch), disable=not progress, unit="batch", desc="calibration"):
        chunk = items[start : start + batch]
        images = [read_image(item.image) for item in chunk]
        records = detector.predict(images)
        for item, image, record in zip(chunk, images, records):
            h, w = image.shape[:2]
            cls = np.array([mapping.get(int(c), -1) for c in record.class_id], np.int64)
            ok = match_to_truth(record.xyxy, cls, record.confidence, item.xyxy(w, h), item.classes, iou)
            out.append(ImagePredictions(str(item.image), record.confidence.astype(np.float64), ok, len(item.classes)))
    return out


def calibrate(
    detector: Detector,
    data: str | Path,
    *,
    split: str = "val",
    holdout: float = 0.5,
    bins: int = 10,
    iou: float = 0.5,
    rng: int | np.random.Generator | None = 0,
    limit: int | None = None,
    sharpen: float = 1.0,
    batch: int = 8,
    progress: bool = True,
) -> CalibrationReport:
    """Fit a temperature for ``detector`` on a labeled YOLO split and report D-ECE before/after.

    Args:
        detector: the detector to calibrate.
        data: a YOLO ``data.yaml`` or data set folder labeled with the model's class names.
        split: the labeled split to use (``val`` by default).
        holdout: share of its images held out of the fit; the report's held-out D-ECE is
            measured on them.
        bins: confidence bins of D-ECE and of the reliability diagram.
        iou: IoU for a prediction to match a ground-truth box.
        rng: seed or Generator of the fit / held-out split.
        limit: use only the first ``limit`` images.
        sharpen: multiply every logit by this before fitting (``> 1`` makes a deliberately
            over-confident model, to demonstrate calibration; 1 leaves the model as it is).
        batch: images per forward pass.
        progress: show a progress bar.
    """
    if not sharpen > 0:
        raise ConfigError(f"sharpen must be positive, got {sharpen}")
    preds = collect_predictions(detector, data, split=split, iou=iou, batch=batch, limit=limit, progress=progress)
    if sharpen != 1.0:
        preds = [replace(p, confidence=apply_temperature(p.confidence, 1.0 / sharpen)) for p in preds]
    return calibration_report(preds, holdout=holdout, bins=bins, iou=iou, rng=rng)
