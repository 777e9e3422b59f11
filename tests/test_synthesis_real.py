"""Synthesis on real components: the porch data set (auto targeting) and the aquarium data set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cvactive.cli import main
from cvactive.synthesis import load_provenance, synthesize
from cvactive.yolodata import load_yolo_dataset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def porch_run(porch_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("syn") / "porch"
    return synthesize(porch_data, k=60, out=out, target="auto", seed=3, progress=False), out


def test_auto_raises_yellow_and_night_shares(porch_run):
    summary, out = porch_run
    gaps = {(g.kind, g.key): g for g in summary.gaps}
    yellow, night = gaps[("class", "yellow_box")], gaps[("dark", "dark")]
    assert yellow.after > yellow.before and night.after > night.before
    assert night.synthetic > night.before
    lines = "\n".join(summary.lines())
    assert "class:yellow_box" in lines and "dark:dark" in lines and "before" in lines and "after" in lines
    # The summary's numbers agree with the files: count yellow boxes in the combined set.
    combined = load_yolo_dataset(summary.combined_yaml)
    classes = np.concatenate([it.classes for it in combined.items("train")])
    assert np.mean(classes == 2) == pytest.approx(summary.shares["after"]["class:yellow_box"], abs=1e-3)
    assert json.loads((out / "summary.json").read_text())["written"] == summary.written == 60


def test_every_synthetic_image_has_provenance_and_valid_labels(porch_run):
    summary, out = porch_run
    prov = load_provenance(out)
    images = sorted(str(p) for p in (out / "images" / "train").glob("*.jpg"))
    assert sorted(prov) == images and len(images) == summary.written
    for entry in prov.values():
        assert entry["recipe"] in summary.by_recipe and Path(entry["parent"]).is_file()
        assert entry["params"]
    ds = load_yolo_dataset(out / "data.yaml")
    assert not ds.issues and ds.names == load_yolo_dataset(summary.combined_yaml).names
    assert all(len(it.classes) for it in ds.items("train"))  # no image without anything worth labeling


def test_same_seed_same_bytes(porch_data, tmp_path):
    a = synthesize(porch_data, k=12, out=tmp_path / "a", seed=5, progress=False)
    b = synthesize(porch_data, k=12, out=tmp_path / "b", seed=5, progress=False)
    c = synthesize(porch_data, k=12, out=tmp_path / "c", seed=6, progress=False)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").glob("*/train/*"))
    assert len(files) == 2 * a.written == 2 * b.written
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    pa, pb = load_provenance(tmp_path / "a"), load_provenance(tmp_path / "b")
    for (ka, ea), (kb, eb) in zip(sorted(pa.items()), sorted(pb.items())):
        assert Path(ka).name == Path(kb).name and ea["params"] == eb["params"] and ea["seed"] == eb["seed"]
    c_files = {p.relative_to(tmp_path / "c") for p in (tmp_path / "c").rglob("*.jpg")}
    assert c_files != set(files) or any(
        (tmp_path / "a" / f).read_bytes() != (tmp_path / "c" / f).read_bytes() for f in files if f in c_files
    )
    assert c.written == 12


def test_aquarium_cli_makes_valid_labels_and_more_starfish(assets, tmp_path, capsys):
    data = assets / "aquarium" / "data.yaml"
    out = tmp_path / "aq"
    rc = main(["synthesize", str(data), "--k", "40", "--out", str(out), "--no-progress"])
    printed = capsys.readouterr().out
    assert rc == 0 and "class:starfish" in printed
    source = load_yolo_dataset(data)
    syn = load_yolo_dataset(out / "data.yaml")
    assert not syn.issues  # every box inside the image, class ids in range, no bad line
    nc = source.num_classes
    for item in syn.items("train"):
        assert item.classes.max() < nc
        x1y1 = item.boxes[:, :2] - item.boxes[:, 2:] / 2
        x2y2 = item.boxes[:, :2] + item.boxes[:, 2:] / 2
        assert (x1y1 >= -1e-6).all() and (x2y2 <= 1 + 1e-6).all()  # float32 sums, as yolodata checks
    starfish = next(k for k, v in source.names.items() if v == "starfish")
    before = sum(int((it.classes == starfish).sum()) for it in source.items("train"))
    added = sum(int((it.classes == starfish).sum()) for it in syn.items("train"))
    combined = load_yolo_dataset(out / "combined.yaml")
    after = sum(int((it.classes == starfish).sum()) for it in combined.items("train"))
    assert added > 0 and after == before + added > before
    assert len(load_provenance(out)) == syn.splits["train"].__len__()


def test_cli_bad_recipe_exits_2(porch_data, tmp_path, capsys):
    rc = main(["synthesize", str(porch_data), "--k", "3", "--out", str(tmp_path / "x"), "--recipe", "sunset"])
    assert rc == 2 and "valid names: copy_paste" in capsys.readouterr().err


def test_fiftyone_import_tags_synthetic_images_with_their_provenance(porch_run):
    """The provenance contract, end to end: importing the synthetic set marks every image ``synthetic``."""
    import uuid

    from cvactive.store import connect
    from cvactive.store.labels import import_yolo_dataset

    summary, out = porch_run
    fo = connect()
    name = f"syn-{uuid.uuid4().hex[:8]}"
    try:
        result = import_yolo_dataset(out / "data.yaml", name, splits=("train",), progress=False)
        assert result.synthetic == summary.written
        ds = fo.load_dataset(name)
        view = ds.match_tags("synthetic")
        assert len(view) == summary.written
        prov = load_provenance(out)
        for sample in view.select_fields(["synthetic_parent", "synthetic_recipe", "synthetic_params"]):
            entry = prov[sample.filepath]
            assert sample.synthetic_parent == entry["parent"] and sample.synthetic_recipe == entry["recipe"]
            assert sample.synthetic_params
    finally:
        if fo.dataset_exists(name):
            fo.delete_dataset(name)
