"""The simulated active-learning cycle, with the data set's own labels as the oracle.

For each seed: draw the initial labeled set (random, the same for every strategy of that seed),
train, evaluate per-class AP on the fixed evaluation split; that round 0 is shared by all
strategies of the seed. Then, per strategy and round: score the unlabeled pool with the last
round's model, select ``budget`` images with the strategy, reveal their labels, train again on
the grown set (from the starting weights, or warm from the last round's), evaluate. Every
finished round is a JSON checkpoint, written atomically; a re-run of the same command skips
finished rounds and resumes after the last one.

The loop never names a strategy: it asks the registry what each one needs (detections and
embeddings from a scored pool, or nothing, as for ``random``; an error predictor fitted on the
evaluation split with the round's model, for ``needs_error_model``) and which options it takes
(the study's ``measure`` goes to every strategy with a ``score`` option).

The labeled subset is given to Ultralytics as a text file of image paths: symbolic links in the
study's own ``dataset/`` folder (``dataset/images/<split>/``, the labels linked in
``dataset/labels/<split>/``), so no image is copied and everything Ultralytics writes beside
them (its label caches, the ``.npy`` image cache) lands in the study folder, never beside the
user's images. The evaluation splits' label caches are built there once and read by every round.

Nothing a previous round did is done again: the pool scored by a model is kept on disk under
``scores/``, keyed by the hash of the weights file and the scoring settings, so round 0's pool is
scored once per seed whatever the strategies, processes or resumptions; strategies that need no
model scores (``random``, ``uniform_time``) never score the pool.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from cvactive.errors import ConfigError, DatasetError
from cvactive.loop.config import LoopConfig
from cvactive.loop.dataview import EvalSet, _eval_sets, _subset_yaml, evaluate_weights, link_view
from cvactive.loop.selecting import PoolSelection
from cvactive.record import ImageRecord
from cvactive.yolodata import load_yolo_dataset

log = logging.getLogger(__name__)

#: Ultralytics' image cache while training and evaluating: ``disk`` (``.npy`` files beside the
#: linked images in the study's ``dataset/`` folder, kept across rounds), ``ram`` (decoded per
#: training run; Ultralytics warns it may make training non-deterministic) or ``none``. See
#: ``docs/loop.md`` for the measurement behind the default.
CACHES = ("none", "disk", "ram")
DEFAULT_CACHE = "none"


def _atomic_write(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


class Study(PoolSelection):
    """One learning-curve study: its data, settings and folder; :meth:`run` trains what is missing
    (scoring, pricing and selecting between trainings: :class:`~cvactive.loop.selecting.PoolSelection`)."""

    def __init__(
        self,
        data: str | Path,
        out: str | Path,
        cfg: LoopConfig,
        *,
        workers: int | None = None,
        cache: str = DEFAULT_CACHE,
        train_workers: int | None = None,
        threads: int | None = None,
    ) -> None:
        """``workers``: threads of the inference pipeline that scores the pool (``None``:
        :func:`cvactive.detect.pipeline.default_workers` for the round's model, which is ``0``, batch
        after batch on one thread, for a PyTorch model on the CPU). ``cache``: Ultralytics' image
        cache (:data:`CACHES`). ``train_workers`` and ``threads``: dataloader processes and torch
        threads of training and evaluation (``None``: none and every core on the CPU,
        :func:`cvactive.train.cpu_threads`; Ultralytics' choice on a GPU). They change how fast a
        round runs, not what it computes, so they are not study settings."""
        from cvactive.weights import resolve_model_name

        if workers is not None and workers < 0:
            raise ConfigError(f"workers must be 0 (no pipeline) or more, got {workers}")
        self.workers = None if workers is None else int(workers)  # None: default_workers(the round's model)
        if cache not in CACHES:
            raise ConfigError(f"unknown cache {cache!r}; valid values: {', '.join(CACHES)}")
        self.cache = cache
        if (train_workers is not None and train_workers < 0) or (threads is not None and threads < 1):
            raise ConfigError(f"train_workers must be >= 0 and threads >= 1, got {train_workers} and {threads}")
        self.train_workers, self.threads = train_workers, threads
        self.cfg = cfg
        self.data = Path(data)
        self.ds = load_yolo_dataset(data)
        for split in (cfg.pool_split, cfg.eval_split):
            if split not in self.ds.splits:
                raise DatasetError(f"{data}: no {split!r} split; it has {', '.join(self.ds.splits)}")
        self.pool_items = list(self.ds.items(cfg.pool_split))  # the oracle: each pool image's labels
        self.pool = [item.image for item in self.pool_items]
        cfg.check(len(self.pool))
        self.evals = _eval_sets(self.ds, cfg)
        self.out = Path(out).resolve()
        self.model = resolve_model_name(cfg.model)
        self._scored: dict[str, list[ImageRecord]] = {}
        self._hashes: dict[str, str] = {}
        self._links: dict[str, list[Path]] = {}
        #: Seconds spent scoring the pool (and the evaluation split for error models), all rounds;
        #: a pool scored once serves every round and strategy that asks for it again.
        self.scoring_seconds = 0.0
        #: Pool images scored (forward passes) by this process, and scored pools read from ``scores/``.
        self.scored_images = 0
        self.scores_reused = 0
        self._error_models: dict[str, Any] = {}

    # -- settings ---------------------------------------------------------------------------
    def write_settings(self) -> None:
        """Record the settings; refuse a folder that holds a study with other settings."""
        self.out.mkdir(parents=True, exist_ok=True)
        settings = json.loads(
            json.dumps({"data": str(self.data.resolve()), **asdict(self.cfg), "resolved_model": self.model})
        )
        path = self.out / "settings.json"
        if path.exists():
            old = json.loads(path.read_text())
            old.setdefault("recipe", "epochs")  # a study recorded before recipes trained by epochs
            # A setting added to LoopConfig after the study started counts as its default there.
            defaults = json.loads(json.dumps(asdict(LoopConfig())))
            old = {**{k: defaults[k] for k in settings if k not in old and k in defaults}, **old}
            # The same checkpoint reached through another path (a linked data folder) is the same model.
            for side in (old, settings):
                for key in ("model", "resolved_model"):
                    if isinstance(side.get(key), str) and Path(side[key]).exists():
                        side[key] = str(Path(side[key]).resolve())
            free = ("strategies", "seeds", "rounds")  # a study may grow: more strategies, seeds or rounds
            if {k: v for k, v in old.items() if k not in free} != {k: v for k, v in settings.items() if k not in free}:
                raise ConfigError(
                    f"{self.out} holds a study with other settings ({path}); use a new --out to start another"
                )
        _atomic_write(path, settings)

    # -- the linked images -------------------------------------------------------------------
    @property
    def view(self) -> Path:
        """The study's folder of symbolic links to the pool and evaluation images (and their labels)."""
        return self.out / "dataset"

    def linked_pool(self) -> list[Path]:
        """The links to the pool images, in pool order (made on first use)."""
        if "pool" not in self._links:
            labels = [item.label for item in self.pool_items]
            self._links["pool"] = link_view(self.view, "pool", self.pool, labels)
        return self._links["pool"]

    def linked_eval(self, ev: EvalSet) -> list[Path]:
        """The links to an evaluation set's images (made on first use)."""
        key = f"eval-{ev.name}"
        if key not in self._links:
            labels = ev.labels or tuple(None for _ in ev.images)
            self._links[key] = link_view(self.view, key, ev.images, labels)
        return self._links[key]

    # -- one round --------------------------------------------------------------------------
    def train(self, labeled: list[int], seed: int, work: Path, start_from: str) -> tuple[Path, Path, Any]:
        """Train on the labeled pool images from ``start_from`` with the study's recipe; return the
        weights, the data.yaml and the :class:`~cvactive.train.TrainResult` (steps, images processed)."""
        from cvactive.train import train_detector

        main = self.evals[0]
        pool = self.linked_pool()
        data_yaml = _subset_yaml(work, main.names, [pool[i] for i in labeled], self.linked_eval(main), "main")
        cfg = self.cfg
        result = train_detector(
            data_yaml,
            work,
            model=start_from,
            epochs=cfg.epochs,
            imgsz=cfg.imgsz,
            batch=cfg.batch,
            device=cfg.device,
            seed=seed,
            name="train",
            freeze=cfg.freeze,
            val=False,
            progress=False,
            recipe=cfg.recipe,
            workers=self.train_workers,
            threads=self.threads,
            own_data=True,  # a listing of the study's own links (dataset/)
            cache=False if self.cache == "none" else self.cache,
        )
        return result.weights, data_yaml, result

    def train_and_eval(self, labeled: list[int], seed: int, work: Path, start_from: str) -> dict:
        """Train on the labeled pool images from ``start_from``; evaluate on every evaluation set.

        The row's ``seconds`` splits the round's wall time: ``train``, ``evaluate`` (every
        evaluation set), and ``score`` / ``select`` (0 here; :meth:`next_round` fills them in).
        """
        start = time.perf_counter()
        weights, data_yaml, trained = self.train(labeled, seed, work, start_from)
        train_seconds = time.perf_counter() - start
        start = time.perf_counter()
        main = self.evals[0]
        options: dict[str, Any] = {"threads": self.threads, "cache": self.cache}
        metrics = evaluate_weights(weights, data_yaml, self.cfg, main.names, work, **options)
        others = {}
        pool = self.linked_pool()
        for ev in self.evals[1:]:
            yaml_path = _subset_yaml(work, ev.names, [pool[i] for i in labeled], self.linked_eval(ev), ev.name)
            others[ev.name] = evaluate_weights(weights, yaml_path, self.cfg, ev.names, work, **options)
        seconds = {"train": train_seconds, "score": 0.0, "select": 0.0, "evaluate": time.perf_counter() - start}
        work_done = {"recipe": self.cfg.recipe, "epochs": trained.epochs, "steps": trained.steps}
        work_done["images"] = trained.images
        row = {"weights": str(weights), "start_from": start_from, "train_seconds": train_seconds, **metrics}
        row.update(seconds=seconds, training=work_done)
        if others:
            row["eval_sets"] = others
        return row

    # -- the whole study --------------------------------------------------------------------
    def checkpoint(self, path: Path) -> dict:
        """A finished round's row; one checkpointed before annotation was recorded gets its
        images and boxes from its labeled set (its corrections stay unknown: ``None``)."""
        row = dict(json.loads(path.read_text()))
        row.setdefault("annotation", self.annotation(row["labeled"], None))
        return row

    def round0(self, seed: int) -> dict:
        """Round 0 of a seed: the random initial set, trained and evaluated (from its checkpoint when finished)."""
        rng0 = np.random.default_rng(seed)
        initial = sorted(int(i) for i in rng0.choice(len(self.pool), size=self.cfg.initial, replace=False))
        ckpt = self.out / f"seed{seed}" / "round0" / "round.json"
        if ckpt.exists():
            return self.checkpoint(ckpt)
        metrics = self.train_and_eval(initial, seed, ckpt.parent, self.model)
        from cvactive.cost import Corrections

        # No model of the data's classes exists before round 0: its images are drawn in both modes.
        drawn = Corrections.drawn(len(initial), self.boxes_of(initial))
        row = {"seed": seed, "round": 0, "labeled": initial, "labels_used": len(initial), **metrics}
        row["annotation"] = self.annotation(initial, drawn)
        _atomic_write(ckpt, row)
        return row

    def work_dir(self, seed: int, strategy: str, r: int) -> Path:
        """The folder of one round (round 0 is shared by the strategies of a seed)."""
        return self.out / f"seed{seed}" / ("round0" if r == 0 else f"{strategy}/round{r}")

    def ensure_weights(self, chain: list[dict], seed: int, strategy: str) -> str:
        """The weights of the last round in ``chain``, retrained when only its checkpoint is here.

        A study resumed from committed checkpoints (``round.json`` files without the weights, which
        stay out of git) retrains that round's model from its labeled set: training is seeded and
        deterministic, so it is the same model up to floating-point noise.
        """
        row = chain[-1]
        weights = Path(row["weights"])
        if not weights.is_absolute():  # checkpoints published by tools/learning_curve_study.py
            weights = self.out / weights
        if weights.is_file():
            return str(weights)
        r = int(row["round"])
        start_from = self.model
        if self.cfg.init == "previous" and r > 0:
            start_from = self.ensure_weights(chain[:-1], seed, strategy)
        log.warning("weights of seed %d %s round %d are missing: retraining them", seed, strategy, r)
        row["weights"] = str(self.train(row["labeled"], seed, self.work_dir(seed, strategy, r), start_from)[0])
        return row["weights"]

    def next_round(self, seed: int, strategy: str, r: int, chain: list[dict]) -> dict:
        """Round ``r`` of ``strategy`` after the rounds in ``chain`` (from its checkpoint when finished)."""
        work = self.work_dir(seed, strategy, r)
        ckpt = work / "round.json"
        if ckpt.exists():
            return self.checkpoint(ckpt)
        previous = chain[-1]
        previous_weights = self.ensure_weights(chain, seed, strategy)
        # The rng of a round depends only on (seed, strategy, round): a resumed study makes the
        # same choices as an uninterrupted one.
        rng = np.random.default_rng([seed, r, sum(map(ord, strategy))])
        scored_before, images_before = self.scoring_seconds, self.scored_images
        k = self.candidates(previous["labeled"], self.spent(previous))
        chosen, select_seconds = self.select(strategy, previous_weights, previous["labeled"], rng, k)
        scored_in_select = self.scoring_seconds - scored_before
        if self.cfg.budget_unit != "images":
            chosen = self.fill_budget(chosen, previous_weights)
        labeled = sorted(set(previous["labeled"]) | set(chosen))
        annotation = self.annotation(labeled, self.corrected(previous, previous_weights, chosen))
        start_from = previous_weights if self.cfg.init == "previous" else self.model
        metrics = self.train_and_eval(labeled, seed, work, start_from)
        row = {
            "seed": seed,
            "round": r,
            "strategy": strategy,
            "labeled": labeled,
            "chosen": sorted(chosen),
            "labels_used": len(labeled),
            "select_seconds": select_seconds,
            **metrics,
            "annotation": annotation,
        }
        # The pool scored for the strategy (next to nothing when an earlier arm of the seed scored it
        # with this model: read back) and the chosen images predicted for the corrections count.
        score_seconds = self.scoring_seconds - scored_before
        row["seconds"] = {**row["seconds"], "score": score_seconds, "select": select_seconds - scored_in_select}
        row["scored_images"] = self.scored_images - images_before  # forward passes of this round's scoring
        _atomic_write(ckpt, row)
        return row

    def finished_rows(self) -> list[dict]:
        """The rows of every checkpointed round in the folder, as :meth:`run` returns them,
        training nothing (a report in the middle of a study). Seeds and strategies found in the
        folder count too when this study's settings no longer name them (a study narrowed to
        fewer arms for later seeds keeps the arms it ran before)."""
        found = [p for p in self.out.glob("seed*") if p.name[4:].isdigit()]
        seeds = sorted({*self.cfg.seed_list, *(int(p.name[4:]) for p in found)})
        on_disk = sorted({p.parent.parent.name for p in self.out.glob("seed*/*/round1/round.json")})
        strategies = [*self.cfg.strategy_list, *(s for s in on_disk if s not in self.cfg.strategy_list)]
        rows: list[dict] = []
        for seed in seeds:
            first = self.work_dir(seed, "", 0) / "round.json"
            if not first.exists():
                continue
            round0 = self.checkpoint(first)
            for strategy in strategies:
                done = []
                for r in range(1, self.cfg.rounds + 1):
                    path = self.work_dir(seed, strategy, r) / "round.json"
                    if not path.exists():
                        break
                    done.append({**self.checkpoint(path), "strategy": strategy})
                if done or strategy == "random":
                    rows += [{**round0, "strategy": strategy, "select_seconds": 0.0}, *done]
        return rows

    def run(self, progress: bool = True, on_round: Callable[[list[dict]], None] | None = None) -> list[dict]:
        """Train and evaluate every round not yet checkpointed; return every row.

        ``on_round(rows)`` is called after each round this call trained, with every row so far.
        The study folder is locked for the whole run: a second run into it fails at once, naming
        the first (:func:`cvactive.outputs.folder_lock`).
        """
        from cvactive.outputs import check_dir_output, folder_lock

        check_dir_output(self.out, what="study folder")
        with folder_lock(self.out, "loop"):
            return self._run(progress, on_round)

    def _run(self, progress: bool, on_round: Callable[[list[dict]], None] | None) -> list[dict]:
        from tqdm import tqdm

        cfg = self.cfg
        self.write_settings()
        total = len(cfg.seed_list) * (1 + len(cfg.strategy_list) * cfg.rounds)
        bar = tqdm(total=total, disable=not progress, unit="round", desc="active-learning study")
        rows: list[dict] = []
        for seed in cfg.seed_list:
            self._scored.clear()  # the round-0 model of a seed is shared by its strategies, then dropped
            self._error_models.clear()
            fresh = not (self.work_dir(seed, "", 0) / "round.json").exists()
            round0 = self.round0(seed)
            bar.update(1)
            if fresh and on_round:
                on_round([*rows, {**round0, "strategy": "random", "select_seconds": 0.0}])
            for strategy in cfg.strategy_list:
                chain = [round0]
                rows.append({**round0, "strategy": strategy, "select_seconds": 0.0})
                for r in range(1, cfg.rounds + 1):
                    fresh = not (self.work_dir(seed, strategy, r) / "round.json").exists()
                    chain.append(self.next_round(seed, strategy, r, chain))
                    rows.append({**chain[-1], "strategy": strategy})
                    bar.update(1)
                    if fresh and on_round:
                        on_round(rows)
        bar.close()
        return rows


def run_loop(
    data: str | Path,
    out: str | Path,
    cfg: LoopConfig | None = None,
    *,
    progress: bool = True,
    cache: str = DEFAULT_CACHE,
) -> Path:
    """Run (or resume) a learning-curve study; return the path of its ``rounds.json``.

    ``cache``: Ultralytics' image cache while training and evaluating (:data:`CACHES`; not a study
    setting: the models are the same with any).

    Raises:
        DatasetError: the data set or one of its splits is missing.
        ConfigError: the labels asked for exceed the pool, or an option is invalid.
    """
    from cvactive.loop.report import write_report

    cfg = cfg or LoopConfig()
    study = Study(data, out, cfg, cache=cache)
    rows = study.run(progress)
    return write_report(rows, study.out, cfg)
