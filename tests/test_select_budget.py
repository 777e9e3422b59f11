"""Strategies for the small budget and for video (TypiClust, ProbCover, uniform_time), the temporal
window, the frame order of a pool, and selection under a cost budget: each checked against what its
definition picks on a pool where the answer is known."""

from __future__ import annotations

import csv
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cvactive.cli import main
from cvactive.cost import CostModel
from cvactive.errors import ConfigError
from cvactive.io import load_jsonl, write_jsonl
from cvactive.record import ImageRecord
from cvactive.selection import Pool, SelectionWarning, select
from cvactive.selection.budget import other_cluster_distance, probcover_delta, purity_delta
from cvactive.selection.costaware import expected_cost, select_within_budget
from cvactive.selection.kernels import kmeans
from cvactive.selection.order import frame_order
from cvactive.selection.synthetic import synthetic_records

HIT_UAV = Path("/work/shared/assets/hit-uav")


def mixture(sizes, centres, scale, seed=0):
    """Gaussian blobs of the given sizes around ``centres`` (2-D), and each point's blob."""
    gen = np.random.default_rng(seed)
    x = np.concatenate([gen.normal(c, scale, size=(n, 2)) for n, c in zip(sizes, centres)])
    return x.astype(np.float32), np.repeat(np.arange(len(sizes)), sizes)


def typicality_brute(x, k):
    d = np.sqrt(((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    return 1.0 / np.sort(d, axis=1)[:, :k].mean(axis=1)


# -- TypiClust -------------------------------------------------------------------------------
def test_typiclust_first_pick_is_the_densest_point_of_the_largest_cluster():
    x, blob = mixture([80, 40, 20], [(0, 0), (30, 0), (0, 30)], 2.0, seed=1)
    idx, util = select(Pool.from_arrays(embeddings=x), 3, "typiclust", rng=0, normalize=False)
    big = np.flatnonzero(blob == 0)
    typ = typicality_brute(x[big], 20)  # K = min(20, 80 // 2)
    assert idx[0] == big[np.argmax(typ)]
    assert util[0] == pytest.approx(typ.max(), rel=1e-5)
    assert [blob[i] for i in idx] == [0, 1, 2]  # then the next largest clusters, one pick each
    for b, i in zip((1, 2), idx[1:]):
        members = np.flatnonzero(blob == b)
        assert i == members[np.argmax(typicality_brute(x[members], min(20, members.size // 2)))]


def test_typiclust_skips_the_clusters_that_already_hold_labels():
    """|L| + k clusters: the labeled blob is covered, so the pick comes from the other one."""
    x, blob = mixture([60, 30], [(0, 0), (40, 0)], 1.5, seed=2)
    labeled = np.flatnonzero(blob == 0)[:1]
    idx = select(Pool.from_arrays(embeddings=x), 1, "typiclust", labeled=labeled, rng=0, normalize=False)[0]
    assert blob[idx[0]] == 1


# -- ProbCover -------------------------------------------------------------------------------
def purity_brute(x, labels, delta):
    d = np.sqrt(((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1))
    pure = [(labels[d[i] < delta] == labels[i]).all() for i in range(len(x))]
    return float(np.mean(pure))


def test_the_chosen_delta_is_the_largest_that_keeps_alpha_of_the_balls_pure():
    x, _ = mixture([50, 50, 40], [(0, 0), (6, 0), (3, 5)], 1.5, seed=3)
    labels, _, _ = kmeans(x, 3, np.random.default_rng(0))
    delta = purity_delta(other_cluster_distance(x, labels), 0.95)
    assert purity_brute(x, labels, delta) >= 0.95
    assert purity_brute(x, labels, delta * 1.0001 + 1e-6) < 0.95
    # and the whole step (k-means, then the radius) as the strategy runs it
    d2 = probcover_delta(x, 3, 0.95, np.random.default_rng(0))
    assert d2 == pytest.approx(delta)


def test_probcover_first_pick_covers_the_most_points_then_the_most_uncovered():
    x, _ = mixture([60, 25, 10], [(0, 0), (20, 0), (0, 20)], 1.0, seed=4)
    delta = 2.0
    d = np.sqrt(((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1))
    ball = d < delta
    idx, util = select(Pool.from_arrays(embeddings=x), 3, "probcover", rng=0, delta=delta, normalize=False)
    counts = ball.sum(axis=1)
    assert util[0] == counts.max() and counts[idx[0]] == counts.max()
    covered = ball[idx[0]].copy()
    second = (ball & ~covered).sum(axis=1)
    assert util[1] == second.max() and second[idx[1]] == second.max()


def test_probcover_counts_labeled_balls_as_covered():
    x, blob = mixture([60, 30], [(0, 0), (20, 0)], 1.0, seed=5)
    labeled = np.flatnonzero(blob == 0)[:5]
    idx = select(Pool.from_arrays(embeddings=x), 1, "probcover", labeled=labeled, rng=0, delta=30.0)[0]
    assert idx.size == 1  # delta covers everything: the pick is drawn at random, still a candidate
    picked = select(Pool.from_arrays(embeddings=x), 1, "probcover", labeled=labeled, rng=0, delta=3.0, normalize=False)
    assert blob[picked[0][0]] == 1  # blob 0 sits in the labeled balls; blob 1 is what is left to cover


# -- frame order and uniform_time --------------------------------------------------------------
def video_records(lengths, seed=0):
    """Frames of several videos (``frame`` set), shuffled."""
    recs = [ImageRecord.empty(f"video{v}.mp4", 64, 48, frame=f) for v, n in enumerate(lengths) for f in range(n)]
    order = np.random.default_rng(seed).permutation(len(recs))
    return [recs[i] for i in order]


def test_uniform_time_takes_every_nth_frame_of_each_video():
    records = video_records([60, 40])
    idx, util = select(records, 10, "uniform_time", rng=3)
    picked = sorted((records[i].source, records[i].frame) for i in idx)
    per_video = {v: [f for s, f in picked if s == v] for v in ("video0.mp4", "video1.mp4")}
    assert [len(f) for f in per_video.values()] == [6, 4]
    for frames in per_video.values():
        assert set(np.diff(frames).tolist()) == {10}  # every 10th frame: 100 frames, 10 picks
    assert np.all(util == 10.0)
    # ranked so that any first few are spread too: the first two picks are half the timeline apart
    first = [records[i] for i in idx[:2]]
    assert {r.source for r in first} == {"video0.mp4", "video1.mp4"}


def test_uniform_time_orders_an_image_folder_by_the_last_number_or_a_key():
    names = [f"/data/flight{f}/img_{i:05d}.jpg" for f in (1, 2) for i in range(0, 300, 3)]
    records = [ImageRecord.empty(n, 64, 48) for n in reversed(names)]
    order = frame_order(Pool.from_records(records))
    assert len(order.names) == 2 and order.names[0] == "/data/flight1/img_.jpg"
    idx = select(records, 20, "uniform_time", rng=0)[0]
    frames = sorted(int(records[i].source[-9:-4]) for i in idx if "flight1" in records[i].source)
    assert len(frames) == 10 and set(np.diff(frames).tolist()) == {30}
    # a key with a seq group: one sequence per flight folder, frames from the name
    custom = frame_order(Pool.from_records(records), r"flight(?P<seq>\d)/img_(?P<frame>\d+)")
    assert custom.names == ["1", "2"] and np.array_equal(custom.position, order.position)
    with pytest.raises(ConfigError, match="needs a named group"):
        frame_order(Pool.from_records(records), r"img_(\d+)")


def test_frame_order_from_fields_and_timestamps():
    records = [ImageRecord.empty(f"shot{i}.png", 8, 8, extra={"flight": i % 2, "t": 10 - i}) for i in range(6)]
    order = frame_order(Pool.from_records(records), "flight:t")
    assert order.names == ["flight=0", "flight=1"]
    assert order.timeline().tolist() == [4, 2, 0, 5, 3, 1]
    stamped = [ImageRecord.empty("cam.jpg", 8, 8, timestamp=t) for t in (3.5, 1.0, 2.0)]
    order = frame_order(Pool.from_records(stamped))
    assert order.unit == "seconds" and order.timeline().tolist() == [1, 2, 0]
    with pytest.raises(ConfigError, match="unknown field 'altitude'"):
        frame_order(Pool.from_records(records), "altitude")


@pytest.mark.skipif(not (HIT_UAV / "manifest.csv").is_file(), reason="the HIT-UAV asset is not here")
def test_frame_order_on_the_hit_uav_pool_follows_its_flights():
    """The file names give day/night, altitude and angle (the flight but its date) and the frame index;
    the manifest gives the date too. Every sequence the name key finds is one flight, or flights of
    different dates whose frame ranges do not interleave, so the order in time is the flights' order."""
    rows = [r for r in csv.DictReader((HIT_UAV / "manifest.csv").open()) if r["split"] == "train"]
    records = [ImageRecord.empty(f"images/train/{r['filename']}", 640, 512) for r in rows]
    pool = Pool.from_records(records)
    key = r"(?P<seq>[01]_\d+_\d+)_0_(?P<frame>\d+)\.jpg$"
    order = frame_order(pool, key)
    default = frame_order(pool)  # the last number of the name: the same frames, the same grouping
    assert np.array_equal(order.position, default.position)
    assert (
        len(order.names)
        == len(default.names)
        == len({(r["day0_night1"], r["altitude_m"], r["camera_angle_deg"]) for r in rows})
    )
    frame_index = np.array([int(r["frame_index"]) for r in rows])
    assert np.array_equal(order.position, frame_index)
    flight = np.array(
        [f"{r['date_captured']}_{r['day0_night1']}_{r['altitude_m']}_{r['camera_angle_deg']}" for r in rows]
    )
    line = order.timeline()
    changes = np.flatnonzero(flight[line][1:] != flight[line][:-1])
    assert changes.size == len(set(flight)) - 1  # along the timeline each flight is one run of frames
    # uniform_time over 10% of the pool: every flight's share of picks follows its share of frames
    idx = select(pool, 190, "uniform_time", rng=0, order_key=key)[0]
    share = {f: (flight[idx] == f).sum() for f in set(flight)}
    size = {f: (flight == f).sum() for f in set(flight)}
    assert all(abs(share[f] - size[f] / 1904 * 190) < 1.5 for f in share)


# -- the temporal window ------------------------------------------------------------------------
def burst_pool(seed=0):
    """Two videos of 40 frames; frames come in bursts of 4 near-identical embeddings."""
    gen = np.random.default_rng(seed)
    keys, emb = [], []
    for v in range(2):
        for f in range(40):
            if f % 4 == 0:
                base = gen.normal(size=8) * 5
            keys.append(f"v{v}.mp4#{f}")
            emb.append(base + gen.normal(size=8) * 0.01)
    return Pool.from_arrays(embeddings=np.array(emb), keys=keys, fields={"frame": [int(k.split("#")[1]) for k in keys]})


@pytest.mark.parametrize("name", ["coreset", "cluster", "typiclust", "probcover"])
def test_a_temporal_window_keeps_picks_apart_in_time(name):
    pool = burst_pool()
    labeled = np.array([0, 40])
    idx = select(pool, 12, name, labeled=labeled, rng=0, temporal_window=3)[0]
    seq = np.array([k.split("#")[0] for k in pool.keys])
    frame = pool.fields["frame"]
    every = np.concatenate([idx, labeled])
    for a in range(every.size):
        for b in range(a + 1, every.size):
            i, j = every[a], every[b]
            assert seq[i] != seq[j] or abs(frame[i] - frame[j]) > 3, (name, i, j)


def test_a_window_that_covers_everything_still_gives_k_picks_with_a_warning():
    pool = burst_pool()
    with pytest.warns(SelectionWarning, match="temporal_window=20 covers all but 4"):
        idx = select(pool, 6, "coreset", rng=0, temporal_window=20)[0]
    assert len(set(idx.tolist())) == 6
    with pytest.raises(ConfigError, match="temporal_window must be a number >= 0"):
        select(pool, 3, "coreset", temporal_window=-1)


# -- the cost of a candidate ----------------------------------------------------------------------
def record_with(confidences, **scores):
    n = len(confidences)
    return ImageRecord(
        source="a.jpg",
        width=100,
        height=100,
        xyxy=np.tile([[0, 0, 10, 10]], (n, 1)),
        confidence=np.array(confidences, np.float32),
        class_id=np.zeros(n, np.int64),
        image_scores=dict(scores),
    )


def test_expected_cost_of_hand_made_images():
    unit = CostModel(
        image_draw=5.0, box_draw=7.0, image_correct=4.0, delete=2.0, rebox=4.0, reclass=3.0, miss=8.0, accept=1.0
    )
    plain = Pool.from_records([record_with([0.9, 0.8, 0.5, 0.1]), ImageRecord.empty("b.jpg", 10, 10)])
    assert expected_cost(plain, "boxes", confidence=0.25).tolist() == [3.0, 0.0]
    assert expected_cost(plain, "draw", costs=unit).tolist() == [5.0 + 7.0 * 3, 5.0]
    # without an error model: a kept box is wrong with probability 1 - confidence, no misses known
    wrong = 0.1 + 0.2 + 0.5
    assert expected_cost(plain, "correct", costs=unit)[0] == pytest.approx(4.0 + 3.0 * wrong + 1.0 * (3 - wrong))
    # with an error model: 3 kept boxes of which 1 wrong, 2 misses -> 4 objects
    learned = Pool.from_records(
        [record_with([0.9, 0.8, 0.5], learned_box_errors=1.0, learned_misses=2.0, learned_objects=4.0)]
    )
    assert expected_cost(learned, "boxes").tolist() == [4.0]
    # a wrong kept box costs the mean of delete, re-box and re-class: (2 + 4 + 3) / 3 = 3
    assert expected_cost(learned, "correct", costs=unit).tolist() == [4.0 + 3.0 * 1 + 8.0 * 2 + 1.0 * 2]
    assert expected_cost(plain, "boxes", costs=CostModel(conf=0.85)).tolist() == [1.0, 0.0]
    with pytest.raises(ConfigError, match="cost mode"):
        expected_cost(plain, "minutes")
    with pytest.raises(ConfigError, match="no per-box confidences"):
        expected_cost(Pool.from_arrays(fields={"num_boxes": [1.0]}), "boxes")


# -- selection under a cost budget ------------------------------------------------------------------
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BUDGET_STRATEGIES = ["random", "uncertainty", "coreset", "typiclust", "probcover", "uniform_time", "class_balanced"]


@SETTINGS
@given(
    seed=st.integers(0, 10_000),
    budget=st.floats(1.0, 400.0),
    name=st.sampled_from(BUDGET_STRATEGIES),
    mode=st.sampled_from(["boxes", "draw", "correct"]),
    per_cost=st.booleans(),
    labeled=st.integers(0, 20),
)
def test_a_cost_budget_is_never_exceeded(seed, budget, name, mode, per_cost, labeled):
    records = synthetic_records(40, rng=seed, max_boxes=5)
    got = select_within_budget(
        records, budget, name, cost_mode=mode, per_cost=per_cost, labeled=np.arange(labeled), rng=seed, max_items=30
    )
    assert math.fsum(got.costs) <= budget
    assert len(set(got.indices.tolist())) == got.indices.size and np.all(got.indices >= labeled)
    cost = expected_cost(Pool.from_records(records), mode)
    assert np.array_equal(got.costs, cost[got.indices])
    if got.indices.size < 30:  # nothing left out would still have fit
        left = np.setdiff1d(np.arange(labeled, 40), got.indices)
        assert not np.any(cost[left] <= budget - math.fsum(got.costs) - 1e-9)


def test_per_cost_takes_utility_per_cost_where_rank_order_spends_it_all_on_one():
    """Uncertainty 10 for 10 s, 9 for 1 s, 1 for 1 s each: the plain order buys the first alone; per cost
    buys the 9 first, then the cheap ones (utility 9 + 9 x 1 = 18 > 10)."""
    s = np.array([10.0, 9.0, *[1.0] * 12])
    cost = np.array([10.0, *[1.0] * 13])
    pool = Pool.from_arrays(fields={"entropy_max": s})
    plain = select_within_budget(pool, 10, "uncertainty", item_costs=cost, per_cost=False, rng=0)
    assert plain.indices.tolist() == [0]
    aware = select_within_budget(pool, 10, "uncertainty", item_costs=cost, per_cost=True, rng=0)
    assert aware.indices[0] == 1 and aware.indices.size == 10 and 0 not in aware.indices
    assert aware.utilities.sum() == 18.0 and aware.spent == 10.0


def test_a_cost_budget_keeps_the_strategys_diversity_step():
    """Coreset under a budget on two far blobs with equal costs: picks from both blobs, not one."""
    x, blob = mixture([30, 30], [(0, 0), (50, 0)], 1.0, seed=6)
    pool = Pool.from_arrays(embeddings=x)
    got = select_within_budget(pool, 4, "coreset", item_costs=np.ones(60), rng=0)
    assert got.indices.size == 4 and set(blob[got.indices].tolist()) == {0, 1}


def test_a_cost_budget_with_a_temporal_window():
    pool = burst_pool()
    got = select_within_budget(pool, 6, "coreset", item_costs=np.ones(80), rng=0, temporal_window=3)
    frames = sorted((pool.keys[i].split("#")[0], pool.fields["frame"][i]) for i in got.indices)
    for (s1, f1), (s2, f2) in itertools.pairwise(frames):
        assert s1 != s2 or f2 - f1 > 3


def test_bad_budgets_are_clear_errors():
    records = synthetic_records(10, rng=0)
    bad_budgets: list[Any] = [0, -1.0, float("nan"), "ten"]
    for bad in bad_budgets:
        with pytest.raises(ConfigError, match="cost budget must be"):
            select_within_budget(records, bad)
    with pytest.raises(ConfigError, match="unknown option"):
        select_within_budget(records, 5, "uncertainty", temporal_window=2)
    with pytest.raises(ConfigError, match="max_items"):
        select_within_budget(records, 5, max_items=0)


# -- the command ------------------------------------------------------------------------------------
def test_select_command_under_a_cost_budget(tmp_path, capsys):
    records = synthetic_records(60, rng=2, max_boxes=4)
    scores, out = tmp_path / "scores.jsonl", tmp_path / "batch.jsonl"
    write_jsonl(scores, records, class_scores=True)
    argv = ["select", str(scores), "--strategy", "uncertainty", "--cost-budget", "12", "--seed", "0"]
    assert main([*argv, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "expected cost" in text and "of 12 boxes (utility per cost)" in text
    kept = sum(int((rec.confidence >= 0.25).sum()) for rec in load_jsonl(out))
    assert 0 < kept <= 12
    assert main([*argv[:-4], "--cost-budget", "300", "--cost-mode", "draw", "--no-per-cost", "--k", "2"]) == 0
    assert "selected 2 of 60" in capsys.readouterr().out  # --k caps the images the budget would buy
    assert (
        main(["select", str(scores), "--strategy", "uniform_time", "--k", "6", "--order-key", r"_(?P<frame>\d+)"]) == 0
    )
    assert "order_key=" in capsys.readouterr().out
    assert main(["select", str(scores), "--strategy", "random", "--k", "3", "--order-key", "x"]) == 2
    assert "reads no frame order" in capsys.readouterr().err


def test_per_cost_order_for_a_caller_with_its_own_budget():
    """The loop pays true costs itself: it only needs the strategy's picks in utility-per-cost order."""
    from cvactive.selection.costaware import per_cost_order

    assert per_cost_order(np.array([4.0, 3.0, 1.0]), np.array([3.0, 0.0, 0.0]), "boxes").tolist() == [1, 0, 2]
    assert per_cost_order(np.array([4.0, 3.0, 1.0]), np.array([8.0, 2.0, 1.0]), "draw").tolist() == [1, 2, 0]
    # negative gains are shifted to >= 0 before dividing: the worst stays last whatever its cost
    assert per_cost_order(np.array([-1.0, 0.5]), np.array([1.0, 10.0]), "draw").tolist() == [1, 0]
