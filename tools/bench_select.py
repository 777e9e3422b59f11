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

Goals (issue 4): each of the four within 60 s and under 4 GB on 2 CPU cores; at least 50x over
the naive implementation, with the same picks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="pool size of the scale part (100000)")
    parser.add_argument("--dim", type=int, default=256, help="embedding length (256)")
    parser.add_argument("--k", type=int, default=1000, help="batch size of the scale part (1000)")
    parser.add_argument("--labeled", type=int, default=2000, help="labeled items for the coreset+labeled row (2000)")
    parser.add_argument("--naive-n", type=int, default=5000, help="pool size of the naive comparison (5000)")
    parser.add_argument("--naive-k", type=int, default=100, help="batch size of the naive comparison (100)")
    parser.add_argument("--repeats", type=int, default=3, help="vectorised runs per strategy, best kept (3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--blas-threads", type=int, help="BLAS threads (default: the library's choice)")
    parser.add_argument("--quick", action="store_true", help="small sizes (20000 pool, k=200, naive 1000)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "select.json"))
    args = parser.parse_args()
    if args.quick:
        args.n, args.k, args.labeled, args.naive_n, args.naive_k = 20_000, 200, 500, 1000, 30
    started = time.perf_counter()
    load_before = os.getloadavg()
    scale = scale_part(args.n, args.dim, args.k, args.labeled, args.seed)
    versus = naive_part(args.naive_n, args.dim, args.naive_k, args.seed, args.repeats)
    result = {
        "benchmark": "select",
        "quick": args.quick,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "cpus": os.cpu_count(),
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
        },
        "goals": {"seconds": GOAL_SECONDS, "bytes": GOAL_BYTES, "speedup": GOAL_SPEEDUP},
        "scale": scale,
        "naive": versus,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"peak RSS {result['peak_rss_mb']} MB, total {result['total_seconds']} s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
