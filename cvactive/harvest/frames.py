"""What the file reader (:mod:`~cvactive.harvest.feed`) and the live reader
(:mod:`~cvactive.harvest.live`) share: the grabbed frame, the retry policy and reconnecting a
dropped stream. Kept below both so that neither imports the other at module level.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from cvactive.declare.fields import Declared, from_mapping, option
from cvactive.declare.ranges import NonNegFloat, NonNegInt
from cvactive.errors import VideoError
from cvactive.sources import Capture

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retry(Declared):
    """Reconnecting a live source: ``attempts`` tries, waiting ``backoff * 2**k`` s (at most ``max_backoff``).

    Tries count across drops until the stream has run ``reset_after`` seconds without one, so
    a source that reconnects and drops again at once is given up on, not retried forever.
    """

    attempts: NonNegInt = option(5, "tries before a dropped stream is given up on")
    backoff: NonNegFloat = option(1.0, "seconds before the first retry, doubled each time")
    max_backoff: NonNegFloat = option(30.0, "the longest wait between retries")
    reset_after: NonNegFloat = option(60.0, "seconds a stream must run without a drop to count tries from 0")

    where: ClassVar[str] = "retry"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | Retry | None) -> Retry:
        return from_mapping(cls, data, "retry") or cls()

    def delay(self, attempt: int) -> float:
        return float(min(self.backoff * 2.0**attempt, self.max_backoff))


@dataclass
class FeedFrame:
    """One grabbed frame: its index, its time, and its pixels on demand.

    Attributes:
        source: the video path or stream URL.
        index: frame index (live sources count on across reconnects and restarts).
        timestamp: seconds from the start of a file, or, for a live source, the wall-clock epoch
            seconds at which the frame was grabbed.
        stale: (live sources read with ``keep_up``) frames on the stride grid that arrived since
            the previous frame handed out and were dropped because a newer one replaced them.
        taken: (live, ``keep_up``) epoch seconds at which the harvest took this frame, else ``None``.
    """

    source: str
    index: int
    timestamp: float
    _cap: Capture | None = field(repr=False, default=None)
    _image: np.ndarray | None = field(repr=False, default=None)
    stale: int = 0
    taken: float | None = None

    def image(self) -> np.ndarray:
        """The decoded BGR frame (call before asking the feed for the next frame)."""
        if self._image is None:
            image = None if self._cap is None else self._cap.retrieve()
            if image is None:
                raise VideoError(f"{self.source}: frame {self.index} was grabbed but cannot be decoded")
            self._image = image
        return self._image


def reconnect(
    source: str, index: int, retry: Retry, used: int, stopped: Callable[[], bool], events: list[str] | None
) -> tuple[Capture | None, int]:
    """Reopen a dropped live source with backoff: ``(capture, tries used)``, capture ``None`` when out of tries."""
    for attempt in range(used, retry.attempts):
        wait = retry.delay(attempt)
        msg = f"{source}: stream dropped at frame {index}; reconnect {attempt + 1}/{retry.attempts} in {wait:.1f}s"
        log.warning(msg)
        if events is not None:
            events.append(msg)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if stopped():
                return None, attempt + 1
            time.sleep(min(0.2, max(deadline - time.monotonic(), 0.0)))
        try:
            cap = Capture(source)
        except VideoError:
            continue
        if events is not None:
            events.append(f"{source}: reconnected at frame {index}")
        return cap, attempt + 1
    return None, retry.attempts
