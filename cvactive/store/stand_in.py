"""An annotator standing in for a person: known labels submitted to Label Studio through its HTTP API.

The porch demo's real round has no person to draw boxes; :func:`submit_known_labels` plays one,
submitting for each task sent by :func:`cvactive.store.annotate.annotate` the boxes a function gives
for its image (the porch ground truth), as Label Studio's front end submits them (rectangles in
percent of the image, top-left corner). Everything after that (collect, the ground truth, the
labeled set) is the path a person's work takes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from cvactive.store._db import load_dataset
from cvactive.store.annotate import ANNO_FIELD, ANNO_INFO, DONE
from cvactive.store.labelstudio_client import LabelStudio, credentials

#: ``labels_for(image path, width, height)`` -> ``[(label, [x0, y0, x1, y1] in pixels), ...]``, or ``None``
#: to leave the image's task unannotated.
LabelsFor = Callable[[str, int, int], "Sequence[tuple[str, Sequence[float]]] | None"]


def rectangle(xyxy: Sequence[float], label: str, width: int, height: int, from_name: str, rid: str) -> dict[str, Any]:
    """A box as Label Studio's front end submits it: ``rectanglelabels`` in percent, top-left corner."""
    x0, y0, x1, y1 = (float(v) for v in xyxy)
    value = {
        "x": x0 / width * 100, "y": y0 / height * 100, "width": (x1 - x0) / width * 100,
        "height": (y1 - y0) / height * 100, "rotation": 0, "rectanglelabels": [label],
    }  # fmt: skip
    return {
        "id": rid, "from_name": from_name, "to_name": "image", "type": "rectanglelabels", "origin": "manual",
        "original_width": width, "original_height": height, "image_rotation": 0, "value": value,
    }  # fmt: skip


def submit_known_labels(
    dataset: str,
    labels_for: LabelsFor,
    *,
    anno_key: str | None = None,
    url: str | None = None,
    api_key: str | None = None,
) -> dict[str, list[tuple[str, list[float]]]]:
    """Submit an annotation for every sent, unannotated task of the data set's annotation runs.

    Tasks that have a submitted annotation already, samples collected before, and images for which
    ``labels_for`` gives ``None`` are left alone.

    Returns:
        sample id -> the boxes submitted (label, pixel ``x0 y0 x1 y1``).

    Raises:
        ConfigError: no server configured. StoreError: the data set is missing or the server refuses.
    """
    url, api_key = credentials(url, api_key)
    client = LabelStudio(url, api_key)
    ds = load_dataset(dataset)
    if not ds.has_sample_field(ANNO_FIELD):
        return {}
    view = ds.exists(ANNO_FIELD)
    if len(view.exists("metadata", False)):
        view.compute_metadata()
    runs = dict(ds.info.get(ANNO_INFO) or {})
    tasks: dict[int, dict[int, dict[str, Any]]] = {}
    submitted: dict[str, list[tuple[str, list[float]]]] = {}
    for sid, path, meta, record in zip(*view.values(["id", "filepath", "metadata", ANNO_FIELD])):
        if not record or record.get("status") == DONE or (anno_key and record.get("key") != anno_key):
            continue
        project, task_id = int(record["project"]), int(record["task"])
        if project not in tasks:
            tasks[project] = client.tasks(project)
        task = tasks[project].get(task_id)
        if task is None or any(not a.get("was_cancelled") for a in task.get("annotations") or []):
            continue
        width, height = int(meta.width), int(meta.height)
        boxes = labels_for(str(path), width, height)
        if boxes is None:
            continue
        field = (runs.get(record["key"]) or {}).get("field", "predictions")
        result = [
            rectangle(xyxy, label, width, height, field, f"{task_id}-{i}") for i, (label, xyxy) in enumerate(boxes)
        ]
        client.request("POST", f"/api/tasks/{task_id}/annotations", body={"result": result, "was_cancelled": False})
        submitted[str(sid)] = [(str(label), [float(v) for v in xyxy]) for label, xyxy in boxes]
    return submitted


def matching_ground_truth(
    dataset: str,
    submitted: dict[str, list[tuple[str, list[float]]]],
    *,
    field: str = "ground_truth",
    atol: float = 0.01,
) -> tuple[int, int]:
    """How many of the submitted images' collected ground truth equals what was submitted, box for box (same
    classes, each corner within ``atol`` pixels, in any order); returns ``(matching images, submitted images)``."""
    import numpy as np

    ds = load_dataset(dataset)
    same = 0
    for sid, want in submitted.items():
        sample = ds[sid]
        w, h = sample.metadata.width, sample.metadata.height
        label = sample[field] if sample.has_field(field) else None
        got = []
        for d in label.detections if label is not None else []:
            x, y, bw, bh = d.bounding_box
            got.append((str(d.label), [x * w, y * h, (x + bw) * w, (y + bh) * h]))
        a, b = sorted(got), sorted((str(lab), [float(v) for v in xyxy]) for lab, xyxy in want)
        if len(a) == len(b) and all(p[0] == q[0] and np.allclose(p[1], q[1], atol=atol) for p, q in zip(a, b)):
            same += 1
    return same, len(submitted)
