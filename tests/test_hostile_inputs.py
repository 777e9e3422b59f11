"""Bad input, one case each: one line on stderr, exit 2, no traceback, nothing written or changed.

Every case builds its inputs under ``tmp_path`` (a file whose name holds the byte 0xff where
the case is about names that are not UTF-8) plus an output that already exists, runs one
command, and checks that every file under ``tmp_path`` is byte for byte what it was and that no
file appeared. Commands that OpenCV could crash on (``score``, ``harvest``) run in a subprocess,
so a segfault shows as exit -11, not as a dead test run; the others run in-process.

Below the cases: the paths through the database (a failed push leaves no new empty data set;
import skips and counts unreadable images), synthesize's count of bad label lines and the
App's address checks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

BAD = b"\xff"  # not UTF-8 on its own: Python keeps it as the lone surrogate U+DCFF


def fs(path: bytes) -> str:
    """A bytes path as the ``str`` Python gives for it (undecodable bytes as surrogates)."""
    return os.fsdecode(path)


def snapshot(root: Path) -> dict[bytes, bytes]:
    """Every file under ``root`` (bytes names, so names that are not UTF-8 are fine) -> its content.

    Lock files (``.cvactive*.lock``, :func:`cvactive.outputs.folder_lock`) are left out: they stay
    by design (the kernel releases the lock) and hold no output.
    """
    out: dict[bytes, bytes] = {}
    for dirpath, _, files in os.walk(os.fsencode(root)):
        for name in files:
            if name.startswith(b".cvactive") and name.endswith(b".lock"):
                continue
            path = os.path.join(dirpath, name)
            with open(path, "rb") as fh:
                out[path] = fh.read()
    return out


def write_image(path: bytes, image: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    shutil.copyfile(image, path)


def yolo_set(root: bytes, image: str, name: bytes = b"a.jpg", labels: str = "0 0.5 0.5 0.2 0.2\n") -> bytes:
    """A one-class YOLO set with one image per split; returns the path of its data.yaml."""
    for split in (b"train", b"val"):
        write_image(root + b"/images/" + split + b"/" + name, image)
        os.makedirs(root + b"/labels/" + split, exist_ok=True)
        with open(root + b"/labels/" + split + b"/" + name.rsplit(b".", 1)[0] + b".txt", "w") as fh:
            fh.write(labels)
    with open(root + b"/data.yaml", "w") as fh:
        fh.write("path: .\ntrain: images/train\nval: images/val\nnames: {0: person}\n")
    return root + b"/data.yaml"


@dataclass
class Case:
    """One bad input: ``build(tmp, image)`` makes the files and returns the command's arguments."""

    build: Callable[[Path, str], list[str]]
    subprocess: bool = False
    slow: bool = False
    #: files the command is known to leave behind (named in docs/reliability.md); the test checks
    #: that they are the only change, so it notices when they go
    leaves: tuple[str, ...] = ()


def _existing(tmp: Path, name: str = "out.jsonl") -> str:
    """An output that is already there (the case must leave it as it is)."""
    path = tmp / name
    path.write_text('{"kept": true}\n')
    return str(path)


def _video(tmp: Path, image: str) -> bytes:
    """A short real video (written by cvactive.sources) moved to a name holding 0xff."""
    import cv2

    from cvactive.sources import read_image, write_video

    frame = cv2.resize(read_image(image), (160, 128))
    plain = tmp / "clip.mp4"
    write_video(plain, (frame for _ in range(5)), fps=5.0, size=(160, 128))
    bad = os.fsencode(tmp) + b"/clip" + BAD + b".mp4"
    os.rename(plain, bad)
    return bad


def _jsonl(tmp: Path, *lines: str) -> str:
    path = tmp / "in.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def _jsonl_named_badly(tmp: Path) -> str:
    """A valid records file whose own name holds 0xff."""
    bad = fs(os.fsencode(tmp) + b"/in" + BAD)
    os.rename(_jsonl(tmp, '{"source": "a.jpg", "width": 10, "height": 10}'), bad)
    return bad


def _model() -> str:
    from cvactive.assets import OPENVINO_MODEL, asset

    path = asset(OPENVINO_MODEL)
    if path is None:
        pytest.skip(f"{OPENVINO_MODEL} missing from the assets folder")
    return str(path)


def _harvest_config(tmp: Path) -> str:
    path = tmp / "harvest.yaml"
    path.write_text("seed: 0\nrules:\n  - kind: random\n    name: all\n    every_n: 1\n")
    return str(path)


CASES: dict[str, Case] = {
    # names that are not UTF-8 (issue #24 item 4: a segfault in cv2.VideoCapture, or a traceback
    # and a 0-byte report.md / combined_train.txt)
    "score a video whose name is not UTF-8": Case(
        lambda t, img: ["score", fs(_video(t, img)), "--model", _model(), "--out", _existing(t), "--no-progress"],
        subprocess=True,
        slow=True,  # refused before the model loads: no resume state is left
    ),
    "harvest a video whose name is not UTF-8": Case(
        lambda t, img: [
            "harvest",
            fs(_video(t, img)),
            "--config",
            _harvest_config(t),
            "--out",
            str(t / "h"),
            "--no-progress",
        ],
        subprocess=True,
    ),
    "import a data set whose folder is not UTF-8": Case(
        lambda t, img: ["import", fs(yolo_set(os.fsencode(t) + b"/set" + BAD, img)), "--dataset", "never-made"]
    ),
    "import a data set holding an image whose name is not UTF-8": Case(
        lambda t, img: [
            "import",
            fs(yolo_set(os.fsencode(t) + b"/set", img, b"a" + BAD + b".jpg")),
            "--dataset",
            "never-made",
        ]
    ),
    "health a data set holding an image whose name is not UTF-8": Case(
        lambda t, img: [
            "health",
            fs(yolo_set(os.fsencode(t) + b"/set", img, b"a" + BAD + b".jpg")),
            "--out",
            str(t / "report"),
            "--no-progress",
        ]
    ),
    "synthesize from a data set holding an image whose name is not UTF-8": Case(
        lambda t, img: [
            "synthesize",
            fs(yolo_set(os.fsencode(t) + b"/set", img, b"a" + BAD + b".jpg")),
            "--k",
            "2",
            "--out",
            str(t / "synthetic"),
            "--no-progress",
        ]
    ),
    "push a record whose source is not UTF-8": Case(
        lambda t, img: [
            "push",
            _jsonl(t, '{"source": "a\\udcff.jpg", "width": 10, "height": 10}'),
            "--dataset",
            "never-made",
        ]
    ),
    "push an input file whose name is not UTF-8": Case(
        lambda t, img: ["push", _jsonl_named_badly(t), "--dataset", "never-made"]
    ),
    "push into a data set whose name is not UTF-8": Case(
        lambda t, img: [
            "push",
            _jsonl(t, '{"source": "a.jpg", "width": 10, "height": 10}'),
            "--dataset",
            fs(b"n" + BAD),
        ]
    ),
    "health of a data set whose name is not UTF-8": Case(
        lambda t, img: ["health", "--dataset", fs(b"n" + BAD), "--out", str(t / "report"), "--no-progress"]
    ),
    # JSON lines that are not records (item 9)
    "push a line that is 42": Case(lambda t, img: ["push", _jsonl(t, "42"), "--dataset", "never-made"]),
    "push a line that is null": Case(lambda t, img: ["push", _jsonl(t, "null"), "--dataset", "never-made"]),
    'push a record with "width": "abc"': Case(
        lambda t, img: [
            "push",
            _jsonl(t, '{"source": "a.jpg", "width": "abc", "height": 10}'),
            "--dataset",
            "never-made",
        ]
    ),
    "select from a line that is a list": Case(
        lambda t, img: ["select", _jsonl(t, "[1, 2]"), "--k", "1", "--out", _existing(t)]
    ),
    # options (item 9)
    "review --port -1": Case(lambda t, img: ["review", "--dataset", "never-made", "--port", "-1"]),
    "review --port 70000": Case(lambda t, img: ["review", "--dataset", "never-made", "--port", "70000"]),
    "review --address 0.0.0.0 without --expose": Case(
        lambda t, img: ["review", "--dataset", "never-made", "--address", "0.0.0.0"]
    ),
    "loop --seeds a,b": Case(lambda t, img: ["loop", "--data", str(t), "--out", str(t / "study"), "--seeds", "a,b"]),
    "loop --seeds 1,1": Case(lambda t, img: ["loop", "--data", str(t), "--out", str(t / "study"), "--seeds", "1,1"]),
    "select --set bins=[1": Case(
        lambda t, img: [
            "select",
            _jsonl(t, '{"source": "a.jpg", "width": 10, "height": 10}'),
            "--k",
            "1",
            "--strategy",
            "random",
            "--set",
            "bins=[1",
            "--out",
            _existing(t),
        ]
    ),
    # loop options checked before any training (item 10)
    "loop --measure that is no image score": Case(
        lambda t, img: ["loop", "--data", str(t), "--out", str(t / "study"), "--measure", "entropy_median"]
    ),
    "loop --imgsz 5": Case(lambda t, img: ["loop", "--data", str(t), "--out", str(t / "study"), "--imgsz", "5"]),
    "loop --epochs 0": Case(lambda t, img: ["loop", "--data", str(t), "--out", str(t / "study"), "--epochs", "0"]),
    "loop --device bogus": Case(
        lambda t, img: ["loop", "--data", str(t), "--out", str(t / "study"), "--device", "bogus"]
    ),
    "loop --batch 0": Case(lambda t, img: ["loop", "--data", str(t), "--out", str(t / "study"), "--batch", "0"]),
}


#: what the one line must say, per case (so a case cannot pass on some other error)
SAYS: dict[str, str] = {
    "score a video whose name is not UTF-8": "not valid UTF-8",
    "harvest a video whose name is not UTF-8": "not valid UTF-8",
    "import a data set whose folder is not UTF-8": "data set path(s) are not valid UTF-8",
    "import a data set holding an image whose name is not UTF-8": "image path(s) are not valid UTF-8",
    "health a data set holding an image whose name is not UTF-8": "image path(s) are not valid UTF-8",
    "synthesize from a data set holding an image whose name is not UTF-8": "image path(s) are not valid UTF-8",
    "push a record whose source is not UTF-8": "in.jsonl:1: not a valid record (source",
    "push an input file whose name is not UTF-8": "not valid UTF-8",
    "push into a data set whose name is not UTF-8": "data set name 'n?' is not valid UTF-8",
    "health of a data set whose name is not UTF-8": "data set name 'n?' is not valid UTF-8",
    "push a line that is 42": "in.jsonl:1: not a valid record (expected a JSON object",
    "push a line that is null": "in.jsonl:1: not a valid record (expected a JSON object",
    'push a record with "width": "abc"': "in.jsonl:1: not a valid record (width: expected a whole number",
    "select from a line that is a list": "in.jsonl:1: not a valid record",
    "review --port -1": "1-65535, got -1",
    "review --port 70000": "1-65535, got 70000",
    "review --address 0.0.0.0 without --expose": "--expose",
    "loop --seeds a,b": "--seeds expects",
    "loop --seeds 1,1": "seed twice",
    "select --set bins=[1": "not valid YAML",
    "loop --measure that is no image score": "measure: got 'entropy_median'",
    "loop --imgsz 5": "imgsz: got 5",
    "loop --epochs 0": "epochs: got 0",
    "loop --batch 0": "batch",
    "loop --device bogus": "--device 'bogus'",
}


def _params() -> list:
    return [pytest.param(name, marks=[pytest.mark.slow] if case.slow else [], id=name) for name, case in CASES.items()]


@pytest.mark.parametrize("name", _params())
def test_bad_input_is_one_line_exit_2_and_changes_nothing(name: str, tmp_path: Path, ultralytics_images, capfd):
    case = CASES[name]
    args = case.build(tmp_path, ultralytics_images["bus"])
    before = snapshot(tmp_path)
    if case.subprocess:
        done = subprocess.run([sys.executable, "-m", "cvactive.cli", *args], capture_output=True, timeout=300)
        code, err = done.returncode, done.stderr.decode("utf-8", "replace")
    else:
        from cvactive.cli import main

        capfd.readouterr()
        code = main(args)
        err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"exit {code}; stderr:\n{err[-3000:]}"
    assert "Traceback" not in err
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"cvactive {args[0]}: error: ")
    assert SAYS[name] in lines[0], lines[0]
    after = snapshot(tmp_path)
    left = sorted(os.fsdecode(os.path.relpath(p, os.fsencode(tmp_path))) for p in set(after) - set(before))
    assert left == sorted(case.leaves)
    assert {p: after[p] for p in before} == before


def test_a_folder_or_pattern_holding_a_name_that_is_not_utf8_is_refused_before_reading(
    tmp_path: Path, ultralytics_images
):
    from cvactive.errors import SourceError
    from cvactive.sources import expand, read_image

    write_image(os.fsencode(tmp_path) + b"/pool/ok.jpg", ultralytics_images["bus"])
    write_image(os.fsencode(tmp_path) + b"/pool/img" + BAD + b".jpg", ultralytics_images["bus"])
    for source in (tmp_path / "pool", str(tmp_path / "pool" / "*.jpg")):
        with pytest.raises(SourceError, match=r"1 file\(s\) under .* not valid UTF-8"):
            expand(source)
    with pytest.raises(SourceError, match="not valid UTF-8"):
        read_image(fs(os.fsencode(tmp_path) + b"/pool/img" + BAD + b".jpg"))


def test_every_config_schema_mark_names_a_schema():
    """The link from a function to its config schema is a mark on the function itself (``@config_schema``),
    so a moved function keeps it; a mark must name a schema that exists."""
    import importlib

    from cvactive.schemas import SCHEMAS

    marked = [
        ("cvactive.health.check", "analyse"),
        ("cvactive.store.evaluate", "evaluate_round"),
        ("cvactive.loop.config", "LoopConfig"),
        ("cvactive.porch", "PorchRecipe"),
    ]
    for module, name in marked:
        assert getattr(importlib.import_module(module), name).__config_schema__ in SCHEMAS


def test_jsonl_errors_name_the_file_and_the_line(tmp_path: Path):
    from cvactive.errors import RecordError
    from cvactive.io import load_jsonl

    good = json.dumps({"source": "a.jpg", "width": 10, "height": 10})
    for bad, says in (
        ("42", "got 42"),
        ("null", "got None"),
        ('{"source": "a.jpg", "width": "abc", "height": 10}', "width"),
        ('{"source": "a.jpg", "width": 10, "height": 10, "frame": "x"}', "frame"),
        ('{"source": "a.jpg", "width": 10, "height": 10, "image_scores": {"e": "high"}}', "image_scores"),
        ('{"source": "a.jpg", "width": 10, "height": 10, "boxes": 5}', "malformed"),
        ('{"source": "a\\udcff.jpg", "width": 10, "height": 10}', "not valid UTF-8"),
    ):
        path = tmp_path / "r.jsonl"
        path.write_text(f"{good}\n{bad}\n")
        with pytest.raises(RecordError, match=rf"r\.jsonl:2: .*{says}"):
            load_jsonl(path)


def test_review_address_checks():
    from cvactive.errors import ConfigError
    from cvactive.store.review import check_address, exposed_warning

    check_address("127.0.0.1", 5151)
    check_address("localhost", 1)
    check_address("0.0.0.0", 65535, expose=True)
    for port in (0, -1, 65536):
        with pytest.raises(ConfigError, match="1-65535"):
            check_address("127.0.0.1", port)
    with pytest.raises(ConfigError, match="--expose"):
        check_address("192.168.1.5", 5151)
    line = exposed_warning("0.0.0.0", 5151)
    assert "no authentication" in line and "/media?filepath=" in line and "\n" not in line


def test_synthesize_counts_the_bad_label_lines(tmp_path: Path, ultralytics_images, caplog):
    from cvactive.synthesis.parents import LabeledSplit

    labels = "0 0.5 0.5 0.2 0.2\nfoo bar\n7 0.5 0.5 0.1 0.1\n0 1.5 0.5 0.2 0.2\n"
    data = yolo_set(os.fsencode(tmp_path) + b"/set", ultralytics_images["bus"], labels=labels)
    with caplog.at_level("WARNING", logger="cvactive.synthesis.parents"):
        parents = LabeledSplit.load(fs(data), "train")
    assert [(i.line, i.kind) for i in parents.bad_lines] == [
        (2, "malformed"),
        (3, "unknown_class"),
        (4, "out_of_range"),
    ]
    assert "3 bad label line(s) in 1 file(s)" in caplog.text and "a.txt:2" in caplog.text
    assert len(parents.items[0].classes) == 1  # the good line is kept


@pytest.mark.slow
def test_a_failed_push_leaves_no_new_empty_data_set(tmp_path: Path, ultralytics_images, capfd):
    """A push that fails after the data set was created (a bad line in its second batch), and one
    whose every record was skipped, delete the data set they created; an existing one is kept."""
    from cvactive.cli import main
    from cvactive.store._db import connect

    fo = connect()
    good = json.dumps({"source": ultralytics_images["bus"], "width": 810, "height": 1080})
    missing = json.dumps({"source": str(tmp_path / "gone.jpg"), "width": 10, "height": 10})
    failing = tmp_path / "failing.jsonl"
    failing.write_text(f"{missing}\n42\n")
    name = f"hostile-{uuid.uuid4().hex[:8]}"
    assert main(["push", str(failing), "--dataset", name, "--batch-size", "1", "--no-progress"]) == 2
    assert "failing.jsonl:2" in capfd.readouterr().err
    assert not fo.dataset_exists(name)

    skipped = tmp_path / "skipped.jsonl"
    skipped.write_text(f"{missing}\n")
    assert main(["push", str(skipped), "--dataset", name, "--no-progress"]) == 1
    assert "was not kept" in capfd.readouterr().err
    assert not fo.dataset_exists(name)

    ok = tmp_path / "ok.jsonl"
    ok.write_text(f"{good}\n")
    assert main(["push", str(ok), "--dataset", name, "--no-progress"]) == 0
    assert main(["push", str(failing), "--dataset", name, "--batch-size", "1", "--no-progress"]) == 2
    assert fo.dataset_exists(name) and len(fo.load_dataset(name)) == 1  # not ours to delete
    fo.delete_dataset(name)


@pytest.mark.slow
def test_import_skips_and_counts_unreadable_images(tmp_path: Path, ultralytics_images, capfd):
    from cvactive.cli import main
    from cvactive.store._db import connect

    fo = connect()
    data = yolo_set(os.fsencode(tmp_path) + b"/set", ultralytics_images["bus"])
    (tmp_path / "set" / "images" / "train" / "broken.jpg").write_bytes(b"not an image")
    (tmp_path / "set" / "images" / "train" / "empty.jpg").write_bytes(b"")
    name = f"hostile-{uuid.uuid4().hex[:8]}"
    assert main(["import", fs(data), "--dataset", name, "--no-progress"]) == 1
    out = capfd.readouterr().out
    assert "2 unreadable image(s) skipped" in out and "broken.jpg" in out and "empty.jpg" in out
    assert len(fo.load_dataset(name)) == 2  # the readable train and val images
    fo.delete_dataset(name)

    only_bad = tmp_path / "bad-set"
    shutil.copytree(tmp_path / "set", only_bad)
    for image in only_bad.rglob("a.jpg"):
        image.write_bytes(b"")
    for image in (only_bad / "images" / "train").glob("*.jpg"):
        image.write_bytes(b"")
    assert main(["import", str(only_bad / "data.yaml"), "--dataset", name, "--no-progress"]) == 2
    assert "none of the" in capfd.readouterr().err
    assert not fo.dataset_exists(name)
