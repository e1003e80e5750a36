"""cnnarch: the CNN architectures of CS231n Lecture 9 as measured software.

The front door: `analyze` resolves zoo names itself (`cnnarch.zoo_models`) and hands modules to
the analyzer, which knows no model by name; `summary` is torchinfo's `summary`, answered by the
analyzer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cnnarch.analysis.summary import Summary
from cnnarch.analysis.torchinfo_style import summary
from cnnarch.errors import CnnarchError, CnnarchValueError
from cnnarch.experiments.inception import inception_cost
from cnnarch.zoo import create_model, get_model, list_models, model_card
from cnnarch.zoo_models import analyze

if TYPE_CHECKING:
    from collections.abc import Sequence

    from torch import nn

    from cnnarch.lecture.diagrams import Diagram

__all__ = [
    "CnnarchError",
    "CnnarchValueError",
    "Summary",
    "TrainConfig",
    "analyze",
    "create_model",
    "diagram",
    "fit",
    "get_model",
    "inception_cost",
    "list_models",
    "load_dataset",
    "model_card",
    "plan",
    "run_degradation",
    "summary",
]

# Imported on first use: the trainer, the data loaders and the planner are not needed to
# analyze a model.
_LAZY = {
    "TrainConfig": "cnnarch.train",
    "fit": "cnnarch.train",
    "load_dataset": "cnnarch.data",
    "plan": "cnnarch.planner",
    "run_degradation": "cnnarch.experiments.degradation",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cnnarch' has no attribute {name!r}")


def diagram(
    model: nn.Module | str,
    block: str | None = None,
    *,
    input_size: Sequence[int] | None = None,
    variant: str = "paper",
    view: str = "layers",
) -> Diagram:
    """A model's layers, its strip of MACs and memory, or one of its blocks, as SVG: what
    `cnnarch diagram` draws. Analyzed on meta tensors: nothing is computed.

    Args:
        model: a zoo name or any `nn.Module`.
        block: the path of a module to draw alone, such as "layer1.0" or "inception3a" (a path
            of `analyze(model).rows`), analyzed at the input it gets in the network; None draws
            the whole model.
        input_size: (C, H, W) of one example; the zoo card's by default.
        variant: the zoo variant when `model` is a name.
        view: "layers" (the network's layers, as the lecture counts them) or "strip" (each
            layer's share of the MACs and of the output memory).

    Returns:
        A `Diagram`: `.svg` is the picture (a notebook shows it), `.title` and `.caption` say
        what it shows.
    """
    # Imported here: the diagrams draw the lecture's layers, which `cnnarch.analysis` must not
    # load (the analyzer knows nothing of the lecture).
    from cnnarch.lecture.diagrams import model_diagram

    return model_diagram(model, block, input_size=input_size, variant=variant, view=view)


def _installed_version() -> str:
    """The version in the package's metadata: pyproject.toml's, written once at install."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cnnarch")
    except PackageNotFoundError:  # a source tree on sys.path that was never installed
        return "0+unknown"


__version__ = _installed_version()
