"""``score`` warns when a model's classes share no name with the data set's (issue #25, item 8)."""

from __future__ import annotations

import shutil

import pytest

from cvactive.cli import main
from cvactive.detect.scorer import class_overlap_warning, data_class_names, find_data_yaml
from cvactive.errors import ConfigError

AQUARIUM = ["fish", "jellyfish", "penguin", "puffin", "shark", "starfish", "stingray"]


def test_overlap_warning_names_both_class_sets():
    message = class_overlap_warning(["person", "bird", "kite"], AQUARIUM, "data.yaml")
    assert message is not None and "share no name" in message and "bird, kite, person" in message
    assert "fish, jellyfish" in message and "(7 in all)" in message and "data.yaml" in message
    assert class_overlap_warning(["person", "Fish"], AQUARIUM, "d") is None  # one shared name, case aside
    assert class_overlap_warning([], AQUARIUM, "d") is None


def test_data_yaml_found_beside_or_above_the_source(tmp_path):
    (tmp_path / "set" / "valid" / "images").mkdir(parents=True)
    (tmp_path / "set" / "data.yaml").write_text("names: [fish, shark]\n")
    images = tmp_path / "set" / "valid" / "images"
    assert find_data_yaml(images) == tmp_path / "set" / "data.yaml"
    assert find_data_yaml(str(images / "*.jpg")) == tmp_path / "set" / "data.yaml"
    assert find_data_yaml(images / "a.jpg") == tmp_path / "set" / "data.yaml"
    assert find_data_yaml(tmp_path) is None and find_data_yaml("rtsp://cam/1") is None
    assert find_data_yaml([str(images)]) is None
    assert data_class_names(tmp_path / "set" / "data.yaml") == ["fish", "shark"]
    (tmp_path / "m.yaml").write_text("names: {0: car, 1: bus}\n")
    assert data_class_names(tmp_path / "m.yaml") == ["car", "bus"]
    (tmp_path / "bad.yaml").write_text("nc: 2\n")
    with pytest.raises(ConfigError, match="no 'names'"):
        data_class_names(tmp_path / "bad.yaml")


def test_a_missing_data_file_is_refused_before_the_model_loads(tmp_path, ultralytics_images, capsys):
    out = tmp_path / "s.jsonl"
    code = main(["score", ultralytics_images["bus"], "--data", str(tmp_path / "nope.yaml"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "nope.yaml" in err and "does not exist" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.slow
def test_coco_model_on_aquarium_warns_and_on_coco_does_not(tmp_path, assets, openvino_model, capsys):
    pool = tmp_path / "aquarium" / "valid" / "images"
    pool.mkdir(parents=True)
    shutil.copy(assets / "aquarium" / "data.yaml", tmp_path / "aquarium" / "data.yaml")
    for image in sorted((assets / "aquarium" / "valid" / "images").glob("*.jpg"))[:2]:
        shutil.copy(image, pool / image.name)
    args = ["--model", openvino_model, "--no-progress", "--workers", "0"]
    assert main(["score", str(pool), "--out", str(tmp_path / "a.jsonl"), *args]) == 0
    err = capsys.readouterr().err
    warnings = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "share no name" in warnings[0] and "fish, jellyfish" in warnings[0]
    coco = tmp_path / "coco.yaml"
    coco.write_text("names: [person, bicycle, car]\n")  # a data set with COCO's names: no warning
    assert main(["score", str(pool), "--data", str(coco), "--out", str(tmp_path / "b.jsonl"), *args]) == 0
    assert "warning:" not in capsys.readouterr().err
