"""The analyses a report is built from: each model analyzed once (forward, one image; training,
at the report's batch size), and worker processes for the slow traces.

An `Analyses` is a cache of pure functions of the model's name: whichever topic asks first, every
topic gets the same summary, so the order in which topics are built cannot change the page.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cnnarch.lecture.layers import LectureLayers, lecture_layers
from cnnarch.zoo.registry import ModelCard, model_card, published

if TYPE_CHECKING:
    from torch import nn

    from cnnarch.analysis import Summary

# The optimizer of every training figure on the page: SGD with momentum 0.9, the recipe of the
# lecture's papers (AlexNet, VGG, GoogLeNet, ResNet).
TRAINING_OPTIMIZER = "momentum"


@dataclass
class Analyses:
    """The models of one report, the batch size of its training numbers, and their analyses.

    `step` is called with a short label before each unit of work (a progress display); `chart`
    names the networks of the lecture's comparison chart that the comparison computes beside
    the models (none unless given)."""

    models: tuple[str, ...]
    batch_size: int
    step: Callable[[str], None] = lambda _label: None
    chart: tuple[str, ...] = ()
    _cache: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    _workers: ProcessPoolExecutor | None = None

    @property
    def compared(self) -> tuple[str, ...]:
        """The networks of the comparison: the models, then the chart's others."""
        return tuple(dict.fromkeys((*self.models, *self.chart)))

    @property
    def published(self) -> dict[str, Any]:
        """The published figures the package ships (`cnnarch.zoo.registry.published`)."""
        return published()

    def card(self, name: str) -> ModelCard:
        return model_card(name)

    def input_size(self, name: str, variant: str = "paper") -> tuple[int, int, int]:
        """The card's input size; torchvision's weights were evaluated at 224 (299 for
        Inception-v3, whose card already says so), so its variants are analyzed there."""
        c, h, w = self.card(name).input_size
        if variant == "torchvision" and (h, w) != (299, 299):
            return (c, 224, 224)
        return (c, h, w)

    def forward(self, name: str, variant: str = "paper") -> Summary:
        """Forward (inference) summary of `name` for one image (see `input_size`)."""
        key = ("forward", name, variant)
        if key not in self._cache:
            from cnnarch import analyze

            self.step(f"analyze {name} ({variant})")
            self._cache[key] = analyze(name, self.input_size(name, variant), variant=variant)
        return self._cache[key]

    def training(self, name: str, variant: str = "paper") -> Summary:
        """Training summary of `name` at the report's batch size, SGD with momentum."""
        key = ("train", name, variant)
        if key not in self._cache:
            from cnnarch import analyze

            self.step(f"training memory {name} ({variant})")
            self._cache[key] = analyze(
                name,
                self.input_size(name, variant),
                batch_size=self.batch_size,
                train=True,
                optimizer=TRAINING_OPTIMIZER,
                variant=variant,
            )
        return self._cache[key]

    def layers(self, name: str) -> LectureLayers:
        """`name`'s layers as the lecture counts them (paper variant), training-only heads
        included (from the training pass analyzed anyway)."""
        key = ("layers", name)
        if key not in self._cache:
            self._cache[key] = lecture_layers(
                self.model(name), self.forward(name), self.training(name)
            )
        return self._cache[key]

    def model(self, name: str, **options: Any) -> nn.Module:
        """`name` built on the meta device (nothing allocated), with `options`."""
        import torch

        from cnnarch.zoo.registry import create_model

        with torch.device("meta"):
            return create_model(name, **options)

    def module(
        self, key: str, build: Callable[[], nn.Module], input_size: tuple[int, ...]
    ) -> Summary:
        """Forward summary of a module built here (a block, a variant with options)."""
        cache_key = ("module", key)
        if cache_key not in self._cache:
            from cnnarch import analyze

            self.step(f"analyze {key}")
            self._cache[cache_key] = analyze(build(), input_size)
        return self._cache[cache_key]

    def in_worker(self, function: Callable[..., Any], *args: Any) -> Future[Any]:
        """`function(*args)` in one of two worker processes, while this one builds the rest;
        the function and its arguments must be picklable."""
        if self._workers is None:
            self._workers = ProcessPoolExecutor(2, mp_context=_worker_context())
        return self._workers.submit(function, *args)

    def close(self) -> None:
        """Stop the worker processes, if started (their unfinished work is dropped)."""
        if self._workers is not None:
            self._workers.shutdown(cancel_futures=True)
            self._workers = None


# What the workers run; the fork server imports it once for both.
_WORKER_MODULES = ["cnnarch.lecture.explorer", "cnnarch.lecture.planner"]


def _worker_context() -> multiprocessing.context.BaseContext:
    """A fork server where the platform has one: a fresh interpreter (not a fork of this one's
    torch threads) that imports the workers' modules once and forks each worker from there,
    instead of each worker importing torch again; else spawn."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_WORKER_MODULES)
    return context
