"""The papers the page cites, listed once at its end: the prose cites a paper by its short form
("Simonyan & Zisserman 2014") linked here, and no address appears in the prose."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cnnarch.report.document import Bullets, Paragraph, Section

if TYPE_CHECKING:
    from cnnarch.zoo.registry import ModelCard

SECTION_ID = "references"


def short_citation(card: ModelCard) -> str:
    """'Krizhevsky et al. 2012', 'Simonyan & Zisserman 2014'."""
    authors = [a.strip() for a in card.paper.authors.split(",")]
    year = card.paper.year
    if len(authors) == 2:
        return f"{authors[0]} & {authors[1]} {year}"
    return f"{authors[0]} et al. {year}" if len(authors) > 2 else f"{authors[0]} {year}"


def cite(card: ModelCard) -> str:
    """The short citation as a link to the references (a block's text)."""
    return f"[{short_citation(card)}](#{SECTION_ID})"


def reference(card: ModelCard) -> str:
    """One entry: how the page cites it, then the paper in full, with its arXiv identifier."""
    paper = card.paper
    venue = f" {paper.venue}." if paper.venue else ""
    arxiv = f" arXiv {paper.arxiv}." if paper.arxiv else ""
    return f"{short_citation(card)}: {paper.authors}, '{paper.title}' ({paper.year}).{venue}{arxiv}"


def section(cards: list[ModelCard]) -> Section:
    """The references of the models shown, each paper once, by year.

    Args:
        cards: the cards of the models the page shows.
    """
    papers: dict[str, str] = {}
    for card in sorted(cards, key=lambda c: (c.paper.year, short_citation(c))):
        papers.setdefault(short_citation(card), reference(card))
    return Section(SECTION_ID, "References").add(
        Paragraph(
            "The papers of the networks on this page; the text cites each by its first author "
            "and year, linked here."
        ),
        Bullets(tuple(papers.values())),
    )
