"""What a training or validation run hooks into Ultralytics: NMS without its time limit, quiet logs,
torch's thread count kept, no validation when asked, counters of the work done, an epoch progress bar.

:func:`cvactive.train.train_detector` and :func:`cvactive.train.validate_detector` use them.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cvactive._env import offline_defaults
from cvactive.errors import ConfigError


def datasets_dir() -> Path:
    """Ultralytics' datasets folder (from its settings), where it looks for a data set's relative
    ``path`` that does not exist from the current folder."""
    offline_defaults()
    from ultralytics.utils import DATASETS_DIR

    return Path(DATASETS_DIR)


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


def set_threads(yolo: Any, event: str, threads: int | None) -> None:
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


def set_workers(yolo: Any, workers: int | None) -> None:
    """Train with ``workers`` dataloader processes on the CPU too (``None``: Ultralytics' choice).

    Ultralytics sets ``workers=0`` whenever it trains on the CPU ("time dominated by inference"), so
    the ``workers`` a caller passes is silently ignored there and decoding and augmentation run on
    the training thread between steps. This puts the caller's number back after that choice (at
    ``on_pretrain_routine_start``, before the data loaders are built).
    """
    if workers is None:
        return
    if workers < 0:
        raise ConfigError(f"workers must be 0 or more, got {workers}")

    def on_start(trainer: Any) -> None:
        trainer.args.workers = workers

    yolo.add_callback("on_pretrain_routine_start", on_start)


def skip_validation(yolo: Any) -> None:
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


def count_work(yolo: Any) -> dict[str, int]:
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


def epoch_progress(epochs: int, arch: str, *, show: bool) -> tuple[Any, Callable[[Any], None]]:
    """A progress bar over the epochs and the Ultralytics callback that advances it (with the loss)."""
    from tqdm import tqdm

    bar = tqdm(total=epochs, disable=not show, unit="epoch", desc=f"training {Path(arch).stem}")

    def on_epoch_end(trainer: Any) -> None:
        bar.update(1)
        loss = getattr(trainer, "tloss", None)
        if loss is not None and hasattr(loss, "sum"):
            bar.set_postfix(loss=f"{float(loss.sum()):.3f}")

    return bar, on_epoch_end
