"""Hostile outputs and killed runs (issue #24): every command that writes checks its output before
any work, writes whole files, and leaves what it did not write byte for byte.

Each hostile case runs the real ``cvactive`` command in a subprocess (so a traceback, an abort or
a stray exit code shows) and asserts: exit 2, exactly one line on stderr, no ``Traceback``, and
the folder it ran in exactly as it was (same files, same bytes, nothing new). The kill tests
SIGKILL a long command midway, run it again and compare with an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "cvactive.cli"]


def cli(*args: object, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=timeout, env=dict(os.environ)
    )


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every entry under ``root``: a file's bytes, a link's target, ``dir`` for a folder."""
    seen: dict[str, bytes | str] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            seen[rel] = "link -> " + os.readlink(p)
        elif p.is_dir():
            seen[rel] = "dir"
        else:
            seen[rel] = p.read_bytes()
    return seen


def assert_refused(proc: subprocess.CompletedProcess[str], before: dict[str, bytes | str], root: Path, match: str):
    err = proc.stderr
    assert proc.returncode == 2, (proc.returncode, err[-3000:])
    assert "Traceback" not in err and "FATAL" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert match in err, err
    after = snapshot(root)
    assert sorted(after) == sorted(before), f"files appeared or went: {set(after) ^ set(before)}"
    assert all(after[k] == before[k] for k in before), [k for k in before if after[k] != before[k]]


# -- small real inputs ----------------------------------------------------------------------------
def tiny_yolo(root: Path, labels: list[str] | None, size: tuple[int, int] = (64, 80)) -> Path:
    """A YOLO set of random images (one per label text; ``labels=None``: 2 images, an empty labels folder)."""
    import cv2

    (root / "images" / "train").mkdir(parents=True)
    (root / "labels" / "train").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, text in enumerate(labels if labels is not None else ["", ""]):
        cv2.imwrite(str(root / "images" / "train" / f"im{i}.jpg"), rng.integers(0, 255, (*size, 3), np.uint8))
        if labels is not None:
            (root / "labels" / "train" / f"im{i}.txt").write_text(text)
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/train\nnames: [a, b]\n")
    return root / "data.yaml"


def pool(path: Path, n: int = 4) -> Path:
    from builders import random_record

    from cvactive.detect.scorer import Scorer
    from cvactive.io import write_jsonl

    records = [replace(Scorer()(random_record(n=3, seed=i)), source=f"img{i}.jpg") for i in range(n)]
    write_jsonl(path, records)
    return path


LABELS = ["0 0.5 0.5 0.5 0.5\n", "1 0.3 0.3 0.2 0.2\n0 0.7 0.7 0.3 0.3\n"]


# -- the hostile cases: each returns (argv, the text the one stderr line must hold) ---------------
def _score_out_is_folder(t: Path) -> tuple[list[object], str]:
    tiny_yolo(t / "d", LABELS)
    (t / "pools").mkdir()
    (t / "pools" / "old.jsonl").write_text("keep\n")
    return ["score", t / "d" / "images" / "train", "--out", t / "pools"], "is a folder"


def _score_out_under_file(t: Path) -> tuple[list[object], str]:
    tiny_yolo(t / "d", LABELS)
    pool(t / "pool.jsonl")
    return ["score", t / "d" / "images" / "train", "--out", t / "pool.jsonl" / "x.jsonl"], "is a file, not a folder"


def _score_out_is_the_source(t: Path) -> tuple[list[object], str]:
    tiny_yolo(t / "d", LABELS)
    image = t / "d" / "images" / "train" / "im0.jpg"
    return ["score", image, "--out", image], "is also an input"


def _score_out_is_a_file_of_the_source_folder(t: Path) -> tuple[list[object], str]:
    tiny_yolo(t / "d", LABELS)
    folder = t / "d" / "images" / "train"
    return ["score", folder, "--out", folder / "im1.jpg"], "is also an input"


def _score_partial_name_is_a_folder(t: Path) -> tuple[list[object], str]:
    tiny_yolo(t / "d", LABELS)
    (t / "pool.jsonl.partial").mkdir()
    return ["score", t / "d" / "images" / "train", "--out", t / "pool.jsonl"], "is a folder"


def _select_out_is_the_pool(t: Path) -> tuple[list[object], str]:
    pool(t / "pool.jsonl")
    return ["select", t / "pool.jsonl", "--k", 2, "--strategy", "random", "--out", t / "pool.jsonl"], "also an input"


def _select_out_is_a_hard_link_of_the_pool(t: Path) -> tuple[list[object], str]:
    pool(t / "pool.jsonl")
    os.link(t / "pool.jsonl", t / "same.jsonl")
    return ["select", t / "pool.jsonl", "--k", 2, "--strategy", "random", "--out", t / "same.jsonl"], "also an input"


def _select_out_is_a_symlink_to_the_pool(t: Path) -> tuple[list[object], str]:
    pool(t / "pool.jsonl")
    (t / "link.jsonl").symlink_to(t / "pool.jsonl")
    return ["select", t / "pool.jsonl", "--k", 2, "--strategy", "random", "--out", t / "link.jsonl"], "also an input"


def _select_out_is_the_labeled_file(t: Path) -> tuple[list[object], str]:
    pool(t / "pool.jsonl")
    pool(t / "labeled.jsonl", n=1)
    argv: list[object] = ["select", t / "pool.jsonl", "--k", 2, "--strategy", "random"]
    return [*argv, "--labeled", t / "labeled.jsonl", "--out", t / "labeled.jsonl"], "also an input"


def _select_out_is_folder(t: Path) -> tuple[list[object], str]:
    pool(t / "pool.jsonl")
    (t / "sel").mkdir()
    return ["select", t / "pool.jsonl", "--k", 2, "--strategy", "random", "--out", t / "sel"], "is a folder"


def _synthesize_out_holds_user_files(t: Path) -> tuple[list[object], str]:
    data = tiny_yolo(t / "d", LABELS)
    (t / "mine").mkdir()
    (t / "mine" / "notes.txt").write_text("mine")
    return ["synthesize", data, "--k", 2, "--out", t / "mine", "--no-progress"], "not empty"


def _synthesize_out_is_a_file(t: Path) -> tuple[list[object], str]:
    data = tiny_yolo(t / "d", LABELS)
    (t / "out").write_text("a file")
    return ["synthesize", data, "--k", 2, "--out", t / "out", "--no-progress"], "is a file"


def _synthesize_out_is_the_data_set(t: Path) -> tuple[list[object], str]:
    data = tiny_yolo(t / "d", LABELS)
    return ["synthesize", data, "--k", 2, "--out", t / "d", "--no-progress"], "overlaps the input"


def _synthesize_out_is_another_commands_output(t: Path) -> tuple[list[object], str]:
    data = tiny_yolo(t / "d", LABELS)
    (t / "exp").mkdir()
    (t / "exp" / ".cvactive-owner.json").write_text('{"command": "export", "files": ["data.yaml"]}')
    (t / "exp" / "data.yaml").write_text("names: [a]\n")
    return ["synthesize", data, "--k", 2, "--out", t / "exp", "--no-progress"], "output of cvactive export"


def _health_empty_labels_folder(t: Path) -> tuple[list[object], str]:
    tiny_yolo(t / "d", None)
    return ["health", t / "d", "--out", t / "report", "--no-progress"], "has a label file"


def _health_out_is_a_file(t: Path) -> tuple[list[object], str]:
    tiny_yolo(t / "d", LABELS)
    (t / "report").write_text("not a folder")
    return ["health", t / "d", "--out", t / "report", "--no-progress"], "is a file"


def _weights_negative_calib_limit(t: Path) -> tuple[list[object], str]:
    return ["weights", "from-openvino", t / "ir", "--out", t / "m.pt", "--calib-limit", -3], "--calib-limit '-3'"


def _weights_zero_calib_limit(t: Path) -> tuple[list[object], str]:
    return ["weights", "from-openvino", t / "ir", "--out", t / "m.pt", "--calib-limit", 0], "or 'all'"


def _weights_out_is_a_folder(t: Path) -> tuple[list[object], str]:
    (t / "ckpt").mkdir()
    return ["weights", "from-openvino", t / "ir", "--out", t / "ckpt"], "is a folder"


HOSTILE: dict[str, Callable[[Path], tuple[list[object], str]]] = {
    name.lstrip("_"): fn
    for name, fn in list(globals().items())
    if name.startswith(("_score_out", "_score_partial", "_select_", "_synthesize_", "_health_", "_weights_"))
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_output_is_one_line_exit_2_and_touches_nothing(case: str, tmp_path: Path) -> None:
    argv, match = HOSTILE[case](tmp_path)
    before = snapshot(tmp_path)
    assert_refused(cli(*argv), before, tmp_path, match)


@contextlib.contextmanager
def read_only_folder(folder: Path) -> Iterator[Path]:
    """A small tmpfs at ``folder`` holding ``old.jsonl``, remounted read-only (root cannot write it either)."""
    with tiny_disk(folder, "1m"):
        pool(folder / "old.jsonl", n=2)
        (folder / "sub").mkdir()
        if subprocess.run(["mount", "-o", "remount,ro", str(folder)], capture_output=True).returncode != 0:
            pytest.skip("cannot remount the tmpfs read-only")
        yield folder


READ_ONLY: dict[str, Callable[[Path, Path], list[object]]] = {
    # (tmp, the read-only folder) -> argv
    "score --out in it": lambda t, ro: ["score", t / "d" / "images" / "train", "--out", ro / "pool.jsonl"],
    "score --out replacing a file in it": lambda t, ro: [
        "score",
        t / "d" / "images" / "train",
        "--out",
        ro / "old.jsonl",
    ],
    "select --out in it": lambda t, ro: [
        "select",
        ro / "old.jsonl",
        "--k",
        1,
        "--strategy",
        "random",
        "--out",
        ro / "s.jsonl",
    ],
    "synthesize --out in it": lambda t, ro: ["synthesize", t / "d" / "data.yaml", "--k", 1, "--out", ro / "sub"],
    "health --out in it": lambda t, ro: ["health", t / "d", "--out", ro / "report", "--no-progress"],
    "weights --out in it": lambda t, ro: ["weights", "from-openvino", t / "ir", "--out", ro / "m.pt"],
}


@pytest.mark.parametrize("case", sorted(READ_ONLY))
def test_read_only_output_is_one_line_exit_2(case: str, tmp_path: Path) -> None:
    tiny_yolo(tmp_path / "d", LABELS)
    with read_only_folder(tmp_path / "ro") as ro:
        before = snapshot(tmp_path)
        assert_refused(cli(*READ_ONLY[case](tmp_path, ro)), before, tmp_path, "is not writable")


# -- score: resume, keep, full disk, kill --------------------------------------------------------
def test_resume_drops_a_half_written_last_line(tmp_path: Path) -> None:
    from cvactive.detect.stage import ScoreSummary, _complete_lines

    partial = pool(tmp_path / "p.jsonl.partial", n=3)
    whole = partial.read_bytes()
    partial.write_bytes(whole + b'{"source":"img9.jpg","frame":nu')
    summary = ScoreSummary(out=tmp_path / "p.jsonl")
    assert _complete_lines(partial, summary) == {"img0.jpg", "img1.jpg", "img2.jpg"}
    assert partial.read_bytes() == whole and summary.resumed == 3


VIDEO = "videos/slow_traffic_small.mp4"


def _score_argv(assets: Path, model: str, out: Path, stride: int = 60) -> list[object]:
    return ["score", assets / VIDEO, "--model", model, "--out", out, "--stride", stride, "--no-progress"]


@pytest.mark.slow
def test_score_killed_midway_then_rerun_equals_an_uninterrupted_run(
    tmp_path: Path, assets: Path, openvino_model: str
) -> None:
    ref = tmp_path / "ref.jsonl"
    assert cli(*_score_argv(assets, openvino_model, ref)).returncode == 0
    out = tmp_path / "pool.jsonl"
    out.write_text('{"an": "earlier pool"}\n')
    earlier = out.read_bytes()
    partial = tmp_path / "pool.jsonl.partial"
    proc = subprocess.Popen([*CLI, *map(str, _score_argv(assets, openvino_model, out))], cwd=REPO)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not partial.is_file() or partial.read_bytes().count(b"\n") < 5):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert out.read_bytes() == earlier  # the earlier pool is kept until the new one is complete
    assert 5 <= partial.read_bytes().count(b"\n") < 16  # killed midway (16 frames at stride 60)
    with partial.open("ab") as fh:  # as if killed in the middle of a line
        fh.write(b'{"source":"half')
    rerun = cli(*_score_argv(assets, openvino_model, out))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resumed from pool.jsonl.partial" in rerun.stdout and "replaced the previous" in rerun.stdout
    assert out.read_bytes() == ref.read_bytes()
    assert not partial.exists() and not (tmp_path / "pool.jsonl.partial.json").exists()
    # a different command (another stride) does not take up this command's unfinished file
    partial.write_bytes(ref.read_bytes()[:1000])
    other = cli(*_score_argv(assets, openvino_model, out, stride=400))
    assert other.returncode == 0, other.stderr[-2000:]
    assert "moved aside" in other.stdout and len(out.read_text().splitlines()) == 3
    assert [p.name.split(".old-")[0] for p in tmp_path.glob("pool.jsonl.partial.old-*")] == ["pool.jsonl.partial"]


@pytest.mark.slow
def test_score_with_nothing_readable_keeps_the_earlier_pool(tmp_path: Path, openvino_model: str) -> None:
    (tmp_path / "src").mkdir()
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / "src" / name).write_bytes(b"not an image")
    out = pool(tmp_path / "pool.jsonl")
    before = snapshot(tmp_path)
    proc = cli("score", tmp_path / "src", "--model", openvino_model, "--out", out, "--no-progress")
    assert proc.returncode == 1 and "was not written" in proc.stdout, proc.stdout + proc.stderr
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith(".cvactive.")} == before


@contextlib.contextmanager
def tiny_disk(folder: Path, size: str = "64k") -> Iterator[Path]:
    folder.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({made.stderr.decode().strip()}); the full-disk case is untested")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


@pytest.mark.slow
def test_score_on_a_full_disk_is_one_line_and_keeps_the_earlier_pool(
    tmp_path: Path, assets: Path, openvino_model: str
) -> None:
    with tiny_disk(tmp_path / "disk") as disk:
        out = pool(disk / "pool.jsonl")
        earlier = out.read_bytes()
        proc = cli(*_score_argv(assets, openvino_model, out))  # ~320 kB of lines into 64 kB
        assert proc.returncode == 2, proc.stderr[-3000:]
        err = proc.stderr.strip().splitlines()
        assert "Traceback" not in proc.stderr and "FATAL" not in proc.stderr
        assert err[-1] == f"cvactive score: error: No space left on device: {disk / 'pool.jsonl.partial'}"
        assert out.read_bytes() == earlier


# -- synthesize: killed midway, run again -----------------------------------------------------------
def _tree(root: Path) -> dict[str, bytes | str]:
    """The snapshot of a synthetic set with its own folder name written as OUT (paths inside files)."""
    return {
        k: v.replace(str(root).encode(), b"OUT") if isinstance(v, bytes) else v
        for k, v in snapshot(root).items()
        if not k.startswith(".cvactive.lock")
    }


@pytest.mark.slow
def test_synthesize_killed_midway_then_rerun_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    data = tiny_yolo(tmp_path / "d", LABELS * 2, size=(360, 480))
    argv: list[object] = ["synthesize", data, "--k", 12, "--seed", 3, "--no-progress", "--target", "conditions=night"]
    ref = cli(*argv, "--out", tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr[-2000:]
    out = tmp_path / "out"
    proc = subprocess.Popen([*CLI, *map(str, [*argv, "--out", out])], cwd=REPO)
    images = out / "images" / "train"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not images.is_dir() or len(list(images.glob("*.jpg"))) < 2):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "summary.json").exists() and not (out / "provenance.jsonl").exists()  # nothing looks done
    (out / "notes.txt").write_text("a user file in the folder")
    rerun = cli(*argv, "--out", out)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    got = _tree(out)
    assert got.pop("notes.txt") == b"a user file in the folder"
    assert got == _tree(tmp_path / "ref")
    again = cli(*argv, "--out", out)  # a complete set is there now (--overwrite: tests/test_synthesis.py)
    assert again.returncode == 2 and "--overwrite" in again.stderr


# -- export (FiftyOne with its MongoDB) -----------------------------------------------------------
@pytest.fixture(scope="module")
def fo_set(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A FiftyOne data set imported from a tiny YOLO set; yields its name and the set's folder."""
    from cvactive.store import connect
    from cvactive.store.labels import import_yolo_dataset

    fo = connect()
    root = tmp_path_factory.mktemp("fo-export") / "d"
    tiny_yolo(root, LABELS * 3)
    for sub in ("images", "labels"):  # a val split of its own (train and val may not share images)
        (root / sub / "val").mkdir()
        for p in sorted((root / sub / "train").iterdir())[:2]:
            p.rename(root / sub / "val" / p.name)
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames: [a, b]\n")
    name = f"t-{uuid.uuid4().hex[:8]}"
    import_yolo_dataset(root / "data.yaml", name, progress=False)
    bare = fo.load_dataset(name).clone(name + "-bare")  # no class list, and a label field with no box
    bare.default_classes = []
    bare.info = {}
    bare.save()
    bare.add_sample_field("nothing", fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)
    bare.set_values("nothing", [fo.Detections() for _ in range(len(bare))])
    yield name, root
    fo.delete_dataset(name)
    fo.delete_dataset(name + "-bare")


def _export(name: str, out: Path, *more: object) -> subprocess.CompletedProcess[str]:
    return cli("export", "--dataset", name, "--out", out, "--media", "symlink", *more)


EXPORT_CASES: dict[str, Callable[[Path, Path], tuple[Path, list[object], str]]] = {
    # name: (tmp, data set folder) -> (--out, more flags, what the line says)
    "out_is_the_data_set_folder": lambda t, d: (d, [], "overlaps the input"),
    "out_is_its_image_folder": lambda t, d: (d / "images" / "train", [], "overlaps the input"),
    "out_is_inside_its_image_folder": lambda t, d: (d / "images" / "train" / "export", [], "overlaps the input"),
    "out_holds_user_files": lambda t, d: (t / "mine", ["--overwrite"], "is not a cvactive export"),
    "earlier_export_without_overwrite": lambda t, d: (t / "exp", [], "pass --overwrite"),
    "no_sample_with_the_tag": lambda t, d: (t / "exp", ["--overwrite", "--tag", "nosuchtag"], "tagged 'nosuchtag'"),
    "label_field_without_classes": lambda t, d: (t / "exp", ["--overwrite", "--label-field", "nothing"], "no classes"),
    # (this case runs on the data set's "-bare" clone)
    "out_is_a_file": lambda t, d: (t / "mine" / "notes.txt", [], "is a file"),
}


@pytest.mark.slow
def test_export_hostile_outputs_touch_nothing(
    fo_set: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """In this process (FiftyOne is connected once); a traceback would fail the test as an exception."""
    from cvactive.cli import main

    name, data = fo_set
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    assert main(["export", "--dataset", name, "--out", str(tmp_path / "exp"), "--media", "symlink"]) == 0
    assert "export will be merged" not in caplog.text  # FiftyOne's note on our own temporary folder
    assert (tmp_path / "exp" / "data.yaml").is_file()
    (tmp_path / "empty").mkdir()  # an empty folder is taken
    assert main(["export", "--dataset", name, "--out", str(tmp_path / "empty"), "--media", "symlink"]) == 0
    assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == [
        ".cvactive-owner.json",
        "data.yaml",
        "images",
        "labels",
    ]
    capsys.readouterr()
    for case, make in EXPORT_CASES.items():
        out, more, match = make(tmp_path, data)
        before, before_data = snapshot(tmp_path), snapshot(data)
        dataset = name + "-bare" if case == "label_field_without_classes" else name
        code = main(["export", "--dataset", dataset, "--out", str(out), "--media", "symlink", *map(str, more)])
        proc = subprocess.CompletedProcess([], code, *capsys.readouterr())
        try:
            assert_refused(proc, before, tmp_path, match)
            assert snapshot(data) == before_data
        except AssertionError as err:
            raise AssertionError(f"case {case}: {err}") from err


@pytest.mark.slow
def test_export_overwrite_moves_the_earlier_export_aside_and_a_killed_export_changes_nothing(
    fo_set: tuple[str, Path], tmp_path: Path
) -> None:
    name, _data = fo_set
    out = tmp_path / "exp"
    assert _export(name, out).returncode == 0
    first = snapshot(out)
    owner = json.loads((out / ".cvactive-owner.json").read_text())
    assert owner["command"] == "export" and "data.yaml" in owner["files"]
    assert f"path: {out}" in (out / "data.yaml").read_text()  # not the temporary folder it was written in
    proc = subprocess.Popen([*CLI, "export", "--dataset", name, "--out", str(out), "--overwrite"], cwd=REPO)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(tmp_path.glob(".exp.export-tmp-*")):
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert list(tmp_path.glob(".exp.export-tmp-*"))  # killed while writing its temporary folder
    assert snapshot(out) == first  # the earlier export is untouched
    rerun = _export(name, out, "--overwrite")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    (aside,) = tmp_path.glob("exp.old-*")
    assert f"moved aside to {aside}" in rerun.stdout
    assert snapshot(aside) == first
    assert snapshot(out) == first  # same data set, same seed, same export
    assert not list(tmp_path.glob(".exp.export-tmp-*"))  # the killed run's folder is gone
