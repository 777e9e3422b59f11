"""Image-level helpers of synthesis: grey levels and a small cache of decoded parents (OpenCV)."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np

from cvactive.errors import SourceError
from cvactive.sources import read_image


def image_luma(path: Path) -> float:
    """Mean grey level (0-255) of an image file, decoded at a quarter of its size."""
    import cv2

    data = np.fromfile(str(path), np.uint8) if path.is_file() else np.zeros(0, np.uint8)
    gray = cv2.imdecode(data, cv2.IMREAD_REDUCED_GRAYSCALE_4) if data.size else None
    if gray is None:
        raise SourceError(f"{path}: not a readable image")
    return float(gray.mean())


def array_luma(image_rgb: np.ndarray) -> float:
    """Mean grey level (0-255) of an RGB image (the same weights OpenCV's decoder uses)."""
    import cv2

    return float(cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY).mean())


class ImageCache:
    """A few decoded RGB images, so parents and paste sources used twice are decoded once."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._data: OrderedDict[Path, np.ndarray] = OrderedDict()

    def get(self, path: Path) -> np.ndarray:
        """The ``(H, W, 3)`` uint8 RGB pixels of ``path``."""
        import cv2

        if path in self._data:
            self._data.move_to_end(path)
            return self._data[path]
        image = cv2.cvtColor(read_image(path), cv2.COLOR_BGR2RGB)
        self._data[path] = image
        if len(self._data) > self.size:
            self._data.popitem(last=False)
        return image
