"""The harvest loop: frames in, kept JPEGs and manifest lines out, state on disk.

For each frame on the ``stride`` grid, in order:

1. cheap rules decide (frame index, clock, seeded draw); when no model rule exists, a frame
   none of them chose is never decoded, and never inferred;
2. model rules decide on the scored record (the detector runs on batches of ``batch`` frames,
   only when some model rule, the pacing score or embedding dedup needs it; when a model rule
   needs every frame, the frames go through the inference pipeline, :mod:`cvactive.detect.pipeline`,
   which decodes and infers ahead while the loop decides, with the same records and decisions);
3. the rules that fired and still have limit left are the frame's ``rules``; then the global
   caps (:class:`~cvactive.harvest.budget.Ledger`), pacing
   (:class:`~cvactive.harvest.budget.Pacer`) and near-duplicate suppression
   (:class:`~cvactive.harvest.dedup.Deduper`) may still refuse it;
4. a kept frame is written as a JPEG, then as a manifest line (the record: its scores, class
   scores and embedding when the model ran, and its :class:`~cvactive.record.Harvested`: ``rules``,
   ``path``, ``delay``), and the ledgers are charged; the state is saved after every batch that kept a
   frame and every ``checkpoint_seconds`` (see :mod:`cvactive.harvest.state`).

The decisions are :class:`~cvactive.harvest.harvester.Harvester`'s; this module walks the
sources (:class:`HarvestRun`: resume, plan the sources, read each one, process a frame, flush a
batch). A run holds its folder (:meth:`HarvestRun.hold`: locked, claimed, see
:mod:`cvactive.harvest.folder`) from before it reads the state to after it saves it the last
time. SIGTERM and SIGINT (Ctrl-C) set a flag: the loop stops at the next frame, saves its
state and returns with ``stopped`` set, so the same call carries on later where it stopped.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cvactive.detect.model import Detector
from cvactive.errors import SourceError
from cvactive.harvest.budget import SiteBudget
from cvactive.harvest.control import HarvestSummary, StopFlag
from cvactive.harvest.feed import FeedInfo, iter_feed, list_sources, probe
from cvactive.harvest.folder import HARVEST, check_out, hold_folder
from cvactive.harvest.frames import FeedFrame
from cvactive.harvest.harvester import REASONS, Harvester
from cvactive.harvest.infer import FrameTap, live_window, pipeline_engine
from cvactive.harvest.options import HarvestOptions
from cvactive.harvest.rules import FrameInfo
from cvactive.harvest.state import (
    MANIFEST_NAME,
    HarvestState,
    SourceState,
    check_resumable,
    frame_path,
    load_state,
    reconcile,
)
from cvactive.io import JsonlWriter
from cvactive.outputs import OwnedDir
from cvactive.record import ImageRecord
from cvactive.sources import SourceReport, is_stream

if TYPE_CHECKING:
    from cvactive.detect.engines import Engine

log = logging.getLogger(__name__)

#: The decision-maker's former name, kept for callers (and tests) that patch it.
_Harvester = Harvester

__all__ = ["REASONS", "HarvestRun", "HarvestSummary", "frame_path", "list_sources"]


@dataclass
class _Cursor:
    """Where the loop stands in one source: its saved state, the frame interval, the last clock."""

    source: str
    state: SourceState
    live: bool
    interval: float
    last_clock: float | None = None


class HarvestRun:
    """One call of :func:`harvest`: the sources in order, the saved state, the stop flag, the logs.

    Args:
        out: the harvest folder.
        source: the source as given (part of the fingerprint).
        sources: the videos or streams it names, in order (:func:`list_sources`).
        detector: the model, or ``None``.
        options: checked options.
        site: the budget shared with the other sources of a several-source harvest, or ``None``.

    Raises:
        OutputError: ``out`` cannot take this harvest (:func:`~cvactive.harvest.folder.check_out`).
    """

    def __init__(
        self,
        out: Path,
        source: str,
        sources: list[str],
        detector: Detector | None,
        options: HarvestOptions,
        site: SiteBudget | None = None,
    ) -> None:
        self.out = check_out(out, sources)
        self.source, self.sources, self.options = source, sources, options
        self.detector, self.site = detector, site
        self.h = options.harvester(out, detector, site)
        self.state = HarvestState(fingerprint="")
        self.infos: dict[str, FeedInfo] = {}
        self.total_seconds = 0.0
        self.summary = HarvestSummary(out=out)
        self.flag = StopFlag(None)
        self.on_log: Callable[[HarvestSummary], None] | None = None
        self.last_save = self.last_log = time.monotonic()
        self.prepared = False
        self.owned: OwnedDir | None = None
        self.moved_aside: Path | None = None
        self._engine: Engine | None = None

    @classmethod
    def create(
        cls,
        source: str | Path,
        out: str | Path,
        options: HarvestOptions | Mapping[str, Any] | None = None,
        *,
        detector: Detector | None = None,
        site: SiteBudget | None = None,
        **keys: Any,
    ) -> HarvestRun:
        """The run :func:`harvest` would make of ``source`` (options as :func:`harvest` takes them), not started.

        Raises:
            SourceError: the source does not exist or holds no video.
            ConfigError: an invalid option.
        """
        sources = list_sources(source)
        return cls(Path(out), str(source), sources, detector, HarvestOptions.of(options, **keys), site)

    # -- before the loop ------------------------------------------------------------------
    def check_resume(self) -> None:
        """Check, reading only, that the harvest in ``out`` (if any) is one this run resumes: its
        state loads and was made by this config and source, and its manifest's lines past the
        saved size are its own. (:meth:`resume` checks again once the folder is held.)

        Raises:
            ConfigError: it is not.
        """
        fp = self.options.fingerprint(self.source, self.detector, self.site)
        check_resumable(self.out, load_state(self.out, fp), self.sources)

    @contextlib.contextmanager
    def hold(self, fresh: bool = False, command: str = HARVEST) -> Iterator[HarvestRun]:
        """Hold ``out`` for the block: locked against other runs and claimed as this harvest's folder.

        With ``fresh`` a previous harvest there is moved aside (``moved_aside`` says where), never
        deleted; without, the harvest there is checked first (:meth:`check_resume`), so a run
        that cannot resume it changes nothing. Already held (a feed restarting this run, a site
        holding its sources): nothing more.

        Raises:
            OutputError: another process holds ``out``, or it holds something other than a harvest.
            ConfigError: ``out`` holds a harvest this run cannot resume.
        """
        if self.owned is not None:
            yield self
            return
        if not fresh:
            self.check_resume()
        with hold_folder(self.out, command, fresh=fresh) as (owned, aside):
            self.owned, self.moved_aside = owned, aside
            try:
                yield self
            finally:
                self.owned = None

    def resume(self) -> None:
        """Load the state saved in ``out`` and cut the manifest back to it (the folder must be held)."""
        if self.owned is None:
            raise RuntimeError("hold() the harvest folder before resuming it")
        fp = self.options.fingerprint(self.source, self.detector, self.site)
        state = load_state(self.out, fp)
        removed = reconcile(self.out, state, self.sources)
        if removed:
            log.info("removed %d frame file(s) written after the last saved state", removed)
        self.state = state if state is not None else HarvestState(fingerprint=fp)
        self.h.load(self.state)
        if self.site is not None and self.state.site_ledger is not None:
            self.site.merge(self.state.site_ledger)

    def plan_sources(self) -> None:
        """Probe each source's fps and length; files get their place on one summed clock."""
        base = 0.0
        for src in self.sources:
            if is_stream(src):
                self.infos[src] = FeedInfo(fps=30.0, frame_count=0, live=True)
                continue
            try:
                self.infos[src] = probe(src)
            except SourceError:
                self.infos[src] = FeedInfo(fps=30.0, frame_count=0, live=False)
            st = self.state.sources.setdefault(src, SourceState(clock_base=base))
            base = st.clock_base + self.infos[src].duration
        self.total_seconds = base

    def frames_to_do(self) -> int:
        """Grid frames left in the files (for the progress bar; 0 when unknown)."""
        stride, sources = self.options.stride, self.state.sources
        return sum(
            max(0, self.infos[s].frame_count - sources[s].next_frame) // stride
            for s in self.sources
            if not self.infos[s].live and not sources[s].done
        )

    # -- the loop -------------------------------------------------------------------------
    def prepare(self) -> None:
        """Resume from ``out`` and plan the sources (once; a restarted loop carries on in memory).
        The folder must be held (:meth:`hold`)."""
        self.resume()
        self.plan_sources()
        self.prepared = True

    def execute(
        self,
        *,
        fresh: bool = False,
        progress: bool = True,
        stop: threading.Event | None = None,
        handle_signals: bool = True,
        on_log: Callable[[HarvestSummary], None] | None = None,
    ) -> HarvestSummary:
        """Hold the folder (unless held), resume (unless already prepared), read every source not yet
        done, save, say what happened.

        Called again on the same object (a feed restarted after its stream was given up on), it
        carries on from the state in memory, which equals the state saved on disk. ``fresh``
        moves a previous harvest in ``out`` aside first (when the folder is not held yet).
        """
        with self.hold(fresh):
            if not self.prepared:
                self.prepare()
            return self._execute(progress=progress, stop=stop, handle_signals=handle_signals, on_log=on_log)

    def _execute(
        self,
        *,
        progress: bool,
        stop: threading.Event | None,
        handle_signals: bool,
        on_log: Callable[[HarvestSummary], None] | None,
    ) -> HarvestSummary:
        from tqdm import tqdm

        self.flag, self.on_log = StopFlag(stop), on_log
        if handle_signals:
            self.flag.install()
        self.h.writer = JsonlWriter(
            self.out / MANIFEST_NAME, append=True, fsync=self.options.fsync, class_scores=True, packed=True
        )
        bar = tqdm(total=self.frames_to_do() or None, disable=not progress, unit="frame", desc="harvest")
        self.last_save = self.last_log = time.monotonic()
        try:
            for src in self.sources:
                st = self.state.sources.setdefault(src, SourceState())
                if st.done:
                    continue
                if self.flag() or self.h.spent():
                    break
                self.run_source(src, st, bar)
            self.finish()
        finally:
            bar.close()
            self.h.writer.close()
            self.flag.restore()
        return self.summarize()

    def run_source(self, src: str, st: SourceState, bar: Any) -> None:
        """Read one source from its saved position to its end (or to a stop), deciding on each frame."""
        h, opts, live = self.h, self.options, self.infos[src].live
        if live and st.clock_base == 0.0:
            st.clock_base = time.time()
        cur = _Cursor(src, st, live, opts.stride / self.infos[src].fps)
        if live and opts.keep_up:
            h.counts.setdefault("stale", 0)
        engine = self.engine() if h.infer_every_frame else None
        if engine is not None:
            self.run_pipelined(cur, engine, bar)
        else:
            self.run_in_turn(cur, bar)
        h.save()
        self.last_save = time.monotonic()

    def feed(self, cur: _Cursor, report: SourceReport, stopped: Callable[[], bool]) -> Generator[FeedFrame, None, None]:
        """The frames of ``cur``'s source from its saved position (:func:`iter_feed` with the options)."""
        opts = self.options
        return iter_feed(
            cur.source,
            start=cur.state.next_frame,
            stride=opts.stride,
            report=report,
            retry=opts.retry,
            stopped=stopped,
            events=self.summary.events,
            keep_up=opts.keep_up,
        )

    def engine(self) -> Engine | None:
        """The pipeline's engine for this harvest's detector, or ``None`` (``workers: 0``, or a detector
        the pipeline cannot run: frames are then inferred batch by batch on this thread)."""
        if self.options.pipeline_workers == 0 or self.detector is None:
            return None
        if self._engine is None:
            self._engine = pipeline_engine(self.detector, self.options.batch)
        return self._engine

    def run_in_turn(self, cur: _Cursor, bar: Any) -> None:
        """Read, infer and decide frame after frame (batch after batch) on this thread."""
        h, opts = self.h, self.options
        pending: list[FeedFrame] = []
        feed = self.feed(cur, self.summary.report, self.flag)
        for frame in feed:
            if self.flag() or h.spent():
                break
            if frame.taken is not None:
                h.count_live(frame)
            if h.infer_every_frame:
                frame.image()
                pending.append(frame)
                if len(pending) >= opts.batch:
                    self.flush(pending, cur)
                    pending = []
            else:
                self.flush([frame], cur)
            bar.update(1)
            self.log_counts()
        else:
            if pending and not self.flag():
                self.flush(pending, cur)
            if not self.flag():
                cur.state.done = not cur.live
        feed.close()

    def run_pipelined(self, cur: _Cursor, engine: Engine, bar: Any) -> None:
        """Every frame inferred: the feed decodes and the model runs ahead while this thread decides.

        The decisions are :meth:`run_in_turn`'s, in the same order, on the same records and in
        the same groups of ``batch`` frames (the budget is checked between groups, as there), so
        the kept frames, manifest and state are the same; frames read ahead of a stop are
        dropped undecided, and the state's position is that of the last frame decided. A live
        source lets only :func:`~cvactive.harvest.infer.live_window` frames in flight, each
        taken at the live edge when the engine has room for it.
        """
        from cvactive.detect.pipeline import Pipeline

        h, opts = self.h, self.options
        halt = threading.Event()
        report = SourceReport()  # the feed's, merged below: it runs ahead of the decisions
        feed = self.feed(cur, report, lambda: self.flag() or halt.is_set())
        window = live_window(engine) if cur.live and opts.keep_up else None
        tap = FrameTap(feed, window, halt)
        pipeline = Pipeline(engine, workers=opts.pipeline_workers, batch=opts.batch, scorer=h.scorer)
        records = pipeline(tap)
        group: list[tuple[FeedFrame, ImageRecord]] = []
        ended = False
        try:
            for record in records:
                frame = tap.taken()
                if self.flag() or h.spent():
                    break
                if frame.taken is not None:
                    h.count_live(frame)
                group.append((frame, record))
                if len(group) >= opts.batch:
                    self.flush_inferred(group, cur)
                    group = []
                bar.update(1)
                self.log_counts()
            else:
                ended = True
                if group and not self.flag():
                    self.flush_inferred(group, cur)
                if not self.flag():
                    cur.state.done = not cur.live
        finally:
            halt.set()
            getattr(records, "close", lambda: None)()  # a generator: closing it stops the pipeline's threads
            with contextlib.suppress(ValueError):  # still running in a reader thread that would not stop
                feed.close()
            self.summary.report.frames += report.frames
            self.summary.report.images += report.images
            if ended:  # a stop before the end of the feed never hears how the feed ended, as in run_in_turn
                self.summary.report.failures.extend(report.failures)

    def flush(self, pending: list[FeedFrame], cur: _Cursor) -> None:
        """Decide on a batch of frames (inferred together when every frame needs the model)."""
        h = self.h
        records: Sequence[ImageRecord | None]
        records = h.infer(pending) if pending and h.infer_every_frame else [None] * len(pending)
        self.decide_all(list(zip(pending, records)), cur)

    def flush_inferred(self, group: list[tuple[FeedFrame, ImageRecord]], cur: _Cursor) -> None:
        """Decide on a group of frames the pipeline inferred and scored."""
        self.h.count_inferred(len(group))
        self.decide_all(group, cur)

    def decide_all(self, group: Sequence[tuple[FeedFrame, ImageRecord | None]], cur: _Cursor) -> None:
        """Decide on each frame of a group in order, move the position past it, save when due."""
        h = self.h
        kept_any = False
        for frame, record in group:
            kept_any |= self.process(frame, record, cur)
        if group:
            cur.state.next_frame = group[-1][0].index + self.options.stride
        if kept_any or time.monotonic() - self.last_save >= self.options.checkpoint_seconds:
            h.save()
            self.last_save = time.monotonic()

    def process(self, frame: FeedFrame, record: ImageRecord | None, cur: _Cursor) -> bool:
        """Decide on one frame: its clock, the cheap rules, then (if needed) the full decision."""
        h, st = self.h, cur.state
        clock = frame.timestamp if cur.live else st.clock_base + frame.timestamp
        if cur.live and cur.last_clock is not None and clock > cur.last_clock:
            cur.interval = 0.9 * cur.interval + 0.1 * (clock - cur.last_clock)
        cur.last_clock = clock
        info = FrameInfo(cur.source, frame.index, clock, self.options.seed)
        h.count_frame()
        cheap = h.cheap_fired(info)
        if not cheap and record is None:
            return False
        return h.decide(frame, info, cheap, record, self.seconds_left(clock, cur), cur.interval)

    def seconds_left(self, clock: float, cur: _Cursor) -> float | None:
        """Stream seconds left for pacing: to the end of the files, or of a live source's horizon."""
        pacing = self.h.pacing
        if cur.live:
            if pacing is not None and pacing.horizon is not None:
                return pacing.horizon - (clock - cur.state.clock_base)
            return None
        return (pacing.horizon if pacing and pacing.horizon else self.total_seconds) - clock

    # -- reporting ------------------------------------------------------------------------
    def log_counts(self) -> None:
        """Every ``log_every`` seconds: log the running counts and call ``on_log``."""
        now = time.monotonic()
        if now - self.last_log < self.options.log_every:
            return
        self.last_log = now
        s = self.summarize()
        log.info(
            "harvest %s: %d frames, %d inferred, %d kept (total %d) %s",
            self.out,
            s.frames,
            s.inferred,
            s.kept,
            s.kept_total,
            {k: s.counts[k] for k in (*REASONS, "stale") if k in s.counts},
        )
        if self.on_log is not None:
            self.on_log(s)

    def finish(self) -> None:
        """Record why the run ended and save the state."""
        s, h = self.summary, self.h
        s.stopped = self.flag.signal or ("stop" if self.flag() else None)
        s.budget_spent = h.spent()
        s.complete = s.budget_spent or all(self.state.sources[src].done for src in self.sources)
        h.save()

    def summarize(self) -> HarvestSummary:
        """The summary, brought up to date with the harvester's counts."""
        return self.summary.take(self.h)
