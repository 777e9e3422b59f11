"""Run control of a harvest: the stop flag (signals or an event) and the summary a run returns."""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cvactive.sources import SourceReport

if TYPE_CHECKING:
    from cvactive.harvest.harvester import Harvester


@dataclass
class HarvestSummary:
    """What a harvest did (this run) and where it stands (all runs).

    Attributes:
        out: the harvest folder.
        frames: frames on the stride grid looked at in this run.
        inferred: frames run through the detector in this run.
        kept: frames kept in this run.
        kept_total: frames kept over all runs into ``out``.
        counts: running totals over all runs (frames, inferred, candidates, rejections by
            reason, ``rule:<name>`` per rule).
        report: sources' frame counts and failures (truncated files, dropped streams).
        events: stream drops and reconnects.
        stopped: the signal name when SIGTERM/SIGINT stopped the run, else ``None``.
        complete: every source was read to its end, or the budget is spent.
        budget_spent: the total budget (or pacing budget) is used up.
        stale: (live sources read with ``keep_up``) frames dropped in this run because newer
            ones arrived before the harvest was ready for them; the running total over all
            runs is ``counts["stale"]``.
        delay_mean: mean age in seconds of a live frame when the harvest took it (from its grab;
            this run), ``None`` without live frames.
        delay_max: the largest such delay.
    """

    out: Path
    frames: int = 0
    inferred: int = 0
    kept: int = 0
    kept_total: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    report: SourceReport = field(default_factory=SourceReport)
    events: list[str] = field(default_factory=list)
    stopped: str | None = None
    complete: bool = False
    budget_spent: bool = False
    stale: int = 0
    delay_mean: float | None = None
    delay_max: float | None = None

    def take(self, h: Harvester) -> HarvestSummary:
        """Bring the counts up to date with harvester ``h`` (this run's and all runs'); return self."""
        self.frames, self.inferred, self.kept = h.run_frames, h.run_inferred, h.run_kept
        self.kept_total, self.counts = h.ledger.total, dict(h.counts)
        self.stale = h.run_stale
        if h.delays:
            self.delay_mean, self.delay_max = h.delay_sum / h.delays, h.delay_max
        return self


class StopFlag:
    """Set by SIGTERM/SIGINT (when installed) or an external :class:`threading.Event`."""

    def __init__(self, event: threading.Event | None) -> None:
        self.event = event
        self.signal: str | None = None
        self._old: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.signal is not None or (self.event is not None and self.event.is_set())

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: Any) -> None:
        self.signal = signal.Signals(signum).name

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()
