"""Pool selection: which images or frames a person should label next.

One contract for every strategy (:mod:`cvactive.selection.base`), a registry looked up by
name, vectorised chunked kernels (:mod:`cvactive.selection.kernels`) and the built-in
strategies (:mod:`cvactive.selection.strategies`)::

    from cvactive.selection import select, available_strategies
    indices, utilities = select(records, k=100, strategy="hybrid", labeled=labeled_records, rng=0)

Pure numpy: importing this package needs neither torch nor ultralytics.
"""

from cvactive.selection import budget as _budget  # noqa: F401  (typiclust, probcover, uniform_time)
from cvactive.selection import strategies as _strategies  # noqa: F401  (registers the built-ins)
from cvactive.selection.base import (
    STRATEGIES,
    Context,
    SelectionWarning,
    Strategy,
    available_strategies,
    describe_strategies,
    get_strategy,
    register,
    select,
)
from cvactive.selection.pool import LabeledSet, Pool, resolve_labeled

__all__ = [
    "STRATEGIES",
    "Context",
    "LabeledSet",
    "Pool",
    "SelectionWarning",
    "Strategy",
    "available_strategies",
    "describe_strategies",
    "get_strategy",
    "register",
    "resolve_labeled",
    "select",
]
