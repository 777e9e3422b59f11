"""The data set as Ultralytics sees it in a study: the evaluation sets, the study folder's symbolic
links to the pool and evaluation images (``dataset/images/<split>/``, labels in
``dataset/labels/<split>/``), the data.yaml of a labeled subset, and evaluating weights on one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cvactive.errors import ConfigError, DatasetError
from cvactive.loop.config import LoopConfig
from cvactive.yolodata import YoloDataset, link_view, load_yolo_dataset

__all__ = ["EvalSet", "evaluate_weights", "link_view"]


@dataclass(frozen=True)
class EvalSet:
    """A labeled evaluation split (name, its images, its data set's class names)."""

    name: str
    images: tuple[Path, ...]
    names: dict[int, str]
    labels: tuple[Path | None, ...] = ()


def _eval_sets(ds: YoloDataset, cfg: LoopConfig) -> list[EvalSet]:
    """The main evaluation split first, then each of ``cfg.eval_data`` (checked: same classes)."""
    main = list(ds.items(cfg.eval_split))
    sets = [EvalSet("main", tuple(i.image for i in main), dict(ds.names), tuple(i.label for i in main))]
    for i, spec in enumerate(cfg.eval_data):
        if not isinstance(spec, dict) or "data" not in spec:
            raise ConfigError(f"eval_data[{i}]: expected a mapping with 'data' (and 'split', 'name'), got {spec!r}")
        unknown = sorted(set(spec) - {"data", "split", "name"})
        if unknown:
            raise ConfigError(f"eval_data[{i}]: unknown key(s) {unknown}; valid keys: data, split, name")
        try:
            other = load_yolo_dataset(spec["data"])
        except DatasetError as err:
            raise DatasetError(f"eval_data[{i}] {spec['data']}: {err}") from err
        split = str(spec.get("split", "val"))
        if split not in other.splits:
            raise DatasetError(f"eval_data[{i}] {spec['data']}: no {split!r} split; it has {', '.join(other.splits)}")
        if dict(other.names) != dict(ds.names):
            raise ConfigError(
                f"eval_data[{i}] {spec['data']}: its classes {list(other.names.values())} differ from the "
                f"study's {list(ds.names.values())}; an evaluation set must use the same class names"
            )
        name = str(spec.get("name") or f"{Path(spec['data']).parent.name}-{split}")
        if name in {s.name for s in sets}:
            raise ConfigError(f"eval_data[{i}]: the name {name!r} is used twice")
        items = list(other.items(split))
        sets.append(EvalSet(name, tuple(i.image for i in items), dict(other.names), tuple(i.label for i in items)))
    return sets


def _subset_yaml(work: Path, names: dict[int, str], train: Sequence[Path], val: Sequence[Path], tag: str) -> Path:
    """A data.yaml whose train split is exactly ``train`` and whose val split is exactly ``val``."""
    import yaml

    work.mkdir(parents=True, exist_ok=True)
    listing = work / "labeled.txt"
    listing.write_text("".join(f"{p}\n" for p in train))
    eval_listing = work / f"eval-{tag}.txt"
    eval_listing.write_text("".join(f"{p}\n" for p in val))
    data = {"path": str(work), "train": str(listing), "val": str(eval_listing), "names": names}
    out = work / f"data-{tag}.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def evaluate_weights(
    weights: Path,
    data_yaml: Path,
    cfg: LoopConfig,
    names: dict[int, str],
    work: Path,
    *,
    threads: int | None = None,
    cache: str = "none",
) -> dict:
    """Per-class AP50 and AP50-95 on the data set's val split, with the settings recorded."""
    from cvactive import train

    return train.validate_detector(
        weights,
        data_yaml,
        names,
        imgsz=cfg.imgsz,
        batch=cfg.batch,
        conf=cfg.eval_conf,
        device=cfg.device,
        work=work,
        threads=threads,
        cache="disk" if cache == "disk" else None,  # a RAM cache lives one validation: nothing to keep
        own_data=True,  # the study's own links (dataset/): their caches stay with the study
    )
