"""The sample fields a push writes for a record, as plain values (and as FiftyOne objects for reference).

Predictions become ``fo.Detections`` with normalised top-left boxes, ``confidence``,
``class_id`` and every per-box measure as attributes; image scores, video frame details, the
round, the selection strategy, rank and utility, harvest rules, synthetic provenance and the
embedding become sample fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cvactive.boxes import xyxy_to_fiftyone
from cvactive.record import ImageRecord
from cvactive.sources import is_stream
from cvactive.store.provenance import provenance_fields
from cvactive.store.tags import KEY_FIELD, clean_tag

#: Sample fields a push never writes an image score into (it prefixes ``score_`` instead).
RESERVED = frozenset(
    {"id", "_id", "filepath", "tags", "metadata", "media_type", "created_at", "last_modified_at", "ground_truth"}
)
#: Attributes of a FiftyOne Detection a per-box measure may not overwrite.
DETECTION_RESERVED = frozenset({"id", "_id", "tags", "label", "bounding_box", "mask", "confidence", "index"})
#: The sample field of a record's image embedding.
EMBEDDING_FIELD = "embedding"
#: Fields push writes besides the image scores (the App's "review" and "cvactive" sidebar groups).
REVIEW_FIELDS = ("selection_strategy", "selection_rank", "selection_utility", "harvest_rules", "cva_round")
SOURCE_FIELDS = (KEY_FIELD, "source_video", "frame_index", "timestamp")
SYNTHETIC_FIELDS = ("synthetic_parent", "synthetic_recipe", "synthetic_params")


def detection_values(record: ImageRecord) -> list[dict[str, Any]]:
    """Each box as plain values: ``label``, normalised top-left ``bounding_box``, ``confidence``,
    ``class_id`` and every per-box measure (a NaN measure is left out)."""
    boxes = xyxy_to_fiftyone(record.xyxy, record.width, record.height).tolist()
    names = record.class_names
    conf = record.confidence.tolist()
    cls = record.class_id.tolist()
    measures = {(k if k not in DETECTION_RESERVED else f"score_{k}"): v.tolist() for k, v in record.box_scores.items()}
    out = []
    for i in range(len(record)):
        det: dict[str, Any] = {"label": names[i], "bounding_box": boxes[i], "confidence": conf[i], "class_id": cls[i]}
        for key, values in measures.items():
            if values[i] == values[i]:  # not NaN
                det[key] = values[i]
        out.append(det)
    return out


def score_field(name: str, label_field: str) -> str:
    """The sample field of image score ``name`` (``score_<name>`` where the name is taken)."""
    return f"score_{name}" if name in RESERVED or name in (label_field, KEY_FIELD, EMBEDDING_FIELD) else name


def field_values(
    record: ImageRecord,
    *,
    label_field: str,
    round_: int | None,
    provenance: dict[str, Any] | None,
    strategy: str | None = None,
) -> dict[str, Any]:
    """The plain sample fields a push writes for a record besides its predictions, ``filepath``,
    ``tags``, ``metadata`` and ``cva_key``: image scores, video source/frame/timestamp, round,
    selection strategy, rank and utility, harvest rules, the provenance of a synthetic image and
    the embedding (a float32 ``(D,)`` array). ``None`` values are not written."""
    values: dict[str, Any] = {}
    for name, score in record.image_scores.items():
        values[score_field(name, label_field)] = float(score) if score == score else None
    if record.frame is not None:
        values["source_video"] = str(Path(record.source).resolve()) if not is_stream(record.source) else record.source
        values["frame_index"] = int(record.frame)
    if record.timestamp is not None:
        values["timestamp"] = float(record.timestamp)
    rnd = round_ if round_ is not None else record.extra.get("round")
    if rnd is not None:
        values["cva_round"] = int(rnd)
    chosen = record.selection
    strat = strategy if strategy is not None else (chosen.strategy if chosen is not None else None)
    if strat:
        values["selection_strategy"] = clean_tag(strat)
    if chosen is not None:
        values["selection_rank"] = float(chosen.rank)
        values["selection_utility"] = float(chosen.utility)
    if record.harvested is not None and record.harvested.rules:
        values["harvest_rules"] = list(record.harvested.rules)
    if provenance:
        values.update(provenance_fields(provenance))
    if record.embedding is not None:
        values[EMBEDDING_FIELD] = np.asarray(record.embedding, np.float32).reshape(-1)
    return values


def detections_of(fo: Any, record: ImageRecord) -> Any:
    """The record's boxes as ``fo.Detections`` (see :func:`detection_values`)."""
    return fo.Detections(detections=[fo.Detection(**d) for d in detection_values(record)])


def sample_fields(
    fo: Any,
    record: ImageRecord,
    *,
    label_field: str,
    round_: int | None,
    provenance: dict[str, Any] | None,
    strategy: str | None = None,
) -> dict[str, Any]:
    """The sample fields of a record as FiftyOne objects (the one-sample-at-a-time route)."""
    values = field_values(record, label_field=label_field, round_=round_, provenance=provenance, strategy=strategy)
    return {label_field: detections_of(fo, record), **{k: v for k, v in values.items() if v is not None}}
