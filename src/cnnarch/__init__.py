"""cnnarch: the CNN architectures of CS231n Lecture 9 as measured software.

The front door: `analyze` resolves zoo names itself (`cnnarch.zoo_models`) and hands modules to
the analyzer, which knows no model by name; `summary` is torchinfo's `summary`, answered by the
analyzer.
"""

from cnnarch.analysis.summary import Summary
from cnnarch.analysis.torchinfo_style import summary
from cnnarch.errors import CnnarchError, CnnarchValueError
from cnnarch.experiments.inception import inception_cost
from cnnarch.zoo import create_model, get_model, list_models, model_card
from cnnarch.zoo_models import analyze

__all__ = [
    "CnnarchError",
    "CnnarchValueError",
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


__version__ = "0.1.0"
