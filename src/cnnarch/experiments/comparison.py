"""The lecture's comparison of architectures (after Canziani, Paszke & Culurciello 2016).

Accuracy is published (torchvision's ImageNet-1k single-crop top-1 of its weights, so each model
is costed in its `torchvision` variant, the network those weights belong to); parameters, MACs
and memory are computed by the analyzer. The five observations of the lecture's slide are then
checked against these numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cnnarch.units import byte_size, number
from cnnarch.zoo.registry import ModelCard, published


@dataclass(frozen=True)
class ModelCost:
    """What a model costs (computed) and how accurate it is (published, with the source)."""

    name: str
    family: str
    variant: str
    params: int  # every parameter, auxiliary heads included
    inference_params: int  # the parameters an inference pass uses (no auxiliary heads)
    macs: int
    activation_bytes: int  # forward outputs for one image, input excluded
    param_bytes: int
    training_peak_bytes: int | None  # at `batch`, SGD with momentum
    batch: int
    top1: float | None  # percent
    top1_source: str = ""  # where `top1` is published

    @property
    def forward_bytes(self) -> int:
        """Parameters plus forward activations of one image: what inference must hold."""
        return self.param_bytes + self.activation_bytes

    @property
    def top1_per_mparam(self) -> float | None:
        """Canziani et al.'s "accuracy density": top-1 per million parameters."""
        return None if self.top1 is None else self.top1 / (self.inference_params / 1e6)

    @property
    def top1_per_gmac(self) -> float | None:
        return None if self.top1 is None else self.top1 / (self.macs / 1e9)


@dataclass(frozen=True)
class Observation:
    claim: str
    holds: bool | None  # None: the data cannot decide it
    evidence: str


def comparison_variant(card: ModelCard) -> str:
    """The variant whose published accuracy exists: torchvision's, when the zoo has it."""
    return "torchvision" if "torchvision" in card.variants else "paper"


def published_top1(card: ModelCard, variant: str) -> tuple[float | None, str]:
    """torchvision's top-1 for the torchvision variant; nothing for a variant without weights."""
    facts = card.published.get("torchvision")
    if variant != "torchvision" or not facts:
        return None, ""
    return float(facts["acc@1"]), facts["source"]


def model_cost(card: ModelCard, variant: str, summary: Any, training: Any, batch: int) -> ModelCost:
    top1, source = published_top1(card, variant)
    peak = training.training.peak_bytes if training is not None and training.training else None
    return ModelCost(
        name=card.name,
        family=card.family,
        variant=variant,
        params=int(summary.total_params),
        inference_params=int(_model_row(summary).params),
        macs=int(summary.total_macs),
        activation_bytes=int(summary.activation_bytes),
        param_bytes=int(summary.param_bytes),
        training_peak_bytes=None if peak is None else int(peak),
        batch=batch,
        top1=top1,
        top1_source=source,
    )


def _model_row(summary: Any) -> Any:
    """The row of the whole model: its parameters are those the traced (eval) pass used."""
    return next(row for row in summary.rows if row.depth == 0)


def lecture_observations() -> list[str]:
    return published()["cs231n_lecture9_2017"]["comparison_slide"]["observations"]


def _leader(costs: Sequence[ModelCost], key: Any, *, lowest: bool = False) -> ModelCost:
    return (min if lowest else max)(costs, key=key)


def _runner_up(costs: Sequence[ModelCost], key: Any, exclude: str) -> ModelCost | None:
    rest = [c for c in costs if c.family != exclude]
    return _leader(rest, key) if rest else None


def _families(costs: Sequence[ModelCost]) -> set[str]:
    return {c.family for c in costs}


def check_observations(costs: Sequence[ModelCost]) -> list[Observation]:
    """The slide's five observations, each tested on `costs` (open when a family is absent)."""
    claims = lecture_observations()
    rated = [c for c in costs if c.top1 is not None]
    return [
        _inception_v4(claims[0]),
        _vgg(claims[1], costs),
        _googlenet(claims[2], rated),
        _alexnet(claims[3], costs, rated),
        _resnet(claims[4], rated),
    ]


def _missing(claim: str, *families: str) -> Observation:
    return Observation(claim, None, f"no {' or '.join(families)} model selected.")


def _inception_v4(claim: str) -> Observation:
    reading = published()["canziani_2016_third_party_reading"]
    models = {k: v for k, v in reading.items() if k != "columns" and isinstance(v, list)}
    best = max(models, key=lambda k: models[k][2])
    top1 = models["Inception-v4"][2]
    # Inception-v4 is not in the zoo: the reading is evidence, but nothing here computes it.
    return Observation(
        claim,
        None,
        "Inception-v4 is not in this zoo, so neither its cost nor its accuracy is computed "
        f"here. A third-party reading of Canziani et al.'s figure gives it {top1:g}% top-1 at "
        f"{models['Inception-v4'][0]:g}M weights, "
        + (
            f"the highest of its {len(models)} models."
            if best == "Inception-v4"
            else f"below {best} ({models[best][2]:g}%)."
        ),
    )


def _vgg(claim: str, costs: Sequence[ModelCost]) -> Observation:
    if "vgg" not in _families(costs):
        return _missing(claim, "VGG")
    memory = _leader(costs, lambda c: c.forward_bytes)
    ops = _leader(costs, lambda c: c.macs)
    other_mem = _runner_up(costs, lambda c: c.forward_bytes, "vgg")
    other_ops = _runner_up(costs, lambda c: c.macs, "vgg")
    evidence = (
        f"most memory (parameters + forward activations, one image): {memory.name}, "
        f"{byte_size(memory.forward_bytes, 'MB', 0)}; "
        f"most MACs: {ops.name}, {ops.macs / 1e9:.2f} G."
    )
    if other_mem and other_ops:
        evidence += (
            f" Highest outside VGG: {other_mem.name} "
            f"({byte_size(other_mem.forward_bytes, 'MB', 0)}), "
            f"{other_ops.name} ({other_ops.macs / 1e9:.2f} GMACs)."
        )
    return Observation(claim, memory.family == "vgg" and ops.family == "vgg", evidence)


def _googlenet(claim: str, rated: Sequence[ModelCost]) -> Observation:
    if "googlenet" not in _families(rated):
        return _missing(claim, "GoogLeNet (with published accuracy)")
    ranked = sorted(rated, key=lambda c: c.top1_per_mparam, reverse=True)
    dense, runner_up = ranked[0], ranked[1] if len(ranked) > 1 else None
    per_mac = _leader(rated, lambda c: c.top1_per_gmac)
    google = next(c for c in rated if c.family == "googlenet")
    versus = (
        f"next: {runner_up.name}, {runner_up.top1_per_mparam:.2f}"
        if dense is google and runner_up is not None
        else f"GoogLeNet {google.top1_per_mparam:.2f}"
    )
    return Observation(
        claim,
        dense is google,
        f"top-1 per million parameters used at inference (Canziani et al.'s accuracy "
        f"density): {dense.name} leads with {dense.top1_per_mparam:.2f} %/M ({versus}). Per "
        f"GMAC the leader is {per_mac.name} ({per_mac.top1_per_gmac:.1f} %/GMAC; GoogLeNet "
        f"{google.top1_per_gmac:.1f}): GoogLeNet is the most efficient in parameters.",
    )


def _alexnet(claim: str, costs: Sequence[ModelCost], rated: Sequence[ModelCost]) -> Observation:
    if "alexnet" not in _families(rated):
        return _missing(claim, "AlexNet (with published accuracy)")
    alex = next(c for c in rated if c.family == "alexnet")
    least_macs = _leader(costs, lambda c: c.macs, lowest=True)
    worst = _leader(rated, lambda c: c.top1, lowest=True)
    per_mac = _leader(costs, lambda c: c.forward_bytes / c.macs)
    holds = least_macs.name == alex.name and worst.name == alex.name and per_mac.name == alex.name
    return Observation(
        claim,
        holds,
        f"fewest MACs: {least_macs.name} ({least_macs.macs / 1e9:.2f} G); lowest top-1: "
        f"{worst.name} ({worst.top1:.1f}%); most memory per GMAC: {per_mac.name} "
        f"({number(per_mac.forward_bytes / 1e6 / (per_mac.macs / 1e9), 0)} MB/GMAC; AlexNet holds "
        f"{byte_size(alex.forward_bytes, 'MB', 0)}, {alex.param_bytes / alex.forward_bytes:.0%} "
        "of it in parameters).",
    )


def _resnet(claim: str, rated: Sequence[ModelCost]) -> Observation:
    resnets = [c for c in rated if c.family == "resnet"]
    if not resnets:
        return _missing(claim, "ResNet (with published accuracy)")
    best = _leader(rated, lambda c: c.top1)
    densities = sorted(c.top1_per_mparam for c in rated)
    low, high = min(r.top1_per_mparam for r in resnets), max(r.top1_per_mparam for r in resnets)
    moderate = densities[0] < low and high < densities[-1]
    return Observation(
        claim,
        best.family == "resnet" and moderate,
        f"highest top-1: {best.name} ({best.top1:.2f}%). ResNets' top-1 per million parameters "
        f"spans {low:.2f} to {high:.2f} %/M, between the extremes of all rated models "
        f"({densities[0]:.2f} to {densities[-1]:.2f}).",
    )
