"""In-memory images and list sources: which items a source holds and an in-memory image as BGR.

:func:`cvactive.sources.iter_frames` reads a list source item by item (:func:`source_items`),
a path through the file readers and an in-memory image through :func:`as_image`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from cvactive.errors import SourceError


def is_path_like(source: Any) -> bool:
    """A path or pattern (``str`` or ``os.PathLike``), as opposed to an in-memory image or a list."""
    return isinstance(source, (str, os.PathLike))


def source_items(source: Any) -> list[Any]:
    """The items of a list source; a single source as a one-item list.

    A ``(B, H, W, C)`` array counts as ``B`` images. An empty list is a :class:`SourceError`.
    """
    if is_path_like(source):
        return [source]
    if isinstance(source, np.ndarray):
        return list(source) if source.ndim == 4 else [source]
    if isinstance(source, (list, tuple)):
        if not source:
            raise SourceError("the source list is empty")
        return [
            i for item in source for i in (list(item) if isinstance(item, np.ndarray) and item.ndim == 4 else [item])
        ]
    return [source]  # a PIL image or another single object: as_image() decides


def _is_stack(item: Any) -> bool:
    return isinstance(item, np.ndarray) and item.ndim == 4


def as_image(obj: Any, where: str = "image") -> np.ndarray:
    """An in-memory image as BGR ``uint8`` ``(H, W, 3)``, the convention of OpenCV and Ultralytics.

    A numpy array is taken as BGR (as ``cv2.imread`` gives it), ``(H, W)`` as greyscale and
    ``(H, W, 4)`` as BGRA; a PIL image is RGB and is converted. Anything else is a
    :class:`SourceError` saying what was given.
    """
    import cv2

    if not isinstance(obj, np.ndarray) and hasattr(obj, "convert") and hasattr(obj, "size"):  # a PIL image
        return np.ascontiguousarray(np.asarray(obj.convert("RGB"))[:, :, ::-1])
    if not isinstance(obj, np.ndarray):
        raise SourceError(
            f"{where}: cannot read a {type(obj).__name__}; give a path, a folder, a glob pattern, a video, "
            "a BGR uint8 numpy array, a PIL image, or a list of these"
        )
    if obj.dtype != np.uint8:
        raise SourceError(f"{where}: images must be uint8 arrays (0-255), got dtype {obj.dtype}")
    if obj.ndim == 2 or (obj.ndim == 3 and obj.shape[2] == 1):
        return cv2.cvtColor(np.ascontiguousarray(obj.reshape(obj.shape[:2])), cv2.COLOR_GRAY2BGR)
    if obj.ndim == 3 and obj.shape[2] == 4:
        return cv2.cvtColor(np.ascontiguousarray(obj), cv2.COLOR_BGRA2BGR)
    if obj.ndim != 3 or obj.shape[2] != 3 or min(obj.shape[:2]) < 1:
        raise SourceError(f"{where}: expected an image array (H, W, 3), (H, W) or (B, H, W, 3), got shape {obj.shape}")
    return np.ascontiguousarray(obj)
