from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from cvactive._config import load_yaml
from cvactive.boxes import xyxy_to_yolo, yolo_to_xyxy
from cvactive.errors import DatasetError
from cvactive.yolo_labels import parse_label_text
from cvactive.yolodata import YoloDataset, format_label_lines, label_path_for, load_yolo_dataset, resolve_splits


def test_parse_reports_every_bad_line_and_keeps_good_ones():
    text = "0 0.5 0.5 0.2 0.2\n1 1.4 0.5 0.1 0.1\n99 0.5 0.5 0.1 0.1\n0 0.5 0.5\n2 0.5 0.5 0 0.1\n\n1 0.2 0.3 0.1 0.1\n"
    boxes, classes, lines, issues = parse_label_text(text, "a.txt", 3)
    assert boxes.shape == (2, 4)
    assert classes.tolist() == [0, 1] and lines.tolist() == [1, 7]
    assert [(i.kind, i.line) for i in issues] == [
        ("out_of_range", 2),
        ("unknown_class", 3),
        ("malformed", 4),
        ("zero_size", 5),
    ]
    assert [i.severity for i in issues] == ["error", "error", "error", "warning"]


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


# -- the same files as Ultralytics reads them ---------------------------------------------------------
def _ultralytics_read(yaml_path: Path) -> tuple[dict[str, list[str]], dict[str, tuple[Any, ...]]]:
    """Ultralytics' own reading: split paths from check_det_dataset, images, and each image's verified labels."""
    from ultralytics.data.base import BaseDataset
    from ultralytics.data.utils import check_det_dataset, img2label_paths, verify_image_label

    info = check_det_dataset(str(yaml_path), autodownload=False)
    splits = {s: info[s] if isinstance(info[s], list) else [info[s]] for s in ("train", "val") if info.get(s)}
    labels: dict[str, tuple[Any, ...]] = {}
    for paths in splits.values():
        images = BaseDataset.get_img_files(SimpleNamespace(prefix="", fraction=1.0), paths)
        for im, lb in zip(images, img2label_paths(images)):
            labels[str(Path(im).resolve())] = tuple(
                verify_image_label((im, lb, "", False, len(info["names"]), 0, 0, False))
            )
    return splits, labels


def _ultralytics_boxes(lb: np.ndarray) -> list[tuple[int, ...]]:
    """Ultralytics' verified rows as training sees them: zero-size boxes dropped, boxes clipped to the image."""
    from cvactive.yolo_labels import _clip

    lb = lb[(lb[:, 3] > 0) & (lb[:, 4] > 0)]
    boxes, _ = _clip(lb[:, 1:].astype(np.float32))
    return sorted(_rounded(c, b) for c, b in zip(lb[:, 0], boxes))


def _rounded(cls: Any, box: np.ndarray) -> tuple[int, ...]:
    return (int(cls), *(round(float(v) * 1e5) for v in box))


def _compare_with_ultralytics(yaml_path: Path) -> YoloDataset:
    """Load with cvactive and with Ultralytics; the same images, boxes and dropped files. Returns cvactive's."""
    ds = load_yolo_dataset(yaml_path)
    splits, labels = _ultralytics_read(yaml_path)
    _, ours, _ = resolve_splits(yaml_path, load_yaml(yaml_path))
    assert {s: [str(p) for p in ps] for s, ps in ours.items() if s in splits} == splits
    items = {str(item.image.resolve()): item for item in ds.items()}
    assert sorted(items) == sorted(labels), "a different set of images"
    errors = {(i.path, i.kind) for i in ds.issues if i.severity == "error"}
    for image, result in labels.items():
        item, missing, corrupt = items[image], result[5], result[8]
        label = str(label_path_for(Path(image)))
        if corrupt:  # Ultralytics drops the image: cvactive names an error in its label file
            assert any(path == str(item.label) for path, _ in errors), f"{label}: Ultralytics drops it: {result[9]}"
            continue
        assert not any(path == str(item.label) for path, _ in errors), f"{label}: an error Ultralytics does not see"
        if missing:
            assert item.label is None and (image, "image_without_label") in {(i.path, i.kind) for i in ds.issues}
        ours_rows = sorted(_rounded(c, b) for c, b in zip(item.classes, item.boxes))
        assert ours_rows == _ultralytics_boxes(result[1]), label
    return ds


def _image(path: Path, size: tuple[int, int] = (40, 32)) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((size[1], size[0], 3), 120, np.uint8))


def _quirky_dataset(root: Path) -> Path:
    """Polygons, tolerance, duplicates, zero sizes, a BOM, list-valued splits and a .txt list."""
    files = {
        "a/images/poly.jpg": "0 0.1 0.1 0.3 0.1 0.2 0.4\n1 0.5 0.5 0.6 0.6 0.7 0.5 0.5 0.7\n",
        "a/images/tolerant.jpg": "0 0.995 0.5 0.02 0.1\n1 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2 0.2\n2 0.3 0.3 0 0.1\n",
        "a/images/beyond.jpg": "0 1.02 0.5 0.02 0.1\n1 0.5 0.5 0.2 0.2\n",
        "a/images/mixed.jpg": "0 0.1 0.1 0.3 0.1 0.2 0.4\n1 0.5 0.5 0.2 0.2\n",
        "b/images/bom.jpg": "\ufeff2 0.4 0.4 0.2 0.2\n",
        "b/images/negative.jpg": "0 0.5 0.5 -0.1 0.2\n",
        "b/images/edge.jpg": "0 -0.005 0.5 0.2 0.2\n1 0.5 1.005 0.3 0.3\n",
        "v/images/listed.jpg": "1 0.25 0.25 0.1 0.1\n",
        "v/images/nolabel.jpg": None,
    }
    for name, text in files.items():
        _image(root / name)
        if text is not None:
            label = label_path_for(root / name)
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text(text, encoding="utf-8")
    (root / "val.txt").write_text("./v/images/listed.jpg\n./v/images/nolabel.jpg\n")
    data = root / "data.yaml"
    data.write_text("train: [a/images, b/images]\nvalidation: val.txt\nnc: 3\n")
    return data


def test_quirks_read_as_ultralytics_reads_them(tmp_path):
    ds = _compare_with_ultralytics(_quirky_dataset(tmp_path / "q"))
    assert ds.names == {0: "class_0", 1: "class_1", 2: "class_2"}
    assert {s: len(v) for s, v in ds.splits.items()} == {"train": 7, "val": 2}
    by_file: dict[str, list[tuple[str, int | None]]] = {}
    for issue in ds.issues:
        by_file.setdefault(Path(issue.path).stem, []).append((issue.kind, issue.line))
    assert by_file == {
        "tolerant": [("clipped", 1), ("duplicate", 3), ("zero_size", 4)],
        "beyond": [("out_of_range", 1)],
        "mixed": [("malformed", 2)],
        "negative": [("non_positive_size", 1)],
        "edge": [("clipped", 1), ("clipped", 2)],
        "nolabel": [("image_without_label", None)],
    }
    poly = next(i for i in ds.items() if i.image.stem == "poly")
    np.testing.assert_allclose(poly.boxes, [[0.2, 0.25, 0.2, 0.3], [0.6, 0.6, 0.2, 0.2]], atol=1e-6)


def test_warnings_are_reported_but_not_gated(tmp_path):
    from cvactive.health import check_health

    report = check_health(_quirky_dataset(tmp_path / "q"), image_checks=False, progress=False)
    warned = report.figures["label_warnings"]
    assert warned["by_kind"] == {"clipped": 3, "duplicate": 1, "zero_size": 1}
    assert {(Path(w["path"]).stem, w["line"]) for w in warned["listed"]} >= {("tolerant", 3), ("edge", 2)}
    errors = report.figures["label_errors"]["by_kind"]
    assert {k: v for k, v in errors.items() if v} == {
        "out_of_range": 1,
        "malformed": 1,
        "non_positive_size": 1,
        "image_without_label": 1,
    }
    gate = next(g for g in report.gates if g.name == "max_label_errors")
    assert gate.value == 4  # the warnings are not counted


def test_relative_path_resolves_like_ultralytics(tmp_path, monkeypatch):
    root = tmp_path / "sets" / "mine"
    _image(root / "images" / "train" / "x.jpg")
    _image(root / "images" / "val" / "y.jpg")
    data = root / "data.yaml"
    data.write_text("path: .\ntrain: images/train\nval: images/val\nnames: [a]\n")
    monkeypatch.chdir(root)  # Ultralytics resolves path: . from the current folder: here it is the data set
    _compare_with_ultralytics(data)
    assert [i.kind for i in load_yolo_dataset(data).issues] == ["image_without_label"] * 2  # no YAML warning
    monkeypatch.chdir(tmp_path)  # elsewhere Ultralytics finds nothing; cvactive reads the YAML's folder and says so
    ds = load_yolo_dataset(data)
    note = [i for i in ds.issues if i.kind == "data_yaml"]
    assert len(note) == 1 and "current folder" in note[0].message and note[0].severity == "warning"
    assert ds.root == root.resolve() and len(ds.splits["val"]) == 1
    (root / "data.yaml").write_text("path: sets/mine\ntrain: images/train\nval: images/val\nnames: [a]\n")
    _compare_with_ultralytics(data)  # relative to the current folder, as Ultralytics takes it
    assert not [i for i in load_yolo_dataset(data).issues if i.kind == "data_yaml"]


@pytest.mark.slow
def test_coco128_and_aquarium_as_ultralytics_reads_them(assets, monkeypatch):
    monkeypatch.chdir(assets / "coco128")  # its config.yaml says path: ., which Ultralytics takes from here
    coco = _compare_with_ultralytics(assets / "coco128" / "config.yaml")
    kinds = sorted(i.kind for i in coco.issues if i.severity == "error")
    assert kinds == ["image_without_label"] * 2 + ["label_without_image"] * 2
    assert sum(len(i.classes) for i in coco.items()) == 929 + 898 - _duplicates(coco)
    aquarium = _compare_with_ultralytics(assets / "aquarium" / "data.yaml")  # ../train/images retried
    assert {k: len(v) for k, v in aquarium.splits.items()} == {"train": 448, "val": 127}
    assert sum(len(i.classes) for i in aquarium.items()) + _duplicates(aquarium) == 4233


def _duplicates(ds: YoloDataset) -> int:
    return sum(1 for i in ds.issues if i.kind in ("duplicate", "zero_size"))
