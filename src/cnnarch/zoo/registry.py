"""Model registry: `create_model`, `list_models` and a card per model.

Each family module registers its builders with `@register_model`. A builder is a function
`builder(*, variant, num_classes, in_channels, **kwargs) -> nn.Module`; the registry checks
the name and the variant before calling it, so builders only build.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import importlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import torch
from torch import nn

from cnnarch.errors import CnnarchError
from cnnarch.zoo.common import ZooModel, smallest_input_side

# Family modules, imported on first use so that `import cnnarch` stays cheap.
_FAMILY_MODULES = (
    "cnnarch.zoo.alexnet",
    "cnnarch.zoo.vgg",
    "cnnarch.zoo.googlenet",
    "cnnarch.zoo.inception_v3",
    "cnnarch.zoo.resnet",
    "cnnarch.zoo.cifar",
)


@dataclass(frozen=True)
class Paper:
    authors: str
    year: int
    title: str
    venue: str = ""

    def __str__(self) -> str:
        venue = f", {self.venue}" if self.venue else ""
        return f"{self.authors} ({self.year}), '{self.title}'{venue}"


@dataclass(frozen=True)
class ModelCard:
    """What is known about a model before building it."""

    name: str
    family: str
    paper: Paper
    input_size: tuple[int, int, int]  # (channels, height, width) the paper trains on
    num_classes: int
    variants: tuple[str, ...]
    published: dict[str, Any] = field(default_factory=dict)  # facts, each with its "source"
    description: str = ""

    @property
    def min_input_size(self) -> int:
        """Smallest square input side the architecture accepts (computed, see `min_input_size`)."""
        return min_input_size(self.name)


@dataclass(frozen=True)
class _Entry:
    card: ModelCard
    builder: Callable[..., nn.Module]


_REGISTRY: dict[str, _Entry] = {}


def register_model(
    name: str,
    *,
    family: str,
    paper: Paper,
    input_size: tuple[int, int, int],
    num_classes: int = 1000,
    variants: tuple[str, ...] = ("paper",),
    published: dict[str, Any] | None = None,
    description: str = "",
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register `builder` under `name` with its card."""

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise RuntimeError(f"model {name!r} registered twice")
        card = ModelCard(
            name=name,
            family=family,
            paper=paper,
            input_size=input_size,
            num_classes=num_classes,
            variants=variants,
            published=published or {},
            description=description or (builder.__doc__ or "").strip().split("\n")[0],
        )
        _REGISTRY[name] = _Entry(card, builder)
        return builder

    return decorate


@functools.cache
def _load_families() -> None:
    for module in _FAMILY_MODULES:
        importlib.import_module(module)


def _entry(name: str) -> _Entry:
    _load_families()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise CnnarchError(
            f"unknown model {name!r}{hint} (`cnnarch models` lists all {len(_REGISTRY)})"
        ) from None


def list_models(pattern: str = "*") -> list[str]:
    """Model names matching the fnmatch `pattern`, family by family in `_FAMILY_MODULES` order
    (not import order: one family module may import another), then in registration order."""
    _load_families()
    names = [name for name in _REGISTRY if fnmatch.fnmatchcase(name, pattern)]
    return sorted(names, key=lambda name: _family_rank(_REGISTRY[name].builder.__module__))


def _family_rank(module: str) -> int:
    return _FAMILY_MODULES.index(module) if module in _FAMILY_MODULES else len(_FAMILY_MODULES)


def model_card(name: str) -> ModelCard:
    return _entry(name).card


def create_model(
    name: str,
    *,
    variant: str = "paper",
    num_classes: int | None = None,
    in_channels: int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build model `name`; `num_classes` and `in_channels` default to the card's.

    Builds on whatever device is current, so `with torch.device("meta"): create_model(...)`
    allocates nothing.
    """
    entry = _entry(name)
    card = entry.card
    if variant not in card.variants:
        raise CnnarchError(
            f"model {name!r} has no variant {variant!r}; it has: {', '.join(card.variants)}"
        )
    num_classes = card.num_classes if num_classes is None else num_classes
    in_channels = card.input_size[0] if in_channels is None else in_channels
    if num_classes < 1 or in_channels < 1:
        raise CnnarchError(
            f"num_classes and in_channels must be positive (got {num_classes}, {in_channels})"
        )
    _check_options(name, entry.builder, kwargs)
    model = entry.builder(
        variant=variant, num_classes=num_classes, in_channels=in_channels, **kwargs
    )
    if isinstance(model, ZooModel):
        model.model_name = name
        spec = dict(kwargs, variant=variant, num_classes=num_classes, in_channels=in_channels)
        spec.pop("devices", None)  # the meta twin used for size checks lives on one device
        model.build_spec = (name, spec)
    return model


def _check_options(name: str, builder: Callable[..., nn.Module], kwargs: dict[str, Any]) -> None:
    """Turn an option the builder does not take into one clear error (not a TypeError)."""
    params = inspect.signature(builder).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    options = [p for p in params if p not in ("variant", "num_classes", "in_channels")]
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        raise CnnarchError(
            f"model {name!r} has no option {', '.join(map(repr, unknown))}; "
            f"its options: {', '.join(options) or 'none'}"
        )


@functools.cache
def published() -> dict[str, Any]:
    """The published figures shipped with the package, each with its source."""
    text = resources.files("cnnarch.zoo").joinpath("published.json").read_text("utf-8")
    return json.loads(text)


@functools.cache
def parameter_count(name: str, variant: str = "paper") -> int:
    """Parameters of `name` built with its defaults, counted on the meta device (no memory)."""
    with torch.device("meta"):
        model = create_model(name, variant=variant)
    return sum(p.numel() for p in model.parameters())


def torchvision_facts(name: str) -> dict[str, Any]:
    """torchvision's published metrics for `name` (accuracy, params, GFLOPS), with the source."""
    table = published()["torchvision_0_29_metadata"]
    return dict(zip(table["columns"], table[name], strict=True), source=table["source"])


@functools.cache
def min_input_size(name: str, variant: str = "paper") -> int:
    """Smallest square input side that `name` accepts, found by shape inference on meta."""
    card = model_card(name)
    return smallest_input_side(lambda: create_model(name, variant=variant), card.input_size[0])
