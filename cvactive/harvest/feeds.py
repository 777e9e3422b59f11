"""Unattended feeds: restarting a source that died, and several sources harvested at once.

:func:`run_feed` runs :class:`~cvactive.harvest.runner.HarvestRun` on one source and, when the
run ends without finishing (a stream that stayed down past the config's ``retry`` attempts),
waits ``restart.wait`` seconds and carries on with the same state in memory, so the budget
ledger, pacing and dedup memory carry over. It ends when a file source is finished, the budget
is spent, ``stop`` is set (the state is saved first), or after ``restart.max_restarts``
restarts. ``cvactive feed`` is the command around it.

:func:`run_concurrently` runs one such feed per source, each in its own thread with its own
folder, state, rules' timers, pacing, dedup memory and ledgers; they share the detector
(:class:`~cvactive.harvest.infer.SharedDetector`: one engine, each source's pipeline submitting
to it, see :mod:`cvactive.harvest.infer`) and, optionally, a
:class:`~cvactive.harvest.budget.SiteBudget`. A source that drops or hangs holds only its own
thread (its live reader waits or reconnects), so the others carry on.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cvactive.errors import ConfigError, CvactiveError
from cvactive.harvest.budget import SiteBudget
from cvactive.harvest.control import HarvestSummary, StopFlag
from cvactive.harvest.folder import HARVEST
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
    done: tuple[int, int, int] = field(default=(0, 0, 0), repr=False)  # frames, inferred, kept before this run

    @property
    def stopped(self) -> bool:
        return self.summary.stopped is not None


def run_feed(
    run: HarvestRun,
    *,
    restart: Restart | None,
    stop: threading.Event,
    fresh: bool = False,
    command: str = HARVEST,
) -> FeedResult:
    """Run one :class:`HarvestRun` until it finishes, is stopped or gives up, holding its folder
    (locked, claimed: :meth:`HarvestRun.hold`) throughout, restart waits included.

    Args:
        run: the harvest of one source (its own folder, state and ledgers).
        restart: when and how often to restart it after it ended unfinished (``None``: run once).
        stop: set it to stop the feed (the state is saved first).
        fresh: move a previous harvest in the run's folder aside first.
        command: the command the folder lock names.

    Raises:
        OutputError: another process holds the folder, or it holds something other than a harvest.
    """
    with run.hold(fresh, command):
        return _feed(run, restart, stop)


def _feed(run: HarvestRun, restart: Restart | None, stop: threading.Event) -> FeedResult:
    result = FeedResult(summary=run.summary)
    while True:
        started = time.monotonic()
        summary = run.execute(progress=False, stop=stop, handle_signals=False)
        result.runs += 1
        _log_run(run, result, time.monotonic() - started)
        if stop.is_set() or summary.stopped:
            log.info("%s: stopped; state saved in %s", run.source, run.out)
            return result
        if summary.complete:
            log.info("%s: finished: %s", run.source, "budget spent" if summary.budget_spent else "all sources read")
            return result
        if restart is None:
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
    """Log one run's counts (refusals and stale frames: over all runs) and the source failures it added."""
    s, c = result.summary, result.summary.counts
    frames, inferred, kept = s.frames - result.done[0], s.inferred - result.done[1], s.kept - result.done[2]
    result.done = (s.frames, s.inferred, s.kept)
    stale = f"; {c['stale']} stale" if "stale" in c else ""
    log.info(
        "%s: run ended after %.0f s: %d frames, %d inferred, %d kept (total %d); all runs: refused %s%s",
        run.source,
        seconds,
        frames,
        inferred,
        kept,
        s.kept_total,
        {k: c.get(k, 0) for k in REASONS},
        stale,
    )
    for path, reason in s.report.failures[result.logged :]:
        log.warning("source %s: %s", path, reason)
    result.logged = len(s.report.failures)


@dataclass
class SiteSummary:
    """What a harvest of several sources at once did.

    Attributes:
        out: the site folder (one harvest folder per source, listed in ``site.json``).
        feeds: source -> its :class:`FeedResult` (whose ``summary`` is that source's
            :class:`~cvactive.harvest.control.HarvestSummary`).
        folders: source -> its harvest folder.
        site_kept_total: frames kept under the site budget over all runs (``None`` without one).
        errors: source -> the error that ended its thread (the other sources carried on).
        stopped: the signal name (or ``"stop"``) when the harvest was stopped, else ``None``.
    """

    out: Path
    feeds: dict[str, FeedResult] = field(default_factory=dict)
    folders: dict[str, Path] = field(default_factory=dict)
    site_kept_total: int | None = None
    errors: dict[str, BaseException] = field(default_factory=dict)
    stopped: str | None = None


def run_concurrently(
    out: Path,
    runs: dict[str, HarvestRun],
    *,
    site: SiteBudget | None,
    restart: Restart | None,
    fresh: bool,
    stop: threading.Event | None,
    handle_signals: bool,
    command: str = HARVEST,
) -> SiteSummary:
    """Hold and prepare every run here (so the site ledger holds every source's share before any
    thread decides), then run each as a feed in its own thread until all have ended; each
    source's folder stays held (locked) until every thread has ended.

    SIGTERM/SIGINT (when ``handle_signals``, main thread) or ``stop`` stop them all, each saving
    its state. An exception in one source's thread is logged at once and recorded in
    ``errors``; the other sources carry on.
    """
    with contextlib.ExitStack() as held:
        for run in runs.values():
            held.enter_context(run.hold(fresh, command))
            run.prepare()
        return _run_held(out, runs, site=site, restart=restart, stop=stop, handle_signals=handle_signals)


def _run_held(
    out: Path,
    runs: dict[str, HarvestRun],
    *,
    site: SiteBudget | None,
    restart: Restart | None,
    stop: threading.Event | None,
    handle_signals: bool,
) -> SiteSummary:
    summary = SiteSummary(out=out, folders={src: run.out for src, run in runs.items()})
    stop_all, flag = threading.Event(), StopFlag(stop)
    if handle_signals:
        flag.install()

    def work(source: str, run: HarvestRun) -> None:
        try:
            summary.feeds[source] = run_feed(run, restart=restart, stop=stop_all)
        except BaseException as err:  # recorded and re-raised by the caller's report; the others go on
            summary.errors[source] = err
            if isinstance(err, CvactiveError):
                log.error("%s: harvest failed: %s", source, err)
            else:
                log.exception("%s: harvest failed", source)

    threads = [threading.Thread(target=work, args=item, name=f"harvest {item[0]}") for item in runs.items()]
    try:
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            if flag():
                stop_all.set()
            next(t for t in threads if t.is_alive()).join(0.1)
    finally:
        stop_all.set()
        for thread in threads:
            thread.join()
        flag.restore()
    summary.stopped = flag.signal or ("stop" if flag() else None)
    for result in summary.feeds.values():
        if result.summary.stopped and summary.stopped:
            result.summary.stopped = summary.stopped  # the signal that stopped them all
    summary.site_kept_total = None if site is None else site.total
    return summary
