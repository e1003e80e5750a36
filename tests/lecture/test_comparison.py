"""The lecture's five observations, tested on made-up costs where the answer is known: each
comparative claim is judged on every measure the page shows, and where the leader changes with
the measure the verdict says so. The accuracies' sources, and the residual additions traced in
the Inception networks."""

from dataclasses import replace

import pytest

import cnnarch
from cnnarch.lecture.analyses import Analyses
from cnnarch.lecture.claims import CANNOT_BE_COMPUTED, DEPENDS, DOES_NOT_HOLD, HOLDS
from cnnarch.lecture.comparison import (
    INCEPTION_V4_TABLE2,
    ModelCost,
    check_observations,
    published_top1,
    residual_additions,
    residual_sentence,
)


def cost(
    name: str,
    family: str,
    params_m: float,
    gmacs: float,
    top1: float | None,
    activations_mb: float = 10.0,
    training_mb: float | None = None,
) -> ModelCost:
    params = int(params_m * 1e6)
    return ModelCost(
        name=name,
        family=family,
        variant="torchvision",
        params=params,
        inference_params=params,
        macs=int(gmacs * 1e9),
        activation_bytes=int(activations_mb * 1e6),
        inference_peak_bytes=4 * params + int(activations_mb * 1e6),
        training_peak_bytes=None if training_mb is None else int(training_mb * 1e6),
        batch=1,
        top1=top1,
    )


# Where every measure agrees with the slide: VGG has the most memory of every kind and the
# most MACs; GoogLeNet is the densest per parameter and per GMAC; AlexNet the cheapest, least
# accurate and heaviest per GMAC; a ResNet the most accurate, also in the chart's reading.
AGREEING = [
    cost("alexnet", "alexnet", 61, 0.05, 56.5, 40, 900),
    cost("vgg16", "vgg", 138, 15.5, 71.6, 300, 4000),
    cost("googlenet", "googlenet", 5, 0.06, 69.8, 30, 800),
    cost("resnet50", "resnet", 25.6, 4.1, 76.1, 100, 2800),
    cost("resnet152", "resnet", 60.2, 11.5, 78.3, 230, 3900),
]
READING_RESNET_FIRST = {"ResNet-152": 77.5, "Inception-v4": 70.0, "VGG-16": 71.0}
READING_AS_SHIPPED = {"ResNet-152": 77.5, "Inception-v4": 80.0, "VGG-16": 71.0}


# The residual additions the trace finds (tests/zoo counts them in the models themselves).
TRACED = {"Inception-v3": 0, "Inception-v4": 0, "Inception-ResNet-v2": 20}


def test_where_every_measure_agrees_the_last_four_observations_hold() -> None:
    # Without Inception-v4 among the costs nothing says whether it is residual or the most
    # accurate, whatever a third-party reading of the figure says.
    observations = check_observations(AGREEING, READING_RESNET_FIRST)
    verdicts = [o.verdict for o in observations]
    assert verdicts == [CANNOT_BE_COMPUTED, CANNOT_BE_COMPUTED, HOLDS, HOLDS, HOLDS, HOLDS]
    assert "no Inception-v4" in observations[0].evidence
    assert all(o.id.startswith("comparison-") for o in observations)


def test_inception_v4_is_not_resnet_plus_inception_when_the_trace_finds_no_addition() -> None:
    claim = check_observations(AGREEING, READING_AS_SHIPPED, TRACED)[0]
    assert claim.claim == "Inception-v4: ResNet + Inception"
    assert claim.verdict == DOES_NOT_HOLD and claim.cause is not None
    assert "Inception-v4 0, Inception-ResNet-v2 20" in claim.evidence
    residual = check_observations(AGREEING, READING_AS_SHIPPED, {**TRACED, "Inception-v4": 4})
    assert residual[0].verdict == HOLDS


def test_inception_v4_as_the_most_accurate_is_judged_on_both_accuracies() -> None:
    v4 = cost("inception_v4", "inception", 42.7, 12.3, 80.0)
    most = check_observations([*AGREEING, v4], READING_AS_SHIPPED, TRACED)[1]
    assert most.verdict == HOLDS
    assert "✓ top-1 (published): inception_v4, 80.00% (next: resnet152, 78.30%)" in most.evidence
    # A network above it on the published top-1, though the chart's reading puts it first.
    v2 = cost("inception_resnet_v2", "inception-resnet", 32.4, 9.3, 80.1)
    most = check_observations([*AGREEING, v4, v2], READING_AS_SHIPPED, TRACED)[1]
    assert most.verdict == DEPENDS
    assert "✗ top-1 (published): inception_resnet_v2, 80.10%; inception_v4 80.00%" in (
        most.evidence
    )
    # ResNet no longer has the highest published accuracy.
    resnet = check_observations([*AGREEING, v4], READING_RESNET_FIRST, TRACED)[5]
    assert "✗ top-1 (published): inception_v4, 80.00%; resnet152 78.30%" in resnet.evidence


@pytest.mark.parametrize(
    ("name", "variant", "top1", "source", "read"),
    [
        ("resnet50", "torchvision", 76.13, "torchvision", False),
        ("inception_v4", "paper", 80.0, INCEPTION_V4_TABLE2, False),  # 20.0% top-1 error
        ("inception_resnet_v2", "paper", 80.1, INCEPTION_V4_TABLE2, False),  # 19.9%
        ("bn_nin", "paper", 62.6, "ninbn.lua", False),  # the model file's comment
        ("enet", "paper", 68.0, "BertMoons", True),  # read off the chart
        ("bn_alexnet", "paper", 56.5, "BertMoons", True),
    ],
)
def test_each_accuracy_is_the_one_its_source_publishes(
    name: str, variant: str, top1: float, source: str, read: bool
) -> None:
    accuracy = published_top1(cnnarch.model_card(name), variant)
    assert accuracy is not None
    assert (accuracy.top1, accuracy.read) == (top1, read) and source in accuracy.source


def test_no_accuracy_for_a_network_nothing_is_published_for() -> None:
    assert published_top1(cnnarch.model_card("zfnet"), "paper") is None
    assert published_top1(cnnarch.model_card("resnet50"), "paper") is None  # not those weights
    assert published_top1(cnnarch.model_card("inception_v4"), "timm") is None


def test_the_residual_sentence_counts_what_the_trace_finds() -> None:
    analyses = Analyses(("inception_v4",), 2)
    found = residual_additions(analyses)
    assert found == {
        "Inception-v3": 0,
        "Inception-v4": 0,
        "Inception-ResNet-v1": 20,  # 5 + 10 + 5 blocks (Figure 15)
        "Inception-ResNet-v2": 20,
        "Inception-ResNet-v2 as released (timm's)": 40,  # 10 + 20 + 10
    }
    sentence = residual_sentence(found)
    assert "not residual: Inception-v3, Inception-v4" in sentence
    assert "not Inception-v4, a pure Inception network" in sentence
    assert residual_additions(Analyses(("resnet18",), 2)) is None


def test_a_leader_that_changes_with_the_measure_makes_the_verdict_depend_on_it() -> None:
    # ResNet-152 with more activations and a larger training peak than VGG, as on the page:
    # VGG still has the largest inference peak, so "VGG: highest memory" depends on the measure.
    costs = list(AGREEING)
    costs[4] = replace(costs[4], activation_bytes=int(400e6), training_peak_bytes=int(6000e6))
    vgg = check_observations(costs, READING_RESNET_FIRST)[2]
    assert vgg.verdict == DEPENDS
    assert "forward activations, one image: resnet152" in vgg.evidence
    assert "training peak, batch 1: resnet152" in vgg.evidence
    assert "✓ inference peak, one image: vgg16" in vgg.evidence
    # The chart's own reading puts Inception-v4 (80%) above every ResNet: the most accurate
    # depends on whether the page's measure is torchvision's top-1 or that reading.
    resnet = check_observations(AGREEING, READING_AS_SHIPPED)[5]
    assert resnet.verdict == DEPENDS
    assert "Inception-v4, 80%" in resnet.evidence and "✓ top-1 (published)" in resnet.evidence


def test_each_observation_fails_when_its_premise_is_broken_on_every_measure() -> None:
    costs = list(AGREEING)
    # A ResNet with the most memory of every kind and the most MACs.
    costs[4] = replace(
        costs[4],
        macs=int(30e9),
        activation_bytes=int(900e6),
        inference_peak_bytes=int(2000e6),
        training_peak_bytes=int(9000e6),
    )
    # A heavy, slow GoogLeNet.
    costs[2] = replace(costs[2], params=int(80e6), inference_params=int(80e6), macs=int(40e9))
    result = check_observations(costs, READING_RESNET_FIRST)
    assert result[2].verdict == DOES_NOT_HOLD and result[2].cause is not None
    assert result[3].verdict == DOES_NOT_HOLD


def test_absent_families_cannot_be_judged() -> None:
    only_resnets = [c for c in AGREEING if c.family == "resnet"]
    observations = check_observations(only_resnets, READING_RESNET_FIRST)
    assert [o.verdict for o in observations[2:5]] == [CANNOT_BE_COMPUTED] * 3
    assert "no VGG" in observations[2].evidence
