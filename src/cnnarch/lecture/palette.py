"""One color per family of networks, so that every chart of the report agrees (Okabe-Ito)."""

from __future__ import annotations

from cnnarch.report.charts import PALETTE

FAMILY_COLORS = {
    "alexnet": "#D55E00",
    "zfnet": "#CC79A7",
    "vgg": "#E69F00",
    "googlenet": "#009E73",
    "inception": "#56B4E9",
    "resnet": "#0072B2",
    "plain": "#999999",
}


def family_color(name: str) -> str:
    """The color of the family whose name starts `name` ("resnet50": ResNet's)."""
    for prefix, color in FAMILY_COLORS.items():
        if name.lower().startswith(prefix):
            return color
    return PALETTE[-1]
