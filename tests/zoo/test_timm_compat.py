"""The timm variants against timm 1.0.31's state_dicts (keys, shapes, order, totals).

`data/timm_state_dicts.json` is written by `benchmarks/record_timm_state_dicts.py` in a side
environment where timm is installed (timm is no dependency of cnnarch); that script also checks
that each timm variant, holding the weights of timm's model, gives timm's logits.
"""

import json
from pathlib import Path

import pytest
import torch

import cnnarch

REFERENCE = json.loads((Path(__file__).parent / "data" / "timm_state_dicts.json").read_text())
TIMM_MODELS = list(REFERENCE)


def meta_model(name: str, **kwargs):
    with torch.device("meta"):
        return cnnarch.create_model(name, variant="timm", **kwargs)


def test_reference_covers_every_timm_variant() -> None:
    with_variant = [n for n in cnnarch.list_models() if "timm" in cnnarch.model_card(n).variants]
    assert sorted(with_variant) == sorted(TIMM_MODELS) == ["inception_resnet_v2", "inception_v4"]


@pytest.mark.parametrize("name", TIMM_MODELS)
def test_state_dict_keys_and_shapes_equal_timms(name: str) -> None:
    model = meta_model(name)
    expected = REFERENCE[name]["state_dict"]
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == expected
    assert list(model.state_dict()) == list(expected)  # same order, too
    assert sum(p.numel() for p in model.parameters()) == REFERENCE[name]["params"]


@pytest.mark.parametrize("name", TIMM_MODELS)
def test_a_checkpoint_with_timms_shapes_loads_strictly(name: str) -> None:
    # Meta tensors of the recorded shapes: strict loading checks every key and shape, and
    # nothing is allocated.
    model = meta_model(name)
    checkpoint = {
        key: torch.empty(
            shape, device="meta", dtype=torch.long if key.endswith("tracked") else None
        )
        for key, shape in REFERENCE[name]["state_dict"].items()
    }
    result = model.load_state_dict(checkpoint, strict=True, assign=True)
    assert not result.missing_keys and not result.unexpected_keys


@pytest.mark.slow
def test_timms_layout_saved_to_a_file_loads_with_weights(tmp_path: Path) -> None:
    state = {
        key: torch.full(shape, 0.25) if not key.endswith("tracked") else torch.tensor(0)
        for key, shape in REFERENCE["inception_v4"]["state_dict"].items()
    }
    path = tmp_path / "inception_v4.pth"
    torch.save(state, path)
    with torch.device("meta"):
        model = cnnarch.get_model("inception_v4", variant="timm", weights=path)
    assert all(p.device.type == "cpu" and p.eq(0.25).all() for p in model.parameters())
    # The paper variant names its blocks as the paper does: timm's file does not fit it.
    with pytest.raises(cnnarch.CnnarchError, match="weights missing"):
        cnnarch.get_model("inception_v4", weights=path)
