"""What labeling an image costs an annotator: boxes drawn, or a model's predictions corrected (pure numpy).

Two modes (see ``docs/cost.md`` for where each default comes from; they are defaults, to be
replaced by a team's own timings):

* ``draw``: every box is drawn from scratch: ``image_draw`` seconds per image (looking it over,
  saving) plus ``box_draw`` seconds per ground-truth box.
* ``correct``: the annotator starts from the current model's predictions at its operating
  confidence (``conf``) and fixes them: ``image_correct`` per image, ``delete`` per false positive
  removed, ``miss`` per missed object drawn, ``rebox`` per box whose extent is redone, ``reclass`` per
  box whose class is changed, and ``accept`` per prediction kept as it is.

In the simulated loop the costs are exact: :func:`corrections` matches an image's predictions to its
ground truth one to one (Hungarian on IoU, :func:`cvactive.matching.hungarian_match`). A
prediction matched at IoU >= ``match_iou`` is corrected rather than deleted: re-boxed when its IoU is
below ``accept_iou``, re-classed when its class is wrong (a box can need both; each fix is paid), and
accepted when it needs neither. Unmatched predictions are deleted, unmatched ground-truth boxes drawn.

The axes a study reports its spend on (:data:`AXES`): ``images``, ``boxes`` (ground-truth boxes in
the labeled set, what drawing pays for), ``seconds_draw`` and ``seconds_correct``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from cvactive._config import check_keys
from cvactive.boxes import box_iou
from cvactive.errors import ConfigError
from cvactive.matching import hungarian_match

Mode = Literal["draw", "correct"]
MODES: tuple[str, ...] = ("draw", "correct")
#: The spend axes of a study, in the order the report shows them.
AXES: tuple[str, ...] = ("images", "boxes", "seconds_draw", "seconds_correct")
#: What each axis counts, for tables and plot labels.
AXIS_LABELS: dict[str, str] = {
    "images": "labeled images",
    "boxes": "ground-truth boxes in the labeled set",
    "seconds_draw": "annotation seconds, every box drawn",
    "seconds_correct": "annotation seconds, correcting the model's predictions",
}


@dataclass(frozen=True)
class Corrections:
    """What correcting the predictions of a set of images takes, counted (sums over images).

    Attributes:
        images: images looked at.
        accepted: predictions kept as they are (right class, IoU >= ``accept_iou``).
        deleted: false positives removed (predictions matched to no ground-truth box).
        missed: ground-truth boxes no prediction matched, drawn from scratch.
        reboxed: matched predictions whose extent is redone (IoU < ``accept_iou``).
        reclassed: matched predictions whose class is changed.
    """

    images: int = 0
    accepted: int = 0
    deleted: int = 0
    missed: int = 0
    reboxed: int = 0
    reclassed: int = 0

    def __add__(self, other: Corrections) -> Corrections:
        return Corrections(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def to_dict(self) -> dict[str, int]:
        return {k: int(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Corrections:
        check_keys(data, [f.name for f in fields(cls)], "corrections")
        return cls(**{k: int(v) for k, v in data.items()})

    @classmethod
    def drawn(cls, images: int, boxes: int) -> Corrections:
        """Images with no predictions to start from: every box is a miss, drawn."""
        return cls(images=int(images), missed=int(boxes))


@dataclass(frozen=True)
class CostModel:
    """Seconds per annotation action, and how predictions are matched to ground truth.

    Defaults (``docs/cost.md`` gives the source of each): ``box_draw`` 7.0 s, a box by extreme
    clicking (Papadopoulos et al. 2017); ``image_draw``, ``image_correct``, ``accept`` and
    ``delete`` 1.6 s, one yes/no verification (Papadopoulos et al. 2016); ``miss`` and ``rebox``
    7.0 s, a box drawn (again); ``reclass`` 3.2 s, two verifications (reject, then pick the class).

    Attributes:
        image_draw: seconds per image in ``draw`` mode, besides its boxes.
        box_draw: seconds per box drawn in ``draw`` mode.
        image_correct: seconds per image in ``correct`` mode, besides its fixes.
        accept: seconds per prediction accepted as it is.
        delete: seconds per false positive deleted.
        miss: seconds per missed object drawn.
        rebox: seconds per matched prediction whose extent is redone.
        reclass: seconds per matched prediction whose class is changed.
        conf: operating confidence: the predictions the annotator sees are those at or above it.
        match_iou: a prediction with IoU >= this with a ground-truth box is corrected, not deleted.
        accept_iou: a matched prediction with IoU >= this needs no re-boxing.
    """

    image_draw: float = 1.6
    box_draw: float = 7.0
    image_correct: float = 1.6
    accept: float = 1.6
    delete: float = 1.6
    miss: float = 7.0
    rebox: float = 7.0
    reclass: float = 3.2
    conf: float = 0.25
    match_iou: float = 0.3
    accept_iou: float = 0.5

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
                raise ConfigError(f"cost.{f.name} must be a number >= 0, got {value!r}")
        for name in ("conf", "match_iou", "accept_iou"):
            if getattr(self, name) > 1:
                raise ConfigError(f"cost.{name} must lie in [0, 1], got {getattr(self, name)}")
        if self.accept_iou < self.match_iou:
            raise ConfigError(f"cost.accept_iou ({self.accept_iou}) must be >= cost.match_iou ({self.match_iou})")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> CostModel:
        """The model of a config's ``cost`` section (missing keys keep their defaults)."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ConfigError(f"cost: expected a mapping of unit costs, got {type(data).__name__}")
        check_keys(data, [f.name for f in fields(cls)], "cost")
        return cls(**{k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in data.items()})

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    def draw_seconds(self, images: int, boxes: int) -> float:
        """Seconds to draw every box of ``images`` images holding ``boxes`` boxes."""
        return float(self.image_draw * images + self.box_draw * boxes)

    def correct_seconds(self, c: Corrections) -> float:
        """Seconds to correct predictions into labels, from the counts of :func:`corrections`."""
        return float(
            self.image_correct * c.images
            + self.accept * c.accepted
            + self.delete * c.deleted
            + self.miss * c.missed
            + self.rebox * c.reboxed
            + self.reclass * c.reclassed
        )

    def corrections(
        self,
        pred_xyxy: npt.ArrayLike,
        pred_class: npt.ArrayLike,
        pred_conf: npt.ArrayLike,
        gt_xyxy: npt.ArrayLike,
        gt_class: npt.ArrayLike,
    ) -> Corrections:
        """:func:`corrections` with this model's ``conf``, ``match_iou`` and ``accept_iou``."""
        return corrections(
            pred_xyxy,
            pred_class,
            pred_conf,
            gt_xyxy,
            gt_class,
            conf=self.conf,
            match_iou=self.match_iou,
            accept_iou=self.accept_iou,
        )

    def spend(self, images: int, boxes: int, corrected: Corrections | None) -> dict[str, float | None]:
        """A labeled set's spend on every axis of :data:`AXES` (``seconds_correct``: ``None`` when
        the corrections were not recorded)."""
        return {
            "images": float(images),
            "boxes": float(boxes),
            "seconds_draw": self.draw_seconds(images, boxes),
            "seconds_correct": None if corrected is None else self.correct_seconds(corrected),
        }


def corrections(
    pred_xyxy: npt.ArrayLike,
    pred_class: npt.ArrayLike,
    pred_conf: npt.ArrayLike,
    gt_xyxy: npt.ArrayLike,
    gt_class: npt.ArrayLike,
    *,
    conf: float = 0.25,
    match_iou: float = 0.3,
    accept_iou: float = 0.5,
) -> Corrections:
    """The fixes that turn one image's predictions into its ground truth.

    Args:
        pred_xyxy: ``(N, 4)`` predicted boxes, pixel ``xyxy``.
        pred_class: ``(N,)`` predicted class ids.
        pred_conf: ``(N,)`` confidences; only predictions with ``conf`` or more are shown.
        gt_xyxy: ``(M, 4)`` ground-truth boxes, pixel ``xyxy`` (same image, same unit).
        gt_class: ``(M,)`` ground-truth class ids.
        conf: operating confidence.
        match_iou: the smallest IoU at which a prediction is corrected rather than deleted.
        accept_iou: the smallest IoU at which a matched prediction's extent is kept.

    Returns:
        The counts for this one image (``images`` = 1).
    """
    xyxy = np.asarray(pred_xyxy, np.float64).reshape(-1, 4)
    cls = np.asarray(pred_class).reshape(-1)
    score = np.asarray(pred_conf, np.float64).reshape(-1)
    if not len(xyxy) == len(cls) == len(score):
        raise ValueError(f"predictions: {len(xyxy)} boxes, {len(cls)} classes and {len(score)} confidences differ")
    gt = np.asarray(gt_xyxy, np.float64).reshape(-1, 4)
    gt_cls = np.asarray(gt_class).reshape(-1)
    if len(gt) != len(gt_cls):
        raise ValueError(f"ground truth: {len(gt)} boxes but {len(gt_cls)} classes")
    shown = score >= conf
    xyxy, cls = xyxy[shown], cls[shown]
    match = hungarian_match(box_iou(gt, xyxy), min_iou=match_iou)  # (M,): the prediction each truth box got
    found = match >= 0
    truth, pred = np.flatnonzero(found), match[found]
    iou = box_iou(gt[truth], xyxy[pred])[np.arange(len(truth)), np.arange(len(truth))] if len(truth) else np.zeros(0)
    reboxed = iou < accept_iou
    reclassed = gt_cls[truth].astype(np.int64) != cls[pred].astype(np.int64)
    return Corrections(
        images=1,
        accepted=int(np.sum(~reboxed & ~reclassed)),
        deleted=int(len(xyxy) - len(pred)),
        missed=int(len(gt) - len(truth)),
        reboxed=int(reboxed.sum()),
        reclassed=int(reclassed.sum()),
    )
