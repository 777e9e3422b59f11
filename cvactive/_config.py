"""The config helpers that need nothing of cvactive: read a YAML mapping, refuse unknown keys.

:mod:`cvactive.config` is the door every config goes through: it looks up the schema of each
option set in :mod:`cvactive.schemas`, which in turn asks the selection registry and the measure
names. Modules below those layers (the selection registry itself, the YOLO data set reader) need
only these helpers, so they live here and import nothing above :mod:`cvactive.errors`;
:mod:`cvactive.config` re-exports them under the same names.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cvactive.errors import ConfigError


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Load a YAML mapping; a missing file or a non-mapping is a :class:`ConfigError`."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist")
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
