"""The torchvision variants against torchvision 0.29's state_dicts (keys, shapes, totals).

`data/torchvision_state_dicts.json` lists every state_dict key and shape of torchvision's models
(GoogLeNet and Inception-v3 with their auxiliary heads), their parameter totals, and the totals
without the auxiliary heads.
"""

import json
from pathlib import Path

import pytest
import torch

import cnnarch

REFERENCE = json.loads(
    (Path(__file__).parent / "data" / "torchvision_state_dicts.json").read_text()
)
TORCHVISION_MODELS = list(REFERENCE)


def meta_model(name: str, **kwargs):
    with torch.device("meta"):
        return cnnarch.create_model(name, **kwargs)


def shapes(model: torch.nn.Module) -> dict[str, list[int]]:
    return {key: list(value.shape) for key, value in model.state_dict().items()}


def test_reference_covers_every_torchvision_variant() -> None:
    with_variant = [
        name for name in cnnarch.list_models() if "torchvision" in cnnarch.model_card(name).variants
    ]
    assert sorted(with_variant) == sorted(TORCHVISION_MODELS)
    assert len(TORCHVISION_MODELS) == 16


@pytest.mark.parametrize("name", TORCHVISION_MODELS)
def test_state_dict_keys_and_shapes_equal_torchvision(name: str) -> None:
    model = meta_model(name, variant="torchvision")
    expected = REFERENCE[name]["state_dict"]
    assert shapes(model) == expected
    assert list(model.state_dict()) == list(expected)  # same order, too
    assert sum(p.numel() for p in model.parameters()) == REFERENCE[name]["params"]


@pytest.mark.parametrize("name", ["googlenet", "inception_v3"])
def test_without_aux_heads_params_match_torchvision(name: str) -> None:
    model = meta_model(name, variant="torchvision", aux_logits=False)
    assert sum(p.numel() for p in model.parameters()) == REFERENCE[name]["params_without_aux"]


@pytest.mark.parametrize(
    "name",
    [
        # Loading 40M or more parameters of zeros takes seconds.
        pytest.param(name, marks=pytest.mark.slow)
        if REFERENCE[name]["params"] >= 40_000_000
        else name
        for name in TORCHVISION_MODELS
    ],
)
def test_a_checkpoint_with_the_reference_shapes_loads_strictly(name: str) -> None:
    model = meta_model(name, variant="torchvision")
    checkpoint = {
        key: torch.zeros(shape, dtype=torch.long if key.endswith("num_batches_tracked") else None)
        for key, shape in REFERENCE[name]["state_dict"].items()
    }
    result = model.load_state_dict(checkpoint, strict=True, assign=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert all(p.device.type == "cpu" for p in model.parameters())  # really loaded


@pytest.mark.parametrize(
    "name",
    [
        *("vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"),
        *("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"),
    ],
)
def test_paper_variants_take_torchvision_checkpoints(name: str) -> None:
    # Same layers in the same places (VGG without the adaptive pool, which holds no
    # parameters; ResNet with option-B shortcuts and its stride elsewhere).
    assert shapes(meta_model(name)) == REFERENCE[name]["state_dict"]


@pytest.mark.slow
def test_torchvision_weights_in_the_paper_vgg_give_the_same_output_at_224() -> None:
    torch.manual_seed(0)
    torchvision_style = cnnarch.create_model("vgg11", variant="torchvision", num_classes=10).eval()
    paper = cnnarch.create_model("vgg11", num_classes=10).eval()
    paper.load_state_dict(torchvision_style.state_dict(), strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(paper(x), torchvision_style(x), rtol=0, atol=0)
