"""The one record type that flows through every stage: :class:`ImageRecord`.

One record describes one image or video frame: the detector's boxes with their full
per-class score rows, where the image came from, an optional embedding, the scores
that later stages attach, once a harvest has kept it, its :class:`Harvested` (rules, saved
frame, delay) and, once a selection strategy has chosen it, its :class:`Selection` (rank,
utility, strategy). Arrays are numpy; shapes, dtypes and values
are checked at birth.

Box conventions used across cvactive (see also :mod:`cvactive.boxes`):

* ``xyxy`` here: absolute pixels, ``[x1, y1, x2, y2]`` in the original image.
* FiftyOne: normalised ``[x, y, w, h]`` with a top-left origin.
* YOLO label files: normalised centre ``cx cy w h``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from cvactive.errors import MissingClassScoresError, RecordError

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


def _as_array(name: str, value: Any, dtype: type, ndim: int) -> np.ndarray:
    try:
        arr: np.ndarray = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise RecordError(f"{name}: cannot convert to a {dtype.__name__} array ({err})") from err
    if arr.size == 0:
        # An empty input of any shape becomes the canonical empty shape.
        shape = (0,) if ndim == 1 else (0, 0)
        if ndim == 2 and name == "xyxy":
            shape = (0, 4)
        return arr.reshape(shape)
    if arr.ndim != ndim:
        raise RecordError(f"{name}: expected a {ndim}-d array, got shape {arr.shape}")
    return arr


#: The fields of a selection result, also its keys in a record's JSON line (top level).
SELECTION_KEYS = ("rank", "utility", "strategy")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _whole(name: str, value: Any) -> int:
    """``value`` as an ``int`` when it is a whole number (``640`` or ``640.0``); else a :class:`RecordError`."""
    if _is_int(value):
        return int(value)
    if _is_real(value) and float(value).is_integer():
        return int(value)
    raise RecordError(f"{name}: expected a whole number, got {value!r}")


def _check_text(name: str, value: str) -> None:
    """A :class:`RecordError` when ``value`` holds lone surrogates (a file name that was not UTF-8)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        shown = value.encode("utf-8", "replace").decode("utf-8")
        raise RecordError(f"{name} {shown!r} is not valid UTF-8; rename the file") from None


@dataclass(frozen=True)
class Selection:
    """Where a selection strategy put a record: written by ``cvactive select``, read by ``cvactive push``.

    Attributes:
        rank: 1 for the record to label first, 2 for the next, ... (an integer >= 1).
        utility: what the strategy ranked the pick by (a float; its meaning and scale are the
            strategy's, so compare utilities within one batch only; a k-center first pick may
            be ``inf``).
        strategy: the name of the strategy that chose the record (non-empty).
    """

    rank: int
    utility: float
    strategy: str

    def __post_init__(self) -> None:
        if not _is_int(self.rank) or self.rank < 1:
            raise RecordError(f"selection rank: expected an integer >= 1 (1 = label first), got {self.rank!r}")
        if not _is_real(self.utility):
            raise RecordError(f"selection utility: expected a number, got {self.utility!r}")
        if not isinstance(self.strategy, str) or not self.strategy:
            raise RecordError(f"selection strategy: expected a non-empty strategy name, got {self.strategy!r}")
        object.__setattr__(self, "rank", int(self.rank))
        object.__setattr__(self, "utility", float(self.utility))

    def to_dict(self) -> dict[str, Any]:
        """``{"rank": ..., "utility": ..., "strategy": ...}``, the keys of :data:`SELECTION_KEYS`."""
        return {"rank": self.rank, "utility": self.utility, "strategy": self.strategy}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Selection | None:
        """The selection result held by the top-level keys of a record's JSON dict.

        ``None`` when the dict has none of :data:`SELECTION_KEYS` (a record no selection chose).

        Raises:
            RecordError: only some of the keys are there, or a value is not what it must be.
        """
        present = [k for k in SELECTION_KEYS if k in data]
        if not present:
            return None
        missing = [k for k in SELECTION_KEYS if k not in data]
        if missing:
            raise RecordError(
                f"a selection result needs {', '.join(SELECTION_KEYS)} together (cvactive select writes all "
                f"three); got {present} without {missing}: add the missing keys, or remove these "
                "(cvactive push --strategy NAME tags a batch without them)"
            )
        return cls(rank=data["rank"], utility=data["utility"], strategy=data["strategy"])


#: The fields of a harvest's provenance, also its keys in a record's JSON line (top level).
HARVEST_KEYS = ("rules", "path", "delay", "inferred")


@dataclass(frozen=True)
class Harvested:
    """How a harvest kept a frame: written by ``cvactive harvest`` (its manifest), read by ``select``,
    ``push`` and ``health``.

    Attributes:
        rules: the names of the harvest rules that fired on the frame and kept it (a harvest
            names at least one; empty only for a saved frame whose rules are not known).
        path: the JPEG the harvest saved the frame as (what ``push`` shows, not the video), or
            ``None`` when the record's ``source`` itself is the image.
        delay: seconds between the frame's timestamp and when a live source delivered it (how far
            the harvest was behind), or ``None`` for a file read at its own pace.
        inferred: whether the detector ran on the frame (``False``: a cheap rule kept it and no
            model was needed, so the record has no boxes because none were looked for).
    """

    rules: tuple[str, ...] = ()
    path: str | None = None
    delay: float | None = None
    inferred: bool = True

    def __post_init__(self) -> None:
        rules = [self.rules] if isinstance(self.rules, str) else self.rules
        if not isinstance(rules, (list, tuple)) or not all(isinstance(r, str) and r for r in rules):
            raise RecordError(f"harvest rules: expected a list of rule names, got {self.rules!r}")
        object.__setattr__(self, "rules", tuple(rules))
        if self.path is not None:
            if not isinstance(self.path, str) or not self.path:
                raise RecordError(f"harvest path: expected the saved frame's file name, got {self.path!r}")
            _check_text("path", self.path)
        if not self.rules and self.path is None:
            raise RecordError("a harvest provenance needs the rules that kept the frame or its saved path")
        if self.delay is not None:
            if not _is_real(self.delay):
                raise RecordError(f"harvest delay: expected seconds as a number, got {self.delay!r}")
            object.__setattr__(self, "delay", float(self.delay))
        if not isinstance(self.inferred, (bool, np.bool_)):
            raise RecordError(f"harvest inferred: expected true or false, got {self.inferred!r}")
        object.__setattr__(self, "inferred", bool(self.inferred))

    def to_dict(self) -> dict[str, Any]:
        """The top-level keys of a manifest line: ``rules``, ``path`` (when saved), ``delay`` (when
        measured) and ``inferred`` (only when ``False``, as harvests always wrote it)."""
        out: dict[str, Any] = {"rules": list(self.rules)}
        if self.path is not None:
            out["path"] = self.path
        if self.delay is not None:
            out["delay"] = round(self.delay, 4)
        if not self.inferred:
            out["inferred"] = False
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Harvested | None:
        """The harvest provenance held by the top-level keys of a record's JSON dict (manifests
        written before this type read the same), or ``None`` when it has neither ``rules`` nor ``path``.

        Raises:
            RecordError: a value is not what it must be.
        """
        if "rules" not in data and "path" not in data:
            return None
        rules = data.get("rules")
        return cls(
            rules=() if rules is None else rules,
            path=data.get("path"),
            delay=data.get("delay"),
            inferred=data.get("inferred", True),
        )


@dataclass(eq=False)
class ImageRecord:
    """Detections and scores for one image or video frame.

    Attributes:
        source: image file path, or the video path / stream URL for a frame.
        width: image width in pixels (> 0).
        height: image height in pixels (> 0).
        xyxy: ``(N, 4)`` float32, boxes in absolute pixels ``[x1, y1, x2, y2]``.
        confidence: ``(N,)`` float32, the post-NMS confidence of each box in [0, 1].
        class_id: ``(N,)`` int64, the predicted class of each box.
        class_scores: ``(N, C)`` float32 full per-class score row of each kept box
            (YOLOv8/11: independent sigmoids, not a softmax), or ``None`` when the
            producer only had post-NMS confidences. Measures that need the vector
            refuse a record without it instead of inventing one.
        names: class id -> class name, for every class of the model or data set (not only the
            classes this record has boxes of).
        frame: frame index in the video, or ``None`` for a still image.
        timestamp: seconds from the start of the video, or ``None``.
        embedding: ``(D,)`` float32 image embedding, or ``None``.
        box_scores: measure name -> ``(N,)`` float array of per-box scores.
        image_scores: ``"<measure>_<aggregation>"`` -> float per-image score.
        extra: JSON-serialisable fields a user or a later stage added (a ``round``, a
            ``brightness``, ...); written as top-level keys of the JSON line. The keys of the
            typed results (:data:`SELECTION_KEYS`, :data:`HARVEST_KEYS`) are not allowed here.
        selection: where a selection strategy put this record (rank, utility, strategy:
            a :class:`Selection`), or ``None`` for a record no selection has chosen.
        harvested: how a harvest kept this frame (rules, saved path, delay: a
            :class:`Harvested`), or ``None`` for a record no harvest wrote.
    """

    source: str
    width: int
    height: int
    xyxy: FloatArray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    confidence: FloatArray = field(default_factory=lambda: np.zeros((0,), np.float32))
    class_id: IntArray = field(default_factory=lambda: np.zeros((0,), np.int64))
    class_scores: FloatArray | None = None
    names: Mapping[int, str] = field(default_factory=dict)
    frame: int | None = None
    timestamp: float | None = None
    embedding: FloatArray | None = None
    box_scores: dict[str, np.ndarray] = field(default_factory=dict)
    image_scores: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    selection: Selection | None = None
    harvested: Harvested | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.source, str) or not self.source:
            raise RecordError(f"source must be a non-empty string, got {self.source!r}")
        _check_text("source", self.source)
        self.width, self.height = _whole("width", self.width), _whole("height", self.height)
        if self.width <= 0 or self.height <= 0:
            raise RecordError(f"image size must be positive, got {self.width}x{self.height}")
        self.xyxy = _as_array("xyxy", self.xyxy, np.float32, 2)
        if self.xyxy.shape[1] != 4:
            raise RecordError(f"xyxy: expected shape (N, 4), got {self.xyxy.shape}")
        n = self.xyxy.shape[0]
        self.confidence = _as_array("confidence", self.confidence, np.float32, 1)
        self.class_id = _as_array("class_id", self.class_id, np.int64, 1)
        for name, arr in (("confidence", self.confidence), ("class_id", self.class_id)):
            if arr.shape != (n,):
                raise RecordError(f"{name}: expected shape ({n},) to match xyxy, got {arr.shape}")
        if n and (np.any(self.confidence < 0) or np.any(self.confidence > 1)):
            raise RecordError("confidence: values must lie in [0, 1]")
        if self.class_scores is not None:
            cs = _as_array("class_scores", self.class_scores, np.float32, 2)
            if n == 0:
                cs = cs.reshape(0, cs.shape[1] if cs.ndim == 2 else 0)
            if cs.shape[0] != n:
                raise RecordError(f"class_scores: expected shape ({n}, C) to match xyxy, got {cs.shape}")
            if n and not np.all(np.isfinite(cs)):
                raise RecordError("class_scores: values must be finite")
            self.class_scores = cs
        if self.embedding is not None:
            emb = np.asarray(self.embedding, dtype=np.float32)
            if emb.ndim != 1:
                raise RecordError(f"embedding: expected shape (D,), got {emb.shape}")
            self.embedding = emb
        self.names = {int(k): str(v) for k, v in dict(self.names).items()}
        box_scores: dict[str, np.ndarray] = {}
        for key, values in self.box_scores.items():
            per_box = np.asarray(values, dtype=np.float64).reshape(-1)
            if per_box.shape != (n,):
                raise RecordError(f"box_scores[{key!r}]: expected shape ({n},), got {per_box.shape}")
            box_scores[key] = per_box
        self.box_scores = box_scores
        if not isinstance(self.image_scores, Mapping):
            raise RecordError(f"image_scores: expected a mapping of score name to number, got {self.image_scores!r}")
        for key, value in self.image_scores.items():
            if not _is_real(value):
                raise RecordError(f"image_scores[{key!r}]: expected a number, got {value!r}")
        self.image_scores = {str(k): float(v) for k, v in self.image_scores.items()}
        if self.frame is not None:
            self.frame = _whole("frame", self.frame)
        if self.timestamp is not None:
            if not _is_real(self.timestamp):
                raise RecordError(f"timestamp: expected seconds as a number, got {self.timestamp!r}")
            self.timestamp = float(self.timestamp)
        if self.selection is not None and not isinstance(self.selection, Selection):
            raise RecordError(
                f"selection: expected a cvactive.record.Selection or None, got {type(self.selection).__name__}"
            )
        clash = [k for k in SELECTION_KEYS if k in self.extra]
        if clash:
            raise RecordError(
                f"extra: {clash} belong to the record's typed selection result, not to extra; "
                "pass selection=Selection(rank=..., utility=..., strategy=...)"
            )
        if self.harvested is not None and not isinstance(self.harvested, Harvested):
            raise RecordError(
                f"harvested: expected a cvactive.record.Harvested or None, got {type(self.harvested).__name__}"
            )
        clash = [k for k in HARVEST_KEYS if k in self.extra]
        if clash:
            raise RecordError(
                f"extra: {clash} belong to the record's typed harvest provenance, not to extra; "
                "pass harvested=Harvested(rules=..., path=...)"
            )

    # -- construction ------------------------------------------------------------------
    @classmethod
    def empty(cls, source: str, width: int, height: int, **kwargs: Any) -> ImageRecord:
        """A record with no detections."""
        return cls(source=source, width=width, height=height, **kwargs)

    # -- container protocol --------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(self, index: Any) -> ImageRecord:
        """Select boxes by boolean mask, integer index array or slice; returns a new record."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        idx = np.arange(len(self))[index]
        return replace(
            self,
            xyxy=self.xyxy[idx],
            confidence=self.confidence[idx],
            class_id=self.class_id[idx],
            class_scores=None if self.class_scores is None else self.class_scores[idx],
            box_scores={k: v[idx] for k, v in self.box_scores.items()},
            image_scores=dict(self.image_scores),
            extra=dict(self.extra),
        )

    # -- helpers -------------------------------------------------------------------------
    @property
    def key(self) -> str:
        """A stable identity: the source, plus ``#<frame>`` for a video frame."""
        return self.source if self.frame is None else f"{self.source}#{self.frame}"

    @property
    def class_names(self) -> list[str]:
        """The class name of each box (``str(class_id)`` where the name is unknown)."""
        return [self.names.get(int(c), str(int(c))) for c in self.class_id]

    @property
    def num_classes(self) -> int | None:
        """C, the length of the class-score rows, when known."""
        if self.class_scores is not None and self.class_scores.shape[1] > 0:
            return int(self.class_scores.shape[1])
        return len(self.names) or None

    def require_class_scores(self, what: str) -> FloatArray:
        """Return ``class_scores`` or raise, naming the measure that needs them."""
        if self.class_scores is None:
            raise MissingClassScoresError(
                f"{what} needs the full per-class score row of every box, but the record for "
                f"{self.key} only has post-NMS confidences; score it with cvactive's detector "
                "adapter (cvactive score --with-class-scores) to keep them"
            )
        return self.class_scores
