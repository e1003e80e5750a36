"""Topics are values: each is a function of the analyses, so building them in another order
gives the same sections and the same checks, and no topic changes what another returns."""

from __future__ import annotations

import pytest

from cnnarch.lecture import alexnet, comparison, resnet
from cnnarch.lecture.analyses import Analyses
from cnnarch.report.markdown import render_section

BUILDERS = {"alexnet": alexnet.build, "resnet": resnet.build, "comparison": comparison.build}


def built(order: list[str]) -> dict[str, tuple[str, tuple]]:
    analyses = Analyses(("alexnet", "resnet18", "resnet34"), 2)
    try:
        topics = {name: BUILDERS[name](analyses) for name in order}
    finally:
        analyses.close()
    return {
        name: (render_section(topic.section), tuple(c.to_dict() for c in topic.checks))
        for name, topic in topics.items()
    }


@pytest.mark.slow
def test_the_build_order_cannot_change_the_page() -> None:
    forward = built(["alexnet", "resnet", "comparison"])
    backward = built(["comparison", "resnet", "alexnet"])
    assert forward == backward
    # The comparison's checks include the slide's observations, each once.
    ids = [c["id"] for c in forward["comparison"][1]]
    assert len(ids) == len(set(ids)) and "comparison-vgg" in ids
