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

import re
import unicodedata
from typing import Any

__all__ = ["clean_text", "clean_prose", "unescape_ctgov", "to_str"]

# Characters that carry no visible text: zero-width space/joiners, word
# joiner, BOM, soft hyphen, bidi marks/embeddings/isolates, and C0/C1
# control characters other than tab, newline and carriage return.
_DROP = {cp: None for cp in (
    0x00AD, 0x180E, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2060, 0x2061,
    0x2062, 0x2063, 0x2064, 0xFEFF,
    *range(0x202A, 0x202F), *range(0x2066, 0x206A),
    *(c for c in range(0x00, 0x20) if c not in (0x09, 0x0A, 0x0D)),
    0x7F, *range(0x80, 0xA0),
)}
# Line and paragraph separators count as newlines in prose.
_DROP.update({0x2028: "\n", 0x2029: "\n\n", 0x0B: "\n", 0x0C: "\n", 0x85: "\n"})

_WS = re.compile(r"\s+")
_HSPACE = re.compile(r"[^\S\n]+")  # whitespace other than newline
_BLANK_RUNS = re.compile(r"\n{3,}")
_SPACE_AROUND_NL = re.compile(r" *\n *")

# CommonMark: a backslash before any ASCII punctuation character is an
# escape for that character. Any other backslash is literal.
_MD_ESCAPE = re.compile(r"\\([!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])")


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


def _prepare(s: str) -> str:
    if not s.isascii() and not unicodedata.is_normalized("NFC", s):
        s = unicodedata.normalize("NFC", s)
    return s.translate(_DROP)


def clean_text(s: Any) -> str | None:
    """One-line clean text, or None when nothing is left."""
    s = to_str(s)
    if not s:
        return None
    s = _prepare(s)
    s = _WS.sub(" ", s).strip()
    return s or None


def clean_prose(s: Any) -> str | None:
    """Multi-line clean text: like `clean_text` but keeps line breaks and
    single blank lines between paragraphs."""
    s = to_str(s)
    if not s:
        return None
    s = s.replace("\r\n", "\n").replace("\r", "\n")
    s = _prepare(s)
    s = _HSPACE.sub(" ", s)
    s = _SPACE_AROUND_NL.sub("\n", s)
    s = _BLANK_RUNS.sub("\n\n", s).strip()
    return s or None


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
    return _MD_ESCAPE.sub(r"\1", s)
