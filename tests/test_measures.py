import numpy as np
import pytest

from cvactive import measures as M
from cvactive.errors import ConfigError, MissingClassScoresError

MUNRO = np.array([[0.0321, 0.6439, 0.0871, 0.2369]])


@pytest.mark.parametrize(
    ("func", "expected"),
    [(M.entropy, 0.6835), (M.least_confidence, 0.4748), (M.margin, 0.5930), (M.ratio, 0.3679)],
)
def test_munro_reference_values(func, expected):
    assert func(MUNRO)[0] == pytest.approx(expected, abs=1e-3)


def test_measures_are_scale_free_for_sigmoid_rows():
    # Independent sigmoids do not sum to one; the class measures read the normalised row.
    for func in (M.entropy, M.least_confidence, M.margin, M.ratio):
        assert func(MUNRO * 0.5)[0] == pytest.approx(func(MUNRO)[0])


def test_extremes(rng):
    one_hot = np.eye(5)[[0, 3]]
    uniform = np.full((2, 5), 0.3)
    for func in (M.entropy, M.least_confidence, M.margin, M.ratio):
        np.testing.assert_allclose(func(one_hot), 0.0, atol=1e-9)
        np.testing.assert_allclose(func(uniform), 1.0, atol=1e-9)
        values = func(rng.random((100, 80)))
        assert values.shape == (100,) and np.all((values >= 0) & (values <= 1))
    np.testing.assert_allclose(M.entropy(np.zeros((1, 4))), 1.0)  # no class fires: uniform


def test_binary_entropy_and_threshold_closeness():
    s = np.array([0.0, 0.5, 1.0, 0.25])
    np.testing.assert_allclose(M.binary_entropy(s), [0, 1, 0, 0.811278], atol=1e-5)
    np.testing.assert_allclose(M.threshold_closeness(s, 0.5), [0, 1, 0, 0.5])
    assert M.threshold_closeness(np.array([0.3]), 0.3)[0] == pytest.approx(1.0)
    with pytest.raises(ConfigError):
        M.threshold_closeness(s, 1.5)


def test_box_measures_refuses_vector_measures_without_class_scores():
    conf = np.array([0.4, 0.9])
    out = M.box_measures(None, conf, ["binary_entropy", "threshold_closeness"])
    assert set(out) == {"binary_entropy", "threshold_closeness"}
    with pytest.raises(MissingClassScoresError, match="entropy"):
        M.box_measures(None, conf, ["entropy"])


def test_aggregations():
    s = np.array([0.1, 0.9, 0.5, 0.7])
    assert M.aggregate(s, "max") == pytest.approx(0.9)
    assert M.aggregate(s, "mean") == pytest.approx(0.55)
    assert M.aggregate(s, "sum") == pytest.approx(2.2)
    assert M.aggregate(s, "topk", k=2) == pytest.approx(0.8)
    assert M.aggregate(s, "topk", k=10) == pytest.approx(0.55)
    assert M.aggregate(s, "count", band=(0.5, 0.8)) == 2
    for how in M.AGGREGATIONS:
        assert M.aggregate(np.array([]), how, if_empty=0.42) == pytest.approx(0.42)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ConfigError, match="valid aggregations: max, mean"):
        M.aggregate(np.ones(2), "median")
    with pytest.raises(ConfigError, match="least_confidence"):
        M.box_measures(MUNRO, np.array([0.6]), ["bald"])


def test_image_scores_names_every_pair():
    per_box = M.box_measures(MUNRO, MUNRO.max(1))
    scores = M.image_scores(per_box)
    assert set(scores) == {f"{m}_{a}" for m in M.MEASURES for a in M.AGGREGATIONS}
