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

__all__ = ["Line", "Section", "PageContent", "page_lines", "page_content", "read_sections", "preamble",
           "label_key", "text_chrome", "content_region"]


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
    return page_content(source, is_html=is_html).lines


@dataclass
class PageContent:
    """A page's lines, with what was left out as site chrome (header, menus,
    breadcrumbs, cookie banners, sidebars, footers) kept apart."""

    lines: list[Line]
    chrome: list[Line]
    is_html: bool
    title: str | None = None  # <title>
    og_title: str | None = None  # <meta property="og:title">
    h1: str | None = None  # the first <h1> of the content
    root: Any = None  # HTML: the content element, chrome removed (for reading markup)


def page_text(source) -> tuple[str | None, bytes | None]:
    """(decoded text, raw bytes) of a page. A Scrapy response is decoded the
    way Scrapy does it: the HTTP header's charset, else a byte-order mark, else
    the page's own <meta charset>, else detected; bytes alone are decoded by
    BOM, <meta charset> and detection (w3lib)."""
    if isinstance(source, str):
        return source, None
    if isinstance(source, (bytes, bytearray)):
        from w3lib.encoding import html_to_unicode

        return html_to_unicode(None, bytes(source))[1], bytes(source)
    return source.text, source.body


def page_content(source, *, is_html: bool | None = None, chrome: bool = True,
                 labels: Mapping[str, str] | Sequence[str] = ()) -> PageContent:
    """The visible lines of a page, in reading order, with the site chrome
    left out (`chrome=False` keeps it). See `page_lines`. `labels` (the
    site's) keep a sidebar that prints labels the content does not (see
    `content_region`)."""
    if is_html is None and not isinstance(source, (str, bytes, bytearray)):
        ctype = (source.headers.get(b"Content-Type") or b"").decode("latin-1").lower()
        if "html" in ctype or "xml" in ctype:
            is_html = True
        elif ctype.startswith("text/plain"):
            is_html = False
    text, _ = page_text(source)
    if is_html is None:
        is_html = _looks_like_html(text)
    if is_html:
        return _html_content(text, chrome, labels)
    lines = _text_lines(text)
    if not chrome:
        return PageContent(lines, [], False)
    kept, dropped = text_chrome(lines, labels)
    return PageContent(kept, dropped, False)


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


def _element_lines(el) -> list[Line]:
    builder = _LineBuilder()
    _walk(el, builder, li_id=None, list_depth=0, li_depth=0, pre=False)
    builder.flush()
    return builder.lines


def _html_content(markup: str, chrome: bool, labels=()) -> PageContent:
    root = html_root(markup)
    if root is None:
        return PageContent([], [], True)
    title = _collapse(" ".join(root.xpath("//head/title//text()"))) or None
    og = root.xpath("//meta[@property='og:title']/@content")
    og_title = _collapse(og[0]) if og else None
    if not chrome:
        return PageContent(_element_lines(root), [], True, title, og_title, None, root)
    content, dropped = content_region(root, labels)
    body = root.find("body")
    outside = _lines_outside(body, {content}) if body is not None and content is not body else []
    chrome_lines = outside + [ln for el in dropped for ln in _element_lines(el)]
    for el in dropped:
        el.drop_tree()
    h1 = content.xpath(".//h1")
    h1_text = _collapse(h1[0].text_content()) if h1 else None
    return PageContent(_element_lines(content), chrome_lines, True, title, og_title, h1_text or None, content)


# --- site chrome -----------------------------------------------------------------
# The page's content is found by what HTML says it is (main, role=main, the
# article), never by a site's class names; inside it, what HTML and ARIA call
# navigation, complementary content and dialogs is chrome, and so is what
# calls itself a breadcrumb, cookie or consent banner (the one place class and
# id words are read: they name chrome, never content).
_CHROME_TAGS = ("nav", "aside", "dialog")
_PAGE_CHROME_TAGS = ("header", "footer")  # chrome when they belong to the page, not to the content
_CHROME_ROLES = frozenset({"navigation", "complementary", "banner", "contentinfo", "search", "dialog",
                           "alertdialog", "menu", "menubar"})
_CHROME_WORDS = re.compile(r"(?:^|[\s_-])(?:breadcrumbs?|cookies?|consent|gdpr|sidebar|site-?nav|"
                           r"site-?header|site-?footer|menu|navbar)(?:$|[\s_-])", re.I)


def content_region(root, labels: Mapping[str, str] | Sequence[str] = ()):
    """(the element holding the page's content, [the chrome elements inside it]).

    A sidebar (aside, role=complementary) is kept when it prints labels of
    the site (`labels`) that the rest of the content does not, and does not
    call itself a list of other trials ("Similar trials"): it is then the
    page's own, laid out beside the rest."""
    body = root.find("body")
    body = body if body is not None else root
    content = None
    for xpath in ("//main", "//*[@role='main']"):
        found = body.xpath(xpath)
        if found:
            content = found[0]
            break
    if content is None:
        articles = body.xpath("//article")
        with_h1 = [a for a in articles if a.xpath(".//h1")]
        if len(articles) == 1 or len(with_h1) == 1:
            content = (with_h1 or articles)[0]
    if content is None:
        content = body
    dropped = []
    for el in content.iter():
        if not isinstance(el.tag, str) or el is content:
            continue
        if any(a in dropped for a in el.iterancestors()):
            continue
        if _is_chrome(el, content):
            dropped.append(el)
    sidebars = [el for el in dropped if el.tag.lower() == "aside" or (el.get("role") or "").lower() == "complementary"]
    if sidebars and labels:
        table = _label_table(labels)
        outside = set(dropped)
        main_keys = {table.get(ln.text) for ln in _lines_outside(content, outside)} - {None}
        for el in sidebars:
            lines = _element_lines(el)
            own = {table.get(ln.text) for ln in lines} - {None}
            if own - main_keys and not (lines and _SIDEBAR.match(lines[0].text)):
                dropped.remove(el)
                main_keys |= own
    return content, dropped


def _lines_outside(content, dropped: set) -> list[Line]:
    """The lines of `content` without the `dropped` elements (which stay in the tree)."""
    saved = []
    for el in dropped:
        parent = el.getparent()
        if parent is not None:
            saved.append((parent, parent.index(el), el))
    for parent, _, el in saved:
        parent.remove(el)
    try:
        return _element_lines(content)
    finally:
        for parent, index, el in reversed(saved):
            parent.insert(index, el)


def _is_chrome(el, content) -> bool:
    tag = el.tag.lower()
    role = (el.get("role") or "").lower()
    if tag in _CHROME_TAGS or role in _CHROME_ROLES:
        return True
    if el.get("aria-label") and "breadcrumb" in el.get("aria-label").lower():
        return True
    if tag in _PAGE_CHROME_TAGS:
        # a header or footer of the page (not of an article or section of the content)
        return not any(isinstance(a.tag, str) and a.tag.lower() in ("article", "section", "main")
                       for a in el.iterancestors() if a is not content) and content.tag.lower() == "body"
    words = f"{el.get('class') or ''} {el.get('id') or ''}"
    return bool(words.strip()) and bool(_CHROME_WORDS.search(words))


# In text (a page already rendered to lines) chrome has shapes of its own.
_MENU_SEPARATORS = re.compile(r"\s+[·|•‧∙]\s+")
_CRUMB_SEPARATORS = re.compile(r"\s+[>/›»]\s+")
_COOKIE = re.compile(r"\bcookies?\b", re.I)
_BUTTONS = frozenset({"accept", "accept all", "reject", "reject all", "decline", "ok", "got it",
                      "manage preferences", "cookie settings", "settings", "close"})
_SIDEBAR = re.compile(r"^(?:similar|related|other|more|recommended|popular|recently viewed|featured)\b"
                      r".{0,40}\b(?:trials?|studies)\b|^you (?:may|might) also\b", re.I)
_FOOTER = re.compile(r"^(?:©|\(c\)\s|copyright\b)|^(?:privacy policy|terms of (?:use|service))$", re.I)


_NAV_WORDS = frozenset({"home", "menu", "search", "find trials", "find a trial", "trials", "clinical trials",
                        "about", "about us", "contact", "contact us", "log in", "login", "sign in", "sign up",
                        "register", "for sponsors", "for patients", "for sites", "blog", "faq", "help", "news",
                        "resources"})


# Words a trial site's menu shows, label words of some site or other.
_MENU_LABEL_WORDS = frozenset({"status", "sex", "gender", "locations", "conditions", "phase", "phases", "sponsor",
                               "sponsors", "eligibility", "age", "ages", "interventions", "treatments",
                               "study type", "enrollment", "outcomes", "contacts", "overview", "summary",
                               "details", "trials", "studies"})


def _menu_runs(lines: list[Line], table: "_Table | None") -> set[int]:
    """Indexes of lines in a menu printed one entry per line: a run of three
    or more short lines that are all labels or menu words, with at least one
    navigation word that is not a label of the site ("Home", "Contact")."""
    out: set[int] = set()
    i = 0
    while i < len(lines):
        j = i
        nav = 0
        while j < len(lines) and len(lines[j].text) <= 30 and not lines[j].bullet:
            key = label_key(lines[j].text)
            is_label = table is not None and table.get(lines[j].text) is not None
            if key in _NAV_WORDS and not is_label:
                nav += 1
            elif not is_label and key not in _MENU_LABEL_WORDS:
                break
            j += 1
        if j - i >= 3 and nav:
            out.update(range(i, j))
            i = j
        else:
            i += 1
    return out


def text_chrome(lines: list[Line], labels: Mapping[str, str] | Sequence[str] = ()) -> tuple[list[Line], list[Line]]:
    """(content lines, chrome lines) of a page rendered as text: a menu line
    (three or more short entries separated by "·" or "|"), a menu one entry
    per line (three or more lines that are labels or navigation words, one of
    them a navigation word), a breadcrumb line ("Home > Trials > ..."), a
    cookie banner and its buttons; a sidebar heading ("Similar trials") or
    the footer ("©", "Privacy policy") ends the content."""
    kept: list[Line] = []
    dropped: list[Line] = []
    after_cookie = False
    menu = _menu_runs(lines, _label_table(labels) if labels else None)
    for i, line in enumerate(lines):
        text = line.text
        if i in menu:
            dropped.append(line)
            continue
        if _SIDEBAR.match(text) or _FOOTER.match(text):
            dropped.extend(lines[i:])
            break
        parts = _MENU_SEPARATORS.split(text)
        crumbs = _CRUMB_SEPARATORS.split(text)
        if (len(parts) >= 3 and all(len(p) <= 30 for p in parts)) or \
                (len(crumbs) >= 2 and all(len(p) <= 40 for p in crumbs[:-1]) and not line.bullet
                 and crumbs[0].casefold() in ("home", "search", "trials", "clinical trials", "studies")):
            dropped.append(line)
            continue
        if _COOKIE.search(text) and not line.bullet:
            dropped.append(line)
            after_cookie = True
            continue
        if after_cookie and text.casefold() in _BUTTONS:
            dropped.append(line)
            continue
        after_cookie = False
        kept.append(line)
    return kept, dropped


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
        inline = _inline_label(line, table)
        if inline is not None and inline[0] not in sections:
            current = sections[inline[0]] = Section(inline[0], [Line(inline[1], False, 0)])
            continue
        if current is not None:
            current.lines.append(line)
    return sections


def _inline_label(line: Line, table: "_Table") -> tuple[str, str] | None:
    """("Status", "Recruiting") for a line "Status: Recruiting" printed on one
    line (not a list item: "Sex: male" in a criteria list is a criterion)."""
    if line.bullet or ":" not in line.text:
        return None
    head, _, value = line.text.partition(":")
    value = value.strip()
    if not value or len(head) > table.longest + 2:
        return None
    canonical = table.keys.get(label_key(head))
    return (canonical, value) if canonical is not None else None


def preamble(lines: list[Line], labels: Mapping[str, str] | Sequence[str]) -> list[Line]:
    """The lines before the first recognised label (a page's title, its
    sponsor, its navigation)."""
    table = _label_table(labels)
    out: list[Line] = []
    for line in lines:
        if table.get(line.text) is not None or _inline_label(line, table) is not None:
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

    _TEXTS = lxml.etree.XPath(".//text()")

    def __init__(self, root):
        """`root`: the element whose text is read (a document's body, or the
        content element of `page_content`)."""
        if root.tag == "html" and root.find("body") is not None:
            root = root.find("body")
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
    """The parsed document, or None when the body is not HTML lxml can read.
    Bytes are decoded first (`encoding`, else BOM, <meta charset>, detection),
    so lxml never sees an encoding name it does not know."""
    if isinstance(body, (bytes, bytearray)):
        if encoding:
            body = bytes(body).decode(encoding, "replace")
        else:
            body = page_text(bytes(body))[0]
    body = re.sub(r"^\ufeff?\s*<\?xml[^>]*\?>", "", body)
    if not body.strip():
        return None
    try:
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
