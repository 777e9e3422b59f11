"""``cvactive select``: fast tests on synthetic scores files, and every strategy on a real scores file
made by ``cvactive score --embed`` on the synthetic porch data (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cvactive.cli import main
from cvactive.io import write_jsonl
from cvactive.selection import available_strategies, get_strategy
from cvactive.selection.synthetic import synthetic_records


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def scores_file(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("select")
    records = synthetic_records(80, rng=1)
    scores, labeled = folder / "scores.jsonl", folder / "labeled.jsonl"
    write_jsonl(scores, records, class_scores=True)
    write_jsonl(labeled, records[:20])
    return scores, labeled


def test_list_prints_every_strategy_with_a_description(capsys):
    assert main(["select", "--list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == available_strategies()
    assert all(len(line.split(None, 1)[1]) > 20 for line in out)


def test_select_writes_ranked_records(scores_file, tmp_path, capsys):
    scores, labeled = scores_file
    out = tmp_path / "batch.jsonl"
    args = ["select", str(scores), "--k", "12", "--strategy", "hybrid", "--labeled", str(labeled), "--out", str(out)]
    assert main(args) == 0
    lines = read_lines(out)
    assert [ln["rank"] for ln in lines] == list(range(1, 13))
    assert all(ln["strategy"] == "hybrid" and isinstance(ln["utility"], float) for ln in lines)
    labeled_sources = {ln["source"] for ln in read_lines(labeled)}
    assert not labeled_sources & {ln["source"] for ln in lines}
    assert len({ln["source"] for ln in lines}) == 12
    assert all(len(ln["embedding"]) == 16 and "class_scores" in ln["boxes"][0] for ln in lines if ln["boxes"])
    text = capsys.readouterr().out
    assert "selected 12 of 80 records with 'hybrid', 20 labeled records given" in text
    assert "options: score=entropy_max, factor=10" in text  # from configs/select.yaml


def test_random_prints_its_draws_as_draws_not_utility(scores_file, capsys):
    # issue #25: `random` printed its uniform draws as "utility"
    assert main(["select", str(scores_file[0]), "--k", "3", "--strategy", "random"]) == 0
    picks = [ln.split() for ln in capsys.readouterr().out.splitlines() if ln.startswith("  ") and "options" not in ln]
    assert len(picks) == 3 and all(p[1] == "draw" for p in picks)
    assert main(["select", str(scores_file[0]), "--k", "3", "--strategy", "uncertainty"]) == 0
    assert "utility" in capsys.readouterr().out


def test_config_and_overrides(scores_file, tmp_path, capsys):
    scores, _ = scores_file
    config = tmp_path / "sel.yaml"
    config.write_text("strategy: uncertainty\nk: 4\nseed: 3\nstrategies:\n  uncertainty: {score: margin_max}\n")
    assert main(["select", str(scores), "--config", str(config)]) == 0
    assert "selected 4 of 80 records with 'uncertainty'" in capsys.readouterr().out
    assert main(["select", str(scores), "--config", str(config), "--set", "score=ratio_max"]) == 0
    assert "options: score=ratio_max" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--strategy", "smart"], "strategy: got 'smart', expected a selection strategy: one of random, uncertainty"),
        (["--strategy", "cluster", "--set", "picks=centroid"], "unknown option(s) ['picks']; valid options: pick"),
        (["--strategy", "cluster", "--set", "pick=median"], "unknown pick 'median'; valid picks: centroid"),
        (["--strategy", "uncertainty", "--set", "score=nope"], "unknown field 'nope'"),
    ],
)
def test_bad_options_exit_2_with_the_valid_choices(scores_file, capsys, extra, message):
    scores, _ = scores_file
    assert main(["select", str(scores), "--k", "3", *extra]) == 2
    assert message in capsys.readouterr().err


def test_bad_config_key_and_missing_file(scores_file, tmp_path, capsys):
    scores, _ = scores_file
    config = tmp_path / "bad.yaml"
    config.write_text("strategy: coreset\nbatch: 4\n")
    assert main(["select", str(scores), "--config", str(config)]) == 2
    assert "unknown option(s) ['batch']" in capsys.readouterr().err
    assert main(["select", str(tmp_path / "missing.jsonl"), "--k", "3"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["select"]) == 2
    assert "--list" in capsys.readouterr().err


def test_k_above_the_pool_warns_and_selects_all(scores_file, tmp_path, capsys):
    scores, labeled = scores_file
    out = tmp_path / "all.jsonl"
    assert main(["select", str(scores), "--k", "500", "--labeled", str(labeled), "--out", str(out)]) == 0
    assert "warning: k=500 is larger than the 60 unlabeled pool items" in capsys.readouterr().out
    assert len(read_lines(out)) == 60


@pytest.mark.slow
def test_every_strategy_on_a_real_scores_file(porch_data, tmp_path, capsys):
    """``cvactive score --embed`` on the porch images (random-init yolov8n.yaml), then every strategy."""
    images = porch_data.parent / "images" / "train"
    scores, labeled = tmp_path / "scores.jsonl", tmp_path / "labeled.jsonl"
    args = ["score", str(images), "--model", "yolov8n.yaml", "--embed", "--conf", "0.0001", "--imgsz", "320"]
    assert main([*args, "--out", str(scores), "--no-progress"]) == 0
    lines = scores.read_text().splitlines()
    assert len(lines) == 60 and all(len(json.loads(ln)["embedding"]) == 448 for ln in lines)
    labeled.write_text("\n".join(lines[:15]) + "\n")
    labeled_sources = {json.loads(ln)["source"] for ln in lines[:15]}
    capsys.readouterr()
    for name in available_strategies():
        out = tmp_path / f"{name}.jsonl"
        args = ["select", str(scores), "--k", "10", "--strategy", name, "--labeled", str(labeled)]
        if get_strategy(name).needs_error_model:  # with a fitted predictor: tests/test_errors_cli.py
            assert main(args) == 2 and "cvactive errors fit" in capsys.readouterr().err
            continue
        code = main([*args, "--out", str(out)])
        assert code == 0, capsys.readouterr().err
        chosen = read_lines(out)
        assert [c["rank"] for c in chosen] == list(range(1, 11)), name
        sources = [c["source"] for c in chosen]
        assert len(set(sources)) == 10 and not set(sources) & labeled_sources, name
        assert all(len(c["embedding"]) == 448 for c in chosen), name
        assert f"selected 10 of 60 records with {name!r}" in capsys.readouterr().out


def test_the_python_example_in_the_docs_prints_what_they_show(capsys):
    """docs/selection.md shows a Python example and its output: run it and compare."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "selection.md").read_text()
    code, rest = text.split("```python\n", 1)[1].split("```\n", 1)
    shown = rest.split("```\n")[1]  # the plain block right after the code block
    exec(compile(code, "selection.md", "exec"), {})
    assert capsys.readouterr().out == shown
