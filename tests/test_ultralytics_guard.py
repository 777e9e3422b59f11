"""Ultralytics' private API is reached only through cvactive._ultralytics, behind the pin check.

A different Ultralytics is refused with one line (exit code 2) before any private call runs:
in the library (``train_hooks.full_nms``, the door itself) and from the command line.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import cvactive
from cvactive import _pins, _ultralytics
from cvactive.errors import MissingDependencyError

PACKAGE = Path(cvactive.__file__).resolve().parent
DOOR = PACKAGE / "_ultralytics.py"
#: Ultralytics' public modules (YOLO, its settings, logger and helpers), imported directly anywhere.
PUBLIC = ("ultralytics", "ultralytics.utils")


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, dotted name)`` of every module or name an ``import`` brings in."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


def _private(name: str) -> bool:
    if not name.startswith("ultralytics.") or name in PUBLIC:
        return False
    return any(name == m or name.startswith(m + ".") or (m.startswith(name + ".")) for m in _ultralytics.MODULES)


def test_no_module_imports_ultralytics_internals_past_the_door():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == DOOR:
            continue
        for line, name in _imported(ast.parse(path.read_text(encoding="utf-8"))):
            if _private(name):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {name}")
    assert found == [], "import these through cvactive._ultralytics.private (the pin check):\n" + "\n".join(found)
    # the check sees such an import
    assert _private("ultralytics.utils.nms.non_max_suppression") and _private("ultralytics.nn")
    assert not _private("ultralytics.utils.LOGGER") and not _private("ultralytics.YOLO")


def test_every_private_call_names_a_listed_module():
    calls = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "private" and node.args:
                calls.add(ast.literal_eval(node.args[0]))
    assert calls == set(_ultralytics.MODULES)  # each listed module is used, and only those
    with pytest.raises(ValueError, match="not a listed private module"):
        _ultralytics.private("ultralytics.engine.trainer")


@pytest.fixture
def other_ultralytics(monkeypatch):
    """The installed Ultralytics reports 9.0.0 (and the pin is checked again)."""
    real = _pins.metadata.version
    monkeypatch.setattr(_pins, "_CHECKED", set())
    monkeypatch.setattr(_pins.metadata, "version", lambda dist: "9.0.0" if dist == "ultralytics" else real(dist))
    monkeypatch.delenv("CVACTIVE_ALLOW_UNPINNED", raising=False)


def test_full_nms_refuses_another_ultralytics_before_it_swaps_anything(other_ultralytics):
    from ultralytics.utils import nms

    from cvactive.train_hooks import full_nms

    original = nms.non_max_suppression
    with pytest.raises(MissingDependencyError) as err, full_nms():
        pytest.fail("the body ran")
    text = str(err.value)
    assert "\n" not in text and err.value.exit_code == 2
    assert f"as of ultralytics=={_pins.PRIVATE['ultralytics'].version}, but 9.0.0 is installed" in text
    assert nms.non_max_suppression is original
    with pytest.raises(MissingDependencyError):
        _ultralytics.private("ultralytics.nn.tasks")


def test_training_refuses_another_ultralytics_before_it_starts(other_ultralytics, tmp_path):
    """train_detector patches the trainer's internals (validate, optimizer_step): the check comes first."""
    import cv2
    import numpy as np

    from cvactive.train import train_detector

    (tmp_path / "images" / "train").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "images" / "train" / "a.jpg"), np.full((32, 32, 3), 127, np.uint8))
    data = tmp_path / "data.yaml"
    data.write_text("path: .\ntrain: images/train\nval: images/train\nnames: {0: a}\n")
    with pytest.raises(MissingDependencyError) as err:
        train_detector(data, tmp_path / "run", model="pico", epochs=1, imgsz=32, val=False, progress=False)
    assert "\n" not in str(err.value) and "but 9.0.0 is installed" in str(err.value)
    assert not (tmp_path / "run" / "train").exists()  # nothing was trained


def test_full_nms_lifts_the_time_limit_with_the_pinned_ultralytics():
    from ultralytics.utils import nms

    from cvactive.train_hooks import full_nms

    original = nms.non_max_suppression
    with full_nms():
        swapped: Any = nms.non_max_suppression
        assert swapped.func is original and swapped.keywords == {"max_time_img": float("inf")}
    assert nms.non_max_suppression is original


_REFUSE = """
import sys
from importlib import metadata
real = metadata.version
metadata.version = lambda dist: "9.0.0" if dist == "ultralytics" else real(dist)
from cvactive.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_the_command_line_refuses_another_ultralytics_with_one_line(tmp_path):
    import cv2
    import numpy as np

    image = tmp_path / "a.jpg"
    cv2.imwrite(str(image), np.full((64, 64, 3), 127, np.uint8))
    env = {k: v for k, v in os.environ.items() if k != "CVACTIVE_ALLOW_UNPINNED"}
    out = tmp_path / "pool.jsonl"
    args = [str(image), "--out", str(out), "--model", "yolov8n.yaml", "--no-progress"]
    run = subprocess.run(
        [sys.executable, "-c", _REFUSE, "score", *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "but 9.0.0 is installed: pip install 'ultralytics==" in lines[0], run.stderr
    assert not out.exists()
