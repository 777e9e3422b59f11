"""cvactive as people install it: the wheel, in a fresh virtual environment, used from another folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from cvactive.cli import COMMANDS

REPO = Path(__file__).resolve().parent.parent


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _source_copy(dst: Path) -> Path:
    """The files a wheel is built from (pyproject, README, the package), so the build writes nothing in the checkout."""
    for name in ("pyproject.toml", "README.md", "MANIFEST.in"):
        shutil.copy(REPO / name, dst / name)
    for folder in ("cvactive", "buildsys"):  # the package, and the build backend pyproject names
        shutil.copytree(REPO / folder, dst / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dst


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], Path]:
    """(the venv's bin folder, an environment without this checkout on the path, a folder outside the checkout)."""
    root = tmp_path_factory.mktemp("packaging")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    (root / "src").mkdir()
    src = _source_copy(root / "src")
    dist = root / "dist"
    build = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(src)],
        root,
        env,
    )
    assert build.returncode == 0, build.stderr
    wheel = next(dist.glob("cvactive-*.whl"))
    venv = root / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], root, env)
    assert made.returncode == 0, made.stderr
    # The heavy dependencies (torch, ultralytics, fiftyone ...) come from this environment's
    # site-packages, added as a plain path: its .pth files (this checkout's editable install)
    # are not processed, so the only cvactive there is the wheel's.
    site = Path(
        _run(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root, env
        ).stdout.strip()
    )
    (site / "_heavy_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    inst = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            str(wheel),
        ],
        root,
        env,
    )
    assert inst.returncode == 0, inst.stderr
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    return venv / "bin", env, elsewhere


@pytest.mark.slow
def test_building_the_wheel_leaves_nothing_in_the_source_tree(installed):
    # issue #25: `pip wheel .` wrote build/ (and cvactive.egg-info/) into the checkout
    src = installed[2].parent / "src"
    names = sorted(p.name for p in src.iterdir())
    assert names == ["MANIFEST.in", "README.md", "buildsys", "cvactive", "pyproject.toml"]
    assert not list((src / "cvactive").glob("*.egg-info"))


@pytest.mark.slow
def test_the_wheel_carries_the_configs_and_the_command(installed):
    bin_dir, env, elsewhere = installed
    where = _run(
        [
            str(bin_dir / "python"),
            "-c",
            "import cvactive, cvactive._config as c; print(cvactive.__file__); print(c.CONFIG_DIR)",
        ],
        elsewhere,
        env,
    )
    assert where.returncode == 0, where.stderr
    package, configs = where.stdout.split()
    assert package.startswith(str(bin_dir.parent)) and Path(configs, "health.yaml").is_file(), where.stdout
    assert not package.startswith(str(REPO))


@pytest.mark.slow
def test_commands_run_from_another_folder(installed):
    bin_dir, env, elsewhere = installed
    cli = str(bin_dir / "cvactive")
    porch = _run([cli, "porch", "--out", "porch", "--no-video"], elsewhere, env)
    assert porch.returncode == 0, porch.stderr
    assert f"porch data set: {elsewhere / 'porch' / 'data.yaml'} (240 train, 80 val images)" in porch.stdout
    health = _run([cli, "health", "porch/data.yaml", "--out", "health", "--no-progress"], elsewhere, env)
    assert health.returncode in (0, 1), health.stderr  # 1: a gate failed (the porch data leaks near-duplicates)
    assert "gate max_label_errors: PASS" in health.stdout and (elsewhere / "health" / "class_counts.png").is_file()
    recipes = _run([cli, "synthesize", "--list-recipes"], elsewhere, env)
    assert recipes.returncode == 0, recipes.stderr
    assert [line.split()[0] for line in recipes.stdout.splitlines()] == sorted(
        p.stem for p in (REPO / "configs" / "synthesis" / "recipes").glob("*.yaml")
    )
    (elsewhere / "bad.yaml").write_text("max_imbalance: lots\n")
    bad = _run([cli, "health", "porch/data.yaml", "--config", "bad.yaml"], elsewhere, env)
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "cvactive health: error: bad.yaml: max_imbalance: got 'lots', expected a number >= 1 or null"
    )
    if "feed" in COMMANDS:  # the feed harvester's command, where this checkout has it
        feed = _run([cli, "feed", "--help"], elsewhere, env)
        assert feed.returncode == 0 and "usage: cvactive feed" in feed.stdout, feed.stderr


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: relative path -> (size, mtime in ns)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.mark.slow
def test_the_wheel_needs_no_checkout(installed, assets):
    # issue #27: installed, cvactive found its assets and wrote its data beside site-packages (the package's parent)
    bin_dir, env, elsewhere = installed
    home = elsewhere.parent / "no-checkout"  # work/ is the working folder; shared/assets beside it, as documented
    work = home / "work"
    (work / "images").mkdir(parents=True)
    (home / "shared").mkdir()
    (home / "shared" / "assets").symlink_to(assets, target_is_directory=True)
    for image in sorted((assets / "coco128" / "images" / "val2017").glob("*.jpg"))[:3]:
        shutil.copy(image, work / "images" / image.name)
    recipe = work / "tiny-porch.yaml"
    porch_recipe = yaml.safe_load((REPO / "datasets" / "porch.yaml").read_text())
    recipe.write_text(json.dumps({**porch_recipe, "train": 4, "val": 2}))  # JSON is YAML
    env = {k: v for k, v in env.items() if k not in ("CVACTIVE_DATA", "CVACTIVE_ASSETS")}
    env.update(XDG_CACHE_HOME=str(home / "cache"), PYTHONDONTWRITEBYTECODE="1")
    site = Path(
        _run([str(bin_dir / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], work, env)
        .stdout.strip()
    )  # fmt: skip
    assert (site / "cvactive" / "__init__.py").is_file()
    before = _tree(bin_dir.parent)
    cli = str(bin_dir / "cvactive")

    usage = _run([cli, "--help"], work, env)
    assert usage.returncode == 0 and "--data-dir" in usage.stdout, usage.stderr
    score = _run([cli, "score", "images", "--out", "scores.jsonl", "--no-progress"], work, env)  # the default model
    assert score.returncode == 0, score.stderr
    lines = (work / "scores.jsonl").read_text().splitlines()
    shown = sorted(Path(json.loads(line)["source"]).name for line in lines)
    assert shown == sorted(p.name for p in (work / "images").iterdir()), lines[:1]
    porch = _run([cli, "porch", "--no-video", "--recipe", str(recipe)], work, env)  # into the data folder
    assert porch.returncode == 0, porch.stderr
    data = home / "cache" / "cvactive"  # $XDG_CACHE_HOME/cvactive, as cvactive --help and docs/install.md say
    assert f"porch data set: {data / 'porch' / 'data.yaml'} (4 train, 2 val images)" in porch.stdout
    assert (data / "porch" / "data.yaml").is_file()

    assert _tree(bin_dir.parent) == before  # nothing written in the environment, site-packages included
    assert sorted(p.name for p in work.iterdir() if not p.name.startswith(".")) == [
        "images",
        "scores.jsonl",
        "tiny-porch.yaml",
    ]  # no data/ in the working folder either (score's lock file aside)
    assert not (site.parent / "data").exists() and not (site / "data").exists()
