"""No import circles in cvactive, and each third-party library behind its adapter: static checks of the
import graph (stdlib ``ast``, nothing imported).

Every ``import`` a module can run counts, at module level or inside a function (a lazy import
still closes a circle when it runs); imports under ``if TYPE_CHECKING:`` do not run and do not
count. Two graphs must be acyclic:

* modules: ``cvactive.health.check`` -> ``cvactive.health.report`` and back is a circle;
* top-level parts (``cvactive.scoring``, ``cvactive.consistency``, ``cvactive.selection`` ...):
  a package is one node, so ``scoring`` -> ``consistency.measured`` -> ``scoring`` is a circle
  even though no single module imports its own importer.

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
DEFERRED = {
    # config.check_kwargs looks each option set's schema up in cvactive.schemas (lazily), and the
    # schemas ask the selection registry and the measure names, which use config: the leaf utility
    # calls up into the layer that knows every command. Fix: let schemas register their targets
    # with config (or have the CLI's door pass the schema), so config imports nothing of cvactive.
    ("cvactive.config", "cvactive.schemas"): "issue #16: config -> schemas inversion, for the lead",
    # kernels.kcenter/kmeanspp import cover (lazily) and cover imports kernels' helpers. Fix: move
    # the shared block helpers (dots_with, row_sq_norms, STREAM_ROWS) below both, or cover into kernels.
    ("cvactive.selection.kernels", "cvactive.selection.cover"): "issue #16: kernels <-> cover, for the lead",
    # The pure selection package reads the shard layout of the Ray engine that sits on top of it.
    # Fix: the Shard type and shard reading (scale.plan / scale.shards) below selection, or columnar in scale.
    ("cvactive.selection.columnar", "cvactive.scale.plan"): "issue #16: selection -> scale, for the lead",
    ("cvactive.selection.columnar", "cvactive.scale.shards"): "issue #16: selection -> scale, for the lead",
    # A library module reaching into the CLI for the detector and scorer it builds from arguments.
    # Fix: the CLI passes a built detector / scorer factory to scale, or those builders move out of cli.
    ("cvactive.scale.cli", "cvactive.cli._common"): "issue #16: scale -> cli, for the lead",
    # feed opens a LiveReader (lazily) and live builds on feed's FeedFrame, Retry and reconnect.
    # Fix: those three in a module below both (or the runner picks the reader).
    ("cvactive.harvest.feed", "cvactive.harvest.live"): "issue #16: feed <-> live, for the lead",
    # Detector.predict_stream(workers=...) builds the Pipeline (lazily), which drives the Detector and
    # reads frames from sources, which imports FrameMeta from detector. Fix: the caller (score) picks
    # the pipeline, and FrameMeta moves below detector and sources (record.py or sources.py).
    ("cvactive.detector", "cvactive.pipeline"): "issue #16: detector <-> pipeline, for the lead",
}

#: library -> the modules (or packages, with every module under them) that may import it.
ADAPTERS = {
    "ultralytics": ("cvactive.detector", "cvactive.train", "cvactive.weights"),
    "albumentations": ("cvactive.synthesis._albu",),
    "fiftyone": ("cvactive.store",),
    "pymongo": ("cvactive.store",),
}
#: (module, library) imports still outside the adapter, each waiting for its fix.
DEFERRED_LIBRARIES = {
    ("cvactive.consistency.mc_dropout", "ultralytics"): "NMS of the dropout passes: a detector.py call (score helper)",
    ("cvactive.yolodata", "ultralytics"): "DATASETS_DIR to resolve data.yaml paths as Ultralytics does",
}


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


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The cvactive modules ``name`` imports when it runs (TYPE_CHECKING blocks left out)."""
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
            if isinstance(child, ast.If) and _is_type_checking(child):
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
    assert "cvactive.record" in graph["cvactive.scoring"]  # module level
    assert "cvactive.health.report" in graph["cvactive.health.check"]
    assert "cvactive.detector" not in graph["cvactive.consistency.calibration"]  # TYPE_CHECKING only
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


@pytest.mark.parametrize("module", ["cvactive.selection.base", "cvactive.health.report", "cvactive.scoring"])
def test_the_circles_of_issue_16_stay_broken(module):
    graph = import_graph()
    back = {
        "cvactive.selection.base": "cvactive.selection.strategies",
        "cvactive.health.report": "cvactive.health.check",
        "cvactive.scoring": "cvactive.consistency",
    }[module]
    assert not any(t == back or t.startswith(back + ".") for t in graph[module])


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
