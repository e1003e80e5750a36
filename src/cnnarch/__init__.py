"""cnnarch: the CNN architectures of CS231n Lecture 9 as measured software."""

from cnnarch.analysis import Summary, analyze
from cnnarch.analysis.analyzer import set_model_resolver
from cnnarch.errors import CnnarchError
from cnnarch.experiments.inception import inception_cost
from cnnarch.zoo import create_model, get_model, list_models, model_card
from cnnarch.zoo_models import resolve as _resolve_zoo_model

# The analyzer knows no model by name: the zoo's names and card input sizes come from here.
set_model_resolver(_resolve_zoo_model)

__all__ = [
    "CnnarchError",
    "Summary",
    "TrainConfig",
    "analyze",
    "create_model",
    "fit",
    "get_model",
    "inception_cost",
    "list_models",
    "load_dataset",
    "model_card",
    "plan",
    "run_degradation",
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


__version__ = "0.1.0"
