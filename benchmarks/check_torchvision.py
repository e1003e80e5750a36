"""cnnarch's analyzer against every model torchvision ships: params and MACs.

Each model of `torchvision.models.list_models()` is built with the architecture of its DEFAULT
weights (the options those weights imply, applied by the builder; the download stubbed out)
and analyzed at the input torchvision used for the weights' metadata: a random 512x512 image
(16 frames for video; the detection models' own sizes) passed through the weights'
preprocessing. Params are compared with PyTorch's count (`sum(p.numel())`) and MACs with
`weights.meta["_ops"]` (torchvision's "GFLOPS": multiply-accumulates of convolutions and matrix
products, rounded to 3 decimals). Detection models, whose cost depends on the image (how many
boxes survive), are built with random weights on the CPU and must agree within 5%; the others
are built on meta (RegNet, whose builder computes with tensors, on the CPU) and must agree to
the printed digit. Quantized models are compared through their float architecture, as
torchvision's own metadata check does.

Not a dependency of cnnarch and not run in CI: torchvision needs a CUDA build of torch
(several GB). In a throwaway virtual environment outside the repository:

    python -m venv /tmp/tv && /tmp/tv/bin/pip install torchvision numpy tqdm pillow matplotlib
    PYTHONPATH=src /tmp/tv/bin/python benchmarks/check_torchvision.py [NAME ...]

The lines printed also go to `--json FILE` (default benchmarks/results/check_torchvision.json).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any

import torch
import torchvision
from torch import nn
from torchvision import models
from torchvision.models._api import WeightsEnum

import cnnarch
from json_results import add_json_option, write_results

# The image sizes torchvision gave its detection models when it computed their metadata.
DETECTION_SIZES = {
    "fasterrcnn_mobilenet_v3_large_320_fpn": (320, 320),
    "ssd300_vgg16": (300, 300),
    "ssdlite320_mobilenet_v3_large": (320, 320),
    "keypointrcnn_resnet50_fpn": (1333, 1333),
}
DEFAULT_SIZE = (512, 512)
DETECTION_TOLERANCE = 0.05


@contextlib.contextmanager
def weights_stubbed() -> Iterator[None]:
    """Builders given weights load their state dict: here nothing is downloaded and the
    (randomly initialized or meta) model keeps its tensors."""
    sentinel: dict[str, Any] = {}
    original_get = WeightsEnum.get_state_dict
    original_load = nn.Module.load_state_dict

    def load(module: nn.Module, state_dict: Any, *args: Any, **kwargs: Any) -> Any:
        if state_dict is sentinel:
            return None
        return original_load(module, state_dict, *args, **kwargs)

    WeightsEnum.get_state_dict = lambda self, *args, **kwargs: sentinel  # type: ignore[method-assign]
    nn.Module.load_state_dict = load  # type: ignore[method-assign]
    try:
        yield
    finally:
        WeightsEnum.get_state_dict = original_get  # type: ignore[method-assign]
        nn.Module.load_state_dict = original_load  # type: ignore[method-assign]


def task_of(name: str) -> str:
    module = models.get_model_builder(name).__module__.split(".")
    return module[-2] if module[-2] != "models" else "classification"


def example_inputs(task: str, name: str, weights: Any) -> tuple[Any, ...]:
    """The preprocessed random input, as torchvision fed it to the model."""
    height, width = DETECTION_SIZES.get(name, (800, 800) if task == "detection" else DEFAULT_SIZE)
    torch.manual_seed(0)
    if task == "detection":
        raw = torch.rand(3, height, width)
    elif task == "video":
        raw = torch.rand(1, 16, 3, height, width)
    else:
        raw = torch.rand(1, 3, height, width)
    preprocess = weights.transforms()
    if task == "optical_flow":
        return tuple(preprocess(raw, raw))
    image = preprocess(raw)
    return ([image],) if task == "detection" else (image,)


def build(name: str, task: str, weights: Any) -> nn.Module:
    builder = models.get_model_builder(name)
    options: dict[str, Any] = {"weights": weights}
    if task == "quantization":
        # The float model of the same architecture, as torchvision's own metadata check does:
        # its builder takes the unquantized weights (and the options they imply).
        options = {"weights": weights.meta["unquantized"], "quantize": False}
    with weights_stubbed():
        if task == "detection":
            torch.manual_seed(0)
            return builder(**options).eval()  # real weights: the boxes depend on them
        try:
            with torch.device("meta"):
                return builder(**options).eval()
        except NotImplementedError:  # a builder that computes its widths with tensors (RegNet)
            return builder(**options).eval()


def check(name: str) -> tuple[bool, str, dict[str, Any]]:
    """(agrees, the line to print, the same as a record) for torchvision's model `name`."""
    task = task_of(name)
    weights_enum = models.get_model_weights(name)
    weights = getattr(weights_enum, "DEFAULT", None)
    if weights is None:
        record = {"model": name, "task": task, "ok": True, "skipped": "no weights"}
        return True, f"{name:40s} {task:14s} no weights: skipped", record
    reference = weights.meta["unquantized"] if task == "quantization" else weights
    expected_params = reference.meta["num_params"]
    expected_ops = reference.meta["_ops"]
    model = build(name, task, weights)
    pytorch_params = sum(p.numel() for p in model.parameters())
    inputs = example_inputs(task, name, weights)
    start = time.perf_counter()
    summary = cnnarch.analyze(model, inputs=inputs, name=name, timeout=600)
    seconds = time.perf_counter() - start
    gmacs = summary.total_macs / 1e9
    params_ok = summary.total_params == pytorch_params
    # (the metadata of quantized Inception-v3 counts the auxiliary classifier that its
    # builder drops: PyTorch's count of the model built is the reference)
    metadata = "" if pytorch_params == expected_params else f"; metadata {expected_params:,}"
    if task == "detection":
        macs_ok = abs(gmacs - expected_ops) <= DETECTION_TOLERANCE * expected_ops
    else:
        macs_ok = round(gmacs, 3) == expected_ops
    ok = params_ok and macs_ok
    line = (
        f"{name:40s} {task:14s} params {summary.total_params:>11,} (PyTorch "
        f"{pytorch_params:,}{metadata}) MACs {gmacs:9.3f} G (torchvision {expected_ops:.3f}) "
        f"{summary.mode:4s} {seconds:6.1f} s  {'ok' if ok else 'DIFFERS'}"
    )
    record = {
        "model": name,
        "task": task,
        "ok": ok,
        "params": summary.total_params,
        "pytorch_params": pytorch_params,
        "metadata_params": expected_params,
        "gmacs": gmacs,
        "torchvision_gmacs": expected_ops,
        "mode": summary.mode,
        "seconds": seconds,
    }
    return ok, line, record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="default: every model torchvision lists")
    add_json_option(parser, __file__)
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = args.names or models.list_models()
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, {len(names)} models")
    matched = failed = 0
    records = []
    for name in names:
        try:
            ok, line, record = check(name)
        except Exception as err:  # report and go on: one line per model
            failure = f"{type(err).__name__}: {err}"
            ok, line = False, f"{name:40s} FAILED: {failure}"
            record = {"model": name, "ok": False, "failed": failure}
        matched += ok
        failed += not ok
        records.append(record)
        print(line, flush=True)
    print(f"\n{matched} of {len(names)} models analyzed and matching; {failed} not")
    write_results(
        args,
        {"torchvision": torchvision.__version__, "matched": matched, "models": records},
    )
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
