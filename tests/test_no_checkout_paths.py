"""The library finds nothing through the checkout (issue #27).

Installed from a wheel, a folder derived from the package's own location (``__file__``, a
module's ``__path__``, their parents) lies inside site-packages: ``<package>/../data`` is
``site-packages/data``. The package may reach its own package data (``cvactive/resources``)
that way; every other folder is an argument, with its default resolved in one place,
:mod:`cvactive.assets` (environment variables, the per-user cache, the working directory).
``tests/test_packaging.py`` runs the installed wheel from a folder with no checkout.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cvactive"
LOCATION_NAMES = ("__file__", "__path__")


def _own_nodes(statement: ast.stmt) -> list[ast.AST]:
    """The expressions of one statement, without those of the statements nested in it (a body)."""
    stack = [c for c in ast.iter_child_nodes(statement) if not isinstance(c, ast.stmt)]
    out: list[ast.AST] = []
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(c for c in ast.iter_child_nodes(node) if not isinstance(c, ast.stmt))
    return out


def _text(source: str, statement: ast.stmt) -> str:
    """A simple statement's source, or a compound one's header (up to its body)."""
    body = getattr(statement, "body", None)
    if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
        return "\n".join(source.splitlines()[statement.lineno - 1 : body[0].lineno - 1])
    return ast.get_source_segment(source, statement) or ""


def derived_paths(source: str) -> list[tuple[int, str]]:
    """(line, statement) of every statement that uses the module's location for anything but package resources."""
    found: list[tuple[int, str]] = []
    for statement in ast.walk(ast.parse(source)):
        if not isinstance(statement, ast.stmt):
            continue
        uses = [
            node
            for node in _own_nodes(statement)
            if (isinstance(node, ast.Name) and node.id in LOCATION_NAMES)
            or (isinstance(node, ast.Attribute) and node.attr in LOCATION_NAMES)
        ]
        if uses and "resources" not in (text := _text(source, statement)):
            found.append((statement.lineno, text))
    return found


def test_the_checker_tells_a_checkout_path_from_a_resource():
    assert derived_paths("from pathlib import Path\nREPO_ROOT = Path(__file__).resolve().parent.parent\n")
    assert derived_paths("import cvactive, os\nd = os.path.dirname(cvactive.__file__) + '/../data'\n")
    assert derived_paths("import cvactive\nfor p in cvactive.__path__:\n    root = p\n")
    assert not derived_paths("from pathlib import Path\nP = Path(__file__).resolve().parent / 'resources' / 'x'\n")
    assert not derived_paths("from importlib.resources import files\nP = files('cvactive') / 'resources'\n")


def test_no_path_in_the_library_is_derived_from_the_package_location():
    bad = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        hits = derived_paths(path.read_text(encoding="utf-8"))
        if hits:
            bad[str(path.relative_to(PACKAGE.parent))] = hits
    assert not bad, f"folders derived from the package's location (pass them as arguments, cvactive.assets): {bad}"


def test_the_folder_defaults_come_from_the_environment_not_the_package(tmp_path, monkeypatch):
    from cvactive.assets import asset, assets_dir, data_dir

    monkeypatch.delenv("CVACTIVE_DATA", raising=False)
    monkeypatch.delenv("CVACTIVE_ASSETS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data_dir() == tmp_path / "cache" / "cvactive"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")  # not absolute: ignored, as the XDG spec says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_dir() == tmp_path / "home" / ".cache" / "cvactive"
    monkeypatch.setenv("CVACTIVE_DATA", str(tmp_path / "d"))
    assert data_dir() == tmp_path / "d"

    work = tmp_path / "checkout"
    work.mkdir()
    monkeypatch.chdir(work)
    assert assets_dir() is None  # no ../shared/assets beside the working directory
    (tmp_path / "shared" / "assets" / "weights").mkdir(parents=True)
    assert assets_dir() == tmp_path / "shared" / "assets"
    assert asset("weights") == tmp_path / "shared" / "assets" / "weights" and asset("nothing") is None
    monkeypatch.setenv("CVACTIVE_ASSETS", str(tmp_path / "elsewhere"))
    assert assets_dir() is None
    assert asset("weights", tmp_path / "shared" / "assets") == tmp_path / "shared" / "assets" / "weights"


def test_data_dir_flag_sets_the_data_folder(tmp_path, monkeypatch, capsys):
    from cvactive.cli import main

    monkeypatch.setenv("CVACTIVE_DATA", str(tmp_path / "from-env"))
    monkeypatch.chdir(tmp_path)
    assert main(["--data-dir", "flagged", "porch", "--no-video", "--recipe", str(_tiny_recipe(tmp_path))]) == 0
    assert (tmp_path / "flagged" / "porch" / "data.yaml").is_file()
    assert not (tmp_path / "from-env").exists()
    assert f"porch data set: {tmp_path / 'flagged' / 'porch' / 'data.yaml'}" in capsys.readouterr().out


def _tiny_recipe(tmp_path: Path) -> Path:
    """The porch recipe, shrunk to a few images."""
    import yaml

    from cvactive.porch import RECIPE_PATH

    recipe = yaml.safe_load(Path(RECIPE_PATH).read_text())
    recipe.update(train=4, val=2)
    out = tmp_path / "tiny-porch.yaml"
    out.write_text(yaml.safe_dump(recipe))
    return out


def test_the_pretrained_model_takes_its_folders_as_arguments(tmp_path):
    from cvactive.errors import ModelError
    from cvactive.weights import pretrained_available, pretrained_checkpoint, resolve_model_name

    empty = tmp_path / "no-assets"
    empty.mkdir()
    assert not pretrained_available(empty)
    assert resolve_model_name("auto", assets_dir=empty) == "pico"  # no shared model there: a small random init
    assert resolve_model_name("x.pt", assets_dir=empty) == "x.pt"
    with pytest.raises(ModelError, match="CVACTIVE_ASSETS"):
        pretrained_checkpoint(assets_dir=empty, data_dir=tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_evaluate_writes_its_history_into_the_data_folder_it_is_given(tmp_path):
    from cvactive.store.evaluate import default_out_dir

    assert default_out_dir("aq", tmp_path) == tmp_path / "eval" / "aq"
