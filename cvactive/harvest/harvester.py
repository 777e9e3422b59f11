"""The decisions of one harvest on one frame, and the memory they need.

:class:`Harvester` holds what the decisions depend on (the global and per-rule ledgers, the
cheap rules' timers, the pacer, the dedup memory, the running counts) and takes a frame through
the steps in order:

1. :meth:`Harvester.cheap_fired`: cheap rules, before anything is decoded;
2. :meth:`Harvester.decide`: model rules on the scored record, rule limits, the global caps,
   near-duplicate suppression, pacing;
3. :meth:`Harvester.keep`: the JPEG, then the manifest line (the record with its
   :class:`~cvactive.record.Harvested`, class scores and embedding kept), then the ledgers.

:meth:`Harvester.load` and :meth:`Harvester.save` move that memory to and from
:class:`~cvactive.harvest.state.HarvestState`. Nothing here reads a video or knows the order
of the sources: that is :mod:`cvactive.harvest.runner`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from cvactive.detect.model import Detector
from cvactive.detect.scorer import Scorer
from cvactive.errors import ConfigError
from cvactive.harvest.budget import Ledger, Limits, Pacer, Pacing, SiteBudget
from cvactive.harvest.dedup import Dedup, Deduper
from cvactive.harvest.frames import FeedFrame
from cvactive.harvest.rules import FrameInfo, ModelRule, RandomRule, Rule
from cvactive.harvest.state import MANIFEST_NAME, HarvestState, frame_path
from cvactive.io import JsonlWriter
from cvactive.record import Harvested, ImageRecord
from cvactive.sources import FrameMeta, write_image

#: Rejection reasons counted in the summary.
REASONS = ("rule_limit", "budget", "pacing", "duplicate")


class Harvester:
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
        site: SiteBudget | None = None,
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
        self.pacer = Pacer(pacing, int(pace_budget), budget) if pacing is not None and pace_budget else None
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
        self.run_stale, self.delay_sum, self.delay_max, self.delays = 0, 0.0, 0.0, 0
        self.site = site
        self.site_share = Ledger(site.limits) if site is not None else None
        if site is not None:
            self.counts["site_budget"] = 0

    # -- state ----------------------------------------------------------------------------
    def load(self, state: HarvestState) -> None:
        """Take over the ledgers, timers, pacer, dedup memory and counts of a saved state."""
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
        if self.site_share is not None and state.site_ledger is not None:
            self.site_share.load(state.site_ledger)
        self.counts.update(state.counts)

    def save(self) -> None:
        """Write the state (atomically), recording the manifest's current size."""
        st = self.state
        st.manifest_bytes = (self.out / MANIFEST_NAME).stat().st_size if (self.out / MANIFEST_NAME).exists() else 0
        st.kept = self.ledger.total
        st.ledger = self.ledger.to_dict()
        st.rule_ledgers = {k: v.to_dict() for k, v in self.rule_ledgers.items()}
        st.rule_last = dict(self.rule_last)
        st.pacer = self.pacer.to_dict() if self.pacer is not None else None
        st.dedup = self.deduper.to_dict() if self.deduper is not None else None
        st.site_ledger = self.site_share.to_dict() if self.site_share is not None else None
        st.counts = dict(self.counts)
        st.save(self.out, self.fsync)

    def spent(self) -> bool:
        """Nothing more can ever be kept: the total or the (non-periodic) pacing budget is used up."""
        if self.ledger.exhausted() or (self.site is not None and self.site.exhausted()):
            return True
        p = self.pacer
        return p is not None and p.pacing.period is None and p.kept >= p.effective_budget

    def count_frame(self) -> None:
        """Count one frame looked at (for the summary and the pacer's candidate rate)."""
        self.counts["frames"] += 1
        self.run_frames += 1
        if self.pacer is not None:
            self.pacer.observe_frame()

    def count_live(self, frame: FeedFrame) -> None:
        """Count the stale frames a live frame replaced, and its grab-to-take delay."""
        self.counts["stale"] = self.counts.get("stale", 0) + frame.stale
        self.run_stale += frame.stale
        if frame.taken is not None:
            delay = max(frame.taken - frame.timestamp, 0.0)
            self.delay_sum, self.delays = self.delay_sum + delay, self.delays + 1
            self.delay_max = max(self.delay_max, delay)

    # -- inference ------------------------------------------------------------------------
    def infer(self, frames: Sequence[FeedFrame]) -> list[ImageRecord]:
        """Detect and score ``frames`` (decoding them), counting the inferences."""
        assert self.detector is not None  # checked in __init__
        metas = [FrameMeta(f.source, f.index, f.timestamp) for f in frames]
        records = self.detector.predict([f.image() for f in frames], metas)
        self.count_inferred(len(records))
        scorer = self.scorer
        return [scorer.for_record(r)(r) for r in records]

    def count_inferred(self, n: int) -> None:
        """Count ``n`` frames the model ran on (here, or in the runner's pipeline)."""
        self.counts["inferred"] += n
        self.run_inferred += n

    # -- decisions ------------------------------------------------------------------------
    def cheap_fired(self, info: FrameInfo) -> list[str]:
        """Names of the cheap rules that fire on ``info`` (their timers move on)."""
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
        """Apply model rules, limits, caps, dedup and pacing to one frame; write it if kept."""
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
        if self.site is not None and not self.site.allows(info.clock):
            self.counts["site_budget"] += 1
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
            admitted, record = self._pace(frame, info, record, seconds_left, interval)
            if not admitted:
                self.counts["pacing"] += 1
                return False
        if record is None and self.annotate:
            record = self.infer([frame])[0]
        if self.site is not None and not self.site.reserve(info.clock):  # another source took the last one
            self.counts["site_budget"] += 1
            return False
        self.keep(frame, info, names, record, fp)
        return True

    def _pace(
        self, frame: FeedFrame, info: FrameInfo, record: ImageRecord | None, seconds_left: float | None, interval: float
    ) -> tuple[bool, ImageRecord | None]:
        """Ask the pacer about a candidate (inferring it first when pacing ranks by a model score)."""
        assert self.pacer is not None and self.pacing is not None
        if self.pacing.score != "random":
            if record is None:
                record = self.infer([frame])[0]
            if self.pacing.score not in record.image_scores:
                raise ConfigError(
                    f"pacing score {self.pacing.score!r} is not computed; valid scores: random, "
                    f"{', '.join(sorted(record.image_scores))}"
                )
            score = record.image_scores[self.pacing.score]
        else:
            score = info.draw("pacing-score")
        return self.pacer.admit(score, info.clock, seconds_left, interval, info.draw("pacing")), record

    def keep(self, frame: FeedFrame, info: FrameInfo, names: list[str], record: ImageRecord | None, fp: Any) -> None:
        """Write a kept frame (JPEG, then its manifest line) and charge every ledger."""
        image = frame.image()
        path = frame_path(self.out, frame.source, frame.index).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        write_image(path, image, self.jpeg_quality)
        delay = None if frame.taken is None else frame.taken - frame.timestamp
        harvested = Harvested(rules=tuple(names), path=str(path), delay=delay, inferred=record is not None)
        if record is None:
            h, w = image.shape[:2]
            record = ImageRecord.empty(frame.source, w, h, frame=frame.index, timestamp=frame.timestamp)
        assert self.writer is not None
        # the class scores and embedding the model gave go into the manifest (packed), so select and
        # push never run the model on a harvested frame again
        self.writer.write(replace(record, harvested=harvested))
        self.ledger.charge(info.clock)
        if self.site_share is not None:
            self.site_share.charge(info.clock)
        for name in names:
            self.rule_ledgers[name].charge(info.clock)
            self.counts[f"rule:{name}"] = self.counts.get(f"rule:{name}", 0) + 1
        if self.pacer is not None:
            self.pacer.charge(info.clock)
        if self.deduper is not None:
            self.deduper.add(fp, info.clock)
        self.counts["kept"] += 1
        self.run_kept += 1
