"""The config helpers that need nothing of cvactive: read a YAML mapping, refuse unknown keys.

:mod:`cvactive.config` is the door every config goes through: it looks up the schema of each
option set in :mod:`cvactive.schemas`, which in turn asks the selection registry and the measure
names. Modules below those layers (the selection registry itself, the YOLO data set reader) need
only these helpers, so they live here and import nothing above :mod:`cvactive.errors`;
every module, :mod:`cvactive.config` included, imports them from here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from cvactive.errors import ConfigError


def resource(*parts: str) -> Path:
    """A file or folder of the package data under ``cvactive/resources`` (a real path on disk).

    cvactive is installed as files (a wheel unpacked into site-packages, or a source checkout),
    so the traversable :func:`importlib.resources.files` returns is a filesystem path.
    """
    from importlib.resources import files

    return Path(str(files("cvactive").joinpath("resources", *parts)))


#: The shipped default configs (``configs/`` of the repository is a documented copy).
CONFIG_DIR = resource("configs")
#: The shipped data set recipes (``datasets/`` of the repository is a documented copy).
DATASET_DIR = resource("datasets")


def shipped_configs() -> dict[str, Path]:
    """The configs that ship inside the package, by name (``harvest``, ``harvest-paced``, ...)."""
    return {p.stem: p for p in sorted(CONFIG_DIR.glob("*.yaml"))}


def config_path(path: str | Path) -> Path:
    """``path`` itself when it is a file, else the shipped config of that name.

    ``--config harvest`` (or ``harvest.yaml``, or ``configs/harvest.yaml`` from any folder) finds
    the packaged copy of ``configs/harvest.yaml`` when no such file exists where the command runs.
    """
    p = Path(path)
    if p.is_file():
        return p
    shipped = shipped_configs()
    name = p.name[: -len(".yaml")] if p.name.endswith(".yaml") else p.name
    if name in shipped and (len(p.parts) == 1 or p.parent.name == "configs"):
        return shipped[name]
    listed = ", ".join(shipped) or "none"
    raise ConfigError(f"config file {str(p)!r} does not exist; shipped configs by name: {listed}")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Load a YAML mapping (a file, or a shipped config by name, :func:`config_path`); a missing
    file or a non-mapping is a :class:`ConfigError`."""
    import yaml

    p = config_path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{p}: not valid YAML ({' '.join(str(err).split())})") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of option names to values, got {type(data).__name__}")
    return data


def unknown_options(where: str, unknown: Any, valid: Any) -> ConfigError:
    """The one message for keys a config section does not know (it lists the valid ones)."""
    listed = ", ".join(str(v) for v in valid) or "none"
    return ConfigError(f"{where}: unknown option(s) {sorted(str(u) for u in unknown)}; valid options: {listed}")


def check_keys(options: Mapping[Any, Any], valid: Any, where: str) -> None:
    """Raise :func:`unknown_options` when ``options`` has a key outside ``valid``."""
    unknown = set(options) - set(valid)
    if unknown:
        raise unknown_options(where, unknown, valid)


def check_signature(target: Callable[..., Any], options: Mapping[str, Any], where: str) -> None:
    """Refuse keys that are not keyword arguments of ``target`` (unless it takes ``**kwargs``)."""
    import inspect

    params = inspect.signature(target).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    check_keys(options, [n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)], where)


F = TypeVar("F")


def config_schema(kind: str) -> Callable[[F], F]:
    """Mark a function or dataclass as checked by the config schema ``kind`` (of :mod:`cvactive.schemas`).

    :func:`cvactive.config.check_kwargs` reads the mark from the object itself, so the link never
    names a moved module. (A declared options dataclass, see :mod:`cvactive.declare`, needs no
    mark: its schema is derived from it.)
    """

    def mark(obj: F) -> F:
        obj.__config_schema__ = kind  # type: ignore[attr-defined]
        return obj

    return mark
