"""cvactive: active learning for object detection.

The light core (record type, measures, scoring, JSON lines) imports without torch;
adapters for Ultralytics, OpenCV video, FiftyOne and albumentations import their
libraries only when used.
"""

from cvactive.errors import CvactiveError
from cvactive.record import ImageRecord

__version__ = "0.1.0"

__all__ = ["CvactiveError", "ImageRecord", "__version__"]
