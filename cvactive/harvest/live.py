"""Reading a live source at its live edge: a thread that keeps only the newest frame.

A camera does not wait for the model. Read frame by frame inside the inference loop, a stream
queues up in OpenCV's and the network's buffers, and a model slower than the camera looks at
older and older frames. :class:`LiveReader` grabs every frame in its own thread as it arrives,
stamps it with the wall-clock time of the grab, converts the frames on the stride grid to
arrays, and keeps only the newest one in a one-frame slot. The harvest takes whatever is in
the slot when it is ready for the next frame; a grid frame replaced before anyone took it was
*stale*, and the next frame handed out carries how many such frames it replaced
(:attr:`FeedFrame.stale <cvactive.harvest.frames.FeedFrame.stale>`).

A dropped stream is reopened in the reader thread with the harvest's
:class:`~cvactive.harvest.frames.Retry` policy (the newest frame stays in the slot meanwhile);
the reader stops when the source gives up, when ``stopped()`` turns true, or when the consumer
stops iterating. OpenCV releases the GIL while it grabs and converts, so the reader runs beside
the model's inference on another core. Files are never read this way: they are read in full,
in order, by :func:`cvactive.harvest.feed.iter_feed`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

from cvactive.errors import VideoError
from cvactive.harvest.frames import FeedFrame, Retry, reconnect
from cvactive.sources import Capture, SourceReport

log = logging.getLogger(__name__)


class LiveReader:
    """Read a live source in a thread, keeping only its newest frame on the ``stride`` grid.

    Args:
        source: a stream URL or camera index.
        start: index of the first frame (live sources only number from it).
        stride: only frames whose index is a multiple of this are converted and handed out.
        report: counts grid frames grabbed and records a source given up on.
        retry: reconnection policy.
        stopped: polled by the reader; ``True`` ends it.
        events: receives a line for each stream drop and reconnect.
    """

    def __init__(
        self,
        source: str,
        *,
        start: int = 0,
        stride: int = 1,
        report: SourceReport | None = None,
        retry: Retry | None = None,
        stopped: Callable[[], bool] = lambda: False,
        events: list[str] | None = None,
    ) -> None:
        self.source, self.start, self.stride = source, start, stride
        self.report = report if report is not None else SourceReport()
        self.retry = retry or Retry()
        self.stopped, self.events = stopped, events
        self._cond = threading.Condition()
        self._slot: FeedFrame | None = None
        self._stale = 0
        self._done = False
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._read, name=f"live reader {source}", daemon=True)

    def frames(self) -> Iterator[FeedFrame]:
        """Start the reader and yield the newest frame each time the caller asks for one.

        Each frame's ``stale`` is the number of grid frames dropped since the previous one and
        ``taken`` the epoch seconds at which it was handed out. Ends when the reader ends and
        its last frame has been taken, or at once when ``stopped()`` turns true while no frame
        waits (a reader stuck in a grab on a hung stream does not hold the caller).
        """
        self._thread.start()
        try:
            while True:
                with self._cond:
                    while self._slot is None and not self._done and not self.stopped():
                        self._cond.wait(0.1)  # a hung camera blocks the reader, not a stop
                    frame, self._slot = self._slot, None
                    if frame is None:
                        return
                    frame.stale, self._stale = self._stale, 0
                frame.taken = time.time()
                yield frame
        finally:
            self.close()

    def close(self, timeout: float = 0.5) -> None:
        """Ask the reader to stop and wait up to ``timeout`` s for it (a grab may block longer;
        the thread then ends, releasing the source, as soon as that grab returns)."""
        self._closing.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # -- the reader thread ----------------------------------------------------------------
    def _halt(self) -> bool:
        return self._closing.is_set() or self.stopped()

    def _offer(self, frame: FeedFrame) -> None:
        with self._cond:
            if self._slot is not None:
                self._stale += 1
            self._slot = frame
            self.report.frames += 1
            self._cond.notify()

    def _read(self) -> None:
        try:
            self._grab_until_done()
        except Exception:  # the consumer must not wait forever on a reader that died
            log.exception("%s: live reader failed", self.source)
            raise
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _grab_until_done(self) -> None:
        source, retry = self.source, self.retry
        cap: Capture | None
        try:
            cap = Capture(source)
        except VideoError as err:
            self.report.fail(source, str(err).split(": ", 1)[-1], False, VideoError)
            return
        index, used, since = self.start, 0, time.monotonic()
        try:
            while not self._halt():
                if not cap.grab():
                    cap.release()
                    if time.monotonic() - since >= retry.reset_after:
                        used = 0
                    cap, used = reconnect(source, index, retry, used, self._halt, self.events)
                    since = time.monotonic()
                    if cap is None:
                        if not self._halt():
                            self.report.fail(
                                source, f"stream dropped at frame {index}; gave up after {retry.attempts} tries", False
                            )
                        return
                    continue
                stamp = time.time()
                if index % self.stride == 0:
                    image = cap.retrieve()
                    if image is None:
                        log.debug("%s: frame %d was grabbed but cannot be decoded; skipped", source, index)
                    else:
                        self._offer(FeedFrame(source, index, stamp, _image=image))
                index += 1
        finally:
            if cap is not None:
                cap.release()
