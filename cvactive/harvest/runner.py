"""The harvest loop: frames in, kept JPEGs and manifest lines out, state on disk.

For each frame on the ``frame_stride`` grid, in order:

1. cheap rules decide (frame index, clock, seeded draw); when no model rule exists, a frame
   none of them chose is never decoded, and never inferred;
2. model rules decide on the scored record (the detector runs on batches of ``batch`` frames,
   only when some model rule, the pacing score or embedding dedup needs it);
3. the rules that fired and still have limit left are the frame's ``rules``; then the global
   caps (:class:`~cvactive.harvest.budget.Ledger`), pacing
   (:class:`~cvactive.harvest.budget.Pacer`) and near-duplicate suppression
   (:class:`~cvactive.harvest.dedup.Deduper`) may still refuse it;
4. a kept frame is written as a JPEG, then as a manifest line (the scoring keys plus ``rules``
   and ``path``), and the ledgers are charged; the state is saved after every batch that kept a
   frame and every ``checkpoint_seconds`` (see :mod:`cvactive.harvest.state`).

SIGTERM and SIGINT (Ctrl-C) set a flag: the loop stops at the next frame, saves its state and
returns with ``stopped`` set, so the same call carries on later where it stopped.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cvactive.config import check_kwargs
from cvactive.detector import Detector, FrameMeta
from cvactive.errors import ConfigError, SourceError
from cvactive.harvest.budget import Ledger, Limits, Pacer, Pacing
from cvactive.harvest.dedup import Dedup, Deduper
from cvactive.harvest.feed import FeedFrame, FeedInfo, Retry, iter_feed, probe
from cvactive.harvest.rules import FrameInfo, ModelRule, RandomRule, Rule, make_rules
from cvactive.harvest.state import (
    FRAMES_DIR,
    MANIFEST_NAME,
    HarvestState,
    SourceState,
    fingerprint,
    load_state,
    reconcile,
)
from cvactive.io import JsonlWriter, record_to_dict
from cvactive.record import ImageRecord
from cvactive.scoring import Scorer
from cvactive.sources import VIDEO_SUFFIXES, SourceReport, expand, is_stream

log = logging.getLogger(__name__)

#: Rejection reasons counted in the summary.
REASONS = ("rule_limit", "budget", "pacing", "duplicate")


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


def list_sources(source: str | Path) -> list[str]:
    """The videos a harvest source names: one file, the videos of a folder, or one stream/camera.

    Raises:
        SourceError: it does not exist or holds no video.
    """
    text = str(source)
    if is_stream(text):
        return [text]
    files = expand(text)
    videos = [str(p) for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
    if not videos:
        raise SourceError(f"source {text!r} holds no video file ({', '.join(sorted(VIDEO_SUFFIXES))})")
    return videos


def frame_path(out: Path, source: str, index: int) -> Path:
    """Where a kept frame's JPEG goes: ``frames/<stem>-<crc32 of source>/<index>.jpg``."""
    stem = "camera" + source if source.isdigit() else Path(source.split("?")[0].rstrip("/")).stem or "stream"
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem)[:40]
    return out / FRAMES_DIR / f"{stem}-{zlib.crc32(source.encode()):08x}" / f"{index:08d}.jpg"


class _StopFlag:
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


class _Harvester:
    """The state and the per-frame decisions of one harvest call."""

    def __init__(
        self,
        out: Path,
        detector: Detector | None,
        rules: list[Rule],
        budget: Limits,
        pacing: Pacing | None,
        dedup: Dedup | None,
        scorer: Scorer,
        *,
        seed: int,
        jpeg_quality: int,
        annotate: bool,
        batch: int,
        fsync: bool,
    ) -> None:
        self.out, self.detector, self.rules, self.scorer = out, detector, rules, scorer
        self.seed, self.jpeg_quality, self.annotate, self.batch = seed, jpeg_quality, annotate, batch
        self.cheap = [r for r in rules if isinstance(r, RandomRule)]
        self.model_rules = [r for r in rules if isinstance(r, ModelRule)]
        self.ledger = Ledger(budget)
        self.rule_ledgers = {r.name: Ledger(r.limits) for r in rules}
        self.rule_last: dict[str, list[Any]] = {}
        self.pacing = pacing
        pace_budget = (pacing.budget if pacing and pacing.budget else None) or budget.total
        if pacing is not None and pace_budget is None:
            raise ConfigError("pacing needs a budget: set pacing.budget or budget.total")
        self.pacer = Pacer(pacing, int(pace_budget)) if pacing is not None and pace_budget else None
        self.deduper = Deduper(dedup) if dedup is not None else None
        needs_scores = pacing is not None and pacing.score != "random"
        self.infer_every_frame = bool(self.model_rules)
        self.infer_candidates = needs_scores or (dedup is not None and dedup.method == "embedding")
        if (self.infer_every_frame or self.infer_candidates or annotate) and detector is None:
            raise ConfigError("these rules, pacing score or dedup need a model: pass --model (or annotate: false)")
        self.counts: dict[str, int] = {k: 0 for k in ("frames", "inferred", "candidates", "kept", *REASONS)}
        self.state = HarvestState(fingerprint="")
        self.writer: JsonlWriter | None = None
        self.fsync = fsync
        self.run_frames = self.run_inferred = self.run_kept = 0

    # -- state ----------------------------------------------------------------------------
    def load(self, state: HarvestState) -> None:
        self.state = state
        self.ledger.load(state.ledger)
        for name, data in state.rule_ledgers.items():
            if name in self.rule_ledgers:
                self.rule_ledgers[name].load(data)
        self.rule_last = dict(state.rule_last)
        if self.pacer is not None and state.pacer is not None:
            self.pacer.load(state.pacer)
        if self.deduper is not None and state.dedup is not None:
            self.deduper.load(state.dedup)
        self.counts.update(state.counts)

    def save(self) -> None:
        st = self.state
        st.manifest_bytes = (self.out / MANIFEST_NAME).stat().st_size if (self.out / MANIFEST_NAME).exists() else 0
        st.kept = self.ledger.total
        st.ledger = self.ledger.to_dict()
        st.rule_ledgers = {k: v.to_dict() for k, v in self.rule_ledgers.items()}
        st.rule_last = dict(self.rule_last)
        st.pacer = self.pacer.to_dict() if self.pacer is not None else None
        st.dedup = self.deduper.to_dict() if self.deduper is not None else None
        st.counts = dict(self.counts)
        st.save(self.out, self.fsync)

    def spent(self) -> bool:
        """Nothing more can ever be kept: the total or the (non-periodic) pacing budget is used up."""
        if self.ledger.exhausted():
            return True
        p = self.pacer
        return p is not None and p.pacing.period is None and p.kept >= p.budget

    # -- inference ------------------------------------------------------------------------
    def infer(self, frames: Sequence[FeedFrame]) -> list[ImageRecord]:
        assert self.detector is not None  # checked in __init__
        metas = [FrameMeta(f.source, f.index, f.timestamp) for f in frames]
        records = self.detector.predict([f.image() for f in frames], metas)
        n = len(records)
        self.counts["inferred"] += n
        self.run_inferred += n
        scorer = self.scorer
        return [scorer.for_record(r)(r) for r in records]

    # -- decisions ------------------------------------------------------------------------
    def cheap_fired(self, info: FrameInfo) -> list[str]:
        fired = []
        for rule in self.cheap:
            last = self.rule_last.get(rule.name)
            if rule.fires(info, None if last is None else (str(last[0]), int(last[1]), float(last[2]))):
                self.rule_last[rule.name] = [info.source, info.frame, info.clock]
                fired.append(rule.name)
        return fired

    def decide(
        self,
        frame: FeedFrame,
        info: FrameInfo,
        cheap: list[str],
        record: ImageRecord | None,
        seconds_left: float | None,
        interval: float,
    ) -> bool:
        """Apply model rules, limits, caps, pacing and dedup to one frame; write it if kept."""
        fired = set(cheap)
        if record is not None:
            fired.update(r.name for r in self.model_rules if r.fires(info, record))
        if not fired:
            return False
        names = [r.name for r in self.rules if r.name in fired and self.rule_ledgers[r.name].allows(info.clock)]
        if not names:
            self.counts["rule_limit"] += 1
            return False
        self.counts["candidates"] += 1
        if not self.ledger.allows(info.clock):
            self.counts["budget"] += 1
            return False
        fp = None
        if self.deduper is not None:
            if self.deduper.dedup.method == "embedding" and record is None:
                record = self.infer([frame])[0]
            fp = self.deduper.fingerprint(frame.image(), None if record is None else record.embedding)
            if self.deduper.is_duplicate(fp, info.clock):
                self.counts["duplicate"] += 1
                return False
        if self.pacer is not None:
            if self.pacing is not None and self.pacing.score != "random" and record is None:
                record = self.infer([frame])[0]
            if self.pacing is not None and self.pacing.score != "random":
                assert record is not None
                if self.pacing.score not in record.image_scores:
                    raise ConfigError(
                        f"pacing score {self.pacing.score!r} is not computed; valid scores: random, "
                        f"{', '.join(sorted(record.image_scores))}"
                    )
                score = record.image_scores[self.pacing.score]
            else:
                score = info.draw("pacing-score")
            if not self.pacer.admit(score, info.clock, seconds_left, interval, info.draw("pacing")):
                self.counts["pacing"] += 1
                return False
        if record is None and self.annotate:
            record = self.infer([frame])[0]
        self.keep(frame, info, names, record, fp)
        return True

    def keep(self, frame: FeedFrame, info: FrameInfo, names: list[str], record: ImageRecord | None, fp: Any) -> None:
        import cv2

        image = frame.image()
        path = frame_path(self.out, frame.source, frame.index).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality]):
            raise SourceError(f"cannot write {path}")
        if record is None:
            h, w = image.shape[:2]
            record = ImageRecord.empty(frame.source, w, h, frame=frame.index, timestamp=frame.timestamp)
            record.extra["inferred"] = False
        line = record_to_dict(record, embedding=False)
        line["rules"] = names
        line["path"] = str(path)
        assert self.writer is not None
        self.writer.write(line)
        self.ledger.charge(info.clock)
        for name in names:
            self.rule_ledgers[name].charge(info.clock)
            self.counts[f"rule:{name}"] = self.counts.get(f"rule:{name}", 0) + 1
        if self.pacer is not None:
            self.pacer.charge(info.clock)
        if self.deduper is not None:
            self.deduper.add(fp, info.clock)
        self.counts["kept"] += 1
        self.run_kept += 1


def _as(cls: Any, value: Any) -> Any:
    return cls.from_mapping(value) if value is None or isinstance(value, Mapping) else value


def _scorer(value: Mapping[str, Any] | Scorer | None) -> Scorer:
    if isinstance(value, Scorer):
        return value
    options = check_kwargs(Scorer, dict(value or {}), "scorer")
    if "band" in options:
        options["band"] = tuple(options["band"])
    for key in ("measures", "aggregations"):
        if key in options:
            options[key] = tuple(options[key])
    return Scorer(**options)


def harvest(
    source: str | Path,
    out: str | Path,
    *,
    detector: Detector | None = None,
    rules: Sequence[Mapping[str, Any] | Rule] = (),
    budget: Mapping[str, Any] | Limits | None = None,
    pacing: Mapping[str, Any] | Pacing | None = None,
    dedup: Mapping[str, Any] | Dedup | None = None,
    scorer: Mapping[str, Any] | Scorer | None = None,
    frame_stride: int = 1,
    jpeg_quality: int = 90,
    seed: int = 0,
    batch: int = 1,
    annotate: bool = True,
    retry: Mapping[str, Any] | Retry | None = None,
    checkpoint_seconds: float = 5.0,
    log_every: float = 60.0,
    fsync: bool = False,
    fresh: bool = False,
    progress: bool = True,
    stop: threading.Event | None = None,
    handle_signals: bool = True,
    on_log: Callable[[HarvestSummary], None] | None = None,
) -> HarvestSummary:
    """Harvest the frames worth labeling from a video, a folder of videos, a stream or a camera.

    YAML config keys (``configs/harvest.yaml``) are the keyword arguments from ``rules`` to
    ``fsync``.

    Args:
        source: video file, folder of videos, stream URL (rtsp/http/...) or camera index.
        out: harvest folder (``frames/``, ``manifest.jsonl``, ``state.json``); a folder holding a
            harvest made by the same config is resumed.
        detector: the model (needed by model rules, a pacing score, embedding dedup or ``annotate``).
        rules: ordered rule specs (``kind``, ``name``, parameters, ``limits``), see
            :mod:`cvactive.harvest.rules`.
        budget: caps ``per_minute``, ``per_hour``, ``per_day``, ``total`` on kept frames.
        pacing: spread a budget over the stream (see :mod:`cvactive.harvest.budget`), or ``None``.
        dedup: near-duplicate suppression (see :mod:`cvactive.harvest.dedup`), or ``None``.
        scorer: :class:`~cvactive.scoring.Scorer` keyword arguments (measures, aggregations, ...).
        frame_stride: look only at frames whose index is a multiple of this.
        jpeg_quality: JPEG quality of saved frames (1-100).
        seed: seeds every random decision (with the source and frame index).
        batch: frames per detector call.
        annotate: run the model on frames only cheap rules chose, so their manifest lines have boxes.
        retry: reconnection policy for live sources (``attempts``, ``backoff``, ``max_backoff``).
        checkpoint_seconds: save the state at least this often (wall time) besides after kept frames.
        log_every: log running counts every this many seconds (wall time).
        fsync: fsync every manifest line (survives power loss, slower).
        fresh: discard a previous harvest in ``out`` and start over.
        progress: show a progress bar.
        stop: an event that stops the harvest (as SIGTERM does).
        handle_signals: turn SIGTERM/SIGINT into a clean stop (main thread only).
        on_log: called with the running summary every ``log_every`` seconds.

    Raises:
        SourceError: the source does not exist or holds no video.
        ConfigError: an invalid option, or ``out`` holds a harvest made by another config.
    """
    out = Path(out)
    sources = list_sources(source)
    rule_list = make_rules(rules)
    limits = Limits.from_mapping(budget, where="budget")
    pacing_cfg = _as(Pacing, pacing)
    dedup_cfg = _as(Dedup, dedup)
    retry_cfg = _as(Retry, retry)
    scorer_obj = _scorer(scorer)
    if frame_stride < 1 or batch < 1:
        raise ConfigError(f"frame_stride and batch must be at least 1, got {frame_stride}, {batch}")
    if not 1 <= jpeg_quality <= 100:
        raise ConfigError(f"jpeg_quality must lie in [1, 100], got {jpeg_quality}")
    h = _Harvester(
        out,
        detector,
        rule_list,
        limits,
        pacing_cfg,
        dedup_cfg,
        scorer_obj,
        seed=seed,
        jpeg_quality=jpeg_quality,
        annotate=annotate,
        batch=batch,
        fsync=fsync,
    )
    config = {
        "source": str(source),
        "model": None if detector is None else [detector.model_path, detector.imgsz, detector.conf, detector.iou],
        "rules": [{"kind": r.kind, **{k: v for k, v in vars(r).items()}} for r in rule_list],
        "budget": vars(limits),
        "pacing": None if pacing_cfg is None else pacing_cfg.to_dict(),
        "dedup": None if dedup_cfg is None else dedup_cfg.to_dict(),
        "scorer": vars(scorer_obj),
        "frame_stride": frame_stride,
        "seed": seed,
        "annotate": annotate,
    }
    fp = fingerprint(config)
    out.mkdir(parents=True, exist_ok=True)
    if fresh:
        for name in ("state.json", MANIFEST_NAME):
            (out / name).unlink(missing_ok=True)
    state = load_state(out, fp)
    removed = reconcile(out, state)
    if removed:
        log.info("removed %d frame file(s) written after the last saved state", removed)
    if state is None:
        state = HarvestState(fingerprint=fp)
    h.load(state)

    infos: dict[str, FeedInfo] = {}
    base = 0.0
    for src in sources:
        if is_stream(src):
            infos[src] = FeedInfo(fps=30.0, frame_count=0, live=True)
            continue
        try:
            infos[src] = probe(src)
        except SourceError:
            infos[src] = FeedInfo(fps=30.0, frame_count=0, live=False)
        st = state.sources.setdefault(src, SourceState(clock_base=base))
        base = st.clock_base + infos[src].duration
    total_seconds = base

    summary = HarvestSummary(out=out)
    flag = _StopFlag(stop)
    if handle_signals:
        flag.install()
    h.writer = JsonlWriter(out / MANIFEST_NAME, append=True, fsync=fsync)
    from tqdm import tqdm

    todo = sum(
        max(0, infos[s].frame_count - state.sources[s].next_frame) // frame_stride
        for s in sources
        if not infos[s].live and not state.sources[s].done
    )
    bar = tqdm(total=todo or None, disable=not progress, unit="frame", desc="harvest")
    last_save = last_log = time.monotonic()

    def summarize() -> HarvestSummary:
        summary.frames, summary.inferred, summary.kept = h.run_frames, h.run_inferred, h.run_kept
        summary.kept_total, summary.counts = h.ledger.total, dict(h.counts)
        return summary

    try:
        for src in sources:
            st = state.sources.setdefault(src, SourceState())
            if st.done:
                continue
            if flag() or h.spent():
                break
            live = infos[src].live
            if live and st.clock_base == 0.0:
                st.clock_base = time.time()
            interval = frame_stride / infos[src].fps
            last_clock: float | None = None
            pending: list[FeedFrame] = []

            def flush(pending: list[FeedFrame], src: str = src, st: SourceState = st, live: bool = live) -> None:
                nonlocal last_save
                records = h.infer(pending) if pending and h.infer_every_frame else [None] * len(pending)
                kept_any = False
                for frame, record in zip(pending, records):
                    kept_any |= process(frame, record, src, st, live)
                if pending:
                    st.next_frame = pending[-1].index + frame_stride
                if kept_any or time.monotonic() - last_save >= checkpoint_seconds:
                    h.save()
                    last_save = time.monotonic()

            def process(frame: FeedFrame, record: ImageRecord | None, src: str, st: SourceState, live: bool) -> bool:
                nonlocal interval, last_clock
                clock = frame.timestamp if live else st.clock_base + frame.timestamp
                if live and last_clock is not None and clock > last_clock:
                    interval = 0.9 * interval + 0.1 * (clock - last_clock)
                last_clock = clock
                info = FrameInfo(src, frame.index, clock, seed)
                h.counts["frames"] += 1
                h.run_frames += 1
                if h.pacer is not None:
                    h.pacer.observe_frame()
                cheap = h.cheap_fired(info)
                if not cheap and record is None:
                    return False
                if live:
                    left = None
                    if h.pacing is not None and h.pacing.horizon is not None:
                        left = h.pacing.horizon - (clock - st.clock_base)
                else:
                    left = (h.pacing.horizon if h.pacing and h.pacing.horizon else total_seconds) - clock
                return h.decide(frame, info, cheap, record, left, interval)

            report = summary.report
            for frame in iter_feed(
                src,
                start=st.next_frame,
                stride=frame_stride,
                report=report,
                retry=retry_cfg,
                stopped=flag,
                events=summary.events,
            ):
                if flag() or h.spent():
                    break
                if h.infer_every_frame:
                    frame.image()
                    pending.append(frame)
                    if len(pending) >= batch:
                        flush(pending)
                        pending = []
                else:
                    flush([frame])
                bar.update(1)
                now = time.monotonic()
                if now - last_log >= log_every:
                    last_log = now
                    s = summarize()
                    log.info(
                        "harvest %s: %d frames, %d inferred, %d kept (total %d) %s",
                        out,
                        s.frames,
                        s.inferred,
                        s.kept,
                        s.kept_total,
                        {k: s.counts[k] for k in REASONS},
                    )
                    if on_log is not None:
                        on_log(s)
            else:
                if pending and not flag():
                    flush(pending)
                    pending = []
                if not flag():
                    st.done = not live
            h.save()
            last_save = time.monotonic()
        summary.stopped = flag.signal or ("stop" if flag() else None)
        summary.budget_spent = h.spent()
        summary.complete = summary.budget_spent or all(state.sources[s].done for s in sources)
        h.save()
    finally:
        bar.close()
        h.writer.close()
        flag.restore()
    return summarize()
