"""GoogLeNet against Table 1 of Szegedy et al. 2015 (as transcribed in published.json)."""

import pytest
import torch
from torch import nn

import cnnarch
from cnnarch.zoo.googlenet import GoogLeNetOutput, GoogLeNetOutputs
from cnnarch.zoo.registry import published

ROWS = published()["googlenet_paper"]["rows"]


def depth_of(output: str) -> int:
    return int(output.split("x")[-1])


def table1_weights() -> dict[str, int]:
    """Weights (no biases) of each row with parameters, from the row's own filter counts."""
    derived: dict[str, int] = {}
    channels = 3
    for kind, patch, output, _depth, c1, r3, c3, r5, c5, proj, *_ in ROWS:
        if kind == "convolution" and patch == "7x7/2":
            derived["conv1"] = 7 * 7 * channels * 64
        elif kind == "convolution":  # 1x1 reduce to 64, then 3x3 to 192
            derived["conv2"] = channels * r3 + 3 * 3 * r3 * c3
        elif kind.startswith("inception"):
            name = kind.split("(")[1].rstrip(")")
            derived[name] = (
                channels * c1 + channels * r3 + 9 * r3 * c3 + channels * r5 + 25 * r5 * c5
            ) + channels * proj
            assert depth_of(output) == c1 + c3 + c5 + proj  # the table's own output depth
        elif kind == "linear":
            derived["linear"] = channels * 1000
        if output.count("x") == 2:
            channels = depth_of(output)
    return derived


def printed_k() -> dict[str, float]:
    names = {"convolution": None, "linear": "linear"}
    printed: dict[str, float] = {}
    for row in ROWS:
        kind, patch, params = row[0], row[1], row[10]
        if params is None:
            continue
        name = names.get(kind) or kind.split("(")[-1].rstrip(")")
        if kind == "convolution":
            name = "conv1" if patch == "7x7/2" else "conv2"
        printed[name] = float(params.rstrip("K"))
    return printed


def meta(**kwargs) -> nn.Module:
    with torch.device("meta"):
        return cnnarch.create_model("googlenet", **kwargs)


def weights(module: nn.Module) -> int:
    return sum(p.numel() for name, p in module.named_parameters() if name.endswith("weight"))


def test_each_table1_row_has_the_weights_its_filter_counts_give() -> None:
    model = meta()
    derived = table1_weights()
    assert weights(model.conv1) == derived["conv1"] == 9408
    assert weights(model.conv2) + weights(model.conv3) == derived["conv2"] == 114_688
    for name in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"):
        assert weights(getattr(model, f"inception{name}")) == derived[name], name
    assert weights(model.fc) == derived["linear"] == 1_024_000
    assert derived["3a"] == 163_328 and derived["5b"] == 1_442_816


def test_which_table1_params_agree_with_the_tables_own_filter_counts() -> None:
    derived = {name: count / 1024 for name, count in table1_weights().items()}  # K = 1024
    printed = printed_k()
    agree = {name for name in printed if abs(derived[name] - printed[name]) <= 0.01 * printed[name]}
    assert agree == {"conv2", "3a", "3b", "4a", "4b", "4e", "linear"}
    # The rest are printed wrong (the googlenet module docstring lists them):
    assert round(derived["conv1"], 1) == 9.2 and printed["conv1"] == 2.7
    assert (derived["4c"], printed["4c"]) == (497.5, 463)
    assert (derived["4d"], printed["4d"]) == (590.5, 580)
    assert (round(derived["5a"]), printed["5a"]) == (1018, 1072)
    assert (round(derived["5b"]), printed["5b"]) == (1409, 1388)


def aux_params(in_channels: int) -> int:
    return (in_channels * 128 + 128) + (2048 * 1024 + 1024) + (1024 * 1000 + 1000)


def test_total_parameters_with_and_without_the_auxiliary_heads() -> None:
    derived = table1_weights()
    biases = 64 + 64 + 192 + 1000
    biases += sum(
        c1 + r3 + c3 + r5 + c5 + proj
        for kind, _, _, _, c1, r3, c3, r5, c5, proj, *_ in ROWS
        if kind.startswith("inception")
    )
    main = sum(derived.values()) + biases
    assert main == 6_998_552
    assert sum(p.numel() for p in meta(aux_logits=False).parameters()) == main
    assert sum(p.numel() for p in meta().parameters()) == main + aux_params(512) + aux_params(528)
    # "12x fewer parameters than AlexNet" (Section 1): the architectures give 8.7x.
    assert round(60_965_224 / main, 1) == 8.7


def test_paper_structure_lrn_real_5x5_no_batch_norm() -> None:
    model = meta()
    assert isinstance(model.norm1, nn.LocalResponseNorm)
    assert isinstance(model.norm2, nn.LocalResponseNorm)
    assert model.inception3a.branch3[1].conv.kernel_size == (5, 5)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert model.dropout.p == 0.4 and model.aux1.dropout.p == 0.7
    assert (model.aux1.pool.kernel_size, model.aux1.pool.stride) == (5, 3)
    torchvision_style = meta(variant="torchvision")
    assert torchvision_style.inception3a.branch3[1].conv.kernel_size == (3, 3)
    assert torchvision_style.dropout.p == 0.2


@pytest.mark.parametrize("variant", ["paper", "torchvision"])
def test_training_mode_returns_the_auxiliary_logits(variant: str) -> None:
    model = meta(variant=variant, num_classes=10)
    x = torch.empty(2, 3, 224, 224, device="meta")
    out = model.train()(x)
    assert [t.shape for t in out] == [(2, 10)] * 3
    if variant == "paper":
        assert isinstance(out, GoogLeNetOutput) and out._fields == ("logits", "aux1", "aux2")
    else:
        assert isinstance(out, GoogLeNetOutputs)
        assert out._fields == ("logits", "aux_logits2", "aux_logits1")
    assert model.eval()(x).shape == (2, 10)
    no_aux = meta(variant=variant, num_classes=10, aux_logits=False).train()
    assert no_aux.aux1 is None and no_aux.aux2 is None
    assert no_aux(x).shape == (2, 10)


def test_paper_minimum_input_is_derived_from_the_pools() -> None:
    # The 7x7/1 average pool needs 7x7 (5b); back through the ceil-mode 3x3/2 pools
    # (n -> ceil((n - 3) / 2) + 1) and the 7x7/2 pad-3 conv: 14, 28, 56, 112, then 223.
    side = 7
    for _ in range(4):
        side = (side - 2) * 2 + 3 + 1  # smallest input a ceil-mode 3x3/2 pool maps to `side`
    side = (side - 1) * 2 + 7 - 2 * 3
    assert side == 223
    assert cnnarch.model_card("googlenet").min_input_size == side
