"""Each stage's options are declared once (cvactive.declare): the config check, the flags, the
reference page and the documented examples all come from the declaration, and agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from cvactive._config import CONFIG_DIR, load_yaml
from cvactive.config import check_config
from cvactive.errors import ConfigError
from cvactive.schemas import SCHEMAS

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("kind", sorted(__import__("cvactive.harvest.rules", fromlist=["RULES"]).RULES))
def test_every_registered_rule_is_accepted_with_its_documented_example(kind):
    from cvactive.harvest.rules import RULES

    example = RULES[kind].example
    assert example["kind"] == kind
    assert check_config("harvest", {"rules": [example]}, f"rule {kind}")
    page = (REPO / "docs" / "config-reference.md").read_text()
    assert f"## `rule:{kind}`" in page and yaml.safe_dump({"rules": [example]}, sort_keys=False,
                                                          default_flow_style=None).rstrip() in page  # fmt: skip


def test_every_registered_strategy_is_documented_in_select_yaml_and_accepted():
    from cvactive.selection import available_strategies
    from cvactive.selection.options import SelectOptions

    documented = load_yaml(CONFIG_DIR / "select.yaml")["strategies"]
    assert sorted(documented) == sorted(available_strategies())
    for name in available_strategies():
        config = {"strategy": name, "k": 5, "strategies": {name: documented[name]}}
        assert check_config("select", config, f"strategy {name}")
        assert SelectOptions.of(config).options_of(name) == dict(documented[name] or {})


def test_every_builtin_recipe_is_accepted_by_the_recipe_check():
    from cvactive.synthesis.recipes import RECIPE_DIR, builtin_names, load_recipes

    recipes = load_recipes()
    assert sorted(p.stem for p in RECIPE_DIR.glob("*.yaml")) == builtin_names()
    assert sorted(recipes) == builtin_names()  # one recipe per built-in file, named as the file
    for path in sorted(RECIPE_DIR.glob("*.yaml")):
        assert check_config("recipe", load_yaml(path), str(path))


def _doc_blocks() -> list[tuple[str, dict]]:
    blocks = []
    for page in [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md"]:
        for text in re.findall(r"```ya?ml\n(.*?)```", page.read_text(), re.S):
            blocks.append((page.name, yaml.safe_load(text)))  # every block parses
    return blocks


#: config schemas a docs block may be part of, the most specific first.
DOC_KINDS = ("harvest", "select", "synthesize", "recipe", "health", "evaluate", "loop", "porch")


def test_the_docs_yaml_blocks_parse_and_pass_the_config_check():
    blocks = _doc_blocks()
    assert len(blocks) >= 4
    for page, data in blocks:
        assert isinstance(data, dict), page
        kinds = [k for k in DOC_KINDS if set(data) <= set(SCHEMAS[k].model_fields)]
        assert kinds, f"docs/{page}: a YAML block with keys {sorted(data)} is no config"
        check_config(kinds[0], data, f"docs/{page}", partial=True)  # raises on a problem


def test_a_bad_documented_block_would_be_caught():
    with pytest.raises(ConfigError, match=r"rules\[0\].min_value: got 'high', expected a number"):
        check_config("harvest", {"rules": [{"kind": "learned_error", "predictor": "p", "min_value": "high"}]}, "doc")


def test_the_declaration_checks_objects_built_in_python_too():
    from cvactive.harvest.budget import Limits
    from cvactive.harvest.options import HarvestOptions
    from cvactive.harvest.rules import RandomRule

    with pytest.raises(ConfigError, match=r"rule 'random': every_n: got 0, expected an integer >= 1 or null"):
        RandomRule(every_n=0)
    with pytest.raises(ConfigError, match="limits: total: got -1, expected an integer >= 0 or null"):
        Limits(total=-1)
    options = HarvestOptions(rules=[{"kind": "random", "every_n": 2}], budget={"total": 3})  # type: ignore[list-item,arg-type]
    assert isinstance(options.rules[0], RandomRule) and options.budget == Limits(total=3)


def test_flags_and_fingerprint_come_from_the_declaration():
    import argparse

    from cvactive.declare import add_flags, flag_values
    from cvactive.harvest.options import HarvestOptions

    parser = argparse.ArgumentParser()
    add_flags(parser, HarvestOptions)
    args = parser.parse_args(["--seed", "3", "--workers", "0"])
    assert flag_values(args, HarvestOptions) == {"seed": 3, "workers": 0}
    assert "seeds every random decision" in parser.format_help()
    base = HarvestOptions.of({"rules": [{"kind": "random", "every_n": 2}]})
    same = HarvestOptions.of(base, workers=3, batch=4, log_every=1.0)  # how, not what: the same harvest
    other = HarvestOptions.of(base, stride=2)
    assert base.fingerprint("v", None) == same.fingerprint("v", None) != other.fingerprint("v", None)
