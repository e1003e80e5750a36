"""The model zoo: one module per family, all registered by name in `registry`."""

from cnnarch.zoo.registry import (
    ModelCard,
    Paper,
    create_model,
    get_model,
    list_models,
    load_weights,
    model_card,
)

__all__ = [
    "ModelCard",
    "Paper",
    "create_model",
    "get_model",
    "list_models",
    "load_weights",
    "model_card",
]
