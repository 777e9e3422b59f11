"""Target class distributions, and ``class_balanced`` picking toward one."""

from __future__ import annotations

import numpy as np
import pytest

from cvactive.errors import ConfigError
from cvactive.selection import Pool, select
from cvactive.selection.targets import squared_distance, target_shares, total_variation

NAMES = {0: "fish", 1: "shark", 2: "ray"}


def test_uniform_and_inverse_targets_skip_classes_that_never_occur():
    freq = np.array([80, 20, 0])
    assert target_shares("uniform", freq, NAMES).tolist() == [0.5, 0.5, 0.0]
    assert target_shares("inverse", freq, NAMES) == pytest.approx([0.2, 0.8, 0.0])


def test_a_mapping_target_by_name_or_id_is_normalised():
    assert target_shares({"fish": 1, 2: 3}, np.zeros(3), NAMES) == pytest.approx([0.25, 0.0, 0.75])


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("balanced", "unknown class target 'balanced'; valid targets: uniform, inverse"),
        ({"whale": 1}, "unknown class 'whale'; valid classes: fish, shark, ray"),
        ({"fish": -1}, "weight of 'fish' must be >= 0"),
        ({"fish": "lots"}, "weight of 'fish' must be a number"),
        ({"fish": 0}, "gives every class weight 0"),
        (3, "must be 'uniform', 'inverse' or a mapping"),
    ],
)
def test_bad_targets_are_clear_errors(target, message):
    with pytest.raises(ConfigError, match=message):
        target_shares(target, np.array([5, 1, 1]), NAMES)


def test_distances():
    assert total_variation(np.array([3, 1]), np.array([0.5, 0.5])) == pytest.approx(0.25)
    assert total_variation(np.zeros(2), np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert squared_distance(np.array([[3, 1], [1, 1]]), np.array([0.5, 0.5])) == pytest.approx([0.125, 0.0])


def naive_class_balanced(class_conf, score, labeled, k, target, min_confidence=0.25):
    """The greedy rule item by item: the biggest drop in squared distance, then the highest score."""
    present = class_conf >= min_confidence
    counts = present[labeled].sum(axis=0).astype(float)
    cand = [i for i in range(len(score)) if i not in set(labeled)]
    t = target_shares(target, counts + present[cand].sum(axis=0), {i: str(i) for i in range(class_conf.shape[1])})
    worst = float((1 - 2 * t + (t**2).sum()).max())  # a mix of nothing is as far as a mix can be

    def distance(mix):
        return float(squared_distance(mix, t)) if mix.sum() else worst

    picks = []
    for _ in range(k):
        best = max(cand, key=lambda i: (present[i].any(), round(-distance(counts + present[i]), 12), score[i]))
        picks.append(best)
        cand.remove(best)
        counts += present[best]
    return picks


@pytest.mark.parametrize("target", ["uniform", "inverse", {"0": 1, "2": 2}])
def test_class_balanced_matches_the_item_by_item_greedy(target):
    rng = np.random.default_rng(5)
    n, c = 150, 4
    class_conf = (rng.random((n, c)) ** 3 * (rng.random((n, c)) < [0.9, 0.4, 0.15, 0.05])).astype(np.float32)
    score = rng.permutation(n) / n  # distinct scores: no random tie-breaks
    pool = Pool.from_arrays(class_conf=class_conf, fields={"entropy_max": score}, names={i: str(i) for i in range(c)})
    labeled = list(range(0, 40))
    target = {int(k) if isinstance(k, str) else k: v for k, v in target.items()} if isinstance(target, dict) else target
    got = select(pool, 25, "class_balanced", labeled=np.array(labeled), rng=0, target=target)[0]
    assert got.tolist() == naive_class_balanced(class_conf, score, labeled, 25, target)


def test_class_balanced_moves_a_skewed_labeled_set_toward_uniform():
    rng = np.random.default_rng(1)
    n = 400
    cls = rng.choice(3, size=n, p=[0.8, 0.15, 0.05])
    class_conf = np.zeros((n, 3), np.float32)
    class_conf[np.arange(n), cls] = 0.9
    pool = Pool.from_arrays(class_conf=class_conf, fields={"entropy_max": rng.random(n)}, names=NAMES)
    labeled = np.flatnonzero(cls == 0)[:50]
    before = np.bincount(cls[labeled], minlength=3)
    idx = select(pool, 60, "class_balanced", labeled=labeled, rng=0)[0]
    after = before + np.bincount(cls[idx], minlength=3)
    uniform = np.full(3, 1 / 3)
    assert total_variation(after, uniform) < total_variation(before, uniform)
    # every shark and ray image is taken before any further fish image
    rare = int((cls != 0).sum())
    assert (cls[idx[: min(rare, 60)]] != 0).all()


def test_a_given_target_can_ignore_a_class():
    n = 60
    cls = np.repeat([0, 1, 2], 20)
    class_conf = np.zeros((n, 3), np.float32)
    class_conf[np.arange(n), cls] = 0.9
    pool = Pool.from_arrays(class_conf=class_conf, fields={"entropy_max": np.linspace(0, 1, n)}, names=NAMES)
    idx = select(pool, 20, "class_balanced", rng=0, target={"fish": 1, "ray": 1})[0]
    assert set(cls[idx].tolist()) == {0, 2}


def test_with_no_predicted_class_it_is_top_k_uncertainty():
    pool = Pool.from_arrays(
        class_conf=np.zeros((30, 3), np.float32), fields={"entropy_max": np.linspace(0, 1, 30)}, names=NAMES
    )
    idx, util = select(pool, 5, "class_balanced", rng=0)
    assert idx.tolist() == [29, 28, 27, 26, 25] and np.all(util == 0)


@pytest.mark.parametrize("labeled", [None, []])
def test_with_nothing_labeled_it_picks_images_that_show_classes_and_balances_them(labeled):
    """Issue #25: with no labeled set every pick used to be an image with no box (utility 0)."""
    n = 90
    cls = np.repeat([-1, 0, 1, 2], [45, 30, 10, 5])  # half the pool shows nothing
    class_conf = np.zeros((n, 3), np.float32)
    shown = cls >= 0
    class_conf[np.flatnonzero(shown), cls[shown]] = 0.9
    score = np.where(shown, 0.2, 0.9)  # the empty images are even the most "uncertain"
    pool = Pool.from_arrays(class_conf=class_conf, fields={"entropy_max": score}, names=NAMES)
    kwargs = {} if labeled is None else {"labeled": np.array(labeled, np.int64)}
    idx, util = select(pool, 12, "class_balanced", rng=0, **kwargs)
    assert (cls[idx] >= 0).all()
    assert np.bincount(cls[idx], minlength=3).tolist() == [4, 4, 4]
    assert util[0] == 0 and util[1] > 0  # the first image makes a mix, the second improves it
