"""What a study does between two trainings: score the pool with the last round's model (cached in
memory and under ``scores/``), fit an error predictor when a strategy needs one, price the
annotation of images (boxes to draw, corrections of the model's predictions) and select the next
round's images within the budget. :class:`PoolSelection` is the part of
:class:`cvactive.loop.study.Study` that does it."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cvactive.errors import ConfigError
from cvactive.loop.config import LoopConfig
from cvactive.loop.scores import POOL_BATCH, SCORES_VERSION, file_hash, load_scored, save_scored
from cvactive.record import ImageRecord
from cvactive.yolodata import YoloDataset, YoloItem

log = logging.getLogger(__name__)


class PoolSelection:
    """Scoring the pool, pricing annotation and selecting, for :class:`~cvactive.loop.study.Study`
    (which sets these attributes)."""

    cfg: LoopConfig
    ds: YoloDataset
    out: Path
    pool: list[Path]
    pool_items: list[YoloItem]
    workers: int | None  # None: default_workers(the model scoring)
    scoring_seconds: float
    scored_images: int
    scores_reused: int
    _scored: dict[str, list[ImageRecord]]
    _hashes: dict[str, str]
    _error_models: dict[str, Any]

    def scored_pool(self, weights: str) -> list[ImageRecord]:
        """Every pool image scored (boxes, class scores, measures, embedding) by ``weights``; cached.

        The pool goes through the inference pipeline (:mod:`cvactive.detect.pipeline`, ``workers``
        threads) in batches of 16 consecutive images, the batches it always had, so the records
        are those of batch-after-batch scoring, bit for bit.

        Cached in memory and on disk (:meth:`scores_path`: keyed by the weights file's hash and the
        scoring settings), so a pool is scored once per model whatever the strategies that ask
        for it, the process or a resumption; the seconds of loading the model count as scoring.
        """
        key = self.scores_key(weights)
        if key in self._scored:
            return self._scored[key]
        start = time.perf_counter()
        path = self.scores_path(weights)
        if path.is_file():
            records = load_scored(path)
            if [r.source for r in records] == [str(p) for p in self.pool]:
                self.scoring_seconds += time.perf_counter() - start
                self.scores_reused += 1
                self._scored[key] = records
                return records
            log.warning("%s does not hold this pool's records: scoring again", path)
        from cvactive.detect.model import Detector
        from cvactive.detect.pipeline import run_detector
        from cvactive.detect.scorer import Scorer
        from cvactive.sources import FrameMeta, read_image

        cfg = self.cfg
        detector = Detector(weights, imgsz=cfg.imgsz, conf=cfg.score_conf, device=cfg.device, embed=True)
        frames = ((read_image(p), FrameMeta(str(p))) for p in self.pool)
        records = list(run_detector(detector, frames, POOL_BATCH, workers=self.workers, scorer=Scorer()))
        self.scored_images += len(records)
        save_scored(path, records)
        self.scoring_seconds += time.perf_counter() - start
        self._scored[key] = records
        return records

    def scores_key(self, weights: str) -> str:
        """What defines a scored pool: the weights file's sha256 and the scoring settings (image
        size, NMS confidence, batch, device, the pool's images, the file layout's version)."""
        stat = os.stat(weights)
        stamp = f"{weights}:{stat.st_mtime_ns}:{stat.st_size}"  # a file retrained in place is hashed again
        if stamp not in self._hashes:
            self._hashes[stamp] = file_hash(weights)
        cfg = self.cfg
        settings = [SCORES_VERSION, self._hashes[stamp], cfg.imgsz, cfg.score_conf, POOL_BATCH, cfg.device]
        settings.append(hashlib.sha256("\n".join(map(str, self.pool)).encode()).hexdigest())
        return hashlib.sha256(json.dumps(settings).encode()).hexdigest()

    def scores_path(self, weights: str) -> Path:
        """The file of the pool scored by ``weights`` (``scores/pool-<key>.jsonl`` in the study folder)."""
        return self.out / "scores" / f"pool-{self.scores_key(weights)[:20]}.jsonl"

    def error_model(self, weights: str) -> Any:
        """The error predictor of ``weights``, fitted on the main evaluation split; cached.

        The evaluation images are scored by ``weights`` as the pool is (same NMS confidence),
        matched to their ground truth, and the predictor is fitted on them (the evaluation split
        is never selected from). It is saved beside the weights as ``error_model.npz``, with its
        cross-validated quality in ``error_model.json``.
        """
        if weights in self._error_models:
            return self._error_models[weights]
        from cvactive.detect.model import Detector
        from cvactive.detect.pipeline import default_workers
        from cvactive.errormodel import fit_error_model
        from cvactive.errormodel.collect import collect_labeled

        cfg = self.cfg
        start = time.perf_counter()
        detector = Detector(weights, imgsz=cfg.imgsz, conf=cfg.score_conf, device=cfg.device)
        items = list(self.ds.items(cfg.eval_split))
        workers = default_workers(detector) if self.workers is None else self.workers
        samples = collect_labeled(detector, items, self.ds.names, progress=False, workers=workers)
        self.scoring_seconds += time.perf_counter() - start
        model = fit_error_model(samples, seed=0, num_classes=len(detector.names))
        model.save(Path(weights).parent / "error_model.npz")
        self._error_models[weights] = model
        return model

    # -- annotation cost --------------------------------------------------------------------
    def boxes_of(self, indices: Sequence[int]) -> int:
        """Ground-truth boxes of the pool images at ``indices`` (what drawing them pays for)."""
        return int(sum(len(self.pool_items[i].classes) for i in indices))

    def predictions(self, weights: str, indices: Sequence[int]) -> list[ImageRecord]:
        """The records of ``weights`` on the pool images at ``indices`` (from the scored pool when it
        is cached, in memory or on disk, else predicted for these images only, at the scoring
        confidence); the seconds count as scoring."""
        key = self.scores_key(weights)
        if key not in self._scored and self.scores_path(weights).is_file():
            self.scored_pool(weights)
        if key in self._scored:
            return [self._scored[key][i] for i in indices]
        from cvactive.detect.model import Detector
        from cvactive.detect.pipeline import run_detector
        from cvactive.sources import FrameMeta, read_image

        start = time.perf_counter()
        cfg = self.cfg
        detector = Detector(weights, imgsz=cfg.imgsz, conf=cfg.score_conf, device=cfg.device)
        frames = ((read_image(self.pool[i]), FrameMeta(str(self.pool[i]))) for i in indices)
        records = list(run_detector(detector, frames, POOL_BATCH, workers=self.workers))
        self.scored_images += len(records)
        self.scoring_seconds += time.perf_counter() - start
        return records

    def corrections(self, weights: str, indices: Sequence[int]) -> list[Any]:
        """Per image, what correcting the predictions of ``weights`` into its labels takes
        (:class:`cvactive.cost.Corrections`, at the cost model's operating confidence)."""
        model = self.cfg.cost_model
        out = []
        for i, rec in zip(indices, self.predictions(weights, indices)):
            item = self.pool_items[i]
            out.append(
                model.corrections(
                    rec.xyxy, rec.class_id, rec.confidence, item.xyxy(rec.width, rec.height), item.classes
                )
            )
        return out

    def annotation(self, labeled: Sequence[int], corrected: Any) -> dict[str, Any]:
        """A round's ``annotation`` record: its labeled set's images and ground-truth boxes, and the
        corrections counted so far (``None``: not recorded)."""
        return {
            "images": len(labeled),
            "boxes": self.boxes_of(labeled),
            "correct": None if corrected is None else corrected.to_dict(),
        }

    def corrected(self, previous: dict, weights: str, chosen: Sequence[int]) -> Any:
        """The corrections of the labeled set after ``chosen`` joins ``previous``'s: the batch is
        counted against the predictions of the model that selected it (``weights``); ``None`` when
        ``previous`` has no count (a round recorded before corrections were)."""
        from cvactive.cost import Corrections

        before = previous["annotation"].get("correct")
        if before is None:
            return None
        total = Corrections.from_dict(before)
        for c in self.corrections(weights, chosen):
            total = total + c
        return total

    def fill_budget(self, ranked: Sequence[int], weights: str) -> list[int]:
        """The images of ``ranked`` (best first) an annotator labels within one round's cost budget:
        in ranking order, each image whose cost still fits in what is left (one that does not is
        skipped); the round never spends more than ``budget`` in ``budget_unit``."""
        cfg, model = self.cfg, self.cfg.cost_model
        if cfg.budget_unit == "seconds_correct":
            costs = [model.correct_seconds(c) for c in self.corrections(weights, ranked)]
        elif cfg.budget_unit == "seconds_draw":
            costs = [model.draw_seconds(1, self.boxes_of([i])) for i in ranked]
        else:
            costs = [float(self.boxes_of([i])) for i in ranked]
        chosen, left = [], float(cfg.budget)
        for i, c in zip(ranked, costs):
            if c <= left:
                chosen.append(int(i))
                left -= c
        if not chosen:
            raise ConfigError(
                f"a budget of {cfg.budget} {cfg.budget_unit} per round fits none of the {len(ranked)} images "
                f"ranked first (the cheapest costs {min(costs):g}); raise --budget"
            )
        return chosen

    def candidates(self, labeled: Sequence[int], spent: float) -> int:
        """How many images to ask a strategy for: ``budget`` under an image budget; under a cost
        budget three times what the budget buys at the labeled set's mean cost per image (all
        unlabeled images at most)."""
        cfg = self.cfg
        unlabeled = len(self.pool) - len(labeled)
        if cfg.budget_unit == "images":
            return min(cfg.budget, unlabeled)
        per_image = spent / max(len(labeled), 1)
        if per_image <= 0:
            return unlabeled
        return int(min(unlabeled, np.ceil(3 * cfg.budget / per_image) + 1))

    def spent(self, row: dict) -> float:
        """The labeled set's spend in ``budget_unit`` (from its ``annotation`` record)."""
        from cvactive.cost import Corrections

        ann, model = row["annotation"], self.cfg.cost_model
        corrected = ann.get("correct")
        value = model.spend(
            ann["images"], ann["boxes"], None if corrected is None else Corrections.from_dict(corrected)
        )
        return float(value[self.cfg.budget_unit] or 0.0)

    def select(
        self, strategy: str, weights: str, labeled: list[int], rng: np.random.Generator, k: int | None = None
    ) -> tuple[list[int], float]:
        """The pool indices ``strategy`` picks next (``k`` of them, ``budget`` by default), best
        first, and the seconds selection took (scoring included). A cost-aware arm
        (``<strategy>+cost``) orders the strategy's picks by utility per expected cost."""
        from cvactive.loop.config import arm_strategy
        from cvactive.selection import get_strategy, select

        start = time.perf_counter()
        arm, strategy = strategy, arm_strategy(strategy)
        spec = get_strategy(strategy)
        if spec.needs_detections or arm != strategy:  # expected costs come from the predictions
            records = self.scored_pool(weights)
        else:  # the registry says it needs no model: do not pay for scoring
            records = [ImageRecord.empty(str(p), 1, 1) for p in self.pool]
        if spec.needs_error_model:  # predicted errors, from a predictor fitted with this round's model
            records = self.error_model(weights).attach(records)
        indices, utilities = select(
            records,
            self.cfg.budget if k is None else k,
            strategy=strategy,
            labeled=np.asarray(labeled, np.int64),
            rng=rng,
            **self.cfg.options_for(arm),
        )
        if arm != strategy:
            from cvactive.selection.base import as_pool
            from cvactive.selection.costaware import expected_cost, per_cost_order

            mode = {"boxes": "boxes", "seconds_draw": "draw", "seconds_correct": "correct"}[self.cfg.budget_unit]
            rows = np.asarray(indices, np.int64)
            cost = expected_cost(as_pool(records), mode, costs=self.cfg.cost_model, rows=rows)
            indices = rows[per_cost_order(utilities, cost, mode)]
        return [int(i) for i in indices], time.perf_counter() - start
