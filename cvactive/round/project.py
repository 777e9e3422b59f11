"""A round project: its folder, its settings (``round.yaml``) and its state (``state.json``).

A project folder holds::

    round.yaml          the settings (written once by ``init``; a user may edit the options)
    state.json          the current round and the steps done in it (written whole, after each step)
    labeled/            the labeled set as a YOLO data set (data.yaml, images/<split>, labels/<split>);
                        each round's collected images join its train split
    rounds/<NNN>/       one round's files: pool scores, the selection, the health report, the training run
    weights/            each round's trained weights (round-<NNN>.pt)
    eval/               the per-class AP history (history.json) and its plot

The state machine is pure (no FiftyOne, no model): :func:`next_step` and :func:`check_order` say
what comes next and refuse a step out of order.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cvactive.errors import ConfigError, CvactiveError, DatasetError
from cvactive.recipes import DEFAULT_RECIPE, RECIPES

#: The steps of a round, in order.
STEPS: tuple[str, ...] = ("select", "annotate", "collect", "check", "train", "evaluate")
#: Steps that wait for people: annotate sends work out, collect waits until it is done.
HUMAN_STEPS: tuple[str, ...] = ("collect",)
SETTINGS, STATE = "round.yaml", "state.json"
LABELED = "labeled"
COMMAND = "round"
STATE_VERSION = 1
#: Defaults of the options ``round.yaml`` may set.
DEFAULTS: dict[str, Any] = {
    "backend": "labelstudio",
    "strategy": "uncertainty",
    "budget": 20,
    "eval_split": "val",
    "seed": 0,
    "imgsz": 320,
    "conf": 0.1,
    "finetune": "last",
    "strategy_options": {},
    "train": {"recipe": DEFAULT_RECIPE, "epochs": 30, "batch": 16},
    "health": {},
}
FINETUNE = ("last", "pretrained")


class RoundOrderError(CvactiveError):
    """A step was asked for out of order (the message names the step to run)."""


class GateFailed(CvactiveError):
    """The health gate failed on the grown labeled set (the message names the report)."""


@dataclass
class Settings:
    """What ``round.yaml`` holds.

    Attributes:
        data: the initial labeled set's ``data.yaml`` (copied into ``labeled/`` at init).
        pool: the unlabeled sources (images, folders, globs, videos) scored each round.
        model: the starting model (a ``.pt``, a scale name, ``pretrained``).
        dataset: the FiftyOne data set of the project.
        backend: the annotation backend (``labelstudio``).
        strategy, strategy_options, budget, seed: the selection.
        eval_split: the labeled set's split every round is evaluated on (fixed: collected images never join it).
        imgsz, conf: the detector's input size and confidence when scoring.
        finetune: ``last`` trains each round from the previous round's weights, ``pretrained`` from ``model``.
        train: options of :func:`cvactive.train.train_detector` (``epochs``, ``batch``, ``imgsz``, ...).
        health: options of :func:`cvactive.health.check_health` (its gates).
    """

    data: str
    pool: list[str]
    model: str
    dataset: str
    backend: str = "labelstudio"
    strategy: str = "uncertainty"
    budget: int = 20
    eval_split: str = "val"
    seed: int = 0
    imgsz: int = 320
    conf: float = 0.1
    finetune: str = "last"
    strategy_options: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=lambda: dict(DEFAULTS["train"]))
    health: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> Settings:
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a mapping of settings")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        missing = [k for k in ("data", "pool", "model", "dataset") if not raw.get(k)]
        if missing:
            raise ConfigError(f"{where}: missing {', '.join(missing)}")
        values = {**{k: v for k, v in DEFAULTS.items()}, **raw}
        pool = values["pool"]
        settings = cls(
            data=str(values["data"]), pool=[str(p) for p in (pool if isinstance(pool, list) else [pool])],
            model=str(values["model"]), dataset=str(values["dataset"]), backend=str(values["backend"]),
            strategy=str(values["strategy"]), budget=values["budget"], eval_split=str(values["eval_split"]),
            seed=values["seed"], imgsz=values["imgsz"], conf=values["conf"], finetune=str(values["finetune"]),
            strategy_options=dict(values["strategy_options"] or {}), train=dict(values["train"] or {}),
            health=dict(values["health"] or {}),
        )  # fmt: skip
        settings.check(where)
        return settings

    def check(self, where: str = SETTINGS) -> None:
        """Refuse values no step could use, before any step runs."""
        from cvactive.store.annotate import BACKENDS

        if self.backend not in BACKENDS:
            raise ConfigError(f"{where}: unknown backend {self.backend!r}; choose one of: {', '.join(BACKENDS)}")
        if self.finetune not in FINETUNE:
            raise ConfigError(f"{where}: finetune must be one of {', '.join(FINETUNE)}, got {self.finetune!r}")
        for name in ("budget", "imgsz", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "seed" else 1):
                raise ConfigError(f"{where}: {name} must be a positive integer, got {value!r}")
        if isinstance(self.conf, bool) or not isinstance(self.conf, (int, float)) or not 0 <= self.conf <= 1:
            raise ConfigError(f"{where}: conf must lie in [0, 1], got {self.conf!r}")
        recipe = self.train.get("recipe")
        if recipe is not None and recipe not in RECIPES:
            raise ConfigError(f"{where}: train.recipe {recipe!r} is not a recipe; choose one of: {', '.join(RECIPES)}")
        from cvactive.selection import available_strategies

        if self.strategy not in available_strategies():
            raise ConfigError(
                f"{where}: unknown strategy {self.strategy!r}; choose one of: {', '.join(available_strategies())}"
            )


@dataclass
class Project:
    """An open project folder: its settings and state (read with :func:`open_project`)."""

    root: Path
    settings: Settings
    state: dict[str, Any]

    @property
    def round(self) -> int:
        return int(self.state["round"])

    @property
    def done(self) -> dict[str, Any]:
        """The steps done in the current round -> what each recorded."""
        return dict(self.state["done"])

    @property
    def labeled(self) -> Path:
        return self.root / LABELED / "data.yaml"

    def round_dir(self, n: int | None = None) -> Path:
        return self.root / "rounds" / f"{self.round if n is None else n:03d}"

    @property
    def weights(self) -> str:
        """The model the next scoring uses: the last round's weights, else the starting model."""
        return str(self.state.get("weights") or self.settings.model)

    def save(self) -> None:
        from cvactive.outputs import write_json_atomic

        write_json_atomic(self.root / STATE, self.state)

    def mark(self, step: str, info: dict[str, Any]) -> None:
        """Record ``step`` done in the current round (the last thing a step does); evaluate closes the round."""
        self.state["done"][step] = info
        if step == STEPS[-1]:
            self.state["history"].append({"round": self.round, **self.state["done"]})
            self.state["round"] = self.round + 1
            self.state["done"] = {}
        self.save()


def next_step(done: dict[str, Any] | list[str]) -> str:
    """The first step of the round not done yet."""
    return next(s for s in STEPS if s not in done)


def check_order(project: Project, step: str) -> None:
    """Refuse ``step`` unless it is the next one of the current round.

    Raises:
        RoundOrderError: one line naming the step to run.
    """
    if step not in STEPS:
        raise ConfigError(f"unknown step {step!r}; the steps: {', '.join(STEPS)}")
    want = next_step(project.done)
    if step == want:
        return
    where = project.root
    if step in project.done:
        raise RoundOrderError(f"round {project.round}: {step} is done already; next: cvactive round {want} {where}")
    raise RoundOrderError(
        f"round {project.round}: {step} comes after {want}, which is not done; run: cvactive round {want} {where}"
    )


def open_project(root: str | Path) -> Project:
    """Read a project's settings and state.

    Raises:
        ConfigError: the folder is not a round project, or a file of it is unreadable.
    """
    from cvactive._config import load_yaml

    path = Path(root)
    if not (path / SETTINGS).is_file() or not (path / STATE).is_file():
        raise ConfigError(
            f"{path} is not a round project (no {SETTINGS} and {STATE}); start one with cvactive round init"
        )
    settings = Settings.from_dict(load_yaml(path / SETTINGS), str(path / SETTINGS))
    try:
        state = json.loads((path / STATE).read_text(encoding="utf-8"))
        if not isinstance(state, dict) or not isinstance(state.get("done"), dict):
            raise ValueError("not a round state")
        int(state["round"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{path / STATE} is unreadable ({err}); it is the project's record of its rounds") from None
    return Project(path, settings, state)


def init_project(root: str | Path, settings: Settings) -> Project:
    """Create a project folder: settings, state, and the labeled set copied in as a YOLO data set.

    Raises:
        OutputError: ``root`` holds files that are not a project of ``cvactive round``, or is a project already.
        DatasetError: the labeled set cannot be read or lacks the evaluation split.
        ConfigError: a bad setting.
    """
    from cvactive.outputs import claim_dir, folder_lock, write_json_atomic, write_text_atomic
    from cvactive.yolodata import load_yolo_dataset

    settings.check()
    data = load_yolo_dataset(settings.data)
    if settings.eval_split not in data.splits or not data.splits[settings.eval_split]:
        raise DatasetError(
            f"{settings.data}: no {settings.eval_split!r} split to evaluate on (its splits: {', '.join(data.splits)})"
        )
    if "train" not in data.splits:
        raise DatasetError(f"{settings.data}: no 'train' split to grow")
    _check_inputs(settings)
    path = Path(root)
    if (path / STATE).exists():
        raise ConfigError(
            f"{path} is a round project already (round {open_project(path).round}); see cvactive round status {path}"
        )
    owned = claim_dir(path, COMMAND, flag="an empty folder for the project")
    with folder_lock(path, "round init"):
        settings.data = str(Path(settings.data).resolve())
        settings.pool = [str(Path(p).resolve()) if Path(p).exists() else p for p in settings.pool]
        settings.model = str(Path(settings.model).resolve())
        labeled = path / LABELED
        copied: list[Path] = []
        for item in data.items():
            image = labeled / "images" / item.split / item.image.name
            label = labeled / "labels" / item.split / f"{item.image.stem}.txt"
            image.parent.mkdir(parents=True, exist_ok=True)
            label.parent.mkdir(parents=True, exist_ok=True)
            _copy(item.image, image)
            if item.label is not None and item.label.is_file():
                _copy(item.label, label)
            copied += [image, label]
        names = {int(k): str(v) for k, v in data.names.items()}
        spec = {"path": str(labeled.resolve()), **{s: f"images/{s}" for s in data.splits}, "names": names}
        import yaml

        write_text_atomic(labeled / "data.yaml", yaml.safe_dump(spec, sort_keys=False))
        write_text_atomic(path / SETTINGS, yaml.safe_dump(settings.to_dict(), sort_keys=False))
        state = {"version": STATE_VERSION, "round": 1, "done": {}, "weights": None, "history": [],
                 "classes": [names[i] for i in sorted(names)]}  # fmt: skip
        write_json_atomic(path / STATE, state)
        owned.record([*copied, labeled / "data.yaml", path / SETTINGS, path / STATE])
    return Project(path, settings, state)


def _check_inputs(settings: Settings) -> None:
    """The model and every local pool source exist (streams and glob patterns are checked when scored)."""
    from cvactive.sources import is_stream

    if not Path(settings.model).exists():
        raise ConfigError(f"model {settings.model!r} does not exist; give a .pt checkpoint or an exported model")
    for source in settings.pool:
        if not is_stream(source) and not any(c in source for c in "*?[") and not Path(source).exists():
            raise ConfigError(f"pool source {source!r} does not exist")


def _copy(src: Path, dst: Path) -> None:
    from cvactive.outputs import atomic_path

    with atomic_path(dst, fsync=False) as tmp:
        shutil.copyfile(src, tmp)


@dataclass
class Status:
    """Where a project stands: the round, the steps done, what to run next and why."""

    root: Path
    round: int
    done: list[str]
    next: str
    pending: int | None
    rounds_done: int
    last_map: float | None
    advice: str
