"""The albumentations adapter: every albumentations import of cvactive lives in this module.

albumentations 2.0.8 is its last MIT release; keeping its calls here means it can be swapped
without touching the rest of the toolkit. :func:`cvactive._env.offline_defaults` runs before
the import so that albumentations makes no network call to look for updates.

Images here are RGB ``uint8`` ``(H, W, 3)``; boxes are pixel ``xyxy`` (albumentations'
``pascal_voc`` format).
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from cvactive._config import check_signature
from cvactive._env import offline_defaults
from cvactive.errors import ConfigError, MissingDependencyError

#: Compositions whose ``transforms`` argument is a nested list of transform specs.
COMPOSITIONS = ("OneOf", "SomeOf", "Sequential", "OneOrOther")
#: Arrays in applied parameters longer than this are summarised instead of written out.
MAX_PARAM_ARRAY = 16


@lru_cache(maxsize=1)
def albumentations() -> Any:
    """The ``albumentations`` module, imported offline (raises an install hint when absent)."""
    offline_defaults()
    try:
        import albumentations as album
    except ImportError as err:  # pragma: no cover - it is a pinned dependency
        raise MissingDependencyError("synthesis needs albumentations: pip install 'albumentations==2.0.8'") from err
    return album


def transform_names() -> list[str]:
    """Every albumentations transform and composition a recipe may name."""
    album = albumentations()
    base = album.core.transforms_interface.BasicTransform
    names = [n for n in dir(album) if isinstance(getattr(album, n), type) and issubclass(getattr(album, n), base)]
    return sorted({*names, *COMPOSITIONS})


def _spec_item(spec: Any, where: str) -> tuple[str, dict[str, Any]]:
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, Mapping) and len(spec) == 1:
        name, kwargs = next(iter(spec.items()))
        if kwargs is None:
            kwargs = {}
        if not isinstance(kwargs, Mapping):
            raise ConfigError(f"{where}: the options of {name!r} must be a mapping, got {type(kwargs).__name__}")
        return str(name), dict(kwargs)
    raise ConfigError(f"{where}: each transform must be 'Name' or {{Name: {{option: value}}}}, got {spec!r}")


def build_transform(spec: Any, where: str = "recipe") -> Any:
    """One albumentations transform from ``{Name: {option: value}}`` (compositions nest).

    Raises:
        ConfigError: the name is not an albumentations transform (close matches are named),
            an option is not one of the transform's keyword arguments (the valid ones are
            named), or albumentations rejects a value.
    """
    album = albumentations()
    name, kwargs = _spec_item(spec, where)
    here = f"{where}: {name}"
    cls = getattr(album, name, None)
    if name not in transform_names() or cls is None:
        close = difflib.get_close_matches(name, transform_names(), n=5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see albumentations' transform list"
        raise ConfigError(f"{where}: unknown albumentations transform {name!r}{hint}")
    check_signature(cls, kwargs, here)
    if name in COMPOSITIONS:
        children = kwargs.get("transforms")
        if not isinstance(children, Sequence) or isinstance(children, str) or not children:
            raise ConfigError(f"{here}: needs a non-empty list 'transforms'")
        kwargs["transforms"] = [build_transform(c, f"{here}[{i}]") for i, c in enumerate(children)]
    kwargs = {k: tuple(v) if isinstance(v, list) and k != "transforms" else v for k, v in kwargs.items()}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as err:
        first = str(err).strip().splitlines()
        raise ConfigError(
            f"{here}: invalid options {kwargs if name not in COMPOSITIONS else ''} ({' '.join(first[:3])})"
        ) from err


def is_geometric(transform: Any) -> bool:
    """Whether a transform (or any transform inside a composition) moves pixels, and so boxes."""
    album = albumentations()
    children = getattr(transform, "transforms", None)
    if children is not None and not isinstance(transform, album.BasicTransform):
        return any(is_geometric(t) for t in children)
    return isinstance(transform, album.DualTransform)


def build_compose(
    transforms: Sequence[Any],
    *,
    min_visibility: float,
    min_area: float,
    clip: bool,
    seed: int,
) -> Any:
    """A bbox-aware ``Compose``: pixel ``xyxy`` boxes with ``class_labels`` and ``instance_ids`` fields."""
    album = albumentations()
    with warnings.catch_warnings():  # photometric-only pipelines: boxes pass through unchanged, as intended
        warnings.filterwarnings("ignore", message="Got processor for bboxes")
        return album.Compose(
            list(transforms),
            bbox_params=album.BboxParams(
                format="pascal_voc",
                label_fields=["class_labels", "instance_ids"],
                min_visibility=min_visibility,
                min_area=min_area,
                clip=clip,
                filter_invalid_bboxes=True,
            ),
            seed=seed,
            save_applied_params=True,
        )


def apply(
    compose: Any,
    image: np.ndarray,
    boxes: np.ndarray,
    classes: np.ndarray,
    *,
    seed: int,
    masks: Sequence[np.ndarray] | None = None,
) -> dict[str, Any]:
    """Run ``compose`` once with ``seed`` (same seed, same output).

    Returns a dict with ``image`` (RGB uint8), ``boxes`` ``(M, 4)`` float32 pixel ``xyxy``,
    ``classes`` ``(M,)`` int64, ``instances`` ``(M,)`` int64 (index of each kept box in the
    input), ``params`` (JSON-ready applied parameters per transform) and, when masks were
    given, ``masks`` (the transformed masks, one per input instance).
    """
    compose.set_random_seed(seed)
    data: dict[str, Any] = {
        "image": image,
        "bboxes": np.asarray(boxes, np.float32).reshape(-1, 4),
        "class_labels": [int(c) for c in classes],
        "instance_ids": list(range(len(classes))),
    }
    if masks is not None:
        data["masks"] = [np.asarray(m, np.uint8) for m in masks]
    out = compose(**data)
    result: dict[str, Any] = {
        "image": out["image"],
        "boxes": np.asarray(out["bboxes"], np.float32).reshape(-1, 4),
        "classes": np.asarray(out["class_labels"], np.int64).reshape(-1),
        "instances": np.asarray(out["instance_ids"], np.int64).reshape(-1),
        "params": [{"transform": name, **json_params(p)} for name, p in out.get("applied_transforms", [])],
    }
    if masks is not None:
        result["masks"] = [np.asarray(m) for m in out["masks"]]
    return result


def json_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Applied parameters made JSON-ready: small arrays as lists, large ones summarised."""
    return {str(k): _jsonable(v) for k, v in params.items() if k != "shape"}


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        if value.size > MAX_PARAM_ARRAY:
            return f"<array {'x'.join(map(str, value.shape))} {value.dtype}>"
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return repr(value)


def build_image_compose(transforms: Sequence[Any], *, seed: int) -> Any:
    """A ``Compose`` for an image alone (no boxes), e.g. to jitter a copy-paste patch."""
    return albumentations().Compose(list(transforms), seed=seed, save_applied_params=True)


def apply_image(compose: Any, image: np.ndarray, *, seed: int) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Run an image-only ``compose`` once with ``seed``; return the image and its applied parameters."""
    compose.set_random_seed(seed)
    out = compose(image=image)
    return out["image"], [{"transform": name, **json_params(p)} for name, p in out.get("applied_transforms", [])]
