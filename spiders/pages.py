"""Page objects: one class per kind of page, one method per SourceRecord field.

A site's page object is the list of what the site gives and where each value
comes from. It is built from its inputs (a response, or for the CT.gov API
one study object) and nothing else, so a test is a saved page and the
expected values, and one field can be tested alone:

    class ExamplePage(HtmlStudyPage):
        def check(self) -> None:                    # the study-page check
            if "Conditions" not in self.sections:
                raise NotAStudyPage("not an example.org study page")

        @field
        def overall_status(self) -> Status | None:
            printed = self.first("Status")
            self.printed(printed)                   # raw["overall_status"]
            status, known = normalize_status(printed)
            return status if known else self.unmapped(status, f"status {printed!r} is unknown")

        @field
        def sex(self) -> Sex | None:               # Eligibility fields by their own name
            ...

`@field` methods are named after a `SourceRecord` field or an `Eligibility`
sub-field (`sex` is `eligibility.sex`) and annotated with that field's type;
both are checked when the class is defined, so a misspelt field or a wrong
type is an error at import, not a Reject at run time. Fields a page object
does not define stay empty: the class says what the site does not print too.

The base (`StudyPage.to_record`) calls `check()`, then every field in the
order the class defines them (a field may call another: each is computed
once), and builds the record with:

* notes: `self.note(kind, detail)` and `self.unmapped(value, detail)` inside
  a field method note that field (no field names as strings);
* raw printed values: `self.printed(value)` keeps the printed form of the
  field being read, `self.keep_raw(key, value)` printed values no field holds;
* identifier screening: `self.screened(entries)` (placeholders dropped,
  contradicted kinds corrected, both noted);
* `to_item()` gives the record with the body it was read from
  (`RecordWithBody`), which is what a spider yields.
"""
from __future__ import annotations

import gc
import re
import typing
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, ClassVar, Iterable, Mapping, Optional

from harvester.normalize.ids import collect_padded, normalize_nct, screen_identifier
from harvester.normalize.text import clean_text
from items import NESTED_FIELDS, Note, RecordWithBody, SourceRecord
from spiders.sections import Line, PageContent, criteria_items, page_content, preamble, read_sections

__all__ = ["FIELD_TYPES", "AgesFromInclusion", "CriteriaSections", "HtmlStudyPage", "NotAStudyPage", "StudyPage", "Unmapped", "field",
           "served_content_type", "title_disagreement"]

# What the base fills itself, never a page object's method.
_BASE_FIELDS = frozenset({"site", "url", "fetched_at", "raw", "notes", "content_hash", *NESTED_FIELDS})
#: every field a page object may define -> (record path, type): the record's
#: own fields, and the sub-fields of its nested ones (eligibility, design) by
#: their own names ("sex" is "eligibility.sex")
FIELD_TYPES: dict[str, tuple[str, Any]] = {
    n: (n, f.annotation) for n, f in SourceRecord.model_fields.items() if n not in _BASE_FIELDS}
for _group in NESTED_FIELDS:
    _model = SourceRecord.model_fields[_group].annotation
    for _name, _f in _model.model_fields.items():
        if _name in FIELD_TYPES:
            raise AssertionError(f"{_group}.{_name} shadows the field {FIELD_TYPES[_name][0]}")
        FIELD_TYPES[_name] = (f"{_group}.{_name}", _f.annotation)


@dataclass(frozen=True)
class Unmapped:
    """A converter's answer for a printed value outside the vocabulary: `value`
    is stored, `detail` noted (`StudyPage.read`)."""

    value: Any
    detail: str


class NotAStudyPage(ValueError):
    """The page is not a study page of its site (an error page, a blank
    template, a redesign the page object does not know): a Reject, not a record."""


class field:  # noqa: N801 - used as a decorator, like property
    """Marks a page object method as the source of the record field it is named after."""

    def __init__(self, fn: Callable[[Any], Any]):
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    def check(self, owner: type) -> None:
        """Is this method named after a record field, and typed as that field?
        (Called by StudyPage.__init_subclass__, when the class is defined.)"""
        name = self.name
        if name not in FIELD_TYPES:
            raise TypeError(f"{owner.__name__}.{name}: @field methods are named after a SourceRecord "
                            f"or Eligibility field; {name!r} is neither (known: {', '.join(FIELD_TYPES)})")
        self.path, expected = FIELD_TYPES[name]
        self.group = self.path.partition(".")[0] if "." in self.path else ""
        try:
            hints = typing.get_type_hints(self.fn)
        except Exception as exc:  # an annotation naming something not imported
            raise TypeError(f"{owner.__name__}.{name}: cannot resolve its return annotation: {exc}") from None
        if "return" not in hints:
            raise TypeError(f"{owner.__name__}.{name}: annotate the return type ({_type_name(expected)})")
        if hints["return"] != expected:
            raise TypeError(f"{owner.__name__}.{name} returns {_type_name(hints['return'])}; "
                            f"the record field {self.path} is {_type_name(expected)}")

    def __get__(self, page, owner=None):
        if page is None:
            return self
        return lambda: page._value(self)


def _type_name(tp: Any) -> str:
    if isinstance(tp, type) and not getattr(tp, "__args__", None):
        return tp.__name__
    return str(tp).replace("typing.", "")


_MISSING = object()


def served_content_type(response) -> Optional[str]:
    """The Content-Type header a response was served with, as served ("" when
    it had none): what the store keeps with the body, so a re-parse decodes
    it (its charset, HTML or text) as the crawl did."""
    value = response.headers.get(b"Content-Type")
    return value.decode("latin-1") if value is not None else ""


class StudyPage:
    """Base of every page object. Subclasses set their inputs in `__init__`
    (calling `super().__init__(url, fetched_at, body)`) and define `@field`
    methods; the site registry entry (`harvester.sites.Site`) sets `site`."""

    #: the `site` of the records, set by the page's registry entry
    site: ClassVar[str] = ""
    #: the Content-Type the body was served with (`served_content_type`),
    #: which `to_item` passes on with the body; None when not known
    content_type: Optional[str] = None
    #: the `@field` methods, in definition order (filled per class)
    fields: ClassVar[tuple[field, ...]] = ()
    #: (field, name, method) of each, what `to_record` loops over
    _plan: ClassVar[tuple[tuple[field, str, Callable[[Any], Any]], ...]] = ()
    #: (group, names of its fields) for each nested group (`NESTED_FIELDS`)
    _grouped: ClassVar[tuple[tuple[str, tuple[str, ...]], ...]] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        found: dict[str, field] = {}
        for name, attr in vars(cls).items():
            if isinstance(attr, field):
                if attr.name != name:
                    raise TypeError(f"{cls.__name__}.{name}: a @field is named after its field ({attr.name})")
                attr.check(cls)
        for klass in reversed(cls.__mro__):
            for name, attr in vars(klass).items():
                if isinstance(attr, field):
                    found[name] = attr  # an override keeps the overridden field's place
                elif name in found and attr is None:
                    del found[name]  # `name = None` in a subclass: the site does not give it
        cls.fields = tuple(found.values())
        cls._plan = tuple((f, f.name, f.fn) for f in cls.fields)
        cls._grouped = tuple((group, tuple(f.name for f in cls.fields if f.group == group))
                             for group in NESTED_FIELDS)

    def __init__(self, url: str, fetched_at: datetime | str, body: Optional[bytes] = None):
        self.url = url
        self.fetched_at = fetched_at
        self.body = body
        self._cache: dict[str, Any] = {}
        self._current: list[field] = []
        self._notes: list[Note] = []
        self._raw: dict[str, Any] = {}

    @classmethod
    def from_response(cls, response) -> "StudyPage":
        """The page object of a downloaded page (what spiders and `scrapy extract` call)."""
        return cls(response)

    # -- what a subclass overrides ----------------------------------------------------
    def check(self) -> None:
        """Raise NotAStudyPage when the input is not a study page of the site."""

    def cross_checks(self) -> None:
        """After every field is read: compare values the page prints twice, and
        note what disagrees (fields are read by calling them: each is cached)."""

    # -- helpers for field methods ------------------------------------------------------
    @property
    def current_path(self) -> str:
        if not self._current:
            raise RuntimeError("notes and printed values belong to a field: call this inside a @field method")
        return self._current[-1].path

    def note(self, kind: str, detail: str, *, on: Optional[field] = None, part: str = "") -> None:
        """Note something about the field being read (or `on`, another field;
        `part`: a part of its value, e.g. a sponsor's "class")."""
        path = on.path if on is not None else self.current_path
        self._notes.append(Note(field=f"{path}.{part}" if part else path, kind=kind, detail=detail))

    def note_raw(self, key: str, kind: str, detail: str) -> None:
        """Note about a printed value kept in raw under `key` (not a record field)."""
        self._notes.append(Note(field=f"raw.{key}", kind=kind, detail=detail))

    def unmapped(self, value: Any, detail: str) -> Any:
        """A printed value outside the vocabulary: `value` is stored, and noted."""
        self.note("unmapped_vocabulary", detail)
        return value

    def read(self, convert: Callable[[Any], Any], printed: Any, keep_printed: bool = False) -> Any:
        """`convert(printed)`, with an `Unmapped` answer noted (its value kept)
        and, with `keep_printed`, the printed value kept in raw. (A field
        whose converter never answers `Unmapped` and keeps nothing in raw
        calls it directly: one call less for every such field of every page.)"""
        if keep_printed and printed is not None:
            self._raw[self.current_path] = printed
        value = convert(printed)
        if type(value) is Unmapped:
            self.note("unmapped_vocabulary", value.detail)
            return value.value
        return value

    def printed(self, value: Any) -> None:
        """Keep the printed form of the field being read in `raw` (when there is one)."""
        if value is not None:
            self._raw[self.current_path] = value

    def keep_raw(self, key: str, value: Any) -> None:
        """Keep a printed value no record field holds in `raw[key]`."""
        if value is not None:
            self._raw[key] = value

    def screened(self, entries: Iterable[tuple[Any, str, Optional[str]]]) -> list[dict[str, Any]]:
        """(printed id, declared kind, issuing domain) -> identifiers. Each id
        is screened (`harvester.normalize.ids.screen_identifier`): a
        placeholder is dropped, a kind the id's form contradicts is corrected;
        both are noted on the field being read. Each Identifier is given as
        the dict the record validates into one (`{"id", "kind", "domain"}`):
        one validation of the whole record, not a validation call per id."""
        out: list[dict[str, Any]] = []
        for printed, declared, domain in entries:
            if printed is None or not clean_text(printed):
                continue
            value, kind, problem = screen_identifier(printed, declared)
            if problem:
                self.note("rejected_identifier" if value is None else "identifier_kind_mismatch", problem)
            if value is not None:
                out.append({"id": value, "kind": kind, "domain": clean_text(domain)})
        return out

    # -- the record ---------------------------------------------------------------------------
    def _value(self, f: field) -> Any:
        cache = self._cache
        value = cache.get(f.name, _MISSING)
        if value is not _MISSING:
            return value
        current = self._current
        if f in current:
            raise RuntimeError(f"{type(self).__name__}.{f.name} depends on itself")
        current.append(f)
        try:
            value = f.fn(self)
        finally:
            current.pop()
        cache[f.name] = value
        return value

    def to_record(self) -> SourceRecord:
        """The SourceRecord this page gives (ValueError when it gives none)."""
        if not self.site:
            raise TypeError(f"{type(self).__name__} has no site: declare it in a harvester.sites.Site entry")
        # The cyclic collector is paused while a page is read. Everything
        # it allocates (values, nested objects, the record) is alive until
        # the record is built, alongside the body's own parsed JSON, so each
        # collection the allocations set off walks them in vain and promotes
        # them, until a full collection walks the whole heap. Reading makes
        # no cyclic garbage to speak of; whatever it does make is collected
        # at the first collection after.
        if not gc.isenabled():
            return self._read_record()
        gc.disable()
        try:
            return self._read_record()
        finally:
            gc.enable()

    def _read_record(self) -> SourceRecord:
        cache, current = self._cache, self._current
        with collect_padded() as padded:
            self.check()
            # `_value` inlined, as this loop runs for every field of every
            # page: the field being read is the bottom of the `_current`
            # stack, replaced in place (a field calling another pushes above it)
            base = len(current)
            current.append(None)
            try:
                for f, name, fn in self._plan:
                    if name not in cache:  # else computed already, for another field
                        current[base] = f
                        cache[name] = fn(self)
            finally:
                del current[base:]
            self.cross_checks()
        # The values are the record's fields by name; a group's fields
        # (eligibility.sex ...) move into their group's dict.
        record = cache.copy()
        for group, names in self._grouped:
            record[group] = {name: record.pop(name) for name in names}
        nct_id = cache.get("nct_id")
        if nct_id and "nct_id" not in self._raw:
            # An ID printed with fewer than 8 digits was zero-padded into
            # nct_id: keep the printed form, which validation notes and counts.
            short = next((p for p in padded if normalize_nct(p) == nct_id), None)
            if short:
                self._raw["nct_id"] = short
        record.update(site=self.site, url=self.url, fetched_at=self.fetched_at, raw=self._raw, notes=self._notes)
        return SourceRecord.model_validate(record)

    def to_item(self) -> RecordWithBody:
        """The record with the body it was read from: what a spider yields."""
        return RecordWithBody(self.to_record(), self.body, self.content_type if self.body is not None else None)



class HtmlStudyPage(StudyPage):
    """A study page of an HTML site, read by its visible labels.

    The page's content is found inside its chrome (`spiders.sections`:
    main/article/role=main in HTML, chrome shapes in text; what was left out
    is in `self.chrome`), cut into lines, and the lines cut at the labels of
    `LABELS` (printed label -> section name) into `self.sections`; the lines
    before the first label are `self.head`. The same page object reads the
    served HTML, any markup of the same words, and a text rendering, decoded
    by the charset the response declares (HTTP header, BOM, <meta charset>).

    A subclass sets `LABELS`, `KEY_SECTIONS` (enough of them found, at least
    `MIN_KEY_SECTIONS`, and the page is a study page of the site) and `BRAND`
    (the site's name in its own title bar), and defines its @field methods."""

    LABELS: ClassVar[Mapping[str, str]] = {}
    KEY_SECTIONS: ClassVar[tuple[str, ...]] = ()
    MIN_KEY_SECTIONS: ClassVar[int] = 2
    BRAND: ClassVar[str] = ""

    def __init__(self, response):
        from spiders.base import fetched_at

        super().__init__(response.url, fetched_at(response), response.body)
        self.response = response
        self.content_type = served_content_type(response)
        self.content = page_content(response, is_html=self.is_html(response), labels=self.LABELS)
        self.chrome = self.content.chrome
        self.lines = self.keep_lines(self.content.lines)
        labels = self.labels()
        self.sections: dict[str, list[Line]] = {
            name: list(section.lines) for name, section in read_sections(self.lines, labels).items()}
        self.head = preamble(self.lines, labels)

    # -- what a subclass may override ------------------------------------------------------
    def labels(self) -> Mapping[str, str]:
        return self.LABELS

    def keep_lines(self, lines: list[Line]) -> list[Line]:
        """The content lines the labels are read from (a site drops its placeholders here)."""
        return lines

    @staticmethod
    def is_html(response) -> Optional[bool]:
        return None  # from the Content-Type, else from the body

    def check(self) -> None:
        found = [name for name in self.KEY_SECTIONS if name in self.sections]
        if len(found) < self.MIN_KEY_SECTIONS:
            printed = [k for k, v in self.labels().items() if v in self.KEY_SECTIONS]
            raise NotAStudyPage(
                f"not a {self.BRAND or self.site} study page: labels found {sorted(self.sections) or 'none'}; "
                f"expected at least {self.MIN_KEY_SECTIONS} of {', '.join(printed)}")

    # -- reading sections ------------------------------------------------------------------------
    def texts(self, name: str) -> list[str]:
        return [ln.text for ln in self.sections.get(name) or []]

    def first(self, name: str) -> Optional[str]:
        lines = self.sections.get(name)
        return lines[0].text if lines else None

    def printed_section(self, name: str) -> None:
        """Keep the lines under `name` in raw, as the printed form of the field being read."""
        if self.sections.get(name):
            self.printed("\n".join(self.texts(name)))

    def criteria_text_of(self, parts: Iterable[tuple[str, str]],
                         line: Callable[[str], str] = lambda t: t) -> Optional[str]:
        """The criteria as printed: for each (section, heading) the heading
        followed by the section's lines (each through `line`)."""
        from harvester.normalize.text import clean_prose, unescape_ctgov

        out = []
        for name, heading in parts:
            texts = [line(t) for t in self.texts(name)]
            if texts:
                out.append("\n".join([heading, *texts]) if heading else "\n".join(texts))
        return clean_prose(unescape_ctgov("\n\n".join(out))) if out else None

    def age_from_inclusion(self, bound: str, inclusion: list[str], why: str) -> Optional[float]:
        """The `bound` ("min" or "max") age stated in an inclusion criterion,
        noted as taken from another section (`why` says why); the criterion
        goes to raw["ages_from_criteria"]."""
        from harvester.normalize.ages import ages_from_criteria

        found = ages_from_criteria(inclusion or [])
        if found is None or found[0].empty:
            return None
        rng, matched = found
        value = rng.min_years if bound == "min" else rng.max_years
        self.keep_raw("ages_from_criteria", matched)
        if value is not None:
            self.note("from_other_section", f"{why}; {value:g} years taken from the inclusion criterion {matched!r}")
        return value

    def check_country(self, location) -> None:
        """Note a location of the field being read whose country has no ISO
        3166 code: none printed, or a name ISO does not know (its printed
        form stays in `country`)."""
        if location.country_code is not None:
            return
        where = location.facility or location.city or "a site"
        if location.country is None:
            self.note("missing_value", f"location {where!r}: no country printed")
        else:
            self.note("unmapped_vocabulary", f"location {where!r}: {location.country!r} is not a country name "
                                             "ISO 3166 knows; no country code")

    # -- the title, cross-checked ------------------------------------------------------------------
    def cross_checks(self) -> None:
        undecoded = sum(ln.text.count("\ufffd") for ln in self.lines)
        if undecoded:
            encoding = getattr(self.response, "encoding", None) or "its charset"
            self._notes.append(Note(field="page", kind="undecodable_bytes", detail=(
                f"{undecoded} byte sequence(s) of the page could not be decoded as {encoding}: read as "
                "U+FFFD, never as part of a value beside them")))
        brief_title = getattr(type(self), "brief_title", None)
        if not isinstance(brief_title, field):
            return
        title = self._value(brief_title)
        problem = title_disagreement(title, self.content, self.BRAND)
        if problem:
            self.note("in_page_disagreement", problem, on=brief_title)


class CriteriaSections(HtmlStudyPage):
    """Criteria printed under their own labels, cut into the sections
    "inclusion" and "exclusion": each bullet starts an item (a paragraph
    after a bullet belongs to it, `criteria_items`), and criteria_text is both
    as printed, each under `CRITERIA_HEADINGS`, each line through
    `criteria_line`; `criteria_fallback()` when neither is printed."""

    CRITERIA_HEADINGS: ClassVar[tuple[str, str]] = ("Inclusion Criteria", "Exclusion Criteria")

    def criteria_line(self, text: str) -> str:
        return text

    def criteria_fallback(self) -> Optional[str]:
        return None

    @field
    def inclusion(self) -> list[str]:
        """The lines under the inclusion label."""
        return criteria_items(self.sections.get("inclusion") or [])

    @field
    def exclusion(self) -> list[str]:
        """The lines under the exclusion label."""
        return criteria_items(self.sections.get("exclusion") or [])

    @field
    def criteria_text(self) -> str | None:
        """Both, as printed, each under its heading."""
        text = self.criteria_text_of(zip(("inclusion", "exclusion"), self.CRITERIA_HEADINGS), line=self.criteria_line)
        return text if text is not None else self.criteria_fallback()


class AgesFromInclusion(CriteriaSections):
    """A site that prints no age fields: the ages come from an inclusion
    criterion ("Age 3-18"), each noted as taken from another section
    (`AGES_NOT_PRINTED` says so in the note), the criterion in
    raw["ages_from_criteria"]; age_text stays empty."""

    AGES_NOT_PRINTED: ClassVar[str] = "the site prints no ages"

    @field
    def min_age_years(self) -> float | None:
        """From an inclusion criterion, noted."""
        return self.age_from_inclusion("min", self.inclusion(), self.AGES_NOT_PRINTED)

    @field
    def max_age_years(self) -> float | None:
        """From an inclusion criterion, noted."""
        return self.age_from_inclusion("max", self.inclusion(), self.AGES_NOT_PRINTED)


def _fold(text: Optional[str]) -> str:
    return " ".join((text or "").casefold().split())


_TITLE_PARTS = re.compile(r"\s+[|\-\u2013\u2014\u00b7:]\s+")


def title_disagreement(title: Optional[str], content: PageContent, brand: str = "") -> Optional[str]:
    """Why the title read from the page's content disagrees with its <h1>,
    <title> or og:title (None when they agree or the page has none).
    "<title>" may carry the site's name ("Title | Site")."""
    mine = _fold(title)
    checks = [("the <h1>", content.h1), ("<title>", content.title), ("og:title", content.og_title)]
    for where, other in checks:
        if not other:
            continue
        theirs = _fold(other)
        parts = {_fold(p) for p in _TITLE_PARTS.split(other)} | {theirs}
        if brand:
            parts = {p for p in parts if p != _fold(brand)}
            if not parts:
                continue  # a title bar with only the site's name says nothing of the trial
            theirs = " ".join(p for p in (_fold(x) for x in _TITLE_PARTS.split(other)) if p != _fold(brand))
        if mine and (mine in parts or theirs.startswith(mine) or mine.startswith(theirs)):
            continue
        if not mine:
            return f"no title found in the page's content, but {where} reads {other!r}"
        return f"the title read from the page, {title!r}, is not {where}: {other!r}"
    return None
