"""Every model of the zoo: cards, builds on meta, output shapes, training step, bad input."""

import pytest
import torch

import cnnarch
from cnnarch import CnnarchError
from cnnarch.zoo.registry import min_input_size

IMAGENET = [
    "alexnet",
    "zfnet",
    *("vgg11", "vgg11_lrn", "vgg13", "vgg16_c", "vgg16", "vgg19"),
    *("vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"),
    "googlenet",
    "inception_v3",
    *("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "plain18", "plain34"),
    *("inception_v4", "inception_resnet_v1", "inception_resnet_v2"),
    *("nin", "bn_alexnet", "bn_nin", "enet"),
]
# The models with a variant shaped like another library's, and that library.
LIBRARY_VARIANT = {
    **dict.fromkeys(("alexnet", "vgg11", "vgg13", "vgg16", "vgg19"), "torchvision"),
    **dict.fromkeys(("vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"), "torchvision"),
    **dict.fromkeys(("googlenet", "inception_v3"), "torchvision"),
    **dict.fromkeys(("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"), "torchvision"),
    **dict.fromkeys(("inception_v4", "inception_resnet_v2"), "timm"),
}
CIFAR = ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet1202"]
CIFAR += ["plain20", "plain32", "plain44", "plain56", "plain110"]
# Seconds each even on meta; their blocks are resnet50's, which the fast tests cover.
DEEPEST = ("resnet101", "resnet152")
ALL_VARIANTS = [
    pytest.param(name, v, marks=pytest.mark.slow) if name in DEEPEST else (name, v)
    for name in IMAGENET
    for v in ("paper", LIBRARY_VARIANT.get(name, "torchvision"))
]


def test_every_model_of_the_spec_is_registered_once() -> None:
    assert sorted(cnnarch.list_models()) == sorted(IMAGENET + CIFAR)
    assert cnnarch.list_models("vgg1?") == ["vgg11", "vgg13", "vgg16", "vgg19"]


@pytest.mark.parametrize("name", IMAGENET)
def test_cards_name_the_paper_input_and_published_facts(name: str) -> None:
    card = cnnarch.model_card(name)
    side = 227 if name == "alexnet" else 299 if name.startswith("inception") else 224
    assert card.input_size == (3, side, side) and card.num_classes == 1000
    assert card.paper.year in (2012, 2013, 2014, 2015, 2016) and card.paper.title
    assert "source" in card.published
    library = LIBRARY_VARIANT.get(name)
    assert card.variants == (("paper", library) if library else ("paper",))
    if library == "torchvision":
        assert card.published["torchvision"]["source"].startswith("torchvision 0.29")


@pytest.mark.parametrize(("name", "variant"), ALL_VARIANTS)
def test_builds_on_meta_and_trains_at_the_default_input(name: str, variant: str) -> None:
    """Output shapes at the paper's input, eval and training (with the auxiliary heads), and a
    backward pass reaching every parameter: all on meta tensors, so no memory and no compute."""
    card = cnnarch.model_card(name)
    if variant not in card.variants:
        with pytest.raises(CnnarchError, match=f"has no variant '{variant}'"):
            cnnarch.create_model(name, variant=variant)
        return
    with torch.device("meta"):
        model = cnnarch.create_model(name, variant=variant, num_classes=17)
    assert all(p.is_meta for p in model.parameters())
    x = torch.empty(2, *card.input_size, device="meta")
    assert model.eval()(x).shape == (2, 17)
    out = model.train()(x)
    outputs = list(out) if isinstance(out, tuple) else [out]
    heads = {"googlenet": 3, "inception_v3": 2}.get(name, 1)
    assert [o.shape for o in outputs] == [(2, 17)] * heads
    sum(o.sum() for o in outputs).backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.slow) if name.endswith("110") else name
        for name in CIFAR
        if name != "resnet1202"
    ],
)
def test_cifar_nets_train_on_meta(name: str) -> None:
    # resnet1202 is left out: the same blocks as resnet110, but seconds even on meta.
    with torch.device("meta"):
        model = cnnarch.create_model(name).train()
    model(torch.empty(2, 3, 32, 32, device="meta")).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def smallest_input(out: int, layers: list[tuple[int, int, int]]) -> int:
    """Smallest input side giving `out` after floor-rounded (kernel, stride, padding) layers,
    listed last layer first."""
    for kernel, stride, padding in layers:
        out = (out - 1) * stride + kernel - 2 * padding
    return out


MIN_INPUT = {
    # pool5 must give 6x6 for FC6: pool5, conv5-3 (same), pool2, conv2 (same), pool1, conv1.
    ("alexnet", "paper"): smallest_input(6, [(3, 2, 0), (3, 2, 0), (3, 2, 0), (11, 4, 0)]),
    # torchvision's adaptive pool needs one pixel: the same chain from 1, conv1 padded by 2.
    ("alexnet", "torchvision"): smallest_input(1, [(3, 2, 0), (3, 2, 0), (3, 2, 0), (11, 4, 2)]),
    # Five 2x2/2 pools.
    ("vgg16", "paper"): smallest_input(7, [(2, 2, 0)] * 5),
    ("vgg16", "torchvision"): smallest_input(1, [(2, 2, 0)] * 5),
    # Every conv and pool is padded: any side works.
    ("resnet18", "paper"): 1,
}


@pytest.mark.parametrize(("name", "variant"), list(MIN_INPUT))
def test_minimum_input_size_is_derived_from_the_architecture(name: str, variant: str) -> None:
    assert min_input_size(name, variant) == MIN_INPUT[name, variant]


def test_minimum_input_values() -> None:
    assert [MIN_INPUT[k] for k in MIN_INPUT] == [227, 63, 224, 32, 1]


@pytest.mark.parametrize(
    ("name", "side", "smallest"),
    [("alexnet", 226, 227), ("vgg19_bn", 223, 224), ("googlenet", 222, 223), ("zfnet", 206, 207)],
)
def test_too_small_input_names_the_minimum(name: str, side: int, smallest: int) -> None:
    with torch.device("meta"):
        model = cnnarch.create_model(name).eval()
    with pytest.raises(CnnarchError, match=f"accepts is {smallest}x{smallest}"):
        model(torch.empty(1, 3, side, side, device="meta"))
    assert model(torch.empty(1, 3, smallest, smallest, device="meta")).shape == (1, 1000)


def test_wrong_channels_and_shape_are_clear_errors() -> None:
    with torch.device("meta"):
        model = cnnarch.create_model("resnet50", in_channels=1)
        with pytest.raises(CnnarchError, match="expected 1 input channels, got 3"):
            model(torch.empty(1, 3, 224, 224))
        with pytest.raises(CnnarchError, match=r"expected a batch of images \(N, C, H, W\)"):
            model(torch.empty(3, 224, 224))


def test_unknown_names_and_options_are_clear_errors() -> None:
    with pytest.raises(CnnarchError, match="did you mean vgg19, vgg16, vgg13"):
        cnnarch.create_model("vgg61")
    with pytest.raises(CnnarchError, match="no option 'devices'"):
        cnnarch.create_model("vgg16", devices=("cpu", "cpu"))


# Real arithmetic on the CPU for one model of each kind of block (the meta test above covers
# every model's graph): (name, variant, input side, options). Nets with fixed-size heads need
# their full input; the others run small. The numerical equality of the torchvision variants
# with torchvision itself was checked outside the test suite (torchvision is no dependency).
SLOW = pytest.mark.slow
TRAIN_STEP = [
    pytest.param("alexnet", "paper", 227, {}, marks=SLOW),  # two towers, LRN, dense head
    pytest.param("vgg11_bn", "torchvision", 32, {}, marks=SLOW),
    pytest.param("googlenet", "paper", 224, {}, marks=SLOW),  # with both auxiliary heads
    # bottlenecks, zero-padding shortcuts
    pytest.param("resnet50", "paper", 32, {"shortcut": "A"}, marks=SLOW),
    pytest.param("plain18", "paper", 32, {}, marks=SLOW),
    pytest.param("inception_resnet_v1", "paper", 75, {}, marks=SLOW),  # scaled residuals
    pytest.param("nin", "paper", 64, {}, marks=SLOW),  # mlpconv, global average pooling
    pytest.param("enet", "paper", 64, {}, marks=SLOW),  # PReLU, padded shortcuts
]


@pytest.mark.parametrize(("name", "variant", "side", "options"), TRAIN_STEP)
def test_forward_and_backward_on_a_small_batch(
    name: str, variant: str, side: int, options: dict
) -> None:
    torch.manual_seed(0)
    model = cnnarch.create_model(name, variant=variant, num_classes=5, **options).train()
    has_bn = any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    batch = 2 if has_bn else 1  # batch norm needs two values per channel on 1x1 maps
    out = model(torch.randn(batch, 3, side, side))
    outputs = list(out) if isinstance(out, tuple) else [out]
    assert all(o.shape == (batch, 5) for o in outputs)
    sum(o.square().mean() for o in outputs).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
