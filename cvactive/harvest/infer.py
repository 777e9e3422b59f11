"""How a harvest reaches the model: the pipeline for frames that are all inferred, one engine for many sources.

A harvest whose rules need the model on every frame runs its frames through
:class:`cvactive.detect.pipeline.Pipeline` (see :meth:`cvactive.harvest.runner.HarvestRun.run_pipelined`):
the video decodes, the frames are letterboxed, inferred, put through NMS and scored while the
harvest decides on the frames before them. This module holds what that needs:

* :class:`FrameTap`: the frames of a feed as the ``(image, meta)`` pairs the pipeline reads (on
  its reader thread), remembering each :class:`~cvactive.harvest.frames.FeedFrame` so the harvest
  gets it back beside its record; for a live source it lets only :func:`live_window` frames be
  in flight, so no frame waits in a queue while newer ones arrive.
* :class:`SharedDetector` and :class:`SharedEngine`: several sources harvested at once share one
  detector. Direct calls (``predict``) take its lock, one at a time; each source's pipeline
  gets a :class:`SharedEngine`, a view of the detector's one engine that submits under the same
  lock and waits only for its own requests. With the OpenVINO engine, the requests of every
  camera are in flight together on the engine's asynchronous queue (the THROUGHPUT streams
  take them from whichever camera); a batched engine runs one batch at a time, each camera's
  own batch (a forward pass over frames of different cameras would change the records: a batch
  of differently sized frames is letterboxed to the full square, and each source's batches
  would no longer be the ones it makes alone).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cvactive.detect.engines import engine_for
from cvactive.detect.model import Detector
from cvactive.record import ImageRecord
from cvactive.sources import FrameMeta

if TYPE_CHECKING:
    from cvactive.detect.engines import Done, Engine
    from cvactive.harvest.frames import FeedFrame


class SharedDetector:
    """One detector used by several source threads: one ``predict`` at a time; other attributes pass through."""

    def __init__(self, detector: Any) -> None:
        self.detector = detector
        self.lock = threading.Lock()

    def predict(self, images: Sequence[np.ndarray], metas: Sequence[Any] | None = None) -> list[ImageRecord]:
        with self.lock:
            return list(self.detector.predict(images, metas))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.detector, name)


class LazyDetector:
    """A detector loaded on first use, so a harvest that has nothing left to do never loads its model.

    Until then it answers what a harvest's fingerprint reads (``model_path``, ``imgsz``,
    ``conf``, ``iou``: give them as the detector will have them); any other attribute loads the
    detector (once, thread-safe) and is the loaded one's.

    Args:
        load: builds the detector (a :class:`~cvactive.detect.model.Detector`, or a wrapper of one).
        model_path, imgsz, conf, iou: the detector's settings, as it will record them.
    """

    def __init__(self, load: Callable[[], Any], model_path: str, imgsz: int, conf: float, iou: float) -> None:
        self._load, self._detector, self._lock = load, None, threading.Lock()
        self.model_path, self.imgsz, self.conf, self.iou = str(model_path), int(imgsz), float(conf), float(iou)

    @property
    def loaded(self) -> bool:
        """Whether the model has been loaded."""
        return self._detector is not None

    def get(self) -> Any:
        """The detector, loaded now if it was not yet."""
        with self._lock:
            if self._detector is None:
                self._detector = self._load()
            return self._detector

    def predict(self, images: Sequence[np.ndarray], metas: Sequence[Any] | None = None) -> list[ImageRecord]:
        return list(self.get().predict(images, metas))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.get(), name)


def _unwrap(detector: Any) -> Any:
    """The detector behind a :class:`LazyDetector` (loading it), or ``detector`` itself."""
    return detector.get() if isinstance(detector, LazyDetector) else detector


class SharedEngine:
    """One source's view of an engine that several sources' pipelines use at once.

    Submissions go through the shared ``lock`` (the lock of :class:`SharedDetector`, so a direct
    ``predict`` never runs beside a forward pass); :meth:`drain` waits for this view's own
    chunks only, not for the other sources'.
    """

    def __init__(self, engine: Engine, lock: threading.Lock) -> None:
        self.engine, self.lock = engine, lock
        self.batch, self.depth, self.prepare_inline = engine.batch, engine.depth, engine.prepare_inline
        self._cond = threading.Condition()
        self._in_flight = 0

    def prepare(self, images: Sequence[np.ndarray]) -> Any:
        return self.engine.prepare(images)

    def submit(self, prepared: Any, done: Done) -> None:
        def finished(output: Any, error: BaseException | None) -> None:
            try:
                done(output, error)
            finally:
                with self._cond:
                    self._in_flight -= 1
                    self._cond.notify_all()

        with self._cond:
            self._in_flight += 1
        try:
            with self.lock:
                self.engine.submit(prepared, finished)
        except BaseException:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()
            raise

    def drain(self) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._in_flight == 0)

    def finish(self, output: Any, shapes: Sequence[tuple[int, int]], metas: Sequence[FrameMeta]) -> list[ImageRecord]:
        return self.engine.finish(output, shapes, metas)


def pipeline_engine(detector: Any, batch: int) -> Engine | None:
    """The engine a harvest's pipeline runs on, or ``None`` when ``detector`` cannot be pipelined.

    A plain :class:`~cvactive.detect.model.Detector` gives its own engine; a :class:`SharedDetector`
    around one gives a :class:`SharedEngine` (built under its lock). Anything else (the
    consistency measures' :class:`~cvactive.consistency.measured.MeasuredDetector`, whose extra
    passes are not pipelined, or a user's wrapper) is inferred frame batch by frame batch.
    """
    detector = _unwrap(detector)
    if isinstance(detector, Detector):
        return engine_for(detector, batch)
    if isinstance(detector, SharedDetector) and isinstance(_unwrap(detector.detector), Detector):
        detector.detector = _unwrap(detector.detector)
        with detector.lock:
            engine = engine_for(detector.detector, batch)
        return SharedEngine(engine, detector.lock)
    return None


def live_window(engine: Engine) -> int:
    """Frames of a live source allowed in flight: one chunk per inference the engine runs at once.

    The OpenVINO engine runs ``OPTIMAL_NUMBER_OF_INFER_REQUESTS`` requests at once (its CPU
    streams; it keeps twice as many queued, which a live frame must not wait in); a batched
    engine runs one batch.
    """
    base: Any = getattr(engine, "engine", engine)
    compiled = getattr(base, "compiled", None)
    streams = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")) if compiled is not None else 1
    return max(1, streams) * int(base.batch)


class FrameTap:
    """A feed's frames as ``(image, meta)`` pairs for a pipeline, each :class:`FeedFrame` kept for the harvest.

    Args:
        feed: the frames (:func:`cvactive.harvest.feed.iter_feed`), decoded here, on the
            pipeline's reader thread, before the next one is grabbed.
        window: at most this many frames handed out and not yet :meth:`taken` (live sources:
            :func:`live_window`); ``None``: no limit beyond the pipeline's own queues.
        halt: set it to end the pairs while waiting for room in the window.
    """

    def __init__(self, feed: Iterable[FeedFrame], window: int | None, halt: threading.Event) -> None:
        self.feed, self.halt = feed, halt
        self.frames: deque[FeedFrame] = deque()
        self._room = threading.Semaphore(window) if window else None

    def __iter__(self) -> Iterator[tuple[np.ndarray, FrameMeta]]:
        frames = iter(self.feed)
        while self._wait_for_room():
            frame = next(frames, None)
            if frame is None:
                return
            image = frame.image()
            self.frames.append(frame)
            yield image, FrameMeta(frame.source, frame.index, frame.timestamp)

    def _wait_for_room(self) -> bool:
        if self._room is None:
            return not self.halt.is_set()
        while not self._room.acquire(timeout=0.1):
            if self.halt.is_set():
                return False
        return True

    def taken(self) -> FeedFrame:
        """The frame of the record the pipeline yielded next (records come in input order); frees its room."""
        frame = self.frames.popleft()
        if self._room is not None:
            self._room.release()
        return frame
