"""Shipped configs by name, from any folder (``--config harvest``) and ``cvactive configs``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cvactive._config import config_path, load_yaml, shipped_configs
from cvactive.cli import main
from cvactive.errors import ConfigError


def test_shipped_configs_are_found_by_name_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shipped = shipped_configs()
    assert {"harvest", "harvest-paced", "health", "loop", "select"} <= set(shipped)
    for name in ("harvest", "harvest.yaml", "configs/harvest.yaml"):
        assert config_path(name) == shipped["harvest"]
    assert load_yaml("harvest-paced")["budget"]["total"] > 0


def test_a_local_file_wins_over_the_shipped_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "harvest.yaml").write_text("seed: 7\n")
    assert load_yaml("configs/harvest.yaml") == {"seed": 7}


def test_an_unknown_name_lists_the_shipped_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"does not exist; shipped configs by name: .*harvest-paced"):
        load_yaml("harvets")
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml("elsewhere/harvest.yaml")  # a path that names another folder is never swapped


def test_configs_command_lists_and_prints(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["configs"]) == 0
    listing = capsys.readouterr().out
    assert "harvest-paced" in listing and "--config NAME" in listing
    assert main(["configs", "health"]) == 0
    assert capsys.readouterr().out == shipped_configs()["health"].read_text()
    assert main(["configs", "nope"]) == 2


def test_a_closed_pipe_is_not_a_traceback() -> None:
    proc = subprocess.run(
        f"{sys.executable} -m cvactive synthesize --list-recipes | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and proc.stdout.strip()
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
