"""Temperature calibration of detection confidences, detection ECE and reliability diagrams.

:func:`calibrate` fits a temperature ``T`` for a detector on a labeled YOLO split: it runs the
detector (:mod:`~cvactive.consistency.calibration_run`), flags each prediction a true or false
positive, fits ``T`` on part of the images and measures the detection expected calibration
error before and after on both parts (the maths is :mod:`~cvactive.consistency.temperature`).
A :class:`CalibrationReport` holds the figures and draws the reliability diagram; a
:class:`Calibration` is the saved temperature that ``cvactive score --calibration`` applies.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cvactive._random import as_rng
from cvactive.consistency.calibration_run import collect_predictions
from cvactive.consistency.temperature import (
    ImagePredictions,
    Reliability,
    apply_temperature,
    detection_ece,
    fit_temperature,
    reliability,
)
from cvactive.errors import ConfigError, DatasetError
from cvactive.record import ImageRecord

if TYPE_CHECKING:
    from cvactive.detect.model import Detector

__all__ = ["Calibration", "CalibrationReport", "calibrate", "calibration_report"]


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
    gen = as_rng(rng)
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
