#!/usr/bin/env python
"""Synthesis benchmark: synthetic images per second for each recipe on 1024-px images.

A seeded porch data set is rendered at 1024x768 into a temporary folder. For every recipe, in
one run and interleaved round by round so machine load hits all alike:

* ``transform``: the recipe alone on decoded RGB images in memory (albumentations pipeline with
  boxes, or copy-paste of a patch), images per second;
* ``end_to_end``: ``synthesize(..., target="conditions=<recipe>")``: read the parent, transform,
  JPEG-encode, write image, label and provenance, images per second (profiling excluded);
* ``baseline``: the I/O floor every synthetic image pays, measured on the same images in the
  same rounds: JPEG decode + encode (quality 95) of the parent.

Ratios printed: end-to-end and transform throughput over the baseline's (1.0 = as fast as bare
decode + encode).

    .venv/bin/python tools/bench_synthesis.py [--images 24] [--n 48] [--rounds 3] [--quick]
        [--out benchmarks/results/synthesis.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24, help="1024-px source images rendered (default 24)")
    parser.add_argument("--n", type=int, default=48, help="synthetic images per recipe per round (default 48)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (median reported, default 3)")
    parser.add_argument("--quick", action="store_true", help="8 images, n=8, 1 round")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "synthesis.json"))
    args = parser.parse_args()
    if args.quick:
        args.images, args.n, args.rounds = 8, 8, 1

    import cv2

    from cvactive.porch import PorchRecipe, write_dataset
    from cvactive.synthesis import _albu, load_recipes, synthesize
    from cvactive.synthesis.copypaste import Patch, paste
    from cvactive.yolodata import load_yolo_dataset

    recipes = load_recipes()
    tmp = Path(tempfile.mkdtemp(prefix="bench-synthesis-"))
    porch = PorchRecipe.load(width=1024, height=768, train=args.images, val=4, seed=7)
    t0 = time.perf_counter()
    data_yaml = write_dataset(tmp / "porch1024", porch, video=False)
    render_s = time.perf_counter() - t0
    ds = load_yolo_dataset(data_yaml)
    items = [it for it in ds.items("train") if len(it.classes)]
    files = [it.image.read_bytes() for it in items]
    decoded = [
        cv2.cvtColor(cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for b in files
    ]
    h, w = decoded[0].shape[:2]
    print(f"{len(items)} labeled 1024x768 porch images rendered in {render_s:.1f}s; {len(recipes)} recipes")

    composes = {
        name: _albu.build_compose(
            r.pipeline, min_visibility=r.bbox.min_visibility, min_area=r.bbox.min_area, clip=r.bbox.clip, seed=0
        )
        for name, r in recipes.items()
        if r.kind == "transform"
    }
    cp = recipes["copy_paste"]
    patch_src = [(k, b) for k, it in enumerate(items) for b in range(len(it.classes))]

    def transform_rate(name: str, k: int) -> float:
        t = time.perf_counter()
        for j in range(k):
            i = j % len(items)
            img = decoded[i]
            if name == "copy_paste":
                rng = np.random.default_rng(j)
                src_i, b = patch_src[int(rng.integers(len(patch_src)))]
                x1, y1, x2, y2 = (int(v) for v in np.rint(items[src_i].xyxy(w, h)[b]))
                patch = Patch(
                    decoded[src_i][y1:y2, x1:x2], int(items[src_i].classes[b]), ((x2 - x1) / w, (y2 - y1) / h)
                )
                assert cp.copy_paste is not None
                paste(img, items[i].xyxy(w, h), items[i].classes, [patch] * 2, rng, cp.copy_paste)
            else:
                _albu.apply(composes[name], img, items[i].xyxy(w, h), items[i].classes, seed=j)
        return k / (time.perf_counter() - t)

    def baseline_rate(k: int) -> float:
        t = time.perf_counter()
        for j in range(k):
            img = cv2.imdecode(np.frombuffer(files[j % len(files)], np.uint8), cv2.IMREAD_COLOR)
            cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        return k / (time.perf_counter() - t)

    def e2e_rate(name: str, k: int, r: int) -> float:
        out = tmp / f"out-{name}-{r}"
        t = time.perf_counter()
        s = synthesize(data_yaml, k=k, out=out, target=f"conditions={name}", seed=r, progress=False)
        elapsed = time.perf_counter() - t
        return s.written / elapsed

    # Profiling (reading every source image once) is part of each end-to-end call; time it alone to subtract.
    from cvactive.synthesis.core import image_luma

    rows: dict[str, dict[str, list[float]]] = {name: {"transform": [], "end_to_end": []} for name in recipes}
    base: list[float] = []
    profile: list[float] = []
    for r in range(args.rounds):
        t = time.perf_counter()
        for it in ds.items("train"):
            image_luma(it.image)
        profile.append(time.perf_counter() - t)
        base.append(baseline_rate(args.n))
        for name in recipes:
            rows[name]["transform"].append(transform_rate(name, args.n))
            rows[name]["end_to_end"].append(e2e_rate(name, args.n, r))
        print(f"round {r + 1}/{args.rounds} done")
    base_rate = statistics.median(base)
    prof_s = statistics.median(profile)
    results: dict[str, dict[str, float]] = {}
    print(f"\nbaseline (JPEG decode + encode, 1024x768): {base_rate:7.1f} img/s")
    print(f"{'recipe':<12} {'transform':>10} {'end-to-end':>11} {'e2e excl. profiling':>20}  ratios vs baseline")
    for name in recipes:
        tr = statistics.median(rows[name]["transform"])
        e2e = statistics.median(rows[name]["end_to_end"])
        e2e_x = args.n / max(1e-9, args.n / e2e - prof_s)
        results[name] = {
            "transform_img_s": round(tr, 1),
            "end_to_end_img_s": round(e2e, 1),
            "end_to_end_excl_profiling_img_s": round(e2e_x, 1),
            "transform_over_baseline": round(tr / base_rate, 2),
            "end_to_end_excl_profiling_over_baseline": round(e2e_x / base_rate, 2),
            "geometric": bool(recipes[name].geometric),
        }
        print(
            f"{name:<12} {tr:8.1f}/s {e2e:9.1f}/s {e2e_x:18.1f}/s  "
            f"transform x{tr / base_rate:.2f}, end-to-end x{e2e_x / base_rate:.2f}"
        )
    report = {
        "benchmark": "synthesis images per second per recipe",
        "image_size": [w, h],
        "source_images": len(items),
        "n_per_recipe": args.n,
        "rounds": args.rounds,
        "baseline": "JPEG decode + encode (quality 95) of the same 1024x768 images",
        "baseline_img_s": round(base_rate, 1),
        "profiling_s": round(prof_s, 3),
        "recipes": results,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "albumentations": _albu.albumentations().__version__,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from cvactive.outputs import portable_text  # paths relative to the repository / assets

    out.write_text(portable_text(json.dumps(report, indent=1)) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
