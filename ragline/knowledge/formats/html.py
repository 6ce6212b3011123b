"""HTML: text extracted with the standard library's html.parser. Script, style, nav,
header, footer, aside, form, noscript and template are dropped; <h1>..<h6> become Markdown
headings so the chunker still sees sections; paragraphs, list items (``- item``) and table
rows (cells joined by `` | ``) become separate paragraphs. Title: <title>, else the first
<h1>."""

from __future__ import annotations

from html.parser import HTMLParser

_DROPPED = frozenset(
    {"script", "style", "nav", "header", "footer", "aside", "form", "noscript", "template"}
)
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_BLOCKS = frozenset(
    {
        "p", "div", "section", "article", "main", "blockquote", "pre", "br", "hr",
        "ul", "ol", "li", "dl", "dt", "dd", "table", "thead", "tbody", "tfoot", "tr",
        "caption", "figure", "figcaption", "address", "details", "summary", "body",
    }
)  # fmt: skip


class _HtmlText(HTMLParser):
    """Readable text of an HTML page as Markdown-ish paragraphs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self.title: str | None = None
        self.first_h1: str | None = None
        self._buffer: list[str] = []
        self._dropped = 0  # depth inside dropped elements
        self._in_title = False
        self._title_parts: list[str] = []
        self._heading = 0
        self._h1_parts: list[str] | None = None
        self._prefix = ""
        self._row_cells = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
            return
        if tag in _DROPPED:
            self._dropped += 1
            return
        if tag == "h1" and self.first_h1 is None:
            self._h1_parts = []
        if self._dropped:
            return
        if tag in _HEADINGS:
            self._flush()
            self._heading = _HEADINGS[tag]
        elif tag == "li":
            self._flush()
            self._prefix = "- "
        elif tag == "tr":
            self._flush()
            self._row_cells = 0
        elif tag in ("td", "th"):
            if self._row_cells:
                self._buffer.append(" | ")
            self._row_cells += 1
        elif tag in _BLOCKS:
            self._flush()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self._dropped and tag in ("br", "hr"):
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
            if self.title is None:
                self.title = " ".join("".join(self._title_parts).split()) or None
            return
        if tag in _DROPPED:
            self._dropped = max(0, self._dropped - 1)
            return
        if tag == "h1" and self._h1_parts is not None:
            self.first_h1 = " ".join("".join(self._h1_parts).split()) or None
            self._h1_parts = None
        if self._dropped:
            return
        if tag in _HEADINGS:
            self._flush()
            self._heading = 0
        elif tag in _BLOCKS:
            self._flush()
            if tag == "li":
                self._prefix = ""

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title_parts.append(data)
            return
        if self._h1_parts is not None:
            self._h1_parts.append(data)
        if not self._dropped:
            self._buffer.append(data)

    def close(self) -> None:
        super().close()
        self._flush()

    def _flush(self) -> None:
        text = " ".join("".join(self._buffer).split())
        self._buffer.clear()
        if not text.replace("|", "").strip():
            return
        if self._heading:
            self.blocks.append(f"{'#' * self._heading} {text}")
        else:
            self.blocks.append(self._prefix + text)
            self._prefix = ""


def html_to_text(html: str) -> tuple[str | None, str]:
    """(title, text) of an HTML page; see the module docstring for the rules."""
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    return parser.title or parser.first_h1, "\n\n".join(parser.blocks)
