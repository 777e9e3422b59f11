"""Attach uncertainty measures and image aggregates to records.

:class:`Scorer` holds the parameters (which measures, which aggregations, the empty-image
policy); the maths lives in :mod:`cvactive.measures`.

The consistency measures (:data:`cvactive.measures.CONSISTENCY_MEASURES`: TTA, committee,
MC dropout) need more model passes than the one that made a record, so a detector computes
them (:class:`cvactive.consistency.measured.MeasuredDetector`); a Scorer that names them checks
that each record carries them and aggregates them like the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cvactive.declare.ranges import Aggregation, Measure, PosInt, Prob
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

    measures: Sequence[Measure] = MEASURES
    aggregations: Sequence[Aggregation] = AGGREGATIONS
    threshold: Prob = 0.5
    if_empty: float = 0.0
    topk: PosInt = 3
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


#: File names of a YOLO data set's description looked for beside and above a source.
DATA_YAML_NAMES = ("data.yaml", "dataset.yaml")


def find_data_yaml(source: object, levels: int = 3) -> Path | None:
    """The ``data.yaml`` (or ``dataset.yaml``) of the YOLO data set a source lies in, if any.

    Looked for in the source's folder (a folder source, a file's or a glob pattern's folder) and
    up to ``levels`` folders above it: ``aquarium/valid/images`` finds ``aquarium/data.yaml``.
    A source that is not a path (arrays, a stream, a list) has none.
    """
    if not isinstance(source, (str, Path)) or "://" in str(source) or str(source).isdigit():
        return None
    text = str(source)
    if any(ch in text for ch in "*?["):
        text = text[: min(text.index(ch) for ch in "*?[" if ch in text)]
        folder = Path(text if text.endswith(("/", "\\")) else Path(text).parent)
    else:
        folder = Path(text) if Path(text).is_dir() else Path(text).parent
    for here in [folder, *folder.parents][: levels + 1]:
        for name in DATA_YAML_NAMES:
            if (here / name).is_file():
                return here / name
    return None


def data_class_names(path: str | Path) -> list[str]:
    """The class names a YOLO ``data.yaml`` declares (a list or an id -> name mapping under ``names``).

    Raises:
        ConfigError: the file does not exist, is not YAML, or has no ``names``.
    """
    import yaml

    if not Path(path).is_file():
        raise ConfigError(f"data set file {str(path)!r} does not exist (give the data set's data.yaml)")
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as err:
        raise ConfigError(f"{path}: not a readable YAML file ({' '.join(str(err).split())[:200]})") from err
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, dict):
        return [str(v) for v in names.values()]
    if isinstance(names, list) and names:
        return [str(v) for v in names]
    raise ConfigError(f"{path}: no 'names' list of the data set's classes")


def class_overlap_warning(model_names: Iterable[str], data_names: Iterable[str], where: str) -> str | None:
    """A warning when a model's classes share no name with a data set's (case aside), else ``None``.

    A COCO model on aquarium photos calls fish "bird" and "kite": every box's class is one the
    data set does not have, and the scores rank images by the wrong question.
    """
    model = {n.strip().lower() for n in model_names}
    data = {n.strip().lower() for n in data_names}
    if not model or not data or model & data:
        return None

    def shown(names: set[str]) -> str:
        listed = sorted(names)
        return ", ".join(listed[:5]) + (f", ... ({len(listed)} in all)" if len(listed) > 5 else "")

    return (
        f"the model's classes ({shown(model)}) share no name with the data set's ({shown(data)}, from {where}): "
        "its boxes are labeled with classes this data set does not have, so its scores answer the wrong "
        "question; fine-tune it on these classes first (cvactive loop, or Ultralytics' train)"
    )
