"""Health check end to end on tiny synthetic YOLO data sets and harvest folders (real OpenCV, PIL, matplotlib)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from builders import from_confidences

from cvactive.cli import main
from cvactive.errors import ConfigError, DatasetError
from cvactive.health import analyse, check_health, load_table
from cvactive.health.report import summary_lines
from cvactive.io import write_jsonl
from cvactive.record import Harvested

NAMES = ["cat", "dog", "bird"]


def make_yolo(root: Path, rng: np.random.Generator, n_train: int = 8, n_val: int = 4) -> Path:
    """A tiny YOLO data set of distinct smooth random images (64x48) with 1-3 boxes each; returns data.yaml."""
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(n):
            level = 20 if i == 0 else 128  # the first image of each split is dark
            coarse = rng.normal(level, 40, (4, 5, 3)).astype(np.float32)  # structure dHash can see
            smooth = cv2.resize(coarse, (64, 48), interpolation=cv2.INTER_CUBIC)
            img = np.clip(smooth + rng.normal(0, 5, smooth.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / "images" / split / f"{split}{i}.jpg"), img)
            k = 1 + i % 3
            lines = [f"{(i + j) % 3} {0.2 + 0.2 * j:.3f} 0.5 0.2 0.3" for j in range(k)]
            (root / "labels" / split / f"{split}{i}.txt").write_text("\n".join(lines) + "\n")
    data = root / "data.yaml"
    data.write_text(f"train: images/train\nval: images/val\nnames: {NAMES}\n")  # no path: the YAML's folder
    return data


def plant_errors(data: Path) -> dict[str, tuple[str, int | None]]:
    """Plant a coordinate of 1.4, a class id of 99, a malformed line and a train image copied into val."""
    root = data.parent
    lab = root / "labels" / "train"
    (lab / "train1.txt").write_text((lab / "train1.txt").read_text() + "0 1.4 0.5 0.1 0.1\n")  # line 3
    (lab / "train2.txt").write_text("99 0.5 0.5 0.1 0.1\n" + (lab / "train2.txt").read_text())  # line 1
    (lab / "train3.txt").write_text((lab / "train3.txt").read_text() + "1 0.5 0.5\n")  # line 2
    shutil.copy(root / "images" / "train" / "train4.jpg", root / "images" / "val" / "leak.jpg")
    shutil.copy(lab / "train4.txt", root / "labels" / "val" / "leak.txt")
    return {
        "out_of_range": (str(lab / "train1.txt"), 3),
        "unknown_class": (str(lab / "train2.txt"), 1),
        "malformed": (str(lab / "train3.txt"), 2),
    }


def test_counts_per_split_and_class(tmp_path, rng):
    data = make_yolo(tmp_path / "d", rng)
    report = check_health(data, progress=False)
    f = report.figures
    # boxes per image cycle 1, 2, 3; class of box j on image i is (i + j) % 3
    assert f["per_split"]["train"]["boxes"] == 1 + 2 + 3 + 1 + 2 + 3 + 1 + 2
    assert f["per_split"]["val"]["boxes"] == 1 + 2 + 3 + 1
    assert f["overall"]["boxes"] == 22
    inst = {k: v["instances"] for k, v in f["overall"]["classes"].items()}
    assert sum(inst.values()) == 22
    table = load_table(data)
    assert inst == {n: int((table.box_class == k).sum()) for k, n in enumerate(NAMES)}
    # every image is 64x48: a 0.2 x 0.3 box is 12.8 x 14.4 px, a COCO "small" box
    assert f["overall"]["classes"]["cat"]["small"] == inst["cat"]
    assert f["overall"]["classes"]["cat"]["sqrt_area_px"]["median"] == pytest.approx(np.sqrt(12.8 * 14.4), rel=1e-4)
    assert f["images"]["common_sizes"] == [{"width": 64, "height": 48, "images": 12}]
    assert f["images"]["brightness"]["overall"]["dark"] == 2  # the first image of each split
    assert f["label_errors"]["total"] == 0 and f["images"]["leakage"]["exact_pairs"] == 0
    assert report.passed is False  # min_instances 10 by default: 3 classes of ~7 boxes
    assert [g.name for g in report.failed] == ["min_instances"]


def test_planted_errors_each_reported_with_file_and_line_and_gate_exits_1(tmp_path, rng, capsys):
    data = make_yolo(tmp_path / "d", rng)
    planted = plant_errors(data)
    out = tmp_path / "report"
    code = main(["health", str(data), "--out", str(out), "--no-progress"])
    assert code == 1
    printed = capsys.readouterr().out
    assert "health: FAIL (min_instances, max_label_errors, leakage)" in printed
    f = json.loads((out / "report.json").read_text())
    found = {(p["kind"], p["path"], p["line"]) for p in f["label_errors"]["listed"]}
    for kind, (path, line) in planted.items():
        assert (kind, path, line) in found, kind
    assert f["label_errors"]["total"] == 3
    leak = f["images"]["leakage"]["exact"]
    assert len(leak) == 1 and {Path(leak[0]["a"]).name, Path(leak[0]["b"]).name} == {"train4.jpg", "leak.jpg"}
    assert {leak[0]["split_a"], leak[0]["split_b"]} == {"train", "val"}
    gates = {g["name"]: g["passed"] for g in f["gates"]}
    assert gates["max_label_errors"] is False and gates["leakage"] is False
    for name in ("report.md", "class_counts.png", "centre_heatmaps.png", "box_sizes.png", "brightness.png"):
        assert (out / name).stat().st_size > 0
    md = (out / "report.md").read_text()
    assert f"{planted['unknown_class'][0]} | 1 |" in md and "**FAIL**" in md
    for png in out.glob("*.png"):
        assert cv2.imread(str(png)) is not None  # real, decodable PNGs


def test_lenient_config_passes_exit_0_and_html(tmp_path, rng, capsys):
    data = make_yolo(tmp_path / "d", rng)
    cfg = tmp_path / "health.yaml"
    cfg.write_text("min_instances: 5\nmax_imbalance: 3\nmax_label_errors: 0\n")
    code = main(["health", str(data), "--config", str(cfg), "--out", str(tmp_path / "o"), "--html", "--no-progress"])
    assert code == 0
    assert "health: PASS" in capsys.readouterr().out
    html = (tmp_path / "o" / "report.html").read_text()
    assert "<table>" in html and 'src="class_counts.png"' in html


def test_unreadable_input_and_bad_config_exit_2(tmp_path, rng, capsys):
    assert main(["health", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "data.yaml").write_text("train: images/train\nnames: [a]\n")
    assert main(["health", str(broken)]) == 2
    assert "split folder" in capsys.readouterr().err
    assert main(["health"]) == 2
    data = make_yolo(tmp_path / "d", rng)
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("min_instance: 5\n")
    assert main(["health", str(data), "--config", str(cfg)]) == 2
    assert "min_instances" in capsys.readouterr().err  # the error lists the valid options
    with pytest.raises(ConfigError, match=r"error_kinds\[0\]: got 'typo', expected one of out_of_range"):
        check_health(data, error_kinds=["typo"], progress=False)


def test_empty_label_file_missing_label_file_and_unreadable_image(tmp_path, rng):
    data = make_yolo(tmp_path / "d", rng)
    root = data.parent
    (root / "labels" / "train" / "train5.txt").write_text("")
    (root / "labels" / "train" / "train6.txt").unlink()
    (root / "images" / "val" / "val3.jpg").write_bytes(b"not a jpeg")
    report = check_health(data, progress=False, min_instances=None, max_imbalance=None)
    f = report.figures
    assert f["per_split"]["train"]["empty_label_files"] == 1
    assert f["empty_label_files"] == [str(root / "labels" / "train" / "train5.txt")]
    assert f["per_split"]["train"]["images_without_label_file"] == 1
    kinds = {p["kind"]: p["path"] for p in f["label_errors"]["listed"]}
    assert kinds["image_without_label"] == str(root / "images" / "train" / "train6.jpg")
    assert kinds["unreadable_image"] == str(root / "images" / "val" / "val3.jpg")
    assert [g.name for g in report.failed] == ["max_label_errors"]
    # only counted kinds fail the gate
    lenient = check_health(data, progress=False, error_kinds=["malformed"], min_instances=None, max_imbalance=None)
    assert lenient.passed and lenient.figures["label_errors"]["total"] == 2


def test_near_duplicate_across_splits_is_leakage(tmp_path, rng):
    data = make_yolo(tmp_path / "d", rng)
    root = data.parent
    img = cv2.imread(str(root / "images" / "train" / "train2.jpg"))
    cv2.imwrite(str(root / "images" / "val" / "near.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 60])  # re-encoded
    (root / "labels" / "val" / "near.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    report = check_health(data, progress=False, min_instances=None)
    lk = report.figures["images"]["leakage"]
    assert lk["exact_pairs"] == 0 and lk["near_pairs"] == 1
    assert {Path(lk["near"][0]["a"]).name, Path(lk["near"][0]["b"]).name} == {"train2.jpg", "near.jpg"}
    assert [g.name for g in report.failed] == ["leakage"]
    off = check_health(data, progress=False, min_instances=None, near_duplicate_distance=None)
    assert off.passed


def test_image_cache_and_sampling(tmp_path, rng):
    data = make_yolo(tmp_path / "d", rng)
    first = check_health(data, out=tmp_path / "o", plots=False, progress=False)
    assert first.figures["images"]["cache_hits"] == 0
    assert (tmp_path / "o" / "image-cache.json").is_file()
    second = check_health(data, out=tmp_path / "o", plots=False, progress=False)
    assert second.figures["images"]["cache_hits"] == 12
    assert second.figures["images"]["brightness"] == first.figures["images"]["brightness"]
    a = check_health(data, progress=False, max_images=5, seed=1).figures["images"]
    b = check_health(data, progress=False, max_images=5, seed=1).figures["images"]
    assert a["pixel_checked"] == 5 and a["sampled"] and a["brightness"] == b["brightness"]
    labels_only = check_health(
        data, out=tmp_path / "labels-only", progress=False, image_sizes=False, image_checks=False
    ).figures
    assert json.loads((tmp_path / "labels-only" / "report.json").read_text()) == labels_only  # strict JSON, no NaN
    assert (tmp_path / "labels-only" / "brightness.png").is_file()
    assert labels_only["images"]["pixel_checked"] == 0 and not labels_only["overall"]["sizes_known"]
    assert labels_only["overall"]["boxes"] == 22


def test_harvest_manifest_reports_predictions(tmp_path, rng, capsys):
    folder = tmp_path / "harvest"
    (folder / "frames").mkdir(parents=True)
    records = []
    for i in range(4):
        cv2.imwrite(str(folder / "frames" / f"f{i}.jpg"), np.full((40, 80, 3), 30 + 60 * i, np.uint8))
        n = i % 3
        records.append(
            from_confidences(
                np.full(n, 0.5),
                np.arange(n) * 2,  # ids 0 and 2: the manifest never names id 1
                box=(8.0, 4.0, 24.0, 20.0),
                width=80,
                height=40,
                source="cam.mp4",
                frame=i * 10,
                names={0: "person", 2: "car"},
                harvested=Harvested(path=f"frames/f{i}.jpg"),
            )
        )
    write_jsonl(folder / "manifest.jsonl", records)
    table = load_table(folder)
    assert table.kind == "harvest" and table.splits == ("harvest",)
    assert table.names == {0: "person", 1: "car"} and table.box_class.tolist() == [0, 0, 1]
    np.testing.assert_allclose(table.boxes[0], [0.2, 0.3, 0.2, 0.4], atol=1e-6)
    report = analyse(table, progress=False, min_instances=None, max_imbalance=None)
    f = report.figures
    assert f["predictions"] and f["overall"]["boxes"] == 0 + 1 + 2 + 0
    assert {k: v["instances"] for k, v in f["overall"]["classes"].items()} == {"person": 2, "car": 1}
    assert f["images"]["pixel_checked"] == 4 and f["images"]["brightness"]["overall"]["dark"] == 1
    assert main(["health", str(folder), "--no-progress"]) == 1  # min_instances 10 fails on 3 predictions
    assert "predicted boxes" in capsys.readouterr().out
    (folder / "manifest.jsonl").write_text("{not json\n")
    with pytest.raises(DatasetError, match=r"manifest\.jsonl:1"):
        load_table(folder)


def test_summary_names_rarest_and_failing_gates(tmp_path, rng):
    data = make_yolo(tmp_path / "d", rng)
    report = check_health(data, progress=False)
    lines = summary_lines(report)
    assert lines[-1] == "health: FAIL (min_instances)"
    assert any(line.startswith("  gate min_instances: FAIL") for line in lines)


def test_symlinked_label_files_still_match_their_images(tmp_path, rng):
    data = make_yolo(tmp_path / "d", rng)
    lab = data.parent / "labels" / "train" / "train0.txt"
    elsewhere = tmp_path / "kept" / "train0.txt"
    elsewhere.parent.mkdir()
    shutil.move(lab, elsewhere)
    lab.symlink_to(elsewhere)
    table = load_table(data)
    assert table.issues == [] and table.num_images == 12 and len(table.box_class) == 22


def test_shipped_config_keys_are_analyse_options(tmp_path, rng):
    from cvactive._config import CONFIG_DIR, load_yaml
    from cvactive.config import check_kwargs

    options = check_kwargs(analyse, load_yaml(CONFIG_DIR / "health.yaml"), "configs/health.yaml")
    assert options["min_instances"] == 10 and options["allow_leakage"] is False
    report = check_health(make_yolo(tmp_path / "d", rng), **{**options, "progress": False})
    assert {g.name for g in report.gates} == {"min_instances", "max_imbalance", "max_label_errors", "leakage"}
