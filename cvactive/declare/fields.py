"""A stage's options declared once: a frozen dataclass whose fields say everything about a key.

::

    @dataclass(frozen=True)
    class Retry(Declared):
        attempts: NonNegInt = option(5, "tries before a dropped stream is given up on")

A field's annotation is its type and range (the ``Annotated`` aliases of
:mod:`cvactive.declare.ranges`), its default the value used when the key is absent, and
:func:`option` adds its help text and, for a key the command line may set, its flag. Everything
else is derived from that one declaration:

* :func:`schema_of`: the pydantic model a config file is checked against (a nested declaration is
  a nested model; a base class with ``variants()`` is a union told apart by ``kind``; a
  ``check(self)`` method, the rule across fields, runs on the model too);
* :meth:`Declared.__post_init__`: the same check when the object is built in Python, and nested
  mappings built into their declared classes;
* :func:`from_mapping`: an object from a config section, the first problem one line;
* :func:`add_flags` / :func:`flag_values`: the argparse flags and what they override;
* :func:`reference`: the table of ``docs/config-reference.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from pydantic import BaseModel, Field, create_model, model_validator

from cvactive.declare.check import DISCRIMINATOR_TAGS, Section, describe, validate_model
from cvactive.errors import ConfigError

T = TypeVar("T")
_MISSING: Any = dataclasses.MISSING


def option(
    default: Any = _MISSING,
    help: str = "",
    *,
    factory: Any = _MISSING,
    flag: str | None = None,
    config: bool = True,
    fingerprint: bool = True,
) -> Any:
    """A declared field: its default (or ``factory``), help text and command-line ``flag``.

    ``config=False``: not a config key (set from Python only); ``fingerprint=False``: left out
    of a resume fingerprint (it changes how a run goes, not what it decides).
    """
    metadata = {"help": help, "flag": flag, "config": config, "fingerprint": fingerprint}
    if factory is not _MISSING:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


#: set while a checked tree of options is being built: its parts are not checked again.
_CHECKED: ContextVar[bool] = ContextVar("cvactive_options_checked", default=False)


class Declared:
    """Base of a declared options dataclass: checked against its declaration, then built from mappings.

    The whole tree (this object, and the mappings or objects its fields hold) is checked once,
    where it is built: by :func:`from_mapping`, or here when built in Python; the parts built from
    its mappings are not checked again.
    """

    def __post_init__(self) -> None:
        if not _CHECKED.get():
            check_values(self, getattr(self, "where", type(self).__name__.lower()))
        token = _CHECKED.set(True)
        try:
            build_nested(self)
        finally:
            _CHECKED.reset(token)


def config_fields(cls: type) -> list[dataclasses.Field[Any]]:
    """The fields of ``cls`` that are config keys, in declaration order.

    A field declared ``config=False``, or one that takes no part in equality (``compare=False``:
    run-time state such as a counter a subclass adds), is not an option.
    """
    return [f for f in dataclasses.fields(cls) if f.metadata.get("config", True) and f.compare]


_HINTS: dict[type, dict[str, Any]] = {}
_SCHEMAS: dict[type, type[BaseModel]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls, include_extras=True)
    return _HINTS[cls]


def _strip(ann: Any) -> Any:
    while get_origin(ann) is Annotated:
        ann = get_args(ann)[0]
    return ann


def _is_declared(ann: Any) -> bool:
    """A dataclass whose fields declare options (a :class:`Declared`, or a plain dataclass read the same way)."""
    return isinstance(ann, type) and dataclasses.is_dataclass(ann)


def _has_variants(ann: Any) -> bool:
    """A base class whose config is one of its registered ``variants()``, told apart by ``kind``."""
    return isinstance(ann, type) and "variants" in vars(ann)


# -- the config schema ---------------------------------------------------------------------------
def schema_type(ann: Any) -> Any:
    """The pydantic annotation of a declared field's annotation (declared classes become models)."""
    origin = get_origin(ann)
    if origin is Annotated:
        base, *meta = get_args(ann)
        return Annotated[(schema_type(base), *meta)]
    if origin in (Union, types.UnionType):
        return Union[tuple(schema_type(a) for a in get_args(ann))]  # noqa: UP007
    if origin in (list, tuple, Sequence, set, frozenset):
        args = [a for a in get_args(ann) if a is not Ellipsis]
        item = schema_type(args[0]) if args else Any
        if origin is tuple and len(args) > 1:  # a fixed-length tuple: a list of that many
            return Annotated[list[item], Field(min_length=len(args), max_length=len(args))]  # type: ignore[valid-type]
        return list[item]  # type: ignore[valid-type]
    if origin in (dict, Mapping):
        key, value = get_args(ann)
        return dict[schema_type(key), schema_type(value)]  # type: ignore[misc]
    if _has_variants(ann):
        members = tuple(schema_of(v) for v in ann.variants())
        return Annotated[Union[members], Field(discriminator="kind")]  # noqa: UP007
    if _is_declared(ann):
        return schema_of(ann)
    return ann


def _schema_default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not _MISSING:
        value = f.default
    elif f.default_factory is not _MISSING:
        value = f.default_factory()  # type: ignore[misc,operator]
    else:
        return ...
    return as_model(value)


def as_model(value: Any) -> Any:
    """A declared object as its schema model (tuples as lists), for defaults and the reference."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        model = schema_of(type(value))
        data = {f.name: as_model(getattr(value, f.name)) for f in config_fields(type(value))}
        return model.model_construct(**data)
    if isinstance(value, tuple):
        return [as_model(v) for v in value]
    return value


def schema_of(cls: type) -> type[BaseModel]:
    """The pydantic model of a declared class: its config fields, ``kind`` and ``check`` (made once)."""
    if cls not in _SCHEMAS:
        _SCHEMAS[cls] = _make_schema(cls)
    return _SCHEMAS[cls]


def _make_schema(cls: type) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    kind = getattr(cls, "kind", None)
    if isinstance(kind, str) and kind:
        what = f"{kind}: which {cls.__mro__[1].__name__.lower()}"
        fields["kind"] = (Literal[kind], Field(default=kind, description=what))
        DISCRIMINATOR_TAGS.add(kind)
    for f in config_fields(cls):
        help_text = f.metadata.get("help") or None
        fields[f.name] = (schema_type(_hints(cls)[f.name]), Field(default=_schema_default(f), description=help_text))
    validators: dict[str, Any] = {}
    check = getattr(cls, "check", None)
    if check is not None:

        def run_check(self: BaseModel) -> BaseModel:
            try:
                check(self)
            except ConfigError as err:
                raise ValueError(str(err)) from None
            return self

        validators["_check"] = model_validator(mode="after")(run_check)  # type: ignore[arg-type]
    return create_model(  # type: ignore[call-overload,no-any-return]
        cls.__name__, __base__=Section, __doc__=cls.__doc__, __validators__=validators, **fields
    )


# -- objects: built from mappings, checked ---------------------------------------------------------
def plain_value(value: Any) -> Any:
    """A built object as the config mapping it stands for (declared objects as mappings)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain_value(getattr(value, f.name)) for f in config_fields(type(value))} | (
            {"kind": value.kind} if isinstance(getattr(value, "kind", None), str) and value.kind else {}  # type: ignore[attr-defined]
        )
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    if isinstance(value, Mapping):
        return {k: plain_value(v) for k, v in value.items()}
    return value


def check_values(obj: Any, where: str) -> None:
    """Check a built object's config fields against its declaration (raises one-line ConfigError)."""
    data = {f.name: plain_value(getattr(obj, f.name)) for f in config_fields(type(obj))}
    kind = getattr(obj, "kind", None)
    if isinstance(kind, str) and kind:
        data["kind"] = kind
    validate_model(schema_of(type(obj)), data, where, partial=True, missing_ok=False)


def _build(ann: Any, value: Any, where: str) -> Any:
    """``value`` with mappings built into the declared classes ``ann`` names."""
    ann = _strip(ann)
    origin = get_origin(ann)
    if origin in (Union, types.UnionType):
        for member in get_args(ann):
            base = _strip(member)
            if (_is_declared(base) or _has_variants(base)) and isinstance(value, Mapping):
                return _build(base, value, where)
            if get_origin(base) in (list, tuple, Sequence) and isinstance(value, (list, tuple)):
                return _build(base, value, where)
        return value
    if origin in (list, tuple, Sequence) and isinstance(value, (list, tuple)):
        args = [a for a in get_args(ann) if a is not Ellipsis]
        items = [_build(args[0] if len(args) == 1 else args[i], v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if isinstance(value, Mapping) and _has_variants(ann):
        variants = {v.kind: v for v in ann.variants()}
        chosen = variants.get(value.get("kind"))
        if chosen is None:
            raise ConfigError(f"{where}: kind: got {value.get('kind')!r}, expected one of {', '.join(variants)}")
        return from_mapping(chosen, {k: v for k, v in value.items() if k != "kind"}, where)
    if isinstance(value, Mapping) and _is_declared(ann):
        return from_mapping(ann, value, where)
    return value


def build_nested(obj: Any) -> None:
    """Turn the mappings a declared object was given into the declared classes of its fields."""
    where = getattr(obj, "where", type(obj).__name__.lower())
    for f in config_fields(type(obj)):
        value = getattr(obj, f.name)
        if isinstance(value, (Mapping, list, tuple)):
            built = _build(_hints(type(obj))[f.name], value, f"{where}: {f.name}")
            if built is not value:
                object.__setattr__(obj, f.name, built)


def from_mapping(cls: type[T], data: Mapping[str, Any] | T | None, where: str, *, optional: bool = False) -> T | None:
    """A declared object from a config section; an instance comes back as it is.

    ``None`` gives ``cls()`` (or ``None`` with ``optional``: the feature is off).

    Raises:
        ConfigError: one line naming ``where``, the key, the value and what is expected.
    """
    if isinstance(data, cls):
        return data
    if data is None:
        return None if optional else cls()
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of option names to values, got {data!r}")
    if not _CHECKED.get():
        kind = getattr(cls, "kind", None)
        checked = {"kind": kind, **data} if isinstance(kind, str) and kind and "kind" not in data else data
        validate_model(schema_of(cls), checked, where, partial=True, missing_ok=False)
    token = _CHECKED.set(True)
    try:
        return cls(**{k: v for k, v in data.items() if k != "kind"})
    finally:
        _CHECKED.reset(token)


# -- the command line and the reference ------------------------------------------------------------
def add_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add a flag for each field of ``cls`` declared with one (default ``None``: the config decides)."""
    for f in dataclasses.fields(cls):
        flag = f.metadata.get("flag")
        if not flag:
            continue
        base = _strip(_hints(cls)[f.name])
        members = [m for m in get_args(base) if m is not type(None)] if get_origin(base) else [base]
        kind = _strip(members[0]) if members else str
        parser.add_argument(
            flag,
            dest=f.name,
            type=_flag_type(kind, flag),
            default=None,
            help=f"{f.metadata.get('help', '')} (overrides the config's {f.name})",
        )


def _flag_type(kind: Any, flag: str) -> Any:
    if kind is int:

        def integer(text: str) -> int:
            if not text.lstrip("-").isdigit():
                raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
            return int(text)

        return integer
    return kind if kind in (float, str) else str


def flag_values(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The config keys the flags of ``cls`` were given on the command line."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.metadata.get("flag") and getattr(args, f.name, None) is not None:
            out[f.name] = getattr(args, f.name)
    return out


def reference(model: type[BaseModel], yaml: Any) -> str:
    """A markdown table of a schema model: every key, what it must be, its default, what it does."""
    rows = ["| key | type and range | default | what it does |", "|---|---|---|---|"]
    for name, f in model.model_fields.items():
        default = "required" if f.is_required() else f"`{yaml(f.default)}`"
        help_text = (f.description or "").replace("|", "\\|")
        rows.append(f"| `{name}` | {describe(f.annotation, list(f.metadata))} | {default} | {help_text} |")
    return "\n".join(rows)
