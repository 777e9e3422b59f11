"""``cvactive errors`` and ``select --error-model`` end to end with the real COCO model on coco128."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fitted(openvino_model, assets, tmp_path_factory):
    from cvactive.cli import main

    tmp = tmp_path_factory.mktemp("errors")
    data = assets / "coco128" / "config.yaml"
    out = tmp / "coco.errors.npz"
    code = main(["errors", "fit", "--model", openvino_model, "--data", str(data), "--split", "val", "--limit", "48",
                 "--folds", "3", "--out", str(out), "--no-progress"])  # fmt: skip
    assert code == 0
    pool = tmp / "pool"
    pool.mkdir()
    for image in sorted((assets / "coco128" / "images" / "train2017").glob("*.jpg"))[:16]:
        (pool / image.name).symlink_to(image)
    scores = tmp / "scores.jsonl"
    code = main(["score", str(pool), "--model", openvino_model, "--out", str(scores), "--conf", "0.05",
                 "--with-class-scores", "--no-progress"])  # fmt: skip
    assert code == 0
    return tmp, out, scores, data


def test_fit_saves_the_predictor_and_its_report(fitted):
    _, out, _, _ = fitted
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["fit"]["images"] == 48 and report["fit"]["kept_boxes"] > 50
    assert report["settings"]["kind"] == "boosting" and report["settings"]["split"] == "val"
    cv = report["cross_validation"]
    assert cv["folds"] == 3 and cv["box"]["auroc"] is not None and "entropy_max" in cv["per_image"]["spearman"]


def test_predict_then_select_equals_select_with_the_error_model(fitted, capsys):
    from cvactive.cli import main
    from cvactive.io import load_jsonl

    tmp, model, scores, _ = fitted
    with_errors = tmp / "with-errors.jsonl"
    assert main(["errors", "predict", str(scores), "--predictor", str(model), "--out", str(with_errors)]) == 0
    records = load_jsonl(with_errors)
    assert len(records) == 16 and all(r.image_scores["learned_errors"] > 0 for r in records)
    a, b = tmp / "a.jsonl", tmp / "b.jsonl"
    assert main(["select", str(with_errors), "--k", "5", "--strategy", "learned_error", "--out", str(a)]) == 0
    assert main(["select", str(scores), "--k", "5", "--strategy", "learned_error", "--error-model", str(model),
                 "--out", str(b)]) == 0  # fmt: skip
    picks_a, picks_b = [r.key for r in load_jsonl(a)], [r.key for r in load_jsonl(b)]
    assert picks_a == picks_b
    expected = sorted(records, key=lambda r: -r.image_scores["learned_errors"])[:5]
    assert sorted(picks_a) == sorted(r.key for r in expected)
    capsys.readouterr()
    assert main(["select", str(scores), "--k", "5", "--strategy", "learned_error"]) == 2
    assert "cvactive errors fit" in capsys.readouterr().err


def test_evaluate_on_other_images_and_a_missing_predictor(fitted, openvino_model, capsys):
    from cvactive.cli import main

    tmp, model, scores, data = fitted
    report = tmp / "eval.json"
    code = main(["errors", "evaluate", "--predictor", str(model), "--model", openvino_model, "--data", str(data),
                 "--split", "train", "--limit", "16", "--out", str(report), "--no-progress"])  # fmt: skip
    assert code == 0
    assert json.loads(report.read_text())["per_image"]["images"] == 16
    assert "per image (16 images)" in capsys.readouterr().out
    assert main(["errors", "predict", str(scores), "--predictor", str(tmp / "none.pkl"), "--out", "x.jsonl"]) == 2
    assert "fit one with `cvactive errors fit`" in capsys.readouterr().err


def test_harvest_rule_scores_frames_like_the_strategy(fitted):
    from cvactive.errormodel import ErrorModel
    from cvactive.errormodel.model import learned_utility
    from cvactive.errors import ConfigError
    from cvactive.harvest.rules import make_rule
    from cvactive.io import load_jsonl

    _, model, scores, _ = fitted
    records = load_jsonl(scores)
    attached = ErrorModel.load(model).attach(records)
    utility = np.array(
        [learned_utility(r.image_scores["learned_box_errors"], r.image_scores["learned_misses"], 0.0) for r in attached]
    )
    cut = float(np.median(utility))
    rule = make_rule({"kind": "learned_error", "predictor": str(model), "min_value": cut})
    assert [rule.matches(r) for r in records] == (utility >= cut).tolist()
    with pytest.raises(ConfigError, match="predictor: missing; expected a non-empty string"):
        make_rule({"kind": "learned_error"})
    with pytest.raises(ConfigError, match="does not exist"):
        make_rule({"kind": "learned_error", "predictor": "nowhere.pkl"})


def _doc_yaml(page: str, first_key: str) -> dict:
    """The first ```yaml block of a docs page whose mapping starts with ``first_key``."""
    import re
    from pathlib import Path

    import yaml

    text = (Path(__file__).resolve().parent.parent / "docs" / page).read_text()
    for block in re.findall(r"```ya?ml\n(.*?)```", text, re.S):
        data = yaml.safe_load(block)
        if isinstance(data, dict) and next(iter(data)) == first_key:
            return data
    raise AssertionError(f"no yaml block starting with {first_key!r} in docs/{page}")


def test_the_documented_learned_error_harvest_config_runs(fitted, openvino_model, assets, tmp_path, capsys):
    """docs/learned-error.md's harvest rule, as written there (its predictor path pointed at a real
    fitted error model), harvests a real video clip; it keeps the frames whose scored record reaches
    min_value."""
    import yaml

    from cvactive.cli import main
    from cvactive.io import load_jsonl
    from cvactive.sources import iter_frames, write_video

    _, model, _, _ = fitted
    config = _doc_yaml("learned-error.md", "rules")
    ((rule,),) = [config["rules"]]
    assert rule["kind"] == "learned_error" and rule["predictor"].endswith(".errors.npz")
    rule["predictor"] = str(model)
    (tmp_path / "harvest.yaml").write_text(yaml.safe_dump(config))
    video = assets / "videos" / "one-by-one-person-detection.mp4"  # people walk up one at a time
    frames = [f for f, meta in iter_frames(video, stride=50)][:24]
    clip = tmp_path / "clip.mp4"
    write_video(clip, frames, fps=10, size=(frames[0].shape[1], frames[0].shape[0]))
    common = ["--model", openvino_model, "--conf", "0.05"]
    out = tmp_path / "h"
    code = main(["harvest", str(clip), "--config", str(tmp_path / "harvest.yaml"), "--out", str(out), *common,
                 "--no-progress"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "looked at 24 frames, inferred 24" in capsys.readouterr().out
    scores = tmp_path / "clip.jsonl"
    score = ["score", str(clip), *common, "--batch", "1", "--with-class-scores", "--out", str(scores), "--no-progress"]
    assert main(score) == 0  # batch 1, as the harvest infers
    from cvactive.errormodel.model import load_cached, record_utility

    utility = {r.frame: record_utility(load_cached(str(model)), r, 1.0, False) for r in load_jsonl(scores)}
    kept = {line["frame"] for line in map(json.loads, (out / "manifest.jsonl").read_text().splitlines())}
    assert 0 < len(kept) < 24, kept  # the rule decides, frame by frame
    cut = rule["min_value"]
    # The same as the strategy's utility of `cvactive score`'s records, up to frames within 10% of the
    # cut (the harvest's detections of a frame are not bit-identical to score's: 1 of 24 was, measured).
    assert {f for f, u in utility.items() if u >= 1.1 * cut} <= kept
    assert not kept & {f for f, u in utility.items() if u <= 0.9 * cut}
