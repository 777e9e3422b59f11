"""Pipelined inference: decode, letterbox, infer and post-process at once, records in input order.

One :class:`Pipeline` turns an iterable of ``(image, meta)`` pairs into
:class:`~cvactive.record.ImageRecord` objects, in the order the pairs came, while every stage
works at the same time::

    frames --reader thread--> chunks --workers: prepare (letterbox)--> inference thread
        --engine (OpenVINO async requests, or batched PyTorch)--> workers: finish (NMS,
        class-score rows, measures) --> caller, in input order

* The **reader** thread pulls the pairs (so a video decodes while the model runs) and cuts them
  into chunks of the engine's batch size. :func:`read_frames` is a source that also decodes
  still images on several threads (same pairs, same order as :func:`cvactive.sources.iter_frames`).
* **Workers** (a thread pool of ``workers`` threads) letterbox each chunk into the engine's
  input and, once the engine is done with it, run NMS, gather each kept box's class-score row
  and apply the optional :class:`~cvactive.detect.scorer.Scorer`. OpenCV, NumPy, PyTorch and OpenVINO
  release the GIL in their kernels, so these threads overlap for real.
* The **inference** thread hands prepared chunks to the engine in order; an engine with
  asynchronous requests keeps several in flight.
* The caller's thread receives each chunk's records in input order.

Queues between the stages are bounded, so memory stays flat however long the source is, and a
consumer that stops early (``break``, an exception) stops the threads. An error anywhere (an
unreadable file under ``strict``, a failed inference) is raised in the caller's thread at the
position of the chunk it belongs to; records before it have been yielded.

The engines (:mod:`cvactive.detect.engines`) are chosen by :func:`cvactive.detect.engines.engine_for`: an
OpenVINO model with a static input shape runs on its own ``AsyncInferQueue`` under the
``THROUGHPUT`` hint with the input conversions folded into the compiled graph; every other
model (PyTorch on CPU or CUDA, ONNX, dynamic exports) runs in batches through the Ultralytics
predictor of :class:`~cvactive.detect.model.Detector`. :func:`run_detector` is the one call for
a detector's records, pipelined (``workers > 0``) or batch after batch on the caller's thread.

Example::

    from cvactive.detect.model import Detector
    from cvactive.detect.pipeline import Pipeline
    from cvactive.detect.scorer import Scorer
    from cvactive.sources import iter_frames

    pipeline = Pipeline(Detector("yolov8n_int8_openvino_model"), workers=2, scorer=Scorer())
    for record in pipeline(iter_frames("traffic.mp4")):
        print(record.frame, len(record), record.image_scores["entropy_max"])
"""

from __future__ import annotations

import functools
import os
import queue
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cvactive.detect.engines import Engine, engine_for
from cvactive.detect.model import Detector
from cvactive.errors import ModelError, SourceError

if TYPE_CHECKING:
    from cvactive.detect.scorer import Scorer
    from cvactive.record import ImageRecord
    from cvactive.sources import FrameMeta, Source, SourceReport


def read_frames(
    source: Source,
    *,
    stride: int = 1,
    report: SourceReport | None = None,
    strict: bool = False,
    workers: int = 2,
) -> Iterator[tuple[np.ndarray, FrameMeta]]:
    """:func:`cvactive.sources.iter_frames` with still images decoded on ``workers`` threads.

    The same ``(image, meta)`` pairs in the same order, and the same report (counts, and
    failures in file order; ``strict`` raises at the first). Videos and streams decode on the
    calling thread as before (a video's frames are sequential); images are read a few ahead.
    """
    from cvactive.in_memory import is_path_like, source_items
    from cvactive.sources import (
        IMAGE_SUFFIXES,
        VIDEO_SUFFIXES,
        SourceReport,
        expand,
        is_stream,
        iter_frames,
        iter_video,
    )

    report = report if report is not None else SourceReport()
    items = source_items(source)
    if workers < 2 or not all(is_path_like(i) and not is_stream(str(i)) for i in items):
        yield from iter_frames(source, stride=stride, report=report, strict=strict)
        return
    files = [path for item in items for path in expand(item)]
    with ThreadPoolExecutor(workers, thread_name_prefix="cvactive-decode") as pool:
        pending: deque[tuple[Path, Future[np.ndarray]]] = deque()
        for path in files:
            suffix = path.suffix.lower()
            if suffix in IMAGE_SUFFIXES:
                pending.append((path, pool.submit(_read_image, path)))
                if len(pending) > 2 * workers:
                    yield from _decoded(pending.popleft(), report, strict)
                continue
            while pending:
                yield from _decoded(pending.popleft(), report, strict)
            if suffix in VIDEO_SUFFIXES:
                yield from iter_video(str(path), stride=stride, report=report, strict=strict)
            else:
                report.fail(str(path), f"unsupported file type {suffix!r}", strict)
        while pending:
            yield from _decoded(pending.popleft(), report, strict)


def _read_image(path: Path) -> np.ndarray:
    from cvactive.sources import read_image

    return read_image(path)


def _decoded(
    item: tuple[Path, Future[np.ndarray]], report: SourceReport, strict: bool
) -> Iterator[tuple[np.ndarray, FrameMeta]]:
    from cvactive.sources import FrameMeta

    path, future = item
    try:
        image = future.result()
    except SourceError as err:
        report.fail(str(path), str(err).split(": ", 1)[-1], strict)
        return
    report.images += 1
    yield image, FrameMeta(source=str(path))


def default_workers(detector: Detector | None = None) -> int:
    """Worker threads by default: half the CPU cores, at least 2 and at most 8.

    For a PyTorch model on the CPU, ``0`` (batch after batch, no pipeline): its forward pass
    already takes every core, and the pipeline's threads then take cores from it rather than
    filling idle ones (``tools/bench_score.py`` on 2 cores: the pipeline at 0.86-0.91x of the
    sequential path in two idle runs, with the same records).
    """
    if detector is not None and detector.is_pytorch and detector.device == "cpu":
        return 0
    return max(2, min(8, (os.cpu_count() or 2) // 2))


class Pipeline:
    """Ordered, overlapped detection over a stream of ``(image, meta)`` pairs.

    Args:
        model: the loaded :class:`~cvactive.detect.model.Detector` (its model, thresholds and
            preprocessing define the records; :func:`~cvactive.detect.engines.engine_for` picks
            its engine), or an :class:`~cvactive.detect.engines.Engine`.
        workers: threads that letterbox, run NMS and score (default :func:`default_workers`).
        batch: images per forward pass for batched engines (PyTorch and other non-OpenVINO
            backends); the OpenVINO engine infers one image per request.
        scorer: scores each record on the workers (``None``: records come back unscored).
        stall_timeout: seconds to wait for one chunk before giving up with a
            :class:`~cvactive.errors.ModelError` (an inference engine that hangs).

    A pipeline can be called many times, one stream after another (not at the same time).
    The records are those :meth:`Detector.predict <cvactive.detect.model.Detector.predict>` gives on the
    same images in the same batches (bit for bit in the tests, OpenVINO engine included; see
    docs/scoring.md).
    """

    def __init__(
        self,
        model: Detector | Engine,
        *,
        workers: int | None = None,
        batch: int = 8,
        scorer: Scorer | None = None,
        stall_timeout: float = 300.0,
    ) -> None:
        workers = default_workers() if workers is None else int(workers)
        if workers < 1:
            raise ModelError(f"a pipeline needs at least 1 worker thread, got workers={workers}")
        if batch < 1:
            raise ModelError(f"batch must be at least 1, got {batch}")
        self.engine: Engine = engine_for(model, batch) if isinstance(model, Detector) else model
        self.workers, self.scorer = workers, scorer
        self.stall_timeout = float(stall_timeout)

    def __call__(self, frames: Iterable[tuple[np.ndarray, FrameMeta]]) -> Iterator[ImageRecord]:
        """Records of ``frames`` (``(BGR uint8 image (H, W, 3), meta)`` pairs), in input order."""
        run = _Run(self, frames)
        return run.results()


def run_detector(
    detector: Detector,
    frames: Iterable[tuple[np.ndarray, FrameMeta]],
    batch: int = 8,
    *,
    workers: int | None = 0,
    scorer: Scorer | None = None,
) -> Iterator[ImageRecord]:
    """A detector's records for ``(image, meta)`` pairs, in input order, pipelined or not.

    Args:
        detector: the loaded detector.
        frames: ``(BGR uint8 image, meta)`` pairs.
        batch: images per forward pass (PyTorch and other batched backends).
        workers: ``0`` runs batch after batch on the calling thread
            (:meth:`Detector.predict_stream <cvactive.detect.model.Detector.predict_stream>`);
            ``n > 0`` runs a :class:`Pipeline` with ``n`` worker threads; ``None``:
            :func:`default_workers` for this detector. All give the same records.
        scorer: also score each record (on the pipeline's workers when pipelined).
    """
    if batch < 1:
        raise ModelError(f"batch must be at least 1, got {batch}")
    workers = default_workers(detector) if workers is None else workers
    if workers < 0:
        raise ModelError(f"workers must be 0 (no pipeline) or more, got {workers}")
    if workers == 0:
        return detector.predict_stream(frames, batch, scorer=scorer)
    return Pipeline(detector, workers=workers, batch=batch, scorer=scorer)(frames)


@dataclass
class _Slot:
    """One chunk's result, filled by whichever thread finishes it."""

    ready: threading.Event = field(default_factory=threading.Event)
    records: list[ImageRecord] = field(default_factory=list)
    error: BaseException | None = None

    def set(self, records: list[ImageRecord] | None = None, error: BaseException | None = None) -> None:
        self.records, self.error = records or [], error
        self.ready.set()


@dataclass
class _Chunk:
    images: list[np.ndarray]
    metas: list[FrameMeta]
    shapes: list[tuple[int, int]]
    slot: _Slot = field(default_factory=_Slot)


class _Failure:
    """An error of the reader, delivered to the caller in order."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


class _Run:
    """The threads and queues of one pass of a :class:`Pipeline` over one stream."""

    def __init__(self, pipeline: Pipeline, frames: Iterable[tuple[np.ndarray, FrameMeta]]) -> None:
        self.p, self.engine, self.frames = pipeline, pipeline.engine, frames
        self.stop = threading.Event()
        self.pool = ThreadPoolExecutor(pipeline.workers, thread_name_prefix="cvactive-worker")
        ahead = 2 * pipeline.workers + 1
        # Chunks read but not yet handed to the engine, and chunks not yet returned to the caller.
        self.to_infer: queue.Queue[Any] = queue.Queue(maxsize=ahead)
        self.to_yield: queue.Queue[Any] = queue.Queue(maxsize=ahead + self.engine.depth + pipeline.workers)
        self.threads = [
            threading.Thread(target=self._read, name="cvactive-reader", daemon=True),
            threading.Thread(target=self._infer, name="cvactive-infer", daemon=True),
        ]

    # -- producer side ------------------------------------------------------------------
    def _put(self, q: queue.Queue[Any], item: Any) -> bool:
        while not self.stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _chunks(self) -> Iterator[_Chunk]:
        size = self.engine.batch
        images: list[np.ndarray] = []
        metas: list[FrameMeta] = []
        for image, meta in self.frames:
            images.append(image)
            metas.append(meta)
            if len(images) == size:
                yield _Chunk(images, metas, [_shape(i) for i in images])
                images, metas = [], []
        if images:
            yield _Chunk(images, metas, [_shape(i) for i in images])

    def _read(self) -> None:
        try:
            for chunk in self._chunks():
                prepared = self._prepare(chunk)
                if not (self._put(self.to_yield, chunk) and self._put(self.to_infer, (chunk, prepared))):
                    return
        except BaseException as err:  # delivered to the caller, in order
            self._put(self.to_yield, _Failure(err))
        finally:
            self._put(self.to_infer, _END)
            self._put(self.to_yield, _END)

    def _prepare(self, chunk: _Chunk) -> Future[Any]:
        """The chunk's engine input: made by a worker, or here when the engine says that is cheaper."""
        if not self.engine.prepare_inline:
            return self.pool.submit(self.engine.prepare, chunk.images)
        made: Future[Any] = Future()
        try:
            made.set_result(self.engine.prepare(chunk.images))
        except Exception as err:  # delivered at the chunk's place, as a worker's error would be
            made.set_exception(err)
        return made

    def _infer(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    item = self.to_infer.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item is _END:
                    break
                chunk, prepared = item
                try:
                    tensor = prepared.result()
                    chunk.images = []  # let the decoded images go: only their shapes are needed now
                    self.engine.submit(tensor, functools.partial(self._inferred, chunk))
                except BaseException as err:
                    chunk.slot.set(error=err)
        finally:
            self.engine.drain()

    def _inferred(self, chunk: _Chunk, output: Any, error: BaseException | None) -> None:
        # Called by the engine, possibly on one of its own threads: hand the output to a worker.
        if error is not None:
            chunk.slot.set(error=error)
            return
        try:
            self.pool.submit(self._finish, chunk, output)
        except RuntimeError as err:  # the pool is shut down: the caller has stopped
            chunk.slot.set(error=err)

    def _finish(self, chunk: _Chunk, output: Any) -> None:
        try:
            records = self.engine.finish(output, chunk.shapes, chunk.metas)
            scorer = self.p.scorer
            chunk.slot.set([scorer(r) for r in records] if scorer is not None else records)
        except BaseException as err:
            chunk.slot.set(error=err)

    # -- consumer side ------------------------------------------------------------------
    def results(self) -> Iterator[ImageRecord]:
        for thread in self.threads:
            thread.start()
        try:
            while True:
                item = self.to_yield.get()
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                slot = item.slot
                if not slot.ready.wait(self.p.stall_timeout):
                    raise ModelError(
                        f"inference of {item.metas[0].source} gave no result in {self.p.stall_timeout:.0f} s; "
                        "the engine seems stuck: run again with --workers 0 (no pipeline)"
                    )
                if slot.error is not None:
                    raise slot.error
                yield from slot.records
        finally:
            self.close()

    def close(self) -> None:
        """Stop the threads (they finish the chunk in hand) and release the pool."""
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)
        self.pool.shutdown(wait=True, cancel_futures=True)


def _shape(image: np.ndarray) -> tuple[int, int]:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.dtype != np.uint8:
        got = f"{type(image).__name__} {getattr(image, 'shape', '')} {getattr(image, 'dtype', '')}"
        raise ModelError(f"the pipeline takes BGR uint8 images of shape (H, W, 3), got {got.strip()}")
    return int(image.shape[0]), int(image.shape[1])
