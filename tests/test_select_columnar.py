"""Selection over sharded pools: columns and memmaps give the same picks as the in-memory pool,
float16 memmaps pick (nearly) the same, top-k streams, the kernels stream, and ``cvactive select``
reads a shards folder."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from cvactive.cli import main
from cvactive.errors import ConfigError, RecordError
from cvactive.io import write_jsonl
from cvactive.scale.engine import write_manifest
from cvactive.scale.shards import ShardResult, write_shard
from cvactive.selection import Pool, SelectionWarning, select
from cvactive.selection import kernels as K
from cvactive.selection.blocks import STREAM_ROWS
from cvactive.selection.synthetic import synthetic_pool, synthetic_records
from cvactive.sharded import Shard

pytest.importorskip("pyarrow", reason="sharded pools need pyarrow: pip install 'cvactive[ray]'")
from cvactive.selection.columnar import consolidate, fetch_rows, open_pool, stream_topk, write_pool

STRATEGIES = ["uncertainty", "coreset", "cluster", "hybrid", "badge", "class_balanced", "stratified", "random"]


@pytest.fixture(scope="module")
def pools(tmp_path_factory) -> tuple[Pool, Path, Path]:
    pool = synthetic_pool(6000, 24, 3, clusters=30)
    folder = tmp_path_factory.mktemp("pools")
    kw = {"embeddings": pool.embeddings, "fields": pool.fields, "class_conf": pool.class_conf, "shard_size": 700}
    f32 = write_pool(folder / "f32", **kw)
    f16 = write_pool(folder / "f16", embedding_dtype="float16", **kw)
    return pool, f32, f16


def test_memmapped_pool_picks_what_the_in_memory_pool_picks(pools):
    pool, f32, _ = pools
    sharded = open_pool(f32)
    assert isinstance(sharded.embeddings, np.memmap) and sharded.embeddings.dtype == np.float32
    assert not sharded.fields._cache  # type: ignore[attr-defined]  # no column read yet
    labeled = np.zeros(len(pool), bool)
    labeled[::11] = True
    for name in STRATEGIES:
        want = select(pool, 40, name, labeled=labeled, rng=5)
        got = select(sharded, 40, name, labeled=labeled, rng=5)
        np.testing.assert_array_equal(got[0], want[0], err_msg=name)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-5, err_msg=name)
    assert set(sharded.fields._cache) <= {"entropy_max", "max_confidence"}  # type: ignore[attr-defined]


def test_float16_memmap_keeps_the_picks_close(pools):
    pool, _, f16 = pools
    sharded = open_pool(f16)
    assert sharded.embeddings is not None and sharded.embeddings.dtype == np.float16
    for name in ("coreset", "cluster", "hybrid"):
        want = set(select(pool, 40, name, rng=2)[0].tolist())
        got = set(select(sharded, 40, name, rng=2)[0].tolist())
        assert len(want & got) >= 36, name
    # badge samples by D^2: a rounding difference moves one draw and the rest follow, so compare
    # what it optimises, the k-means potential of the weighted points around its seeds.
    assert pool.embeddings is not None
    g = pool.embeddings * pool.fields["entropy_max"][:, None].astype(np.float32)
    potential = [K.kmeans_objective(g, g[select(p, 40, "badge", rng=2)[0]]) for p in (pool, sharded)]
    assert potential[1] == pytest.approx(potential[0], rel=0.1)


def test_stream_topk_equals_uncertainty_select(pools):
    pool, f32, _ = pools
    labeled = np.zeros(len(pool), bool)
    labeled[:500] = True
    for rng in (0, 7):
        want = select(pool, 64, "uncertainty", labeled=labeled, rng=rng)
        got = stream_topk(f32, 64, labeled=labeled, rng=rng, batch_rows=333)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_allclose(got[1], want[1])
    with pytest.warns(SelectionWarning, match="larger than the 5500 unlabeled"):
        assert stream_topk(f32, 9000, labeled=labeled, rng=0)[0].size == 5500
    with pytest.raises(ConfigError, match="unknown field 'nope'"):
        stream_topk(f32, 3, score="nope")


def test_streamed_kernels_equal_the_in_memory_ones(tmp_path):
    x, _ = __import__("cvactive.selection.synthetic", fromlist=["x"]).clustered_embeddings(STREAM_ROWS + 5000, 8, 6)
    np.save(tmp_path / "x.npy", x)
    xm = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert K.column_spread(xm) == pytest.approx(float(np.mean(np.var(x.astype(np.float64), axis=0))), rel=1e-9)
    labels = np.random.default_rng(0).integers(0, 9, size=x.shape[0])
    means, counts = K._cluster_means(xm, labels, np.zeros((9, 8)))
    for c in range(9):
        np.testing.assert_allclose(means[c], x[labels == c].astype(np.float64).mean(axis=0), rtol=1e-9, atol=1e-12)
    assert counts.sum() == x.shape[0]
    # Lloyd's on a sample, then one pass over the pool: labels are each row's nearest final centre.
    lab, centres, d2 = K.kmeans(xm, 6, np.random.default_rng(1), fit_sample=4000, init_sample=2000)
    np.testing.assert_array_equal(lab, K.assign(x, centres)[0])
    assert float(d2.sum()) == pytest.approx(K.kmeans_objective(x, centres), rel=1e-9)
    brute = ((x[:, None, :].astype(np.float64) - centres[None].astype(np.float64)) ** 2).sum(-1).min(1).sum()
    assert K.kmeans_objective(xm, centres) == pytest.approx(brute, rel=1e-6)
    # weighted k-means++ equals k-means++ on the weighted points
    w = np.random.default_rng(2).random(2000)
    g = (x[:2000] * w[:, None].astype(np.float32)).astype(np.float32)
    picks_w, util_w = K.kmeanspp(xm[:2000], 20, np.random.default_rng(3), first=4, weights=w)
    picks_g, util_g = K.kmeanspp(g, 20, np.random.default_rng(3), first=4)
    np.testing.assert_array_equal(picks_w, picks_g)
    np.testing.assert_allclose(util_w, util_g, rtol=1e-4)


def sharded_from_records(folder: Path, records: list, shard_size: int) -> Path:
    """A shards folder as the Ray engine writes it, from scored records (no model needed)."""
    shards, done = [], {}
    for j, s in enumerate(range(0, len(records), shard_size)):
        chunk = records[s : s + shard_size]
        shard = Shard(j, tuple(r.source for r in chunk))
        done[j] = write_shard(folder, shard, chunk, ShardResult(j, len(chunk), sum(len(r) for r in chunk)))
        shards.append(shard)
    settings = {"formats": ["jsonl", "parquet"], "embedding_dtype": "float32"}
    write_manifest(folder, settings, shards, done)
    return folder


def test_cli_select_reads_a_shards_folder(tmp_path, capsys):
    records = synthetic_records(150, rng=4)
    scores = tmp_path / "scores.jsonl"
    write_jsonl(scores, records)
    write_jsonl(tmp_path / "labeled.jsonl", records[:30])
    folder = sharded_from_records(tmp_path / "shards", records, 40)
    for name in ("uncertainty", "hybrid", "class_balanced"):
        common = ["--k", "12", "--strategy", name, "--seed", "3", "--labeled", str(tmp_path / "labeled.jsonl")]
        assert main(["select", str(scores), *common, "--out", str(tmp_path / "a.jsonl")]) == 0
        assert main(["select", str(folder), *common, "--out", str(tmp_path / "b.jsonl")]) == 0
        out = capsys.readouterr().out
        assert f"selected 12 of 150 records with {name!r} from shards, 30 labeled records given" in out
        a = [json.loads(ln) for ln in (tmp_path / "a.jsonl").read_text().splitlines()]
        b = [json.loads(ln) for ln in (tmp_path / "b.jsonl").read_text().splitlines()]
        assert [r["source"] for r in b] == [r["source"] for r in a], name
        assert [r["rank"] for r in b] == list(range(1, 13))
        assert b[0]["boxes"] == a[0]["boxes"] and b[0]["embedding"] == a[0]["embedding"]
    assert main(["select", str(folder), "--k", "3", "--strategy", "uncertainty", "--set", "score=nope"]) == 2
    assert "unknown field 'nope'" in capsys.readouterr().err


def test_fetch_rows_and_incomplete_runs(tmp_path):
    records = synthetic_records(30, rng=1)
    folder = sharded_from_records(tmp_path / "s", records, 7)
    rows = fetch_rows(folder, [29, 0, 8])
    assert [r["source"] for r in rows] == [records[i].source for i in (29, 0, 8)]
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["complete"] = False
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RecordError, match="resume the run first"):
        consolidate(folder)


def test_pool_checks_embeddings_in_blocks_and_keeps_float16():
    x = np.ones((10, 4), np.float16)
    assert Pool.from_arrays(embeddings=x).embeddings.dtype == np.float16  # type: ignore[union-attr]
    x[7, 2] = np.inf
    with pytest.raises(RecordError, match="finite"), warnings.catch_warnings():
        Pool.from_arrays(embeddings=x)


def test_large_pool_seeding_by_markov_chains_matches_kmeanspp_quality():
    """Above ``exact_limit`` rows k-means++ is drawn by AFK-MC² chains: distinct seeds, a potential
    (sum of squared distances to the nearest seed) close to exact k-means++'s, far below random's."""
    from cvactive.selection.synthetic import clustered_embeddings

    x, _ = clustered_embeddings(20_000, 16, 40, 3)
    w = np.random.default_rng(4).random(x.shape[0])
    g = x * w[:, None].astype(np.float32)
    exact, mcmc, rand = [], [], []
    for seed in range(3):
        e, _ = K.kmeanspp(x, 40, np.random.default_rng(seed), weights=w)
        m, util = K.kmeanspp(x, 40, np.random.default_rng(seed), weights=w, exact_limit=1000)
        assert len(set(m.tolist())) == 40 and np.all(util[1:] >= 0)
        exact.append(K.kmeans_objective(g, g[e]))
        mcmc.append(K.kmeans_objective(g, g[m]))
        rand.append(K.kmeans_objective(g, g[np.random.default_rng(seed).choice(x.shape[0], 40, replace=False)]))
    assert np.mean(mcmc) <= 1.15 * np.mean(exact)
    assert np.mean(mcmc) < 0.8 * np.mean(rand)


@pytest.mark.parametrize("seed", [0, 1])
def test_pruned_updates_pick_what_full_passes_pick(monkeypatch, seed):
    """The triangle-inequality pruning of :mod:`cvactive.selection.cover` changes no pick."""
    from cvactive.selection import cover

    pool = synthetic_pool(5000, 64, seed, clusters=50)
    x, s = pool.embeddings, pool.fields["entropy_max"]
    assert x is not None
    monkeypatch.setattr(cover, "PRUNE_MIN_ROWS", 0)
    runs = []
    for share in (cover.FULL_PASS_SHARE, -1.0):  # -1: every pick is a plain pass over all rows
        monkeypatch.setattr(cover, "FULL_PASS_SHARE", share)
        runs.append(
            (
                K.kcenter_greedy(x, 150, np.random.default_rng(seed))[0],
                K.kmeanspp(x, 150, np.random.default_rng(seed), weights=s)[0],
            )
        )
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
