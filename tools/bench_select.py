#!/usr/bin/env python
"""Selection benchmark: pool-scale timings, and vectorised kernels against naive loops, in one run.

Part 1 (scale): a pool of ``--n`` items (default 100,000) with ``--dim``-d embeddings (256),
select ``--k`` (1,000) with ``coreset``, ``cluster``, ``hybrid`` and ``badge`` (plus ``coreset``
measured against a labeled set), next to ``random`` and ``uncertainty`` as the baseline measured
in the same run; the other strategies are timed too, for reference. Reported per strategy:
seconds, the ratio to the 60 s goal, and the peak memory numpy allocated during the call
(tracemalloc), beside the pool's own size and the process's peak RSS.

Part 2 (naive): on ``--naive-n`` items (5,000) the same four algorithms written the naive way
(:mod:`cvactive.selection.naive`: Python loops over items and pairs) against the vectorised
strategies, same seed: seconds of each, the speed-up, and whether both picked the same items.

    .venv/bin/python tools/bench_select.py [--quick] [--blas-threads N] [--out benchmarks/results/select.json]

``--blas-threads N`` sets ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS`` before numpy loads (on a
machine whose other cores are busy, waking BLAS worker threads for many small products costs
more than it saves; the JSON records the setting and the load average).

Part 3 (sklearn): on the same ``--n`` pool, the k-means that ``cluster`` runs (k = ``--k``
clusters) against scikit-learn's ``KMeans`` (k-means++ init, one init, the same 10 iterations) and
``MiniBatchKMeans`` (batch 4096), and faiss' ``Kmeans`` where faiss is installed: seconds and the
k-means objective (inertia over the whole pool, computed by one function for every method).

Part 4 (million): a ``--million-n`` x ``--dim`` float32 pool (1,000,000 x 256) written in the
sharded layout of ``cvactive score --engine ray`` (Parquet table, ``.npy`` embedding shards),
opened as memmaps (:func:`cvactive.selection.columnar.open_pool`); each strategy picks
``--million-k`` in a fresh process, so its peak RSS (memmapped pages included) is its own.
Part 5 (million_kmeans): the k-means comparison of part 3 on that pool (each method in its own
process). Parts 4 and 5 take minutes each: run them as their own invocations
(``--parts million``, ``--parts million_kmeans``); each run updates only its parts of the JSON.

    .venv/bin/python tools/bench_select.py [--parts scale,naive,sklearn] [--quick] [--out ...]

Goals (issues 4, 13, 17): each of coreset, cluster, hybrid, badge within 60 s and under 4 GB on
2 CPU cores, at 100,000 and at 1,000,000 items; at least 50x over the naive implementation, with
the same picks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

if "--blas-threads" in sys.argv[:-1]:  # must be set before numpy is imported
    _threads = sys.argv[sys.argv.index("--blas-threads") + 1]
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = _threads

import numpy as np  # noqa: E402

from cvactive.selection import naive, select  # noqa: E402
from cvactive.selection.synthetic import synthetic_pool  # noqa: E402

SCALE_STRATEGIES = ["random", "uncertainty", "coreset", "cluster", "hybrid", "badge"]
#: the other strategies, timed at the same scale for reference (no goal in the issue)
OTHER_STRATEGIES = ["class_balanced", "representative", "stratified", "outlier"]
NAIVE_STRATEGIES = ["coreset", "cluster", "hybrid", "badge"]
GOAL_SECONDS = 60.0
GOAL_BYTES = 4 * 1024**3
GOAL_SPEEDUP = 50.0


def measure(fn: Callable[[], Any]) -> tuple[Any, float, int]:
    """Result, seconds and peak bytes traced while ``fn`` runs."""
    tracemalloc.start()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, seconds, peak


def scale_part(n: int, dim: int, k: int, labeled: int, seed: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    pool = synthetic_pool(n, dim, seed)
    build = time.perf_counter() - t0
    assert pool.embeddings is not None
    print(f"pool: {n} items x {dim}-d ({pool.embeddings.nbytes / 1e6:.0f} MB of embeddings), k={k}")
    rows: dict[str, Any] = {}
    runs: list[tuple[str, str, dict[str, Any]]] = [(s, s, {}) for s in SCALE_STRATEGIES + OTHER_STRATEGIES]
    if labeled:
        runs.append((f"coreset+labeled{labeled}", "coreset", {"labeled": np.arange(labeled)}))
    for label, name, kwargs in runs:
        (idx, _util), seconds, peak = measure(
            lambda name=name, kwargs=kwargs: select(pool, k, name, rng=seed, **kwargs)
        )
        assert len(set(idx.tolist())) == k
        rows[label] = {
            "seconds": round(seconds, 3),
            "ratio_to_goal": round(seconds / GOAL_SECONDS, 4),
            "peak_alloc_mb": round(peak / 1e6, 1),
            "within_goal": seconds <= GOAL_SECONDS and peak <= GOAL_BYTES,
        }
        print(
            f"  {label:<22} {seconds:8.2f} s  ({seconds / GOAL_SECONDS:.1%} of 60 s)  peak alloc {peak / 1e6:7.1f} MB"
        )
    base = rows["random"]["seconds"]
    for row in rows.values():
        row["ratio_to_random"] = round(row["seconds"] / base, 1) if base > 0 else None
    return {
        "n": n,
        "dim": dim,
        "k": k,
        "labeled": labeled,
        "pool_build_seconds": round(build, 3),
        "embeddings_mb": round(pool.embeddings.nbytes / 1e6, 1),
        "strategies": rows,
    }


def naive_part(n: int, dim: int, k: int, seed: int, repeats: int) -> dict[str, Any]:
    pool = synthetic_pool(n, dim, seed, clusters=max(10, n // 100))
    x, s = pool.embeddings, pool.fields["entropy_max"]
    assert x is not None
    refs: dict[str, Callable[[np.random.Generator], list[int]]] = {
        "coreset": lambda g: naive.coreset(x, k, g),
        "cluster": lambda g: naive.cluster(x, k, g),
        "hybrid": lambda g: naive.hybrid(x, s, k, g),
        "badge": lambda g: naive.badge(x, s, k, g),
    }
    print(f"naive vs vectorised: {n} items x {dim}-d, k={k}")
    rows: dict[str, Any] = {}
    for name in NAIVE_STRATEGIES:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            idx = select(pool, k, name, rng=seed)[0]
            times.append(time.perf_counter() - start)
        fast = min(times)
        start = time.perf_counter()
        ref = refs[name](np.random.default_rng(seed))
        slow = time.perf_counter() - start
        same = idx.tolist() == ref
        overlap = len(set(idx.tolist()) & set(ref))
        rows[name] = {
            "vectorised_seconds": round(fast, 4),
            "naive_seconds": round(slow, 3),
            "speedup": round(slow / fast, 1),
            "same_picks": same,
            "overlap": overlap,
            "within_goal": same and slow / fast >= GOAL_SPEEDUP,
        }
        print(
            f"  {name:<8} vectorised {fast:7.4f} s  naive {slow:7.2f} s  speed-up {slow / fast:6.1f}x  "
            f"same picks: {same} ({overlap}/{k})"
        )
    return {"n": n, "dim": dim, "k": k, "vectorised_repeats": repeats, "strategies": rows}


def kmeans_methods(n_clusters: int, seed: int) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Method name -> ``fit(x) -> centres``: the k-means of ``cluster`` and the library baselines."""
    from cvactive.selection.kernels import kmeans

    def ours(x: np.ndarray) -> np.ndarray:
        return kmeans(x, n_clusters, np.random.default_rng(seed), max_iter=10)[1]

    def sk_kmeans(x: np.ndarray) -> np.ndarray:
        from sklearn.cluster import KMeans

        return KMeans(n_clusters, n_init=1, max_iter=10, random_state=seed).fit(x).cluster_centers_

    def sk_minibatch(x: np.ndarray) -> np.ndarray:
        from sklearn.cluster import MiniBatchKMeans

        return MiniBatchKMeans(n_clusters, batch_size=4096, n_init=1, random_state=seed).fit(x).cluster_centers_

    methods = {"cvactive_kmeans": ours, "sklearn_KMeans": sk_kmeans, "sklearn_MiniBatchKMeans": sk_minibatch}
    try:
        import faiss
    except ImportError:
        return methods

    def faiss_kmeans(x: np.ndarray) -> np.ndarray:
        km = faiss.Kmeans(x.shape[1], n_clusters, niter=10, seed=seed, verbose=False)
        km.train(np.ascontiguousarray(x, dtype=np.float32))
        return np.asarray(km.centroids)

    methods["faiss_Kmeans"] = faiss_kmeans
    return methods


def kmeans_row(name: str, fit: Callable[[np.ndarray], np.ndarray], x: np.ndarray, n_clusters: int) -> dict[str, Any]:
    from cvactive.selection.kernels import kmeans_objective

    start = time.perf_counter()
    centres = np.asarray(fit(x), dtype=np.float32)
    seconds = time.perf_counter() - start
    if centres.shape != (n_clusters, x.shape[1]):
        raise SystemExit(f"refusing to write: {name} returned centres of shape {centres.shape}")
    return {"seconds": round(seconds, 2), "objective": kmeans_objective(x, centres), "clusters": n_clusters}


def compare_kmeans(rows: dict[str, Any]) -> dict[str, Any]:
    """Ratios to cvactive's k-means: time and objective (objective < 1: ours fits better)."""
    ours = rows["cvactive_kmeans"]
    for row in rows.values():
        row["seconds_ratio_to_cvactive"] = round(row["seconds"] / ours["seconds"], 3)
        row["objective_ratio_to_cvactive"] = round(row["objective"] / ours["objective"], 4)
    return rows


def sklearn_part(n: int, dim: int, n_clusters: int, seed: int, skip: set[str]) -> dict[str, Any]:
    pool = synthetic_pool(n, dim, seed)
    x = pool.embeddings
    assert x is not None
    print(f"k-means against the libraries: {n} x {dim}, {n_clusters} clusters")
    rows = {}
    for name, fit in kmeans_methods(n_clusters, seed).items():
        if name in skip:
            continue
        rows[name] = kmeans_row(name, fit, x, n_clusters)
        print(f"  {name:<24} {rows[name]['seconds']:8.2f} s  objective {rows[name]['objective']:.6g}")
    return {"n": n, "dim": dim, "methods": compare_kmeans(rows)}


# -- the 1,000,000 pool: written sharded, each measurement in its own process ------------------
def write_million(folder: Path, n: int, dim: int, seed: int) -> Path:
    """A clustered ``n x dim`` float32 pool in the sharded layout, generated block by block."""
    from cvactive.selection.columnar import consolidate, write_pool

    stamp = folder / "bench-stamp.json"
    want = {"n": n, "dim": dim, "seed": seed}
    if stamp.is_file() and {k: v for k, v in json.loads(stamp.read_text()).items() if k in want} == want:
        return folder
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(100, dim))
    raw = np.lib.format.open_memmap(folder / "raw.npy", "w+", np.float32, (n, dim))
    for s in range(0, n, 1 << 16):
        e = min(n, s + (1 << 16))
        raw[s:e] = centres[rng.integers(100, size=e - s)] + rng.normal(size=(e - s, dim))
    class_conf = (rng.random((n, 10)) ** 4).astype(np.float32)
    fields = {"entropy_max": rng.random(n), "max_confidence": class_conf.max(axis=1).astype(np.float64)}
    write_pool(folder / "pool", embeddings=raw, fields=fields, class_conf=class_conf, shard_size=1 << 16)
    del raw
    (folder / "raw.npy").unlink()
    consolidate(folder / "pool")
    stamp.write_text(json.dumps({**want, "build_seconds": round(time.perf_counter() - started, 1)}))
    return folder


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """One measurement in this (fresh) process: open the sharded pool, run one strategy or k-means."""
    from cvactive.selection.columnar import open_pool, stream_topk

    tracemalloc.start()
    t0 = time.perf_counter()
    pool = open_pool(spec["pool"])
    opened = time.perf_counter() - t0
    out: dict[str, Any] = {"open_seconds": round(opened, 2)}
    if spec["task"] == "select":
        name, k = spec["name"], spec["k"]
        start = time.perf_counter()
        if name == "uncertainty_stream":
            idx, _ = stream_topk(spec["pool"], k, rng=spec["seed"])
        else:
            idx, _ = select(pool, k, name, rng=spec["seed"])
        out["seconds"] = round(time.perf_counter() - start, 2)
        out["picks"] = len(set(idx.tolist()))
        if out["picks"] != k:
            raise SystemExit(f"{name} picked {out['picks']} distinct items, not {k}")
    else:
        x = pool.embeddings
        assert x is not None
        fit = kmeans_methods(spec["k"], spec["seed"])[spec["name"]]
        out.update(kmeans_row(spec["name"], fit, x, spec["k"]))
    _, peak = tracemalloc.get_traced_memory()
    out["peak_alloc_mb"] = round(peak / 1e6, 1)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", json.dumps(spec)]
    if os.environ.get("OPENBLAS_NUM_THREADS"):
        cmd[2:2] = ["--blas-threads", os.environ["OPENBLAS_NUM_THREADS"]]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"measurement {spec} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def million_part(folder: Path, n: int, dim: int, k: int, seed: int, kmeans_only: bool, skip: set[str]) -> dict:
    write_million(folder, n, dim, seed)
    build = float(json.loads((folder / "bench-stamp.json").read_text())["build_seconds"])
    pool = str(folder / "pool")
    print(f"sharded pool: {n} x {dim} float32 in {folder} ({build:.1f} s to write and consolidate)")
    rows: dict[str, Any] = {}
    if kmeans_only:
        for name in kmeans_methods(k, seed):
            if name not in skip:
                rows[name] = run_child({"task": "kmeans", "pool": pool, "name": name, "k": k, "seed": seed})
                print(f"  {name:<24} {rows[name]}")
        return {"n": n, "dim": dim, "build_seconds": round(build, 1), "methods": compare_kmeans(rows)}
    for name in ["random", "uncertainty", "uncertainty_stream", "coreset", "cluster", "hybrid", "badge"]:
        row = run_child({"task": "select", "pool": pool, "name": name, "k": k, "seed": seed})
        row["within_goal"] = row["seconds"] <= GOAL_SECONDS and row["peak_rss_mb"] * 1024**2 <= GOAL_BYTES
        rows[name] = row
        print(f"  {name:<20} {row}")
    return {
        "n": n,
        "dim": dim,
        "k": k,
        "dtype": "float32",
        "layout": "sharded (Parquet table + .npy embedding shards), consolidated and memmapped",
        "build_seconds": round(build, 1),
        "embeddings_mb": round(n * dim * 4 / 1e6, 1),
        "strategies": rows,
    }


PARTS = ("scale", "naive", "sklearn", "million", "million_kmeans")


def main() -> int:
    if "--child" in sys.argv:
        print(json.dumps(child(json.loads(sys.argv[sys.argv.index("--child") + 1]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="scale,naive,sklearn", help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--n", type=int, default=100_000, help="pool size of the scale and sklearn parts (100000)")
    parser.add_argument("--dim", type=int, default=256, help="embedding length (256)")
    parser.add_argument("--k", type=int, default=1000, help="batch size / clusters (1000)")
    parser.add_argument("--labeled", type=int, default=2000, help="labeled items for the coreset+labeled row (2000)")
    parser.add_argument("--naive-n", type=int, default=5000, help="pool size of the naive comparison (5000)")
    parser.add_argument("--naive-k", type=int, default=100, help="batch size of the naive comparison (100)")
    parser.add_argument("--million-n", type=int, default=1_000_000, help="pool size of the million parts")
    parser.add_argument("--pool-dir", help="folder for the million pool (kept and reused; default: a temp folder)")
    parser.add_argument("--skip", default="", help="k-means methods to leave out, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="vectorised runs per strategy, best kept (3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--blas-threads", type=int, help="BLAS threads (default: the library's choice)")
    parser.add_argument("--quick", action="store_true", help="small sizes (20000 pool, k=200, naive 1000, 50000)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "select.json"))
    args = parser.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {unknown}; valid: {', '.join(PARTS)}")
    if args.quick:
        args.n, args.k, args.labeled, args.naive_n, args.naive_k = 20_000, 200, 500, 1000, 30
        args.million_n = 50_000
    skip = {s for s in args.skip.split(",") if s}
    out = Path(args.out)
    result = json.loads(out.read_text()) if out.is_file() else {}
    result.update(benchmark="select", goals={"seconds": GOAL_SECONDS, "bytes": GOAL_BYTES, "speedup": GOAL_SPEEDUP})
    for part in parts:
        started = time.perf_counter()
        load_before = os.getloadavg()
        if part == "scale":
            data = scale_part(args.n, args.dim, args.k, args.labeled, args.seed)
        elif part == "naive":
            data = naive_part(args.naive_n, args.dim, args.naive_k, args.seed, args.repeats)
        elif part == "sklearn":
            data = sklearn_part(args.n, args.dim, args.k, args.seed, skip)
        else:
            folder = Path(args.pool_dir or tempfile.mkdtemp(prefix="bench-select-"))
            folder.mkdir(parents=True, exist_ok=True)
            data = million_part(folder, args.million_n, args.dim, args.k, args.seed, part == "million_kmeans", skip)
        data["run"] = {
            "quick": args.quick,
            "platform": platform.platform(),
            "numpy": np.__version__,
            "cpus": os.cpu_count(),
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
            "seconds": round(time.perf_counter() - started, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
        result[part] = data
        out.parent.mkdir(parents=True, exist_ok=True)
        from cvactive.outputs import portable_text  # paths relative to the repository / assets

        out.write_text(portable_text(json.dumps(result, indent=2)) + "\n")
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
