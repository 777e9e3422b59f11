"""The error predictor's estimators: scikit-learn classifiers and count regressors, fitted and
asked on one thread, or a constant when an outcome has too few examples to fit one."""

from __future__ import annotations

from typing import Any

import numpy as np

from cvactive.errormodel.portable import ConstantCount, ConstantProbability

MIN_PER_CLASS = 5  # fewer examples of an outcome than this: a constant, not a fitted model


def one_thread() -> Any:
    """A context in which scikit-learn's OpenMP and BLAS use one thread.

    The models are small (hundreds to thousands of rows): threads gain nothing, and on a
    machine whose cores are busy (a training run beside it) OpenMP's spinning workers make a
    gradient-boosting fit 30x slower.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def fit_classifier(kind: str, x: np.ndarray, y: np.ndarray, seed: int) -> tuple[Any, str]:
    """A ``kind`` classifier fitted to ``(n, F)`` rows and 0/1 outcomes ``y`` (a constant when an
    outcome has too few examples), and a note saying which."""
    pos = int(y.sum())
    if min(pos, y.size - pos) < MIN_PER_CLASS:
        return ConstantProbability((pos + 1) / (y.size + 2)), f"constant ({pos} of {y.size} positive)"
    if kind == "boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier

        est: Any = HistGradientBoostingClassifier(
            learning_rate=0.05,
            max_iter=150,
            max_leaf_nodes=8,
            min_samples_leaf=10,
            l2_regularization=1.0,
            early_stopping=False,
            random_state=seed,
        )
    else:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        est = make_pipeline(StandardScaler(), LogisticRegression(C=0.3, max_iter=5000))
    with one_thread():
        est.fit(x, y)
    return est, f"{kind} ({pos} of {y.size} positive)"


def fit_regressor(kind: str, x: np.ndarray, y: np.ndarray, seed: int) -> tuple[Any, str]:
    """A ``kind`` Poisson count regressor fitted to ``(n, F)`` rows and counts ``y`` (a constant when
    too few are positive), and a note saying which."""
    if int((y > 0).sum()) < MIN_PER_CLASS:
        return ConstantCount(float(y.sum()) / max(y.size, 1)), f"constant ({int(y.sum())} in {y.size} images)"
    if kind == "boosting":
        from sklearn.ensemble import HistGradientBoostingRegressor

        est: Any = HistGradientBoostingRegressor(
            loss="poisson",
            learning_rate=0.05,
            max_iter=100,
            max_leaf_nodes=4,
            min_samples_leaf=10,
            l2_regularization=1.0,
            early_stopping=False,
            random_state=seed,
        )
    else:
        from sklearn.linear_model import PoissonRegressor
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        est = make_pipeline(StandardScaler(), PoissonRegressor(alpha=1.0, max_iter=1000))
    with one_thread():
        est.fit(x, y)
    return est, f"{kind} poisson ({int(y.sum())} in {y.size} images)"


def probabilities(est: Any, x: np.ndarray) -> np.ndarray:
    """``(n,)`` P(positive) of a fitted classifier for ``(n, F)`` rows (one thread)."""
    if not len(x):
        return np.zeros(0)
    with one_thread():
        return np.asarray(est.predict_proba(x)[:, 1], np.float64)


def expected_counts(est: Any, x: np.ndarray) -> np.ndarray:
    """``(n,)`` non-negative predictions of a fitted count regressor for ``(n, F)`` rows (one thread)."""
    if not len(x):
        return np.zeros(0)
    with one_thread():
        return np.clip(np.asarray(est.predict(x), np.float64), 0.0, None)
