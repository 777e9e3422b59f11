"""The score stage: run the detector over a source and write one scored JSON line per image.

With ``workers > 0`` (the default) a plain :class:`~cvactive.detect.model.Detector` runs through the
:class:`~cvactive.detect.pipeline.Pipeline`: still images decode on ``workers`` threads and videos on a
reader thread, worker threads letterbox, run NMS and score, and the inference engine stays
busy; records come out in input order. ``workers=0`` scores batch after batch on the calling thread (and a
:class:`~cvactive.consistency.measured.MeasuredDetector`, whose extra passes are not pipelined,
always does).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cvactive.detect.model import Detector
from cvactive.detect.pipeline import default_workers, read_frames, run_detector
from cvactive.detect.scorer import Scorer
from cvactive.errors import ConfigError, OutputError
from cvactive.io import JsonlWriter
from cvactive.outputs import check_file_output, move_aside, path_lock
from cvactive.record import ImageRecord
from cvactive.sources import (
    VIDEO_SUFFIXES,
    FrameMeta,
    Source,
    SourceReport,
    expand,
    is_stream,
    iter_frames,
    open_video,
)

if TYPE_CHECKING:
    from cvactive.consistency.measured import MeasuredDetector

log = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".partial"


@dataclass
class ScoreSummary:
    """What a scoring run did.

    Attributes:
        records, boxes: lines and boxes in the finished file (resumed ones included).
        resumed: lines kept from an unfinished run of the same command (``<out>.partial``).
        replaced: a complete ``out`` existed and was replaced by this run's file.
        written: whether ``out`` was written (``False`` when nothing at all could be scored: a
            previous ``out`` is then left as it was).
        set_aside: where an unfinished file of a different command was moved.
    """

    out: Path
    records: int = 0
    boxes: int = 0
    report: SourceReport = field(default_factory=SourceReport)
    resumed: int = 0
    replaced: bool = False
    written: bool = False
    set_aside: Path | None = None


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
    source: Source,
    detector: Detector | MeasuredDetector,
    scorer: Scorer,
    *,
    stride: int = 1,
    batch: int = 8,
    workers: int | None = None,
    report: SourceReport | None = None,
    strict: bool = False,
    skip: Container[str] = (),
) -> Iterator[ImageRecord]:
    """Yield a scored record for every image and every ``stride``-th frame of ``source``, in order.

    Args:
        source: what Ultralytics' ``predict`` takes: a path, folder, glob, video, stream, a BGR
            ``uint8`` array, a PIL image, or a list of these (:data:`cvactive.sources.Source`).
        workers: pipeline worker threads (``None``: :func:`cvactive.detect.pipeline.default_workers`
            for this detector, which is ``0`` for a PyTorch model on the CPU; ``0``: no pipeline,
            batch after batch on this thread). Same records either way.
        skip: keys (:attr:`ImageRecord.key <cvactive.record.ImageRecord.key>`) of images and frames
            to leave out before the detector sees them (those a resumed run has already).
    """
    if workers is None:
        workers = default_workers(detector) if isinstance(detector, Detector) else 0
    workers = int(workers)
    if workers < 0:
        raise ConfigError(f"workers must be 0 (no pipeline) or a positive number of threads, got {workers}")
    if isinstance(detector, Detector) and workers > 0:
        frames = read_frames(source, stride=stride, report=report, strict=strict, workers=workers)
        yield from run_detector(detector, _unskipped(frames, skip), batch, workers=workers, scorer=scorer)
        return
    frames = _unskipped(iter_frames(source, stride=stride, report=report, strict=strict), skip)
    if isinstance(detector, Detector):
        yield from detector.predict_stream(frames, batch, scorer=scorer)
        return
    for record in detector.predict_stream(frames, batch=batch):  # consistency measures: not pipelined
        yield scorer(record)


def _unskipped(frames: Iterable[tuple[Any, FrameMeta]], skip: Container[str]) -> Iterator[tuple[Any, FrameMeta]]:
    for image, meta in frames:
        if (meta.source if meta.frame is None else f"{meta.source}#{meta.frame}") not in skip:
            yield image, meta


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
    command: Mapping[str, Any] | None = None,
    lock: bool = True,
) -> ScoreSummary:
    """Score every image/frame of ``source`` and write the JSON lines to ``out``, whole or not at all.

    Lines go to ``<out>.partial`` (flushed one by one); only when every source is done does it
    become ``out`` (a complete ``out`` from before is kept until then). A run that stops early
    (killed, a full disk, ``strict`` and a bad file) leaves the ``.partial``; the same command run
    again resumes from it: the lines it holds are kept (a half-written last line is dropped) and
    their images and frames are not scored again. A ``.partial`` of a different command is moved
    aside (``<out>.partial.old-<time>``). The output name is locked for the run.

    Args:
        source: image, folder, glob pattern, video, stream URL or camera index.
        detector: the loaded :class:`~cvactive.detect.model.Detector`, or a
            :class:`~cvactive.consistency.measured.MeasuredDetector` for the consistency measures.
        out: the JSON-lines file to write (replaced if it exists).
        scorer: measures and aggregations (all of them by default).
        stride: keep every n-th video frame.
        batch: images per forward pass (batched engines; OpenVINO infers one per request).
        workers: pipeline worker threads (``None``: the default; ``0``: no pipeline).
        class_scores: also write each box's full class-score row.
        strict: stop at the first unreadable file instead of reporting it.
        progress: show a progress bar.
        command: what defines the lines (model, thresholds, measures ...; the CLI passes its
            options): a ``.partial`` is resumed only by the same ``command``. Default: the source,
            stride, batch, class-score flag, detector settings and scorer.
        lock: hold the lock of ``out`` for the run (``False`` when the caller holds it already).

    Raises:
        OutputError: ``out`` is a folder, sits under a file, is read-only or is in use by another run.
    """
    out_path = check_file_output(out)
    scorer = scorer or Scorer()
    if command is None:
        command = _default_command(source, detector, scorer, stride, batch, class_scores)
    with path_lock(out_path, "score") if lock else contextlib.nullcontext(out_path):
        return _score_into(
            source, detector, out_path, scorer, stride, batch, workers, class_scores, strict, progress, command
        )


def partial_path(out: str | Path) -> Path:
    """Where an unfinished ``score`` writes: ``<out>.partial``."""
    p = Path(out)
    return p.with_name(p.name + PARTIAL_SUFFIX)


def _fingerprint(command: Mapping[str, Any]) -> str:
    return json.dumps(dict(command), sort_keys=True, default=str)


def _default_command(
    source: str | Path,
    detector: Any,
    scorer: Scorer,
    stride: int,
    batch: int,
    class_scores: bool,
) -> dict[str, Any]:
    settings = {k: getattr(detector, k, None) for k in ("model_path", "imgsz", "conf", "iou", "max_det", "embed")}
    return {
        "source": str(source),
        "stride": stride,
        "batch": batch,
        "class_scores": class_scores,
        "detector": type(detector).__name__,
        **settings,
        "scorer": repr(scorer),
    }


def _resume(partial: Path, command: Mapping[str, Any], summary: ScoreSummary) -> set[str]:
    """Take up ``partial`` when the same command wrote it (keys of its complete lines); else set it aside."""
    sidecar = partial.with_name(partial.name + ".json")
    fingerprint = _fingerprint(command)
    if partial.is_dir():
        raise OutputError(f"{partial} is a folder; it is where score writes until it is done: move it away")
    done: set[str] = set()
    if partial.exists():
        try:
            same = json.loads(sidecar.read_text(encoding="utf-8")).get("command") == fingerprint
        except (OSError, ValueError, AttributeError):
            same = False
        if not same:
            summary.set_aside = move_aside(partial)
            log.info("%s is from another command; moved aside to %s", partial, summary.set_aside)
        else:
            done = _complete_lines(partial, summary)
            log.info("resuming %s: %d image(s)/frame(s) already scored", partial, len(done))
    if not done:
        from cvactive.outputs import write_json_atomic

        write_json_atomic(sidecar, {"command": fingerprint}, fsync=False)
    return done


def _complete_lines(partial: Path, summary: ScoreSummary) -> set[str]:
    """Keys of the complete lines of ``partial``; a broken tail (a half-written line) is cut off."""
    done: set[str] = set()
    good = 0
    with partial.open("rb") as fh:
        for raw in fh:
            try:
                if not raw.endswith(b"\n"):
                    raise ValueError("no end of line")
                data = json.loads(raw)
                key = str(data["source"]) if data.get("frame") is None else f"{data['source']}#{data['frame']}"
            except (ValueError, KeyError, TypeError):
                break
            done.add(key)
            good += len(raw)
            summary.resumed += 1
            summary.boxes += len(data.get("boxes") or ())
    if good != partial.stat().st_size:
        os.truncate(partial, good)
    return done


def _score_into(
    source: str | Path,
    detector: Detector | MeasuredDetector,
    out: Path,
    scorer: Scorer,
    stride: int,
    batch: int,
    workers: int | None,
    class_scores: bool,
    strict: bool,
    progress: bool,
    command: Mapping[str, Any],
) -> ScoreSummary:
    from tqdm import tqdm

    summary = ScoreSummary(out=out)
    partial = partial_path(out)
    done = _resume(partial, command, summary)
    total = estimate_frames(source, stride)
    records = iter_scored(
        source,
        detector,
        scorer,
        stride=stride,
        batch=batch,
        workers=workers,
        report=summary.report,
        strict=strict,
        skip=done,
    )
    sidecar = partial.with_name(partial.name + ".json")
    writer = JsonlWriter(partial, append=True, class_scores=class_scores)
    bar = tqdm(total=total, initial=summary.resumed, disable=not progress, unit="img", desc="scoring")
    try:
        with writer, bar:
            for record in records:
                writer.write(record)
                summary.boxes += len(record)
                bar.update(1)
            _fsync(partial)
    except BaseException:
        if not summary.resumed and not writer.count:  # nothing to resume from: leave no trace
            partial.unlink(missing_ok=True)
            sidecar.unlink(missing_ok=True)
        raise
    finally:
        close = getattr(records, "close", None)
        if close is not None:  # stop the pipeline's threads now, not at interpreter exit
            close()
    summary.records = summary.resumed + writer.count
    if summary.records == 0:  # nothing could be read: keep the old file, leave no empty one
        partial.unlink(missing_ok=True)
        sidecar.unlink(missing_ok=True)
        return summary
    summary.replaced = out.exists()
    os.replace(partial, out)
    sidecar.unlink(missing_ok=True)
    summary.written = True
    return summary


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as err:
        raise OSError(err.errno, err.strerror, str(path)) from err
