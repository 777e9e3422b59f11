"""Health check on the real aquarium and COCO128 data sets and on a real FiftyOne database (slow)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from cvactive.cli import main
from cvactive.health import check_health, load_table

pytestmark = pytest.mark.slow


def test_aquarium_counts_imbalance_and_empty_label_file(assets, tmp_path, capsys):
    out = tmp_path / "aq"
    code = main(["health", str(assets / "aquarium"), "--out", str(out), "--no-progress"])
    assert code == 0  # default gates: >= 10 per class, ratio <= 50, no label errors, no leakage
    f = json.loads((out / "report.json").read_text())
    classes = f["overall"]["classes"]
    assert classes["fish"]["instances"] == 2420  # train 1961 + valid 459
    assert classes["starfish"]["instances"] == 105  # train 78 + valid 27
    assert f["per_split"]["train"]["classes"]["fish"]["instances"] == 1961
    assert f["per_split"]["val"]["classes"]["starfish"]["instances"] == 27
    assert f["overall"]["imbalance"]["rarest"] == "starfish"
    assert f["overall"]["imbalance"]["ratio"] == pytest.approx(2420 / 105, abs=1e-3)  # about 23
    assert f["overall"]["boxes"] == 3324 + 909
    assert f["empty_label_files"] == [
        str((assets / "aquarium/train/labels/IMG_3133_jpeg_jpg.rf.f439b9d382fd153b96f0a88cdf169172.txt").resolve())
    ]
    assert f["label_errors"]["total"] == 0
    assert f["images"]["pixel_checked"] == 575 and f["overall"]["sizes_known"]
    printed = capsys.readouterr().out
    assert "imbalance ratio 23.0 (fish / starfish); rarest: starfish" in printed
    assert "train: 448 images, 3324 boxes, 1 empty label file(s)" in printed


def test_coco128_missing_label_files_and_orphan_labels(assets, tmp_path, capsys):
    code = main(["health", str(assets / "coco128"), "--no-images", "--no-progress"])
    assert code == 1
    printed = capsys.readouterr().out
    table = load_table(assets / "coco128")
    issues = {(i.kind, Path(i.path).name) for i in table.issues}
    assert issues == {
        ("image_without_label", "000000000250.jpg"),
        ("image_without_label", "000000000508.jpg"),
        ("label_without_image", "000000000656.txt"),
        ("label_without_image", "000000000659.txt"),
        ("data_yaml", "config.yaml"),  # path: . is the current folder for Ultralytics, not the YAML's
    }
    assert "label warnings (Ultralytics copes; not gated): 1 {'data_yaml': 1}" in printed
    assert "train: 128 images, 929 boxes, 0 empty label file(s), 2 image(s) without label file" in printed
    assert "label problems: 4 (label_without_image 2, image_without_label 2)" in printed
    assert "gate max_label_errors: FAIL - 4 label error(s)" in printed
    assert "classes with no instance: parking meter, cow, toaster, hair drier" in printed


def _copy_with_links(src: Path, dst: Path) -> None:
    """Copy a YOLO data set: label files and data.yaml copied, images symlinked (they are not modified)."""
    for path in src.rglob("*"):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.suffix == ".jpg":
            os.symlink(path, target)
        else:
            shutil.copy(path, target)


def test_aquarium_copy_with_planted_errors(assets, tmp_path):
    data = tmp_path / "aquarium"
    _copy_with_links(assets / "aquarium", data)
    train_labels = sorted((data / "train" / "labels").glob("*.txt"))
    bad_coord, bad_class, bad_line = train_labels[10], train_labels[20], train_labels[30]
    n_coord = len(bad_coord.read_text().splitlines())
    bad_coord.write_text(bad_coord.read_text().rstrip("\n") + "\n0 1.4 0.5 0.1 0.1\n")
    bad_class.write_text("99 0.5 0.5 0.1 0.1\n" + bad_class.read_text())
    n_line = len(bad_line.read_text().splitlines())
    bad_line.write_text(bad_line.read_text().rstrip("\n") + "\n3 0.5 0.5 0.1\n")
    image = data / "train" / "images" / (train_labels[40].stem + ".jpg")
    shutil.copy(image, data / "valid" / "images" / "leaked.jpg")
    shutil.copy(train_labels[40], data / "valid" / "labels" / "leaked.txt")
    out = tmp_path / "report"
    assert main(["health", str(data), "--out", str(out), "--no-plots", "--no-progress"]) == 1
    f = json.loads((out / "report.json").read_text())
    found = {(p["kind"], p["path"], p["line"]) for p in f["label_errors"]["listed"]}
    assert ("out_of_range", str(bad_coord), n_coord + 1) in found
    assert ("unknown_class", str(bad_class), 1) in found
    assert ("malformed", str(bad_line), n_line + 1) in found
    assert f["label_errors"]["total"] == 3
    leaks = f["images"]["leakage"]["exact"]
    assert [(Path(r["a"]).name, Path(r["b"]).name) for r in leaks] == [(image.name, "leaked.jpg")]
    failed = {g["name"] for g in f["gates"] if not g["passed"]}
    assert failed == {"max_label_errors", "leakage"}
    # the good lines of the edited files still count: fish + the leaked copy's boxes
    fish_in_leak = sum(1 for line in train_labels[40].read_text().splitlines() if line.split()[0] == "0")
    assert f["overall"]["classes"]["fish"]["instances"] == 2420 + fish_in_leak


def test_fiftyone_dataset_and_missing_dataset(tmp_path, capsys):
    from cvactive._env import offline_defaults

    offline_defaults()
    import fiftyone as fo

    name = "health-test-" + tmp_path.name[-20:]
    ds = fo.Dataset(name)
    ds.default_classes = ["cat", "dog"]
    rng = np.random.default_rng(0)
    samples = []
    for i in range(6):
        path = tmp_path / f"img{i}.png"
        import cv2

        cv2.imwrite(str(path), rng.integers(0, 255, (30, 40, 3), dtype=np.uint8))
        dets = [fo.Detection(label="cat", bounding_box=[0.1, 0.1, 0.2, 0.3]) for _ in range(i % 3)]
        if i == 1:
            dets.append(fo.Detection(label="dog", bounding_box=[0.8, 0.1, 0.4, 0.3]))  # reaches x = 1.2
        if i == 2:
            dets.append(fo.Detection(label="zebra", bounding_box=[0.1, 0.1, 0.2, 0.2]))
        samples.append(
            fo.Sample(
                filepath=str(path), tags=["train" if i < 4 else "val"], ground_truth=fo.Detections(detections=dets)
            )
        )
    ds.add_samples(samples)
    try:
        report = check_health(dataset=name, field="ground_truth", progress=False, min_instances=None)
        f = report.figures
        assert f["kind"] == "fiftyone" and f["splits"] == ["train", "val"]
        assert f["classes"] == ["cat", "dog"]
        assert f["overall"]["classes"]["cat"]["instances"] == 0 + 1 + 2 + 0 + 1 + 2
        assert f["per_split"]["val"]["boxes"] == 3
        kinds = {(p["kind"], p["line"]) for p in f["label_errors"]["listed"]}
        assert kinds == {("out_of_range", 2), ("unknown_class", 3)}
        assert f["images"]["common_sizes"] == [{"width": 40, "height": 30, "images": 6}]
        assert main(["health", "--dataset", name, "--no-progress"]) == 1
    finally:
        ds.delete()
    capsys.readouterr()
    assert main(["health", "--dataset", "no-such-dataset-xyz"]) == 2
    assert "no FiftyOne data set 'no-such-dataset-xyz'" in capsys.readouterr().err
