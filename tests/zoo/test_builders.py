"""Each model is an explicit, documented builder function, registered under its own name, that
takes exactly the options it documents; the zoo's modules import one way only."""

import ast
import importlib
import inspect
from pathlib import Path

import pytest
import torch

import cnnarch
from cnnarch import CnnarchError
from cnnarch.zoo.registry import _entry, model_builder
from cnnarch.zoo.resnet import BasicBlock, Bottleneck
from cnnarch.zoo.vgg import vgg11

ZOO = Path(cnnarch.__file__).parent / "zoo"

# The options each model takes besides variant, num_classes and in_channels, by family.
RESNET = ("shortcut", "zero_init_residual")
GOOGLENET = ("aux_logits", "transform_input", "dropout", "dropout_aux")
OPTIONS = {
    "alexnet": ("dropout", "devices"),
    "zfnet": ("dropout",),
    "googlenet": GOOGLENET,
    "inception_v3": ("aux_logits", "transform_input", "dropout"),
    **dict.fromkeys(("inception_v4", "inception_resnet_v1", "inception_resnet_v2"), ("dropout",)),
    **dict.fromkeys(("nin", "bn_alexnet"), ("dropout",)),
    **{f"resnet{depth}": RESNET for depth in (18, 34, 50, 101, 152)},
    **{f"plain{depth}": RESNET for depth in (18, 34)},
}


def options_of(name: str) -> tuple[str, ...]:
    if name.startswith("vgg"):
        return ("dropout",)
    return OPTIONS.get(name, ())  # the CIFAR nets have none


def test_models_are_listed_in_the_order_their_papers_appeared() -> None:
    assert cnnarch.list_models() == [
        *("alexnet", "zfnet", "nin", "vgg11", "vgg11_lrn", "vgg13", "vgg16_c", "vgg16", "vgg19"),
        *("vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn", "googlenet", "inception_v3"),
        *("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "plain18", "plain34"),
        *("resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet1202"),
        *("plain20", "plain32", "plain44", "plain56", "plain110"),
        *("inception_v4", "inception_resnet_v1", "inception_resnet_v2"),  # arXiv 1602
        *("bn_alexnet", "bn_nin", "enet"),  # Canziani et al. (1605), ENet (1606)
    ]


@pytest.mark.parametrize("name", cnnarch.list_models())
def test_each_model_is_a_documented_function_of_its_own_name(name: str) -> None:
    builder = model_builder(name)
    module = importlib.import_module(builder.__module__)
    assert inspect.isfunction(builder) and builder.__name__ == name
    assert getattr(module, name) is builder  # importable by name from its family's module
    assert f"\ndef {name}(" in Path(inspect.getfile(module)).read_text()  # and greppable
    assert builder.__doc__ and builder.__doc__.startswith(cnnarch.model_card(name).description)
    assert inspect.signature(builder).parameters["variant"].default == "paper"


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.slow)
        if name in ("resnet101", "resnet152", "resnet1202")  # seconds each, even on meta
        else name
        for name in cnnarch.list_models()
    ],
)
def test_a_builder_called_directly_builds_what_create_model_builds(name: str) -> None:
    # The builders' defaults (1000 or 10 classes, 3 channels) are the card's.
    with torch.device("meta"):
        direct = model_builder(name)()
        registered = cnnarch.create_model(name)
    assert type(direct) is type(registered)
    assert {k: v.shape for k, v in direct.state_dict().items()} == {
        k: v.shape for k, v in registered.state_dict().items()
    }
    # Every option the registry lets through is a parameter of the builder or of the model
    # class it forwards `**kwargs` to (declared with `register_model(options=...)`).
    accepted = {*inspect.signature(model_builder(name)).parameters}
    accepted |= {*inspect.signature(type(registered)).parameters}
    assert set(_entry(name).options) <= accepted


@pytest.mark.parametrize("name", cnnarch.list_models())
def test_unknown_options_are_refused_with_the_list_of_known_ones(name: str) -> None:
    known = ", ".join(options_of(name)) or "none"
    with pytest.raises(CnnarchError, match=f"has no option 'color'; its options: {known}$"):
        cnnarch.create_model(name, color="red")


def test_structure_that_a_builder_fixes_is_no_option() -> None:
    for name, fixed in [("resnet50", "depth"), ("vgg16", "batch_norm"), ("resnet20", "residual")]:
        with pytest.raises(CnnarchError, match=f"has no option '{fixed}'"):
            cnnarch.create_model(name, **{fixed: 1})
    with pytest.raises(CnnarchError, match="has no option 'stride_in_1x1'"):
        cnnarch.create_model("resnet50", stride_in_1x1=False)


def test_blocks_refuse_unknown_keyword_arguments() -> None:
    with pytest.raises(TypeError, match="stride_in_1x1"):
        BasicBlock(64, 64, 1, "B", stride_in_1x1=True)
    with pytest.raises(TypeError, match="color"):
        Bottleneck(256, 64, 1, "B", color="red")


def test_a_direct_call_with_an_unknown_variant_is_a_clear_error() -> None:
    with pytest.raises(CnnarchError, match="no variant 'tv'; the variants are: paper, torchvision"):
        model_builder("resnet50")(variant="tv")
    with pytest.raises(CnnarchError, match="no variant 'torchvision'; the variants are: paper"):
        model_builder("resnet20")(variant="torchvision")


def test_a_model_built_directly_names_its_smallest_input_and_hooks_miss_the_search() -> None:
    with torch.device("meta"):
        model = vgg11().eval()
    calls = []
    model.classifier.register_forward_hook(lambda *_: calls.append(1))
    with pytest.raises(CnnarchError, match="accepts is 224x224"):
        model(torch.empty(1, 3, 223, 223, device="meta"))
    assert calls == []  # the failed pass never reached the classifier; the size search did
    assert model.min_input_side() == 224


def zoo_imports(module: str) -> set[str]:
    tree = ast.parse((ZOO / f"{module}.py").read_text())
    return {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cnnarch")
    }


def test_zoo_modules_import_one_way() -> None:
    # common and layers are below the registry; the registry imports no family. The zoo may
    # use the analysis package (its smallest-input search), never the reverse.
    assert zoo_imports("common") == {"cnnarch.errors", "cnnarch.analysis.smallest"}
    assert zoo_imports("layers") == set()
    assert zoo_imports("registry") == {"cnnarch.errors", "cnnarch.zoo.common"}
