"""The error hierarchy of cvactive.

Every error a user can cause is a :class:`CvactiveError`; its message names the
bad value and, where there is one, the fix. The CLI turns these into a one-line
message and a non-zero exit code instead of a traceback.
"""

from __future__ import annotations


class CvactiveError(Exception):
    """Base class of every error cvactive raises on bad input or state."""

    exit_code: int = 2


class ConfigError(CvactiveError, ValueError):
    """A configuration value or option is invalid (names the valid choices)."""


class RecordError(CvactiveError, ValueError):
    """A record's arrays do not have the shapes or values the record type requires."""


class MissingClassScoresError(RecordError):
    """A measure needs the full per-class score vector, but the record only has confidences."""


class SourceError(CvactiveError):
    """An image or video source does not exist or cannot be read."""


class VideoError(SourceError):
    """A video cannot be opened or decoded."""


class ModelError(CvactiveError):
    """A detector cannot be loaded or run."""


class DatasetError(CvactiveError):
    """A labeled data set is missing, malformed or empty."""


class EmptyPoolError(CvactiveError, ValueError):
    """A selection was asked of a pool with nothing to choose from."""


class StoreError(CvactiveError):
    """A FiftyOne database cannot be started or reached, or a data set is missing."""


class OutputError(CvactiveError):
    """An output path cannot be written safely: a folder where a file is wanted, read-only, an input,
    a folder another run holds, or a folder with files cvactive did not write."""


class MissingDependencyError(CvactiveError, ImportError):
    """An optional dependency is not installed (the message says how to install it)."""
