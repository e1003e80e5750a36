"""Model registry: `create_model`, `list_models` and a card per model.

Each family module defines one builder function per model and registers it with
`@register_model`: the function's name is the model's name. Every module of this package is
imported on first use, so a new family registers itself without being listed anywhere.

A builder takes keyword arguments only: `variant`, `num_classes`, `in_channels` and the model's
options. It may pass `**kwargs` on to the model class its return annotation names; that class's
keyword-only parameters are then options too. `create_model` checks the name, the variant and
the options before calling the builder, so builders only build.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import importlib
import inspect
import json
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnarch.errors import CnnarchError
from cnnarch.zoo.common import ZooModel, smallest_input_side

# Every builder takes these; the others it takes are the model's options.
_COMMON_ARGUMENTS = ("variant", "num_classes", "in_channels")


@dataclass(frozen=True)
class Paper:
    authors: str
    year: int
    title: str
    venue: str = ""
    arxiv: str = ""  # arXiv identifier (YYMM.NNNNN, so chronological), if the paper has one

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
    options: tuple[str, ...]  # keyword options beyond `_COMMON_ARGUMENTS`


_REGISTRY: dict[str, _Entry] = {}


def register_model(
    *,
    family: str,
    paper: Paper,
    input_size: tuple[int, int, int],
    num_classes: int = 1000,
    variants: tuple[str, ...] = ("paper",),
    published: dict[str, Any] | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register the decorated builder under its own name, with its card; returns it unchanged.

    A model with a torchvision variant also gets torchvision's published metrics.
    """

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = builder.__name__
        if name in _REGISTRY:
            raise RuntimeError(f"model {name!r} registered twice")
        facts = dict(published or {})
        if "torchvision" in variants:
            facts["torchvision"] = torchvision_facts(name)
        card = ModelCard(
            name=name,
            family=family,
            paper=paper,
            input_size=input_size,
            num_classes=num_classes,
            variants=variants,
            published=facts,
            description=(builder.__doc__ or "").strip().split("\n")[0],
        )
        _REGISTRY[name] = _Entry(card, builder, _options(builder))
        return builder

    return decorate


def _options(builder: Callable[..., nn.Module]) -> tuple[str, ...]:
    """The keyword-only parameters of `builder` and, if it passes `**kwargs` on, of the model
    class it returns (positional parameters are structure the builder fixes, not options)."""
    signature = inspect.signature(builder, eval_str=True)
    params = list(signature.parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in params):
        params += inspect.signature(signature.return_annotation).parameters.values()
    names = list(dict.fromkeys(p.name for p in params if p.kind is p.KEYWORD_ONLY))
    missing = [arg for arg in _COMMON_ARGUMENTS if arg not in names]
    if missing:
        raise TypeError(f"builder {builder.__name__} does not take {', '.join(missing)}")
    return tuple(name for name in names if name not in _COMMON_ARGUMENTS)


@functools.cache
def _load_families() -> None:
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        importlib.import_module(f"{__package__}.{module.name}")


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
    """Model names matching the fnmatch `pattern`, in the order their papers appeared (the
    lecture's order), and the models of one paper in the order they were registered."""
    _load_families()
    names = [name for name in _REGISTRY if fnmatch.fnmatchcase(name, pattern)]
    papers = {name: _REGISTRY[name].card.paper for name in names}
    return sorted(names, key=lambda name: (papers[name].year, papers[name].arxiv))


def model_builder(name: str) -> Callable[..., nn.Module]:
    """The registered builder function of model `name` (e.g. `cnnarch.zoo.resnet.resnet50`)."""
    return _entry(name).builder


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
    unknown = sorted(set(kwargs) - set(entry.options))
    if unknown:
        raise CnnarchError(
            f"model {name!r} has no option {', '.join(map(repr, unknown))}; "
            f"its options: {', '.join(entry.options) or 'none'}"
        )
    model = entry.builder(
        variant=variant, num_classes=num_classes, in_channels=in_channels, **kwargs
    )
    if isinstance(model, ZooModel):
        model.model_name = name  # what its errors and its analysis call it
    return model


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
