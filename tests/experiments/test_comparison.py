"""The lecture's five observations, tested on made-up costs where the answer is known."""

from dataclasses import replace

from cnnarch.experiments.comparison import ModelCost, check_observations


def cost(
    name: str,
    family: str,
    params_m: float,
    gmacs: float,
    top1: float | None,
    activations_mb: float = 10.0,
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
        param_bytes=4 * params,
        training_peak_bytes=None,
        batch=1,
        top1=top1,
    )


LECTURE_LIKE = [
    cost("alexnet", "alexnet", 61, 0.7, 56.5, 2),
    cost("vgg16", "vgg", 138, 15.5, 71.6, 60),
    cost("googlenet", "googlenet", 6.6, 1.5, 69.8, 30),
    cost("resnet50", "resnet", 25.6, 4.1, 76.1, 100),
    cost("resnet152", "resnet", 60.2, 11.5, 78.3, 230),
]


def verdicts(costs) -> list:
    return [o.holds for o in check_observations(costs)]


def test_lecture_like_numbers_confirm_the_last_four_observations() -> None:
    # Observation 1 is about Inception-v4, which is not in the zoo: it cannot be computed,
    # whatever a third-party reading of the figure says.
    observations = check_observations(LECTURE_LIKE)
    assert [o.holds for o in observations] == [None, True, True, True, True]
    assert observations[0].evidence.startswith("Inception-v4 is not in this zoo")


def test_each_observation_fails_when_its_premise_is_broken() -> None:
    costs = list(LECTURE_LIKE)
    costs[1] = replace(costs[1], macs=int(0.5e9))  # VGG no longer has the most operations
    costs[2] = replace(costs[2], params=int(80e6), inference_params=int(80e6))  # heavy GoogLeNet
    costs[0] = replace(costs[0], top1=80.0)  # AlexNet suddenly the most accurate
    result = verdicts(costs)
    assert result[1] is False
    assert result[2] is False
    assert result[3] is False
    assert result[4] is False  # a ResNet is no longer the most accurate


def test_absent_families_cannot_be_judged() -> None:
    only_resnets = [c for c in LECTURE_LIKE if c.family == "resnet"]
    observations = check_observations(only_resnets)
    assert [o.holds for o in observations[1:4]] == [None, None, None]
    assert "no VGG" in observations[1].evidence
