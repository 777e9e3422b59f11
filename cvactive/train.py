"""Training adapter over Ultralytics: train and validate a detector on a YOLO data set, offline.

A model to train is a ``.pt`` (fine-tuned from its weights), ``pretrained`` (the COCO-pretrained
YOLOv8n that :mod:`cvactive.weights` rebuilds from the shared OpenVINO export), or an
architecture (random init): a YAML or a scale name (:mod:`cvactive.architectures`). How a set is
fine-tuned is a recipe (:mod:`cvactive.recipes`). Runs go to the folder given, never the current
directory.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cvactive._env import offline_defaults
from cvactive.architectures import resolve_model
from cvactive.errors import ConfigError, DatasetError, ModelError
from cvactive.recipes import Recipe, TrainPlan, get_recipe
from cvactive.train_hooks import (
    count_work,
    epoch_progress,
    full_nms,
    kept_torch_threads,
    quiet_ultralytics,
    set_threads,
    set_workers,
    skip_validation,
)
from cvactive.yolodata import linked_data_yaml


@dataclass
class TrainResult:
    """What a training run produced.

    ``epochs``, ``batches`` and ``steps`` count what the trainer did (epochs run, batches
    forward-backward, optimizer steps); ``images`` is the images it processed (forward and
    backward passes). ``schedule`` is the recipe's arguments given to Ultralytics (empty without one).
    """

    weights: Path
    run_dir: Path
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)
    epochs: int = 0
    batches: int = 0
    steps: int = 0
    images: int = 0
    schedule: dict[str, Any] = field(default_factory=dict)


def train_detector(
    data: str | Path,
    out_dir: str | Path,
    *,
    model: str | Path = "pico",
    epochs: int = 30,
    imgsz: int = 320,
    batch: int = 16,
    device: str | None = None,
    seed: int = 0,
    workers: int | None = None,
    threads: int | None = None,
    name: str = "train",
    freeze: int | None = None,
    val: bool = True,
    verbose: bool = False,
    progress: bool = True,
    recipe: str | Recipe | None = None,
    trust_checkpoint: bool = False,
    own_data: bool = False,
    **overrides: Any,
) -> TrainResult:
    """Train a YOLO detector with Ultralytics and return the path of its best (or last) weights.

    Args:
        data: the ``data.yaml`` of a YOLO data set.
        out_dir: folder for the run (weights in ``out_dir/name/weights``); never the current directory.
        model: a ``.pt`` to fine-tune, ``pretrained``/``auto`` (see :func:`cvactive.weights.resolve_model_name`),
            an architecture YAML or a scale name (``pico``, ``n``, ``s``).
        epochs, imgsz, batch, device, seed: as in ``YOLO.train``.
        workers: dataloader processes (at most the CPU cores). ``None``: Ultralytics' choice, which
            is none on the CPU (decoding and augmentation then run on the training thread) and 2 here
            on a GPU; a number is used on the CPU too (:func:`~cvactive.train_hooks.set_workers`).
        threads: torch's CPU threads while training (``None``: every core when training on the
            CPU, :func:`cpu_threads`; Ultralytics' choice on a GPU); the process's own setting is
            restored afterwards either way (Ultralytics leaves its choice behind).
        freeze: freeze the first ``freeze`` layers (``None``: train every layer).
        val: validate during training (needed for a ``best.pt`` that is not the last epoch's);
            ``False`` validates nothing, not even the last epoch (Ultralytics would, twice).
        verbose: show Ultralytics' own logs; otherwise one progress bar over the epochs.
        progress: show that progress bar.
        recipe: a :class:`Recipe` or the name of one in :data:`RECIPES` (``None``: Ultralytics'
            defaults for ``epochs`` and ``batch``, as the ``epochs`` recipe); a ``steps`` recipe sets
            the epochs and batch from the number of training images and its step count.
        overrides: any further ``YOLO.train`` argument (e.g. ``lr0``, ``mosaic``, ``patience``); they
            win over the recipe's.
        trust_checkpoint: every ``.pt`` of the run (``model``, the run's own ``last.pt`` / ``best.pt``)
            is loaded weights-only and one that needs more is refused
            (:mod:`cvactive.weights.checkpoint`); ``True`` loads it anyway, with a warning.
        own_data: ``data`` and its files are the caller's own (a folder cvactive wrote), so
            Ultralytics may write its ``labels/*.cache`` beside them; by default it is given a view
            of symbolic links in ``out_dir/dataview`` instead and writes nothing beside the data set.
    """
    offline_defaults()
    if workers is not None and workers < 0:
        raise ConfigError(f"workers must be 0 or more, got {workers}")
    data_path, out = _run_folders(data, out_dir)
    if not own_data:
        data_path = linked_data_yaml(data_path, out / "dataview", ("train", "val") if val else ("train",))
    arch = resolve_model(model, out)
    images = _train_images(data_path)
    plan = get_recipe(recipe or "epochs").plan(images, epochs=epochs, batch=batch)
    recipe_freeze = plan.args.pop("freeze", None)
    freeze = freeze if freeze is not None else recipe_freeze
    start = time.perf_counter()
    bar, on_epoch_end = epoch_progress(plan.epochs, arch, show=progress and not verbose)
    try:
        threads = cpu_threads(threads, device)
        yolo, work = _load_for_training(arch, on_epoch_end, threads=threads, val=val, trust=trust_checkpoint)
        set_workers(yolo, workers)
        args = {"imgsz": imgsz, "device": device, "seed": seed, "workers": 2 if workers is None else workers,
                "name": name, **overrides}  # fmt: skip
        trust = trust_checkpoint
        _fit(yolo, data_path, out, arch, plan, freeze=freeze, val=val, verbose=verbose, trust=trust, args=args)
    except (FileNotFoundError, RuntimeError, ValueError) as err:
        raise ModelError(f"training {arch} on {data_path} failed: {err}") from err
    finally:
        bar.close()
    result = _train_result(yolo, out / name, time.perf_counter() - start)
    result.epochs, result.batches, result.steps = work["epochs"], work["batches"], work["steps"]
    result.images = work["epochs"] * images
    result.schedule = {"epochs": plan.epochs, "batch": plan.batch, "freeze": freeze, **plan.args, **overrides}
    return result


def _run_folders(data: str | Path, out_dir: str | Path) -> tuple[Path, Path]:
    """The data set YAML (it must exist) and the run's folder (made, absolute)."""
    data_path = Path(data)
    if not data_path.is_file():
        raise DatasetError(f"data set YAML {str(data_path)!r} does not exist")
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    return data_path, out


def _load_for_training(
    arch: str, on_epoch_end: Callable[[Any], None], *, threads: int | None, val: bool, trust: bool
) -> tuple[Any, dict[str, int]]:
    """The ``YOLO`` to train (a ``.pt`` loaded weights-only unless ``trust``) with its callbacks, and
    the counters of its work (:func:`~cvactive.train_hooks.count_work`)."""
    from ultralytics import YOLO

    from cvactive.weights.checkpoint import checkpoint_loading

    with checkpoint_loading(trust=trust):  # a .pt: weights only, never code from the file
        yolo = YOLO(arch, task="detect")
    yolo.add_callback("on_train_epoch_end", on_epoch_end)
    set_threads(yolo, "on_pretrain_routine_start", threads)
    work = count_work(yolo)
    if not val:
        skip_validation(yolo)
    return yolo, work


def _fit(
    yolo: Any,
    data_path: Path,
    out: Path,
    arch: str,
    plan: TrainPlan,
    *,
    freeze: int | None,
    val: bool,
    verbose: bool,
    trust: bool,
    args: dict[str, Any],
) -> None:
    """Run ``YOLO.train`` with the plan's schedule; ``args``: ``imgsz``, ``device``, ``seed``,
    ``workers``, ``name`` and the caller's overrides (which win over the plan's arguments)."""
    from cvactive.weights.checkpoint import checkpoint_loading

    args = dict(args)
    device = args.pop("device")
    imgsz, seed, workers, name = args.pop("imgsz"), args.pop("seed"), args.pop("workers"), args.pop("name")
    with (
        quiet_ultralytics(not verbose),
        full_nms(),
        checkpoint_loading(trust=trust),
        kept_torch_threads(),
    ):
        yolo.train(
            data=str(data_path),
            epochs=plan.epochs,
            imgsz=imgsz,
            batch=plan.batch,
            device=device if device is not None else ("0" if _cuda() else "cpu"),
            seed=seed,
            deterministic=True,
            workers=workers,
            project=str(out),
            name=name,
            exist_ok=True,
            # A .pt starts from its own weights; Ultralytics drops them with pretrained=False.
            pretrained=str(arch).endswith(".pt"),
            plots=False,
            val=val,
            freeze=freeze,
            amp=_cuda(),
            verbose=verbose,
            **{**plan.args, **args},
        )


_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def _train_images(data_yaml: Path) -> int:
    """How many images the ``train`` split of a data set YAML names (a folder, a listing, or a list of them)."""
    import yaml

    spec = yaml.safe_load(data_yaml.read_text()) or {}
    root = Path(spec.get("path") or data_yaml.parent)
    if not root.is_absolute():
        root = data_yaml.parent / root
    entries = spec.get("train")
    count = 0
    for entry in entries if isinstance(entries, list) else [entries]:
        if entry is None:
            continue
        path = Path(entry) if Path(entry).is_absolute() else root / entry
        if path.is_dir():
            count += sum(1 for f in path.rglob("*") if f.suffix.lower() in _IMAGE_SUFFIXES)
        elif path.is_file():
            count += sum(1 for line in path.read_text().splitlines() if line.strip())
    if count == 0:
        raise DatasetError(f"the train split of {data_yaml} names no images")
    return count


def _train_result(yolo: Any, run_dir: Path, seconds: float) -> TrainResult:
    """The weights a finished run left (``best.pt``, else ``last.pt``) and its trainer's last metrics."""
    weights = run_dir / "weights" / "best.pt"
    if not weights.exists():
        weights = run_dir / "weights" / "last.pt"
    if not weights.exists():
        raise ModelError(f"training finished without weights in {run_dir / 'weights'}")
    metrics: dict[str, float] = {}
    trainer = getattr(yolo, "trainer", None)
    if trainer is not None and getattr(trainer, "metrics", None):
        metrics = {str(k): float(v) for k, v in trainer.metrics.items() if isinstance(v, (int, float))}
    return TrainResult(weights=weights, run_dir=run_dir, seconds=seconds, metrics=metrics)


def validate_detector(
    weights: str | Path,
    data_yaml: str | Path,
    names: dict[int, str],
    *,
    imgsz: int,
    batch: int = 16,
    conf: float = 0.001,
    iou: float = 0.7,
    device: str | None = None,
    work: str | Path,
    threads: int | None = None,
    cache: str | None = None,
    own_data: bool = False,
) -> dict[str, Any]:
    """Ultralytics' COCO-style validation on the data set's ``val`` split, per class, settings recorded.

    Returns ``mAP50``, ``mAP50_95``, per-class ``ap50`` / ``ap50_95`` (0.0 for a class with no
    ground truth in the split), the IoU sweep and the confidence threshold. ``threads``: torch's
    CPU threads while validating (``None``: :func:`cpu_threads`; restored afterwards either way);
    ``cache``: Ultralytics' image cache of the split (``disk``: ``.npy`` files beside its images).
    ``own_data``: the split's files are the caller's own, so Ultralytics' ``labels/val.cache`` (and a
    disk cache) may sit beside them; by default it validates a view of symbolic links in
    ``work/dataview`` and writes nothing beside the data set.
    """
    offline_defaults()
    if not own_data:
        data_yaml = linked_data_yaml(data_yaml, Path(work) / "dataview", ("val",))
    from ultralytics import YOLO

    from cvactive.weights.checkpoint import checkpoint_loading

    with quiet_ultralytics(), full_nms(), checkpoint_loading(), kept_torch_threads():  # weights only
        yolo = YOLO(str(weights), task="detect")
        set_threads(yolo, "on_val_start", cpu_threads(threads, device or None))
        metrics = yolo.val(
            data=str(data_yaml),
            split="val",
            imgsz=imgsz,
            batch=batch,
            conf=conf,
            iou=iou,
            device=device or None,
            plots=False,
            verbose=False,
            project=str(Path(work).resolve()),
            name="val",
            exist_ok=True,
            cache=cache or False,
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
        "eval_conf": conf,
    }


def cpu_threads(threads: int | None, device: str | None) -> int | None:
    """torch's threads for a training or validation: ``threads`` when given; every core when it runs
    on the CPU; ``None`` (Ultralytics' choice) on a GPU.

    Ultralytics takes one thread less than the cores, for its dataloader processes, but it starts
    none on the CPU (``workers=0`` there), so one core stayed idle: on 2 idle cores, 20 optimizer
    steps of 8 HIT-UAV frames at 640 px took 64 s with 1 thread and 37 s with 2, and validating
    316 frames 30 s against 18 s, the same mAP (``benchmarks/results/round-cost/cores-grid-idle.json``).
    """
    if threads is not None:
        return threads
    on_cpu = str(device).lower() == "cpu" if device is not None else not _cuda()
    return (os.cpu_count() or 1) if on_cpu else None


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())
