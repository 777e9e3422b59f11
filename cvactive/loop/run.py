"""The simulated active-learning cycle, with the data set's own labels as the oracle.

For each seed: draw the initial labeled set (random, the same for every strategy of that seed),
train, evaluate per-class AP on the fixed evaluation split; that round 0 is shared by all
strategies of the seed. Then, per strategy and round: score the unlabeled pool with the last
round's model, select ``budget`` images with the strategy, reveal their labels, train again
from scratch on the grown set, evaluate. Every finished round is a JSON checkpoint, written
atomically; a re-run of the same command skips finished rounds and resumes after the last one.

The labeled subset is given to Ultralytics as a text file of image paths (labels are found
beside them by the usual images -> labels rule), so no image is copied.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cvactive.errors import ConfigError, DatasetError
from cvactive.yolodata import YoloDataset, load_yolo_dataset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopConfig:
    """Settings of a learning-curve study (the YAML keys of ``configs/loop.yaml``).

    Attributes:
        strategies: selection strategies; ``random`` is always included as the baseline.
        initial: size of the initial labeled set (drawn at random per seed).
        budget: images labeled per round.
        rounds: selection rounds after round 0.
        seeds: number of seeds (0, 1, ...), or an explicit list.
        model: architecture YAML, ``.pt`` or scale name (``pico``, ``n``, ``s``); trained from it each round.
        epochs, imgsz, batch, device: training settings.
        pool_split: the split whose images form the pool (their labels are the oracle).
        eval_split: the fixed evaluation split.
        score_conf: NMS confidence for scoring the pool (low, so uncertain boxes are seen).
        eval_conf: confidence threshold of evaluation (recorded with the results).
        measure: the image score ``uncertainty``-style strategies rank by.
        strategy_options: per-strategy keyword options for the selection registry.
    """

    strategies: tuple[str, ...] = ("random", "uncertainty", "hybrid")
    initial: int = 40
    budget: int = 40
    rounds: int = 3
    seeds: int | tuple[int, ...] = 3
    model: str = "pico"
    epochs: int = 20
    imgsz: int = 256
    batch: int = 16
    device: str | None = None
    pool_split: str = "train"
    eval_split: str = "val"
    score_conf: float = 0.05
    eval_conf: float = 0.001
    measure: str = "entropy_max"
    strategy_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else [int(s) for s in self.seeds]

    @property
    def strategy_list(self) -> list[str]:
        names = [s for s in self.strategies if s]
        return names if "random" in names else ["random", *names]

    def check(self, pool_size: int) -> None:
        if self.initial < 1 or self.budget < 1 or self.rounds < 0:
            raise ConfigError("initial and budget must be at least 1, rounds at least 0")
        needed = self.initial + self.budget * self.rounds
        if needed > pool_size:
            raise ConfigError(
                f"initial + budget x rounds = {needed} labels, but the pool has only {pool_size} images; "
                "lower --initial, --budget or --rounds"
            )


def _atomic_write(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def _subset_yaml(work: Path, ds: YoloDataset, images: Sequence[Path], eval_split: str) -> Path:
    """A data.yaml whose train split is exactly ``images`` and whose val split is the evaluation split."""
    import yaml

    work.mkdir(parents=True, exist_ok=True)
    listing = work / "labeled.txt"
    listing.write_text("".join(f"{p}\n" for p in images))
    eval_listing = work / "eval.txt"
    eval_listing.write_text("".join(f"{item.image}\n" for item in ds.items(eval_split)))
    data = {"path": str(work), "train": str(listing), "val": str(eval_listing), "names": ds.names}
    out = work / "data.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def evaluate_weights(weights: Path, data_yaml: Path, cfg: LoopConfig, names: dict[int, str], work: Path) -> dict:
    """Per-class AP50 and AP50-95 on the evaluation split, with the settings recorded."""
    from ultralytics import YOLO

    from cvactive.train import quiet_ultralytics

    with quiet_ultralytics():
        metrics = YOLO(str(weights), task="detect").val(
            data=str(data_yaml),
            split="val",
            imgsz=cfg.imgsz,
            batch=cfg.batch,
            conf=cfg.eval_conf,
            iou=0.7,
            device=cfg.device or None,
            plots=False,
            verbose=False,
            project=str(work),
            name="val",
            exist_ok=True,
        )
    box = metrics.box
    per_class_50 = {names[i]: 0.0 for i in names}
    per_class = {names[i]: 0.0 for i in names}
    for j, c in enumerate(box.ap_class_index):
        per_class_50[names[int(c)]] = float(box.ap50[j])
        per_class[names[int(c)]] = float(box.ap[j])
    return {
        "mAP50": float(box.map50),
        "mAP50_95": float(box.map),
        "ap50": per_class_50,
        "ap50_95": per_class,
        "iou_thresholds": "0.50:0.05:0.95",
        "eval_conf": cfg.eval_conf,
    }


def _train_and_eval(
    ds: YoloDataset, labeled: list[int], pool: list[Path], cfg: LoopConfig, seed: int, work: Path
) -> dict:
    from cvactive.train import train_detector

    data_yaml = _subset_yaml(work, ds, [pool[i] for i in labeled], cfg.eval_split)
    start = time.perf_counter()
    result = train_detector(
        data_yaml,
        work,
        model=cfg.model,
        epochs=cfg.epochs,
        imgsz=cfg.imgsz,
        batch=cfg.batch,
        device=cfg.device,
        seed=seed,
        name="train",
        val=False,
        progress=False,
    )
    train_seconds = time.perf_counter() - start
    metrics = evaluate_weights(result.weights, data_yaml, cfg, ds.names, work)
    return {"weights": str(result.weights), "train_seconds": train_seconds, **metrics}


def _select(
    strategy: str,
    weights: str,
    pool: list[Path],
    labeled: list[int],
    cfg: LoopConfig,
    rng: np.random.Generator,
) -> tuple[list[int], float]:
    start = time.perf_counter()
    taken = set(labeled)
    unlabeled = [i for i in range(len(pool)) if i not in taken]
    if strategy == "random":  # no model needed: the baseline costs nothing to select
        chosen = rng.choice(len(unlabeled), size=min(cfg.budget, len(unlabeled)), replace=False)
        return [unlabeled[int(i)] for i in chosen], time.perf_counter() - start
    from cvactive.detector import Detector, FrameMeta
    from cvactive.scoring import Scorer
    from cvactive.selection import select
    from cvactive.sources import read_image

    detector = Detector(weights, imgsz=cfg.imgsz, conf=cfg.score_conf, device=cfg.device, embed=True)
    scorer = Scorer()

    def records_of(indices: list[int]) -> list[Any]:
        out: list[Any] = []
        for chunk in range(0, len(indices), 16):
            part = indices[chunk : chunk + 16]
            images = [read_image(pool[i]) for i in part]
            out.extend(scorer(r) for r in detector.predict(images, [FrameMeta(str(pool[i])) for i in part]))
        return out

    pool_records = records_of(unlabeled)
    labeled_records = records_of(labeled)
    options = dict(cfg.strategy_options.get(strategy, {}))
    if strategy in ("uncertainty", "hybrid", "badge", "class_balanced") and "score" not in options:
        options["score"] = cfg.measure
    indices, _utilities = select(
        pool_records, cfg.budget, strategy=strategy, labeled=labeled_records, rng=rng, **options
    )
    return [unlabeled[int(i)] for i in indices], time.perf_counter() - start


def run_loop(data: str | Path, out: str | Path, cfg: LoopConfig | None = None, *, progress: bool = True) -> Path:
    """Run (or resume) a learning-curve study; return the path of its ``rounds.json``.

    Raises:
        DatasetError: the data set or one of its splits is missing.
        ConfigError: the labels asked for exceed the pool.
    """
    from tqdm import tqdm

    cfg = cfg or LoopConfig()
    ds = load_yolo_dataset(data)
    for split in (cfg.pool_split, cfg.eval_split):
        if split not in ds.splits:
            raise DatasetError(f"{data}: no {split!r} split; it has {', '.join(ds.splits)}")
    pool = [item.image for item in ds.items(cfg.pool_split)]
    cfg.check(len(pool))
    out_dir = Path(out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = {"data": str(Path(data).resolve()), **asdict(cfg)}
    settings_path = out_dir / "settings.json"
    if settings_path.exists():
        old = json.loads(settings_path.read_text())
        if {k: v for k, v in old.items() if k != "strategies"} != {
            k: v for k, v in json.loads(json.dumps(settings)).items() if k != "strategies"
        }:
            raise ConfigError(
                f"{out_dir} holds a study with other settings ({settings_path}); use a new --out to start another"
            )
    _atomic_write(settings_path, settings)
    total = len(cfg.seed_list) * (1 + len(cfg.strategy_list) * cfg.rounds)
    bar = tqdm(total=total, disable=not progress, unit="round", desc="active-learning study")
    rows: list[dict] = []
    for seed in cfg.seed_list:
        rng0 = np.random.default_rng(seed)
        initial = sorted(int(i) for i in rng0.choice(len(pool), size=cfg.initial, replace=False))
        base_dir = out_dir / f"seed{seed}" / "round0"
        ckpt0 = base_dir / "round.json"
        if ckpt0.exists():
            round0 = json.loads(ckpt0.read_text())
        else:
            metrics = _train_and_eval(ds, initial, pool, cfg, seed, base_dir)
            round0 = {"seed": seed, "round": 0, "labeled": initial, "labels_used": len(initial), **metrics}
            _atomic_write(ckpt0, round0)
        bar.update(1)
        for strategy in cfg.strategy_list:
            previous = round0
            rows.append({**round0, "strategy": strategy, "select_seconds": 0.0})
            for r in range(1, cfg.rounds + 1):
                work = out_dir / f"seed{seed}" / strategy / f"round{r}"
                ckpt = work / "round.json"
                if ckpt.exists():
                    previous = json.loads(ckpt.read_text())
                else:
                    # The rng of a round depends only on (seed, strategy, round): a resumed study makes
                    # the same choices as an uninterrupted one.
                    rng = np.random.default_rng([seed, r, sum(map(ord, strategy))])
                    chosen, select_seconds = _select(strategy, previous["weights"], pool, previous["labeled"], cfg, rng)
                    labeled = sorted(set(previous["labeled"]) | set(chosen))
                    metrics = _train_and_eval(ds, labeled, pool, cfg, seed, work)
                    previous = {
                        "seed": seed,
                        "round": r,
                        "strategy": strategy,
                        "labeled": labeled,
                        "chosen": sorted(chosen),
                        "labels_used": len(labeled),
                        "select_seconds": select_seconds,
                        **metrics,
                    }
                    _atomic_write(ckpt, previous)
                rows.append({**previous, "strategy": strategy})
                bar.update(1)
    bar.close()
    from cvactive.loop.report import write_report

    return write_report(rows, out_dir, cfg)
