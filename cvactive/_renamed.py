"""Old names that still work for one release: command-line flags, config keys, keyword arguments.

cvactive uses one name per concept on the command line, in config files and in Python
(:data:`NAMES`, printed in docs/config-reference.md). An old name keeps working until the next
release and raises a :class:`RenamedWarning` (one line naming the old and the new name); the
command line prints it as one line on stderr.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

from cvactive.errors import ConfigError

P = ParamSpec("P")
R = TypeVar("R")

#: The naming rule, as docs/config-reference.md states it (markdown).
NAMES = """\
- `k`: how many items a command picks or makes: `cvactive select --k`, `cvactive synthesize --k`
  (was `--n`), `synthesize(k=...)` (was `n=`). `n` is the size of a pool. A loop study's
  `budget` (labels added per round) is the `k` of each round's selection; `initial` and
  `budget` keep the names of the study's parameters.
- `seed`: the integer that makes a run repeatable: every `--seed` flag and `seed:` config key
  (`select.yaml` and `health.yaml` said `rng:`), and the keyword argument of the functions those
  configs feed: `check_health(seed=...)` / `analyse(seed=...)` (was `rng=`), `synthesize(seed=...)`,
  `harvest(seed=...)`. `rng` remains the lower-level Python argument that takes a seed *or* a
  `numpy.random.Generator`: `select(..., rng=...)` and every selection strategy (their shared
  contract: records, k, labeled, rng), the k-center and k-means kernels, the calibration and
  export splits, MC dropout.
- `stride`: keep every `stride`-th video frame: `cvactive score --stride`, `score_source(stride=...)`,
  the video shards of `--engine ray`, the harvest config's `stride:` and `harvest(stride=...)`
  (both were `frame_stride`).

An old name still works, with a one-line warning (`RenamedWarning`, a `FutureWarning`), until the
next release."""


class RenamedWarning(FutureWarning):
    """An old flag, config key or keyword argument was used; the message names its new name.

    A :class:`FutureWarning` (shown by default): whoever wrote the old name, in a shell, a
    config file or a script, is the one who should see it.
    """


def warn_renamed(what: str, old: str, new: str, where: str = "", *, stacklevel: int = 2) -> None:
    """Warn, in one line, that ``old`` (a ``what``: flag, config key, keyword argument) is now ``new``."""
    prefix = f"{where}: " if where else ""
    warnings.warn(
        f"{prefix}{what} {old!r} is renamed {new!r}; the old name works until the next release",
        RenamedWarning,
        stacklevel=stacklevel + 1,
    )


def rename_keys(options: Mapping[str, Any], renames: Mapping[str, str], where: str) -> dict[str, Any]:
    """``options`` with every old key under its new name (same order), one warning per old key.

    Raises:
        ConfigError: both the old and the new name are given.
    """
    out: dict[str, Any] = {}
    for key, value in options.items():
        new = renames.get(key) if isinstance(key, str) else None
        if new is None:
            out[key] = value
            continue
        if new in options:
            raise ConfigError(f"{where}: both {key!r} and {new!r} given; keep {new!r} only ({key!r} is its old name)")
        warn_renamed("config key", key, new, where, stacklevel=3)
        out[new] = value
    return out


def renamed_kwargs(**renames: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function so that its old keyword names (``old="new"``) still work, with a warning.

    The decorated function keeps its signature (``inspect.signature`` shows the new names only).
    """

    def wrap(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            for old, new in renames.items():
                if old not in kwargs:
                    continue
                if new in kwargs:
                    raise ConfigError(
                        f"{func.__name__}(): both {old}= and {new}= given; pass {new}= only ({old} is its old name)"
                    )
                warn_renamed("keyword argument", old, new, f"{func.__name__}()", stacklevel=2)
                kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return call

    return wrap
