"""AlexNet (two towers, LRN, two devices) and ZFNet, checked against their papers."""

import pytest
import torch
from torch import nn

import cnnarch
from cnnarch import CnnarchError
from cnnarch.zoo.layers import local_response_norm


def conv(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + c_out


def linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


# Section 3.5 / Figure 2: per tower 48, 128, 192, 192, 128 kernels of 11x11x3, 5x5x48, 3x3x256
# (both towers), 3x3x192, 3x3x192; FC 2 x 2048, 2 x 2048, 1000 over all of the layer below.
ALEXNET_LAYERS = {
    "conv1": 2 * conv(3, 48, 11),
    "conv2": 2 * conv(48, 128, 5),
    "conv3": 2 * conv(256, 192, 3),
    "conv4": 2 * conv(192, 192, 3),
    "conv5": 2 * conv(192, 128, 3),
    "fc6": 2 * linear(6 * 6 * 256, 2048),
    "fc7": 2 * linear(4096, 2048),
    "fc8": linear(4096, 1000),
}


def test_alexnet_parameters_per_layer_and_the_papers_60_million() -> None:
    with torch.device("meta"):
        model = cnnarch.create_model("alexnet")
    for layer, expected in ALEXNET_LAYERS.items():
        counted = sum(
            p.numel() for name, p in model.named_parameters() if f".{layer}." in f".{name}"
        )
        assert counted == expected, layer
    total = sum(ALEXNET_LAYERS.values())
    assert total == 60_965_224
    assert sum(p.numel() for p in model.parameters()) == total
    # The paper's "60 million" is a round figure: the derived count is 61.0 million.
    assert cnnarch.model_card("alexnet").published["params"] == "60 million"
    assert round(total / 1e6) == 61


def test_alexnet_neurons_per_layer_against_figure_2() -> None:
    with torch.device("meta"):
        model = cnnarch.create_model("alexnet").eval()
    sizes: dict[str, int] = {}

    def record(name: str):
        def hook(_module, _inputs, output) -> None:
            sizes[name] = sizes.get(name, 0) + output[0].numel()  # per image, both towers

        return hook

    for name, module in model.named_modules():
        leaf = name.split(".")[-1]
        if leaf in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc8") or name.endswith(
            ("fc6.0", "fc7.0")
        ):
            module.register_forward_hook(record(leaf if leaf != "0" else name.split(".")[-2]))
    model(torch.empty(1, 3, 227, 227, device="meta"))
    derived = [55 * 55 * 96, 27 * 27 * 256, 13 * 13 * 384, 13 * 13 * 384, 13 * 13 * 256]
    derived += [4096, 4096, 1000]
    layers = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    assert [sizes[layer] for layer in layers] == derived
    printed = cnnarch.zoo.registry.published()["alexnet_paper"]["fig2_neurons_per_layer_as_printed"]
    # Figure 2 agrees except for conv1, where it prints 253,440 instead of 290,400.
    assert printed[1:] == derived[1:]
    assert (printed[0], derived[0]) == (253_440, 290_400)
    # "650,000 neurons": the derived total is 659,272.
    assert round(sum(derived), -4) == 660_000


def test_tower_kernels_are_the_papers() -> None:
    with torch.device("meta"):
        tower = cnnarch.create_model("alexnet").towers[1]
    assert tower.conv1.weight.shape == (48, 3, 11, 11)
    assert tower.conv2.weight.shape == (128, 48, 5, 5)  # "256 kernels of size 5x5x48"
    assert tower.conv3.weight.shape == (192, 256, 3, 3)  # "384 kernels of size 3x3x256"
    assert tower.conv4.weight.shape == (192, 192, 3, 3)
    assert tower.conv5.weight.shape == (128, 192, 3, 3)


@pytest.mark.slow
def test_towers_talk_only_at_conv3_and_the_fc_layers() -> None:
    torch.manual_seed(0)
    model = cnnarch.create_model("alexnet", num_classes=10).eval()
    outputs: dict[str, torch.Tensor] = {}
    first = model.towers[0]
    for name in ("conv2", "conv3", "conv4", "conv5"):
        getattr(first, name).register_forward_hook(
            lambda _m, _i, out, name=name: outputs.__setitem__(name, out.clone())
        )
    first.fc6[0].register_forward_hook(lambda _m, _i, out: outputs.__setitem__("fc6", out.clone()))
    x = torch.randn(1, 3, 227, 227)

    def run() -> dict[str, torch.Tensor]:
        with torch.no_grad():
            model(x)
        return dict(outputs)

    base = run()
    with torch.no_grad():
        model.towers[1].conv1.weight.mul_(2)  # change only the second tower's lower half
    changed = run()
    assert torch.equal(base["conv2"], changed["conv2"])  # conv2 sees its own tower only
    assert not torch.equal(base["conv3"], changed["conv3"])  # conv3 sees both
    with torch.no_grad():
        model.towers[1].conv1.weight.div_(2)
        model.towers[1].conv4.weight.mul_(2)  # now only the second tower's conv4
    changed = run()
    assert torch.equal(base["conv3"], changed["conv3"])
    assert torch.equal(base["conv5"], changed["conv5"])  # conv4/conv5 see their own tower
    assert not torch.equal(base["fc6"], changed["fc6"])  # fc6 sees both


@pytest.mark.slow
def test_two_devices_give_the_single_device_output() -> None:
    torch.manual_seed(0)
    single = cnnarch.create_model("alexnet", num_classes=10)
    split = cnnarch.create_model("alexnet", num_classes=10, devices=("cpu", "cpu"))
    split.load_state_dict(single.state_dict(), strict=True)
    assert [str(d) for d in split.tower_devices()] == ["cpu", "cpu"]
    x = torch.randn(1, 3, 227, 227)
    with torch.no_grad():
        torch.testing.assert_close(split.eval()(x), single.eval()(x), rtol=0, atol=0)


def test_bad_devices_are_clear_errors() -> None:
    with pytest.raises(CnnarchError, match="pair"):
        cnnarch.create_model("alexnet", devices="cpu")
    with pytest.raises(CnnarchError, match="bad device"):
        cnnarch.create_model("alexnet", devices=("cpu", "gpu7"))
    with pytest.raises(CnnarchError, match="paper variant"):
        cnnarch.create_model("alexnet", variant="torchvision", devices=("cpu", "cpu"))


def test_lrn_computes_the_papers_formula() -> None:
    # b_i = a_i / (k + alpha * sum_{j=i-2..i+2} a_j^2)^beta, k=2, alpha=1e-4, beta=0.75.
    a = torch.arange(1.0, 8.0).reshape(1, 7, 1, 1) * 10
    b = local_response_norm()(a)
    values = a.flatten().tolist()
    for i in range(7):
        window = values[max(0, i - 2) : i + 3]
        expected = values[i] / (2 + 1e-4 * sum(v * v for v in window)) ** 0.75
        assert b.flatten()[i].item() == pytest.approx(expected, rel=1e-6)


def test_zfnet_layer_sizes_follow_figure_3() -> None:
    with torch.device("meta"):
        model = cnnarch.create_model("zfnet").eval()
    sizes = []
    for module in model.features:
        if isinstance(module, (nn.Conv2d, nn.MaxPool2d)):
            module.register_forward_hook(lambda _m, _i, out: sizes.append(tuple(out.shape[1:])))
    assert model(torch.empty(1, 3, 224, 224, device="meta")).shape == (1, 1000)
    # conv1 7x7/2 -> 110, pool -> 55, conv2 5x5/2 -> 26, pool -> 13, conv3-5, pool -> 6;
    # widths as the lecture states: 96, 256, 512, 1024, 512.
    assert sizes == [
        (96, 110, 110),
        (96, 55, 55),
        (256, 26, 26),
        (256, 13, 13),
        (512, 13, 13),
        (1024, 13, 13),
        (512, 13, 13),
        (512, 6, 6),
    ]
    total = conv(3, 96, 7) + conv(96, 256, 5) + conv(256, 512, 3) + conv(512, 1024, 3)
    total += conv(1024, 512, 3) + linear(6 * 6 * 512, 4096) + linear(4096, 4096)
    total += linear(4096, 1000)
    assert sum(p.numel() for p in model.parameters()) == total


# "One weird trick" AlexNet, torchvision's: 64, 192, 384, 256, 256 kernels; FC 4096, 4096.
OWT_CONVS = [(3, 64, 11), (64, 192, 5), (192, 384, 3), (384, 256, 3), (256, 256, 3)]
OWT = sum(conv(*c) for c in OWT_CONVS) + linear(9216, 4096) + linear(4096, 4096)
OWT += linear(4096, 1000)


def test_bn_alexnet_is_one_weird_trick_alexnet_with_batch_norm() -> None:
    # A scale and a shift per conv map and per hidden unit of FC6 and FC7.
    batch_norm = 2 * sum(c_out for _, c_out, _ in OWT_CONVS) + 2 * 2 * 4096
    assert OWT == 61_100_840  # torchvision's count
    with torch.device("meta"):
        model = cnnarch.create_model("bn_alexnet")
    assert sum(p.numel() for p in model.parameters()) == OWT + batch_norm == 61_119_528
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d)]
    assert len(norms) == 7 and all(m.eps == 1e-3 for m in norms)
    # Batch norm adds no multiply-accumulate: the MACs are torchvision AlexNet's at 224.
    bn = cnnarch.analyze("bn_alexnet")
    owt = cnnarch.analyze("alexnet", variant="torchvision", input_size=(3, 224, 224))
    assert bn.total_macs == owt.total_macs
    figures = cnnarch.model_card("bn_alexnet").published["figures_as_read"]
    assert figures["top-1 %"] == 56.5
    assert "alexnetowtbn" in cnnarch.model_card("bn_alexnet").published["definition"]


def test_bn_alexnet_evaluates_larger_inputs_densely() -> None:
    torch.manual_seed(0)
    model = cnnarch.create_model("bn_alexnet", num_classes=5).eval()
    x = torch.randn(1, 3, 256, 256)  # pool5 is 7x7: four 6x6 windows
    with torch.no_grad():
        features = model.features(x)
        windows = [features[:, :, i : i + 6, j : j + 6] for i in (0, 1) for j in (0, 1)]
        expected = torch.stack([model.classifier(w.flatten(1)) for w in windows]).mean(0)
        torch.testing.assert_close(model(x), expected)
    # pool5 6x6 <- pools 3x3/2 and convs keeping the size <- conv1 55x55: (55 - 1) * 4 + 11 - 4.
    with pytest.raises(CnnarchError, match="smallest input this model accepts is 223x223"):
        model(torch.randn(1, 3, 222, 222))
