"""Block helpers under the selection kernels: matrices read in float32 row blocks.

:mod:`cvactive.selection.kernels` and :mod:`cvactive.selection.cover` both stream an ``(N, D)``
matrix (float32, float16 or a read-only memmap) block by block; the helpers they share live
here, below both, so neither imports the other's helpers. Pure numpy.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: Most numbers in one temporary distance block (4M float32 = 16 MB).
DEFAULT_BLOCK = 1 << 22


def as_f32(x: npt.ArrayLike) -> F32:
    """``x`` as a C-contiguous float32 matrix (no copy when it already is one)."""
    return np.ascontiguousarray(x, dtype=np.float32)


#: Rows per block when a kernel streams a matrix it must convert (float16, memmaps).
STREAM_ROWS = 1 << 15


def row_blocks(n: int, step: int = STREAM_ROWS) -> range:
    """Start offsets of ``step``-row blocks over ``n`` rows."""
    return range(0, n, max(1, step))


def block_f32(x: np.ndarray, start: int, stop: int) -> F32:
    """Rows ``start:stop`` of ``x`` as float32 (a view when they already are)."""
    return np.asarray(x[start:stop], dtype=np.float32)


def row_sq_norms(x: np.ndarray) -> F32:
    """``(N,)`` squared L2 norm of each row (float32; streamed block by block)."""
    out = np.empty(x.shape[0], np.float32)
    for s in row_blocks(x.shape[0]):
        b = block_f32(x, s, s + STREAM_ROWS)
        out[s : s + b.shape[0]] = np.einsum("ij,ij->i", b, b)
    return out


def dots_with(x: np.ndarray, c: F32) -> F32:
    """``(N,)`` float32 ``x @ c``, streamed in float32 blocks when ``x`` is not float32."""
    if x.dtype == np.float32:
        return np.einsum("ij,j->i", x, c)
    out = np.empty(x.shape[0], np.float32)
    for s in row_blocks(x.shape[0]):
        b = block_f32(x, s, s + STREAM_ROWS)
        out[s : s + b.shape[0]] = np.einsum("ij,j->i", b, c)
    return out
