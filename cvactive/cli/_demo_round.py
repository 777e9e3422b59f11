"""The demo's real round, the helpers of :mod:`cvactive.cli.demo`'s last step: the porch set split into
a labeled start and a pool, the stand-in annotator's boxes in pixels, the server's environment, what
the round did."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def rounds_done(root: Path) -> int:
    """How many rounds the demo's round project has finished (0 when it has none or is not there)."""
    import json

    state = root / "state.json"
    return len(json.loads(state.read_text()).get("history") or []) if state.is_file() else 0


@contextlib.contextmanager
def environ_set(values: dict[str, str]) -> Iterator[None]:
    """The process environment with ``values`` set meanwhile (the server's URL and token for cvactive's steps)."""
    import os

    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def print_round(root: Path) -> None:
    """What the round did, from its history: tasks, boxes collected, per-class AP."""
    import json

    last = json.loads((root / "state.json").read_text())["history"][-1]
    sent, collect, train, ev = last["annotate"], last["collect"], last["train"], last["evaluate"]
    print(f"round {last['round']}: {sent.get('sent', 0)} tasks in Label Studio project {sent.get('project', '?')}, "
          f"{collect.get('boxes', 0)} boxes on {collect.get('images', 0)} images collected into the ground truth and "
          f"the labeled set; trained {train.get('epochs')} epochs in {train.get('seconds')} s")  # fmt: skip
    aps = ", ".join(f"{c} {ap:.3f}" for c, ap in sorted(ev["per_class_ap"].items()) if ap is not None)
    print(f"per-class AP (IoU 0.50:0.95, {ev.get('samples')} val images, FiftyOne evaluation {ev.get('eval_key')}): "
          f"{aps}; mAP {ev['map']:.3f}")  # fmt: skip


def round_data(data: Path, out: Path) -> tuple[Path, Path, dict[str, Any]]:
    """The porch set as a round's starting point: the first half of train and val labeled, the second half's
    images the pool (their labels kept aside for the stand-in annotator)."""
    import shutil

    import yaml

    src = data.parent
    spec = yaml.safe_load(data.read_text())
    train = sorted((src / "images" / "train").glob("*.jpg"))
    half = len(train) // 2
    initial = out / "initial"
    for split, images in (("train", train[:half]), ("val", sorted((src / "images" / "val").glob("*.jpg")))):
        for image in images:
            for kind, name in (("images", image.name), ("labels", f"{image.stem}.txt")):
                dst = initial / kind / split / name
                if not dst.exists() and (src / kind / split / name).exists():
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src / kind / split / name, dst)
    yaml_path = initial / "data.yaml"
    if not yaml_path.exists():
        yaml_path.write_text(yaml.safe_dump({"path": str(initial), "train": "images/train", "val": "images/val",
                                             "names": spec["names"]}))  # fmt: skip
    pool = out / "pool"
    pool.mkdir(parents=True, exist_ok=True)
    labels = {}
    for image in train[half:]:
        if not (pool / image.name).exists():
            shutil.copyfile(image, pool / image.name)
        labels[image.name] = src / "labels" / "train" / f"{image.stem}.txt"
    names = spec["names"]
    names = [names[i] for i in sorted(names)] if isinstance(names, dict) else list(names)
    return yaml_path, pool, {"labels": labels, "names": names}


def pixel_boxes(label: Path, names: list[str], width: int, height: int) -> list[tuple[str, list[float]]]:
    """A YOLO label file's boxes as ``(class name, [x0, y0, x1, y1])`` in pixels."""
    boxes = []
    for line in label.read_text().splitlines() if label.exists() else []:
        if line.strip():
            c, cx, cy, w, h = line.split()[:5]
            x, y, bw, bh = float(cx) * width, float(cy) * height, float(w) * width, float(h) * height
            boxes.append((names[int(c)], [x - bw / 2, y - bh / 2, x + bw / 2, y + bh / 2]))
    return boxes
