"""The contract every selection strategy keeps (one suite, run for each registered strategy)."""

from __future__ import annotations

import numpy as np
import pytest

from cvactive.errors import ConfigError, EmptyPoolError
from cvactive.selection import (
    Pool,
    SelectionWarning,
    available_strategies,
    describe_strategies,
    get_strategy,
    select,
)
from cvactive.selection.synthetic import synthetic_records

STRATEGIES = available_strategies()
EMBEDDING_STRATEGIES = ["coreset", "cluster", "hybrid", "badge", "representative", "typiclust", "probcover"]


@pytest.fixture(scope="module")
def records():
    """Synthetic scored records with the predicted errors of a real error model (for ``learned_error``)."""
    from cvactive.errormodel import fit_error_model
    from cvactive.errormodel.synthetic import synthetic_truth

    model = fit_error_model(synthetic_truth(synthetic_records(80, rng=11), rng=1), folds=0)
    return model.attach(synthetic_records(120, rng=3))


@pytest.fixture(scope="module")
def pool(records):
    return Pool.from_records(records)


def test_registry_lists_every_strategy_of_the_issue():
    expected = {
        "random",
        "uncertainty",
        "coreset",
        "cluster",
        "hybrid",
        "badge",
        "class_balanced",
        "representative",
        "stratified",
        "outlier",
        "learned_error",
        "typiclust",
        "probcover",
        "uniform_time",
    }
    assert set(STRATEGIES) == expected
    assert all(len(text) > 20 and "\n" not in text for text in describe_strategies().values())


def test_unknown_strategy_lists_the_valid_names():
    with pytest.raises(ConfigError, match="valid strategies: random, uncertainty, coreset"):
        get_strategy("entropy-ish")


@pytest.mark.parametrize("name", STRATEGIES)
class TestContract:
    def test_k_distinct_unlabeled_picks_with_utilities(self, name, records):
        labeled = records[:30]
        idx, util = get_strategy(name)(records, 25, labeled=labeled, rng=0, return_utilities=True)
        assert idx.dtype == np.int64 and idx.shape == (25,)
        assert len(set(idx.tolist())) == 25
        assert idx.min() >= 30  # the first 30 records are the labeled ones
        assert util.shape == (25,) and np.all(np.isfinite(util))

    def test_labeled_as_indices_mask_or_pool(self, name, pool):
        mask = np.zeros(len(pool), bool)
        mask[::2] = True
        a = select(pool, 10, name, labeled=np.flatnonzero(mask), rng=1)[0]
        b = select(pool, 10, name, labeled=mask, rng=1)[0]
        assert np.array_equal(a, b)
        assert not mask[a].any()

    def test_deterministic_for_a_seed(self, name, pool):
        a, ua = select(pool, 15, name, rng=7)
        b, ub = select(pool, 15, name, rng=np.random.default_rng(7))
        assert np.array_equal(a, b) and np.allclose(ua, ub)

    def test_k_larger_than_the_pool_returns_all_with_a_warning(self, name, pool):
        labeled = np.arange(100)
        with pytest.warns(SelectionWarning, match="k=50 is larger than the 20 unlabeled pool items"):
            idx = select(pool, 50, name, labeled=labeled, rng=0)[0]
        assert sorted(idx.tolist()) == list(range(100, 120))

    def test_empty_pool_is_a_clear_error(self, name):
        with pytest.raises(EmptyPoolError, match="the pool is empty"):
            select([], 5, name)

    def test_fully_labeled_pool_is_a_clear_error(self, name, pool):
        with pytest.raises(EmptyPoolError, match="all 120 pool items are already labeled"):
            select(pool, 5, name, labeled=np.arange(len(pool)))

    def test_bad_k_and_unknown_option(self, name, pool):
        with pytest.raises(ConfigError, match="k must be a positive integer"):
            select(pool, 0, name)
        with pytest.raises(ConfigError, match="unknown option"):
            select(pool, 3, name, bogus=1)

    def test_single_candidate(self, name, pool):
        idx = select(pool, 1, name, labeled=np.arange(1, len(pool)), rng=0)[0]
        assert idx.tolist() == [0]


@pytest.mark.parametrize("name", EMBEDDING_STRATEGIES)
def test_missing_embeddings_names_score_embed(name):
    records = synthetic_records(20, rng=0, embeddings=False)
    with pytest.raises(ConfigError, match="cvactive score --embed"):
        select(records, 5, name)


def test_learned_error_without_predicted_errors_names_the_fix():
    with pytest.raises(ConfigError, match=r"no 'learned_box_errors' field; fit a predictor.*cvactive errors fit"):
        select(synthetic_records(20, rng=0), 5, "learned_error")


def test_the_registry_says_which_strategy_needs_an_error_model():
    assert [n for n in STRATEGIES if get_strategy(n).needs_error_model] == ["learned_error"]


def test_the_registry_says_which_strategies_take_the_temporal_window():
    """The diversity strategies (those that read embeddings) take ``temporal_window`` and ``order_key``."""
    temporal = [n for n in STRATEGIES if "temporal_window" in get_strategy(n).options]
    assert temporal == EMBEDDING_STRATEGIES
    assert [n for n in STRATEGIES if not get_strategy(n).needs_detections] == ["random", "uniform_time"]


@pytest.mark.parametrize("name", EMBEDDING_STRATEGIES)
def test_a_temporal_window_keeps_the_contract(name, pool):
    """With a window the picks stay k distinct unlabeled items, deterministic for a seed."""
    labeled = np.arange(0, 120, 10)
    a, ua = select(pool, 12, name, labeled=labeled, rng=5, temporal_window=1)
    b, _ = select(pool, 12, name, labeled=labeled, rng=5, temporal_window=1)
    assert np.array_equal(a, b) and len(set(a.tolist())) == 12 and not np.isin(a, labeled).any()
    assert np.all(np.isfinite(ua))


def test_unknown_score_lists_the_fields(pool):
    with pytest.raises(ConfigError, match=r"unknown field 'entropy_median'.*entropy_max"):
        select(pool, 5, "uncertainty", score="entropy_median")


def test_identical_embeddings_still_give_distinct_picks():
    pool = Pool.from_arrays(embeddings=np.ones((30, 4)), fields={"entropy_max": np.full(30, 0.5)})
    for name in EMBEDDING_STRATEGIES:
        idx = select(pool, 12, name, rng=0)[0]
        assert len(set(idx.tolist())) == 12, name


def test_labeled_records_outside_the_pool_still_count(records):
    """Labeled items that are not in the pool shape coreset's distances but exclude nothing."""
    pool, outside = records[:60], synthetic_records(10, rng=9, prefix="lab", dim=16)
    a = select(pool, 5, "coreset", labeled=outside, rng=0)[0]
    b = select(pool, 5, "coreset", rng=0)[0]
    assert len(a) == 5 and not np.array_equal(a, b)


def test_every_copy_of_a_labeled_key_is_excluded(records):
    pool = [*records[:10], records[3]]  # the same frame scored twice
    idx = select(pool, 9, "uncertainty", labeled=[records[3]], rng=0)[0]
    assert 3 not in idx.tolist() and 10 not in idx.tolist()


@pytest.mark.parametrize("name", ["random", "uncertainty", "class_balanced", "stratified", "outlier", "uniform_time"])
def test_strategies_without_embeddings_run_on_records_without_them(name):
    records = synthetic_records(40, rng=2, embeddings=False)
    idx = select(records, 7, name, labeled=records[:5], rng=0)[0]
    assert len(set(idx.tolist())) == 7 and idx.min() >= 5


def test_a_field_some_records_lack_is_a_clear_error():
    records = synthetic_records(12, rng=0)
    for rec in records[:8]:
        rec.extra["brightness"] = 0.5
    with pytest.raises(ConfigError, match="field 'brightness' is missing or not finite for 4 of 12 items"):
        select(records, 3, "stratified", field="brightness")


def test_labeled_embeddings_of_another_model_are_refused(records):
    from cvactive.errors import RecordError

    other = synthetic_records(3, rng=0, dim=8, prefix="other")
    with pytest.raises(RecordError, match="labeled embeddings have 8 dimensions, the pool's 16"):
        select(records, 3, "coreset", labeled=other)


def test_rng_must_be_a_seed_or_a_generator(pool):
    with pytest.raises(ConfigError, match="rng must be an int seed"):
        select(pool, 3, "random", rng="seven")  # type: ignore[arg-type]


def test_a_broken_plugin_strategy_cannot_return_duplicates(pool):
    from cvactive.selection import STRATEGIES, register

    @register("twice", "a broken plug-in that returns the same item twice")
    def twice(ctx, k):
        return np.zeros(k, np.int64), np.zeros(k)

    try:
        with pytest.raises(RuntimeError, match="returned 3 picks \\(1 distinct\\)"):
            select(pool, 3, "twice")
        with pytest.raises(ConfigError, match="already registered"):
            register("twice", "again")(twice)
    finally:
        del STRATEGIES["twice"]
