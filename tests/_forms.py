"""Other forms of a real page's text, for the page-object tests: the same
words as nested divs with generated class names, and any form inside site
chrome (a header menu of label words, breadcrumbs, a cookie banner, a
sidebar of another trial with its own "Status", a footer).

The chrome's words are the sites' kind of chrome; the other trial in the
sidebar is a real one (NCT03263208 or NCT02186860 as ClinicalTrials.Veeva
prints them), so nothing in it is made up, and none of it may reach the
record."""
from __future__ import annotations

import hashlib
import re

import lxml.html

# Real trials as Veeva prints them (cassettes/src/veeva/text/): title, status, condition.
OTHER_TRIALS = [
    ("CD19 CAR-T Cells for Patients With Relapse and Refractory CD19+ B-ALL.", "Unknown",
     "B-cell Acute Lymphocytic Leukemia", "Henan Cancer Hospital"),
    ("Chimeric Antigen Receptor (CAR)-Modified T Cell Therapy in Treating Patients With Acute Lymphoblastic "
     "Leukemia", "Unknown", "Acute Lymphoblastic Leukemia", "Affiliated Hospital to Academy of Military Medical Sciences"),
]
MENU = ["Home", "Status", "Sex", "Locations", "Conditions", "Phase", "Sponsor", "Contact"]
COOKIE = "We use cookies to improve your experience on this site and to analyse traffic."


def _other_trial(title: str | None) -> tuple[str, str, str, str]:
    for trial in OTHER_TRIALS:
        if not title or trial[0].rstrip(".").casefold() not in title.casefold():
            return trial
    return OTHER_TRIALS[0]


def _generated(seed: str) -> str:
    return "css-" + hashlib.sha1(seed.encode()).hexdigest()[:6]


_KEEP = {"ul", "ol", "li", "table", "thead", "tbody", "tr", "td", "th", "br", "a", "span", "time", "b",
         "strong", "em", "i", "img"}


def as_divs(html: str) -> str:
    """The page with every element of its content (inside <main>) turned into
    nested divs with generated class names (lists, tables and inline elements
    kept, as such sites keep them), and <main> itself a div."""
    root = lxml.html.document_fromstring(html)
    main = root.find(".//main")
    assert main is not None, "the served page has a <main>"
    for n, el in enumerate(list(main.iter())):
        if not isinstance(el.tag, str) or el.tag in _KEEP:
            continue
        el.tag = "div"
        for attr in list(el.attrib):
            del el.attrib[attr]
        el.set("class", _generated(f"{n}"))
        # one more level: generated components nest
        if el is not main and len(el) == 0 and el.text and el.text.strip():
            inner = lxml.html.Element("div", {"class": _generated(f"{n}-inner")})
            inner.text, el.text = el.text, None
            el.insert(0, inner)
    return lxml.html.tostring(root, encoding="unicode", doctype="<!DOCTYPE html>")


def in_chrome_html(html: str, title: str | None) -> str:
    """The page with site chrome around its content: a header menu of label
    words and breadcrumbs and a cookie banner before it, a sidebar of another
    trial with its own Status and a footer after it."""
    other, status, condition, sponsor = _other_trial(title)
    menu = "".join(f'<li><a href="/{w.lower()}">{w}</a></li>' for w in MENU)
    before = (f'<header class="top"><nav><ul>{menu}</ul></nav></header>'
              f'<nav aria-label="Breadcrumb"><ol><li><a href="/">Home</a></li><li><a href="/trials">Trials</a>'
              f'</li><li>{title or "Trial"}</li></ol></nav>'
              f'<div class="cookie-banner" role="dialog"><p>{COOKIE}</p><button>Accept</button>'
              f'<button>Reject</button></div>')
    after = (f'<aside><h2>Similar trials</h2><div><h3>{other}</h3><p>{sponsor}</p><h4>Status</h4><p>{status}</p>'
             f'<h4>Conditions</h4><p>{condition}</p><h4>Locations</h4><p>Sponsor</p></div></aside>'
             f'<footer><p><a href="/about">About us</a> · <a href="/contact">Contact</a> · '
             f'<a href="/privacy">Privacy policy</a></p><p>© 2026</p></footer>')
    body_open = re.search(r"<body[^>]*>", html)
    assert body_open and "</body>" in html
    return html[:body_open.end()] + before + html[body_open.end():].replace("</body>", after + "</body>", 1)


def in_chrome_text(text: str, title: str | None) -> str:
    """A text rendering with the same chrome: the menu one entry per line,
    the breadcrumb line, the cookie banner and its buttons before the page's
    text; the sidebar and the footer after it."""
    other, status, condition, sponsor = _other_trial(title)
    before = "\n".join([*MENU, f"Home > Trials > {title or 'Trial'}", COOKIE, "Accept", "Reject", ""])
    after = "\n".join(["", "Similar trials", other, sponsor, "Status", status, "Conditions", condition,
                       "Locations", "Sponsor", "About us · Contact · Privacy policy", "© 2026", ""])
    return before + "\n" + text.rstrip("\n") + "\n" + after
