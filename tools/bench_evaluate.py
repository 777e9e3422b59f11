#!/usr/bin/env python
"""What storing an evaluation round under FiftyOne's ``eval_key`` costs, measured side by side.

Scores the 128 COCO val2017 images of the shared assets with the OpenVINO YOLOv8n at confidence
0.001 (the setting ``cvactive evaluate`` is meant for), imports and pushes them into one data set,
then times ``evaluate_round`` on the same ``--images`` samples in the same run:

* ``plain``: ``store=False``, per-class AP only (no per-label writes);
* ``results``: ``store="results"`` (the default), the round registered under ``eval_round_<n>`` with
  its results (what ``list_evaluations()``, ``load_evaluation_results()`` and the App's panel read);
* ``marks``: ``store="marks"``, FiftyOne's own ``evaluate_detections(eval_key=...)``, which also
  writes per-label TP/FP/FN marks sample by sample.

    .venv/bin/python tools/bench_evaluate.py [--images 32] [--repeats 3] [--out benchmarks/results/evaluate.json]

Writes nothing when the evaluated samples hold no predicted box.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from cvactive._config import load_yaml
    from cvactive.assets import OPENVINO_MODEL, asset, assets_dir

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3, help="rounds timed per route (alternating)")
    p.add_argument("--marks-repeats", type=int, default=1, help="of which with per-label marks (slow)")
    p.add_argument("--images", type=int, default=32, help="images evaluated (tagged 'bench'; default 32 of 128)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "evaluate.json"))
    args = p.parse_args(argv)
    assets, model = assets_dir(), asset(OPENVINO_MODEL)
    if assets is None or model is None:
        print("the shared assets (coco128, the OpenVINO model) are missing", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-evaluate-"))
    root = assets / "coco128"
    data = load_yaml(root / "config.yaml")
    data.update(path=str(root), train="images/val2017", val="images/val2017")
    (work / "data.yaml").write_text(json.dumps(data))

    from cvactive.detect.model import Detector
    from cvactive.detect.stage import score_source
    from cvactive.store import connect
    from cvactive.store.evaluate import evaluate_round
    from cvactive.store.labels import import_yolo_dataset
    from cvactive.store.push import push_file

    scores = work / "val.jsonl"
    scored = score_source(root / "images" / "val2017", Detector(str(model), conf=0.001), scores, progress=False)
    fo = connect()
    name = f"bench-evaluate-{uuid.uuid4().hex[:6]}"
    times: dict[str, list[float]] = {"plain": [], "results": [], "marks": []}
    try:
        import_yolo_dataset(work / "data.yaml", name, splits=("val",), progress=False)
        push_file(scores, name, progress=False, brain=False)
        ds = fo.load_dataset(name)
        ds.exists("predictions").sort_by("filepath").limit(args.images).tag_samples("bench")
        bench = ds.match_tags("bench")
        samples, boxes = len(bench), int(bench.count("predictions.detections"))
        if boxes == 0:
            print("no predicted box to evaluate: nothing measured", file=sys.stderr)
            return 1
        for r in range(args.repeats):
            for route, store in (("plain", "none"), ("results", "results"), ("marks", "marks")):
                if route == "marks" and r >= args.marks_repeats:
                    continue
                t0 = time.perf_counter()
                result, _, _ = evaluate_round(
                    name, "predictions", "ground_truth", r + 1, store=store, tag="bench", out_dir=work
                )
                times[route].append(time.perf_counter() - t0)
        ds.reload()
        stored_keys = ds.list_evaluations()
        with_marks = [k for k in stored_keys if ds.has_sample_field(f"{k}_tp")]
        marked = int(ds.sum(f"{with_marks[0]}_tp") + ds.sum(f"{with_marks[0]}_fp")) if with_marks else 0
    finally:
        if fo.dataset_exists(name):
            fo.delete_dataset(name)
    med = {k: statistics.median(v) for k, v in times.items()}
    plain = med["plain"]
    out = {
        "what": "evaluate_round per round: not stored, stored as results under an eval_key, stored with marks",
        "images": scored.records, "samples": samples, "boxes": boxes, "marked_predictions": marked,
        "evaluations_stored": stored_keys, "map": result.map,
        "seconds": {k: [round(v, 2) for v in vs] for k, vs in times.items()},
        "median_s": {k: round(v, 2) for k, v in med.items()},
        "over_plain": {k: round(v / plain, 2) for k, v in med.items()},
        "extra_s_per_round": {k: round(v - plain, 2) for k, v in med.items()},
        "extra_ms_per_image": {k: round(1000 * (v - plain) / samples, 1) for k, v in med.items()},
        "machine": platform.platform(),
    }  # fmt: skip
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    from cvactive.outputs import portable_text  # paths relative to the repository / assets

    path.write_text(portable_text(json.dumps(out, indent=2)))
    print(json.dumps({k: out[k] for k in ("samples", "boxes", "median_s", "over_plain", "extra_s_per_round")}))
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
