"""The site registry: every site declares itself, in its own module, as a `Site`.

    SITE = Site(
        name="example",                       # the spider name and the records' `site`
        page=ExamplePage,                     # its page object (spiders.pages)
        base="https://example.org",           # its origin; `-a base_url=` replaces it
        domains=("example.org",),
        politeness={"CONCURRENT_REQUESTS_PER_DOMAIN": 1, "DOWNLOAD_DELAY": 2.0},
        study_url=re.compile(r"^https?://example\\.org/trials/[^/?#]+$"),
        nct_path="/trials/{nct}",             # where the site has a study URL for an NCT ID
        offline={"urls": "https://example.org/trials/NCT01234567"},  # what the offline demo crawls
        rank=50,                              # place in the default precedence (lower first)
    )

The registry is every `Site` found in the modules of `SPIDER_MODULES` (the
setting Scrapy finds spiders with), so a new site needs no edit anywhere
else: reconciliation takes its default precedence from here, `scrapy
harvest --offline` the demo arguments, `scrapy extract` the page object,
`scrapy enqueue` which sites turn an NCT ID into a URL, and the site's
spider its name, domains, politeness and URL patterns.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping, Optional

from scrapy.utils.misc import walk_modules_iter

__all__ = ["Site", "sites", "site", "default_precedence", "site_modules"]


@dataclass(frozen=True)
class Site:
    name: str
    #: the page object class of the site's study pages (a spiders.pages.StudyPage)
    page: type
    #: scheme://host of the site
    base: str
    domains: tuple[str, ...]
    #: matches the site's study page URLs (as they are on the site itself)
    study_url: re.Pattern
    #: Scrapy settings the site's spider runs with (per-domain concurrency, delay)
    politeness: Mapping[str, Any] = field(default_factory=dict)
    #: path of the study page of an NCT ID ("/trials/{nct}"); "" when the site's URLs do not carry it
    nct_path: str = ""
    #: `-a` arguments that make the spider crawl the pages of the bundled cassette
    offline: Mapping[str, str] = field(default_factory=dict)
    #: place in the default precedence of reconciliation (lower comes first)
    rank: int = 100
    #: fields (page object @field methods, or their names) for which this site
    #: comes first in the default precedence
    first_for: tuple = ()

    def __post_init__(self):
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):
            raise ValueError(f"site name {self.name!r}: lower-case letters, digits and _")
        current = self.page.__dict__.get("site", "")  # its own, not a parent class's
        if current and current != self.name:
            raise ValueError(f"{self.page.__name__} is already the page object of site {current!r}")
        self.page.site = self.name  # the page object's records carry the site's name
        for f in self.first_for:
            _field_path(f)  # a misspelt field is an error at import

    @property
    def first_for_paths(self) -> tuple[str, ...]:
        return tuple(_field_path(f) for f in self.first_for)

    def nct_url(self, nct_id: str, base: Optional[str] = None) -> Optional[str]:
        """The study URL of an NCT ID, where the site has one."""
        if not self.nct_path:
            return None
        return (base or self.base).rstrip("/") + self.nct_path.format(nct=nct_id)


def _field_path(f: Any) -> str:
    """A page object field (or its name) -> its record path ("sex" -> "eligibility.sex")."""
    from spiders.pages import FIELD_TYPES

    if hasattr(f, "path"):
        return f.path
    if isinstance(f, str) and f in FIELD_TYPES:
        return FIELD_TYPES[f][0]
    raise TypeError(f"not a SourceRecord field: {f!r}")


def site_modules(settings: Any = None) -> tuple[str, ...]:
    """The modules sites are declared in: Scrapy's SPIDER_MODULES."""
    modules = settings.get("SPIDER_MODULES") if settings is not None else None
    if not modules:  # no settings, or a plain dict of a few: the project's own
        from harvester import settings as project

        return tuple(project.SPIDER_MODULES)
    if isinstance(modules, str):
        modules = [m for m in modules.replace(",", " ").split() if m]
    return tuple(modules or ())


@lru_cache(maxsize=16)
def _load(modules: tuple[str, ...]) -> dict[str, Site]:
    found: dict[str, Site] = {}
    for name in modules:
        for module in walk_modules_iter(name):
            for value in vars(module).values():
                if isinstance(value, Site):
                    other = found.get(value.name)
                    if other is not None and other is not value:
                        raise ValueError(f"two sites named {value.name!r} ({other.page.__module__}, "
                                         f"{value.page.__module__})")
                    found[value.name] = value
    return dict(sorted(found.items(), key=lambda kv: (kv[1].rank, kv[0])))


def sites(settings: Any = None) -> dict[str, Site]:
    """name -> Site, in precedence order (rank, then name)."""
    return dict(_load(site_modules(settings)))


def site(name: str, settings: Any = None) -> Site:
    found = sites(settings)
    if name not in found:
        raise KeyError(f"unknown site {name!r}; known: {', '.join(found) or 'none'}")
    return found[name]


def default_precedence(registry: Mapping[str, Site]) -> dict[str, list[str]]:
    """Reconciliation's default precedence: every site by rank for every field
    ("*"), and for a field some sites claim first (`first_for`), those sites
    first."""
    order = list(registry)
    out: dict[str, list[str]] = {"*": order}
    claims: dict[str, list[str]] = {}
    for s in registry.values():
        for path in s.first_for_paths:
            claims.setdefault(path, []).append(s.name)
    for path, first in claims.items():
        out[path] = first + [n for n in order if n not in first]
    return out
