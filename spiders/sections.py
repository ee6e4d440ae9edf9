"""The shared section reader: a page -> ordered lines -> label-anchored sections.

The HTML sites (Veeva, MedPath, ClinConnect) print a trial as visible labels
("Conditions", "Sex", "Inclusion criteria", ...) each followed by its value.
Their markup changes with every redesign; their words change far less. So a
site parser never anchors on CSS classes, ids or nesting depth. It does two
steps, both here and both site-agnostic:

1. `page_lines(source)` turns a page into the lines a reader sees, in order:
   block elements break lines, inline elements join, scripts and styles are
   dropped, list items are marked as bullets with their nesting depth. The
   same function reads text already extracted from a page (one line per
   non-empty line, bullet markers stripped), so a parser gives the same
   answer on the HTML, on a saved text rendering, and on a redesign.
2. `read_sections(lines, labels)` cuts the lines at the labels a site
   configures: a line equal to a label (case-insensitive, trailing ":"
   ignored) starts that section; its value is every line up to the next
   recognised label.

Where a page carries structured data (JSON-LD, embedded JSON state) a site
parser should prefer it and use this reader for the rest; the pages this
module was written against carry none.

Interface (imported by every HTML site module; keep it stable):

    Line(text, bullet, depth)
    page_lines(source, *, is_html=None) -> list[Line]
    Section(label, lines)
    read_sections(lines, labels) -> dict[str, Section]
    preamble(lines, labels) -> list[Line]      # the lines before the first label
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping, Sequence

import lxml.etree
import lxml.html

from harvester.normalize.criteria import split_items

__all__ = ["Line", "Section", "page_lines", "read_sections", "preamble", "label_key"]


@dataclass(frozen=True)
class Line:
    """One visual line (or block) of a page."""

    text: str  # whitespace-collapsed text of the line
    bullet: bool  # it was a list item (<li>, or "- ", "• ", "* " in plain text)
    depth: int  # list nesting depth (0 = not in a list)


@dataclass
class Section:
    """A configured label and the lines printed under it."""

    label: str  # the canonical label as configured
    lines: list[Line] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        return [line.text for line in self.lines]

    @property
    def text(self) -> str | None:
        """The value lines joined with newlines; None when the label was
        printed with no value."""
        return "\n".join(self.texts) or None


# --------------------------------------------------------------------------
# page -> lines

# Elements that start and end a line of their own. Everything else (span, a,
# b, em, strong, sup, label, ...) is inline and joins its neighbours.
BLOCK_TAGS = frozenset("""
address article aside blockquote body br caption center dd details dialog dir div dl dt
fieldset figcaption figure footer form frame frameset h1 h2 h3 h4 h5 h6 header hgroup hr
html legend li listing main menu nav noframes ol option p plaintext pre section summary
table tbody td tfoot th thead title tr ul
""".split())
# Never visible text.
DROP_TAGS = frozenset("""
head script style noscript svg template iframe object embed canvas math button input
select textarea
""".split())
LIST_TAGS = frozenset({"ul", "ol", "menu", "dir"})

_DISPLAY_NONE = re.compile(r"display\s*:\s*none", re.IGNORECASE)
# Plain text: bullet glyphs a text rendering puts before list items.
_BULLET = re.compile(r"^([-*\u2022\u2023\u25e6\u2043\u2219\u00b7\u25aa\u25cf\u25a0\u2013])\s+")
# An indented "1." / "1)" / "a." is the rendering of an <ol> item.
_NUMBERED = re.compile(r"^(?:\d{1,3}|[a-zA-Z])[.)]\s+")
_HTML_HINT = re.compile(
    r"<(?:!doctype|html|head|body|div|p|span|ul|ol|li|h[1-6]|dl|dt|dd|table|tr|td|section|article|br|main)\b",
    re.IGNORECASE,
)


def _collapse(text: str) -> str:
    """Runs of whitespace (Unicode's, no-break spaces included) -> one space, ends stripped."""
    return " ".join(text.split())


def _looks_like_html(text: str) -> bool:
    return bool(_HTML_HINT.search(text[:5000]))


def page_lines(source, *, is_html: bool | None = None) -> list[Line]:
    """The visible lines of a page, in reading order.

    `source`: an HTML or plain-text page as str, bytes or a Scrapy Response.
    `is_html=None` guesses (a Response with an HTML content type, or text with
    HTML tags, is HTML)."""
    text: str | None = None
    raw: bytes | None = None
    encoding: str | None = None
    if isinstance(source, str):
        text = source
    elif isinstance(source, (bytes, bytearray)):
        raw = bytes(source)
    else:  # a Scrapy Response (or anything with .body)
        raw = source.body
        encoding = getattr(source, "encoding", None)
        if is_html is None:
            ctype = (source.headers.get(b"Content-Type") or b"").decode("latin-1").lower()
            if "html" in ctype or "xml" in ctype:
                is_html = True
            elif ctype.startswith("text/plain"):
                is_html = False
    if is_html is None:
        sample = text if text is not None else raw[:5000].decode("utf-8", "replace")
        is_html = _looks_like_html(sample)
    if is_html:
        return _html_lines(text if text is not None else raw, encoding)
    if text is None:
        text = raw.decode(encoding or "utf-8", "replace")
    return _text_lines(text)


def _text_lines(text: str) -> list[Line]:
    out: list[Line] = []
    indents: list[int] = []  # indentation of the open bullet levels
    for raw_line in text.splitlines():
        if not raw_line.strip():
            continue
        expanded = raw_line.expandtabs(4)
        body = expanded.lstrip()
        indent = len(expanded) - len(body)
        bullet = False
        while True:  # "- • text": several markers in a row are one bullet
            m = _BULLET.match(body)
            if not m:
                break
            body, bullet = body[m.end():], True
        if not bullet and indent:
            m = _NUMBERED.match(body)
            if m:
                body, bullet = body[m.end():], True
        body = _collapse(body)
        if not body:
            continue
        if bullet:
            while indents and indent < indents[-1]:
                indents.pop()
            if not indents or indent > indents[-1]:
                indents.append(indent)
            out.append(Line(body, True, len(indents)))
        else:
            indents.clear()
            out.append(Line(body, False, 0))
    return out


class _LineBuilder:
    def __init__(self):
        self.lines: list[Line] = []
        self.parts: list[str] = []
        self.bullet = False
        self.depth = 0
        self.li_started: set[int] = set()  # numbers of the <li> whose first line was emitted
        self.li_count = 0

    def add(self, text: str, li_id: int | None, depth: int) -> None:
        if not text:
            return
        if not self.parts and not text.strip():
            return
        if not self.parts:
            # The first line of a list item is its bullet; further lines of
            # the same item (after a <br> or a <p>) are continuations.
            self.bullet = li_id is not None and li_id not in self.li_started
            self.depth = depth
            if li_id is not None:
                self.li_started.add(li_id)
        self.parts.append(text)

    def add_pre(self, text: str, li_id: int | None, depth: int) -> None:
        chunks = text.split("\n")
        for i, chunk in enumerate(chunks):
            if i:
                self.flush()
            self.add(chunk, li_id, depth)

    def flush(self) -> None:
        if self.parts:
            text = _collapse("".join(self.parts))
            if text:
                self.lines.append(Line(text, self.bullet, self.depth))
        self.parts = []


def _html_lines(markup, encoding: str | None) -> list[Line]:
    if isinstance(markup, bytes):
        parser = lxml.html.HTMLParser(encoding=encoding) if encoding else lxml.html.HTMLParser()
        try:
            root = lxml.html.document_fromstring(markup, parser=parser)
        except (lxml.etree.ParserError, ValueError):
            return []
    else:
        markup = re.sub(r"^\s*<\?xml[^>]*\?>", "", markup)
        if not markup.strip():
            return []
        try:
            root = lxml.html.document_fromstring(markup)
        except (lxml.etree.ParserError, ValueError):
            return []
    builder = _LineBuilder()
    _walk(root, builder, li_id=None, list_depth=0, li_depth=0, pre=False)
    builder.flush()
    return builder.lines


def _walk(el, b: _LineBuilder, li_id, list_depth: int, li_depth: int, pre: bool) -> None:
    tag = el.tag.lower() if isinstance(el.tag, str) else None
    if tag is None or tag in DROP_TAGS:  # comments, processing instructions, invisible
        return
    if el.get("hidden") is not None or _DISPLAY_NONE.search(el.get("style") or ""):
        return
    block = tag in BLOCK_TAGS
    if tag in LIST_TAGS:
        list_depth += 1
    if tag == "li":  # numbered, not id(el): lxml proxies are short-lived and ids get reused
        b.li_count += 1
        li_id, li_depth = b.li_count, max(1, list_depth)
    if tag == "pre":
        pre = True
    if block:
        b.flush()
    if el.text:
        (b.add_pre if pre else b.add)(el.text, li_id, li_depth)
    for child in el:
        _walk(child, b, li_id, list_depth, li_depth, pre)
        if child.tail:
            (b.add_pre if pre else b.add)(child.tail, li_id, li_depth)
    if block:
        b.flush()


# --------------------------------------------------------------------------
# lines -> sections


def label_key(text: str) -> str:
    """How a printed label is compared: NFKC, casefolded, whitespace
    collapsed, trailing ':' ignored."""
    text = unicodedata.normalize("NFKC", text)
    return _collapse(text).rstrip(":\uff1a").rstrip().casefold()


class _Table:
    """Label keys -> canonical labels, and the longest key (a longer line
    cannot be a label, so most lines are never normalized)."""

    __slots__ = ("keys", "longest")

    def __init__(self, keys: dict[str, str]):
        self.keys = keys
        self.longest = max((len(k) for k in keys), default=0)

    def get(self, text: str) -> str | None:
        # Lines from page_lines are whitespace-collapsed already; one three
        # times longer than the longest label cannot normalize down to it.
        if len(text) > 3 * self.longest + 8:
            return None
        return self.keys.get(label_key(text))


def _label_table(labels: Mapping[str, str] | Sequence[str]) -> _Table:
    if isinstance(labels, Mapping):
        items = tuple(labels.items())
    elif isinstance(labels, str):
        raise TypeError("labels: a sequence of labels or a mapping, not one string")
    else:
        items = tuple((label, label) for label in labels)
    return _cached_table(items)


@lru_cache(maxsize=64)
def _cached_table(items: tuple[tuple[str, str], ...]) -> _Table:
    table: dict[str, str] = {}
    for printed, canonical in items:
        key = label_key(printed)
        if not key:
            raise ValueError(f"empty label {printed!r}")
        table.setdefault(key, canonical)
    return _Table(table)


def read_sections(lines: list[Line], labels: Mapping[str, str] | Sequence[str]) -> dict[str, Section]:
    """Cut `lines` at the configured labels.

    `labels`: a sequence of labels (each its own canonical name), or a
    mapping of printed form -> canonical label (several printed forms may
    share one canonical label). A line whose text equals a label (see
    `label_key`) starts that section; the section's lines are the lines up
    to the next recognised label (none when the label is printed with no
    value). The first occurrence of a label wins: a later line repeating it
    is kept as text of the section it falls in. Lines before the first label
    are not in any section (see `preamble`). The dict is in page order."""
    table = _label_table(labels)
    sections: dict[str, Section] = {}
    current: Section | None = None
    for line in lines:
        canonical = table.get(line.text)
        if canonical is not None and canonical not in sections:
            current = sections[canonical] = Section(canonical, [])
            continue
        if current is not None:
            current.lines.append(line)
    return sections


def preamble(lines: list[Line], labels: Mapping[str, str] | Sequence[str]) -> list[Line]:
    """The lines before the first recognised label (a page's title, its
    sponsor, its navigation)."""
    table = _label_table(labels)
    out: list[Line] = []
    for line in lines:
        if table.get(line.text) is not None:
            break
        out.append(line)
    return out


# --- the markup of a label's value -------------------------------------------------
# Lines lose element boundaries: condition chips printed side by side, table
# cells. These find the elements that print a label's value, still by the
# label's words, so a site can split chips and rows from its markup.
# Invisible elements the markup pass ignores (buttons and form controls are
# kept here: a site may print chips as buttons).
_DROP = frozenset({"script", "style", "noscript", "template", "svg"})
_CELL_TAGS = frozenset({"td", "th"})
_CELL_ROLES = frozenset({"cell", "columnheader", "rowheader", "gridcell"})


class Markup:
    """The text nodes of an HTML page in reading order, so that a label's value
    (the text from a label to the next label) can be mapped back to the
    elements that print it."""

    _TEXTS = lxml.etree.XPath("//body//text()")

    def __init__(self, root):
        self.holders: list[Any] = []  # the element that holds each text node
        self.keys: list[str | None] = []  # its label key, for texts short enough to be a label
        for el in list(root.iter(*_DROP)):
            el.text = None  # invisible: never a label nor a value
            del el[:]
        for node in self._TEXTS(root):
            if node.isspace():
                continue
            holder = node.getparent()
            if not node.is_text:  # a tail belongs to the enclosing element
                holder = holder.getparent()
            if holder is None:
                continue
            self.holders.append(holder)
            self.keys.append(label_key(node) if len(node) <= _MAX_LABEL else None)

    def value_elements(self, label: str, labels: set[str]) -> list[Any]:
        """The elements holding the text between `label` and the next label."""
        key = label_key(label)
        try:
            start = self.keys.index(key)
        except ValueError:
            return []
        out = []
        for i in range(start + 1, len(self.keys)):
            if self.keys[i] in labels:
                break
            out.append(self.holders[i])
        return out


_MAX_LABEL = 60


def _common_ancestor(elements: list[Any]):
    if not elements:
        return None
    chain = [elements[0], *elements[0].iterancestors()]
    for el in elements[1:]:
        ancestors = {id(a) for a in (el, *el.iterancestors())}
        while chain and id(chain[0]) not in ancestors:
            chain.pop(0)
    return chain[0] if chain else None


def _own_text_is_blank(el) -> bool:
    if (el.text or "").strip(" \t\r\n,;|·•"):
        return False
    return all(not (child.tail or "").strip(" \t\r\n,;|·•") for child in el)


def value_chips(elements: list[Any]) -> list[str] | None:
    """The items of a value printed as sibling inline elements (chips, tags),
    or None when the value is not such a list."""
    container = _common_ancestor(elements)
    # Step down through wrappers holding one element and no text of their own.
    while container is not None and len(container) >= 1 and _own_text_is_blank(container):
        kids = [c for c in container if isinstance(c.tag, str) and " ".join(c.text_content().split())]
        if len(kids) != 1:
            break
        container = kids[0]
    if container is None or not _own_text_is_blank(container):
        return None
    kids = [c for c in container if isinstance(c.tag, str)]
    items = [t for t in (" ".join(c.text_content().split()) for c in kids) if t]
    return items if len(items) >= 2 else None


def _is_cell(el) -> bool:
    return (isinstance(el.tag, str) and el.tag.lower() in _CELL_TAGS) or (el.get("role") or "") in _CELL_ROLES


def _is_row(el) -> bool:
    return (isinstance(el.tag, str) and el.tag.lower() == "tr") or el.get("role") == "row"


def table_rows(elements: list[Any]) -> list[list[str]] | None:
    """The rows of the table holding the value, each a list of cell texts
    (empty cells kept), or None when the value is not a table."""
    container = _common_ancestor(elements)
    if container is None:
        return None
    table = next((a for a in (container, *container.iterancestors()) if _is_table(a)), None)
    if table is None:
        table = next((t for t in container.iter() if isinstance(t.tag, str) and _is_table(t)), None)
    if table is None:
        return None
    rows = [r for r in table.iter() if isinstance(r.tag, str) and _is_row(r)]
    return [[_cell_text(c) for c in row if isinstance(c.tag, str) and _is_cell(c)] for row in rows]


def _is_table(el) -> bool:
    return el.tag == "table" or (el.get("role") or "") in ("table", "grid")


def _cell_text(cell) -> str:
    """A cell's text: one line per block inside it, inline text joined."""
    lines: list[str] = []
    parts: list[str] = []

    def flush():
        text = " ".join("".join(parts).split())
        if text:
            lines.append(text)
        parts.clear()

    for event, el in lxml.etree.iterwalk(cell, events=("start", "end")):
        tag = el.tag.lower() if isinstance(el.tag, str) else None
        if tag is None:
            if event == "end" and el is not cell and el.tail:
                parts.append(el.tail)
            continue
        block = tag in BLOCK_TAGS and el is not cell
        if event == "start":
            if block:
                flush()
            if el.text and tag not in _DROP:
                parts.append(el.text)
        else:
            if block:
                flush()
            if el is not cell and el.tail:
                parts.append(el.tail)
    flush()
    return "\n".join(lines)



def html_root(body: bytes | str, encoding: str | None = None):
    """The parsed document, or None when the body is not HTML lxml can read."""
    try:
        if isinstance(body, bytes):
            parser = lxml.html.HTMLParser(encoding=encoding) if encoding else None
            return lxml.html.document_fromstring(body, parser=parser)
        return lxml.html.document_fromstring(body)
    except (lxml.etree.ParserError, ValueError):
        return None


def criteria_items(lines: list[Line]) -> list[str]:
    """Criteria lines -> items. The page decides what an item is: each bullet
    starts one, and a paragraph printed after a bullet belongs to that bullet
    (appended after a space); with no bullets at all, each line is an item.
    `split_items` then cleans each (markers, CT.gov escapes) and splits a
    run-on enumeration ("(1) ...; (2) ...") the way the CT.gov parser does."""
    groups: list[str] = []
    any_bullet = any(ln.bullet for ln in lines)
    for ln in lines:
        if ln.bullet or not any_bullet or not groups:
            groups.append(ln.text)
        else:
            groups[-1] = f"{groups[-1]} {ln.text}"
    # One bullet per group, so that split_items keeps the page's boundaries.
    return split_items([f"* {group}" for group in groups])
