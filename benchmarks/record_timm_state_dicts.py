"""Record timm's state_dict layout of the models cnnarch has a `timm` variant of, and check them.

Writes `tests/zoo/data/timm_state_dicts.json`: for each model, timm's version, the total of its
parameters and every state_dict key with its shape, in timm's order. The tests hold cnnarch's
`variant="timm"` to that file, so timm's checkpoints load with `strict=True`; timm is never a
dependency of cnnarch.

With `--compare`, each cnnarch timm variant is also loaded with the state_dict of a randomly
initialized timm model (batch-norm statistics randomized too) and both run the same input in
eval mode: the outputs must agree to float32 rounding.

timm needs torchvision, which PyPI's torch 2.13 CPU build cannot import beside; in a throwaway
virtual environment outside the repository:

    python3 -m venv /tmp/timm-env && /tmp/timm-env/bin/pip install torch==2.14.1 \\
        torchvision==0.29.1 timm
    PYTHONPATH=src /tmp/timm-env/bin/python benchmarks/record_timm_state_dicts.py [--compare]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import timm
import torch

# cnnarch name -> timm name.
MODELS = {"inception_v4": "inception_v4", "inception_resnet_v2": "inception_resnet_v2"}
OUT = Path(__file__).resolve().parent.parent / "tests" / "zoo" / "data" / "timm_state_dicts.json"


def layout(timm_name: str) -> dict[str, Any]:
    with torch.device("meta"):
        model = timm.create_model(timm_name)
    return {
        "timm": timm.__version__,
        "params": sum(p.numel() for p in model.parameters()),
        "state_dict": {key: list(value.shape) for key, value in model.state_dict().items()},
    }


def compare(name: str, timm_name: str) -> tuple[float, float]:
    """(largest absolute difference, largest absolute value) of the logits of timm's model and
    cnnarch's timm variant holding the same (random) weights."""
    import cnnarch

    torch.manual_seed(0)
    reference = timm.create_model(timm_name).eval()
    for module in reference.modules():  # batch norms that are not the identity
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    ours = cnnarch.create_model(name, variant="timm").eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 299, 299)
    with torch.no_grad():
        expected = reference(x)
        return (expected - ours(x)).abs().max().item(), expected.abs().max().item()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compare", action="store_true", help="also compare the outputs")
    args = parser.parse_args()
    record = {name: layout(timm_name) for name, timm_name in MODELS.items()}
    OUT.write_text(json.dumps(record, indent=1) + "\n")
    for name, entry in record.items():
        keys = len(entry["state_dict"])
        print(f"{name}: timm {entry['timm']}, {entry['params']:,} params, {keys} keys")
    print(f"wrote {OUT}")
    if args.compare:
        for name, timm_name in MODELS.items():
            difference, largest = compare(name, timm_name)
            print(
                f"{name}: largest logit difference from timm {difference:.2e} "
                f"(logits up to {largest:.2e})"
            )
            if difference > 1e-4:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
