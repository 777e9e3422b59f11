import numpy as np
import pytest

from cvactive.errors import DatasetError
from cvactive.yolodata import (
    format_label_lines,
    label_path_for,
    load_yolo_dataset,
    parse_label_text,
    xyxy_to_yolo,
    yolo_to_xyxy,
)


def test_parse_reports_every_bad_line_and_keeps_good_ones():
    text = "0 0.5 0.5 0.2 0.2\n1 1.4 0.5 0.1 0.1\n99 0.5 0.5 0.1 0.1\n0 0.5 0.5\n2 0.5 0.5 0 0.1\n\n1 0.2 0.3 0.1 0.1\n"
    boxes, classes, lines, issues = parse_label_text(text, "a.txt", 3)
    assert boxes.shape == (2, 4)
    assert classes.tolist() == [0, 1] and lines.tolist() == [1, 7]
    assert [(i.kind, i.line) for i in issues] == [
        ("out_of_range", 2),
        ("unknown_class", 3),
        ("malformed", 4),
        ("non_positive_size", 5),
    ]


def test_box_conversions_round_trip(rng):
    xyxy = np.sort(rng.uniform(0, 100, (5, 4)).reshape(5, 2, 2), axis=1).transpose(0, 2, 1).reshape(5, 4)
    np.testing.assert_allclose(yolo_to_xyxy(xyxy_to_yolo(xyxy, 100, 80), 100, 80), xyxy, atol=1e-4)
    assert format_label_lines(np.zeros((0, 4)), np.zeros(0)) == ""


def test_label_path_convention(tmp_path):
    assert label_path_for(tmp_path / "images" / "train" / "a.jpg") == tmp_path / "labels" / "train" / "a.txt"


def test_porch_and_missing(porch_data, tmp_path):
    ds = load_yolo_dataset(porch_data)
    assert ds.names == {0: "brown_box", 1: "white_envelope", 2: "yellow_box"}
    assert len(ds.splits["train"]) == 60 and not ds.issues
    assert load_yolo_dataset(porch_data.parent).names == ds.names  # the folder finds its data.yaml
    with pytest.raises(DatasetError, match="does not exist"):
        load_yolo_dataset(tmp_path / "nope")


@pytest.mark.slow
def test_real_data_sets(assets):
    aq = load_yolo_dataset(assets / "aquarium" / "data.yaml")  # relative ../train/images resolves
    assert {k: len(v) for k, v in aq.splits.items()} == {"train": 448, "val": 127}
    assert sum(len(i.classes) for i in aq.items()) == 4233
    coco = load_yolo_dataset(assets / "coco128")  # path: . means the YAML's own folder
    kinds = sorted(i.kind for i in coco.issues)
    assert kinds == ["image_without_label"] * 2 + ["label_without_image"] * 2
