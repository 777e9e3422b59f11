"""Unit tests of the health statistics, image-hash maths and gates (pure functions, tiny arrays)."""

import math

import numpy as np
import pytest

from cvactive.health import gates as G
from cvactive.health import stats as S
from cvactive.health.images import cross_split_pairs, dhash, exact_groups, group_pairs, hamming_pairs


def test_class_counts_instances_and_images():
    cls = np.array([0, 0, 1, 0, 2, 2])
    img = np.array([0, 0, 0, 1, 1, 1])
    instances, images = S.class_counts(cls, img, 4)
    assert instances.tolist() == [3, 1, 2, 0]
    assert images.tolist() == [2, 1, 1, 0]
    inst0, img0 = S.class_counts(np.zeros(0, int), np.zeros(0, int), 2)
    assert inst0.tolist() == [0, 0] and img0.tolist() == [0, 0]


def test_imbalance_ratio_rarest_missing_and_under_min():
    names = {0: "fish", 1: "starfish", 2: "shark"}
    imb = S.imbalance(np.array([2420, 105, 316]), names, min_instances=200)
    assert imb["ratio"] == pytest.approx(2420 / 105)
    assert imb["rarest"] == "starfish" and imb["largest"] == "fish"
    assert imb["under_min"] == ["starfish"] and imb["missing"] == []
    none = S.imbalance(np.array([5, 0, 3]), names)
    assert math.isinf(none["ratio"]) and none["missing"] == ["starfish"]
    assert S.imbalance(np.zeros(0), {})["ratio"] is None


def test_boxes_per_image_and_histogram():
    per = S.boxes_per_image(np.array([0, 0, 2, 2, 2]), 4)
    assert per.tolist() == [2, 0, 3, 0]
    assert S.histogram_counts(np.array([0, 1, 12, 3]), 3) == {"0": 1, "1": 1, "2": 0, "3+": 2}


def test_size_buckets_use_coco_areas():
    cls = np.array([0, 0, 1, 1, 1])
    areas = np.array([31.0**2, 32.0**2, 95.0**2, 96.0**2, np.nan])
    buckets = S.size_buckets(cls, areas, 2)
    assert buckets.tolist() == [[1, 1, 0], [0, 1, 1]]  # 32² is medium, 96² is large (COCO), NaN skipped


def test_pixel_wh_uses_each_boxes_image_size():
    boxes = np.array([[0.5, 0.5, 0.5, 0.25], [0.5, 0.5, 0.1, 0.1]], np.float32)
    wh = S.pixel_wh(boxes, np.array([0, 1]), np.array([200.0, np.nan]), np.array([100.0, 50.0]))
    assert wh[0].tolist() == [100.0, 25.0]
    assert np.isnan(wh[1, 0]) and wh[1, 1] == pytest.approx(5.0)


def test_grouped_quantiles_match_numpy_per_group(rng):
    values = rng.normal(size=500)
    groups = rng.integers(0, 4, 500)
    values[::50] = np.nan
    got = S.grouped_quantiles(values, groups, 5, qs=(0.05, 0.5, 0.95))
    for g in range(4):
        v = values[(groups == g) & np.isfinite(values)]
        np.testing.assert_allclose(got[g], np.quantile(v, [0.05, 0.5, 0.95]), rtol=1e-12)
    assert np.isnan(got[4]).all()  # empty group


def test_centre_heatmaps_match_histogram2d(rng):
    boxes = np.concatenate([rng.uniform(0, 1, (300, 2)), np.full((300, 2), 0.1)], axis=1)
    boxes[0, :2] = 1.0  # a centre on the far edge lands in the last cell
    cls = rng.integers(0, 3, 300)
    maps = S.centre_heatmaps(boxes, cls, 3, grid=8)
    assert maps.shape == (3, 8, 8) and maps.sum() == 300
    for k in range(3):
        sel = boxes[cls == k]
        ref, _, _ = np.histogram2d(sel[:, 1], sel[:, 0], bins=8, range=[[0, 1], [0, 1]])
        np.testing.assert_array_equal(maps[k], ref)


def test_quadrant_shares_of_left_biased_class():
    h = np.zeros((4, 4))
    h[:, 0] = 3
    h[:, 3] = 1
    shares = S.quadrant_shares(h)
    assert shares["left"] == pytest.approx(0.75) and shares["top"] == pytest.approx(0.5)
    assert S.quadrant_shares(np.zeros((4, 4)))["left"] == 0.0


def test_brightness_bands_summary_and_top_sizes():
    b = np.array([10.0, 40.0, 120.0, 230.0, np.nan])
    assert S.brightness_bands(b, 50, 200) == {"dark": 2, "normal": 1, "bright": 1}
    s = S.summary(b)
    assert s["count"] == 4 and s["min"] == 10.0 and s["max"] == 230.0
    assert S.summary(np.array([np.nan]))["median"] is None
    sizes = S.top_sizes(np.array([640, 640, 320, np.nan]), np.array([480, 480, 240, 10]))
    assert sizes[0] == {"width": 640, "height": 480, "images": 2} and len(sizes) == 2


def test_dhash_bits_and_hamming_pairs_match_brute_force(rng):
    flat = np.tile(np.arange(9, dtype=np.float32), (8, 1))  # increasing to the right: all 64 bits set
    assert int(dhash(flat)) == -1  # all ones as int64
    assert int(dhash(flat[:, ::-1])) == 0
    with pytest.raises(ValueError, match=r"\(8, 9\)"):
        dhash(np.zeros((8, 8)))
    hashes = rng.integers(-(2**63), 2**63 - 1, 60, dtype=np.int64)
    hashes[10] = hashes[3] ^ 0b1011  # 3 bits away
    hashes[20] = hashes[3]
    pairs = hamming_pairs(hashes, 3, block_elems=128)  # small blocks exercise the chunking
    u = hashes.view(np.uint64)
    brute = {
        (i, j, bin(int(u[i] ^ u[j])).count("1"))
        for i in range(60)
        for j in range(i + 1, 60)
        if bin(int(u[i] ^ u[j])).count("1") <= 3
    }
    assert {tuple(map(int, r)) for r in pairs} == brute
    assert (3, 20, 0) in brute and (3, 10, 3) in brute
    assert hamming_pairs(np.zeros(0, np.int64), 4).shape == (0, 3)


def test_exact_groups_and_cross_split_pairs():
    groups = exact_groups(["a", "b", None, "a", "c", "b", "a"])
    assert groups == [[0, 3, 6], [1, 5]]
    pairs = group_pairs(groups)
    assert pairs.tolist() == [[0, 3], [0, 6], [3, 6], [1, 5]]
    split = np.array([0, 0, 0, 1, 0, 0, 0])
    assert cross_split_pairs(pairs, split).tolist() == [[0, 3], [3, 6]]
    assert exact_groups([None, ""]) == []


def test_gates_pass_and_fail_with_reasons():
    ok = G.min_instances_gate({"fish": 2420, "starfish": 105}, 100)
    bad = G.min_instances_gate({"fish": 2420, "starfish": 105}, 200)
    assert ok.passed and not bad.passed and "starfish 105" in bad.message
    assert G.max_imbalance_gate(23.05, 50, []).passed
    assert not G.max_imbalance_gate(23.05, 20, []).passed
    inf = G.max_imbalance_gate(math.inf, 50, ["cow"])
    assert not inf.passed and "cow" in inf.message
    errs = G.max_label_errors_gate({"malformed": 1, "unknown_class": 2}, 0)
    assert not errs.passed and errs.value == 3 and "unknown_class 2" in errs.message
    assert not G.leakage_gate(1, allowed=False).passed and G.leakage_gate(1, allowed=True).passed
    assert not G.min_dark_images_gate(2, 100, 5).passed
