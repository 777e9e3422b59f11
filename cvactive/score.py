"""The score stage: run the detector over a source and write one scored JSON line per image.

With ``workers > 0`` (the default) a plain :class:`~cvactive.detector.Detector` runs through the
:class:`~cvactive.pipeline.Pipeline`: still images decode on ``workers`` threads and videos on a
reader thread, worker threads letterbox, run NMS and score, and the inference engine stays
busy; records come out in input order. ``workers=0`` scores batch after batch on the calling thread (and a
:class:`~cvactive.consistency.measured.MeasuredDetector`, whose extra passes are not pipelined,
always does).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cvactive.detector import Detector
from cvactive.errors import ConfigError
from cvactive.io import JsonlWriter
from cvactive.pipeline import default_workers, read_frames
from cvactive.record import ImageRecord
from cvactive.scoring import Scorer
from cvactive.sources import VIDEO_SUFFIXES, SourceReport, expand, is_stream, iter_frames, open_video

if TYPE_CHECKING:
    from cvactive.consistency.measured import MeasuredDetector


@dataclass
class ScoreSummary:
    """What a scoring run did."""

    out: Path
    records: int = 0
    boxes: int = 0
    report: SourceReport = field(default_factory=SourceReport)


def estimate_frames(source: str | Path, stride: int = 1) -> int | None:
    """How many images/frames :func:`cvactive.sources.iter_frames` will yield (``None`` if unknown)."""
    if is_stream(str(source)):
        return None
    total = 0
    for path in expand(source):
        if path.suffix.lower() in VIDEO_SUFFIXES:
            try:
                cap, info = open_video(str(path))
            except Exception:
                continue
            cap.release()  # type: ignore[attr-defined]
            total += math.ceil(info.frame_count / stride) if info.frame_count else 0
        else:
            total += 1
    return total


def iter_scored(
    source: str | Path,
    detector: Detector | MeasuredDetector,
    scorer: Scorer,
    *,
    stride: int = 1,
    batch: int = 8,
    workers: int | None = None,
    report: SourceReport | None = None,
    strict: bool = False,
) -> Iterator[ImageRecord]:
    """Yield a scored record for every image and every ``stride``-th frame of ``source``, in order.

    Args:
        workers: pipeline worker threads (``None``: :func:`cvactive.pipeline.default_workers`;
            ``0``: no pipeline, batch after batch on this thread). Same records either way.
    """
    workers = default_workers() if workers is None else int(workers)
    if workers < 0:
        raise ConfigError(f"workers must be 0 (no pipeline) or a positive number of threads, got {workers}")
    if isinstance(detector, Detector) and workers > 0:
        frames = read_frames(source, stride=stride, report=report, strict=strict, workers=workers)
        yield from detector.predict_stream(frames, batch, workers=workers, scorer=scorer)
        return
    frames = iter_frames(source, stride=stride, report=report, strict=strict)
    if isinstance(detector, Detector):
        yield from detector.predict_stream(frames, batch, scorer=scorer)
        return
    for record in detector.predict_stream(frames, batch=batch):  # consistency measures: not pipelined
        yield scorer(record)


def score_source(
    source: str | Path,
    detector: Detector | MeasuredDetector,
    out: str | Path,
    *,
    scorer: Scorer | None = None,
    stride: int = 1,
    batch: int = 8,
    workers: int | None = None,
    class_scores: bool = False,
    strict: bool = False,
    progress: bool = True,
) -> ScoreSummary:
    """Score every image/frame of ``source`` and write the JSON lines to ``out``.

    Args:
        source: image, folder, glob pattern, video, stream URL or camera index.
        detector: the loaded :class:`~cvactive.detector.Detector`, or a
            :class:`~cvactive.consistency.measured.MeasuredDetector` for the consistency measures.
        out: the JSON-lines file to write (replaced if it exists).
        scorer: measures and aggregations (all of them by default).
        stride: keep every n-th video frame.
        batch: images per forward pass (batched engines; OpenVINO infers one per request).
        workers: pipeline worker threads (``None``: the default; ``0``: no pipeline).
        class_scores: also write each box's full class-score row.
        strict: stop at the first unreadable file instead of reporting it.
        progress: show a progress bar.
    """
    from tqdm import tqdm

    scorer = scorer or Scorer()
    summary = ScoreSummary(out=Path(out))
    total = estimate_frames(source, stride)
    records = iter_scored(
        source, detector, scorer, stride=stride, batch=batch, workers=workers, report=summary.report, strict=strict
    )
    with (
        JsonlWriter(out, class_scores=class_scores) as writer,
        tqdm(total=total, disable=not progress, unit="img", desc="scoring") as bar,
    ):
        for record in records:
            writer.write(record)
            summary.records += 1
            summary.boxes += len(record)
            bar.update(1)
    return summary
