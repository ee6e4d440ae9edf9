"""Text clean-up shared by every parser and normalizer.

- `clean_text(s)`: one-line value. Unicode NFC, no-break and other Unicode
  spaces become plain spaces, zero-width/format characters and stray control
  characters are removed, runs of whitespace (newlines included) collapse to
  one space, ends are stripped. Empty result -> None.
- `clean_prose(s)`: the same for multi-paragraph text, but line breaks are
  kept (each line cleaned, runs of blank lines collapsed to one blank line).
- `unescape_ctgov(s)`: undo CT.gov's markdown backslash escapes (`\\>` -> `>`).

None and non-string input never raise: None gives None, other objects are
converted with `str()` (bytes are decoded as UTF-8 with replacement).
"""
from __future__ import annotations

import operator
import re
import unicodedata
from typing import Any

__all__ = ["clean_text", "clean_texts", "clean_prose", "unescape_ctgov", "to_str"]

# Characters that carry no visible text: zero-width space/joiners, word
# joiner, BOM, soft hyphen, bidi marks/embeddings/isolates, and C0/C1
# control characters other than tab, newline and carriage return.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u00ad\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
# Vertical tab, form feed, NEL, line and paragraph separators: line breaks.
_LINE_BREAKS = re.compile("\r\n?|[\x0b\x0c\x85\u2028\u2029]")
_LINE_BREAK_CHARS = "\r\x0b\x0c\x85\u2028\u2029"
_ASCII_CTRL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# CommonMark: a backslash before any ASCII punctuation character is an
# escape for that character. Any other backslash is literal.
_MD_ESCAPE = re.compile(r"\\([!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])")
# The escaped character, taken in C: a template ("\\1") is expanded in
# Python for each escape, and CT.gov text has many ("\\<", "\\>", "\\*").
_ESCAPED = operator.itemgetter(1)


def to_str(s: Any) -> str | None:
    """Best-effort conversion of any value to str (None stays None)."""
    if s is None:
        return None
    if isinstance(s, str):
        return s
    if isinstance(s, (bytes, bytearray)):
        return bytes(s).decode("utf-8", "replace")
    try:
        return str(s)
    except Exception:  # a broken __str__ must not sink the run
        return None


def _prepare(s: str, breaks: bool = False) -> str:
    """NFC, invisible characters removed; with `breaks`, every kind of line
    break becomes "\\n"."""
    if breaks and any(c in s for c in _LINE_BREAK_CHARS):
        s = _LINE_BREAKS.sub("\n", s)
    if s.isascii():
        return _ASCII_CTRL.sub("", s) if _ASCII_CTRL.search(s) else s
    if not unicodedata.is_normalized("NFC", s):
        s = unicodedata.normalize("NFC", s)
    return _INVISIBLE.sub("", s) if _INVISIBLE.search(s) else s


def clean_text(s: Any) -> str | None:
    """One-line clean text, or None when nothing is left."""
    # The shortcut for a value that is clean already (a city, a status, a
    # sponsor's name: most are), tested inline, not in a helper (a call per
    # value costs as much as the test): printable (so no control, format,
    # zero-width or line-break character and no space but the ASCII one,
    # which is what `_prepare` removes and `str.split` splits on), no
    # doubled or outer space (strip() == s: the ends by one call, not two
    # indexings and comparisons), and NFC.
    if (type(s) is str and s and s.isprintable() and "  " not in s and s.strip() == s
            and (s.isascii() or unicodedata.is_normalized("NFC", s))):
        return s
    # None (a value the page does not have: a tenth of the calls) without two more calls
    return None if s is None else _clean_text_general(s)


def _clean_text_general(s: Any) -> str | None:
    """`clean_text` without its shortcut for already clean values."""
    s = to_str(s)
    if not s:
        return None
    s = " ".join(_prepare(s).split())  # str.split(): every Unicode space
    return s or None


def clean_texts(values: Any) -> list[str]:
    """`clean_text` of each value, the empty ones left out."""
    out = []
    for x in values or ():
        t = clean_text(x)
        if t:
            out.append(t)
    return out


# The bytes of the printable ASCII characters and the line break.
_ASCII_PRINTABLE = bytes([0x0A, *range(0x20, 0x7F)])


def _prose_plain(s: str) -> bool:
    """True when `_prepare` would change nothing in `s` and its only
    whitespace is " " and "\\n": printable but for its line breaks (no
    control, format or zero-width character, no space but the ASCII one,
    which is what `str.split` splits on besides the line break) and NFC."""
    # Its UTF-8 bytes without those of printable ASCII characters and line
    # breaks (one pass in C; every byte below 0x80 is an ASCII character)
    # leave its other characters, few in a text: str.isprintable() on them
    # alone, not on the whole text (it looks up each character's Unicode
    # category, and stops at the first line break).
    rest = s.encode("utf-8", "surrogatepass").translate(None, _ASCII_PRINTABLE)
    return not rest or (rest.decode("utf-8", "surrogatepass").isprintable()
                        and unicodedata.is_normalized("NFC", s))


def _prose_spaced(s: str) -> bool:
    """A `_prose_plain` text's spaces and line breaks are as `clean_prose` leaves them."""
    if "  " in s or s[0] in " \n" or s[-1] in " \n":
        return False
    # Each line break's neighbours, found with str.find (a memchr): a text
    # has few line breaks, and a search for " \n", "\n " or "\n\n\n"
    # goes through the whole text as slowly as one for "  ".
    i = s.find("\n")
    while i != -1:  # s[i - 1] and s[i + 1] exist: s neither opens nor ends with "\n"
        after = s[i + 1]  # read once: indexing a str is not cheap
        if after == " " or s[i - 1] == " " or (after == "\n" and s[i + 2] == "\n"):
            return False
        i = s.find("\n", i + 1)
    return True


_SPACE_RUN = re.compile("  +")


def _collapse_spaces(s: str) -> str | None:
    """`clean_prose` of a `_prose_plain` text with str methods instead of a
    loop that splits every line: the spaces at each line's ends go (the
    indented lines of nested lists), runs of spaces inside a line become one
    space, two or more line breaks (blank lines) become one blank line."""
    s = "\n".join([line.strip(" ") for line in s.split("\n")])
    if "  " in s:
        s = _SPACE_RUN.sub(" ", s)
    s = s.strip("\n")
    while "\n\n\n" in s:
        s = s.replace("\n\n\n", "\n\n")
    return s or None


def clean_prose(s: Any) -> str | None:
    """Multi-line clean text: like `clean_text` but keeps line breaks and
    single blank lines between paragraphs."""
    if type(s) is str and s and _prose_plain(s):
        return s if _prose_spaced(s) else _collapse_spaces(s)
    return None if s is None else _clean_prose_general(s)


def _clean_prose_general(s: Any) -> str | None:
    """`clean_prose` without its shortcut for plain texts: line by line."""
    s = to_str(s)
    if not s:
        return None
    out: list[str] = []
    blank = False
    for line in _prepare(s, breaks=True).split("\n"):
        line = " ".join(line.split())
        if not line:
            blank = True
            continue
        if blank and out:
            out.append("")  # one blank line between paragraphs
        out.append(line)
        blank = False
    return "\n".join(out) or None


def unescape_ctgov(s: Any) -> Any:
    """Undo CT.gov markdown backslash escapes (`\\<`, `\\>`, `\\[`, `\\*`,
    `\\_`, `\\(` ... -> the character). A backslash not followed by ASCII
    punctuation is left as it is. None -> None; non-strings are converted."""
    if s is None:
        return None
    if not isinstance(s, str):
        s = to_str(s)
        if s is None:
            return None
    if "\\" not in s:
        return s
    return _MD_ESCAPE.sub(_ESCAPED, s)
