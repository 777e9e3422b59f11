"""Frame order: where each pool item sits in its video or flight.

:func:`frame_order` reads, for every item of a :class:`~cvactive.selection.pool.Pool`, its
sequence (a video or a flight) and its position in it, from its record or from an ``order_key``
the user gives; ``uniform_time`` and the temporal window use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from cvactive.errors import ConfigError
from cvactive.selection.pool import Pool

#: The default order of an image folder: the last number of the file name is the frame index and
#: the name without it is the sequence (``flight3_000120.jpg`` -> sequence ``flight3_.jpg``, 120).
LAST_NUMBER = r"(?P<frame>\d+)(?=\D*$)"
#: An ``order_key`` that names fields (``FRAME`` or ``SEQ:FRAME``); anything else is a regular expression.
FIELD_SPEC = re.compile(r"[\w.-]+(:[\w.-]+)?")


@dataclass(eq=False)
class FrameOrder:
    """Each pool item's sequence (a video or a flight) and its position in it.

    Attributes:
        sequence: ``(N,)`` int64 sequence id of every item (ids follow the names' sort order).
        position: ``(N,)`` float64 frame index (or seconds) of every item within its sequence.
        names: sequence id -> its name (a video's source, or a file name without its frame number).
        unit: what a position counts: ``"frame"`` or ``"seconds"`` (a window is in this unit).
    """

    sequence: np.ndarray
    position: np.ndarray
    names: list[str]
    unit: str = "frame"

    def timeline(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Positions into ``rows`` (all items when ``None``) sorted by sequence, then position, then row."""
        idx = np.arange(self.sequence.shape[0]) if rows is None else np.asarray(rows, np.int64)
        return np.lexsort((idx, self.position[idx], self.sequence[idx])).astype(np.int64)

    def near(self, item: int, window: float, rows: np.ndarray) -> np.ndarray:
        """``(len(rows),)`` bool: which ``rows`` lie in ``item``'s sequence within ``window`` of it."""
        return (self.sequence[rows] == self.sequence[item]) & (
            np.abs(self.position[rows] - self.position[item]) <= window
        )


def frame_order(pool: Pool, order_key: str | None = None) -> FrameOrder:
    """Where each pool item sits in time, from its record or from a key the user gives.

    ``order_key`` ``None``: a record with a ``frame`` index sits at that frame of its video (the
    sequence is its ``source``); one with only a ``timestamp`` at that time in seconds; any other
    (a still image) at the last number of its file name. Items without a frame index belong to the
    sequence named by their key without that number (no number: a sequence of their own).
    ``order_key`` a regular expression with a named group ``frame`` (and optionally ``seq``):
    searched in every item's key; the frame group is the position and the ``seq`` group the
    sequence (without one, the key with the frame digits removed). An ``order_key`` of word
    characters, ``"FRAME"`` or ``"SEQ:FRAME"``, names numeric pool fields instead (record fields
    such as a manifest's flight id and frame index).

    Raises:
        ConfigError: a bad expression, a key it does not match, or an unknown or incomplete field.
    """
    n = len(pool)
    keys = [str(k) for k in pool.keys.tolist()]
    if order_key is None:
        return _default_order(pool, keys)
    if not isinstance(order_key, str) or not order_key.strip():
        raise ConfigError(f"order_key must be a regular expression or field name(s), got {order_key!r}")
    if not FIELD_SPEC.fullmatch(order_key.strip()):
        return _regex_order(keys, order_key)
    seq_field, _, frame_field = order_key.rpartition(":")
    position = pool.field(frame_field.strip())
    if seq_field:
        seq_values = pool.field(seq_field.strip())
        names = [f"{seq_field}={v:g}" for v in seq_values.tolist()]
    else:
        names = [""] * n
    return _order(names, position, "frame")


def _default_order(pool: Pool, keys: list[str]) -> FrameOrder:
    n = len(keys)
    frame = pool.fields.get("frame")
    stamp = pool.fields.get("timestamp")
    frame = np.full(n, np.nan) if frame is None else np.asarray(frame, np.float64)
    stamp = np.full(n, np.nan) if stamp is None else np.asarray(stamp, np.float64)
    has_frame, has_stamp = np.isfinite(frame), np.isfinite(stamp)
    pattern = re.compile(LAST_NUMBER)
    names: list[str] = []
    position = np.zeros(n, np.float64)
    for i, key in enumerate(keys):
        if has_frame[i]:
            names.append(key.rsplit("#", 1)[0])
            position[i] = frame[i]
            continue
        cut = len(key) - len(key.rsplit("/", 1)[-1])  # only the file name, never a folder's digits
        m = pattern.search(key, cut)
        names.append(key if m is None else key[: m.start("frame")] + key[m.end("frame") :])
        if has_stamp[i]:
            position[i] = stamp[i]
        elif m is not None:
            position[i] = float(m.group("frame"))
    # Positions count seconds only when every item has a timestamp and none a frame index.
    unit = "seconds" if n and has_stamp.all() and not has_frame.any() else "frame"
    return _order(names, position, unit)


def _regex_order(keys: list[str], expression: str) -> FrameOrder:
    try:
        pattern = re.compile(expression)
    except re.error as err:
        raise ConfigError(f"order_key {expression!r} is not a valid regular expression: {err}") from err
    if "frame" not in pattern.groupindex:
        raise ConfigError(f"order_key {expression!r} needs a named group (?P<frame>...) holding the frame number")
    names: list[str] = []
    position = np.zeros(len(keys), np.float64)
    unmatched = []
    for i, key in enumerate(keys):
        m = pattern.search(key)
        value = None if m is None else m.group("frame")
        try:
            position[i] = float(value) if value is not None else np.nan
        except ValueError:
            position[i] = np.nan
        if m is None or not np.isfinite(position[i]):
            unmatched.append(key)
            continue
        seq = m.groupdict().get("seq")
        names.append(seq if seq is not None else key[: m.start("frame")] + key[m.end("frame") :])
    if unmatched:
        raise ConfigError(
            f"order_key {expression!r} finds no numeric frame in {len(unmatched)} of {len(keys)} item keys, "
            f"e.g. {unmatched[0]!r}"
        )
    return _order(names, position, "frame")


def _order(names: list[str], position: np.ndarray, unit: str) -> FrameOrder:
    unique, sequence = np.unique(np.asarray(names, dtype=object), return_inverse=True)
    return FrameOrder(sequence.astype(np.int64).reshape(-1), position, [str(u) for u in unique.tolist()], unit)
