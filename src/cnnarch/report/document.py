"""A document as data: sections of blocks, rendered by `html.render_html` and
`markdown.render_markdown`, so that the page and `report.md` cannot say different things.

This package renders documents and knows nothing of what they are about. Text in a block is
the author's, with two marks: `backticks` for code and [text](#id) for a link within the
page; the renderers escape everything else. A string from outside (a file a user gave, a
path they typed) goes through `markup.foreign` before it is put into a text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from markupsafe import Markup

from cnnarch.tables import Table

# How a verdict reads at a glance: good, mixed (within noise, depends), bad, or open.
Tone = Literal["good", "mixed", "bad", "open"]


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Verdict:
    """One judged statement as the page shows it: the statement, its source, the verdict
    word and its tone, the evidence, and (where it fails) what causes that."""

    id: str  # unique in the page: the anchor `claim-<id>`
    statement: str
    verdict: str
    tone: Tone
    evidence: str
    source: str = ""
    cause: str = ""


@dataclass(frozen=True)
class Verdicts:
    items: tuple[Verdict, ...]


@dataclass(frozen=True)
class Chart:
    """A drawn chart: its PNG and SVG files; the page shows the SVG inline, or `inline` (an
    interactive SVG drawn for the page) in its place, and report.md shows the PNG."""

    name: str
    title: str
    caption: str
    png: bytes
    svg: bytes
    inline: Markup | None = None


@dataclass(frozen=True)
class Picture:
    """An SVG picture shown inline in the page and written as `figures/<name>.svg`."""

    name: str
    title: str
    caption: str
    svg: Markup


@dataclass(frozen=True)
class Folded:
    """A table shown collapsed in the page, under `summary`."""

    summary: str
    block: Table


@dataclass(frozen=True)
class Widget:
    """Interactive HTML with the data its script reads (embedded as JSON under `name`);
    report.md shows `markdown` instead."""

    name: str
    html: Markup
    markdown: str
    data: Any = None


@dataclass(frozen=True)
class Contents:
    """A table of contents of `sections` to `depth` levels, shown where the block is (without
    one in the intro, the page shows the document's, every level, after the intro)."""

    sections: tuple[Section, ...]
    depth: int = 4


@dataclass(frozen=True)
class Columns:
    """Columns of blocks side by side on a wide screen, one above the other on a narrow one."""

    columns: tuple[tuple[Block, ...], ...]


Block = (
    Paragraph | Bullets | Verdicts | Table | Chart | Picture | Folded | Widget | Contents | Columns
)


@dataclass
class Section:
    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    children: list[Section] = field(default_factory=list)

    def add(self, *blocks: Block) -> Section:
        self.blocks.extend(blocks)
        return self

    def walk(self) -> list[Section]:
        return [self] + [s for child in self.children for s in child.walk()]


def _flatten(blocks: list[Block]) -> list[Block]:
    found: list[Block] = []
    for block in blocks:
        found.append(block)
        if isinstance(block, Columns):
            found += _flatten([b for column in block.columns for b in column])
        elif isinstance(block, Folded):
            found.append(block.block)
    return found


@dataclass
class Document:
    """A title, a one-line lead, the blocks of the first screen, and the sections."""

    title: str
    lead: str
    intro: list[Block]
    sections: list[Section]

    def all_sections(self) -> list[Section]:
        return [s for top in self.sections for s in top.walk()]

    def blocks(self) -> list[Block]:
        """Every block, nested ones included, in page order."""
        return _flatten(list(self.intro) + [b for s in self.all_sections() for b in s.blocks])

    def tables(self) -> list[Table]:
        return [b for b in self.blocks() if isinstance(b, Table)]

    def charts(self) -> list[Chart]:
        return [b for b in self.blocks() if isinstance(b, Chart)]

    def pictures(self) -> list[Picture]:
        return [b for b in self.blocks() if isinstance(b, Picture)]

    def widgets(self) -> list[Widget]:
        return [b for b in self.blocks() if isinstance(b, Widget)]

    def verdicts(self) -> list[Verdict]:
        return [v for b in self.blocks() if isinstance(b, Verdicts) for v in b.items]
