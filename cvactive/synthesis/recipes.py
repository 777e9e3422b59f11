"""Synthesis recipes: named, readable conditions (``night``, ``fog``, ``zoom_out`` ...) as YAML.

A recipe file is one YAML mapping::

    name: night
    description: darker, higher gamma, a blue cast and sensor noise
    fills: [dark]                  # the gaps --target auto may use it for
    bbox: {min_visibility: 0.4, min_area: 16, clip: true}
    transforms:                    # albumentations 2.0.8 transforms, in order
      - RandomBrightnessContrast: {brightness_limit: [-0.45, -0.35], p: 1.0}
      - GaussNoise: {std_range: [0.02, 0.05], p: 1.0}

or ``recipes: [<recipe>, ...]`` for several. Compositions nest (``OneOf: {transforms: [...]}``).
The object copy-paste recipe has ``kind: copy_paste`` and a ``copy_paste:`` mapping of
:class:`CopyPasteOptions`; its ``transforms`` (image-only ones and flips) jitter each pasted patch.
The built-in recipes are package data, ``cvactive/resources/configs/synthesis/recipes/*.yaml``
(documented copies in the repository's ``configs/synthesis/recipes``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import AfterValidator, Field

from cvactive._config import CONFIG_DIR, load_yaml
from cvactive.declare.check import Section, validate_model
from cvactive.declare.fields import Declared, from_mapping, option, schema_of
from cvactive.declare.ranges import NonEmpty, NonNegFloat, NonNegInt, PosFloat, PosInt, Prob
from cvactive.errors import ConfigError

#: Where the built-in recipes live.
RECIPE_DIR = CONFIG_DIR / "synthesis" / "recipes"
#: The kinds of gap a recipe can fill (see :mod:`cvactive.synthesis.gaps`).
Fill = Literal["class", "dark", "bright", "small_objects", "position"]
FILLS: tuple[str, ...] = get_args(Fill)
KINDS = ("transform", "copy_paste")
#: Transforms a copy-paste recipe may apply to a patch besides image-only ones (they keep the patch's box).
PATCH_GEOMETRIC = ("HorizontalFlip", "VerticalFlip")


@dataclass(frozen=True)
class BboxOptions(Declared):
    """How boxes follow a transform (albumentations ``BboxParams``).

    Attributes:
        min_visibility: a box whose visible area falls below this fraction of its area is dropped.
        min_area: a box smaller than this many square pixels after the transform is dropped.
        clip: clip boxes to the image (they are then the visible part of the object).
    """

    min_visibility: Prob = option(0.35, "drop a box whose visible share of its area falls below this")
    min_area: NonNegFloat = option(16.0, "drop a box smaller than this many square pixels after the transform")
    clip: bool = option(True, "clip boxes to the image (the visible part of the object)")

    where: ClassVar[str] = "bbox"


@dataclass(frozen=True)
class CopyPasteOptions(Declared):
    """Object copy-paste: cut labeled instances of a class and paste them onto other frames.

    Attributes:
        max_instances: instances pasted per image (1 to this many).
        max_overlap: the most of any box (existing or pasted) a new patch may cover, and the most
            of a new patch that existing boxes may cover (intersection over each box's area).
        scale: range of the patch size relative to the instance's size in its own frame.
        feather: width in pixels of the soft edge blended into the destination.
        min_size: instances narrower or shorter than this (pixels) are never cut.
        attempts: placements tried per instance before giving up.
    """

    max_instances: PosInt = option(3, "instances pasted per image (1 to this many)")
    max_overlap: Annotated[float, Field(ge=0, lt=1)] = option(
        0.1, "the most of any box a new patch may cover, and of a patch that boxes may cover"
    )
    scale: tuple[PosFloat, PosFloat] = option((0.8, 1.2), "range of the patch size relative to the instance's own")
    feather: NonNegInt = option(2, "width in pixels of the soft edge blended into the destination")
    min_size: PosInt = option(8, "instances narrower or shorter than this (pixels) are never cut")
    attempts: PosInt = option(30, "placements tried per instance before giving up")

    where: ClassVar[str] = "copy_paste"

    def check(self) -> None:
        low, high = self.scale
        if not 0 < low <= high:
            raise ValueError(f"scale must be [low, high] with 0 < low <= high, got {list(self.scale)}")


def _transform_spec(value: Any) -> Any:
    if isinstance(value, dict) and len(value) != 1:
        raise ValueError(f"got {value!r}, expected one transform: 'Name' or {{Name: {{option: value}}}}")
    return value


TransformSpec = Annotated[str | dict[str, dict[str, Any] | None], AfterValidator(_transform_spec)]
BboxModel = schema_of(BboxOptions)
CopyPasteModel = schema_of(CopyPasteOptions)


class RecipeFile(Section):
    """One recipe as its file writes it (``configs/synthesis/recipes/*.yaml``): the schema the file is checked with."""

    name: NonEmpty
    description: str = ""
    kind: Literal["transform", "copy_paste"] | None = None
    fills: list[Fill] | Fill = []  # noqa: RUF012  (pydantic copies a default for each instance)
    bbox: BboxModel | None = None  # type: ignore[valid-type]
    transforms: list[TransformSpec] = []  # noqa: RUF012
    copy_paste: CopyPasteModel | None = None  # type: ignore[valid-type]


@dataclass(frozen=True)
class Recipe:
    """One named synthesis recipe (see the module docstring for its YAML).

    Attributes:
        name: the name users pick it by.
        transforms: the albumentations transform specs, ``{Name: {option: value}}``.
        description: one line for people.
        kind: ``transform`` (an albumentations pipeline on the whole frame) or ``copy_paste``.
        fills: the gap kinds (:data:`FILLS`) ``--target auto`` may use it for.
        bbox: how boxes follow the transform.
        copy_paste: the options of a ``copy_paste`` recipe.
        source: the file it came from.
    """

    name: str
    transforms: tuple[Any, ...] = ()
    description: str = ""
    kind: Literal["transform", "copy_paste"] = "transform"
    fills: tuple[str, ...] = ()
    bbox: BboxOptions = field(default_factory=BboxOptions)
    copy_paste: CopyPasteOptions | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        where = self.source or f"recipe {self.name!r}"
        if not self.name or not isinstance(self.name, str):
            raise ConfigError(f"{where}: a recipe needs a 'name'")
        if self.kind not in KINDS:
            raise ConfigError(f"{where}: unknown kind {self.kind!r}; valid kinds: {', '.join(KINDS)}")
        bad = [f for f in self.fills if f not in FILLS]
        if bad:
            raise ConfigError(f"{where}: unknown fills {bad}; valid: {', '.join(FILLS)}")
        if self.kind == "transform" and not self.transforms:
            raise ConfigError(f"{where}: a transform recipe needs a non-empty 'transforms' list")

    @cached_property
    def pipeline(self) -> list[Any]:
        """The albumentations transforms (built and validated on first use)."""
        from cvactive.synthesis import _albu

        where = self.source or f"recipe {self.name!r}"
        built = [_albu.build_transform(spec, f"{where}: transforms[{i}]") for i, spec in enumerate(self.transforms)]
        if self.kind == "copy_paste":
            for i, t in enumerate(built):
                if _albu.is_geometric(t) and type(t).__name__ not in PATCH_GEOMETRIC:
                    raise ConfigError(
                        f"{where}: transforms[{i}] {type(t).__name__} moves pixels; a copy-paste patch takes "
                        f"image-only transforms and {', '.join(PATCH_GEOMETRIC)}"
                    )
        return built

    @property
    def geometric(self) -> bool:
        """Whether the recipe moves pixels (and so boxes): flips, crops, affine, copy-paste."""
        from cvactive.synthesis import _albu

        return self.kind == "copy_paste" or any(_albu.is_geometric(t) for t in self.pipeline)

    def validate(self) -> Recipe:
        """Build the pipeline now, so a malformed recipe fails before any image is written."""
        _ = self.pipeline
        return self


def recipe_from_dict(data: Mapping[str, Any], where: str = "recipe") -> Recipe:
    """A :class:`Recipe` from its YAML mapping, checked against :class:`RecipeFile`."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: a recipe must be a mapping, got {type(data).__name__}")
    validate_model(RecipeFile, data, where)
    name = data["name"]
    where = f"{where} ({name})"
    fills = data.get("fills") or []
    if isinstance(fills, str):
        fills = [fills]
    bbox = from_mapping(BboxOptions, data.get("bbox"), f"{where}: bbox") or BboxOptions()
    copy_paste = None
    kind: Literal["transform", "copy_paste"] = data.get("kind") or (
        "copy_paste" if "copy_paste" in data else "transform"
    )
    if kind == "copy_paste":
        opts = dict(data.get("copy_paste") or {})
        if "scale" in opts:
            opts["scale"] = tuple(opts["scale"])
        copy_paste = from_mapping(CopyPasteOptions, opts, f"{where}: copy_paste")
    return Recipe(
        name=name,
        transforms=tuple(data.get("transforms") or ()),
        description=str(data.get("description", "")),
        kind=kind,
        fills=tuple(str(f) for f in fills),
        bbox=bbox,
        copy_paste=copy_paste,
        source=where,
    )


def read_recipe_file(path: str | Path) -> list[Recipe]:
    """The recipes of one YAML file (one recipe, or ``recipes: [...]``), validated."""
    p = Path(path)
    data = load_yaml(p)
    items = data["recipes"] if set(data) == {"recipes"} else [data]
    if not isinstance(items, list):
        raise ConfigError(f"{p}: 'recipes' must be a list of recipes")
    return [
        recipe_from_dict(item, f"{p}[{i}]" if len(items) > 1 else str(p)).validate() for i, item in enumerate(items)
    ]


def load_recipes(sources: str | Path | Iterable[str | Path] | None = None) -> dict[str, Recipe]:
    """Recipes by name from files, folders of ``*.yaml`` or built-in names (default: all built-ins).

    Raises:
        ConfigError: a name is neither a file nor a built-in recipe (the built-ins are listed), a
            file is malformed, or two recipes share a name.
    """
    if sources is None:
        sources = [RECIPE_DIR]
    elif isinstance(sources, (str, Path)):
        sources = [sources]
    out: dict[str, Recipe] = {}
    for source in sources:
        p = Path(source)
        if p.is_dir():
            files = sorted(p.glob("*.yaml"))
            if not files:
                raise ConfigError(f"recipe folder {p} holds no *.yaml recipes")
        elif p.is_file():
            files = [p]
        else:
            builtin = RECIPE_DIR / f"{source}.yaml"
            if not builtin.is_file():
                raise ConfigError(
                    f"unknown recipe {str(source)!r}: not a file, and not a built-in recipe; "
                    f"valid names: {', '.join(builtin_names())}"
                )
            files = [builtin]
        for f in files:
            for recipe in read_recipe_file(f):
                if recipe.name in out:
                    raise ConfigError(f"{f}: recipe name {recipe.name!r} is defined twice")
                out[recipe.name] = recipe
    return out


def builtin_names() -> list[str]:
    """The names of the built-in recipes (the stems of ``configs/synthesis/recipes/*.yaml``)."""
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))


def pick(recipes: Mapping[str, Recipe], names: Iterable[str]) -> list[Recipe]:
    """The named recipes, in order; an unknown name raises :class:`ConfigError` listing the valid ones."""
    chosen = []
    for name in names:
        if name not in recipes:
            raise ConfigError(f"unknown recipe {name!r}; valid recipes: {', '.join(sorted(recipes))}")
        chosen.append(recipes[name])
    return chosen
