"""A detector that also computes the consistency measures: TTA, committee and MC dropout.

:class:`MeasuredDetector` wraps a :class:`~cvactive.detect.model.Detector` and has the same
``predict`` / ``predict_stream``, so :func:`cvactive.detect.stage.score_source`, harvesting and
selection use it unchanged. Each record it returns carries, besides the detections:

* the calibration temperature applied to every class score and confidence (when given),
  before any measure, also to the view, pass and member scores;
* the per-box measures asked for in ``box_scores`` (``tta_localization``, ``tta_consistency``,
  ``committee_disagreement``, ``mc_variance``, ``mc_bald``);
* their ``<measure>_<aggregation>`` image scores, aggregated with the given
  :class:`~cvactive.detect.scorer.Scorer`'s settings, exactly as the class-score measures are.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cvactive.consistency.calibration import Calibration
from cvactive.consistency.committee import committee_box_scores
from cvactive.consistency.mc_dropout import MCDropout, mc_box_scores
from cvactive.consistency.tta import DEFAULT_VIEWS, View, mapped_back, tta_box_scores
from cvactive.detect.model import Detector
from cvactive.detect.scorer import Scorer
from cvactive.errors import ConfigError
from cvactive.measures import (
    COMMITTEE_MEASURES,
    CONSISTENCY_MEASURES,
    MC_MEASURES,
    TTA_MEASURES,
    check_names,
    image_scores,
)
from cvactive.record import ImageRecord
from cvactive.sources import FrameMeta


class MeasuredDetector:
    """A detector plus TTA, committee and MC-dropout measures and an optional calibration.

    Args:
        detector: the detector whose records are written (also the committee's first member).
        measures: names from :data:`CONSISTENCY_MEASURES` (may be empty: calibration only).
        scorer: whose ``aggregations``, ``if_empty``, ``topk`` and ``band`` make image scores.
        views: the TTA views (default: hflip, 0.8x zoom-out, small shift).
        committee: the other committee members (Detectors or model paths, loaded with this
            detector's ``imgsz``, ``conf``, ``iou`` and device).
        match_iou: the least IoU for two boxes to be the same object (TTA and committee).
        reduce: how TTA views combine per box: ``max`` (worst view) or ``mean``.
        mc_passes: dropout passes ``T``.
        mc_dropout: dropout probability.
        calibration: a :class:`Calibration` (or the path of its JSON) applied before any measure.
        rng: seed or Generator of the dropout masks.
    """

    def __init__(
        self,
        detector: Detector,
        measures: Sequence[str] = (),
        *,
        scorer: Scorer | None = None,
        views: Sequence[View] = DEFAULT_VIEWS,
        committee: Sequence[Detector | str | Path] = (),
        match_iou: float = 0.3,
        reduce: str = "max",
        mc_passes: int = 10,
        mc_dropout: float = 0.2,
        calibration: Calibration | str | Path | None = None,
        rng: int | np.random.Generator | None = None,
    ) -> None:
        check_names(measures, CONSISTENCY_MEASURES, "consistency measure")
        self.detector = detector
        self.measures = tuple(measures)
        self.scorer = scorer or Scorer()
        self.views = tuple(views)
        self.match_iou, self.reduce = float(match_iou), reduce
        if isinstance(calibration, (str, Path)):
            calibration = Calibration.load(calibration)
        self.calibration = calibration
        wants = set(self.measures)
        if wants & set(TTA_MEASURES) and not self.views:
            raise ConfigError("tta_localization/tta_consistency need at least one view")
        self.committee: list[Detector] = []
        if wants & set(COMMITTEE_MEASURES):
            if not committee:
                raise ConfigError("committee_disagreement needs committee members: --committee W1[,W2,...]")
            self.committee = [m if isinstance(m, Detector) else self._member(m) for m in committee]
            for member in self.committee:
                if len(member.names) != len(detector.names):
                    raise ConfigError(
                        f"committee member {member.model_path!r} has {len(member.names)} classes but "
                        f"{detector.model_path!r} has {len(detector.names)}; members must share one class list"
                    )
        self.mc: MCDropout | None = None
        if wants & set(MC_MEASURES):
            t = calibration.temperature if calibration else 1.0
            self.mc = MCDropout(detector, passes=mc_passes, p=mc_dropout, rng=rng, temperature=t)

    def _member(self, model: str | Path) -> Detector:
        d = self.detector
        trust = bool(getattr(d, "trust_checkpoint", False))  # members load as the main model does
        return Detector(
            model, imgsz=d.imgsz, conf=d.conf, iou=d.iou, device=d.device, max_det=d.max_det, trust_checkpoint=trust
        )

    def __getattr__(self, name: str) -> Any:
        # names, model_path, imgsz, conf, ... of the wrapped detector
        wrapped = self.__dict__.get("detector")
        if wrapped is None:
            raise AttributeError(name)
        return getattr(wrapped, name)

    def _calibrated(self, records: list[ImageRecord]) -> list[ImageRecord]:
        cal = self.calibration
        return records if cal is None else [cal.apply(r) for r in records]

    def predict(self, images: Sequence[np.ndarray], metas: Sequence[FrameMeta] | None = None) -> list[ImageRecord]:
        """Detect on a batch of BGR images; the records carry the consistency measures."""
        records = self.detector.predict(images, metas)
        extra: list[dict[str, np.ndarray]] = [{} for _ in records]
        if self.mc is not None:
            for scores, record, pass_scores in zip(extra, records, self.mc.pass_scores(records)):
                scores.update(mc_box_scores(pass_scores, record.class_id))
        records = self._calibrated(records)
        wants = set(self.measures)
        if wants & set(TTA_MEASURES):
            view_images = [view.apply(image) for image in images for view in self.views]
            view_records = self._calibrated(self.detector.predict(view_images))
            nv = len(self.views)
            for i, (scores, record) in enumerate(zip(extra, records)):
                mine = view_records[i * nv : (i + 1) * nv]
                back = [mapped_back(r, v, record) for r, v in zip(mine, self.views)]
                tta = tta_box_scores(record, back, match_iou=self.match_iou, reduce=self.reduce)
                scores.update({k: v for k, v in tta.items() if k in wants})
        if self.committee:
            member_records = [self._calibrated(m.predict(images, metas)) for m in self.committee]
            for i, (scores, record) in enumerate(zip(extra, records)):
                result = committee_box_scores([record, *(m[i] for m in member_records)], match_iou=self.match_iou)
                scores["committee_disagreement"] = result.disagreement
                record.extra["committee_missed"] = int(max(result.missed, default=0))
        s = self.scorer
        for record, scores in zip(records, extra):
            kept = {k: v for k, v in scores.items() if k in wants}
            record.box_scores.update(kept)
            record.image_scores.update(image_scores(kept, s.aggregations, if_empty=s.if_empty, k=s.topk, band=s.band))
        return records

    def predict_stream(self, frames: Iterable[tuple[np.ndarray, FrameMeta]], batch: int = 8) -> Iterator[ImageRecord]:
        """Batch ``(image, meta)`` pairs through :meth:`predict` (the Detector's batching)."""
        return Detector.predict_stream(self, frames, batch)  # type: ignore[arg-type]
