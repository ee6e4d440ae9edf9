"""Every HTML page object gives the same record from each form of each real
page text: headings and lists (the served page), nested divs with generated
class names, plain text, and each of those inside site chrome (a header menu
of label words, breadcrumbs, a cookie banner, a sidebar of another real trial
with its own "Status", a footer; see tests/_forms.py).

The expected record is the served page's, whose values the site test files
check against the page text by hand; here the point is that markup and
chrome change nothing."""
from __future__ import annotations

import pytest
from scrapy.http import HtmlResponse, TextResponse

from _forms import as_divs, in_chrome_html, in_chrome_text
from spiders.clinconnect import ClinconnectPage
from spiders.medpath import MedpathPage
from spiders.veeva import VeevaPage
from tests._project import CASSETTES

DATE = "Mon, 23 Nov 2026 09:00:00 GMT"
SRC = CASSETTES / "src"

# (page object, URL, served HTML, plain-text rendering)
PAGES = {
    "medpath NCT04691349": (
        MedpathPage, "https://trial.medpath.com/clinical-trial/50b4028075e01462/"
                     "chimeric-antigen-receptor-t-cells-therapy-children-tumors",
        SRC / "medpath" / "NCT04691349.html", SRC / "medpath" / "forms" / "NCT04691349.txt"),
    "clinconnect seed 000": (
        ClinconnectPage, "https://clinconnect.io/trials/seed-000",
        SRC / "clinconnect" / "seed-000.html", SRC / "clinconnect" / "forms" / "seed-000.txt"),
    **{f"veeva {name}": (VeevaPage, url, SRC / "veeva" / f"{name}.html", SRC / "veeva" / "text" / f"{name}.txt")
       for name, url in {
           "seed003": "https://ctv.veeva.com/study/chimeric-antigen-receptor-car-modified-t-cell-therapy-in-"
                      "treating-patients-with-acute-lymphoblastic-leukemia",
           "seed002": "https://ctv.veeva.com/study/seed-002-cd7-car-t",
           "ref_NCT05270772": "https://ctv.veeva.com/study/car-t-19-cells-for-patients-with-cd19-relapse-refractory-b-all",
           "ref_NCT03263208": "https://ctv.veeva.com/study/cd19-car-t-cells-for-patients-with-relapse-and-refractory-cd19-b-all",
       }.items()},
}


def html(body: str, url: str) -> HtmlResponse:
    return HtmlResponse(url=url, body=body.encode("utf-8"),
                        headers={"Content-Type": "text/html; charset=utf-8", "Date": DATE})


def text(body: str, url: str) -> TextResponse:
    return TextResponse(url=url, body=body.encode("utf-8"), encoding="utf-8",
                        headers={"Content-Type": "text/plain; charset=utf-8", "Date": DATE})


def dump(record) -> dict:
    return record.model_dump(mode="json", by_alias=True)


def forms(served: str, plain: str, title: str | None) -> dict[str, tuple[str, bool]]:
    divs = as_divs(served)
    return {
        "nested divs with generated class names": (divs, True),
        "plain text": (plain, False),
        "headings and lists in chrome": (in_chrome_html(served, title), True),
        "nested divs in chrome": (in_chrome_html(divs, title), True),
        "plain text in chrome": (in_chrome_text(plain, title), False),
    }


CASES = [(page, form) for page in PAGES for form in (
    "nested divs with generated class names", "plain text", "headings and lists in chrome",
    "nested divs in chrome", "plain text in chrome")]


@pytest.mark.parametrize("page,form", CASES, ids=[f"{p}: {f}" for p, f in CASES])
def test_every_form_gives_the_served_record(page, form):
    cls, url, served_path, text_path = PAGES[page]
    served = served_path.read_text(encoding="utf-8")
    expected = cls(html(served, url)).to_record()
    body, is_html = forms(served, text_path.read_text(encoding="utf-8"), expected.brief_title)[form]
    got = cls(html(body, url) if is_html else text(body, url)).to_record()
    assert dump(got) == dump(expected)


@pytest.mark.parametrize("page", list(PAGES))
def test_the_chrome_is_kept_apart_not_lost(page):
    cls, url, served_path, _ = PAGES[page]
    served = served_path.read_text(encoding="utf-8")
    p = cls(html(in_chrome_html(served, "A title"), url))
    chrome = [ln.text for ln in p.chrome]
    assert "Similar trials" in chrome and "Home" in chrome
    assert not any("cookies" in ln.text for ln in p.lines)


def test_a_nav_title_no_longer_becomes_the_brief_title():
    # the MedPath page with a <nav> before its content, as it was reported:
    # the title was "Home Find trials For sponsors About us Contact"
    cls, url, served_path, _ = PAGES["medpath NCT04691349"]
    served = served_path.read_text(encoding="utf-8").replace(
        "<main", "<nav>Home · Find trials · For sponsors · About us · Contact</nav><main", 1)
    r = cls(html(served, url)).to_record()
    assert r.brief_title == "CAR-T for r/r Malignant Tumors in Children"
    assert r.notes == cls(html(served_path.read_text(encoding="utf-8"), url)).to_record().notes


def test_a_title_that_disagrees_with_the_title_bar_is_noted():
    cls, url, served_path, _ = PAGES["medpath NCT04691349"]
    served = served_path.read_text(encoding="utf-8").replace(
        "<title>CAR-T for r/r Malignant Tumors in Children | MedPath</title>",
        "<title>Another trial altogether | MedPath</title>")
    r = cls(html(served, url)).to_record()
    assert r.brief_title == "CAR-T for r/r Malignant Tumors in Children"
    [note] = [n for n in r.notes if n.field == "brief_title"]
    assert note.kind == "in_page_disagreement" and "Another trial altogether" in note.detail


def test_a_page_without_main_drops_its_header_and_footer():
    # no <main>, no <article>: the body is the content, the page's own
    # header, nav and footer are not
    cls, url, served_path, _ = PAGES["veeva seed003"]
    served = served_path.read_text(encoding="utf-8")
    expected = cls(html(served, url)).to_record()
    bare = served.replace("<main>", "<div>").replace("</main>", "</div>")
    assert dump(cls(html(in_chrome_html(bare, expected.brief_title), url)).to_record()) == dump(expected)
