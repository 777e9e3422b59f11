"""Training adapter over Ultralytics: train and validate a detector on a YOLO data set, offline.

A model to train is a ``.pt`` (fine-tuned from its weights), ``pretrained`` (the COCO-pretrained
YOLOv8n that :mod:`cvactive.weights` rebuilds from the shared OpenVINO export), or an
architecture (random init): a YAML or a scale name. :func:`scaled_architecture` writes a narrower
YOLOv8 variant (the ``pico`` scale, an eighth of YOLOv8's base width) that trains from scratch on
a CPU in a few minutes. Runs go to the folder given, never the current directory.
:func:`random_checkpoint` writes a random-init model with real batch-norm statistics (an offline
stand-in for committee members and MC-dropout models).
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from cvactive._env import offline_defaults
from cvactive.errors import ConfigError, DatasetError, ModelError

#: name -> (depth, width, max_channels) multipliers of the YOLOv8 architecture.
SCALES: dict[str, tuple[float, float, int]] = {
    "pico": (0.33, 0.125, 1024),
    "n": (0.33, 0.25, 1024),
    "s": (0.33, 0.50, 1024),
}


def datasets_dir() -> Path:
    """Ultralytics' datasets folder (from its settings), where it looks for a data set's relative
    ``path`` that does not exist from the current folder."""
    offline_defaults()
    from ultralytics.utils import DATASETS_DIR

    return Path(DATASETS_DIR)


def scaled_architecture(scale: str, out_dir: str | Path, base: str = "yolov8.yaml") -> Path:
    """Write Ultralytics' ``base`` architecture YAML with one scale, ``yolov8-<scale>.yaml``, into ``out_dir``."""
    import yaml
    from ultralytics.utils import checks

    if scale not in SCALES:
        raise ConfigError(f"unknown scale {scale!r}; valid scales: {', '.join(SCALES)}")
    arch = yaml.safe_load(Path(checks.check_yaml(base)).read_text())
    arch["scales"] = {"n": list(SCALES[scale])}  # a lone scale is used whatever the file name says
    # The "yolov8n" in the name only silences Ultralytics' "no model scale" warning: the file holds one scale.
    out = Path(out_dir) / f"cvactive-{scale}-yolov8n.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(arch, sort_keys=False))
    return out


def resolve_model(model: str | Path, work_dir: str | Path) -> str:
    """A model argument for training: ``pico``/``n``/``s`` become architecture YAMLs in ``work_dir``."""
    text = str(model)
    if text in ("pretrained", "auto"):
        from cvactive.weights import resolve_model_name

        text = resolve_model_name(text)
    if text in SCALES:
        return str(scaled_architecture(text, work_dir))
    if not Path(text).exists() and not text.endswith((".yaml", ".yml")):
        raise ModelError(
            f"model {text!r} does not exist; give a .pt, a model .yaml, or one of the scales {', '.join(SCALES)}"
        )
    return text


@contextmanager
def full_nms() -> Iterator[None]:
    """Lift Ultralytics' NMS time limit (2 s + 0.05 s per image of a batch) while inside.

    On a loaded CPU, validation at confidence 0.001 can exceed it, and NMS then stops in the
    middle of a batch: the batch's later images get no boxes and the mAP comes out low by chance
    (Ultralytics only logs "NMS time limit exceeded"). A measurement must not depend on the
    machine's load. The validator calls ``ultralytics.utils.nms.non_max_suppression`` through its
    module, so the module attribute is swapped for the duration (a private use: see :mod:`cvactive._ultralytics`).
    """
    from cvactive._ultralytics import private

    nms = private("ultralytics.utils.nms")  # the pin check: the swap relies on how the validator calls it
    original = nms.non_max_suppression
    nms.non_max_suppression = functools.partial(original, max_time_img=math.inf)
    try:
        yield
    finally:
        nms.non_max_suppression = original


@contextmanager
def quiet_ultralytics(enabled: bool = True) -> Iterator[None]:
    """Silence Ultralytics' INFO logs and its progress bars (warnings still show).

    Also hides the warning Ray prints once per training when it is installed (the ``ray`` extra):
    Ultralytics' Ray Tune callback asks for a trial id outside any Tune session.
    """
    import warnings

    from ultralytics.utils import LOGGER

    old = LOGGER.level
    if enabled:
        LOGGER.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*get_trial_id.*", category=UserWarning)
            yield
    finally:
        LOGGER.setLevel(old)


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


#: Ultralytics' nominal batch size: gradients accumulate over ``round(64 / batch)`` batches per step.
NOMINAL_BATCH = 64


@dataclass(frozen=True)
class Recipe:
    """How a labeled set is fine-tuned: a schedule in epochs (Ultralytics' own) or in optimizer steps.

    ``epochs`` recipe (``steps=None``): the run's ``epochs`` and ``batch`` go to Ultralytics as they
    are, with its defaults: ``optimizer=auto`` (AdamW at ``0.002 * 5 / (4 + classes)`` for short
    runs), 3 warm-up epochs, gradients accumulated to a nominal batch of 64, mosaic closed for the
    last 10 epochs. On 40 images at batch 16 that is 3 batches an epoch: 10 epochs are 30 batches
    and about 10 optimizer steps, most of them inside the warm-up.

    ``steps`` recipe: a fixed number of optimizer steps whatever the labeled-set size (the epochs
    follow from the set size and the batch, rounded up to whole epochs), one step per batch (no
    accumulation), ``warmup_steps`` of linear warm-up, an explicit optimizer and learning rate, and
    mosaic only for sets of at least ``mosaic_min`` images (closed for the last quarter of the epochs).

    Attributes:
        name: the recipe's name (``LoopConfig.recipe``).
        steps: optimizer steps of a run (``None``: an epoch schedule).
        batch: images per batch (``None``: the caller's).
        warmup_steps: optimizer steps of linear warm-up (learning rate from 0, bias lr from
            ``warmup_bias_lr``).
        optimizer, lr0, lrf, cos_lr, momentum, weight_decay: as in ``YOLO.train`` (``lrf``: the
            final learning rate as a fraction of ``lr0``).
        mosaic_min: labeled sets smaller than this train without mosaic (0: mosaic always).
        freeze: layers frozen (YOLOv8's backbone is the first 10; ``None``: the caller's).
    """

    name: str
    steps: int | None = None
    batch: int | None = None
    warmup_steps: int = 0
    optimizer: str = "auto"
    lr0: float = 0.01
    lrf: float = 0.01
    cos_lr: bool = False
    momentum: float = 0.937
    weight_decay: float = 0.0005
    warmup_bias_lr: float = 0.0
    mosaic_min: int = 0
    freeze: int | None = None

    def plan(self, images: int, *, epochs: int, batch: int) -> TrainPlan:
        """The epochs, batch and Ultralytics arguments for a labeled set of ``images`` images.

        ``epochs`` and ``batch`` are the caller's (the ``epochs`` recipe uses both; the ``steps``
        recipe its own batch when it has one, and no ``epochs``).
        """
        if images < 1:
            raise ConfigError(f"a labeled set needs at least 1 image, got {images}")
        if self.steps is None:
            return TrainPlan(epochs=epochs, batch=batch, args={})
        if self.steps < 1 or self.warmup_steps < 0:
            raise ConfigError(f"recipe {self.name!r}: steps must be >= 1 and warmup_steps >= 0")
        size = self.batch or batch
        per_epoch = math.ceil(images / size)  # Ultralytics keeps the last, partial batch
        run_epochs = math.ceil(self.steps / per_epoch)
        mosaic = images >= self.mosaic_min
        args: dict[str, Any] = {
            "nbs": size,  # one optimizer step per batch
            "optimizer": self.optimizer,
            "lr0": self.lr0,
            "lrf": self.lrf,
            "cos_lr": self.cos_lr,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "warmup_epochs": self.warmup_steps / per_epoch,
            "warmup_bias_lr": self.warmup_bias_lr,
            "mosaic": 1.0 if mosaic else 0.0,
            "close_mosaic": max(1, run_epochs // 4) if mosaic else 0,
        }
        if self.freeze is not None:
            args["freeze"] = self.freeze
        return TrainPlan(epochs=run_epochs, batch=size, args=args)


@dataclass(frozen=True)
class TrainPlan:
    """What a recipe gives Ultralytics for one labeled set: epochs, batch and further arguments."""

    epochs: int
    batch: int
    args: dict[str, Any]

    def batches(self, images: int) -> int:
        """Batches forward-backward over the run."""
        return self.epochs * math.ceil(images / self.batch)


#: The named recipes. ``epochs``: Ultralytics' defaults for the caller's epochs and batch (the
#: loop's recipe before issue #22). ``steps``: 80 optimizer steps of 8 images (640 images
#: processed whatever the set size), 8 warm-up steps, AdamW at 0.001 with a cosine decay to a
#: tenth, mosaic from 100 labeled images. ``steps-frozen``: the same with the backbone (the
#: first 10 layers of YOLOv8) frozen. See ``benchmarks/results/recipe/`` for how they compare.
_STEPS = Recipe(
    "steps",
    steps=80,
    batch=8,
    warmup_steps=8,
    optimizer="AdamW",
    lr0=0.001,
    lrf=0.1,
    cos_lr=True,
    momentum=0.9,
    weight_decay=0.0005,
    mosaic_min=100,
)
RECIPES: dict[str, Recipe] = {
    "epochs": Recipe("epochs"),
    "steps": _STEPS,
    "steps-frozen": replace(_STEPS, name="steps-frozen", freeze=10),
}


def epoch_schedule_steps(images: int, *, epochs: int, batch: int, warmup_epochs: float = 3.0) -> int:
    """Optimizer steps of Ultralytics' epoch schedule: ``images`` in batches of ``batch`` for ``epochs``.

    Gradients accumulate over ``round(64 / batch)`` batches per step; during the warm-up
    (``warmup_epochs``, at most all epochs but the last) the accumulation rises linearly from one
    batch. 40 images at batch 16 for 10 epochs: 30 batches, 9 steps.
    """
    per_epoch = math.ceil(images / batch)
    total = per_epoch * epochs
    target = min(max(round(NOMINAL_BATCH / batch), 1), total)
    warmup = round(min(warmup_epochs, max(epochs - 1, 0)) * per_epoch) if warmup_epochs > 0 else 0
    steps, last, accumulate = 0, -1, target
    for i in range(total):
        if warmup and i <= warmup:
            accumulate = max(1, int(np.interp(i, [0, warmup], [1, target]).round()))
        if i - last >= accumulate:
            steps, last = steps + 1, i
    return steps


def get_recipe(name: str | Recipe) -> Recipe:
    """The recipe called ``name`` (a :class:`Recipe` is returned as it is)."""
    if isinstance(name, Recipe):
        return name
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe {name!r}; valid recipes: {', '.join(RECIPES)}")
    return RECIPES[name]


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
    workers: int = 2,
    threads: int | None = None,
    name: str = "train",
    freeze: int | None = None,
    val: bool = True,
    verbose: bool = False,
    progress: bool = True,
    recipe: str | Recipe | None = None,
    trust_checkpoint: bool = False,
    **overrides: Any,
) -> TrainResult:
    """Train a YOLO detector with Ultralytics and return the path of its best (or last) weights.

    Args:
        data: the ``data.yaml`` of a YOLO data set.
        out_dir: folder for the run (weights in ``out_dir/name/weights``); never the current directory.
        model: a ``.pt`` to fine-tune, ``pretrained``/``auto`` (see :func:`cvactive.weights.resolve_model_name`),
            an architecture YAML or a scale name (``pico``, ``n``, ``s``).
        epochs, imgsz, batch, device, seed, workers: as in ``YOLO.train`` (``workers``: dataloader
            processes, at most the CPU cores).
        threads: torch's CPU threads while training (``None``: Ultralytics' choice, one less than
            the cores); the process's own setting is restored afterwards either way (Ultralytics
            leaves its choice behind).
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
    """
    offline_defaults()
    from ultralytics import YOLO

    from cvactive.weights.checkpoint import checkpoint_loading

    data_path = Path(data)
    if not data_path.is_file():
        raise DatasetError(f"data set YAML {str(data_path)!r} does not exist")
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    arch = resolve_model(model, out)
    images = _train_images(data_path)
    plan = get_recipe(recipe or "epochs").plan(images, epochs=epochs, batch=batch)
    recipe_freeze = plan.args.pop("freeze", None)
    freeze = freeze if freeze is not None else recipe_freeze
    start = time.perf_counter()
    bar, on_epoch_end = _epoch_progress(plan.epochs, arch, show=progress and not verbose)
    try:
        with checkpoint_loading(trust=trust_checkpoint):  # a .pt: weights only, never code from the file
            yolo = YOLO(arch, task="detect")
        yolo.add_callback("on_train_epoch_end", on_epoch_end)
        _set_threads(yolo, "on_pretrain_routine_start", threads)
        work = _count_work(yolo)
        if not val:
            _skip_validation(yolo)
        with (
            quiet_ultralytics(not verbose),
            full_nms(),
            checkpoint_loading(trust=trust_checkpoint),
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
                **{**plan.args, **overrides},
            )
    except (FileNotFoundError, RuntimeError, ValueError) as err:
        raise ModelError(f"training {arch} on {data_path} failed: {err}") from err
    finally:
        bar.close()
    result = _train_result(yolo, out / name, time.perf_counter() - start)
    result.epochs, result.batches, result.steps = work["epochs"], work["batches"], work["steps"]
    result.images = work["epochs"] * images
    result.schedule = {"epochs": plan.epochs, "batch": plan.batch, "freeze": freeze, **plan.args, **overrides}
    return result


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


@contextmanager
def kept_torch_threads() -> Iterator[None]:
    """Restore torch's CPU thread count on the way out.

    Ultralytics sets it whenever it picks a CPU device (training, validation, a predictor's
    setup): to one less than the cores, 1 on a 2-core machine, and leaves it so for the rest of the
    process, which would then score a pool or train the next round with what the last call chose.
    """
    import torch

    before = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _set_threads(yolo: Any, event: str, threads: int | None) -> None:
    """Set torch's CPU threads to ``threads`` at ``event`` (after Ultralytics picked the device and
    set them itself); ``None`` leaves Ultralytics' choice."""
    if threads is None:
        return
    if threads < 1:
        raise ConfigError(f"threads must be at least 1, got {threads}")

    def on_event(_: Any) -> None:
        import torch

        torch.set_num_threads(threads)

    yolo.add_callback(event, on_event)


def _skip_validation(yolo: Any) -> None:
    """Train without validating: no validation after the last epoch nor of ``best.pt`` at the end.

    Ultralytics validates the final epoch and then ``best.pt`` even with ``val=False``: on a CPU
    that is two passes over the val split per training, which a caller that evaluates the weights
    itself (the loop, the recipe benchmark) pays for nothing. Without a fitness every epoch's
    weights are ``best.pt`` as well as ``last.pt`` (the final epoch's, as before); the optimizer
    state is stripped from both as Ultralytics' final step does.
    """
    from ultralytics.utils.torch_utils import strip_optimizer

    def on_setup(trainer: Any) -> None:
        def final() -> None:
            for weights in (trainer.last, trainer.best):
                if weights.exists():
                    strip_optimizer(weights)

        trainer.validate = lambda: (trainer.metrics, None)
        trainer.final_eval = final

    yolo.add_callback("on_pretrain_routine_end", on_setup)


def _count_work(yolo: Any) -> dict[str, int]:
    """Counters of the epochs, batches and optimizer steps a training run does (filled as it runs)."""
    work = {"epochs": 0, "batches": 0, "steps": 0}

    def on_setup(trainer: Any) -> None:
        step = trainer.optimizer_step

        def counted() -> None:
            work["steps"] += 1
            step()

        trainer.optimizer_step = counted

    def on_batch(trainer: Any) -> None:
        work["batches"] += 1

    def on_epoch(trainer: Any) -> None:
        work["epochs"] += 1

    yolo.add_callback("on_pretrain_routine_end", on_setup)
    yolo.add_callback("on_train_batch_end", on_batch)
    yolo.add_callback("on_train_epoch_end", on_epoch)
    return work


def _epoch_progress(epochs: int, arch: str, *, show: bool) -> tuple[Any, Callable[[Any], None]]:
    """A progress bar over the epochs and the Ultralytics callback that advances it (with the loss)."""
    from tqdm import tqdm

    bar = tqdm(total=epochs, disable=not show, unit="epoch", desc=f"training {Path(arch).stem}")

    def on_epoch_end(trainer: Any) -> None:
        bar.update(1)
        loss = getattr(trainer, "tloss", None)
        if loss is not None and hasattr(loss, "sum"):
            bar.set_postfix(loss=f"{float(loss.sum()):.3f}")

    return bar, on_epoch_end


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
) -> dict[str, Any]:
    """Ultralytics' COCO-style validation on the data set's ``val`` split, per class, settings recorded.

    Returns ``mAP50``, ``mAP50_95``, per-class ``ap50`` / ``ap50_95`` (0.0 for a class with no
    ground truth in the split), the IoU sweep and the confidence threshold. ``threads``: torch's
    CPU threads while validating (``None``: Ultralytics' choice; restored afterwards either way);
    ``cache``: Ultralytics' image cache of the split (``disk``: ``.npy`` files beside its images).
    """
    offline_defaults()
    from ultralytics import YOLO

    from cvactive.weights.checkpoint import checkpoint_loading

    with quiet_ultralytics(), full_nms(), checkpoint_loading(), kept_torch_threads():  # weights only
        yolo = YOLO(str(weights), task="detect")
        _set_threads(yolo, "on_val_start", threads)
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


def random_checkpoint(
    out: str | Path, images: Sequence[np.ndarray], *, seed: int = 0, arch: str = "yolov8n.yaml", imgsz: int = 320
) -> Path:
    """Write a random-init ``arch`` with batch-norm statistics taken from ``images`` to ``out``.

    An offline stand-in for committee members and MC-dropout models. A randomly initialised
    YOLOv8 as it is scores every image alike: its batch-norm layers still hold their initial
    statistics, so activations shrink layer by layer and every class score equals the head's
    bias. Re-estimating the statistics on a few real images (forward passes in train mode, no
    gradients) makes the scores depend on the image. Different seeds give different members.
    They detect nothing meaningful: use them to exercise the machinery, trained snapshots for
    real committees.

    Args:
        out: the ``.pt`` file to write (:class:`~cvactive.detect.model.Detector` loads it).
        images: a few BGR ``uint8`` images (any sizes; each is resized to ``imgsz`` square).
        seed: the torch seed of the initial weights.
        arch: an Ultralytics architecture YAML.
        imgsz: the square size the statistics are taken at.
    """
    offline_defaults()
    import cv2
    import torch
    from ultralytics import YOLO

    torch.manual_seed(seed)
    yolo = YOLO(arch, task="detect")
    net = yolo.model
    assert isinstance(net, torch.nn.Module)
    batch = np.stack([cv2.resize(im, (imgsz, imgsz))[..., ::-1] for im in images]).astype(np.float32) / 255.0
    x = torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the passes
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net(x)
    net.eval()
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    yolo.save(path)
    return path


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())
