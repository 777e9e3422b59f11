"""YAML configs: where the shipped ones live, how a file is read, and how every key is checked.

* **Shipped files.** The default configs, the synthesis recipes and the porch recipe are package
  data under ``cvactive/resources`` (found with :mod:`importlib.resources`, so they are there
  after ``pip install``); the repository's ``configs/`` and ``datasets/`` folders hold the same
  files as documented copies (a test keeps them identical).
* **One check for every config.** :mod:`cvactive.schemas` declares, for every key of every
  config file, its type, its range and its default. :func:`check_config` validates a mapping
  against one of those schemas and turns the first problem into one line that names the file,
  the key, the value and what is expected (a :class:`~cvactive.errors.ConfigError`, exit 2).
  :func:`check_kwargs` does the same for a function's or dataclass's keyword options (the
  schema registered for it, else its signature), :func:`from_mapping` builds a parameter
  dataclass from a config section, and :func:`check_command` is the command line's door check:
  the config files a command names are checked before the command starts any work.

Keys of a config are the keyword arguments of the function its command calls.

The helpers that need nothing of cvactive (:func:`load_yaml`, :func:`check_keys`,
:func:`unknown_options`) live in :mod:`cvactive._config`, below the schemas this module consults,
so that the selection registry and the data set reader can use them without an import circle;
that is their one home (this module does not re-export them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from cvactive._config import check_signature, load_yaml
from cvactive.errors import ConfigError

T = TypeVar("T")


def check_kwargs(target: Callable[..., Any], options: Mapping[str, Any], where: str = "config") -> dict[str, Any]:
    """Check keyword options for ``target`` (a function or a parameter dataclass).

    A declared options dataclass (:mod:`cvactive.declare`) is checked against the schema derived
    from it, and a target marked ``@config_schema(kind)`` against that schema: every key for its
    type and range too (see :func:`check_config`); otherwise the keys are checked against the
    keyword arguments of ``target``'s signature. Returns the options as a new dict.
    """
    if not isinstance(options, Mapping):
        raise ConfigError(f"{where}: expected a mapping of option names to values, got {options!r}")
    kind = getattr(target, "__config_schema__", None)
    if kind is not None:
        return check_config(kind, options, where, partial=True)
    from cvactive.declare.check import validate_model
    from cvactive.declare.fields import Declared, schema_of

    if isinstance(target, type) and issubclass(target, Declared):
        validate_model(schema_of(target), options, where, partial=True)
        return dict(options)
    check_signature(target, options, where)
    return dict(options)


def check_config(kind: str, data: Mapping[str, Any], where: str, *, partial: bool = False) -> dict[str, Any]:
    """Validate ``data`` against the schema ``kind`` (a name in :data:`cvactive.schemas.SCHEMAS`).

    Args:
        kind: the schema, e.g. ``"health"``, ``"harvest"``, ``"recipe"``.
        data: the config mapping (as YAML gives it; Python objects a function accepts besides,
            such as a ``numpy`` Generator or a parameter dataclass, are passed over).
        where: the file (or section) named in the message.
        partial: keys the schema requires may be missing (options merged later).

    Returns:
        ``data`` as a new dict, its values unchanged.

    Raises:
        ConfigError: one line naming ``where``, the key, the value and what is expected.
    """
    from cvactive import schemas

    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of option names to values, got {type(data).__name__}")
    schemas.validate(kind, data, where, partial=partial)
    return dict(data)


def load_config(kind: str, path: str | Path) -> dict[str, Any]:
    """:func:`load_yaml` then :func:`check_config` with the file's name in any message."""
    return check_config(kind, load_yaml(path), str(path))


def from_mapping(cls: type[T], data: Mapping[str, Any] | T | None, where: str, *, optional: bool = False) -> T | None:
    """A parameter dataclass from a config section (an instance is returned as it is).

    ``None`` gives ``cls()`` (or ``None`` when ``optional``: the feature is off). Keys are checked
    with :func:`check_kwargs`; the dataclass's own ``__post_init__`` checks the values again.
    """
    if isinstance(data, cls):
        return data
    if data is None:
        return None if optional else cls()
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of option names to values, got {data!r}")
    options = check_kwargs(cls, data, where)
    try:
        return cls(**options)
    except TypeError as err:
        raise ConfigError(f"{where}: {err}") from err


#: command -> (argument holding a config file, schema of that file): checked by :func:`check_command`.
COMMAND_CONFIGS: dict[str, tuple[str, str]] = {
    "health": ("config", "health"),
    "evaluate": ("config", "evaluate"),
    "harvest": ("config", "harvest"),
    "feed": ("config", "harvest"),
    "loop": ("config", "loop"),
    "select": ("config", "select"),
    "synthesize": ("config", "synthesize"),
    "porch": ("recipe", "porch"),
}


def check_command(command: str, args: Any) -> None:
    """The door check of the command line: validate the config file a command was given.

    Runs before the command does anything (loads a model, reads a data set), so a bad key,
    type or value costs one line and exit code 2, never a traceback or a half-done run.
    A command's shipped default config is checked by the test suite instead.
    """
    spec = COMMAND_CONFIGS.get(command)
    if spec is None:
        return
    attr, kind = spec
    path = getattr(args, attr, None)
    if path:
        load_config(kind, path)
