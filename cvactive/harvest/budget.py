"""Budgets: hard caps (a ledger of kept frames) and pacing (an adaptive threshold).

**Caps.** :class:`Limits` caps how many frames may be kept per minute, hour and day and in
total. A :class:`Ledger` holds the clock time of every frame kept in the last day and the
total, so the question "may one more be kept now?" is answered from the ledger alone. The
clock is stream time for video files (seconds since the start of the first file, summed over
the files of a folder) and wall time for live sources. The ledger is part of the saved state,
so a restarted harvest never spends a budget twice.

**Pacing.** Caps alone spend a budget on the first minutes of a stream. :class:`Pacer` spreads
``budget`` frames over the expected rest of the stream (or over each ``period`` of a live
feed) with a threshold that tracks the score distribution:

1. Target rate. With ``R`` frames of budget left and ``T`` seconds of stream left, and ``dt``
   seconds between evaluated frames, about ``T / dt`` frames remain, of which a fraction ``c``
   are candidates (``c`` is measured: candidates over frames seen so far). The pacer wants to
   keep ``p = R / (c * T / dt)`` of the coming candidates.
2. Threshold. It keeps a sliding window of the last ``window`` candidate scores and sets
   ``theta`` to the ``1 - p`` quantile of that window: a candidate is kept when its score
   exceeds ``theta``, which keeps the top ``p`` fraction of a stream that looks like the recent
   past. Ties are broken by a seeded jitter of 1e-6 times a uniform draw.
3. Feedback. ``R`` and ``T`` are re-read at every candidate: a pacer that kept too few (because
   scores dropped, or because near-duplicates were refused after it said yes) sees ``p`` rise
   and lowers its threshold; one that kept too many raises it. When ``p >= 1`` every candidate
   is kept, so a known-length stream ends with its budget spent if it has enough candidates.
4. Warm-up. Until the window holds ``warmup`` scores, a candidate is kept with probability
   ``p`` (a seeded draw).
5. Schedule band. Scores drift (a quiet hour, then a busy one), and a quantile of the recent
   past cannot see a trend coming: on a rising trend every new score beats the window. So the
   pacer also holds the spending near the straight-line schedule ``budget * elapsed / (0.9 *
   span)`` (``span`` is the horizon, or the period; the schedule reaches the whole budget at 90%
   of the span, so a static last stretch cannot leave it unspent): a candidate is refused while the pacer is
   ``slack`` or more frames ahead of it, and kept whatever its score while it is more than
   ``slack`` frames behind (``slack`` defaults to 5% of the budget, at least 1).
6. Caps. The budget paced is never more than the hard caps let through over the span:
   ``min(budget, cap * ceil(span / window))`` for each of ``per_minute``, ``per_hour`` and
   ``per_day`` (:func:`cap_allowance`). Without this a ``total`` of 5,000 over a 30 s clip
   means "keep every candidate", and a per-minute cap of 6 is spent in the first seconds; with
   it the pacer spreads the 6 over the clip.

This is the variable-threshold idea of Zliobaite et al. (*Active learning with drifting
streaming data*, 2014) with the threshold set by quantile instead of by fixed steps. With
``score: random`` the score is a seeded uniform draw, and pacing is adaptive random thinning.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import Field

from cvactive.declare.fields import Declared, from_mapping, option
from cvactive.declare.ranges import NonNegFloat, NonNegInt, PacingScore, PosFloat, PosInt
from cvactive.errors import ConfigError

#: fraction of the pacing span by which the straight-line schedule reaches the whole budget.
FINISH = 0.9

#: cap name -> window in seconds (``total`` has no window).
WINDOWS: dict[str, float] = {"per_minute": 60.0, "per_hour": 3600.0, "per_day": 86400.0}


@dataclass(frozen=True)
class Limits(Declared):
    """Caps on kept frames; ``None`` means no cap."""

    per_minute: NonNegInt | None = option(None, "frames kept in any 60 s")
    per_hour: NonNegInt | None = option(None, "frames kept in any hour")
    per_day: NonNegInt | None = option(None, "frames kept in any 24 h")
    total: NonNegInt | None = option(None, "frames kept in all")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | Limits | None, where: str = "limits") -> Limits:
        return from_mapping(cls, data, where) or cls()

    @property
    def unlimited(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


@dataclass
class Ledger:
    """The clock times of frames kept in the last day, and the total kept, checked against :class:`Limits`."""

    limits: Limits = field(default_factory=Limits)
    times: deque[float] = field(default_factory=deque)
    total: int = 0

    def _prune(self, clock: float) -> None:
        while self.times and clock - self.times[0] >= WINDOWS["per_day"]:
            self.times.popleft()

    def count_within(self, clock: float, seconds: float) -> int:
        """Frames kept in the half-open window ``(clock - seconds, clock]``."""
        return sum(1 for t in reversed(self.times) if clock - t < seconds)

    def blocked_by(self, clock: float) -> str | None:
        """The name of the first cap that forbids keeping one more frame at ``clock``, or ``None``."""
        if self.limits.total is not None and self.total >= self.limits.total:
            return "total"
        self._prune(clock)
        for name, seconds in WINDOWS.items():
            cap = getattr(self.limits, name)
            if cap is not None and self.count_within(clock, seconds) >= cap:
                return name
        return None

    def allows(self, clock: float) -> bool:
        return self.blocked_by(clock) is None

    def charge(self, clock: float) -> None:
        """Record one kept frame at ``clock``."""
        self.total += 1
        if not (self.limits.per_minute is None and self.limits.per_hour is None and self.limits.per_day is None):
            self.times.append(float(clock))
            self._prune(clock)

    def exhausted(self) -> bool:
        """True once the total cap is reached (nothing more can ever be kept)."""
        return self.limits.total is not None and self.total >= self.limits.total

    def to_dict(self) -> dict[str, Any]:
        return {"times": list(self.times), "total": self.total}

    def load(self, data: Mapping[str, Any]) -> None:
        self.times = deque(float(t) for t in data.get("times", []))
        self.total = int(data.get("total", 0))


@dataclass(frozen=True)
class Pacing(Declared):
    """Pacing parameters (see the module docstring for the algorithm).

    Attributes:
        budget: frames to spread; defaults to the harvest's ``budget.total``.
        score: the image score that ranks candidates (``<measure>_<aggregation>``), or
            ``"random"`` for a seeded uniform draw.
        horizon: expected stream length in seconds; known for video files, required for live
            sources unless ``period`` is set.
        period: spread ``budget`` over each period of this many seconds instead (live feeds:
            e.g. 3600 for a budget per hour).
        window: how many recent candidate scores the threshold is taken from.
        warmup: candidates seen before the quantile threshold replaces random thinning.
        slack: how far (in frames) spending may run ahead of or behind the straight-line
            schedule (default: 5% of the budget, at least 1).
    """

    budget: PosInt | None = option(None, "frames to spread (default: the harvest's budget.total)")
    score: PacingScore = option("random", "what ranks candidates: random, or an image score")
    horizon: PosFloat | None = option(None, "expected stream length in seconds (live sources)")
    period: PosFloat | None = option(None, "spread the budget over each period of this many seconds")
    window: Annotated[int, Field(ge=2)] = option(256, "recent candidate scores the threshold is taken from")
    warmup: NonNegInt = option(16, "candidates seen before the quantile threshold replaces random thinning")
    slack: NonNegFloat | None = option(None, "frames spending may run ahead of the schedule (default 5%)")

    where: ClassVar[str] = "pacing"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | Pacing | None) -> Pacing | None:
        return from_mapping(cls, data, "pacing", optional=True)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def target_rate(remaining_budget: int, seconds_left: float, frame_interval: float, candidate_rate: float) -> float:
    """``p``, the fraction of coming candidates to keep (may exceed 1: keep them all)."""
    if remaining_budget <= 0:
        return 0.0
    frames_left = max(seconds_left, 0.0) / max(frame_interval, 1e-9)
    candidates_left = max(frames_left * min(max(candidate_rate, 0.0), 1.0), 1.0)
    return remaining_budget / candidates_left


def cap_allowance(limits: Limits | None, span: float | None) -> int | None:
    """The most frames the windowed caps of ``limits`` let through over ``span`` seconds.

    ``cap * ceil(span / window)`` for each of ``per_minute``, ``per_hour`` and ``per_day`` that
    is set, the smallest of them; ``None`` when there is no such cap or no span yet.
    """
    if limits is None or span is None:
        return None
    allowed = [
        int(cap) * max(1, int(np.ceil(span / seconds - 1e-9)))
        for name, seconds in WINDOWS.items()
        if (cap := getattr(limits, name)) is not None
    ]
    return min(allowed) if allowed else None


def quantile_threshold(window: np.ndarray, rate: float) -> float:
    """The score above which the top ``rate`` fraction of ``window`` lies (``-inf`` when ``rate >= 1``)."""
    if rate >= 1.0 or window.size == 0:
        return -np.inf
    if rate <= 0.0:
        return np.inf
    return float(np.quantile(window, 1.0 - rate))


@dataclass
class Pacer:
    """The pacing state: recent candidate scores, frames and candidates seen, frames kept this period.

    Args:
        pacing: the parameters.
        budget: frames to spread (``pacing.budget`` or the harvest's total).
        limits: the harvest's hard caps; the budget paced is at most what their windowed caps
            let through over the span (:func:`cap_allowance`).
    """

    pacing: Pacing
    budget: int
    limits: Limits | None = None
    scores: deque[float] = field(default_factory=deque)
    seen: int = 0
    candidates: int = 0
    kept: int = 0
    period_index: int = 0
    span: float | None = None
    last_rate: float = 0.0

    @property
    def effective_budget(self) -> int:
        """The budget paced: ``budget``, or less when the windowed caps allow less over the span."""
        allowed = cap_allowance(self.limits, self.span)
        return self.budget if allowed is None else min(self.budget, allowed)

    def observe_frame(self) -> None:
        """Count one evaluated frame (candidate or not)."""
        self.seen += 1

    def _roll_period(self, clock: float) -> None:
        if self.pacing.period is not None:
            index = int(clock // self.pacing.period)
            if index != self.period_index:
                self.period_index, self.kept = index, 0
            self.span = self.pacing.period

    def seconds_left(self, clock: float, stream_seconds_left: float | None) -> float:
        """Seconds of the pacing horizon left at ``clock``."""
        if self.pacing.period is not None:
            return (self.period_index + 1) * self.pacing.period - clock
        if stream_seconds_left is None:
            raise ConfigError("pacing a live source needs pacing.horizon (seconds) or pacing.period")
        return stream_seconds_left

    def admit(
        self, score: float, clock: float, stream_seconds_left: float | None, frame_interval: float, draw: float
    ) -> bool:
        """Decide on one candidate; ``draw`` is its seeded uniform number in [0, 1)."""
        self._roll_period(clock)
        self.candidates += 1
        left = self.seconds_left(clock, stream_seconds_left)
        if self.span is None or left > self.span:
            self.span = max(left, 1e-9)
        budget = self.effective_budget
        rate = target_rate(budget - self.kept, left, frame_interval, self.candidates / max(self.seen, 1))
        self.last_rate = rate
        value = float(score) + 1e-6 * draw
        # The schedule ends at FINISH of the span: the last stretch of a stream is often static
        # (near-duplicates), so the band makes up any shortfall before it rather than in it.
        planned = budget * min(max(1.0 - left / self.span, 0.0) / FINISH, 1.0)
        slack = self.pacing.slack if self.pacing.slack is not None else max(1.0, 0.05 * budget)
        if self.kept >= planned + slack:
            keep = False
        elif self.kept <= planned - slack:
            keep = True
        elif len(self.scores) < self.pacing.warmup:
            keep = draw < rate
        else:
            keep = value > quantile_threshold(np.fromiter(self.scores, float), rate)
        self.scores.append(value)
        while len(self.scores) > self.pacing.window:
            self.scores.popleft()
        return keep

    def charge(self, clock: float) -> None:
        """Count one kept frame against this period's budget."""
        self._roll_period(clock)
        self.kept += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "scores": list(self.scores),
            "seen": self.seen,
            "candidates": self.candidates,
            "kept": self.kept,
            "period_index": self.period_index,
            "span": self.span,
        }

    def load(self, data: Mapping[str, Any]) -> None:
        self.scores = deque(float(s) for s in data.get("scores", []))
        self.seen = int(data.get("seen", 0))
        self.candidates = int(data.get("candidates", 0))
        self.kept = int(data.get("kept", 0))
        self.period_index = int(data.get("period_index", 0))
        span = data.get("span")
        self.span = None if span is None else float(span)


class SiteBudget:
    """Caps shared by several sources harvested at once (thread-safe).

    Each source's harvest keeps its *share*, a :class:`Ledger` of the frames it kept under
    these caps, in its own saved state; on start the site ledger is the sum of the shares, so
    the site budget survives a restart exactly as each source's own state does. A frame is
    checked with :meth:`allows` among the other caps, and :meth:`reserve` charges it at the
    moment of keeping, under the lock, so sources racing for the last frames of a budget never
    overspend it. Clocks are each source's harvest clock: wall time for live sources (the use
    this is for), stream time for files.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.ledger = Ledger(limits)
        self._lock = threading.Lock()

    def merge(self, share: Mapping[str, Any]) -> None:
        """Add one source's saved share (a :meth:`Ledger.to_dict`) to the site ledger."""
        with self._lock:
            times = sorted([*self.ledger.times, *(float(t) for t in share.get("times", []))])
            self.ledger.times = deque(times)
            self.ledger.total += int(share.get("total", 0))

    def allows(self, clock: float) -> bool:
        with self._lock:
            return self.ledger.allows(clock)

    def reserve(self, clock: float) -> bool:
        """Charge one kept frame at ``clock`` if the caps allow it; ``False`` (nothing charged) if not."""
        with self._lock:
            if not self.ledger.allows(clock):
                return False
            self.ledger.charge(clock)
            return True

    def exhausted(self) -> bool:
        with self._lock:
            return self.ledger.exhausted()

    @property
    def total(self) -> int:
        return self.ledger.total
