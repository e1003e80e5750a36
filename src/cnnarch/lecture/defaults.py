"""Built-in defaults of `cnnarch report` (kept apart so the CLI can show them cheaply)."""

from pathlib import Path

# The lecture's models, in the lecture's order.
DEFAULT_MODELS = (
    "alexnet",
    "zfnet",
    "vgg16",
    "vgg19",
    "googlenet",
    "inception_v3",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "inception_v4",
    "inception_resnet_v2",
)
# The networks of the lecture's comparison chart (Canziani, Paszke & Culurciello 2016, Figure 1),
# computed in the comparison beside the models above when the report shows the default models.
CHART_MODELS = (
    "alexnet",
    "bn_alexnet",
    "bn_nin",
    "enet",
    "googlenet",
    "inception_v3",
    "inception_v4",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "vgg16",
    "vgg19",
)
DEFAULT_BATCH = 32
DEFAULT_OUT = Path("report")
# Where `cnnarch experiment degradation` writes by default; the report shows it if it is there.
DEFAULT_DEGRADATION_RESULTS = Path("runs/degradation/results.json")
