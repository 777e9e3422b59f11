"""Property: random corruptions of every shipped config never produce a traceback.

Each example takes one shipped config file, corrupts it (a value replaced by a random YAML
value, a key deleted or added, the whole document replaced, or the text itself garbled) and
hands it to the code that reads that config: the door check and then the command or builder
that consumes it, on real small inputs. The only acceptable failure is a
:class:`~cvactive.errors.CvactiveError` (one line, exit code 2 on the command line).
"""

from __future__ import annotations

import copy
import math
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cvactive._config import CONFIG_DIR, DATASET_DIR, load_yaml
from cvactive.config import load_config
from cvactive.errors import CvactiveError

#: how the examples of the current test ended (printed with -s: how many got past the door).
OUTCOMES: Counter[str] = Counter()

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.sampled_from([0, -1, 1, 2, 64, 10**9, 0.0, -0.5, 0.5, 1.5, 1e308, math.inf, -math.inf, math.nan]),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["", "lots", "random", "entropy_max", "phash", "HorizontalFlip", "yes", "null", "[1, 2]"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def near(value: Any) -> st.SearchStrategy[Any]:
    """Values of ``value``'s own type at the edges of any sensible range."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.sampled_from([0, 1, -1, 2, 3, 7, 64, 100, 255, 10**6, value * 2, value - 1])
    if isinstance(value, float):
        return st.sampled_from([0.0, 1.0, 1e-9, 0.5, 0.999, 1.001, 255.0, 1e6, -0.001, value * 2]) | st.floats(0, 1)
    if isinstance(value, str):
        return st.sampled_from([value, "", "random", "entropy_max", "margin_sum", "HorizontalFlip", "val", "train"])
    if isinstance(value, list):
        return st.lists(st.sampled_from(value), max_size=len(value) + 1) if value else st.just([])
    return VALUES


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def corrupt(doc: Any, draw: Callable[[Any], Any]) -> tuple[str, Any]:
    """A corrupted copy of ``doc``: ``("data", value)`` to dump as YAML, or ``("text", str)`` to write."""
    doc = copy.deepcopy(doc)
    paths = _paths(doc)
    how = draw(st.sampled_from(["replace", "retype", "retype", "retype", "delete", "add", "root", "text"]))
    if how == "root" or not paths:
        return "data", draw(VALUES)
    if how == "text":
        text = yaml.safe_dump(doc, sort_keys=False)
        at = draw(st.integers(0, len(text)))
        return "text", text[:at] + draw(st.sampled_from(["]", ": :", "\t", "{", "- ", "'", "\x00", "\n  x"])) + text[
            at:
        ]
    path = draw(st.sampled_from(paths))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if how == "replace":
        parent[path[-1]] = draw(VALUES)
    elif how == "retype":  # a value of the same type, often valid: these reach the code behind the door
        parent[path[-1]] = draw(near(parent[path[-1]]))
    elif how == "delete":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[draw(st.text(min_size=1, max_size=8))] = draw(VALUES)
    else:
        parent.append(draw(VALUES))
    return "data", doc


def write(kind_and_value: tuple[str, Any], folder: Path) -> Path:
    kind, value = kind_and_value
    path = folder / "corrupted.yaml"
    if kind == "text":
        path.write_text(value)
    else:
        path.write_text(yaml.safe_dump(value, sort_keys=False, allow_unicode=True))
    return path


def no_traceback(consume: Callable[[Path], Any], path: Path) -> None:
    try:
        result = consume(path)
    except CvactiveError as err:
        assert str(err) and "\n" not in str(err).strip(), f"not one line: {err!r}"
        OUTCOMES[f"refused ({type(err).__name__})"] += 1
    else:  # the command line turns a CvactiveError into exit code 2 itself
        OUTCOMES["refused (exit 2)" if result == 2 and isinstance(result, int) else "accepted and consumed"] += 1


# -- the consumers: what each shipped config feeds ---------------------------------------------------
def consume_harvest(video: Path) -> Callable[[Path], Any]:
    def run(path: Path) -> Any:
        from cvactive.harvest import harvest

        options = load_config("harvest", path)
        with tempfile.TemporaryDirectory() as out:  # random-only configs run for real; others need a model
            return harvest(video, out, detector=None, progress=False, handle_signals=False, **options)

    return run


def consume_select(path: Path) -> Any:
    import argparse

    from cvactive.cli.select import resolve_options

    args = argparse.Namespace(strategy=None, k=None, seed=None, overrides=[])
    return resolve_options(load_config("select", path), args)


def consume_loop(path: Path) -> Any:
    from cvactive.cli import build_parser
    from cvactive.cli.loop import build_config

    args = build_parser().parse_args(["loop", "--data", "d", "--out", "o", "--config", str(path)])
    load_config("loop", path)
    build_config(args).check(pool_size=10_000)


def consume_evaluate(path: Path) -> Any:
    from cvactive.config import check_kwargs
    from cvactive.store.evaluate import evaluate_round

    return check_kwargs(evaluate_round, load_config("evaluate", path), str(path))


def consume_recipe(path: Path) -> Any:
    from cvactive.synthesis.recipes import read_recipe_file

    return [r.geometric for r in read_recipe_file(path)]


def consume_porch(path: Path) -> Any:
    import numpy as np

    from cvactive.porch import PorchRecipe, render_scene

    load_config("porch", path)
    recipe = PorchRecipe.load(path)
    return render_scene(recipe, np.random.default_rng(0))


def consume_health(data: Path) -> Callable[[Path], Any]:
    def run(path: Path) -> Any:
        from cvactive.cli import main

        return main(["health", str(data), "--config", str(path), "--no-plots", "--no-progress"])

    return run


def consume_synthesize(data: Path) -> Callable[[Path], Any]:
    def run(path: Path) -> Any:
        from cvactive.cli import main

        with tempfile.TemporaryDirectory() as out:
            args = ["synthesize", str(data), "--k", "1", "--out", out, "--config", str(path), "--no-progress"]
            return main([*args, "--recipe", "flip"])

    return run


FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@pytest.mark.filterwarnings("ignore::UserWarning")  # albumentations adjusting corrupted ranges itself
@pytest.mark.parametrize(
    ("name", "consumer"),
    [
        ("select.yaml", consume_select),
        ("loop.yaml", consume_loop),
        ("evaluate.yaml", consume_evaluate),
        *[
            (f"synthesis/recipes/{p.name}", consume_recipe)
            for p in sorted((CONFIG_DIR / "synthesis/recipes").glob("*"))
        ],
        ("porch", consume_porch),
    ],
)
def test_corrupted_configs_give_one_line_errors(name: str, consumer: Callable[[Path], Any], tmp_path: Path):
    source = DATASET_DIR / "porch.yaml" if name == "porch" else CONFIG_DIR / name
    original = load_yaml(source)

    @FUZZ
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        no_traceback(consumer, write(corrupt(original, data.draw), tmp_path))

    OUTCOMES.clear()
    check()
    print(f"{name}: {dict(OUTCOMES)}")


@pytest.mark.parametrize("name", ["harvest.yaml", "harvest-paced.yaml", "harvest-porch.yaml"])
def test_corrupted_harvest_configs_give_one_line_errors(name: str, porch_data: Path, tmp_path: Path):
    original = load_yaml(CONFIG_DIR / name)
    consumer = consume_harvest(porch_data.parent / "videos" / "porch.mp4")

    @settings(FUZZ, max_examples=30)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        no_traceback(consumer, write(corrupt(original, data.draw), tmp_path))

    OUTCOMES.clear()
    check()
    print(f"{name}: {dict(OUTCOMES)}")


@pytest.mark.parametrize(("name", "make"), [("health.yaml", consume_health), ("synthesis/synthesize.yaml", None)])
def test_corrupted_command_configs_give_one_line_errors(name: str, make: Any, porch_data: Path, tmp_path: Path):
    original = load_yaml(CONFIG_DIR / name)
    consumer = (make or consume_synthesize)(porch_data)

    @settings(FUZZ, max_examples=25)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        no_traceback(consumer, write(corrupt(original, data.draw), tmp_path))

    OUTCOMES.clear()
    check()
    print(f"{name}: {dict(OUTCOMES)}")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["harvest.yaml", "harvest-porch.yaml"])
def test_corrupted_harvest_configs_with_a_real_model(name: str, porch_data: Path, tmp_path: Path):
    """The same with a real (untrained, tiny) YOLOv8n, so rules, pacing and dedup run on detections."""
    from cvactive.detect.model import Detector
    from cvactive.harvest import harvest

    detector = Detector("yolov8n.yaml", imgsz=128, conf=0.001)
    video = porch_data.parent / "videos" / "porch.mp4"
    original = load_yaml(CONFIG_DIR / name)

    def consume(path: Path) -> Any:
        options = load_config("harvest", path)
        options["stride"] = max(int(options.get("stride", 1)), 6)  # about 10 frames of the video
        with tempfile.TemporaryDirectory() as out:
            return harvest(video, out, detector=detector, progress=False, handle_signals=False, **options)

    @settings(FUZZ, max_examples=15)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        no_traceback(consume, write(corrupt(original, data.draw), tmp_path))

    OUTCOMES.clear()
    check()
    print(f"{name} with a model: {dict(OUTCOMES)}")
