"""Model registry: `create_model` (and torchvision's name for it, `get_model`), `list_models`
and a card per model.

Each family module defines one builder function per model and registers it with
`@register_model`: the function's name is the model's name. Every module of this package is
imported on first use, so a new family registers itself without being listed anywhere.

A builder takes keyword arguments only: `variant`, `num_classes`, `in_channels` and the model's
options. Its options are its own keyword-only parameters and, for a builder that passes
`**kwargs` on to its model class, those it declares with `register_model(options=...)`.
`create_model` checks the name, the variant and the options before calling the builder, so
builders only build. A card's published facts are read from the package's data when the card
is first asked for, not when the zoo is imported.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import importlib
import inspect
import json
import os
import pickle
import pkgutil
import zipfile
from collections.abc import Callable, Iterable, Mapping
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
# Where a variant's weights come from, for the message that says how to load them from disk.
_WEIGHT_SOURCES = {
    "torchvision": "torchvision.models.{name}(weights='DEFAULT')",
    "timm": "timm.create_model('{name}', pretrained=True)",
}


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


Facts = Callable[[], Mapping[str, Any]]


@dataclass(frozen=True)
class _Entry:
    """A registered model: its builder and what its card is made of."""

    builder: Callable[..., nn.Module]
    family: str
    paper: Paper
    input_size: tuple[int, int, int]
    num_classes: int
    variants: tuple[str, ...]
    options: tuple[str, ...]  # keyword options beyond `_COMMON_ARGUMENTS`
    facts: Facts | None  # read on the first `model_card` call


_REGISTRY: dict[str, _Entry] = {}


def register_model(
    *,
    family: str,
    paper: Paper,
    input_size: tuple[int, int, int],
    num_classes: int = 1000,
    variants: tuple[str, ...] = ("paper",),
    options: tuple[str, ...] = (),
    published: Facts | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register the decorated builder under its own name, with its card; returns it unchanged.

    Args:
        family: the family the model belongs to (its module, usually).
        paper: the publication the model follows.
        input_size: (channels, height, width) of the paper's input.
        num_classes: the classes the paper trains for.
        variants: the variant names the builder takes, "paper" first.
        options: the options a builder that passes `**kwargs` on to its model class forwards
            (its own keyword-only parameters are options without being listed).
        published: a function returning the published facts of the card, each block with its
            "source"; called when the card is first asked for. A model with a torchvision
            variant also gets torchvision's published metrics.
    """

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = builder.__name__
        if name in _REGISTRY:
            raise RuntimeError(f"model {name!r} registered twice")
        _REGISTRY[name] = _Entry(
            builder=builder,
            family=family,
            paper=paper,
            input_size=input_size,
            num_classes=num_classes,
            variants=variants,
            options=_options(builder, options),
            facts=published,
        )
        return builder

    return decorate


def _options(builder: Callable[..., nn.Module], forwarded: tuple[str, ...]) -> tuple[str, ...]:
    """The options of `builder`: its keyword-only parameters beyond the common ones, then the
    `forwarded` ones it passes on through `**kwargs` (positional parameters are structure the
    builder fixes, not options)."""
    params = inspect.signature(builder).parameters.values()
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params)
    own = [p.name for p in params if p.kind is p.KEYWORD_ONLY]
    if forwarded and not takes_kwargs:
        raise TypeError(f"builder {builder.__name__} forwards options but takes no **kwargs")
    if not takes_kwargs:
        missing = [arg for arg in _COMMON_ARGUMENTS if arg not in own]
        if missing:
            raise TypeError(f"builder {builder.__name__} does not take {', '.join(missing)}")
    names = dict.fromkeys([*own, *forwarded])
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


def list_models(
    filter: str | Iterable[str] = "*",  # timm's name for it
    exclude_filters: str | Iterable[str] = (),
) -> list[str]:
    """Model names, in the order their papers appeared (the lecture's order), and the models of
    one paper in the order they were registered.

    Args:
        filter: an fnmatch pattern ("resnet*") or several; a name matching any is listed.
            "" lists every model, as in timm.
        exclude_filters: a pattern or several; a name matching any is left out.
    """
    _load_families()
    include, exclude = _patterns(filter) or ["*"], _patterns(exclude_filters)
    names = [
        name
        for name in _REGISTRY
        if any(fnmatch.fnmatchcase(name, p) for p in include)
        and not any(fnmatch.fnmatchcase(name, p) for p in exclude)
    ]
    return sorted(names, key=lambda name: (_REGISTRY[name].paper.year, _REGISTRY[name].paper.arxiv))


def _patterns(patterns: str | Iterable[str]) -> list[str]:
    return [patterns] if isinstance(patterns, str) and patterns else [p for p in patterns if p]


def model_builder(name: str) -> Callable[..., nn.Module]:
    """The registered builder function of model `name` (e.g. `cnnarch.zoo.resnet.resnet50`)."""
    return _entry(name).builder


@functools.cache
def model_card(name: str) -> ModelCard:
    """What is known about model `name` before building it: paper, input, variants, facts.

    Args:
        name: a registered model name (`list_models()`).
    """
    entry = _entry(name)
    facts = dict(entry.facts()) if entry.facts is not None else {}
    if "torchvision" in entry.variants:
        facts["torchvision"] = torchvision_facts(name)
    return ModelCard(
        name=name,
        family=entry.family,
        paper=entry.paper,
        input_size=entry.input_size,
        num_classes=entry.num_classes,
        variants=entry.variants,
        published=facts,
        description=(entry.builder.__doc__ or "").strip().split("\n")[0],
    )


def create_model(
    name: str,
    *,
    variant: str = "paper",
    num_classes: int | None = None,
    in_channels: int | None = None,
    in_chans: int | None = None,
    weights: str | os.PathLike[str] | None = None,
    pretrained: bool = False,
    **kwargs: Any,
) -> nn.Module:
    """Build model `name`, with weights from a local file if asked.

    Builds on whatever device is current, so `with torch.device("meta"): create_model(...)`
    allocates nothing. No weights are downloaded: `weights` loads a state_dict saved on disk
    (one saved from torchvision's model loads into `variant="torchvision"`).

    Args:
        name: a registered model name (`list_models()`).
        variant: "paper" (the default) or another of the card's variants.
        num_classes: classes of the classifier; the card's by default.
        in_channels: channels of the input; the card's by default.
        in_chans: timm's name for `in_channels`.
        weights: path of a state_dict file (`torch.save(model.state_dict(), path)`), loaded
            strictly with `weights_only=True`.
        pretrained: timm's switch for downloaded weights: True without `weights` is refused
            with how to load weights from disk instead.
        **kwargs: the model's options (`model_card`'s builder documents them).
    """
    entry = _entry(name)
    if variant not in entry.variants:
        raise CnnarchError(
            f"model {name!r} has no variant {variant!r}; it has: {', '.join(entry.variants)}"
        )
    if pretrained and weights is None:
        raise CnnarchError(
            f"{name}: no weights are downloaded here (pretrained=True); "
            f"{_how_to_load(name, entry.variants)}"
        )
    if in_chans is not None:
        if in_channels is not None and in_channels != in_chans:
            raise CnnarchError(
                f"in_chans={in_chans} and in_channels={in_channels} disagree: give one of them"
            )
        in_channels = in_chans
    num_classes = entry.num_classes if num_classes is None else num_classes
    in_channels = entry.input_size[0] if in_channels is None else in_channels
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
    if weights is not None:
        load_weights(model, weights, name=name, variants=entry.variants)
    return model


def get_model(
    name: str, *, weights: str | os.PathLike[str] | None = None, **kwargs: Any
) -> nn.Module:
    """torchvision's name for `create_model`: model `name`, with weights from a local file.

    Args:
        name: a registered model name (`list_models()`).
        weights: path of a state_dict file; torchvision's weight names ("DEFAULT") are refused
            with how to save those weights to a file once.
        **kwargs: `create_model`'s arguments (`variant`, `num_classes`, options).
    """
    return create_model(name, weights=weights, **kwargs)


def load_weights(
    model: nn.Module,
    weights: str | os.PathLike[str],
    *,
    name: str = "model",
    variants: tuple[str, ...] = ("paper",),
) -> None:
    """Load the state_dict saved at `weights` into `model`, strictly, or fail with one line.

    The file is read with `weights_only=True` (tensors and plain data only). A file holding a
    training checkpoint loads the state_dict under its "model" or "state_dict" key.

    Args:
        model: the model to load into; on the meta device its tensors are replaced.
        weights: the file's path.
        name: the model's name, for messages.
        variants: the model's variants, for the message that says where weights come from.
    """
    if not isinstance(weights, str | os.PathLike):
        raise CnnarchError(
            f"{name}: weights= takes the path of a state_dict file, not "
            f"{type(weights).__name__}; {_how_to_load(name, variants)}"
        )
    path = Path(weights)
    if not path.is_file():
        raise CnnarchError(
            f"{name}: no weights file {os.fspath(weights)!r} (no weights are downloaded here); "
            f"{_how_to_load(name, variants)}"
        )
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, OSError) as err:
        reason = str(err).strip().split("\n")[0]
        raise CnnarchError(f"{path}: not a readable state_dict ({reason})") from err
    state = _state_dict(loaded)
    if state is None:
        raise CnnarchError(f"{path} holds no state_dict (a mapping of names to tensors)")
    try:
        model.load_state_dict(state, strict=True, assign=_on_meta(model))
    except RuntimeError as err:
        differs = state_dict_mismatch(model.state_dict(), state) or "its tensors do not load"
        hint = "was it saved from another variant, or with other num_classes or in_channels?"
        raise CnnarchError(f"{path} does not fit {name}: {differs}; {hint}") from err


def _how_to_load(name: str, variants: tuple[str, ...]) -> str:
    """How to get weights onto the disk for `name`, for the variants a library publishes."""
    sources = [v for v in variants if v in _WEIGHT_SOURCES]
    if not sources:
        return f"load a state_dict of your own with weights='{name}.pth'"
    variant = sources[0]
    source = _WEIGHT_SOURCES[variant].format(name=name)
    return (
        f"where {variant} is installed, save its weights once with "
        f"torch.save({source}.state_dict(), '{name}.pth'), then load them here with "
        f"create_model('{name}', variant='{variant}', weights='{name}.pth')"
    )


def _state_dict(loaded: object) -> Mapping[str, torch.Tensor] | None:
    """`loaded` if it is a state_dict, else the state_dict a checkpoint holds, else None."""
    if not isinstance(loaded, Mapping):
        return None
    if loaded and all(isinstance(v, torch.Tensor) for v in loaded.values()):
        return loaded
    for key in ("model", "state_dict"):
        inner = _state_dict(loaded.get(key))
        if inner is not None:
            return inner
    return None


def _on_meta(model: nn.Module) -> bool:
    return any(t.is_meta for t in (*model.parameters(), *model.buffers()))


def state_dict_mismatch(
    model: Mapping[str, torch.Tensor], saved: Mapping[str, torch.Tensor]
) -> str:
    """One line on how a saved state_dict differs from a model's ('' when the names and shapes
    agree): how many weights are missing, unexpected or of another shape, the first of each.

    Args:
        model: the model's `state_dict()`.
        saved: the state_dict read from a file.
    """

    def first(names: list[str]) -> str:
        more = f" and {len(names) - 1} more" if len(names) > 1 else ""
        return f"{names[0]}{more}"

    missing = [k for k in model if k not in saved]
    unexpected = [k for k in saved if k not in model]
    other = [k for k in model if k in saved and model[k].shape != saved[k].shape]
    parts = []
    if missing:
        parts.append(f"{len(missing)} of the model's weights missing ({first(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} weights the model does not have ({first(unexpected)})")
    if other:
        k = other[0]
        parts.append(
            f"{len(other)} of another shape ({k}: {tuple(saved[k].shape)} saved, "
            f"{tuple(model[k].shape)} in the model{', ...' if len(other) > 1 else ''})"
        )
    return "; ".join(parts)


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
