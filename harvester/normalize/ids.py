"""Trial identifiers.

- `normalize_nct(text) -> "NCT########" | None`: case, spaces and a dash
  between "NCT" and the number are forgiven ("nct02186860", " NCT 02186860 ",
  "NCT-02186860"); a short number is zero-padded to 8 digits ("NCT001715" ->
  "NCT00001715"). The whole text must be one NCT ID: placeholders ("N/A",
  "not applicable", "NCT00000000"), more than 8 digits, extra words or URLs
  -> None.
- `classify_identifier(text) -> kind`, a value of the data contract's
  IdentifierKind: NCT, EUDRACT (2014-005181-30), CTIS (2023-501234-12-00),
  ISRCTN (ISRCTN12345678), CHICTR (ChiCTR2000012345, ChiCTR-TRC-12002345),
  UTN (WHO Universal Trial Number U1111-1234-5678, and Veeva's UTN000468416),
  ORG for any other real identifier (a sponsor's own number: "307-CTC-CAR T",
  "HenanCH152", "HY001502", "AFT-05"), and OTHER for no identifier at all
  (empty or a placeholder) -- never ORG for "N/A".
- `is_placeholder(text) -> bool`: None/empty, "N/A", "NA", "none", "not
  applicable", "not available", "not reported", "unknown", "TBD", "pending",
  "-", "0", "NCT00000000" ...: a value that stands for no value.
"""
from __future__ import annotations

import re
from contextvars import ContextVar
from typing import Any

from .text import clean_text

__all__ = ["IDENTIFIER_KINDS", "normalize_nct", "classify_identifier", "is_placeholder", "screen_identifier"]

IDENTIFIER_KINDS: tuple[str, ...] = ("NCT", "EUDRACT", "CTIS", "ISRCTN", "CHICTR", "UTN", "ORG", "OTHER")

_NCT = re.compile(r"NCT\s*[-_:#]?\s*(\d{1,8})", re.I)
_PLACEHOLDER_WORDS = frozenset({
    "n/a", "na", "n.a", "n.a.", "n a", "none", "nil", "null", "no", "not applicable",
    "not available", "not reported", "not provided", "not assigned", "not yet assigned",
    "not registered", "unknown", "tbd", "tba", "to be determined", "to be assigned",
    "pending", "undefined", "-", "--", "---", "—", "–", "?", "x", "xx", "xxx", "0", ".",
    "nct", "nct#", "none provided", "not specified",
})
_ZEROS = re.compile(r"^(?:nct)?\s*[-_:#]?\s*0+$", re.I)

_CTIS = re.compile(r"(?:ctis|eu\s*ct)?\s*(?:number|no\.?|#)?\s*[:]?\s*(\d{4}-\d{6}-\d{2}-\d{2})", re.I)
_EUDRACT = re.compile(r"(?:eudract)?\s*(?:number|no\.?|#)?\s*[:]?\s*(\d{4}-\d{6}-\d{2})", re.I)
_ISRCTN = re.compile(r"ISRCTN\s*[-:]?\s*\d{8}", re.I)
_CHICTR = re.compile(r"ChiCTR\s*-?\s*(?:[A-Z]{2,4}\s*-\s*)?\d{6,12}", re.I)
_UTN = re.compile(r"(?:(?:who\s+)?utn\s*[:#]?\s*)?U\d{4}-\d{4}-\d{4}|UTN\s*[:#-]?\s*\d{6,12}", re.I)


def is_placeholder(text: Any) -> bool:
    """True for a value that stands for no value (see module doc)."""
    s = clean_text(text)
    return True if not s else _placeholder(s)


def _placeholder(s: str) -> bool:
    """`is_placeholder` of a clean, non-empty text."""
    low = s.lower().strip(" .;:,")
    if not low or low in _PLACEHOLDER_WORDS or s.lower() in _PLACEHOLDER_WORDS:
        return True
    return bool(_ZEROS.match(low))


def _printed(text: Any) -> str | None:
    """The printed identifier, without the U+FFFD replacement characters
    that bytes a page's charset could not decode leave beside it."""
    s = clean_text(text)
    if s and "\ufffd" in s:
        s = clean_text(s.strip("\ufffd \t")) or None
    return s


def normalize_nct(text: Any) -> str | None:
    """Text -> "NCT" + 8 digits, or None when it is not one NCT ID."""
    if type(text) is str and len(text) == 11 and text.startswith("NCT") and text.isascii() \
            and text[3:].isdigit() and text != "NCT00000000":
        return text  # already the canonical form: what registries print nearly always
    return _nct(_printed(text))


def _nct(s: str | None) -> str | None:
    """`normalize_nct` of a printed identifier (`_printed`)."""
    if not s or len(s) > 40:
        return None
    m = _NCT.fullmatch(s)
    if not m:
        return None
    number = int(m.group(1))
    if number == 0:
        return None  # NCT00000000 is a placeholder
    seen = _PADDED_SEEN.get()
    if seen is not None and len(m.group(1)) < 8:
        seen.append(s)
    return f"NCT{number:08d}"


# The short printed forms `normalize_nct` zero-padded while a page was read:
# a page object's base collects them, so every site's record keeps the
# printed form (raw["nct_id"]) however the site reads its ID.
_PADDED_SEEN: ContextVar[list[str] | None] = ContextVar("padded_nct_seen", default=None)


class collect_padded:  # noqa: N801 - used as a function, like contextlib's
    """`with collect_padded() as seen:` within the block, the texts
    `normalize_nct` zero-padded (`NCT0400852`). A class rather than a
    @contextmanager generator: every page read enters one, and this costs a
    fifth as much."""

    __slots__ = ("seen", "token")

    def __enter__(self) -> list[str]:
        self.seen: list[str] = []
        self.token = _PADDED_SEEN.set(self.seen)
        return self.seen

    def __exit__(self, *exc_info) -> None:
        _PADDED_SEEN.reset(self.token)


def padded_nct(text: Any) -> str | None:
    """The printed form, when `text` is an NCT ID printed with fewer than 8
    digits (`NCT0400852`) that `normalize_nct` zero-pads into another ID
    (`NCT00400852`); None otherwise."""
    s = clean_text(text)
    if not s or len(s) > 40:
        return None
    m = _NCT.fullmatch(s)
    return s if m and len(m.group(1)) < 8 and normalize_nct(s) else None


def classify_identifier(text: Any) -> str:
    """Identifier -> its kind (an IdentifierKind value; see module doc)."""
    s = clean_text(text)
    if not s or is_placeholder(s):
        return "OTHER"
    return "NCT" if normalize_nct(s) else _shape_not_nct(s)


def _shape_not_nct(s: str) -> str:
    """The kind of a clean identifier that is neither a placeholder nor an NCT ID."""
    if _CTIS.fullmatch(s):
        return "CTIS"
    if _EUDRACT.fullmatch(s):
        return "EUDRACT"
    if _ISRCTN.fullmatch(s):
        return "ISRCTN"
    if _CHICTR.fullmatch(s):
        return "CHICTR"
    if _UTN.fullmatch(s):
        return "UTN"
    return "ORG"


def screen_identifier(text: Any, declared: str | None = None) -> tuple[str | None, str, str | None]:
    """A printed identifier, checked before it is stored:
    `(id or None, kind, problem or None)`.

    - a placeholder ("N/A", "not applicable", "NCT00000000") -> `(None, "OTHER",
      problem)`: not an identifier, never stored;
    - an ID whose shape contradicts the kind the page declares for it (a
      EudraCT number listed as a CTIS one, an NCT ID given as a EudraCT
      number) -> stored under the kind its shape shows, with the problem;
    - otherwise -> `(cleaned id, kind, None)`; `declared` wins over a shape
      that proves nothing (an organisation's own number looks like "ORG").
    Callers turn a problem into a Note, which the crawl stats count."""
    printed = _printed(text)
    # `printed` is clean: read once as an NCT ID, not cleaned again by each check
    nct = _nct(printed)
    if printed is None or _placeholder(printed) or (nct is None and _NCT.fullmatch(printed)):
        return None, "OTHER", f"placeholder identifier {printed!r} rejected"
    shape = "NCT" if nct else _shape_not_nct(printed)  # what classify_identifier checks, in its order
    value = nct if shape == "NCT" else printed
    if declared is None or declared == shape:
        return value, shape, None
    if shape in ("ORG", "OTHER"):
        return value, declared, None
    return value, shape, f"identifier {printed!r} listed as {declared} has the form of {shape}"
