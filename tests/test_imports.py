"""No import circles in cvactive, and each third-party library behind its adapter: static checks of the
import graph (stdlib ``ast``, nothing imported).

Every ``import`` a module can run counts, at module level or inside a function (a lazy import
still closes a circle when it runs); imports under ``if TYPE_CHECKING:`` do not run and do not
count. Two graphs must be acyclic:

* modules: ``cvactive.health.check`` -> ``cvactive.health.report`` and back is a circle;
* top-level parts (``cvactive.detect``, ``cvactive.consistency``, ``cvactive.selection`` ...):
  a package is one node, so ``detect.scorer`` -> ``consistency.measured`` -> ``detect.model`` is a
  circle even though no single module imports its own importer.

Inside :mod:`cvactive.detect` the layers go one way even counting the imports made for type
hints only (:data:`DETECT_LAYERS`).

And the heavy libraries are imported only by the modules that own them (:data:`ADAPTERS`).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import cvactive

ROOT = Path(cvactive.__file__).resolve().parent

#: Edges left out of the check, each a known circle waiting for its fix (and why). Keep it short:
#: an entry whose edge is gone fails :func:`test_every_deferred_edge_still_exists`, so remove it then.
DEFERRED: dict[tuple[str, str], str] = {}

#: library -> the modules (or packages, with every module under them) that may import it.
ADAPTERS = {
    "ultralytics": (
        "cvactive.detect.model",
        "cvactive.train",
        "cvactive.train_hooks",
        "cvactive.architectures",
        "cvactive.weights",
    ),
    "albumentations": ("cvactive.synthesis._albu",),
    "fiftyone": ("cvactive.store",),
    "pymongo": ("cvactive.store",),
}
#: (module, library) imports still outside the adapter, each waiting for its fix (none now).
DEFERRED_LIBRARIES: dict[tuple[str, str], str] = {
    ("cvactive.resources.fiftyone-plugins.cvactive-review", "fiftyone"): "a FiftyOne App plugin: FiftyOne's App "
    "server loads it (fiftyone.operators at its top), cvactive never imports it; its work is cvactive.store.verdicts",
}
#: OpenCV's video API (capture, properties, writer): only :mod:`cvactive.sources` touches it;
#: image calls (decode, resize, colour) are fine anywhere.
CV2_VIDEO_OWNER = "cvactive.sources"


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the cvactive package."""
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = ["cvactive", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_modules(name: str, path: Path, modules: dict[str, Path], typing: bool = False) -> set[str]:
    """The cvactive modules ``name`` imports when it runs (TYPE_CHECKING blocks left out unless ``typing``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def target(node: ast.ImportFrom) -> list[str]:
        if node.level:
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            mod = ".".join(base + ([node.module] if node.module else []))
        else:
            mod = node.module or ""
        # ``from pkg import sub`` imports the module pkg.sub; ``from mod import func`` imports mod.
        return [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names]

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child) and not typing:
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                found.update(target(child))
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in modules and m != name}


def import_graph(deferred: bool = False) -> dict[str, set[str]]:
    """Module -> the modules it imports; without ``deferred``, the :data:`DEFERRED` edges are left out."""
    modules = module_files()
    graph = {name: imported_modules(name, path, modules) for name, path in modules.items()}
    if not deferred:
        for source, target in DEFERRED:
            graph.get(source, set()).discard(target)
    return graph


def part(module: str) -> str:
    """The top-level part a module belongs to: ``cvactive.health.check`` -> ``cvactive.health``."""
    return ".".join(module.split(".")[:2])


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_the_graph_sees_every_module_and_real_edges():
    graph = import_graph()
    assert {"cvactive", "cvactive.record", "cvactive.selection.base", "cvactive.health.check"} <= set(graph)
    assert "cvactive.record" in graph["cvactive.detect.scorer"]  # module level
    assert "cvactive.health.report" in graph["cvactive.health.check"]
    assert "cvactive.detect.model" not in graph["cvactive.consistency.calibration"]  # TYPE_CHECKING only
    assert "cvactive.sources" in graph["cvactive.consistency.calibration_run"]  # inside a function


def test_the_check_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_every_deferred_edge_still_exists():
    graph = import_graph(deferred=True)
    gone = [edge for edge in DEFERRED if edge[1] not in graph.get(edge[0], set())]
    assert gone == [], f"these circles are fixed: remove them from DEFERRED: {gone}"


def test_no_module_imports_its_own_importer():
    circles = cycles(import_graph())
    assert circles == [], f"import circles between modules: {circles}"


def test_no_circles_between_top_level_parts():
    parts: dict[str, set[str]] = defaultdict(set)
    for module, targets in import_graph().items():
        parts[part(module)].update(part(t) for t in targets if part(t) != part(module))
    circles = cycles(dict(parts))
    assert circles == [], f"import circles between parts of cvactive: {circles}"


#: module -> what it must not import (a module, or a package and everything under it): the circles
#: issue #16 broke, kept broken.
BROKEN_CIRCLES = {
    "cvactive.selection.base": ("cvactive.selection.strategies", "cvactive.config"),
    "cvactive.health.report": ("cvactive.health.check",),
    "cvactive.detect.scorer": ("cvactive.consistency",),
    "cvactive.yolodata": ("cvactive.config",),
    "cvactive.selection.cover": ("cvactive.selection.kernels",),
    "cvactive.selection.columnar": ("cvactive.scale",),
    "cvactive.sources": ("cvactive.detect",),
}


@pytest.mark.parametrize("module", sorted(BROKEN_CIRCLES))
def test_the_circles_of_issue_16_stay_broken(module):
    imported = import_graph()[module]
    for back in BROKEN_CIRCLES[module]:
        assert not any(t == back or t.startswith(back + ".") for t in imported), f"{module} imports {back}"


#: The modules of :mod:`cvactive.detect`, each importing only those before it (type hints included):
#: the measures, records from a user's Results, NMS in NumPy, the model adapter, its engines, the pipeline that
#: drives them, the score stage.
DETECT_LAYERS = (
    "cvactive.detect.scorer",
    "cvactive.detect.results",
    "cvactive.detect.nms",
    "cvactive.detect.model",
    "cvactive.detect.engines",
    "cvactive.detect.pipeline",
    "cvactive.detect.stage",
)


def test_the_detect_package_depends_one_way_even_for_type_hints():
    modules = module_files()
    assert {m for m in modules if m.startswith("cvactive.detect.")} == set(DETECT_LAYERS)
    for rank, name in enumerate(DETECT_LAYERS):
        imported = imported_modules(name, modules[name], modules, typing=True)
        later = sorted(m for m in imported if m in DETECT_LAYERS[rank:])
        assert later == [], f"{name} imports {later}, which sit above it in {DETECT_LAYERS}"
    # and nothing below the package reaches back up into it
    for low in ("cvactive.sources", "cvactive.record", "cvactive.measures", "cvactive.errors"):
        up = imported_modules(low, modules[low], modules, typing=True)
        assert not any(m.startswith("cvactive.detect") for m in up), f"{low} imports the detect package"


def third_party_imports(path: Path) -> set[str]:
    """The top-level names of every absolute import in a file (TYPE_CHECKING blocks included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_libraries_stay_behind_their_adapters():
    def owns(owner: str, module: str) -> bool:
        return module == owner or module.startswith(owner + ".")

    outside = sorted(
        (module, lib)
        for module, path in module_files().items()
        for lib in third_party_imports(path) & set(ADAPTERS)
        if not any(owns(o, module) for o in ADAPTERS[lib]) and (module, lib) not in DEFERRED_LIBRARIES
    )
    assert outside == [], f"import these through their adapter ({ADAPTERS}): {outside}"


def cv2_video_calls(path: Path) -> set[str]:
    """The OpenCV video names a file uses: ``cv2.VideoCapture``, ``cv2.VideoWriter*``, ``cv2.CAP_*``."""
    return {
        node.attr
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "cv2"
        and (node.attr.startswith(("Video", "CAP_")))
    }


def test_opencv_video_stays_in_sources():
    assert {"VideoCapture", "CAP_PROP_FPS"} <= cv2_video_calls(module_files()[CV2_VIDEO_OWNER])
    outside = {m: sorted(c) for m, p in module_files().items() if m != CV2_VIDEO_OWNER and (c := cv2_video_calls(p))}
    assert outside == {}, f"use cvactive.sources (Capture, open_video, write_video) instead: {outside}"
