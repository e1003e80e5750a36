"""cnnarch: the CNN architectures of CS231n Lecture 9 as measured software."""

from cnnarch.errors import CnnarchError
from cnnarch.zoo import create_model, list_models, model_card

__all__ = ["CnnarchError", "create_model", "list_models", "model_card"]
__version__ = "0.1.0"
