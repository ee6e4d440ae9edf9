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

import typing
from datetime import datetime
from typing import Any, Callable, ClassVar, Iterable, Optional

from harvester.normalize.ids import screen_identifier
from harvester.normalize.text import clean_text
from items import Eligibility, Identifier, Note, RecordWithBody, SourceRecord

__all__ = ["NotAStudyPage", "StudyPage", "field", "FIELD_TYPES"]

# What the base fills itself, never a page object's method.
_BASE_FIELDS = frozenset({"site", "url", "fetched_at", "raw", "notes", "content_hash", "eligibility"})
_ELIGIBILITY = tuple(Eligibility.model_fields)
#: every field a page object may define -> (record path, type)
FIELD_TYPES: dict[str, tuple[str, Any]] = {
    **{n: (n, f.annotation) for n, f in SourceRecord.model_fields.items() if n not in _BASE_FIELDS},
    **{n: (f"eligibility.{n}", f.annotation) for n, f in Eligibility.model_fields.items()},
}
assert not set(SourceRecord.model_fields) & set(_ELIGIBILITY), "an Eligibility field shadows a record field"


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


class StudyPage:
    """Base of every page object. Subclasses set their inputs in `__init__`
    (calling `super().__init__(url, fetched_at, body)`) and define `@field`
    methods; the site registry entry (`harvester.sites.Site`) sets `site`."""

    #: the `site` of the records, set by the page's registry entry
    site: ClassVar[str] = ""
    #: the `@field` methods, in definition order (filled per class)
    fields: ClassVar[tuple[field, ...]] = ()

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

    # -- helpers for field methods ------------------------------------------------------
    @property
    def current_path(self) -> str:
        if not self._current:
            raise RuntimeError("notes and printed values belong to a field: call this inside a @field method")
        return self._current[-1].path

    def note(self, kind: str, detail: str, *, on: Optional[field] = None) -> None:
        """Note something about the field being read (or `on`, another field)."""
        self._notes.append(Note(field=on.path if on is not None else self.current_path, kind=kind, detail=detail))

    def note_raw(self, key: str, kind: str, detail: str) -> None:
        """Note about a printed value kept in raw under `key` (not a record field)."""
        self._notes.append(Note(field=f"raw.{key}", kind=kind, detail=detail))

    def unmapped(self, value: Any, detail: str) -> Any:
        """A printed value outside the vocabulary: `value` is stored, and noted."""
        self.note("unmapped_vocabulary", detail)
        return value

    def printed(self, value: Any) -> None:
        """Keep the printed form of the field being read in `raw` (when there is one)."""
        if value is not None:
            self._raw[self.current_path] = value

    def keep_raw(self, key: str, value: Any) -> None:
        """Keep a printed value no record field holds in `raw[key]`."""
        if value is not None:
            self._raw[key] = value

    def screened(self, entries: Iterable[tuple[Any, str, Optional[str]]]) -> list[Identifier]:
        """(printed id, declared kind, issuing domain) -> Identifiers. Each id
        is screened (`harvester.normalize.ids.screen_identifier`): a
        placeholder is dropped, a kind the id's form contradicts is corrected;
        both are noted on the field being read."""
        out: list[Identifier] = []
        for printed, declared, domain in entries:
            if printed is None or not clean_text(printed):
                continue
            value, kind, problem = screen_identifier(printed, declared)
            if problem:
                self.note("rejected_identifier" if value is None else "identifier_kind_mismatch", problem)
            if value is not None:
                out.append(Identifier(id=value, kind=kind, domain=clean_text(domain)))
        return out

    # -- the record ---------------------------------------------------------------------------
    def _value(self, f: field) -> Any:
        if f.name in self._cache:
            return self._cache[f.name]
        if f in self._current:
            raise RuntimeError(f"{type(self).__name__}.{f.name} depends on itself")
        self._current.append(f)
        try:
            value = f.fn(self)
        finally:
            self._current.pop()
        self._cache[f.name] = value
        return value

    def to_record(self) -> SourceRecord:
        """The SourceRecord this page gives (ValueError when it gives none)."""
        if not self.site:
            raise TypeError(f"{type(self).__name__} has no site: declare it in a harvester.sites.Site entry")
        self.check()
        record: dict[str, Any] = {"eligibility": {}}
        for f in self.fields:
            value = self._value(f)
            if f.path.startswith("eligibility."):
                record["eligibility"][f.name] = value
            else:
                record[f.name] = value
        return SourceRecord(site=self.site, url=self.url, fetched_at=self.fetched_at,
                            raw=self._raw, notes=self._notes, **record)

    def to_item(self) -> RecordWithBody:
        """The record with the body it was read from: what a spider yields."""
        return RecordWithBody(self.to_record(), self.body)


class ParsedByFunction(StudyPage):
    """A site whose page is still read by one parse function (response ->
    SourceRecord) rather than by field methods: `parse = staticmethod(fn)`."""

    parse: ClassVar[Callable[[Any], SourceRecord]]

    def __init__(self, response):
        super().__init__(response.url, None, response.body)
        self.response = response

    def to_record(self) -> SourceRecord:
        return type(self).parse(self.response)
