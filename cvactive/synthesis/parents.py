"""The labeled images synthesis starts from: one split of a YOLO data set, checked and profiled once."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cvactive.errors import ConfigError, DatasetError, SourceError
from cvactive.synthesis.gaps import Profile
from cvactive.synthesis.images import image_luma
from cvactive.yolo_labels import LabelIssue
from cvactive.yolodata import YoloDataset, YoloItem, load_yolo_dataset

log = logging.getLogger(__name__)

#: label-line problems whose line is left out of the parents' boxes
LINE_ERRORS = ("out_of_range", "non_positive_size", "unknown_class", "malformed")


@dataclass
class LabeledSplit:
    """The parent images of a synthesis run and what the gap analysis knows of them.

    Attributes:
        dataset: the data set.
        split: the split whose images are parents.
        items: its images with their labels.
        luma: ``(I,)`` float32 mean grey level (0-255) of each item; NaN where unreadable
            (filled by :meth:`profile`).
        unreadable: paths of the images that could not be decoded.
        source: the :class:`Profile` of the readable items.
        bad_lines: the label lines of this split that were left out (not numbers, a class the
            data set does not have, a box outside the image, ...), each with its file and line;
            :meth:`load` reports their count in one warning.
    """

    dataset: YoloDataset
    split: str
    items: list[YoloItem]
    luma: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    unreadable: list[str] = field(default_factory=list)
    source: Profile | None = None
    bad_lines: list[LabelIssue] = field(default_factory=list)

    @classmethod
    def load(cls, data: str | Path | YoloDataset, split: str, classes: tuple[str, ...] = ()) -> LabeledSplit:
        """Read ``split`` of ``data`` and check it has labeled boxes and the ``classes`` named.

        Raises:
            DatasetError: no such split, or it has no labeled boxes.
            ConfigError: a class name the data set does not have (the valid ones are listed).
        """
        ds = data if isinstance(data, YoloDataset) else load_yolo_dataset(data)
        if split not in ds.splits:
            raise DatasetError(f"data set has no split {split!r}; it has {', '.join(ds.splits)}")
        items = list(ds.items(split))
        if not any(len(it.classes) for it in items):
            raise DatasetError(
                f"{ds.yaml_path or ds.root}: split {split!r} has no labeled boxes ({len(items)} images); "
                "synthesis needs labels to transform or copy"
            )
        unknown = [c for c in classes if c not in ds.names.values()]
        if unknown:
            raise ConfigError(f"unknown class(es) {unknown}; valid classes: {', '.join(ds.names.values())}")
        labels = {str(it.label) for it in items if it.label is not None}
        bad = [i for i in ds.issues if i.kind in LINE_ERRORS and i.line is not None and i.path in labels]
        if bad:
            first = bad[0]
            log.warning(
                "split %r: %d bad label line(s) in %d file(s) left out (first: %s:%d: %s: %s)",
                split, len(bad), len({i.path for i in bad}), first.path, first.line, first.kind, first.message,
            )  # fmt: skip
        return cls(ds, split, items, bad_lines=bad)

    @property
    def names(self) -> dict[int, str]:
        return self.dataset.names

    @property
    def num_classes(self) -> int:
        return self.dataset.num_classes

    def profile(self, progress: bool = True) -> Profile:
        """Decode every item once for its grey level and build the :class:`Profile` of the readable ones.

        Raises:
            DatasetError: no readable image has labeled boxes.
        """
        from tqdm import tqdm

        luma = np.full(len(self.items), np.nan, np.float32)
        unreadable: list[str] = []
        for i, it in enumerate(tqdm(self.items, desc="profiling", unit="img", disable=not progress)):
            try:
                luma[i] = image_luma(it.image)
            except SourceError:
                unreadable.append(str(it.image))
        ok = np.flatnonzero(~np.isnan(luma))
        items = self.items
        source = Profile.from_images(
            luma[ok].tolist(), [items[i].boxes for i in ok], [items[i].classes for i in ok], self.num_classes
        )
        if not source.boxes:
            raise DatasetError(f"split {self.split!r}: no readable image has labeled boxes")
        self.luma, self.unreadable, self.source = luma, unreadable, source
        return source

    @property
    def readable(self) -> np.ndarray:
        """``(I,)`` bool: the item's image decoded."""
        return ~np.isnan(self.luma)

    @property
    def has_boxes(self) -> np.ndarray:
        """``(I,)`` bool: the item is readable and has at least one labeled box."""
        return np.array([len(it.classes) > 0 for it in self.items]) & self.readable

    @property
    def profiled(self) -> Profile:
        """The profile :meth:`profile` built (it must have run)."""
        if self.source is None:
            raise RuntimeError("LabeledSplit.profile() has not run")
        return self.source
