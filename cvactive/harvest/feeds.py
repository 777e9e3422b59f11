"""Unattended feeds: a harvest that restarts a source that died, for as long as it is left running.

:func:`run_feed` runs :class:`~cvactive.harvest.runner.HarvestRun` on one source and, when the
run ends without finishing (a stream that stayed down past the config's ``retry`` attempts),
waits ``restart.wait`` seconds and carries on with the same state in memory, so the budget
ledger, pacing and dedup memory carry over. It ends when a file source is finished, the budget
is spent, ``stop`` is set (the state is saved first), or after ``restart.max_restarts``
restarts. ``cvactive feed`` is the command around it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from cvactive.errors import ConfigError
from cvactive.harvest.control import HarvestSummary
from cvactive.harvest.harvester import REASONS
from cvactive.harvest.runner import HarvestRun

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Restart:
    """Restarting a feed that ended unfinished: wait ``wait`` seconds; give up after ``max_restarts``
    restarts (``None``: never)."""

    wait: float = 30.0
    max_restarts: int | None = None

    def __post_init__(self) -> None:
        if self.wait < 0:
            raise ConfigError(f"restart wait must be non-negative seconds, got {self.wait}")
        if self.max_restarts is not None and self.max_restarts < 0:
            raise ConfigError(f"max_restarts must be non-negative or None (never give up), got {self.max_restarts}")


@dataclass
class FeedResult:
    """How a feed ended.

    Attributes:
        summary: the harvest summary over every run of the feed (counts over all runs ever).
        runs: how many times the source was (re)started.
        gave_up: it kept failing past ``max_restarts``.
    """

    summary: HarvestSummary
    runs: int = 0
    gave_up: bool = False
    logged: int = field(default=0, repr=False)

    @property
    def stopped(self) -> bool:
        return self.summary.stopped is not None


def run_feed(run: HarvestRun, *, restart: Restart, stop: threading.Event, fresh: bool = False) -> FeedResult:
    """Run one :class:`HarvestRun` until it finishes, is stopped or gives up.

    Args:
        run: the harvest of one source (its own folder, state and ledgers).
        restart: when and how often to restart it after it ended unfinished.
        stop: set it to stop the feed (the state is saved first).
        fresh: discard a previous harvest in the run's folder (first run only).
    """
    result = FeedResult(summary=run.summary)
    while True:
        started = time.monotonic()
        summary = run.execute(fresh=fresh, progress=False, stop=stop, handle_signals=False)
        result.runs += 1
        _log_run(run, result, time.monotonic() - started)
        if stop.is_set() or summary.stopped:
            log.info("%s: stopped; state saved in %s", run.source, run.out)
            return result
        if summary.complete:
            log.info("%s: finished: %s", run.source, "budget spent" if summary.budget_spent else "all sources read")
            return result
        if restart.max_restarts is not None and result.runs > restart.max_restarts:
            log.error("%s: feed keeps failing; gave up after %d restarts", run.source, restart.max_restarts)
            result.gave_up = True
            return result
        log.warning("%s: feed ended; restart %d in %.0f s", run.source, result.runs, restart.wait)
        if stop.wait(restart.wait):
            summary.stopped = "stop"
            return result


def _log_run(run: HarvestRun, result: FeedResult, seconds: float) -> None:
    """Log one run's counts and the source failures it added."""
    s, c = result.summary, result.summary.counts
    stale = f"; {c['stale']} stale" if "stale" in c else ""
    log.info(
        "%s: run ended after %.0f s: %d frames, %d inferred, %d kept (total %d); refused %s%s",
        run.source,
        seconds,
        s.frames,
        s.inferred,
        s.kept,
        s.kept_total,
        {k: c.get(k, 0) for k in REASONS},
        stale,
    )
    for path, reason in s.report.failures[result.logged :]:
        log.warning("source %s: %s", path, reason)
    result.logged = len(s.report.failures)
