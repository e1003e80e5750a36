"""Canziani, Paszke & Culurciello 2016, the comparison behind the lecture's chart: its paper and
what it says of the networks it measured that no other paper defines (BN-AlexNet, BN-NIN, and
ENet as an ImageNet classifier), with where each is defined."""

from __future__ import annotations

from typing import Any

from cnnarch.zoo.registry import Paper, published

CANZIANI_PAPER = Paper(
    "Canziani, Paszke, Culurciello",
    2016,
    "An Analysis of Deep Neural Network Models for Practical Applications",
    arxiv="1605.07678",
)


def canziani_facts(name: str) -> dict[str, Any]:
    """The card facts of the comparison's network `name`: where it is defined, and the chart's
    figures for it as read off the paper's figures.

    Args:
        name: a key of the `canziani_2016_networks` block of the package data.
    """
    networks = published()["canziani_2016_networks"]
    reading = published()["canziani_2016_third_party_reading"]
    entry = dict(networks[name])
    chart_name = entry.pop("chart_name")
    return {
        **entry,
        "figures_as_read": dict(zip(reading["columns"], reading[chart_name], strict=True)),
        "figures_source": reading["source"],
        "source": networks["source"],
    }
