"""The page speaks the lecture's language: its prose (paragraphs, lists, captions, headings) has
no web address, no module path of the code (those sit in the layer tables' "modules" column and
in the details a hover or tap shows), and none of the implementation's jargon."""

import re
from html.parser import HTMLParser

import pytest
from markupsafe import escape

from cnnarch.lecture.defaults import DEFAULT_MODELS
from cnnarch.lecture.references import short_citation
from cnnarch.zoo.registry import model_card

PROSE = {"p", "li", "figcaption", "h1", "h2", "h3", "h4", "summary"}
NOT_PROSE = {"table", "svg", "script", "style"}
VOID = {"br", "input", "meta", "img", "link", "hr", "wbr"}

URL = re.compile(r"https?://|www\.|\w\.(?:org|com|io|net)/")
# Module paths of the zoo's models: AlexNet's towers, VGG's and ZFNet's sequences,
# Inception-v3's blocks and heads, GoogLeNet's heads and branches, ResNet's projections.
MODULE_PATH = re.compile(
    r"\b(?:towers|features|classifier)\.\d+|\bMixed_\w+|\bAuxLogits\b|\baux\d\b"
    r"|\bbranch(?:\d\w*|_pool)\b|\bdownsample\b"
)
JARGON = re.compile(r"\bforeach\b|\bmeta tensors?\b|\bNot layers\b")


class ProseText(HTMLParser):
    """The text of the page's prose elements, outside tables and pictures."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        while self.open and self.open.pop() != tag:
            pass
        if tag in PROSE:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        inside = set(self.open)
        if inside & PROSE and not inside & NOT_PROSE:
            self.parts.append(data)


def prose(html: str) -> str:
    parser = ProseText()
    parser.feed(html)
    return "".join(parser.parts)


def found(pattern: re.Pattern[str], text: str) -> list[str]:
    return [
        " ".join(text[max(0, m.start() - 50) : m.end() + 30].split())
        for m in pattern.finditer(text)
    ]


@pytest.fixture(scope="module")
def page_prose(report_dir) -> str:
    return prose((report_dir / "index.html").read_text(encoding="utf-8"))


def test_the_scanner_finds_what_it_looks_for() -> None:
    text = prose(
        "<p>CONV11-96 (<code>towers.0.conv1</code>), see https://arxiv.org/abs/1409.1556</p>"
        "<table><tr><td>features.28</td></tr></table><figcaption>Not layers: cat()</figcaption>"
        "<svg><text>Mixed_5b</text></svg><li>the foreach implementation on meta tensors</li>"
    )
    assert len(found(MODULE_PATH, text)) == 1 and found(URL, text)
    assert len(found(JARGON, text)) == 3
    assert "features.28" not in text and "Mixed_5b" not in text  # a table, a picture


def test_no_web_address_in_the_prose(page_prose) -> None:
    assert len(page_prose) > 20_000
    assert found(URL, page_prose) == []


def test_no_module_path_in_the_prose(page_prose) -> None:
    assert found(MODULE_PATH, page_prose) == []


def test_no_implementation_jargon_in_the_prose(page_prose) -> None:
    assert found(JARGON, page_prose) == []


def test_each_card_cites_its_paper_and_the_references_list_it(report_dir) -> None:
    html = (report_dir / "index.html").read_text(encoding="utf-8")
    listed = html.split('<section id="references">')[1].split("</section>")[0]
    for name in DEFAULT_MODELS:
        card = model_card(name)
        citation = escape(short_citation(card))
        card_html = html.split(f'<section id="model-{name}">')[1].split("</section>")[0]
        assert f'<a href="#references">{citation}</a>' in card_html, name
        assert f"<li>{citation}: {escape(card.paper.authors)}" in listed, name
        assert escape(card.paper.title) in listed and card.paper.arxiv in listed, name
    # Each paper once: AlexNet's and ZFNet's papers differ, VGG16 and VGG19 share one.
    vgg = escape(short_citation(model_card("vgg16")))
    assert listed.count(f"<li>{vgg}:") == 1
