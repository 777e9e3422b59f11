"""The health report says how far a labeled set's class mix is from a target distribution."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cvactive.cli import main
from cvactive.errors import ConfigError
from cvactive.health import check_health
from cvactive.health.report import summary_lines
from cvactive.health.target import instances_to_add, split_target_figures


def test_instances_to_add_reach_every_target_share_without_removing_any():
    counts = np.array([60, 30, 10])
    add = instances_to_add(counts, np.full(3, 1 / 3))
    assert add.tolist() == [0, 30, 50]  # 60 / 60 / 60
    grown = counts + add
    assert np.all(grown / grown.sum() >= 1 / 3 - 1e-12)
    assert instances_to_add(counts, np.array([0.5, 0.5, 0.0])).tolist() == [0, 30, 0]
    assert instances_to_add(np.zeros(3), np.full(3, 1 / 3)).tolist() == [0, 0, 0]


def test_split_figures():
    classes = {"a": {"instances": 6, "images": 2}, "b": {"instances": 2, "images": 2}}
    fig = split_target_figures(classes, ["a", "b"], np.array([0.5, 0.5]))
    assert fig["total_variation_instances"] == 0.25 and fig["total_variation_images"] == 0.0
    assert fig["instances_to_add"] == 4 and fig["per_class"]["b"]["instances_to_add"] == 4


def yolo(root, per_class):
    """Labels only: one image per box, class counts as given."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir(parents=True)
    i = 0
    for c, n in enumerate(per_class):
        for _ in range(n):
            (root / "images" / f"{i}.jpg").write_bytes(b"")
            (root / "labels" / f"{i}.txt").write_text(f"{c} 0.5 0.5 0.2 0.2\n")
            i += 1
    data = root / "data.yaml"
    data.write_text("path: .\ntrain: images\nval: images\nnames: [fish, shark, ray]\n")
    return data


@pytest.mark.parametrize(
    ("target", "shares"),
    [("uniform", [1 / 3] * 3), ("inverse", [0.1, 0.3, 0.6]), ({"fish": 1, "ray": 1}, [0.5, 0.0, 0.5])],
)
def test_report_measures_the_distance_to_the_target(tmp_path, target, shares):
    data = yolo(tmp_path / "d", [60, 20, 10])
    report = check_health(data, image_sizes=False, image_checks=False, class_target=target, progress=False)
    ct = report.figures["class_target"]
    got = [ct["overall"]["per_class"][n]["target_share"] for n in ("fish", "shark", "ray")]
    assert got == pytest.approx(shares, abs=1e-4)
    share = np.array([60, 20, 10]) / 90
    assert ct["overall"]["total_variation_instances"] == pytest.approx(0.5 * np.abs(share - shares).sum(), abs=1e-4)
    assert set(ct["per_split"]) == {"train", "val"}


def test_cli_report_json_markdown_and_summary(tmp_path, capsys):
    data = yolo(tmp_path / "d", [60, 20, 10])
    out = tmp_path / "out"
    main(["health", str(data), "--out", str(out), "--no-images", "--no-plots", "--no-progress"])
    printed = capsys.readouterr().out
    assert "class mix vs uniform target: total variation 0.3333 (train 0.3333, val 0.3333); 180 instances to add" in (
        printed
    )
    f = json.loads((out / "report.json").read_text())
    assert (
        f["class_target"]["overall"]["per_class"]["ray"]["instances_to_add"] == 100
    )  # train and val list the same images
    md = (out / "report.md").read_text()
    assert "### Class mix against the uniform target" in md and "| ray | 33.3% | 11.1% | 11.1% | 11.1% | 100 |" in md


def test_no_target_and_a_bad_target(tmp_path):
    data = yolo(tmp_path / "d", [3, 2, 1])
    report = check_health(data, image_sizes=False, image_checks=False, class_target=None, progress=False)
    assert report.figures["class_target"] is None
    assert not any("class mix" in line for line in summary_lines(report))
    with pytest.raises(ConfigError, match="unknown class 'whale'"):
        check_health(data, image_sizes=False, image_checks=False, class_target={"whale": 1}, progress=False)
