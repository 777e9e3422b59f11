"""Attach uncertainty measures and image aggregates to records.

:class:`Scorer` holds the parameters (which measures, which aggregations, the empty-image
policy); the maths lives in :mod:`cvactive.measures`.

The consistency measures (:data:`cvactive.measures.CONSISTENCY_MEASURES`: TTA, committee,
MC dropout) need more model passes than the one that made a record, so a detector computes
them (:class:`cvactive.consistency.measured.MeasuredDetector`); a Scorer that names them checks
that each record carries them and aggregates them like the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cvactive.errors import ConfigError
from cvactive.measures import (
    AGGREGATIONS,
    CONSISTENCY_MEASURES,
    MEASURES,
    VECTOR_MEASURES,
    box_measures,
    check_names,
    image_scores,
)
from cvactive.record import ImageRecord


@dataclass(frozen=True)
class Scorer:
    """Scores records in place: per-box measures, then per-image aggregates.

    Attributes:
        measures: measure names (:data:`cvactive.measures.MEASURES`, or
            :data:`cvactive.measures.CONSISTENCY_MEASURES` that the detector computed).
        aggregations: aggregation names (:data:`cvactive.measures.AGGREGATIONS`).
        threshold: decision threshold for ``threshold_closeness``.
        if_empty: image score of a record with no boxes.
        topk: ``k`` of the ``topk`` aggregation.
        band: ``(low, high)`` of the ``count`` aggregation.
    """

    measures: Sequence[str] = MEASURES
    aggregations: Sequence[str] = AGGREGATIONS
    threshold: float = 0.5
    if_empty: float = 0.0
    topk: int = 3
    band: tuple[float, float] = field(default=(0.5, 1.0))

    def __post_init__(self) -> None:
        check_names(self.measures, MEASURES + CONSISTENCY_MEASURES, "measure")
        check_names(self.aggregations, AGGREGATIONS, "aggregation")

    def for_record(self, record: ImageRecord) -> Scorer:
        """This scorer, less the vector measures when the record has no class scores."""
        if record.class_scores is not None:
            return self
        kept = tuple(m for m in self.measures if m not in VECTOR_MEASURES)
        return Scorer(kept, self.aggregations, self.threshold, self.if_empty, self.topk, self.band)

    def __call__(self, record: ImageRecord) -> ImageRecord:
        """Add ``box_scores`` and ``image_scores`` to ``record`` and return it."""
        own = [m for m in self.measures if m not in CONSISTENCY_MEASURES]
        per_box = box_measures(record.class_scores, record.confidence, own, self.threshold)
        for name in self.measures:
            if name in CONSISTENCY_MEASURES:
                if name not in record.box_scores:
                    raise ConfigError(
                        f"measure {name!r} needs more model passes than the record for {record.key} had: "
                        "predict with cvactive.consistency.measured.MeasuredDetector (cvactive score --measures "
                        f"{name} ...)"
                    )
                per_box[name] = record.box_scores[name]
        record.box_scores.update(per_box)
        record.image_scores.update(
            image_scores(per_box, self.aggregations, if_empty=self.if_empty, k=self.topk, band=self.band)
        )
        return record
