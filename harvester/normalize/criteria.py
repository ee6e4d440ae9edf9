"""Eligibility criteria text -> lists of items.

- `split_criteria(text) -> (inclusion, exclusion)`: cut a criteria block at
  its "Inclusion Criteria:" / "Exclusion Criteria:" headings (any case, a
  Turkish keyboard's "İ" for "I" too, colon optional, bullets or markdown
  emphasis around them allowed, "Key ..." and "... for Part A:" variants),
  then `split_items` each part. A heading must open its line, so "the
  inclusion/exclusion criteria for other trials" inside an item is not a
  heading. Text before the first heading, or a block
  with no heading at all, counts as inclusion (CT.gov's convention for
  unheaded criteria). Repeated headings (per cohort) append to their list.
- `split_items(text_or_lines) -> list[str]`: one clean string per criterion.
- Should splitting fail on some value, the text is kept whole (one item) and
  a warning says why: never an exception into the page object, never silent.

How items are found:
- every line that starts with a bullet ("* ", "- ", "• ", "- • ", "-Text")
  or a number/letter marker ("1. ", "1) ", "(1) ", "a) ", "1.1. ") starts an
  item; nested (indented) items are separate items, in page order;
- a marker on a line of its own takes the next line as its text;
- a line without a marker is its own item when the text has no markers at
  all (Veeva prints one criterion per line) or after a blank line; directly
  under a marked line it continues that item only when it is indented deeper
  or starts in lower case (a hard-wrapped line);
- run-on enumerations inside one line ("...criteria:a) Relapsed: ... b)
  Refractory: ...", "(1) Liver ...; (2) Renal ...", "...; 7. patients ...")
  are split when the markers form a sequence (a, b, c / 1, 2, 3 / i, ii,
  iii, one gap allowed in numbers) with real text between them, so "(e.g.,
  sepsis, ...)", "Stage III-IV", "i.e.," or "criteria (1) or (2)" stay put;
- a bulleted list run onto its heading's line ("Inclusion Criteria: -
  Informed consent ... - Woman with ...") is split at its " - " bullets
  before a capital, between pieces of two words or more, and not inside a
  range ("Stage II - IV"); only there: elsewhere a dash inside a line is a
  dash ("Age 18 - 65 years");
- markers are removed, CT.gov markdown escapes are undone, whitespace is
  cleaned, empty items are dropped.
"""
from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Any, Iterable, NamedTuple

from .text import clean_text, to_str, unescape_ctgov

__all__ = ["split_criteria", "split_items"]

logger = logging.getLogger(__name__)

# --- headings -------------------------------------------------------------------

_DECOR = re.compile(r"[\s*_#>|•·\-–—]*")
_LEAD = r"(?:(?:key|main|major|general|additional|other|specific)\s+)?(?P<kind>inclusion|exclusion)"
# "Inclusion Criteria: text", "Key Exclusion Criteria (Part A):", "**Inclusion criteria**:"
_H_COLON = re.compile(
    _LEAD + r"\s+criteri(?:a|on)(?:\s*\([^()\n]{0,60}\)|\s+(?:for|in|of)\s+[^:\n]{1,60}?)?"
    r"\s*[*_]*\s*[:：]\s*[*_]*\s*(?P<rest>.*)",
    re.I | re.S,
)
# "Inclusion criteria" alone on its line (Veeva, MedPath)
_H_BARE = re.compile(
    _LEAD + r"\s+criteri(?:a|on)(?:\s*\([^()\n]{0,60}\)|\s+for\s+[^:\n]{1,40})?\s*[*_]*\s*",
    re.I,
)
# "Inclusion: text"
_H_SHORT = re.compile(r"(?P<kind>inclusion|exclusion)s?\s*[*_]*\s*[:：]\s*[*_]*\s*(?P<rest>.*)", re.I | re.S)
# The letters outside ASCII that re.I matches to a letter of "clusion"
# (checked over every code point)
_READ_AS_ASCII = {"İ": b"i", "ı": b"i", "ſ": b"s"}
_INLINE_EXCLUSION = re.compile(r"(?<=[\s.;])(?:key\s+)?exclusion\s+criteria\s*[:：]", re.I)


def _heading(line: str) -> tuple[str, str] | None:
    """("inclusion"|"exclusion", rest of line) when the line is a heading."""
    body = _DECOR.sub("", line, count=1)
    m = _H_COLON.match(body) or _H_SHORT.match(body)
    if m:
        return _kind(m.group("kind")), m.group("rest").strip()
    m = _H_BARE.fullmatch(body)
    if m:
        return _kind(m.group("kind")), ""
    return None


def _kind(word: str) -> str:
    """The kind of a heading's word as printed, "inclusion" or "exclusion".
    Not word.lower(): the patterns (re.I) read a Turkish "İ" or "ı" as "i",
    as the sponsor meant it, but "İnclusion".lower() is "i̇nclusion" (an "i"
    and a combining dot), no kind at all."""
    return "exclusion" if word[0] in "eE" else "inclusion"


def _heading_line(line: str) -> tuple[str, str] | None:
    """`_heading` of a printed line. A short line's reading is remembered:
    registries print the same few headings ("Inclusion Criteria:", "Key
    Exclusion Criteria:") in every record. A longer line is a criterion that
    mentions the criteria, or a heading with its record's own text after it:
    it would not come again, only fill the cache."""
    if len(line) <= _SHORT_LINE:
        return _short_heading_line(line)
    return _heading(unescape_ctgov(line))


_SHORT_LINE = 100  # "   Additional Inclusion Criteria for Mild to Moderate Illness COVID-19 ...:" is 96


@lru_cache(maxsize=4096)
def _short_heading_line(line: str) -> tuple[str, str] | None:
    return _heading(unescape_ctgov(line))


def split_criteria(text: Any) -> tuple[list[str], list[str]]:
    """Criteria block -> (inclusion items, exclusion items)."""
    s = to_str(text)
    if not s or not s.strip():
        return [], []
    try:
        return _split_criteria(s)
    except Exception as exc:  # never let an odd value sink the run, nor pass unseen
        _not_split("criteria block", "one inclusion item", exc)
        items = [t for t in (clean_text(s),) if t]
        return items, []


def _not_split(what: str, kept_as: str, exc: Exception) -> None:
    """A text kept whole because splitting it failed is a warning (Scrapy
    counts warnings in a crawl's stats, log_count/WARNING). The reason only:
    these functions know no study, and the text may be long."""
    reason = f"{type(exc).__name__}: {exc}"
    if len(reason) > 200:
        reason = reason[:199] + "…"
    logger.warning("%s not split, kept whole as %s (%s)", what, kept_as, reason)


def _split_criteria(s: str) -> tuple[list[str], list[str]]:
    if "\r" in s:
        s = s.replace("\r\n", "\n").replace("\r", "\n")
    lines = s.split("\n")
    parts: dict[str, list[str]] = {"inclusion": [], "exclusion": []}
    current = "inclusion"
    found = False
    # Only a line with "clusion" in it (any case) can be a heading: those
    # lines are found with bytes.find in the text lowered once, not line by
    # line. bytes.lower() lowers the ASCII letters only (several times faster
    # than str.lower() on a non-ASCII text). The heading patterns (re.I) also
    # read three other letters as letters of "clusion": a Turkish keyboard's
    # "İ" and "ı" as "i" ("EXCLUSİON CRİTERİA:") and "ſ" as "s"; they become
    # those letters here, so every line the patterns read as a heading is
    # looked at. The bytes are only searched, never cut back into text, and
    # UTF-8 keeps the line breaks, so the n-th line of the bytes is the n-th
    # line of the text whatever the lengths.
    lowered = s.encode("utf-8", "surrogatepass").lower()
    if not s.isascii():
        for letter, ascii_letter in _READ_AS_ASCII.items():
            if letter in s:  # rare: the text's search is far cheaper than the bytes' replace
                lowered = lowered.replace(letter.encode(), ascii_letter)
    copied = 0  # lines before this one are in `parts`
    line_no = 0  # the line holding lowered[counted]
    counted = 0
    pos = lowered.find(b"clusion")
    while pos != -1:
        line_no += lowered.count(b"\n", counted, pos)
        counted = pos
        h = _heading_line(lines[line_no])
        if h:
            found = True
            parts[current].extend(lines[copied:line_no])
            copied = line_no + 1
            current, rest = h
            parts[current].append("")  # a heading ends the previous item
            if rest:
                parts[current].extend(_unflattened(rest))
        end = lowered.find(b"\n", pos)
        if end == -1:
            break
        pos = lowered.find(b"clusion", end)
    parts[current].extend(lines[copied:])
    if not found or not parts["exclusion"]:
        # One-line blocks: "Inclusion Criteria: a; b. Exclusion Criteria: c"
        m = _INLINE_EXCLUSION.search(s)
        if m and "\n" not in s[m.start() - 1: m.start()]:
            return _split_criteria(s[: m.start()] + "\n" + s[m.start():])
    return _items(parts["inclusion"]), _items(parts["exclusion"])


# "Inclusion Criteria: - Informed consent ... - Woman with a positive ..."
# (NCT01892319): a bulleted list run onto its heading's line. Only where the
# text after the heading opens with the "- " bullet itself does " - " start
# the next item, and only before a capital letter, between two pieces of
# two words or more, and not inside a range ("Stage II - IV"); elsewhere a dash
# inside a line is a dash ("Age 18 - 65 years").
_FLAT_DASH = re.compile(r" - (?=[^\W\d_])")
_RANGE_END = re.compile(r"(?:[IVX]+|\d+)[a-c]?", re.I)


def _item_like(text: str) -> bool:
    """Two words or more, with letters: what an item of such a list holds."""
    return _segment_ok(text) and len(text.split(None, 2)) > 1


def _unflattened(rest: str) -> list[str]:
    """The lines of what follows a heading on its own line."""
    if not (rest.startswith("- ") and " - " in rest):
        return [rest]
    lines: list[str] = []
    for piece in _FLAT_DASH.split(rest[2:]):
        if lines and not (piece[0].isupper() and _item_like(piece) and _item_like(lines[-1])
                          and not (_RANGE_END.fullmatch(lines[-1].rsplit(None, 1)[-1])
                                   and _RANGE_END.fullmatch(piece.split(None, 1)[0]))):
            lines[-1] = f"{lines[-1]} - {piece}"
        else:
            lines.append(piece)
    return ["- " + line for line in lines]


# --- items ----------------------------------------------------------------------

# Bullets: symbols, "* "/"+ " (markdown), "-"/"–" before a space or a letter.
_BULLETS = re.compile(
    r"(?:[•·▪◦‣●○■□▶►➢➤✓✔]\s*|[*+](?:\s+|$)|[-–—](?:\s+|$|(?=[^\W\d_]|[•*])))+"
)
_BULLET_START = frozenset("•·▪◦‣●○■□▶►➢➤✓✔*+-–—")
# A number/letter marker opening a line: "1.", "1)", "(1)", "1.1.", "a)", "(a)", "a.", "i)"
_MARKER = re.compile(
    r"(?:\(\s*(?:\d{1,3}|[a-zA-Z]|[ivxIVX]{1,5})\s*\)|(?:\d{1,3}(?:\.\d{1,3})*|[a-zA-Z]|[ivx]{1,5})[.)、])"
    r"(?=\s|$)\s*"
)
# Markers inside a line, for run-on enumerations. Each is matched where a
# ")" or a "N." can be (found with str.find / a regex that opens with a
# fixed character): scanning every position with one big pattern was the
# slowest part of criteria splitting.
_PAREN_MARK = re.compile(
    r"\((?P<p>\d{1,2}|[a-zA-Z]|[ivx]{2,5})\)"  # (1) (a) (ii)
    r"|(?<![\w\-/(])(?<!\d\.)(?P<c>\d{1,2}|[a-zA-Z]|[ivx]{2,5})\)"  # 1) a) ii)
)
_DOT_MARK = re.compile(r"(?P<d>\d{1,2})\.(?=\s)")  # "7. " at the start
_DOT_MARK_AFTER = re.compile(r"[;.]\s(?P<d>\d{1,2})\.(?=\s)")  # "...; 7. text"
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8, "ix": 9, "x": 10,
          "xi": 11, "xii": 12}
_MIN_SEGMENT = 4  # non-space characters of text a run-on item must have


class _Tok(NamedTuple):
    start: int
    end: int
    style: str  # "p" (1), "c" 1), "d" 1.
    reads: tuple[tuple[str, int], ...]  # possible (family, value)


def _reads(label: str) -> tuple[tuple[str, int], ...]:
    if label.isdigit():
        return (("num", int(label)),)
    out: list[tuple[str, int]] = []
    if len(label) == 1:
        fam = "lower" if label.islower() else "upper"
        out.append((fam, ord(label.lower()) - ord("a") + 1))
    if label in _ROMAN:
        out.append(("roman", _ROMAN[label]))
    return tuple(out)


def _tokens(s: str) -> list[_Tok]:
    toks = []
    last_end = 0
    idx = s.find(")")
    while idx != -1 and len(toks) <= _MAX_TOKENS:
        # the longest marker ending at this ")": "(ii)" before "ii)" before "i)"
        for start in range(max(last_end, idx - 6), idx):
            m = _PAREN_MARK.match(s, start, idx + 1)
            if m and m.end() == idx + 1:
                style = "p" if m.group("p") else "c"
                reads = _reads(m.group(style))
                if reads:
                    toks.append(_Tok(m.start(), m.end(), style, reads))
                    last_end = m.end()
                break
        idx = s.find(")", idx + 1)
    if "." in s:
        dots = []
        m = _DOT_MARK.match(s)
        if m:
            dots.append(_Tok(0, m.end(), "d", _reads(m.group("d"))))
        for m in _DOT_MARK_AFTER.finditer(s):
            dots.append(_Tok(m.start("d"), m.end(), "d", _reads(m.group("d"))))
        if dots:
            toks.extend(dots)
            toks.sort(key=lambda t: t.start)
    return toks


_MAX_TOKENS = 120  # markers looked at in one item (a real list has far fewer)
_MAX_STARTS = 6  # first markers ("1", "a", "i") tried as the start of a list


def _chain(toks: list[_Tok]) -> list[_Tok]:
    """The longest sequence of markers counting up from 1 (a, i), in order."""
    best: list[_Tok] = []
    toks = toks[:_MAX_TOKENS]
    starts = 0
    for i, t in enumerate(toks):
        for fam, val in t.reads:
            if val != 1:
                continue
            starts += 1
            if starts > _MAX_STARTS:
                return best if len(best) >= 2 else []
            chain = [t]
            cur_val, cur_style, j = 1, t.style, i + 1
            while j < len(toks):
                nxt = None
                for k in range(j, len(toks)):
                    tk = toks[k]
                    for f2, v2 in tk.reads:
                        if f2 != fam:
                            continue
                        step = v2 - cur_val
                        ok_step = step == 1 or (fam == "num" and step == 2)
                        # Same style, or a "7." closing a run of "(6)"-style items.
                        ok_style = tk.style == cur_style or (fam == "num" and tk.style == "d")
                        if ok_step and ok_style:
                            nxt = (k, v2)
                            break
                    if nxt:
                        break
                if not nxt:
                    break
                k, v2 = nxt
                chain.append(toks[k])
                cur_val, cur_style, j = v2, toks[k].style, k + 1
            if len(chain) > len(best):
                best = chain
    return best if len(best) >= 2 else []


_LETTER = re.compile(r"[^\W\d_]")
_ALNUM = re.compile(r"[^\W_]")


def _segment_ok(text: str) -> bool:
    return len("".join(text.split())) >= _MIN_SEGMENT and _LETTER.search(text) is not None


def _may_runon(s: str) -> bool:
    """Whether `s` has the first marker of a run-on list ("1)", "(1)", "a)",
    "i)", "A)", "1. ") and a second one ("2)", "3)" after a gap, "b)", "B)",
    "ii)", "2.", "3."), in ASCII digits (a text with other characters may
    hold other digits: it is looked at). Most items with a ")" only end a
    word in "a)" or "i)" ("(e.g., ... viremia)") and have no second marker.
    Read at each ")" (an item has few): a scan of the whole item for each
    marker cost more than the run-on splitting it saved."""
    first = second = False
    i = s.find(")", 1)  # a ")" opening the text closes no marker
    while i != -1:
        c = s[i - 1]
        if c in "1aiA":
            first = True
            if c == "i" and s[i - 2:i] == "ii":
                second = True
        elif c in "23bB":
            second = True
        i = s.find(")", i + 1)
    return (first or "1. " in s) and (second or "2." in s or "3." in s or not s.isascii())


def _split_runon(s: str, depth: int = 0) -> list[str]:
    """Split one item at a run-on enumeration; recurse into the pieces."""
    if depth > 3 or not _may_runon(s):
        return [s]
    chain = _chain(_tokens(s))
    if not chain:
        return [s]
    bounds = [t.start for t in chain] + [len(s)]
    segments = [s[chain[i].end:bounds[i + 1]] for i in range(len(chain))]
    if not all(_segment_ok(seg) for seg in segments):
        return [s]
    head = s[: chain[0].start]
    out: list[str] = []
    if head.strip():
        out.append(head)
    for seg in segments:
        out.extend(_split_runon(seg, depth + 1))
    return out


def _lines(text_or_lines: Any) -> list[str]:
    if text_or_lines is None:
        return []
    if isinstance(text_or_lines, str):
        s = text_or_lines
    elif isinstance(text_or_lines, bytes):
        s = to_str(text_or_lines) or ""
    elif isinstance(text_or_lines, (list, tuple)) and all(isinstance(v, str) for v in text_or_lines):
        s = "\n".join(text_or_lines)
    elif isinstance(text_or_lines, Iterable):
        s = "\n".join(x for x in (to_str(v) for v in text_or_lines) if x is not None)
    else:
        s = to_str(text_or_lines) or ""
    if "\r" in s:
        s = s.replace("\r\n", "\n").replace("\r", "\n")
    return s.split("\n")


def _strip_marker(text: str) -> str:
    m = _MARKER.match(text)
    return text[m.end():] if m else text


def split_items(text_or_lines: Any) -> list[str]:
    """Criteria text (or its lines) -> clean items in page order."""
    try:
        return _items(_lines(text_or_lines))
    except Exception as exc:  # never let an odd value sink the run, nor pass unseen
        _not_split("criteria text", "one item", exc)
        s = clean_text(unescape_ctgov(to_str(text_or_lines)))
        return [s] if s else []


def _items(lines: list[str]) -> list[str]:
    # 1. Group lines into items, in one pass: `texts` holds each item's text
    #    so far (its lines joined with a space); only the current item's
    #    indent and "pending" (a bullet or marker still waiting for its text,
    #    "-" alone on its line) decide where the next line goes.
    #    (Both steps read a line's or an item's first characters by index,
    #    not by slices such as body[:2]: a slice builds a slice object and a
    #    new string, several times the cost of an index.)
    texts: list[str] = []
    cur_indent = -1  # -1: no item yet
    pending = False
    prev_blank = True
    any_marked = False
    for line in lines:
        body = line.lstrip()
        if not body:
            prev_blank = True
            continue
        indent = len(line) - len(body)
        marked = False
        first = body[0]
        if first in _BULLET_START:
            if (first == "*" and len(body) > 2 and body[1] == " " and body[2] not in _BULLET_START
                    and not body[2].isspace()):
                body, marked = body[2:], True  # CT.gov's markdown bullet: what _BULLETS matches, at once
            else:
                m = _BULLETS.match(body)
                if m and m.end():
                    body, marked = body[m.end():], True
        # (_MARKER opens with "(", a digit, "i"/"v"/"x", or one letter and
        # its "." or ")"; a bullet character opens none of them)
        elif (first == "(" or first.isdigit() or first in _ROMAN_FIRST
                 or (len(body) > 1 and body[1] in _MARKER_ENDS)) \
                and _MARKER.match(body):
            marked = True
        body = body.rstrip()
        if marked:
            any_marked = True
            texts.append(body)
            cur_indent = indent
            pending = len(body) <= 12 and not _strip_marker(body).strip()
        elif pending:
            texts[-1] = f"{texts[-1]} {body}" if texts[-1] else body  # "-" on its own line, its text below
            pending = False
        elif cur_indent >= 0 and not prev_blank and (indent > cur_indent or body[0].islower()):
            # a hard-wrapped continuation, when the text has markers at all
            # (checked below: without any, every line is its own item)
            texts[-1] = f"{texts[-1]} {body}" if texts[-1] else body
        else:
            texts.append(body)
            cur_indent = indent
        prev_blank = False
    if not any_marked:  # one criterion per line (Veeva)
        texts = [line.strip() for line in lines]

    # 2. Each item: escapes undone, run-on enumerations split, markers
    #    removed, whitespace cleaned, empty items dropped.
    out: list[str] = []
    for text in texts:
        if not text:
            continue
        if "\\" in text:
            text = unescape_ctgov(text)
        # most items hold no run-on list (`_split_runon`'s own first test)
        pieces = (text,) if ")" not in text and "1. " not in text else _split_runon(text)
        for piece in pieces:
            piece = piece.strip()
            first = piece[0]  # not empty: a piece holds text
            # _MARKER opens with "(", a digit, "i"/"v"/"x", or one letter and its "." or ")"
            if (first == "(" or first.isdigit() or first in _ROMAN_FIRST
                    or (len(piece) > 1 and piece[1] in _MARKER_ENDS)):
                m = _MARKER.match(piece)
                if m:
                    piece = piece[m.end():]  # with the spaces after it
            piece = clean_text(piece)  # most items are clean already: its shortcut gives them back
            if not piece:
                continue
            if piece[-1] in "-–—":
                piece = _TRAILING_DASH.sub("", piece)
            if piece[0].isalnum() or _ALNUM.search(piece):  # [^\W_] is str.isalnum's
                out.append(piece)
    return out


_ROMAN_FIRST = frozenset("ivx")
_MARKER_ENDS = frozenset(".)、")
_TRAILING_DASH = re.compile(r"\s+[-–—]$")


