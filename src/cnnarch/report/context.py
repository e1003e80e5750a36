"""What every section of the report shares: the analyses (each model analyzed once), the
figure folder, the published figures, and the list of published-vs-computed comparisons.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnarch.lecture.claims import Check, difference
from cnnarch.lecture.layers import LectureLayers, lecture_layers
from cnnarch.report.charts import SavedFigure, chart_style, save_figure
from cnnarch.units import explain_gap, parse_printed
from cnnarch.zoo.registry import ModelCard, model_card, published

BYTES_PER_ELEMENT = 4  # float32, as the lecture counts memory


@dataclass(frozen=True)
class Comparison:
    """A published number beside the computed one, with its source and the reason for a gap."""

    topic: str
    quantity: str
    computed: float
    published: float
    source: str
    why: str = ""

    @property
    def difference(self) -> float:
        """The computed value relative to the published one (`cnnarch.lecture.claims`)."""
        return difference(self.computed, self.published)

    def as_row(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "quantity": self.quantity,
            "computed": self.computed,
            "published": self.published,
            "difference": 100 * self.difference,
            "source": self.source,
            "why": self.why,
        }


@dataclass(frozen=True)
class KeyIdea:
    """One line of the page's opening table: a lecture idea, the evidence, the section."""

    idea: str
    evidence: str
    checks: tuple[Check, ...]
    section: str  # the id of the section that measures it

    @property
    def holds(self) -> bool | None:
        """Holds if every check holds; does not if one does not; else cannot be computed."""
        verdicts = [c.holds for c in self.checks]
        if verdicts and all(v is True for v in verdicts):
            return True
        return False if False in verdicts else None


@dataclass
class Context:
    """Shared state of one report build. `analyze` caches, so each model is analyzed once."""

    out: Path
    models: tuple[str, ...]
    batch: int
    step: Callable[[str], None] = lambda _label: None
    comparisons: list[Comparison] = field(default_factory=list)
    ideas: list[KeyIdea] = field(default_factory=list)
    _cache: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    _worker: ProcessPoolExecutor | None = None

    @property
    def figures_dir(self) -> Path:
        return self.out / "figures"

    @property
    def published(self) -> dict[str, Any]:
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

    def analyze(self, name: str, variant: str = "paper") -> Any:
        """Forward (inference) summary of `name` for one image (see `input_size`)."""
        key = ("forward", name, variant)
        if key not in self._cache:
            from cnnarch import analyze

            self.step(f"analyze {name} ({variant})")
            size = self.input_size(name, variant)
            self._cache[key] = analyze(name, size, variant=variant)
        return self._cache[key]

    def analyze_training(self, name: str, variant: str = "paper") -> Any:
        """Training summary of `name` at the report's batch size, SGD with momentum."""
        key = ("train", name, variant)
        if key not in self._cache:
            from cnnarch import analyze

            self.step(f"training memory {name} ({variant})")
            self._cache[key] = analyze(
                name,
                self.input_size(name, variant),
                batch_size=self.batch,
                train=True,
                optimizer="momentum",
                variant=variant,
            )
        return self._cache[key]

    def layers(self, name: str) -> LectureLayers:
        """`name`'s layers as the lecture counts them (paper variant), training-only heads
        included (from the training pass the report analyzes anyway)."""
        key = ("layers", name)
        if key not in self._cache:
            import torch

            from cnnarch.zoo.registry import create_model

            with torch.device("meta"):
                model = create_model(name)
            self._cache[key] = lecture_layers(
                model, self.analyze(name), self.analyze_training(name)
            )
        return self._cache[key]

    def explorer(self, name: str) -> Any:
        """`name`'s explorer (paper variant): totals affine in the batch, per precision; the
        training steps' moments, per precision and optimizer, traced in two worker processes
        while this one builds the rest of the report (about half of the build's work)."""
        import torch

        from cnnarch import analyze
        from cnnarch.report.explorer import Explorer, affine_totals, analyzed_training_totals

        layers = tuple(self.layers(name).layers)
        paths = [layer.paths for layer in layers]
        training = self.in_worker(analyzed_training_totals, name, paths)

        def cached(model: str, batch_size: int, dtype: torch.dtype) -> Any:
            if batch_size == 1 and dtype == torch.float32:
                return self.analyze(model)  # the card's forward pass, analyzed already
            return analyze(model, batch_size=batch_size, dtype=dtype)

        self.step(f"explorer {name}")
        return Explorer(name, affine_totals(cached, name), training, layers)

    def in_worker(self, function: Callable[..., Any], *args: Any) -> Future[Any]:
        """`function(*args)` in one of two worker processes, while this one builds the rest
        of the report; the function and its arguments must be picklable."""
        if self._worker is None:
            # spawn: a fresh interpreter, not a fork of this one's torch threads.
            self._worker = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
        return self._worker.submit(function, *args)

    def close(self) -> None:
        """Stop the worker processes, if started (their unfinished work is dropped)."""
        if self._worker is not None:
            self._worker.shutdown(cancel_futures=True)
            self._worker = None

    def slide_table(self, name: str) -> Any:
        """The lecture's VGG16-slide table of `name` (paper variant), from the cached analysis."""
        from cnnarch.lecture.vgg import slide_table

        return slide_table(name, summary=self.analyze(name))

    def analyze_module(self, key: str, module: Any, input_size: tuple[int, ...]) -> Any:
        """Forward summary of a module built here (a block, a variant with options)."""
        cache_key = ("module", key)
        if cache_key not in self._cache:
            from cnnarch.analysis import analyze

            self.step(f"analyze {key}")
            self._cache[cache_key] = analyze(module, input_size)
        return self._cache[cache_key]

    def key_idea(self, idea: str, evidence: str, checks: Any, section: str) -> None:
        """Record the evidence for one of the lecture's ideas (shown first on the page)."""
        self.ideas.append(KeyIdea(idea, evidence, tuple(checks), section))

    def compare(
        self,
        topic: str,
        quantity: str,
        computed: float,
        printed: str | float,
        source: str,
        why: str | None = None,
        k: float = 1e3,
    ) -> Comparison:
        """Record a published figure (as printed: '138M', '159K', 4096) beside the computed one.

        Without `why`, the reason is judged from the printed precision (`explain_gap`).
        """
        value = parse_printed(printed, k)
        reason = explain_gap(computed, printed, k) if why is None else why
        comparison = Comparison(topic, quantity, computed, value, source, reason)
        self.comparisons.append(comparison)
        return comparison

    def figure(self, name: str, title: str, caption: str, draw: Callable[[], Any]) -> SavedFigure:
        """Draw a chart in the report's style and save it as PNG and SVG."""
        self.step(f"figure {name}")
        with chart_style():
            fig = draw()
            return save_figure(fig, self.figures_dir, name, title, caption)
