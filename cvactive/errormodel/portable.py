"""The fitted parts of an error model as plain arrays: saved without pickle, predicted with numpy.

A fitted scikit-learn model is a Python object; writing it with pickle means reading it back
runs whatever the file says. So :meth:`~cvactive.errormodel.model.ErrorModel.save` keeps only
numbers: :func:`to_arrays` turns each part into a small JSON description and named arrays, and
:func:`from_arrays` rebuilds a predictor that computes what scikit-learn computed, in numpy:

* :class:`TreeEnsemble`: a histogram gradient-boosting model (``HistGradientBoostingClassifier``
  for a probability, ``HistGradientBoostingRegressor(loss="poisson")`` for a count): the baseline
  plus each tree's leaf value, summed in scikit-learn's order, through the inverse link;
* :class:`LinearModel`: ``StandardScaler`` then ``LogisticRegression`` or ``PoissonRegressor``;
* :class:`ConstantProbability` / :class:`ConstantCount`: the stand-ins for too few examples.

Every array is checked when read (shape, dtype, node indices in range), so a damaged or hostile
file is refused with one line instead of failing mid-prediction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cvactive.errors import ConfigError

LINKS = ("logit", "log")


def _inverse(link: str, raw: np.ndarray) -> np.ndarray:
    if link == "logit":
        from scipy.special import expit

        return np.asarray(expit(raw), np.float64)
    return np.exp(raw)


class ConstantProbability:
    """A stand-in classifier that gives every row the same probability."""

    def __init__(self, p: float) -> None:
        self.p = float(p)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.column_stack([np.full(len(x), 1 - self.p), np.full(len(x), self.p)])


class ConstantCount:
    """A stand-in regressor that gives every row the same expected count."""

    def __init__(self, mu: float) -> None:
        self.mu = float(mu)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.full(len(x), self.mu)


class _Predictor:
    """``predict_proba`` (link ``logit``) or ``predict`` (link ``log``) from :meth:`raw`."""

    link: str

    def raw(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        p = _inverse("logit", self.raw(np.asarray(x, np.float64)))
        return np.column_stack([1 - p, p])

    def predict(self, x: np.ndarray) -> np.ndarray:
        return _inverse(self.link, self.raw(np.asarray(x, np.float64)))


class TreeEnsemble(_Predictor):
    """Gradient-boosted trees as flat node arrays (``offsets[t]:offsets[t+1]`` are tree ``t``'s nodes).

    A row goes left at a node when its feature is ``<= threshold``, or is NaN and ``missing_left``;
    child indices are local to the tree, as in scikit-learn's ``TreePredictor``.
    """

    FIELDS = ("offsets", "feature", "threshold", "missing_left", "left", "right", "is_leaf", "value")

    def __init__(self, link: str, baseline: float, arrays: dict[str, np.ndarray]) -> None:
        self.link, self.baseline = link, float(baseline)
        self.offsets = arrays["offsets"].astype(np.int64)
        self.feature = arrays["feature"].astype(np.int64)
        self.threshold = arrays["threshold"].astype(np.float64)
        self.missing_left = arrays["missing_left"].astype(bool)
        self.left = arrays["left"].astype(np.int64)
        self.right = arrays["right"].astype(np.int64)
        self.is_leaf = arrays["is_leaf"].astype(bool)
        self.value = arrays["value"].astype(np.float64)

    @classmethod
    def from_sklearn(cls, est: Any, link: str) -> TreeEnsemble:
        if int(est.n_trees_per_iteration_) != 1:
            raise ConfigError("only binary classifiers and single-output regressors can be saved")
        nodes = [p.nodes for (p,) in est._predictors]
        if any(bool(n["is_categorical"].any()) for n in nodes):
            raise ConfigError("categorical splits cannot be saved (the error features are all numeric)")
        sizes = np.array([len(n) for n in nodes], np.int64)
        cat = np.concatenate(nodes) if nodes else np.zeros(0, nodes_dtype())
        arrays = {
            "offsets": np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            "feature": cat["feature_idx"].astype(np.int64),
            "threshold": cat["num_threshold"].astype(np.float64),
            "missing_left": cat["missing_go_to_left"].astype(bool),
            "left": cat["left"].astype(np.int64),
            "right": cat["right"].astype(np.int64),
            "is_leaf": cat["is_leaf"].astype(bool),
            "value": cat["value"].astype(np.float64),
        }
        return cls(link, float(np.asarray(est._baseline_prediction).ravel()[0]), arrays)

    def arrays(self) -> dict[str, np.ndarray]:
        return {f: getattr(self, f) for f in self.FIELDS}

    def check(self, features: int) -> None:
        """Raise ``ValueError`` unless the arrays describe well-formed trees over ``features`` columns."""
        n = len(self.feature)
        if any(len(getattr(self, f)) != n for f in self.FIELDS[1:]):
            raise ValueError("node arrays of different lengths")
        off = self.offsets
        if len(off) < 1 or off[0] != 0 or off[-1] != n or np.any(np.diff(off) < 1):
            raise ValueError("bad tree offsets")
        inner = ~self.is_leaf
        if np.any(self.feature[inner] < 0) or np.any(self.feature[inner] >= features):
            raise ValueError(f"a split on a feature outside 0..{features - 1}")
        sizes = np.repeat(np.diff(off), np.diff(off))
        local = np.arange(n) - np.repeat(off[:-1], np.diff(off))
        for child in (self.left[inner], self.right[inner]):
            # children lie in their own tree, after their parent (so every path ends at a leaf)
            if np.any(child <= local[inner]) or np.any(child >= sizes[inner]):
                raise ValueError("a child index outside its tree")
        if not (np.all(np.isfinite(self.value)) and np.isfinite(self.baseline)):
            raise ValueError("non-finite leaf values")

    def raw(self, x: np.ndarray) -> np.ndarray:
        rows = np.arange(len(x))
        out = np.full(len(x), self.baseline)
        for start in self.offsets[:-1]:
            node = np.zeros(len(x), np.int64)
            leaf = self.is_leaf[start + node]
            while not leaf.all():
                at = start + node
                v = x[rows, np.where(leaf, 0, self.feature[at])]
                left = np.where(np.isnan(v), self.missing_left[at], v <= self.threshold[at])
                node = np.where(leaf, node, np.where(left, self.left[at], self.right[at]))
                leaf = self.is_leaf[start + node]
            out += self.value[start + node]
        return out


def nodes_dtype() -> Any:
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    return PREDICTOR_RECORD_DTYPE


class LinearModel(_Predictor):
    """Standardised features, then a linear predictor through the inverse ``link``."""

    FIELDS = ("mean", "scale", "coef", "intercept")

    def __init__(self, link: str, arrays: dict[str, np.ndarray]) -> None:
        self.link = link
        self.mean = arrays["mean"].astype(np.float64)
        self.scale = arrays["scale"].astype(np.float64)
        self.coef = arrays["coef"].astype(np.float64)
        self.intercept = arrays["intercept"].astype(np.float64)

    @classmethod
    def from_sklearn(cls, est: Any, link: str) -> LinearModel:
        scaler, linear = est[0], est[-1]
        coef = np.asarray(linear.coef_, np.float64)
        if coef.ndim == 2 and coef.shape[0] != 1:
            raise ConfigError("only binary classifiers can be saved")
        arrays = {
            "mean": np.asarray(scaler.mean_, np.float64),
            "scale": np.asarray(scaler.scale_, np.float64),
            "coef": coef.reshape(-1),
            "intercept": np.asarray(linear.intercept_, np.float64).reshape(-1)[:1],
        }
        return cls(link, arrays)

    def arrays(self) -> dict[str, np.ndarray]:
        return {f: getattr(self, f) for f in self.FIELDS}

    def check(self, features: int) -> None:
        if any(getattr(self, f).shape != (features,) for f in ("mean", "scale", "coef")):
            raise ValueError(f"coefficients of another length than the {features} features")
        if self.intercept.shape != (1,):
            raise ValueError("not one intercept")
        if not all(np.all(np.isfinite(getattr(self, f))) for f in self.FIELDS) or np.any(self.scale == 0):
            raise ValueError("non-finite coefficients or a zero scale")

    def raw(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean) / self.scale
        if self.link == "logit":  # LogisticRegression.decision_function: X @ coef_.T + intercept_
            return np.asarray(z @ self.coef[None, :].T + self.intercept, np.float64).reshape(-1)
        return np.asarray(z @ self.coef + self.intercept[0], np.float64)  # PoissonRegressor: X @ coef_ + intercept_


def to_arrays(est: Any, link: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A fitted part as ``(description, arrays)``; the arrays hold every number the prediction needs."""
    if isinstance(est, (ConstantProbability, ConstantCount)):
        value = est.p if isinstance(est, ConstantProbability) else est.mu
        return {"type": "constant", "link": link, "value": float(value)}, {}
    if isinstance(est, (TreeEnsemble, LinearModel)):
        kind = "trees" if isinstance(est, TreeEnsemble) else "linear"
        meta: dict[str, Any] = {"type": kind, "link": est.link}
        if isinstance(est, TreeEnsemble):
            meta["baseline"] = est.baseline
        return meta, est.arrays()
    name = type(est).__name__
    if name.startswith("HistGradientBoosting"):
        return to_arrays(TreeEnsemble.from_sklearn(est, link), link)
    if name == "Pipeline":
        return to_arrays(LinearModel.from_sklearn(est, link), link)
    raise ConfigError(f"cannot save a {name} in an error model (boosting, logistic or constant parts only)")


def from_arrays(meta: Any, arrays: dict[str, np.ndarray], features: int) -> Any:
    """The predictor ``meta`` and ``arrays`` describe, checked against ``features`` columns.

    Raises:
        ValueError: the description or the arrays are not a well-formed part.
    """
    if not isinstance(meta, dict) or meta.get("link") not in LINKS:
        raise ValueError("a part with no valid description")
    kind, link = meta.get("type"), str(meta["link"])
    if kind == "constant":
        value = float(meta["value"])
        if not np.isfinite(value) or value < 0 or (link == "logit" and value > 1):
            raise ValueError("a constant out of range")
        return ConstantProbability(value) if link == "logit" else ConstantCount(value)
    fields = TreeEnsemble.FIELDS if kind == "trees" else LinearModel.FIELDS if kind == "linear" else None
    if fields is None:
        raise ValueError(f"unknown part type {kind!r}")
    missing = [f for f in fields if f not in arrays]
    if missing:
        raise ValueError(f"missing arrays {', '.join(missing)}")
    for f in fields:
        if arrays[f].ndim != 1 or arrays[f].dtype.kind not in "biuf":
            raise ValueError(f"array {f} is not a numeric vector")
    part: TreeEnsemble | LinearModel = (
        TreeEnsemble(link, float(meta["baseline"]), arrays) if kind == "trees" else LinearModel(link, arrays)
    )
    part.check(features)
    return part
