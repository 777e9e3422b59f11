"""Loading ``.pt`` checkpoints without running code from them: the one place cvactive decides how.

A ``.pt`` file is a pickle. Ultralytics loads it with ``torch.load(weights_only=False)``
(``ultralytics.utils.patches.torch_load``, reached from ``YOLO(pt)``, ``load_checkpoint``,
``torch_safe_load``, the trainer's ``pretrained`` / resume / ``strip_optimizer`` and the
validator), so a crafted file runs its code before anything checks it.

Inside :func:`checkpoint_loading`, every ``torch.load`` that the current thread makes, from
wherever it is called (Ultralytics' wrapper looks ``torch.load`` up at call time), goes through
:func:`_guarded_load` instead:

1. the file's pickle is scanned, without running it, for the globals it names
   (``torch.serialization.get_unsafe_globals_in_checkpoint``), and those on Ultralytics' own
   allow-list (``ultralytics.nn.tasks._SafeLoad``: torch and Ultralytics ``nn.Module`` classes,
   numpy scalars, its config namespace, paths) are registered;
2. the file is loaded with ``weights_only=True``: torch's restricted unpickler builds only
   tensors, containers, and the registered classes, and refuses anything else before calling it;
   model YAMLs rebuilt during the load take Ultralytics' no-``eval`` path;
3. a refusal is :class:`UntrustedCheckpointError` (a :class:`~cvactive.errors.ModelError`, so one
   line and exit 2 on the command line) naming the file and the global it wanted, and what to do.

Real Ultralytics checkpoints (the COCO one :mod:`cvactive.weights` rebuilds, one ``cvactive``
or Ultralytics trained, with its optimizer state) pass. With ``trust=True``
(``--trust-checkpoint``) a refused file is loaded the old way, after one warning line on stderr
saying that code inside it runs. Threads outside the context keep ``torch.load`` as it is.

The allow-list and ``_SafeLoad.loading`` are private Ultralytics API: guarded by
:mod:`cvactive._pins` (``ultralytics`` is pinned exactly).
"""

from __future__ import annotations

import contextlib
import pickle
import re
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cvactive._pins import require as require_pinned
from cvactive._ultralytics import private
from cvactive.errors import ModelError

TRUST_HINT = "pass --trust-checkpoint (trust_checkpoint=True) only if you trust where the file came from"


class UntrustedCheckpointError(ModelError):
    """A checkpoint would need more than weights to load: unpickling it could run its code."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


_local = threading.local()  # .trust: None outside any context, else this thread's innermost setting
_lock = threading.Lock()
_users = 0
_original: Callable[..., Any] | None = None


@contextlib.contextmanager
def checkpoint_loading(trust: bool = False) -> Iterator[None]:
    """A block in which this thread's ``torch.load`` calls load weights only (see the module docstring).

    Args:
        trust: on a refusal, warn (one line on stderr) and load the file with full unpickling
            instead of raising :class:`UntrustedCheckpointError`. Code in the file then runs. A
            block inside a trusting block trusts too (a command's ``--trust-checkpoint`` reaches
            every load it makes).
    """
    require_pinned("ultralytics")  # _SafeLoad is Ultralytics' private API
    _install()
    previous = getattr(_local, "trust", None)
    _local.trust = bool(trust) or bool(previous)  # an outer trusting block (a command's flag) holds inside
    try:
        yield
    finally:
        _local.trust = previous
        _uninstall()


def _install() -> None:
    global _users, _original
    import torch

    with _lock:
        if _users == 0:
            _original = torch.load
            torch.load = _guarded_load  # type: ignore[assignment]
        _users += 1


def _uninstall() -> None:
    global _users, _original
    import torch

    with _lock:
        _users -= 1
        if _users == 0 and _original is not None:
            torch.load = _original  # type: ignore[assignment]
            _original = None


def _guarded_load(f: Any, *args: Any, **kwargs: Any) -> Any:
    """``torch.load`` inside :func:`checkpoint_loading`: weights only, unless this thread trusts."""
    original = _original
    assert original is not None, "the guard is installed only while a context holds the original"
    trust = getattr(_local, "trust", None)
    if trust is None:  # a thread outside any context: torch.load as it was
        return original(f, *args, **kwargs)
    kwargs.pop("weights_only", None)
    try:
        return _weights_only(original, f, args, kwargs)
    except UntrustedCheckpointError as err:
        if not trust:
            raise
        print(
            f"cvactive: {_name(f)} loaded with full unpickling (--trust-checkpoint): code inside the file runs "
            f"({err.reason})",
            file=sys.stderr,
        )
        return original(f, *args, weights_only=False, **kwargs)


def _weights_only(original: Callable[..., Any], f: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    safe_load = private("ultralytics.nn.tasks")._SafeLoad
    try:
        with warnings.catch_warnings():
            # torch notes every pickle protocol it did not write; the refusal (if any) says what matters
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            with safe_load.loading(f):
                return original(f, *args, weights_only=True, **kwargs)
    except pickle.UnpicklingError as err:
        raise _refusal(f, _reason(str(err))) from None
    except ModuleNotFoundError as err:  # a module named by the file: never imported or installed for it
        raise _refusal(f, f"it names the missing module {err.name!r}") from None


def _refusal(f: Any, reason: str) -> UntrustedCheckpointError:
    return UntrustedCheckpointError(
        f"refused to load checkpoint {_name(f)!r}: {reason} (unpickling it could run code from the file); {TRUST_HINT}",
        reason,
    )


def _reason(message: str) -> str:
    """What torch's restricted unpickler refused, in a few words."""
    found = re.search(r"GLOBAL ([\w.]+)", message)
    if found:
        return f"it needs {found.group(1)}, which is not on the allow-list of Ultralytics and torch model classes"
    _, _, detail = message.partition("WeightsUnpickler error:")
    lines = [line.strip() for line in detail.splitlines() if line.strip()]
    return f"its pickle uses what weights-only loading refuses ({lines[0][:120] if lines else 'unknown'})"


def _name(f: Any) -> str:
    return str(f) if isinstance(f, (str, Path)) else str(getattr(f, "name", "<stream>"))
