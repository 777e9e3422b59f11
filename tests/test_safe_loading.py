"""Nothing untrusted runs: error models are never unpickled and ``.pt`` files load weights-only.

Each crafted file here would create a marker file if anything unpickled it (its pickle calls
``open(marker, "w")``). Every loader must refuse it with one line (exit 2 on the command line)
and the marker must never appear; real checkpoints (the rebuilt COCO one, one trained by
cvactive) still load with no flag.
"""

from __future__ import annotations

import builtins
import pickle
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cvactive.cli import main
from cvactive.errormodel import ErrorModel, fit_error_model
from cvactive.errormodel.model import load_cached
from cvactive.errormodel.synthetic import synthetic_truth
from cvactive.errors import ConfigError, ModelError
from cvactive.io import write_jsonl
from cvactive.selection.synthetic import synthetic_records


class _Opens:
    """Unpickled, this calls ``open(marker, "w")``: the file appearing proves code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return builtins.open, (str(self.marker), "w")


def crafted_pickle(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps({"format": 1, "model": _Opens(marker)}))
    return path


def crafted_torch(path: Path, marker: Path) -> Path:
    import torch

    torch.save({"model": _Opens(marker), "train_args": {}}, path)
    return path


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


# -- error models ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def samples():
    return synthetic_truth(synthetic_records(120, rng=11), rng=1)


@pytest.mark.parametrize("kind", ["boosting", "logistic"])
def test_a_saved_error_model_is_arrays_and_predicts_exactly_what_was_fitted(samples, kind, tmp_path):
    # threshold 0.5: some boxes fall below it, so the miss model is fitted too (not a constant)
    model = fit_error_model(samples, kind=kind, threshold=0.5, folds=0, seed=0)
    assert all(not note.startswith("constant") for note in model.components.values()), model.components
    path = model.save(tmp_path / "m.errors.npz")
    assert zipfile.is_zipfile(path) and (tmp_path / "m.errors.json").is_file()
    with np.load(path, allow_pickle=False) as npz:  # every member reads without pickle
        assert all(npz[k].dtype != object for k in npz.files)
    loaded = ErrorModel.load(path)
    recs = synthetic_records(30, rng=2)
    (a_box, a_err, a_miss), (b_box, b_err, b_miss) = model.predict_arrays(recs), loaded.predict_arrays(recs)
    assert np.array_equal(np.concatenate(a_box), np.concatenate(b_box))
    assert np.array_equal(a_err, b_err) and np.array_equal(a_miss, b_miss)
    assert loaded.settings == model.settings and loaded.components == model.components
    assert loaded.spec.box_names == model.spec.box_names


def test_an_old_pickle_error_model_is_refused_unopened(samples, tmp_path):
    marker = tmp_path / "ran"
    evil = crafted_pickle(tmp_path / "old.errors.pkl", marker)
    for load in (ErrorModel.load, load_cached):
        with pytest.raises(ConfigError, match=r"old pickle format.*cvactive errors fit"):
            load(evil)
    renamed = crafted_pickle(tmp_path / "old.errors.npz", marker)  # the suffix does not matter
    with pytest.raises(ConfigError, match="old pickle format"):
        ErrorModel.load(renamed)
    assert not marker.exists()


def test_an_npz_that_needs_pickle_or_has_bad_arrays_is_refused(samples, tmp_path):
    marker = tmp_path / "ran"
    hostile = tmp_path / "objects.npz"
    np.savez(hostile, np.array([_Opens(marker)], dtype=object))  # an object array: a pickle inside the zip
    with pytest.raises(ConfigError, match="not a readable error model"):
        ErrorModel.load(hostile)
    assert not marker.exists()

    good = fit_error_model(samples, folds=0, seed=0).save(tmp_path / "good.npz")
    with np.load(good, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["box.left"] = arrays["box.left"] + 10_000  # a child outside its tree
    with (tmp_path / "broken.npz").open("wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(ConfigError, match="child index outside its tree"):
        ErrorModel.load(tmp_path / "broken.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ConfigError, match=r"not a \.npz archive"):
        ErrorModel.load(tmp_path / "text.npz")


def test_select_refuses_a_pickled_error_model_with_one_line_and_writes_nothing(tmp_path, capsys):
    marker = tmp_path / "ran"
    evil = crafted_pickle(tmp_path / "evil.errors.pkl", marker)
    pool = tmp_path / "pool.jsonl"
    write_jsonl(pool, synthetic_records(10, rng=3), class_scores=True)
    out = tmp_path / "picked.jsonl"
    argv = ["select", str(pool), "--k", "3", "--strategy", "learned_error", "--error-model", str(evil)]
    assert main([*argv, "--out", str(out)]) == 2
    assert "old pickle format" in one_error_line(capsys)
    assert not marker.exists() and not out.exists()


def test_select_help_says_how_error_models_load(capsys):
    with pytest.raises(SystemExit):
        main(["select", "--help"])
    assert "never unpickled" in " ".join(capsys.readouterr().out.split())


# -- checkpoints ---------------------------------------------------------------------------------


@pytest.fixture
def evil_pts(tmp_path):
    marker = tmp_path / "ran"
    return marker, [crafted_torch(tmp_path / "evil.pt", marker), crafted_pickle(tmp_path / "raw.pt", marker)]


def test_the_detector_refuses_a_crafted_checkpoint_before_its_code_runs(evil_pts):
    from cvactive.detect.model import Detector
    from cvactive.weights.checkpoint import UntrustedCheckpointError

    marker, files = evil_pts
    for path in files:
        with pytest.raises(UntrustedCheckpointError, match=r"refused to load checkpoint.*--trust-checkpoint"):
            Detector(path, device="cpu")
    assert not marker.exists()


def test_score_with_a_crafted_model_exits_2_with_one_line(evil_pts, ultralytics_images, tmp_path, capsys):
    marker, files = evil_pts
    out = tmp_path / "pool.jsonl"
    for path in files:
        argv = ["score", ultralytics_images["bus"], "--model", str(path), "--out", str(out), "--device", "cpu"]
        assert main([*argv, "--no-progress"]) == 2
        line = one_error_line(capsys)
        assert "refused to load checkpoint" in line and str(path) in line and "--trust-checkpoint" in line
    assert "io.open" in main_line_for(files[0], ultralytics_images, out, capsys)
    assert not marker.exists() and not out.exists()


def main_line_for(path: Path, images: dict[str, str], out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    main(["score", images["bus"], "--model", str(path), "--out", str(out), "--device", "cpu", "--no-progress"])
    return one_error_line(capsys)


@pytest.mark.slow
def test_a_crafted_committee_member_is_refused(evil_pts, openvino_model, ultralytics_images, tmp_path, capsys):
    marker, (evil, _) = evil_pts
    out = tmp_path / "pool.jsonl"
    argv = ["score", ultralytics_images["bus"], "--model", openvino_model, "--measures", "committee_disagreement"]
    assert main([*argv, "--committee", str(evil), "--out", str(out), "--device", "cpu", "--no-progress"]) == 2
    assert "refused to load checkpoint" in capsys.readouterr().err.strip().splitlines()[-1]
    assert not marker.exists() and not out.exists()


def test_training_and_validation_refuse_a_crafted_checkpoint(evil_pts, porch_data, tmp_path):
    from cvactive.train import train_detector, validate_detector
    from cvactive.weights.checkpoint import UntrustedCheckpointError

    marker, (evil, _) = evil_pts
    with pytest.raises(UntrustedCheckpointError):
        train_detector(porch_data, tmp_path / "runs", model=evil, epochs=1, imgsz=64, progress=False)
    with pytest.raises(UntrustedCheckpointError):
        validate_detector(evil, porch_data, {0: "a"}, imgsz=64, device="cpu", work=tmp_path / "val")
    assert not marker.exists()


def test_trust_checkpoint_goes_further_and_says_so(evil_pts, capsys):
    from cvactive.detect.model import Detector

    marker, (evil, _) = evil_pts
    with pytest.raises(ModelError):  # the file then runs its code, and is still no model
        Detector(evil, device="cpu", trust_checkpoint=True)
    assert marker.exists()
    assert "loaded with full unpickling (--trust-checkpoint): code inside the file runs" in capsys.readouterr().err


def test_the_guard_is_scoped_to_the_block_and_its_thread(tmp_path):
    import torch

    from cvactive.weights.checkpoint import UntrustedCheckpointError, checkpoint_loading

    marker = tmp_path / "ran"
    evil = crafted_torch(tmp_path / "evil.pt", marker)
    original = torch.load
    seen: list[str] = []
    with checkpoint_loading():
        assert torch.load is not original
        with pytest.raises(UntrustedCheckpointError):
            torch.load(evil, weights_only=False)  # even an explicit weights_only=False inside the block
        plain = tmp_path / "plain.pt"
        torch.save({"w": torch.ones(2)}, plain)
        other = threading.Thread(target=lambda: seen.append(str(torch.load(plain, weights_only=True)["w"].sum())))
        other.start()
        other.join()
    assert torch.load is original and not marker.exists() and seen == ["tensor(2.)"]


def test_every_command_with_a_model_says_so_in_help(capsys):
    for command in ("score", "harvest", "calibrate", "feed", "loop", "demo"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "--trust-checkpoint" in text and "weights-only" in text, command
    with pytest.raises(SystemExit):
        main(["errors", "fit", "--help"])
    assert "--trust-checkpoint" in capsys.readouterr().out


# -- real checkpoints still load -----------------------------------------------------------------


@pytest.mark.slow
def test_real_checkpoints_load_weights_only_with_no_flag(pretrained_pt, porch_model, ultralytics_images, capsys):
    from cvactive.detect.model import Detector
    from cvactive.sources import read_image

    coco = Detector(pretrained_pt, device="cpu", imgsz=320)
    record = coco.predict([read_image(ultralytics_images["bus"])])[0]
    assert len(coco.names) == 80 and len(record) > 0  # the rebuilt COCO model finds the bus's people
    trained = Detector(porch_model, device="cpu", imgsz=256)  # trained by cvactive: optimizer state, EMA, args
    assert len(trained.names) >= 1
    assert "full unpickling" not in capsys.readouterr().err


@pytest.mark.slow
def test_fine_tuning_from_a_checkpoint_loads_every_pt_weights_only(pretrained_pt, tmp_path, monkeypatch, capsys):
    """The trainer loads the starting .pt, its own last.pt/best.pt and the final validation's model: all guarded."""
    from cvactive import porch
    from cvactive.detect.model import Detector
    from cvactive.train import train_detector
    from cvactive.weights import checkpoint

    guarded: list[str] = []
    inner = checkpoint._weights_only

    def recording(original, f, args, kwargs):  # type: ignore[no-untyped-def]
        guarded.append(Path(str(f)).name)
        return inner(original, f, args, kwargs)

    monkeypatch.setattr(checkpoint, "_weights_only", recording)
    data = porch.write_dataset(tmp_path / "porch", porch.PorchRecipe.load(train=16, val=8, video_seconds=2))
    result = train_detector(
        data, tmp_path / "runs", model=pretrained_pt, epochs=1, imgsz=64, batch=8, progress=False, workers=0
    )
    assert pretrained_pt.name in guarded and {"last.pt", "best.pt"} <= set(guarded), guarded
    assert len(Detector(result.weights, device="cpu", imgsz=64).names) == 3
    assert "full unpickling" not in capsys.readouterr().err
