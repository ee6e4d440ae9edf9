"""The shared section reader: page -> lines -> label-anchored sections."""
from pathlib import Path

import pytest
from scrapy.http import HtmlResponse, TextResponse

from spiders.sections import Line, Section, label_key, page_content, page_lines, preamble, read_sections

REPO = Path(__file__).resolve().parents[1]
VEEVA_SRC = REPO / "cassettes" / "src" / "veeva"


def texts(lines):
    return [line.text for line in lines]


# --- page_lines: HTML ------------------------------------------------------------------

def test_blocks_break_lines_inline_elements_join():
    html = ("<html><body><h1>A <em>trial</em> title</h1><div>Sex</div><p>All <b>genders</b></p>"
            "<p><a href='#'>Find clinical trials</a><a href='#'>Trials by location</a></p></body></html>")
    assert texts(page_lines(html)) == ["A trial title", "Sex", "All genders",
                                       "Find clinical trialsTrials by location"]


def test_invisible_content_is_dropped():
    html = """<html><head><title>Tab title</title><style>p{color:red}</style></head><body>
    <script>var label = "Sex";</script><noscript>Enable JavaScript</noscript>
    <svg><text>icon</text></svg><template><p>later</p></template>
    <p hidden>hidden</p><p style="display: none">also hidden</p><!-- a comment -->
    <p>Visible</p></body></html>"""
    assert texts(page_lines(html)) == ["Visible"]


def test_br_breaks_a_line():
    lines = page_lines("<p>Yao Sun, M.D.<br>Liangding Hu, M.D.<br/></p>")
    assert texts(lines) == ["Yao Sun, M.D.", "Liangding Hu, M.D."]


def test_table_cells_are_lines():
    html = "<table><tr><th>Sex</th><td>All</td></tr><tr><td>Ages</td><td>18 to 65</td></tr></table>"
    assert texts(page_lines(html)) == ["Sex", "All", "Ages", "18 to 65"]


def test_whitespace_and_nbsp_collapse():
    assert texts(page_lines("<p>  Phase\u00a0\u00a01 \n\t </p><p>   </p>")) == ["Phase 1"]


def test_nested_lists_bullets_and_depth():
    html = """<ul>
      <li>first</li>
      <li>second<ul><li>nested one</li><li>nested <i>two</i></li></ul>after nested</li>
      <li>third<br>continued</li>
    </ul><p>not a list</p>
    <ol><li>numbered</li></ol>"""
    assert page_lines(html) == [
        Line("first", True, 1),
        Line("second", True, 1),
        Line("nested one", True, 2),
        Line("nested two", True, 2),
        Line("after nested", False, 1),  # the rest of "second": a continuation, not a new item
        Line("third", True, 1),
        Line("continued", False, 1),
        Line("not a list", False, 0),
        Line("numbered", True, 1),
    ]


def test_definition_list_and_nested_divs_give_the_same_lines():
    dl = "<dl><dt>Sex</dt><dd>All</dd><dt>Ages</dt><dd>18 to 65 years old</dd></dl>"
    divs = ("<div class='a'><div><div class='k'>Sex</div><div class='v'><span>All</span></div></div>"
            "<div><div>Ages</div><div><span>18 to 65</span> <span>years old</span></div></div></div>")
    assert page_lines(dl) == page_lines(divs) == [
        Line("Sex", False, 0), Line("All", False, 0),
        Line("Ages", False, 0), Line("18 to 65 years old", False, 0)]


def test_bytes_and_response_inputs():
    html = "<html><head><meta charset='utf-8'></head><body><p>Guillain-Barré</p></body></html>"
    assert texts(page_lines(html.encode("utf-8"))) == ["Guillain-Barré"]
    response = HtmlResponse(url="https://example.org/", body=html.encode("utf-8"), encoding="utf-8")
    assert texts(page_lines(response)) == ["Guillain-Barré"]


def test_empty_pages():
    assert page_lines("") == []
    assert page_lines("<html></html>") == []
    assert page_lines(b"", is_html=True) == []


# --- page_lines: plain text ---------------------------------------------------------------

def test_plain_text_one_line_per_non_empty_line_markers_stripped():
    text = ("Inclusion criteria\n\n  \u2022 Age: 18-65 years\n  \u2022 Stage III-IV disease\n"
            "- dash item\n* star item\n- \u2022 double marker\nplain line\n")
    assert page_lines(text) == [
        Line("Inclusion criteria", False, 0),
        Line("Age: 18-65 years", True, 1),
        Line("Stage III-IV disease", True, 1),
        Line("dash item", True, 1),
        Line("star item", True, 1),
        Line("double marker", True, 1),
        Line("plain line", False, 0),
    ]


def test_plain_text_indentation_nests_bullets():
    text = "- top\n    - nested\n        - deeper\n    - nested again\n- top again\n"
    assert [(line.text, line.depth) for line in page_lines(text)] == [
        ("top", 1), ("nested", 2), ("deeper", 3), ("nested again", 2), ("top again", 1)]


def test_plain_text_indented_numbers_are_list_items_unindented_are_text():
    # NCT03263208's saved text renders its <ol> as indented "1." lines.
    text = "Inclusion criteria\n    1. 2 years to 70 years;\n    1. ECOG <\n1. not indented\n"
    assert page_lines(text) == [
        Line("Inclusion criteria", False, 0),
        Line("2 years to 70 years;", True, 1),
        Line("ECOG <", True, 1),
        Line("1. not indented", False, 0),
    ]


def test_guess_html_or_text():
    assert texts(page_lines("Creatinine < 2.5 mg/dl\nECOG <")) == ["Creatinine < 2.5 mg/dl", "ECOG <"]
    assert texts(page_lines("<p>a</p><p>b</p>")) == ["a", "b"]
    assert texts(page_lines("<p>a</p>", is_html=False)) == ["<p>a</p>"]
    plain = TextResponse(url="https://example.org/", body=b"<p>a</p>",
                         headers={"Content-Type": "text/plain"}, encoding="utf-8")
    assert texts(page_lines(plain)) == ["<p>a</p>"]


@pytest.mark.parametrize("name", ["seed002", "seed003", "ref_NCT05270772", "ref_NCT03263208"])
def test_assembled_pages_carry_exactly_the_real_text(name):
    html = (VEEVA_SRC / f"{name}.html").read_text(encoding="utf-8")
    text = (VEEVA_SRC / "text" / f"{name}.txt").read_text(encoding="utf-8")
    # the markup carries the text exactly, its chrome included
    assert page_content(html, chrome=False).lines == page_content(text, chrome=False).lines


# --- read_sections ------------------------------------------------------------------

def L(*items):
    return [Line(t, False, 0) for t in items]


def test_sections_in_page_order_with_their_lines():
    lines = L("Title", "Sponsor", "Sex", "All", "Ages", "18 to 65 years old", "more")
    sections = read_sections(lines, ["Sex", "Ages"])
    assert list(sections) == ["Sex", "Ages"]
    assert sections["Sex"] == Section("Sex", L("All"))
    assert sections["Ages"].texts == ["18 to 65 years old", "more"]
    assert sections["Ages"].text == "18 to 65 years old\nmore"
    assert texts(preamble(lines, ["Sex", "Ages"])) == ["Title", "Sponsor"]


def test_label_printed_with_no_value():
    # seed 002: "Enrollment", "Sex", "Ages" follow each other with no value
    sections = read_sections(L("Enrollment", "Sex", "Ages", "Volunteers", "x"),
                             ["Enrollment", "Sex", "Ages", "Volunteers"])
    assert sections["Enrollment"].lines == [] and sections["Enrollment"].text is None
    assert sections["Sex"].lines == [] and sections["Ages"].lines == []
    assert sections["Volunteers"].texts == ["x"]


def test_missing_label_is_absent_not_empty():
    assert "Sex" not in read_sections(L("Ages", "18"), ["Sex", "Ages"])


def test_trailing_colon_case_and_spacing_are_ignored():
    sections = read_sections(L("SEX:", "All", "  ages :", "18+", "Inclusion  Criteria", "a"),
                             ["Sex", "Ages:", "Inclusion criteria"])
    assert sections["Sex"].texts == ["All"]
    assert sections["Ages:"].texts == ["18+"]
    assert sections["Inclusion criteria"].texts == ["a"]
    assert label_key(" Inclusion  Criteria: ") == "inclusion criteria"


def test_a_label_and_its_value_on_one_line():
    # "Age: 18-65 years" printed on one line opens Age with its value; a
    # label already open is not opened again, and a bullet is a criterion
    sections = read_sections(L("Sex", "Sex: female only", "Age: 18-65 years", "Status:", "Recruiting"),
                             ["Sex", "Age", "Status"])
    assert sections["Sex"].texts == ["Sex: female only"]
    assert sections["Age"].texts == ["18-65 years"]
    assert sections["Status"].texts == ["Recruiting"]
    bullets = read_sections([Line("Inclusion", False, 0), Line("Age: 18 or over", True, 1)], ["Inclusion", "Age"])
    assert bullets["Inclusion"].texts == ["Age: 18 or over"] and "Age" not in bullets


def test_a_longer_line_that_starts_like_a_label_is_not_one():
    sections = read_sections(L("Conditions", "Status of the disease: relapsed"), ["Conditions", "Status"])
    assert sections["Conditions"].texts == ["Status of the disease: relapsed"]


def test_repeated_label_word_first_occurrence_wins():
    # "Treatments" as a label, then again inside a later section's text
    lines = L("Treatments", "Biological: CAR-T cells", "Trial design", "Treatments", "Biological: CAR-T cells")
    sections = read_sections(lines, ["Treatments", "Trial design"])
    assert sections["Treatments"].texts == ["Biological: CAR-T cells"]
    assert sections["Trial design"].texts == ["Treatments", "Biological: CAR-T cells"]


def test_repeat_does_not_hide_a_later_label():
    lines = L("About", "text", "About", "more", "Sex", "All")
    sections = read_sections(lines, ["About", "Sex"])
    assert sections["About"].texts == ["text", "About", "more"]
    assert sections["Sex"].texts == ["All"]


def test_mapping_of_printed_forms_to_canonical_labels():
    labels = {"Status and phase": "status", "Status": "status", "Gender": "sex", "Sex": "sex"}
    sections = read_sections(L("Status", "Unknown", "Gender", "ALL", "Sex", "x"), labels)
    assert list(sections) == ["status", "sex"]
    assert sections["status"].label == "status"
    assert sections["sex"].texts == ["ALL", "Sex", "x"]  # a second printed form of a seen label is a repeat


def test_bullet_lines_can_be_labels():
    # MedPath's list-style rendering prints labels as list items
    lines = [Line("Conditions", True, 1), Line("Malignant Tumor", True, 1), Line("Sex", True, 1), Line("All", True, 1)]
    sections = read_sections(lines, ["Conditions", "Sex"])
    assert sections["Conditions"].texts == ["Malignant Tumor"]
    assert sections["Sex"].lines == [Line("All", True, 1)]


def test_labels_argument_checks():
    with pytest.raises(TypeError):
        read_sections([], "Sex")
    with pytest.raises(ValueError):
        read_sections([], ["Sex", " : "])


def test_real_seed_text_sections():
    text = (VEEVA_SRC / "text" / "seed003.txt").read_text(encoding="utf-8")
    labels = ["Status and phase", "Conditions", "Identifiers", "Details and patient eligibility",
              "Inclusion criteria", "Exclusion criteria", "Trial design"]
    lines = page_lines(text)
    sections = read_sections(lines, labels)
    assert texts(preamble(lines, labels)) == [
        "ClinicalTrials.Veeva", "Menu",
        "Chimeric Antigen Receptor (CAR)-Modified T Cell Therapy in Treating Patients With Acute "
        "Lymphoblastic Leukemia", "A", "Affiliated Hospital to Academy of Military Medical Sciences"]
    assert sections["Status and phase"].texts == ["Unknown", "Phase 1"]
    # "Treatments" etc. are not configured here, so they stay text of "Conditions"
    assert sections["Conditions"].texts[:3] == ["Acute Lymphoblastic Leukemia", "Treatments",
                                                "Biological: CAR-T cells"]
    assert sections["Identifiers"].texts == ["NCT02186860", "307-CTC-CAR T"]
    assert len(sections["Inclusion criteria"].lines) == 12
    assert all(line.bullet and line.depth == 1 for line in sections["Inclusion criteria"].lines)
    assert sections["Inclusion criteria"].lines[0] == Line("Age: 18-65 years", True, 1)
    assert len(sections["Exclusion criteria"].lines) == 7
    assert sections["Exclusion criteria"].lines[-1] == Line("Uncontrolled active infection", True, 1)
    assert sections["Trial design"].texts[:2] == ["Primary purpose", "Treatment"]


# --- site chrome -----------------------------------------------------------------------
def test_html_content_is_read_inside_main_and_chrome_is_kept_apart():
    html = ("<html><head><title>A trial | Site</title></head><body>"
            "<header><nav><a>Home</a> <a>Status</a> <a>Sex</a></nav></header>"
            "<nav aria-label='breadcrumb'><a>Home</a> / <a>Trials</a></nav>"
            "<div class='cookie-banner'><p>We use cookies.</p><button>Accept</button></div>"
            "<main><h1>A trial</h1><h2>Status</h2><p>Recruiting</p>"
            "<aside><h3>Similar trials</h3><p>Status</p><p>Completed</p></aside></main>"
            "<footer><p>© 2026</p></footer></body></html>")
    content = page_content(html, labels=["Status"])
    assert texts(content.lines) == ["A trial", "Status", "Recruiting"]
    assert (content.title, content.h1) == ("A trial | Site", "A trial")
    chrome = texts(content.chrome)
    assert "We use cookies." in chrome and "Similar trials" in chrome and "© 2026" in chrome


def test_a_sidebar_with_labels_the_content_lacks_is_the_pages_own():
    html = ("<html><body><main><h2>Status</h2><p>Recruiting</p>"
            "<aside><h2>Locations</h2><p>Taiyuan, Shanxi, China</p></aside></main></body></html>")
    assert texts(page_content(html, labels=["Status", "Locations"]).lines) == [
        "Status", "Recruiting", "Locations", "Taiyuan, Shanxi, China"]
    assert texts(page_content(html, labels=["Status"]).lines) == ["Status", "Recruiting"]


def test_text_chrome_shapes():
    text = "\n".join(["Home", "Status", "Sex", "Contact", "Home > Trials > A trial",
                      "We use cookies to improve your experience.", "Accept",
                      "A trial", "Status", "Recruiting", "Similar trials", "Another trial", "Status", "Completed",
                      "© 2026"])
    content = page_content(text, is_html=False, labels=["Status", "Sex"])
    assert texts(content.lines) == ["A trial", "Status", "Recruiting"]
    # labels printed one after another in the content are not a menu without a navigation word
    plain = "\n".join(["Status", "Conditions", "Treatments", "About", "A summary"])
    assert texts(page_content(plain, is_html=False, labels=["Status", "Conditions", "Treatments", "About"]).lines) \
        == ["Status", "Conditions", "Treatments", "About", "A summary"]
