"""The report as data: sections of paragraphs, tables, figures and checked claims.

One document, several renderings (`html.render_html`, `markdown.render_markdown`), so the
HTML and the Markdown report cannot say different things. Text may use `backticks` for code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cnnarch.lecture.claims import Check
from cnnarch.report.charts import SavedFigure
from cnnarch.report.diagrams import Diagram
from cnnarch.report.explorer import Explorer
from cnnarch.tables import Table


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Checks:
    """Claims with their verdicts (`cnnarch.lecture.claims.Check`)."""

    items: tuple[Check, ...]


@dataclass(frozen=True)
class Folded:
    """A block shown collapsed in HTML (long per-layer tables), under `summary`."""

    summary: str
    block: Table


Block = Paragraph | Bullets | Checks | Table | SavedFigure | Folded | Diagram | Explorer


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


@dataclass
class Document:
    title: str
    intro: list[Block]
    sections: list[Section]

    def blocks(self) -> list[Block]:
        return list(self.intro) + [b for s in self.all_sections() for b in s.blocks]

    def tables(self) -> list[Table]:
        unfolded = [b.block if isinstance(b, Folded) else b for b in self.blocks()]
        return [b for b in unfolded if isinstance(b, Table)]

    def figures(self) -> list[SavedFigure]:
        return [b for b in self.blocks() if isinstance(b, SavedFigure)]

    def diagrams(self) -> list[Diagram]:
        return [b for b in self.blocks() if isinstance(b, Diagram)]

    def explorers(self) -> list[Explorer]:
        return [b for b in self.blocks() if isinstance(b, Explorer)]

    def all_sections(self) -> list[Section]:
        return [s for top in self.sections for s in top.walk()]
