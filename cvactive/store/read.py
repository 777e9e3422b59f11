"""Reading a data set's labels out of FiftyOne as plain columns, for code that must not import FiftyOne.

The health check (:func:`cvactive.health.table.table_from_fiftyone`) builds its flat arrays from
these columns; FiftyOne stays behind this package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cvactive.errors import DatasetError, StoreError


@dataclass
class DetectionColumns:
    """One ``Detections`` field of a data set as parallel per-sample lists.

    Attributes:
        ids, paths, tags: sample ids, file paths and tag lists.
        widths, heights: image sizes in pixels (``None`` where the metadata is not computed).
        labels: per sample, the label of each box (``None`` for a sample without the field).
        boxes: per sample, each box's normalised top-left ``[x, y, w, h]``.
        classes: the field's class list (or the data set's default classes); empty when none is set.
    """

    ids: list[str]
    paths: list[str]
    tags: list[list[str]]
    widths: list[Any]
    heights: list[Any]
    labels: list[list[str] | None]
    boxes: list[list[list[float]] | None]
    classes: list[str]


def detection_columns(name: str, field: str = "ground_truth") -> DetectionColumns:
    """The columns of data set ``name``'s ``Detections`` field ``field``.

    Raises:
        StoreError: the data set does not exist (the message lists those that do).
        DatasetError: the field is missing or is not a ``Detections`` field.
    """
    from cvactive.store._db import check_dataset_name, connect

    check_dataset_name(name)
    fo = connect()
    if not fo.dataset_exists(name):
        known = ", ".join(sorted(fo.list_datasets())) or "none"
        raise StoreError(f"no FiftyOne data set {name!r}; data sets: {known}")
    ds = fo.load_dataset(name)

    schema = ds.get_field_schema()
    if field not in schema:
        raise DatasetError(f"FiftyOne data set {name!r} has no field {field!r}; fields: {', '.join(schema)}")
    if getattr(schema[field], "document_type", None) is not fo.Detections:
        raise DatasetError(f"field {field!r} of {name!r} is not a Detections field (it is {schema[field]})")
    ids, paths, tags, widths, heights, labels, boxes = ds.values(
        ["id", "filepath", "tags", "metadata.width", "metadata.height",
         f"{field}.detections.label", f"{field}.detections.bounding_box"]
    )  # fmt: skip
    classes = list(ds.classes.get(field) or ds.default_classes or [])
    return DetectionColumns(ids, paths, tags, widths, heights, labels, boxes, classes)
