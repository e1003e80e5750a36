"""Text to HTML and to Markdown, escaped by construction, and an element builder.

A block's text has two marks: `backticks` for code and [text](#id) for a link within the
page. `inline_html` escapes the text and then turns the marks into elements; `inline_markdown`
keeps the marks (they are Markdown) and escapes what a Markdown reader would take for HTML.
`element` builds HTML or SVG whose attribute values and text are escaped unless they are
already `Markup` (built by this module).
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

CODE = re.compile(r"`([^`]+)`")
LINK = re.compile(r"\[([^\]]+)\]\(#([\w-]+)\)")
# In Markdown, `<` followed by a letter, `/`, `!` or `?` opens raw HTML; `&` followed by a name
# or `#` and `;` is an entity. Anything else is shown as typed.
_MARKDOWN_HTML = re.compile(r"<(?=[A-Za-z/!?])|&(?=#?\w+;)")


def foreign(text: str) -> str:
    """A string from outside the program (a results file, a path a user typed) made safe to put
    into a block's text: its backticks, which would open or close a code span, become quotes.
    The renderers escape the rest.

    Args:
        text: the string as read.
    """
    return text.replace("`", "'")


def inline_html(text: str) -> Markup:
    """`text` escaped for HTML, its `code` and [links](#id) made elements.

    Args:
        text: a block's text.
    """
    escaped = str(escape(text))
    escaped = LINK.sub(r'<a href="#\2">\1</a>', escaped)
    return Markup(CODE.sub(r"<code>\1</code>", escaped))


def inline_markdown(text: str) -> str:
    """`text` for Markdown: outside code spans, what would open an HTML tag or an entity is
    escaped (`<script>` becomes `&lt;script>`); code spans show their text as typed.

    Args:
        text: a block's text (or a rendered Markdown table).
    """
    parts = re.split(r"(`[^`\n]+`)", text)
    return "".join(
        part if part.startswith("`") else _MARKDOWN_HTML.sub(_entity, part) for part in parts
    )


def _entity(match: re.Match[str]) -> str:
    return "&lt;" if match.group(0) == "<" else "&amp;"


def element(tag: str, attributes: dict[str, object] | None = None, *children: object) -> Markup:
    """`<tag attributes>children</tag>`, every value and text escaped unless it is `Markup`.

    An attribute whose value is None is left out; True writes the bare name.

    Args:
        tag: the element's name (`svg`, `circle`, `form`, ...).
        attributes: name to value; names with `_` are written with `-` (`aria_label`).
        children: text, numbers or `Markup`; nothing for an empty element.
    """
    parts = [tag]
    for name, value in (attributes or {}).items():
        if value is None or value is False:
            continue
        written = name.rstrip("_").replace("_", "-")
        parts.append(written if value is True else f'{written}="{escape(value)}"')
    inner = "".join(str(escape(child)) for child in children)
    return Markup(f"<{' '.join(parts)}>{inner}</{tag}>")


def join(parts: list[Markup]) -> Markup:
    """Elements one after the other."""
    return Markup("").join(parts)
