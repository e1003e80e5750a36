"""A topic of the lecture as a value: the section it shows, the claims it checks and the key
ideas those checks decide. `build.py` puts the topics together; no topic reads another's."""

from __future__ import annotations

from dataclasses import dataclass

from cnnarch.lecture.claims import Check, Idea
from cnnarch.report.document import Block, Section


@dataclass(frozen=True)
class Topic:
    section: Section
    checks: tuple[Check, ...] = ()
    ideas: tuple[Idea, ...] = ()
    headline: Block | None = None  # a picture for the page's first screen
