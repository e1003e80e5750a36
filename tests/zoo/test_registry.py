"""The registry in the words timm and torchvision users know: `in_chans`, `list_models(filter,
exclude_filters)`, `get_model(name, weights=...)`, `pretrained=`; weights from a file on disk;
options declared explicitly; card facts read when a card is first asked for."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import cnnarch
from cnnarch import CnnarchError
from cnnarch.zoo import get_model
from cnnarch.zoo.registry import _options

REFERENCE = json.loads(
    (Path(__file__).parent / "data" / "torchvision_state_dicts.json").read_text()
)


def test_in_chans_is_timms_name_for_in_channels() -> None:
    with torch.device("meta"):
        model = cnnarch.create_model("resnet18", in_chans=1)
        assert model.conv1.weight.shape == (64, 1, 7, 7)
        same = cnnarch.create_model("resnet18", in_chans=1, in_channels=1)
        assert same.conv1.weight.shape == (64, 1, 7, 7)
        with pytest.raises(CnnarchError, match="in_chans=1 and in_channels=3 disagree"):
            cnnarch.create_model("resnet18", in_chans=1, in_channels=3)


def test_list_models_takes_timms_filter_and_exclude_filters() -> None:
    assert cnnarch.list_models("vgg1?") == ["vgg11", "vgg13", "vgg16", "vgg19"]  # positional
    assert cnnarch.list_models(filter="vgg1?", exclude_filters="vgg13") == [
        "vgg11",
        "vgg16",
        "vgg19",
    ]
    assert cnnarch.list_models(["resnet1?", "plain1?"], exclude_filters=["*0", "*2"]) == [
        "resnet18",
        "plain18",
    ]
    assert cnnarch.list_models("") == cnnarch.list_models() == cnnarch.list_models("*")
    assert cnnarch.list_models(exclude_filters="*") == []


def saved(tmp_path: Path, state: object, name: str = "weights.pth") -> Path:
    path = tmp_path / name
    torch.save(state, path)
    return path


def test_a_state_dict_saved_from_the_torchvision_variant_loads_with_get_model(
    tmp_path: Path,
) -> None:
    torch.manual_seed(0)
    source = cnnarch.create_model("resnet18", variant="torchvision", num_classes=10)
    path = saved(tmp_path, source.state_dict())
    model = get_model("resnet18", variant="torchvision", num_classes=10, weights=path)
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in source.state_dict().items())
    assert cnnarch.get_model is get_model  # the front door has it too


def test_torchvisions_own_layout_loads_onto_a_meta_model(tmp_path: Path) -> None:
    # A checkpoint with exactly torchvision's keys and shapes (recorded from torchvision 0.29),
    # loaded into a model built on meta: its tensors are the file's, on the CPU.
    reference = REFERENCE["googlenet"]["state_dict"]
    state = {
        key: torch.full(shape, 0.5) if not key.endswith("num_batches_tracked") else torch.tensor(7)
        for key, shape in reference.items()
    }
    path = saved(tmp_path, state)
    with torch.device("meta"):
        model = cnnarch.create_model("googlenet", variant="torchvision", weights=str(path))
    assert all(p.device.type == "cpu" and p.eq(0.5).all() for p in model.parameters())
    assert model.state_dict()["conv1.bn.num_batches_tracked"].item() == 7


def test_a_training_checkpoint_loads_its_model_state(tmp_path: Path) -> None:
    source = cnnarch.create_model("resnet20")
    path = saved(tmp_path, {"format": "cnnarch-checkpoint-1", "model": source.state_dict()})
    model = cnnarch.create_model("resnet20", weights=path)
    assert torch.equal(model.fc.weight, source.fc.weight)


def test_pretrained_says_no_weights_are_downloaded_and_how_to_load_them() -> None:
    with pytest.raises(CnnarchError) as info:
        cnnarch.create_model("resnet50", pretrained=True)
    message = str(info.value)
    assert "no weights are downloaded here" in message
    assert "torch.save(torchvision.models.resnet50(weights='DEFAULT').state_dict()" in message
    assert "create_model('resnet50', variant='torchvision', weights='resnet50.pth')" in message
    with pytest.raises(CnnarchError, match="load a state_dict of your own"):
        cnnarch.create_model("zfnet", pretrained=True)  # no library publishes its weights
    with torch.device("meta"):
        cnnarch.create_model("resnet50", pretrained=False)  # timm's default: nothing to load


def test_weight_names_and_objects_are_refused_with_how_to_save_them(tmp_path: Path) -> None:
    with pytest.raises(CnnarchError, match=r"no weights file 'DEFAULT' \(no weights are down"):
        get_model("resnet18", weights="DEFAULT")
    with pytest.raises(CnnarchError, match="weights= takes the path of a state_dict file, not"):
        get_model("resnet18", weights=object())  # e.g. torchvision's ResNet18_Weights enum


def test_unreadable_and_unsafe_files_are_clear_errors(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(CnnarchError, match="not a readable state_dict") as info:
        cnnarch.create_model("resnet20", weights=corrupt)
    assert info.value.__cause__ is not None  # the reason torch gave is kept
    # A pickled object (code could run on load) is not read: weights_only=True.
    unsafe = saved(tmp_path, {"fc.weight": torch.zeros(1), "hook": Path("x")}, "unsafe.pth")
    with pytest.raises(CnnarchError, match="not a readable state_dict"):
        cnnarch.create_model("resnet20", weights=unsafe)
    empty = saved(tmp_path, {"epoch": 3}, "empty.pth")
    with pytest.raises(CnnarchError, match="holds no state_dict"):
        cnnarch.create_model("resnet20", weights=empty)


def test_a_checkpoint_of_another_layout_names_what_differs(tmp_path: Path) -> None:
    path = saved(tmp_path, cnnarch.create_model("resnet20", num_classes=100).state_dict())
    with pytest.raises(CnnarchError) as info:
        cnnarch.create_model("resnet20", weights=path)
    assert "2 of another shape (fc.weight: (100, 64) saved, (10, 64) in the model, ...)" in str(
        info.value
    )
    # resnet32 has 2 more blocks in each of its 3 stages; a block holds 2 convs (1 tensor each)
    # and 2 batch norms (5 each: weight, bias, running mean and variance, batch count): 6 x 12.
    missing = r"resnet32: 72 of the model's weights missing \(layer1\.3\.conv1\.weight and 71 more"
    with pytest.raises(CnnarchError, match=missing):
        cnnarch.create_model("resnet32", num_classes=100, weights=path)  # deeper than the file
    other = saved(tmp_path, {"conv1.weight": torch.zeros(16, 3, 3, 3)}, "other.pth")
    with pytest.raises(CnnarchError, match="does not fit resnet20"):
        cnnarch.create_model("resnet20", weights=other)


def test_card_facts_are_read_when_a_card_is_asked_for_not_at_import() -> None:
    code = (
        "from cnnarch.zoo import registry\n"
        "registry._load_families()\n"
        "assert registry.published.cache_info().misses == 0, 'read at import'\n"
        "assert registry.model_card('vgg16').published['table2_params_millions'] == 138\n"
        "assert registry.published.cache_info().misses == 1\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_options_are_the_builders_keyword_parameters_and_those_it_declares() -> None:
    def explicit(*, variant="paper", num_classes=10, in_channels=3, width=8):
        raise AssertionError

    def forwarding(*, variant="paper", **kwargs):
        raise AssertionError

    def incomplete(*, variant="paper", width=8):
        raise AssertionError

    assert _options(explicit, ()) == ("width",)
    assert _options(forwarding, ("width", "depth")) == ("width", "depth")
    with pytest.raises(TypeError, match="forwards options but takes no"):
        _options(explicit, ("depth",))
    with pytest.raises(TypeError, match="does not take num_classes, in_channels"):
        _options(incomplete, ())
