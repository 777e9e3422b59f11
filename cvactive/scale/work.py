"""Score one shard: read its images or frames, detect, measure, write its files (no Ray here).

:class:`ShardScorer` is what every Ray actor holds: one detector, one scorer, built once by a
picklable factory, and called on one shard at a time. The same class runs in-process for
tests and for ``engine="local"`` style use, so the Ray path and a plain loop share every line
that touches images, the model and the files.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cvactive.detect.model import Detector
from cvactive.detect.pipeline import run_detector
from cvactive.detect.scorer import Scorer
from cvactive.errors import SourceError
from cvactive.record import ImageRecord
from cvactive.scale.shards import FORMATS, ShardResult, write_shard
from cvactive.sharded import Shard
from cvactive.sources import IMAGE_SUFFIXES, FrameMeta, SourceReport, iter_video, read_image

log = logging.getLogger(__name__)

#: builds the detector inside a worker: a Detector, or a MeasuredDetector for consistency measures
DetectorFactory = Callable[[], Any]


def shard_frames(shard: Shard, report: SourceReport) -> Iterator[tuple[np.ndarray, FrameMeta]]:
    """``(image, meta)`` of every image, or every ``stride``-th frame in the range, of a shard.

    Unreadable images and broken videos go into ``report``, as :func:`cvactive.sources.iter_frames`
    reports them on the local path.
    """
    if shard.video is not None:
        frames = iter_video(shard.video, stride=shard.stride, start=shard.start, report=report)
        with contextlib.closing(frames):  # type: ignore[type-var]  # a generator
            for image, meta in frames:
                if shard.stop is not None and meta.frame is not None and meta.frame >= shard.stop:
                    return
                yield image, meta
        return
    for text in shard.paths:
        path = Path(text)
        suffix = path.suffix.lower()
        if suffix not in IMAGE_SUFFIXES:
            report.fail(text, f"unsupported file type {suffix!r}", strict=False)
            continue
        try:
            image = read_image(path)
        except SourceError as err:
            report.fail(text, str(err).split(": ", 1)[-1], strict=False)
            continue
        report.images += 1
        yield image, FrameMeta(source=text)


class ShardScorer:
    """One detector and one scorer; ``score(shard)`` writes the shard's files and returns its result.

    Args:
        out: the output folder (on a cluster: storage every node can write).
        factory: builds the detector (called once, in the worker).
        scorer: the measures and aggregations.
        batch: images per forward pass.
        workers: threads of the inference pipeline (:mod:`cvactive.detect.pipeline`) that letterbox, run
            NMS and score while the model runs (``None``: half the CPU cores, 2 to 8; ``0``: batch
            after batch on one thread). Same records either way. A detector the pipeline cannot
            run (a :class:`~cvactive.consistency.measured.MeasuredDetector`) always goes batch by batch.
            On 2 CPU cores with the OpenVINO model (coco128 val2017 and every 2nd traffic frame,
            585 records, actor start-up included) pipelined actors took 19-21 s against 25-31 s
            for one actor of 2 CPUs, and 25-26 s against 27-34 s for two actors of 1 CPU.
        formats: shard files to write (``jsonl``, ``parquet``).
        class_scores: keep each box's class-score row in the JSON lines.
        embedding_dtype: ``float32`` or ``float16`` for the ``.emb.npy`` files.
    """

    def __init__(
        self,
        out: str | Path,
        factory: DetectorFactory,
        scorer: Scorer,
        *,
        batch: int = 8,
        workers: int | None = None,
        formats: Sequence[str] = FORMATS,
        class_scores: bool = False,
        embedding_dtype: str = "float32",
    ) -> None:
        import os

        from cvactive.detect.pipeline import default_workers

        started = time.perf_counter()
        self.out = Path(out)
        self.detector = factory()
        # What building the detector cost this worker (its first import of the model's libraries included).
        self.worker = {"pid": os.getpid(), "startup_seconds": round(time.perf_counter() - started, 3)}
        self.scorer = scorer
        self.batch = int(batch)
        self.workers = default_workers() if workers is None else int(workers)
        self.formats = tuple(formats)
        self.class_scores = class_scores
        self.embedding_dtype = embedding_dtype

    def score(self, shard: Shard) -> ShardResult:
        """Score every image/frame of ``shard`` and write its files (replacing any earlier attempt)."""
        start = time.perf_counter()
        report = SourceReport()
        records = self.records(shard_frames(shard, report))
        result = ShardResult(
            shard.index,
            records=len(records),
            boxes=sum(len(r) for r in records),
            failures=list(report.failures),
            worker=dict(self.worker),
        )
        result.seconds = time.perf_counter() - start
        write_shard(
            self.out,
            shard,
            records,
            result,
            formats=self.formats,
            class_scores=self.class_scores,
            embedding_dtype=self.embedding_dtype,
        )
        log.debug("shard %d: %d records, %d boxes", shard.index, result.records, result.boxes)
        return result

    def records(self, frames: Iterator[tuple[np.ndarray, FrameMeta]]) -> list[ImageRecord]:
        """The scored records of ``frames``, through the pipeline when the detector allows it."""
        if self.workers > 0 and isinstance(self.detector, Detector):
            return list(run_detector(self.detector, frames, self.batch, workers=self.workers, scorer=self.scorer))
        return [self.scorer(r) for r in self.detector.predict_stream(frames, batch=self.batch)]
