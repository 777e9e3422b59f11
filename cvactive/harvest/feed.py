"""Frames of one harvest source, decoded only when asked, with reconnects for live streams.

:func:`iter_feed` grabs every frame of a video file, stream URL or camera index and yields the
ones on the ``stride`` grid as :class:`FeedFrame` objects whose pixels are decoded
(``retrieve``) only when :meth:`FeedFrame.image` is called: a frame that no rule wants is never
converted to an array. A file that ends before its header's frame count is reported as
truncated, naming the frame reached; a live stream that drops is reopened with exponential
backoff, and each drop is reported.

A live source read with ``keep_up`` (the harvest default) goes through
:class:`~cvactive.harvest.live.LiveReader` instead: a thread grabs every frame as it arrives and
keeps only the newest one, so a model slower than the camera looks at the live edge rather than
at an ever older backlog; the frames it had no time for are counted as ``stale``.

:class:`FeedFrame`, :class:`Retry` and :func:`reconnect` live in :mod:`cvactive.harvest.frames`
(below both readers).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

from cvactive.errors import ConfigError, SourceError, VideoError
from cvactive.harvest.frames import FeedFrame, Retry, reconnect
from cvactive.sources import VIDEO_SUFFIXES, Capture, SourceReport, expand, is_stream

log = logging.getLogger(__name__)


@dataclass
class FeedInfo:
    """What is known of a source before reading it."""

    fps: float
    frame_count: int
    live: bool

    @property
    def duration(self) -> float:
        return self.frame_count / self.fps if self.frame_count else 0.0


def list_sources(source: str | Path) -> list[str]:
    """The videos a harvest source names: one file, the videos of a folder, or one stream/camera.

    Raises:
        SourceError: it does not exist or holds no video.
    """
    text = str(source)
    if is_stream(text):
        return [text]
    videos = [str(p) for p in expand(text) if p.suffix.lower() in VIDEO_SUFFIXES]
    if not videos:
        raise SourceError(f"source {text!r} holds no video file ({', '.join(sorted(VIDEO_SUFFIXES))})")
    return videos


def probe(source: str) -> FeedInfo:
    """Open a source once to read its fps and frame count.

    Raises:
        VideoError: it cannot be opened.
    """
    cap = Capture(source)
    cap.release()
    return FeedInfo(fps=cap.info.fps, frame_count=cap.info.frame_count, live=is_stream(source))


def iter_feed(
    source: str,
    *,
    start: int = 0,
    stride: int = 1,
    report: SourceReport | None = None,
    retry: Retry | None = None,
    stopped: Callable[[], bool] = lambda: False,
    events: list[str] | None = None,
    keep_up: bool = False,
) -> Generator[FeedFrame, None, None]:
    """Yield the frames of ``source`` whose index is a multiple of ``stride``, from ``start`` on.

    Args:
        source: a video file, a stream URL or a camera index.
        start: first frame index to read (a file is sought there; a live source only numbers from it).
        stride: frames whose index is not a multiple of ``stride`` are grabbed, never decoded.
        report: collects frames read and failures (truncated file, stream given up on).
        retry: reconnection policy for live sources.
        stopped: polled while waiting to reconnect; ``True`` ends the feed.
        events: receives a line for each stream drop and reconnect.
        keep_up: read a live source in a thread that keeps only its newest frame
            (:class:`~cvactive.harvest.live.LiveReader`); files are always read in full, in order.
    """
    if stride < 1:
        raise ConfigError(f"stride must be at least 1, got {stride}")
    report = report if report is not None else SourceReport()
    retry = retry or Retry()
    live = is_stream(source)
    if live and keep_up:
        from cvactive.harvest.live import LiveReader

        reader = LiveReader(
            source, start=start, stride=stride, report=report, retry=retry, stopped=stopped, events=events
        )
        yield from reader.frames()
        return
    cap: Capture | None
    try:
        cap = Capture(source)
    except VideoError as err:
        report.fail(source, str(err).split(": ", 1)[-1], False, VideoError)
        return
    info = cap.info
    try:
        index = start if live else cap.seek(start)
        used, since = 0, time.monotonic()
        while True:
            if not cap.grab():
                if not live:
                    break
                cap.release()
                if time.monotonic() - since >= retry.reset_after:
                    used = 0
                cap, used = reconnect(source, index, retry, used, stopped, events)
                since = time.monotonic()
                if cap is None:
                    if not stopped():
                        report.fail(
                            source, f"stream dropped at frame {index}; gave up after {retry.attempts} tries", False
                        )
                    return
                continue
            if index % stride == 0:
                report.frames += 1
                stamp = time.time() if live else index / info.fps
                yield FeedFrame(source, index, stamp, cap)
            index += 1
        if info.frame_count and index < info.frame_count - 1:
            report.fail(source, f"video ended at frame {index} of {info.frame_count} (truncated or corrupt)", False)
        elif index == 0:
            report.fail(source, "no frame could be decoded", False)
    finally:
        if cap is not None:
            cap.release()
