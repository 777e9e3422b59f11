"""YAML configs: their keys are the keyword arguments of the function a command calls."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cvactive.errors import ConfigError

#: The repository's ``configs/`` folder (present in a source checkout).
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Load a YAML mapping; a missing file or a non-mapping is a :class:`ConfigError`."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{p}: not valid YAML ({err})") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of option names to values, got {type(data).__name__}")
    return data


def check_kwargs(func: Callable[..., Any], options: Mapping[str, Any], where: str = "config") -> dict[str, Any]:
    """Check that every key is a keyword argument of ``func``; name the valid ones if not."""
    params = inspect.signature(func).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(options)
    valid = [n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {unknown}; valid options: {', '.join(valid)}")
    return dict(options)
