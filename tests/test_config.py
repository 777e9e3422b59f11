"""Config files: shipped as package data, documented copies kept identical, every key checked at the door."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from cvactive._config import CONFIG_DIR, DATASET_DIR, resource
from cvactive.cli import main
from cvactive.config import check_config, check_kwargs, from_mapping, load_config
from cvactive.errors import ConfigError
from cvactive.schemas import SCHEMAS

REPO = Path(__file__).resolve().parent.parent

#: every shipped config file -> the schema that checks it.
SHIPPED = {
    **{p: "harvest" for p in CONFIG_DIR.glob("harvest*.yaml")},
    CONFIG_DIR / "health.yaml": "health",
    CONFIG_DIR / "evaluate.yaml": "evaluate",
    CONFIG_DIR / "select.yaml": "select",
    CONFIG_DIR / "loop.yaml": "loop",
    CONFIG_DIR / "synthesis" / "synthesize.yaml": "synthesize",
    **{p: "recipe" for p in (CONFIG_DIR / "synthesis" / "recipes").glob("*.yaml")},
    DATASET_DIR / "porch.yaml": "porch",
}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_package_data_is_inside_the_package():
    package = Path(importlib.import_module("cvactive").__file__).resolve().parent
    assert resource() == package / "resources"
    assert CONFIG_DIR.is_dir() and DATASET_DIR.is_dir()
    assert CONFIG_DIR.resolve().is_relative_to(package)


@pytest.mark.parametrize("folder", ["configs", "datasets"])
def test_repository_copies_are_identical_to_the_package_data(folder):
    shipped, documented = _files(resource(folder)), _files(REPO / folder)
    assert shipped, f"no package data under cvactive/resources/{folder}"
    assert sorted(shipped) == sorted(documented), f"{folder}/ and cvactive/resources/{folder}/ list different files"
    changed = [name for name in shipped if shipped[name] != documented[name]]
    assert not changed, f"edit both copies: {folder}/{changed[0]} differs from cvactive/resources/{folder}/{changed[0]}"


def test_every_shipped_config_has_a_schema_and_passes_it():
    every = {p for p in CONFIG_DIR.rglob("*.yaml")} | {p for p in DATASET_DIR.rglob("*.yaml")}
    assert every == set(SHIPPED), "a shipped YAML without a schema in this test"
    for path, kind in SHIPPED.items():
        assert load_config(kind, path)  # raises on a problem


# -- the schemas say what the code does ----------------------------------------------------------
#: the functions and dataclasses a hand-written schema describes (each marked ``@config_schema(kind)``).
MARKED = [
    "cvactive.health.check.analyse",
    "cvactive.store.evaluate.evaluate_round",
    "cvactive.loop.config.LoopConfig",
    "cvactive.porch.PorchRecipe",
]

#: keyword arguments of a target that are not config keys (paths, data, run-time switches).
NOT_CONFIG = {
    "cvactive.health.check.analyse": {"table"},
    "cvactive.store.evaluate.evaluate_round": {"dataset", "pred_field", "gt_field", "round_", "out_dir"},
}


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _target_defaults(target: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(target):
        out = {}
        for f in dataclasses.fields(target):
            if f.default is not dataclasses.MISSING:
                out[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                out[f.name] = f.default_factory()
        return out
    params = inspect.signature(target).parameters.values()
    return {p.name: p.default for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def _schema_defaults(model: type[BaseModel]) -> dict[str, Any]:
    return {name: f.default for name, f in model.model_fields.items()}


@pytest.mark.parametrize("target_name", MARKED)
def test_schema_keys_and_defaults_match_the_code(target_name):
    module, _, name = target_name.rpartition(".")
    target = getattr(importlib.import_module(module), name)
    code = _target_defaults(target)
    for key in NOT_CONFIG.get(target_name, ()):
        code.pop(key)
    schema = _schema_defaults(SCHEMAS[target.__config_schema__])
    assert sorted(schema) == sorted(code), f"{target_name}: schema keys differ from the code's keyword arguments"
    for key, default in schema.items():
        if default is PydanticUndefined:
            continue
        want = code[key]
        assert _plain(default) == _plain(want), (
            f"{target_name}: {key} defaults to {want!r}, the schema says {default!r}"
        )


def test_the_harvest_schemas_are_derived_from_the_declarations():
    from cvactive.declare import schema_of
    from cvactive.harvest.options import HarvestOptions
    from cvactive.harvest.rules import RULES

    assert SCHEMAS["harvest"] is schema_of(HarvestOptions)
    assert [k for k in SCHEMAS if k.startswith("rule:")] == [f"rule:{kind}" for kind in RULES]
    assert "rule:learned_error" in SCHEMAS  # registered in harvest/rules.py, so in the rule union


def test_the_select_and_synthesis_schemas_are_derived_from_the_declarations():
    from cvactive.declare import schema_of
    from cvactive.selection.options import SelectOptions
    from cvactive.synthesis.options import SynthesisOptions
    from cvactive.synthesis.recipes import BboxOptions, CopyPasteOptions, RecipeFile

    assert SCHEMAS["select"] is schema_of(SelectOptions)
    assert SCHEMAS["synthesize"] is schema_of(SynthesisOptions)
    assert SCHEMAS["bbox"] is schema_of(BboxOptions) and SCHEMAS["copy_paste"] is schema_of(CopyPasteOptions)
    assert SCHEMAS["recipe"] is RecipeFile


def test_schema_choices_match_the_code():
    from cvactive.harvest.dedup import DEDUP_METHODS
    from cvactive.porch import CLASS_COLORS
    from cvactive.synthesis.recipes import FILLS, KINDS
    from cvactive.yolo_labels import ERROR_KINDS

    def literal(kind: str, field: str) -> list[str]:
        ann = SCHEMAS[kind].model_fields[field].annotation
        return list(_literals(ann))

    assert literal("dedup", "method") == list(DEDUP_METHODS)
    assert literal("health", "error_kinds") == list(ERROR_KINDS)
    assert literal("porch", "classes") == list(CLASS_COLORS)
    assert set(literal("recipe", "fills")) == set(FILLS)
    assert literal("recipe", "kind") == list(KINDS)
    from cvactive.recipes import RECIPES

    assert literal("loop", "recipe") == list(RECIPES)


def _literals(ann: Any) -> list[Any]:
    from typing import Literal, get_args, get_origin

    if get_origin(ann) is Literal:
        return list(get_args(ann))
    out: list[Any] = []
    for arg in get_args(ann):
        out += [v for v in _literals(arg) if v not in out]
    return out


# -- the messages --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        (
            "harvest",
            {"rules": [{"kind": "random", "probability": "lots"}]},
            "rules[0].probability: got 'lots', expected a number in [0, 1]",
        ),
        (
            "harvest",
            {"rules": [{"kind": "smart"}]},
            "rules[0].kind: got 'smart', expected one of random, confidence_band",
        ),
        (
            "harvest",
            {"rules": [{"kind": "empty"}], "budget": {"total": -1}},
            "budget.total: got -1, expected an integer >= 0 or null",
        ),
        (
            "harvest",
            {"rules": [{"kind": "empty"}], "jpeg_quality": 101},
            "jpeg_quality: got 101, expected an integer in [1, 100]",
        ),
        (
            "harvest",
            {"rules": [{"kind": "empty", "epsilon": 1}]},
            "rules[0]: unknown option(s) ['epsilon']; valid options: kind, name, limits, keep_probability",
        ),
        (
            "harvest",
            {"rules": [{"kind": "uncertainty", "score": "entropy_maximum"}]},
            "rules[0].score: got "
            "'entropy_maximum', expected an image score <measure>_<aggregation>: measure one of least_confidence",
        ),
        ("health", {"max_imbalance": "lots"}, "max_imbalance: got 'lots', expected a number >= 1 or null"),
        ("health", {"image_checks": "yes"}, "image_checks: got 'yes', expected true or false"),
        ("health", {"min_instances": 2.5}, "min_instances: got 2.5, expected an integer >= 0 or null"),
        ("health", {"dark_below": 220}, "dark_below (220.0) must be below bright_above (200.0)"),
        ("loop", {"seeds": [0, -1]}, "seeds[1]: got -1, expected an integer >= 0"),
        (
            "loop",
            {"strategies": ["random", "entropy"]},
            "strategies[1]: got 'entropy', expected a selection strategy: one of random, uncertainty",
        ),
        (
            "select",
            {"strategies": {"hybrid": {"factor": "ten"}}},
            "strategies: hybrid: factor: got 'ten', expected a number",
        ),
        ("evaluate", {"iou_threshs": [0.5, 1.5]}, "iou_threshs[1]: got 1.5, expected a number in (0, 1]"),
        ("synthesize", {"quality": 0}, "quality: got 0, expected an integer in [1, 100]"),
        ("porch", {"objects_per_image": [3, 1]}, "objects_per_image must be [low, high] with low <= high"),
        ("recipe", {"name": ""}, "name: got '', expected a non-empty string"),
    ],
)
def test_a_bad_value_is_one_line_naming_file_key_value_and_expectation(kind, data, message):
    with pytest.raises(ConfigError) as err:
        check_config(kind, data, "my.yaml")
    text = str(err.value)
    assert text == f"my.yaml: {message}" or text.startswith(f"my.yaml: {message}"), text
    assert "\n" not in text


@pytest.mark.parametrize(
    ("command", "config", "extra"),
    [
        ("health", "image_checks: lots\n", ["DATA"]),
        ("harvest", "rules:\n  - kind: random\n    probability: lots\n", ["video.mp4", "--out", "OUT"]),
        ("select", "k: -3\n", ["scores.jsonl"]),
        ("loop", "epochs: ten\n", ["--data", "DATA", "--out", "OUT"]),
        ("synthesize", "seed: -1\n", ["DATA", "--k", "1", "--out", "OUT"]),
        ("evaluate", "iou: 2\n", ["--dataset", "d", "--pred", "p", "--gt", "g", "--round", "1"]),
    ],
)
def test_commands_check_their_config_before_any_work(tmp_path, capsys, command, config, extra):
    path = tmp_path / "bad.yaml"
    path.write_text(config)
    args = [a.replace("OUT", str(tmp_path / "out")) for a in extra]  # DATA, video, scores: never read
    assert main([command, *args, "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"cvactive {command}: error: {path}: ") and "got" in err and "expected" in err, err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_porch_recipe_is_checked_at_the_door(tmp_path, capsys):
    recipe = tmp_path / "porch.yaml"
    recipe.write_text("width: 10\n")
    assert main(["porch", "--out", str(tmp_path / "out"), "--recipe", str(recipe)]) == 2
    assert f"{recipe}: width: got 10, expected an integer in [64, 4096]" in capsys.readouterr().err
    assert main(["porch", "--out", str(tmp_path / "out"), "--recipe", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_yaml_syntax_error_is_one_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("rules: [\n  - kind: random\n")
    with pytest.raises(ConfigError) as err:
        load_config("harvest", path)
    assert str(err.value).startswith(f"{path}: not valid YAML") and "\n" not in str(err.value)


# -- check_kwargs and from_mapping -----------------------------------------------------------------
def test_check_kwargs_uses_the_schema_and_lets_python_objects_through():
    import numpy as np

    from cvactive.health.check import analyse

    assert check_kwargs(analyse, {"error_kinds": ("malformed",), "seed": np.random.default_rng(0)})
    with pytest.raises(ConfigError, match=r"health: error_kinds\[0\]: got 'typo'"):
        check_kwargs(analyse, {"error_kinds": ("typo",)}, "health")


def test_check_kwargs_without_a_schema_checks_the_signature():
    def f(a: int, *, b: int = 1) -> None:
        pass

    assert check_kwargs(f, {"b": 2}) == {"b": 2}
    with pytest.raises(ConfigError, match=r"where: unknown option\(s\) \['c'\]; valid options: a, b"):
        check_kwargs(f, {"c": 1}, "where")


def test_from_mapping_is_the_one_way_to_build_a_section():
    from cvactive.harvest.budget import Limits, Pacing
    from cvactive.harvest.dedup import Dedup
    from cvactive.harvest.frames import Retry

    assert Limits.from_mapping(None) == Limits() and Retry.from_mapping(None) == Retry()
    assert Dedup.from_mapping(None) is None and Pacing.from_mapping(None) is None
    assert Dedup.from_mapping({"recent": 4}) == Dedup(recent=4)
    same = Pacing(budget=3)
    assert Pacing.from_mapping(same) is same
    assert from_mapping(Retry, {"attempts": 2}, "retry") == Retry(attempts=2)
    with pytest.raises(ConfigError, match=r"retry: unknown option\(s\) \['tries'\]; valid options: attempts"):
        Retry.from_mapping({"tries": 2})
    with pytest.raises(ConfigError, match="dedup: expected a mapping"):
        Dedup.from_mapping(5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="dedup: recent: got 0, expected an integer >= 1"):
        Dedup.from_mapping({"recent": 0})


def test_the_unknown_option_message_is_one_wording_everywhere():
    """Every place that refuses a key says it the same way (config.unknown_options)."""
    import re

    pattern = re.compile(r"unknown (option|key|cap|recipe key)")
    one_wording = ("cvactive/_config.py", "cvactive/declare/check.py")
    offenders = []
    for path in sorted((REPO / "cvactive").rglob("*.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line) and 'f"' in line and path.relative_to(REPO).as_posix() not in one_wording:
                offenders.append(f"{path.relative_to(REPO)}:{n}")
    allowed = {"cvactive/cli/select.py", "cvactive/loop/dataview.py"}  # other owners
    assert [o for o in offenders if o.split(":")[0] not in allowed] == []


def test_the_config_reference_page_is_the_schemas():
    from cvactive.schemas import SCHEMAS, reference_page

    page = (REPO / "docs" / "config-reference.md").read_text()
    assert page == reference_page(), "regenerate docs/config-reference.md: python tools/render_config_reference.py"
    assert all(f"## `{kind}`" in page for kind in SCHEMAS)


def test_the_health_config_lists_the_error_kinds_the_health_check_knows():
    from typing import get_args

    from cvactive import yolo_labels
    from cvactive.schemas.commands import ErrorKind

    assert ErrorKind is yolo_labels.ErrorKind  # one definition: the schema uses the label reader's Literal
    assert get_args(ErrorKind) == yolo_labels.ERROR_KINDS
