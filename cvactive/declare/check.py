"""Validating a config mapping against a pydantic model, and saying what is wrong in one line.

:class:`Section` is the base of every config model (strict types, no unknown keys);
:func:`validate_model` runs a model over a mapping and turns the first problem into a
:class:`~cvactive.errors.ConfigError` such as::

    configs/harvest.yaml: rules[0].probability: got 'lots', expected a number in [0, 1]

The description of what is expected is read from the model itself (the field's type and its
``Field(ge=..., le=...)`` range), so it can never disagree with the check.
"""

from __future__ import annotations

import datetime
import inspect
import types
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import PurePath
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, create_model, model_validator
from pydantic.fields import FieldInfo

from cvactive.errors import ConfigError

#: values of a discriminator field (a rule's ``kind``) that pydantic puts in an error's location.
DISCRIMINATOR_TAGS: set[str] = set()
_SCALAR_TYPES = (str, int, float, bool, type(None), datetime.date, datetime.time)


def unknown_text(unknown: Any, valid: Any) -> str:
    """``unknown option(s) [...]; valid options: ...``, the one wording for unknown keys."""
    listed = ", ".join(str(v) for v in valid) or "none"
    return f"unknown option(s) {sorted(str(u) for u in unknown)}; valid options: {listed}"


class Section(BaseModel):
    """Base of the config models: strict types, finite numbers, unknown keys named with the valid ones."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = set(data) - set(cls.model_fields)
            if unknown:
                raise ValueError(unknown_text(unknown, cls.model_fields))
        return data


# -- turning Python values into what YAML would give -------------------------------------------
class _Skip(Exception):
    """A value that is a Python object a function takes as it is (a Generator, a dataclass)."""


def _plain(value: Any) -> Any:
    if isinstance(value, (np.bool_, np.integer, np.floating)):
        return value.item()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, _SCALAR_TYPES):
        return value
    raise _Skip


def _yaml_values(data: Mapping[str, Any], partial: bool) -> dict[str, Any]:
    """``data`` with tuples as lists and paths as strings; with ``partial``, Python objects are left out."""
    out = {}
    for key, value in data.items():
        try:
            out[key] = _plain(value)
        except _Skip:
            if not partial:
                out[key] = value
    return out


# -- validation --------------------------------------------------------------------------------
def validate_model(
    model: type[BaseModel],
    data: Mapping[str, Any],
    where: str,
    *,
    partial: bool = False,
    missing_ok: bool | None = None,
) -> None:
    """Validate ``data`` with ``model``; the first problem raises a one-line :class:`ConfigError`.

    Args:
        partial: values that are Python objects (not YAML values) are passed over, and (unless
            ``missing_ok`` says otherwise) required keys may be missing: the options are a
            function's keyword arguments.
        missing_ok: whether a required key may be missing (default: ``partial``).
    """
    missing_ok = partial if missing_ok is None else missing_ok
    try:
        model.model_validate(_yaml_values(data, partial))
    except ValidationError as err:
        errors = [e for e in err.errors(include_url=False) if not (missing_ok and e["type"] == "missing")]
        if errors:
            raise ConfigError(describe_error(model, errors, where)) from err


@cache
def signature_model(func: Callable[..., Any]) -> type[BaseModel]:
    """A model of ``func``'s keyword-only options: their annotations and defaults (``Any`` where unresolvable)."""
    fields: dict[str, Any] = {}
    for name, p in inspect.signature(func).parameters.items():
        if p.kind is not p.KEYWORD_ONLY:
            continue
        ann: Any = Any
        if isinstance(p.annotation, str):
            try:
                ann = eval(p.annotation, getattr(func, "__globals__", {}))
            except Exception:  # a name only imported for type checkers
                ann = Any
        elif p.annotation is not p.empty:
            ann = p.annotation
        fields[name] = (ann, p.default if p.default is not p.empty else ...)
    return create_model(f"{getattr(func, '__name__', 'options')}_options", __base__=Section, **fields)


def checked_options(func: Callable[..., Any], options: Mapping[str, Any], where: str) -> None:
    """Check ``options`` against ``func``'s keyword-only signature (raises ``ValueError`` inside a model)."""
    if not isinstance(options, Mapping):
        raise ValueError(f"{where}: got {_short(options)}, expected a mapping of option names to values")
    try:
        validate_model(signature_model(func), options, where, partial=True)
    except ConfigError as err:
        raise ValueError(str(err)) from None


# -- the one-line message ----------------------------------------------------------------------
def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unwrap(ann: Any, meta: list[Any]) -> tuple[Any, list[Any]]:
    """Strip ``Annotated`` layers, collecting their metadata."""
    while get_origin(ann) is Annotated:
        ann, *extra = get_args(ann)
        meta = [*meta, *extra]
    return ann, meta


def _members(ann: Any) -> tuple[Any, ...]:
    return get_args(ann) if get_origin(ann) in (Union, types.UnionType) else ()


def _member_for(ann: Any, seg: str) -> Any | None:
    """The union member a pydantic location segment (``int``, ``list[...]``, a tag) stands for."""
    members = _members(ann)
    for m in members:
        base, _ = _unwrap(m, [])
        if isinstance(base, type) and issubclass(base, BaseModel):
            kind = base.model_fields.get("kind")
            if (kind is not None and kind.default == seg) or base.__name__ == seg:
                return m
    label = seg
    if label.startswith("function-"):  # function-after[check(), str] -> str
        label = label.rsplit(", ", 1)[-1].rstrip("]")
    label = label.removeprefix("constrained-")
    for m in members:
        base, _ = _unwrap(m, [])
        origin = get_origin(base)
        if origin is not None and label.startswith(getattr(origin, "__name__", str(origin)).lower() + "["):
            return m
        if origin is Literal and label.startswith("literal["):
            return m
        if isinstance(base, type) and label == base.__name__.lower().replace("nonetype", "none"):
            return m
    return None


def _walk(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[list[Any], Any, list[Any]]:
    """Follow an error location through the model: the location to show, the type and its metadata there."""
    shown: list[Any] = []
    ann: Any = model
    meta: list[Any] = []
    for i, seg in enumerate(loc):
        ann, meta = _unwrap(ann, meta)
        if _members(ann) and isinstance(seg, str):
            member = _member_for(ann, seg)
            if member is None:  # a field of the one model member (``Limits | None``)?
                member = next((m for m in _members(ann) if seg in getattr(_unwrap(m, [])[0], "model_fields", {})), None)
                if member is not None:
                    ann, meta = _unwrap(member, [])
            elif i == len(loc) - 1 and seg not in DISCRIMINATOR_TAGS:
                return shown, ann, meta  # the error is about the whole union: describe all of it
            else:
                ann, meta = _unwrap(member, [])
                continue
            if member is None:
                return shown, ann, meta
        origin = get_origin(ann)
        if isinstance(ann, type) and issubclass(ann, BaseModel) and isinstance(seg, str) and seg in ann.model_fields:
            f: FieldInfo = ann.model_fields[seg]
            ann, meta = f.annotation, list(f.metadata)
        elif isinstance(seg, int) and origin in (list, tuple):
            ann, meta = get_args(ann)[0], []
        elif origin is dict:
            ann, meta = get_args(ann)[1], []
        else:
            return [*shown, *loc[i:]], None, []
        shown.append(seg)
    ann, meta = _unwrap(ann, meta)
    return shown, ann, meta


def _range(meta: list[Any]) -> str:
    bounds: dict[str, Any] = {}
    for m in meta:
        for item in m.metadata if isinstance(m, FieldInfo) else [m]:
            for name in ("ge", "gt", "le", "lt", "min_length", "max_length"):  # annotated_types' Ge, Gt ...
                if type(item).__module__.startswith("annotated_types") and getattr(item, name, None) is not None:
                    bounds[name] = getattr(item, name)
    low = ("[", bounds["ge"]) if "ge" in bounds else ("(", bounds["gt"]) if "gt" in bounds else None
    high = ("]", bounds["le"]) if "le" in bounds else (")", bounds["lt"]) if "lt" in bounds else None
    text = ""
    if low and high:
        text = f" in {low[0]}{low[1]:g}, {high[1]:g}{high[0]}"
    elif low:
        text = f" {'>=' if low[0] == '[' else '>'} {low[1]:g}"
    elif high:
        text = f" {'<=' if high[0] == ']' else '<'} {high[1]:g}"
    n, m = bounds.get("min_length"), bounds.get("max_length")
    if n is not None and n == m:
        text += f" of {n} items"
    elif n:
        text += f" of at least {n} item{'s' if n > 1 else ''}"
    return text


def describe(ann: Any, meta: list[Any] | None = None) -> str:
    """What a value of type ``ann`` (with ``Field`` constraints ``meta``) must be, in words."""
    ann, meta = _unwrap(ann, list(meta or []))
    members = _members(ann)
    models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel) and "kind" in m.model_fields]
    if models and len(models) == len([m for m in members if m is not type(None)]):
        return "a mapping with a kind: " + ", ".join(str(m.model_fields["kind"].default) for m in models)
    if members:
        parts = [describe(m) for m in members if m is not type(None)]
        return " or ".join(parts) + (" or null" if type(None) in members else "")
    origin = get_origin(ann)
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in get_args(ann))
    if origin in (list, tuple):
        return f"a list{_range(meta)} (each {describe(get_args(ann)[0])})"
    if origin is dict or ann is dict:
        return "a mapping"
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return f"a mapping with keys {', '.join(ann.model_fields)}"
    named = [getattr(getattr(m, "func", None), "what", None) for m in meta]
    if any(named):
        return next(n for n in named if n)
    if ann is str and _range(meta) == " of at least 1 item":
        return "a non-empty string"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    return names.get(ann, "any value" if ann is Any else getattr(ann, "__name__", str(ann))) + _range(meta)


def _key(loc: list[Any]) -> str:
    text = ""
    for seg in loc:
        text += f"[{seg}]" if isinstance(seg, int) else (f".{seg}" if text else str(seg))
    return text


def describe_error(model: type[BaseModel], errors: list[Any], where: str) -> str:
    """One line for the most specific of pydantic's errors: file, key, value, what is expected."""
    walked = [(_walk(model, tuple(e["loc"])), e) for e in errors]
    (shown, ann, meta), err = max(walked, key=lambda w: len(w[0][0]))
    key = _key(shown)
    head = f"{where}: {key}: " if key else f"{where}: "
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "value_error":
        return head + str(err["msg"]).removeprefix("Value error, ")
    if kind == "missing":
        return head + f"missing; expected {describe(ann, meta) if ann is not None else 'a value'}"
    tag = str(ctx.get("discriminator", "kind")).strip("'")
    if kind == "union_tag_invalid":
        tags = str(ctx.get("expected_tags", "")).replace("'", "")
        return f"{where}: {_key([*shown, tag])}: got {ctx.get('tag')!r}, expected one of {tags}"
    if kind == "union_tag_not_found":
        return head + f"got {_short(err.get('input'))}, expected a mapping with a {tag!r}"
    expected = describe(ann, meta) if ann is not None else str(err["msg"]).removeprefix("Input should be ")
    return head + f"got {_short(err.get('input'))}, expected {expected}"
