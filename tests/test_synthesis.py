"""Unit tests of synthesis: recipes and their errors, targets, gaps, copy-paste, labels, provenance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cvactive.errors import ConfigError, DatasetError, OutputError
from cvactive.synthesis import (
    RECIPE_DIR,
    CopyPasteOptions,
    Gap,
    GapThresholds,
    Patch,
    Profile,
    builtin_names,
    find_gaps,
    gap_share,
    load_provenance,
    load_recipes,
    parse_target,
    paste,
    pick,
    recipe_from_dict,
    synthesize,
    yolo_label_text,
)
from cvactive.synthesis.gaps import allocate
from cvactive.yolo_labels import parse_label_text

CONDITIONS = ("night", "fog", "glare", "motion_blur", "zoom_out", "zoom_in", "shift", "flip", "rotate", "weather")


# ------------------------------------------------------------------------------------------ recipes


def test_builtin_recipes_cover_every_condition_and_are_named_like_their_files():
    recipes = load_recipes()
    assert set(CONDITIONS) | {"copy_paste"} == set(recipes)
    for path in RECIPE_DIR.glob("*.yaml"):
        assert load_recipes(path)[path.stem].name == path.stem
    assert recipes["copy_paste"].kind == "copy_paste" and recipes["copy_paste"].copy_paste is not None
    assert all(r.fills for r in recipes.values())
    assert "dark" in recipes["night"].fills and "position" in recipes["flip"].fills


def test_unknown_recipe_name_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="valid names: copy_paste, flip, fog") as err:
        load_recipes("nigth")
    assert "night" in str(err.value)
    with pytest.raises(ConfigError, match=r"valid recipes: .*night"):
        pick(load_recipes(), ["night", "sunset"])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"name": "x", "transforms": [{"RandomGama": {"p": 1}}]},
            "unknown albumentations transform 'RandomGama'.*RandomGamma",
        ),
        ({"name": "x", "transforms": [{"RandomGamma": {"gamma": 2}}]}, "unknown option.*valid options: gamma_limit, p"),
        ({"name": "x", "transforms": [{"RandomGamma": {"gamma_limit": "dark"}}]}, "RandomGamma: invalid options"),
        (
            {"name": "x", "transforms": [{"RandomGamma": [1, 2]}]},
            r"transforms\[0\]\.RandomGamma: got \[1, 2\], expected a mapping",
        ),
        ({"name": "x", "transforms": [{"OneOf": {"p": 1}}]}, "needs a non-empty list 'transforms'"),
        ({"name": "x", "transforms": []}, "non-empty 'transforms'"),
        ({"name": "x", "transfroms": []}, r"unknown option\(s\) \['transfroms'\]; valid options: name"),
        (
            {"name": "x", "fills": ["night"], "transforms": ["HorizontalFlip"]},
            r"fills\[0\]: got 'night', expected one of class, dark",
        ),
        (
            {"name": "x", "kind": "mixup", "transforms": ["HorizontalFlip"]},
            "kind: got 'mixup', expected one of transform, copy_paste",
        ),
        ({"transforms": ["HorizontalFlip"]}, "name: missing; expected a non-empty string"),
        ({"name": "x", "bbox": {"min_visibility": 2}, "transforms": ["HorizontalFlip"]}, "min_visibility"),
        ({"name": "x", "bbox": {"visibility": 0.5}, "transforms": ["HorizontalFlip"]}, "valid options: min_visibility"),
        ({"name": "x", "kind": "copy_paste", "copy_paste": {"max_instances": 0}}, "max_instances"),
        ({"name": "x", "kind": "copy_paste", "transforms": [{"Affine": {"rotate": 5}}]}, "Affine moves pixels"),
    ],
)
def test_malformed_recipe_is_a_clear_error(data, message):
    with pytest.raises(ConfigError, match=message):
        recipe_from_dict(data, "test.yaml").validate()


def test_recipe_file_with_several_recipes(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "recipes:\n"
        "  - name: dusk\n"
        "    fills: [dark]\n"
        "    transforms: [{RandomBrightnessContrast: {brightness_limit: [-0.3, -0.2], p: 1}}]\n"
        "  - {name: mirror, fills: [position], transforms: [HorizontalFlip]}\n"
    )
    recipes = load_recipes(path)
    assert list(recipes) == ["dusk", "mirror"]
    assert recipes["mirror"].geometric and not recipes["dusk"].geometric
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_recipes(bad)


# ------------------------------------------------------------------------------------------ targets


def test_parse_target_forms_and_errors():
    assert parse_target("auto").auto
    t = parse_target(["classes=yellow_box", "conditions=night,fog"])
    assert t.classes == ("yellow_box",) and t.conditions == ("night", "fog") and not t.auto
    assert parse_target("classes=a;conditions=b").conditions == ("b",)
    with pytest.raises(ConfigError, match="valid forms: auto, classes="):
        parse_target("yellow")
    with pytest.raises(ConfigError, match="valid forms"):
        parse_target("classes=")
    with pytest.raises(ConfigError, match="cannot be combined"):
        parse_target(["auto", "classes=a"])


# ------------------------------------------------------------------------------------------ gaps


def profile(luma, boxes, classes, nc=3):
    return Profile.from_images(luma, [np.array(b, np.float32) for b in boxes], [np.array(c) for c in classes], nc)


def test_find_gaps_names_rare_class_dark_small_and_side():
    # 10 images, all bright; 19 boxes class 0 on the left, 1 box class 2; all large.
    boxes = [[[0.2, 0.5, 0.3, 0.3], [0.3, 0.6, 0.3, 0.3]]] * 9 + [[[0.25, 0.5, 0.3, 0.3], [0.4, 0.5, 0.2, 0.2]]]
    classes = [[0, 0]] * 9 + [[0, 2]]
    p = profile([150.0] * 10, boxes, classes)
    gaps = find_gaps(p, {0: "a", 1: "b", 2: "c"})
    keys = [(g.kind, g.key) for g in gaps]
    assert ("class", "b") in keys and ("class", "c") in keys and ("class", "a") not in keys
    assert ("dark", "dark") in keys and ("small_objects", "small") in keys and ("position", "right") in keys
    assert ("position", "left") not in keys and not any(k == "bright" for k, _ in keys)  # bright is off by default
    dark = next(g for g in gaps if g.kind == "dark")
    assert dark.share == 0.0 and dark.deficit == 1.0
    c = next(g for g in gaps if g.key == "c")
    assert c.share == pytest.approx(1 / 20) and gap_share(p, c, GapThresholds()) == pytest.approx(1 / 20)
    night = profile([40.0] * 10, boxes, classes)
    assert gap_share(p.concat(night), dark, GapThresholds()) == pytest.approx(0.5)
    assert not find_gaps(night, {0: "a", 1: "b", 2: "c"}, kinds=["dark"])


def test_gap_thresholds_are_checked():
    with pytest.raises(ConfigError, match="min_dark_share"):
        GapThresholds(min_dark_share=1.5)


@pytest.mark.parametrize(("weights", "n"), [([1, 1, 1], 10), ([0.2, 0.9, 0.5], 7), ([1, 0], 1), ([3, 1], 100)])
def test_allocate_sums_to_n(weights, n):
    parts = allocate(weights, n)
    assert sum(parts) == n and len(parts) == len(weights)
    if n >= len(weights):
        assert min(parts) >= 1


# ------------------------------------------------------------------------------------------ copy-paste & labels


def test_paste_box_is_exactly_where_the_pixels_changed():
    image = np.full((200, 300, 3), 50, np.uint8)
    existing = np.array([[10, 10, 110, 110]], np.float32)
    patch = Patch(np.full((30, 40, 3), 220, np.uint8), class_id=2, rel_size=(40 / 300, 30 / 200), source="s.jpg")
    opts = CopyPasteOptions(max_instances=3, max_overlap=0.0, scale=(1.0, 1.0), feather=0)
    out, boxes, classes, done = paste(image, existing, np.array([0]), [patch] * 3, np.random.default_rng(0), opts)
    assert len(done) == 3 and classes.tolist() == [0, 2, 2, 2]
    for box in boxes[1:]:
        x1, y1, x2, y2 = box.astype(int)
        assert (out[y1:y2, x1:x2] == 220).all()
        assert x2 - x1 == 40 and y2 - y1 == 30
        # no overlap with the existing box or each other (max_overlap 0)
        assert x2 <= 10 or x1 >= 110 or y2 <= 10 or y1 >= 110
    changed = np.argwhere((out != image).any(-1))
    assert changed.shape[0] == 3 * 40 * 30
    assert image.max() == 50  # the input is not modified


def test_paste_gives_up_without_room():
    image = np.zeros((50, 50, 3), np.uint8)
    everything = np.array([[0, 0, 50, 50]], np.float32)
    patch = Patch(np.full((20, 20, 3), 200, np.uint8), 1, (0.4, 0.4))
    out, boxes, _, done = paste(image, everything, np.array([0]), [patch], np.random.default_rng(0), CopyPasteOptions())
    assert not done and len(boxes) == 1 and (out == 0).all()


def test_label_text_keeps_every_box_inside_the_image():
    xyxy = np.array([[0, 0, 640, 480], [-5, 10, 33.3333, 479.9999], [600.00001, 1, 640.2, 2], [5, 5, 5, 9]])
    text = yolo_label_text(xyxy, np.array([0, 1, 2, 0]), 640, 480)
    boxes, classes, _, issues = parse_label_text(text, "x.txt", 3)
    assert not issues and classes.tolist() == [0, 1, 2]  # the zero-width box is left out
    assert boxes[0] == pytest.approx([0.5, 0.5, 1.0, 1.0])


# ------------------------------------------------------------------------------------------ data set errors


def tiny_yolo(root: Path, labels: list[str]) -> Path:
    import cv2

    (root / "images" / "train").mkdir(parents=True)
    (root / "labels" / "train").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, text in enumerate(labels):
        cv2.imwrite(str(root / "images" / "train" / f"im{i}.jpg"), rng.integers(0, 255, (64, 80, 3), np.uint8))
        (root / "labels" / "train" / f"im{i}.txt").write_text(text)
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/train\nnames: [a, b]\n")
    return root / "data.yaml"


def test_data_set_without_labels_is_a_clear_error(tmp_path):
    data = tiny_yolo(tmp_path / "d", ["", ""])
    with pytest.raises(DatasetError, match="no labeled boxes"):
        synthesize(data, k=2, out=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()  # nothing written


def test_bad_options_fail_before_writing(tmp_path):
    data = tiny_yolo(tmp_path / "d", ["0 0.5 0.5 0.5 0.5\n", "1 0.3 0.3 0.2 0.2\n"])
    with pytest.raises(ConfigError, match="valid classes: a, b"):
        synthesize(data, k=2, out=tmp_path / "o1", target="classes=c", progress=False)
    with pytest.raises(ConfigError, match="valid recipes"):
        synthesize(data, k=2, out=tmp_path / "o1", target="conditions=sunset", progress=False)
    with pytest.raises(ConfigError, match="at least 1"):
        synthesize(data, k=0, out=tmp_path / "o1", progress=False)
    assert not (tmp_path / "o1").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match="not empty and was not written by cvactive synthesize"):
        synthesize(data, k=2, out=tmp_path / "full", progress=False)
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


def test_small_run_writes_provenance_and_refuses_to_overwrite(tmp_path):
    data = tiny_yolo(tmp_path / "d", ["0 0.5 0.5 0.5 0.5\n", "1 0.3 0.3 0.2 0.2\n0 0.7 0.7 0.3 0.3\n"])
    out = tmp_path / "out"
    s = synthesize(data, k=4, out=out, target="conditions=flip,night", progress=False)
    assert s.written == 4 and s.by_recipe == {"flip": 2, "night": 2}
    prov = load_provenance(out)
    assert len(prov) == 4 and all(Path(k).is_file() and Path(k).is_absolute() for k in prov)
    for entry in prov.values():
        assert set(entry) >= {"image", "parent", "recipe", "params", "seed"}
        assert Path(entry["parent"]).is_file() and isinstance(entry["seed"], int)
        assert entry["params"]["transforms"][0]["transform"] in ("HorizontalFlip", "RandomBrightnessContrast")
    json.dumps(list(prov.values()))
    with pytest.raises(ConfigError, match="overwrite"):
        synthesize(data, k=2, out=out, progress=False)
    (out / "images" / "train" / "mine.jpg").write_bytes(b"a user's file")
    s2 = synthesize(data, k=2, out=out, target="conditions=flip", progress=False, overwrite=True)
    assert (out / "images" / "train" / "mine.jpg").read_bytes() == b"a user's file"  # only its own files go
    (out / "images" / "train" / "mine.jpg").unlink()
    assert s2.written == 2 and len(list((out / "images" / "train").iterdir())) == 2
    assert len(load_provenance(out)) == 2


def test_load_provenance_errors(tmp_path):
    with pytest.raises(DatasetError, match="no provenance file"):
        load_provenance(tmp_path)
    (tmp_path / "provenance.jsonl").write_text('{"image": "a"}\nnot json\n')
    with pytest.raises(DatasetError, match=":2: not a provenance line"):
        load_provenance(tmp_path)


def test_builtin_names_match_folder():
    assert builtin_names() == sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))
    assert isinstance(Gap("dark", "dark", 0.1, 0.2).deficit, float)


def test_copy_paste_condition_adds_instances_of_the_named_class(tmp_path):
    data = tiny_yolo(
        tmp_path / "d", ["0 0.2 0.3 0.2 0.2\n", "1 0.7 0.6 0.2 0.25\n0 0.2 0.2 0.1 0.1\n", "0 0.5 0.5 0.2 0.2\n"]
    )
    s = synthesize(data, k=3, out=tmp_path / "out", target="classes=b;conditions=copy_paste", progress=False)
    assert s.written == 3 and s.gaps[0].key == "b" and s.gaps[0].after > s.gaps[0].before
    for path, entry in load_provenance(tmp_path / "out").items():
        pastes = entry["params"]["pastes"]
        assert pastes and all(p["class_id"] == 1 for p in pastes)
        labels = (Path(path).parent.parent.parent / "labels" / "train" / (Path(path).stem + ".txt")).read_text()
        parent_labels = Path(entry["parent"].replace("/images/", "/labels/")).with_suffix(".txt").read_text()
        assert labels.count("\n") == parent_labels.count("\n") + len(pastes)


def test_cli_config_keys_are_synthesize_options_and_list_recipes_needs_no_data(capsys):
    from cvactive._config import load_yaml
    from cvactive.cli import main
    from cvactive.cli.synthesize import DEFAULT_CONFIG
    from cvactive.synthesis.options import SynthesisOptions

    assert SynthesisOptions.of(load_yaml(DEFAULT_CONFIG)) == SynthesisOptions()  # the shipped file: the defaults
    assert main(["synthesize", "--list-recipes"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in (*CONDITIONS, "copy_paste")) and "geometric" in listed
    assert main(["synthesize", "--k", "3"]) == 2
    assert "missing DATA, --out: cvactive synthesize DATA --k K --out DIR" in capsys.readouterr().err


def test_plans_that_cannot_run_are_reported(tmp_path):
    data = tiny_yolo(tmp_path / "d", ["0 0.5 0.5 0.5 0.5\n", "1 0.3 0.3 0.2 0.2\n"])
    only_night = load_recipes("night")
    s = synthesize(data, k=2, out=tmp_path / "o", recipes=only_night, target="classes=b", progress=False)
    assert s.written == 0 and any("no recipe fills it" in note for note in s.notes)
