#!/usr/bin/env python
"""Per-class AP three ways on one model and one image set: ``cvactive evaluate`` (FiftyOne's COCO
evaluation), pycocotools' COCOeval on the same predictions, and Ultralytics' own ``val`` (what the
active-learning loop reports, :func:`cvactive.train.validate_detector`).

    .venv/bin/python tools/compare_ap.py [--model DIR_OR_PT] [--out benchmarks/results/ap_reference.json]

Default: the COCO YOLOv8n OpenVINO model on the 128 COCO val2017 images of the shared assets, at
confidence 0.001, image size 640. Writes every class's three AP50 and AP50:95 and the summary of
their differences; refuses to write when no box was predicted.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from cvactive._config import load_yaml
    from cvactive.assets import OPENVINO_MODEL, asset, assets_dir

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="model (default: the OpenVINO YOLOv8n of the assets)")
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--conf", type=float, default=0.001)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ap_reference.json"))
    args = p.parse_args(argv)
    assets = assets_dir()
    model = args.model or str(asset(OPENVINO_MODEL) or "")
    if assets is None or not model:
        print("the shared assets (coco128, the OpenVINO model) are missing", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="compare-ap-"))
    root = assets / "coco128"
    data = load_yaml(root / "config.yaml")
    data.update(path=str(root), train="images/val2017", val="images/val2017")
    data_yaml = work / "data.yaml"
    data_yaml.write_text(json.dumps(data))
    names = {int(k): str(v) for k, v in data["names"].items()}

    from cvactive.detect.model import Detector
    from cvactive.detect.stage import score_source

    scores = work / "val.jsonl"
    t0 = time.perf_counter()
    summary = score_source(root / "images" / "val2017", Detector(model, imgsz=args.imgsz, conf=args.conf), scores,
                           progress=False)  # fmt: skip
    boxes = summary.boxes
    if not boxes:
        print("the model predicted no box: nothing to compare", file=sys.stderr)
        return 1
    fo_ap = fiftyone_ap(data_yaml, scores, work)
    coco_ap = pycocotools_ap(data_yaml, scores, names)
    from cvactive.train import validate_detector

    ul = validate_detector(model, data_yaml, names, imgsz=args.imgsz, batch=1, conf=args.conf, work=work)
    rows = {}
    for cls, row in fo_ap.items():
        if not row["gt"]:
            continue
        ref50, ref = coco_ap[cls]
        rows[cls] = {"gt": row["gt"], "pred": row["pred"], "fiftyone": [row["ap50"], row["ap"]],
                     "pycocotools": [ref50, ref], "ultralytics": [ul["ap50"][cls], ul["ap50_95"][cls]]}  # fmt: skip
    result = {
        "what": "per-class AP of one model on one image set: cvactive evaluate, pycocotools, Ultralytics val",
        "model": model, "images": summary.records, "boxes": boxes, "classes_with_gt": len(rows),
        "conf": args.conf, "imgsz": args.imgsz, "seconds": round(time.perf_counter() - t0, 1),
        "max_abs_diff_fiftyone_vs_pycocotools": _max_diff(rows, "fiftyone", "pycocotools"),
        "max_abs_diff_fiftyone_vs_ultralytics": _max_diff(rows, "fiftyone", "ultralytics"),
        "mean_diff_ultralytics_minus_fiftyone": _mean_diff(rows, "ultralytics", "fiftyone"),
        "map_fiftyone": [_mean(rows, "fiftyone", 0), _mean(rows, "fiftyone", 1)],
        "map_pycocotools": [_mean(rows, "pycocotools", 0), _mean(rows, "pycocotools", 1)],
        "map_ultralytics": [ul["mAP50"], ul["mAP50_95"]],
        "per_class": rows, "machine": platform.platform(),
    }  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from cvactive.outputs import portable_text

    out.write_text(portable_text(json.dumps(result, indent=2)))  # paths relative to the repository / assets
    for key in ("map_fiftyone", "map_pycocotools", "map_ultralytics"):
        print(f"{key:<18} AP50 {result[key][0]:.4f}  AP50:95 {result[key][1]:.4f}")
    print(json.dumps({k: result[k] for k in result if k.startswith(("max_", "mean_"))}, indent=2))
    print(f"-> {out}")
    return 0


def fiftyone_ap(data_yaml: Path, scores: Path, work: Path) -> dict[str, dict]:
    from cvactive.store import connect
    from cvactive.store.evaluate import evaluate_round
    from cvactive.store.labels import import_yolo_dataset
    from cvactive.store.push import push_file

    fo = connect()
    name = f"compare-ap-{uuid.uuid4().hex[:6]}"
    try:
        import_yolo_dataset(data_yaml, name, splits=("val",), progress=False)
        push_file(scores, name, progress=False, brain=False)
        result, _, _ = evaluate_round(name, "predictions", "ground_truth", 1, store="none", out_dir=work)
    finally:
        if fo.dataset_exists(name):
            fo.delete_dataset(name)
    return result.per_class


def pycocotools_ap(data_yaml: Path, scores: Path, names: dict[int, str]) -> dict[str, tuple]:
    from PIL import Image
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from cvactive.io import read_jsonl
    from cvactive.yolodata import load_yolo_dataset
    from tests.coco_reference import coco_ground_truth, coco_predictions, per_class_ap

    items = list(load_yolo_dataset(data_yaml, splits=("val",)).items("val"))
    sizes = {}
    for item in items:
        with Image.open(item.image) as im:
            sizes[str(Path(item.image).resolve())] = im.size
    ids: dict[str, int] = {}
    gt = COCO()
    gt.dataset = coco_ground_truth(items, names, sizes, ids)
    gt.createIndex()
    ev = COCOeval(gt, gt.loadRes(coco_predictions(read_jsonl(scores), ids)), "bbox")
    ev.evaluate()
    ev.accumulate()
    return {names[c - 1]: ap for c, ap in per_class_ap(ev.eval["precision"], list(ev.params.catIds)).items()}


def _max_diff(rows: dict, a: str, b: str) -> list[float]:
    return [round(max(abs(r[a][i] - r[b][i]) for r in rows.values()), 5) for i in (0, 1)]


def _mean_diff(rows: dict, a: str, b: str) -> list[float]:
    return [round(float(np.mean([r[a][i] - r[b][i] for r in rows.values()])), 5) for i in (0, 1)]


def _mean(rows: dict, a: str, i: int) -> float:
    return round(float(np.mean([r[a][i] for r in rows.values()])), 5)


if __name__ == "__main__":
    raise SystemExit(main())
