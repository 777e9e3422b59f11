#!/usr/bin/env python
"""Health-check benchmark: label analysis of 100,000 generated YOLO label files, against a naive baseline in one run.

A seeded YOLO data set is generated in a temporary folder: ``--files`` label files (0-7 boxes
each, 10 classes, 80/20 train/val) beside empty placeholder image files (label analysis never
opens images), with a few planted label errors. Then, interleaved round by round so machine
load hits both alike:

* ``cvactive``: ``load_yolo_dataset`` -> ``table_from_yolo`` -> ``analyse`` (labels only; image
  sizes given as 640x480, as FiftyOne metadata or a size cache would give them), timed per stage;
* ``naive``: the script people write first: walk the images, open each label file, parse and
  validate each line, and accumulate every statistic in Python dicts and lists box by box.

Both compute the same figures (instances and images per class per split, boxes-per-image
histogram, COCO size buckets, aspect-ratio quantiles, centre heat maps, label errors with
file and line); the script checks that their class counts and error counts agree.

A second part times the image-side maths on hashes: near-duplicate search with the chunked
XOR/popcount of ``hamming_pairs`` against a Python double loop on the same 2,000 hashes, then
``hamming_pairs`` alone on 20,000 hashes; and, when the real assets are present, pixel checks
(brightness, SHA-1, dHash) on the aquarium images cold and from the cache.

    .venv/bin/python tools/bench_health.py [--files 100000] [--rounds 3] [--quick]
        [--out benchmarks/results/health.json]
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

NUM_CLASSES = 10
W, H = 640, 480


def generate(root: Path, files: int, seed: int = 0) -> Path:
    """Write the synthetic data set; return its data.yaml."""
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    weights = 0.5 ** np.arange(NUM_CLASSES)
    weights /= weights.sum()
    for i in tqdm(range(files), desc="generating", mininterval=2):
        split = "val" if i % 5 == 0 else "train"
        (root / "images" / split / f"{i:06d}.jpg").touch()
        k = int(rng.integers(0, 8))
        cls = rng.choice(NUM_CLASSES, size=k, p=weights)
        wh = rng.uniform(0.01, 0.3, (k, 2))
        c = rng.uniform(wh / 2, 1 - wh / 2)
        lines = [f"{cls[j]} {c[j, 0]:.6f} {c[j, 1]:.6f} {wh[j, 0]:.6f} {wh[j, 1]:.6f}" for j in range(k)]
        if i % 10007 == 1:
            lines.append("0 1.4 0.5 0.1 0.1")
        if i % 10007 == 2:
            lines.append("99 0.5 0.5 0.1 0.1")
        if i % 10007 == 3:
            lines.append("3 0.5 0.5")
        (root / "labels" / split / f"{i:06d}.txt").write_text("".join(line + "\n" for line in lines))
    names = ", ".join(f"c{i}" for i in range(NUM_CLASSES))
    (root / "data.yaml").write_text(f"path: .\ntrain: images/train\nval: images/val\nnames: [{names}]\n")
    return root / "data.yaml"


# -- cvactive ---------------------------------------------------------------------------------
def run_cvactive(data: Path) -> dict:
    from cvactive.health import analyse, table_from_yolo
    from cvactive.yolodata import load_yolo_dataset

    t0 = time.perf_counter()
    ds = load_yolo_dataset(data)
    t1 = time.perf_counter()
    table = table_from_yolo(ds)
    table.width[:] = W
    table.height[:] = H
    t2 = time.perf_counter()
    report = analyse(table, image_sizes=False, image_checks=False, progress=False)
    t3 = time.perf_counter()
    f = report.figures
    return {
        "load_s": t1 - t0,
        "table_s": t2 - t1,
        "stats_s": t3 - t2,
        "total_s": t3 - t0,
        "instances": [f["overall"]["classes"][f"c{k}"]["instances"] for k in range(NUM_CLASSES)],
        "errors": f["label_errors"]["total"],
        "boxes": f["overall"]["boxes"],
        "_parsed": [(it.split, it.classes.tolist(), it.boxes.tolist()) for it in ds.items()],
    }


# -- naive baseline ---------------------------------------------------------------------------------
def naive_parse(data: Path) -> tuple[list, list]:
    """Walk images, open each label file, parse and validate line by line (Python)."""
    root = data.parent
    parsed, errors = [], []
    for split in ("train", "val"):
        img_dir = root / "images" / split
        lab_dir = root / "labels" / split
        used = set()
        for name in sorted(os.listdir(img_dir)):
            stem = os.path.splitext(name)[0]
            lab = os.path.join(lab_dir, stem + ".txt")
            if not os.path.exists(lab):
                errors.append(("image_without_label", os.path.join(img_dir, name), None))
                parsed.append((split, [], []))
                continue
            used.add(stem + ".txt")
            classes, boxes = [], []
            with open(lab) as fh:
                for lineno, raw in enumerate(fh, 1):
                    parts = raw.split()
                    if not parts:
                        continue
                    if len(parts) != 5:
                        errors.append(("malformed", lab, lineno))
                        continue
                    try:
                        c = float(parts[0])
                        cx, cy, w, h = (float(v) for v in parts[1:])
                    except ValueError:
                        errors.append(("malformed", lab, lineno))
                        continue
                    if not c.is_integer() or not 0 <= c < NUM_CLASSES:
                        errors.append(("unknown_class", lab, lineno))
                        continue
                    if w <= 0 or h <= 0:
                        errors.append(("non_positive_size", lab, lineno))
                        continue
                    if min(cx, cy, w, h) < 0 or max(cx, cy, w, h) > 1 or cx - w / 2 < -1e-6 or cx + w / 2 > 1 + 1e-6:
                        errors.append(("out_of_range", lab, lineno))
                        continue
                    if cy - h / 2 < -1e-6 or cy + h / 2 > 1 + 1e-6:
                        errors.append(("out_of_range", lab, lineno))
                        continue
                    classes.append(int(c))
                    boxes.append([cx, cy, w, h])
            parsed.append((split, classes, boxes))
        for name in sorted(os.listdir(lab_dir)):
            if name not in used:
                errors.append(("label_without_image", os.path.join(lab_dir, name), None))
    return parsed, errors


def naive_stats(parsed: list, grid: int = 16) -> dict:
    """Every figure, box by box in Python: per split and overall."""

    def one(items: list) -> dict:
        instances = dict.fromkeys(range(NUM_CLASSES), 0)
        images = {k: set() for k in range(NUM_CLASSES)}
        per_image = {}
        buckets = {k: [0, 0, 0] for k in range(NUM_CLASSES)}
        aspects: dict[int, list[float]] = {k: [] for k in range(NUM_CLASSES)}
        sides: dict[int, list[float]] = {k: [] for k in range(NUM_CLASSES)}
        heat = {k: [[0] * grid for _ in range(grid)] for k in range(NUM_CLASSES)}
        for i, (_split, classes, boxes) in enumerate(items):
            n = 0
            for c, (cx, cy, w, h) in zip(classes, boxes):
                n += 1
                instances[c] += 1
                images[c].add(i)
                pw, ph = w * W, h * H
                area = pw * ph
                buckets[c][0 if area < 32**2 else 1 if area < 96**2 else 2] += 1
                aspects[c].append(pw / ph)
                sides[c].append(area**0.5)
                heat[c][min(int(cy * grid), grid - 1)][min(int(cx * grid), grid - 1)] += 1
            per_image[n] = per_image.get(n, 0) + 1
        quant = {}
        for c in range(NUM_CLASSES):
            for values in (aspects[c], sides[c]):
                if len(values) > 1:
                    q = statistics.quantiles(values, n=20, method="inclusive")
                    quant.setdefault(c, []).append((q[0], statistics.median(values), q[-1]))
        return {
            "instances": instances,
            "images": {k: len(v) for k, v in images.items()},
            "per_image": per_image,
            "buckets": buckets,
            "quantiles": quant,
            "heat": heat,
        }

    out = {"overall": one(parsed)}
    for split in ("train", "val"):
        out[split] = one([p for p in parsed if p[0] == split])
    return out


def run_naive(data: Path) -> dict:
    t0 = time.perf_counter()
    parsed, errors = naive_parse(data)
    t1 = time.perf_counter()
    figures = naive_stats(parsed)
    t2 = time.perf_counter()
    return {
        "load_s": t1 - t0,
        "stats_s": t2 - t1,
        "total_s": t2 - t0,
        "instances": [figures["overall"]["instances"][k] for k in range(NUM_CLASSES)],
        "errors": len(errors),
        "boxes": sum(figures["overall"]["instances"].values()),
    }


def time_vectorised_stats_only(parsed: list) -> float:
    """cvactive's statistics alone on the same in-memory boxes as naive_stats (no file reading)."""
    from cvactive.health import analyse
    from cvactive.health.table import _table

    splits = ["train", "val"]
    rows = [(str(i), str(i), splits.index(s), float(W), float(H)) for i, (s, _, _) in enumerate(parsed)]
    parts = [
        (np.asarray(b, np.float32).reshape(-1, 4), np.asarray(c, np.int64), np.arange(1, len(c) + 1))
        for _, c, b in parsed
    ]
    names = {k: f"c{k}" for k in range(NUM_CLASSES)}
    t0 = time.perf_counter()
    table = _table(names, splits, rows, parts, [], "yolo", "bench")
    analyse(table, image_sizes=False, image_checks=False, progress=False)
    return time.perf_counter() - t0


# -- image-side maths -------------------------------------------------------------------------------
def bench_hashes(rng: np.random.Generator) -> dict:
    from cvactive.health.images import hamming_pairs

    small = rng.integers(-(2**63), 2**63 - 1, 2000, dtype=np.int64)
    small[1::100] = small[::100] ^ 1  # some near-duplicates
    hamming_pairs(small[:100], 4)  # warm-up (first-call overhead of the numpy ufuncs)
    t0 = time.perf_counter()
    fast = hamming_pairs(small, 4)
    t1 = time.perf_counter()
    u = [int(x) & (2**64 - 1) for x in small]
    naive = []
    for i in range(len(u)):
        for j in range(i + 1, len(u)):
            if bin(u[i] ^ u[j]).count("1") <= 4:
                naive.append((i, j))
    t2 = time.perf_counter()
    assert len(naive) == len(fast), (len(naive), len(fast))
    big = rng.integers(-(2**63), 2**63 - 1, 20000, dtype=np.int64)
    t3 = time.perf_counter()
    hamming_pairs(big, 4)
    t4 = time.perf_counter()
    return {
        "hashes": 2000,
        "vectorised_s": round(t1 - t0, 4),
        "python_loop_s": round(t2 - t1, 4),
        "speedup": round((t2 - t1) / (t1 - t0), 1),
        "pairs_found": len(fast),
        "vectorised_20k_hashes_s": round(t4 - t3, 3),
    }


def bench_pixels(tmp: Path) -> dict | None:
    from cvactive.assets import asset
    from cvactive.health import load_table
    from cvactive.health.images import read_images

    aquarium = asset("aquarium")
    if aquarium is None:
        return None
    table = load_table(aquarium)
    want = np.ones(table.num_images, bool)
    cache = tmp / "image-cache.json"
    t0 = time.perf_counter()
    read_images(table.image_paths, pixels=want, cache=cache, progress=False)
    t1 = time.perf_counter()
    warm = read_images(table.image_paths, pixels=want, cache=cache, progress=False)
    t2 = time.perf_counter()
    sizes_only = read_images(table.image_paths, progress=False)
    t3 = time.perf_counter()
    return {
        "images": table.num_images,
        "pixel_checks_cold_s": round(t1 - t0, 3),
        "pixel_checks_ms_per_image": round(1000 * (t1 - t0) / table.num_images, 2),
        "from_cache_s": round(t2 - t1, 3),
        "cache_hits": warm.cache_hits,
        "headers_only_s": round(t3 - t2, 3),
        "headers_checked": int(np.isfinite(sizes_only.width).sum()),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=100_000, help="label files to generate (default 100000)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians reported (default 3)")
    ap.add_argument("--quick", action="store_true", help="10,000 files, 1 round")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "health.json"))
    args = ap.parse_args()
    files, rounds = (10_000, 1) if args.quick else (args.files, args.rounds)
    with tempfile.TemporaryDirectory(prefix="bench-health-") as tmpdir:
        tmp = Path(tmpdir)
        t = time.perf_counter()
        data = generate(tmp / "data", files)
        gen_s = time.perf_counter() - t
        cv_runs, naive_runs = [], []
        for r in range(rounds):
            cv_runs.append(run_cvactive(data))
            naive_runs.append(run_naive(data))
            print(
                f"round {r + 1}: cvactive {cv_runs[-1]['total_s']:.2f} s "
                f"(load {cv_runs[-1]['load_s']:.2f}, table {cv_runs[-1]['table_s']:.2f}, "
                f"stats {cv_runs[-1]['stats_s']:.2f}); naive {naive_runs[-1]['total_s']:.2f} s "
                f"(parse {naive_runs[-1]['load_s']:.2f}, stats {naive_runs[-1]['stats_s']:.2f})"
            )
        cv, nv = cv_runs[-1], naive_runs[-1]
        assert cv["instances"] == nv["instances"], (cv["instances"], nv["instances"])
        assert cv["errors"] == nv["errors"] and cv["boxes"] == nv["boxes"]
        parsed = cv.pop("_parsed")
        for run in cv_runs:
            run.pop("_parsed", None)
        # statistics alone, same in-memory boxes
        t = time.perf_counter()
        naive_stats(parsed)
        naive_stats_s = time.perf_counter() - t
        vec_stats_s = time_vectorised_stats_only(parsed)
        hashes = bench_hashes(np.random.default_rng(0))
        pixels = bench_pixels(tmp)

    def med(runs: list, key: str) -> float:
        return round(statistics.median(r[key] for r in runs), 3)

    result = {
        "benchmark": "health label analysis",
        "files": files,
        "boxes": cv["boxes"],
        "label_errors": cv["errors"],
        "rounds": rounds,
        "generate_s": round(gen_s, 2),
        "cvactive": {k: med(cv_runs, k) for k in ("load_s", "table_s", "stats_s", "total_s")},
        "naive": {k: med(naive_runs, k) for k in ("load_s", "stats_s", "total_s")},
        "ratio_total_naive_over_cvactive": round(med(naive_runs, "total_s") / med(cv_runs, "total_s"), 2),
        "stats_only": {
            "naive_s": round(naive_stats_s, 3),
            "vectorised_s": round(vec_stats_s, 3),
            "speedup": round(naive_stats_s / vec_stats_s, 1),
        },
        "near_duplicates": hashes,
        "pixel_checks_aquarium": pixels,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from cvactive.outputs import portable_text  # paths relative to the repository / assets

    out.write_text(portable_text(json.dumps(result, indent=1)) + "\n")
    print(json.dumps(result, indent=1))
    print(
        f"\n{files} label files, {cv['boxes']} boxes: cvactive {result['cvactive']['total_s']} s, naive "
        f"{result['naive']['total_s']} s (naive/cvactive {result['ratio_total_naive_over_cvactive']}x); statistics "
        f"alone {result['stats_only']['speedup']}x faster; near-duplicate search {hashes['speedup']}x faster"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
