"""The declared dependencies say the truth: what the code imports, at versions the tests ran with."""

from __future__ import annotations

import ast
import re
import sys
import warnings
from importlib import metadata
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement

from cvactive import _pins
from cvactive.errors import MissingDependencyError

REPO = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
CORE = [Requirement(r) for r in PROJECT["dependencies"]]
EXTRAS = {name: [Requirement(r) for r in reqs] for name, reqs in PROJECT["optional-dependencies"].items()}

#: import name -> distribution, where they differ.
DISTRIBUTION = {
    "cv2": "opencv-python",
    "yaml": "pyyaml",
    "PIL": "pillow",
    "bson": "pymongo",
    "sklearn": "scikit-learn",
    "umap": "umap-learn",
}
#: declared without an import of their own, and why.
NOT_IMPORTED = {
    "torchvision": "the pair of torch that Ultralytics imports; pinned together",
    "opencv-python-headless": "albumentations' build of the same cv2 package; pinned to opencv-python's release",
}


def _imports(folder: Path) -> dict[str, set[str]]:
    """Top-level third-party module -> the files that import it."""
    found: dict[str, set[str]] = {}
    stdlib = sys.stdlib_module_names
    # helper modules beside the code (tests/mjpeg_stream.py), and the folder itself as a package (tests.builders)
    local = {p.stem for p in folder.rglob("*.py")} | {folder.name}
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in stdlib and top not in local and top not in ("cvactive", "__future__"):
                    found.setdefault(DISTRIBUTION.get(top, top), set()).add(str(path.relative_to(REPO)))
    return found


def _name(req: Requirement) -> str:
    return req.name.lower()


def test_every_import_of_the_library_is_declared_and_every_declaration_is_used():
    imported = _imports(REPO / "cvactive")
    core = {_name(r) for r in CORE}
    optional = {_name(r) for r in [*EXTRAS["openvino"], *EXTRAS["ray"], *EXTRAS["umap"]]}
    undeclared = {dist: files for dist, files in imported.items() if dist.lower() not in core | optional}
    assert undeclared == {}, "imported but not declared in pyproject.toml"
    unused = core - {d.lower() for d in imported} - set(NOT_IMPORTED)
    assert unused == set(), "declared but never imported"


def test_numpy_2_is_required():
    numpy = next(r for r in CORE if _name(r) == "numpy")
    assert not numpy.specifier.contains("1.26.4") and numpy.specifier.contains("2.0.0")
    assert "bitwise_count" in (REPO / "cvactive" / "health" / "images.py").read_text()


def test_the_environment_the_tests_run_in_satisfies_every_range():
    for req in [*CORE, *EXTRAS["openvino"], *EXTRAS["ray"], *EXTRAS["dev"]]:
        installed = metadata.version(req.name)
        assert req.specifier.contains(installed, prereleases=True), f"{req} but {installed} is installed"


def test_exact_pins_are_the_ones_with_a_reason():
    exact = {_name(r): str(r.specifier)[2:] for r in CORE if str(r.specifier).startswith("==")}
    assert exact == {
        "torch": "2.14.1",
        "torchvision": "0.29.1",
        "ultralytics": _pins.PRIVATE["ultralytics"].version,
        "fiftyone": _pins.PRIVATE["fiftyone"].version,
        "opencv-python": "4.14.0.94",
        "opencv-python-headless": "4.14.0.94",
        "albumentations": "2.0.8",
    }
    ranges = [r for r in CORE if _name(r) not in exact]
    assert all(any(s.operator == "<" for s in r.specifier) for r in ranges), "ranges end before the next major"


def test_private_api_uses_are_the_ones_listed():
    private = re.compile(
        r"ultralytics\.(nn\.|cfg|data\.augment|utils\.nms|utils import ops)|fiftyone\.core\.odm|_generate_rand"
    )
    users = {
        str(p.relative_to(REPO))
        for p in (REPO / "cvactive").rglob("*.py")
        if p.name != "_pins.py" and private.search(p.read_text())
    }
    listed = {m for pin in _pins.PRIVATE.values() for m in pin.modules}
    assert users == listed
    checked = (("ultralytics", "detect/model.py"), ("ultralytics", "weights/rebuild.py"), ("fiftyone", "store/_db.py"))
    for dist, module in checked:
        assert f'require_pinned("{dist}")' in (REPO / "cvactive" / module).read_text(), module


def test_a_different_version_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(_pins, "_CHECKED", set())
    _pins.require("ultralytics")  # the installed one
    monkeypatch.setattr(_pins, "_CHECKED", set())
    monkeypatch.setattr(_pins.metadata, "version", lambda dist: "9.0.0")
    with pytest.raises(MissingDependencyError) as err:
        _pins.require("fiftyone")
    text = str(err.value)
    assert "as of fiftyone==1.22.1, but 9.0.0 is installed: pip install 'fiftyone==1.22.1'" in text
    assert err.value.exit_code == 2
    monkeypatch.setenv("CVACTIVE_ALLOW_UNPINNED", "1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _pins.require("fiftyone")
    assert "9.0.0 is installed" in str(caught[0].message)


def test_dev_sh_installs_the_extras_the_tests_need():
    """./dev.sh test installs cvactive[openvino,ray,dev]: every module the tests import must come from those."""
    text = (REPO / "dev.sh").read_text()
    assert "install openvino,ray,dev" in text and '-e ".[$extras]"' in text
    declared = {_name(r) for r in [*CORE, *EXTRAS["openvino"], *EXTRAS["ray"], *EXTRAS["dev"]]}
    available = declared | {"packaging", "pydantic_core"}  # pytest's and pydantic's own dependencies
    needed = {d.lower().replace("_", "-") for d in _imports(REPO / "tests")}
    assert needed - available - {"pydantic-core"} == set()
