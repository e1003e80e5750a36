"""The lecture's five observations, tested on made-up costs where the answer is known: each
comparative claim is judged on every measure the page shows, and where the leader changes with
the measure the verdict says so."""

from dataclasses import replace

from cnnarch.lecture.claims import CANNOT_BE_COMPUTED, DEPENDS, DOES_NOT_HOLD, HOLDS
from cnnarch.lecture.comparison import ModelCost, check_observations


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


def verdicts(costs, reading=READING_RESNET_FIRST) -> list[str]:
    return [c.verdict for c in check_observations(costs, reading)]


def test_where_every_measure_agrees_the_last_four_observations_hold() -> None:
    # Observation 1 is about Inception-v4, which is not in the zoo: it cannot be computed,
    # whatever a third-party reading of the figure says.
    observations = check_observations(AGREEING, READING_RESNET_FIRST)
    assert [o.verdict for o in observations] == [CANNOT_BE_COMPUTED, HOLDS, HOLDS, HOLDS, HOLDS]
    # The zoo builds Inception-v4, but no accuracy published for its weights comes with it.
    assert "no accuracy published for weights of that network" in observations[0].evidence
    assert "80% top-1, single crop" in observations[0].evidence
    assert all(o.id.startswith("comparison-") for o in observations)


def test_a_leader_that_changes_with_the_measure_makes_the_verdict_depend_on_it() -> None:
    # ResNet-152 with more activations and a larger training peak than VGG, as on the page:
    # VGG still has the largest inference peak, so "VGG: highest memory" depends on the measure.
    costs = list(AGREEING)
    costs[4] = replace(costs[4], activation_bytes=int(400e6), training_peak_bytes=int(6000e6))
    vgg = check_observations(costs, READING_RESNET_FIRST)[1]
    assert vgg.verdict == DEPENDS
    assert "forward activations, one image: resnet152" in vgg.evidence
    assert "training peak, batch 1: resnet152" in vgg.evidence
    assert "✓ inference peak, one image: vgg16" in vgg.evidence
    # The chart's own reading puts Inception-v4 (80%) above every ResNet: the most accurate
    # depends on whether the page's measure is torchvision's top-1 or that reading.
    resnet = check_observations(AGREEING, READING_AS_SHIPPED)[4]
    assert resnet.verdict == DEPENDS
    assert "Inception-v4, 80%" in resnet.evidence and "✓ top-1 (torchvision's weights)" in (
        resnet.evidence
    )


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
    assert result[1].verdict == DOES_NOT_HOLD and result[1].cause is not None
    assert result[2].verdict == DOES_NOT_HOLD


def test_absent_families_cannot_be_judged() -> None:
    only_resnets = [c for c in AGREEING if c.family == "resnet"]
    observations = check_observations(only_resnets, READING_RESNET_FIRST)
    assert [o.verdict for o in observations[1:4]] == [CANNOT_BE_COMPUTED] * 3
    assert "no VGG" in observations[1].evidence
