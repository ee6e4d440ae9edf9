"""Assemble the Veeva cassette pages from real page text.

No real HTML of ctv.veeva.com is available to this project, only the text
of four real pages (`text/*.txt`: seeds 002 and 003, and the two reference
texts, each cut where its saver cut it). Each page here is HTML that carries
exactly that text, line for line, in a plausible structure: a header (site
name, menu), the title as <h1>, the sponsor logo placeholder and sponsor name
as <div>s, section headings as <h2>/<h3>, values as <p>, bulleted criteria as
<ul><li>, numbered criteria as <ol><li>, the footer in <footer>; plus a
<head> with a <title>, a script and a style that carry no visible text. The
page ends where the text ends. Nothing is added that the text does not show.

    python cassettes/build.py veeva     # runs generate() then writes cassettes/veeva.yaml
"""
from __future__ import annotations

import html
import re
from pathlib import Path

PAGES = {  # text file -> assembled page
    "seed002.txt": "seed002.html",
    "seed003.txt": "seed003.html",
    "ref_NCT05270772.txt": "ref_NCT05270772.html",
    "ref_NCT03263208.txt": "ref_NCT03263208.html",
}
CHROME = {"ClinicalTrials.Veeva", "Menu"}
H2 = {"Status and phase", "Status", "Conditions", "Treatments", "Study type", "Funder types",
      "Identifiers", "Details and patient eligibility", "Trial design", "Trial contacts and locations"}
H3 = {"About", "Full description", "Enrollment", "Sex", "Ages", "Volunteers", "Inclusion criteria",
      "Exclusion criteria", "Primary purpose", "Allocation", "Interventional model", "Masking",
      "Central trial contact"}
FOOTER_START = "Data sourced from clinicaltrials.gov"
FOOTER_H = {"Clinical trials", "Research sites", "Resources", "Legal"}
BULLET = re.compile(r"^\s+\u2022\s+(.*)$")
NUMBERED = re.compile(r"^\s+\d+\.\s+(.*)$")
PARTICIPANTS = re.compile(r"^\d+ participants in \d+ patient groups?$")

HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>.logo{{width:2rem;height:2rem;border-radius:50%}} .visually-hidden{{display:none}}</style>
<script>window.__ctv = {{"analytics": false}};</script>
</head>
<body>
"""


def esc(text: str) -> str:
    return html.escape(text, quote=False)


def assemble(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    out: list[str] = []
    i = 0
    title = None
    if lines and lines[0].strip() in CHROME:  # header: site name, menu, title, logo, sponsor
        out.append('<header class="site-header">')
        while i < len(lines) and lines[i].strip() in CHROME:
            out.append(f'  <div class="nav-item"><a href="/">{esc(lines[i].strip())}</a></div>')
            i += 1
        out.append("</header>")
        out.append("<main>")
        if i < len(lines) and lines[i].strip() not in H2:
            title = lines[i].strip()
            out.append(f'<div class="study-header">\n  <h1>{esc(title)}</h1>')
            i += 1
            if i < len(lines) and len(lines[i].strip()) == 1:
                out.append(f'  <div class="logo" aria-hidden="true">{esc(lines[i].strip())}</div>')
                i += 1
            if i < len(lines) and lines[i].strip() not in H2:
                out.append(f'  <div class="sponsor">{esc(lines[i].strip())}</div>')
                i += 1
            out.append("</div>")
    else:
        out.append("<main>")
    open_list = None
    open_section = False
    in_footer = False

    def close_list():
        nonlocal open_list
        if open_list:
            out.append(f"</{open_list}>")
            open_list = None

    for line in lines[i:]:
        stripped = line.strip()
        m_b, m_n = BULLET.match(line), NUMBERED.match(line)
        if m_b or m_n:
            kind = "ul" if m_b else "ol"
            if open_list != kind:
                close_list()
                out.append(f"<{kind}>")
                open_list = kind
            out.append(f"  <li>{esc((m_b or m_n).group(1).strip())}</li>")
            continue
        close_list()
        if stripped == FOOTER_START and not in_footer:
            if open_section:
                out.append("</section>")
                open_section = False
            out.append("</main>\n<footer>")
            in_footer = True
            out.append(f"<p>{esc(stripped)}</p>")
        elif in_footer and stripped in FOOTER_H:
            out.append(f"<h4>{esc(stripped)}</h4>")
        elif in_footer and stripped == "Find clinical trialsTrials by location":
            out.append('<p><a href="/">Find clinical trials</a><a href="/">Trials by location</a></p>')
        elif not in_footer and stripped in H2:
            if open_section:
                out.append("</section>")
            out.append(f"<section>\n<h2>{esc(stripped)}</h2>")
            open_section = True
        elif not in_footer and (stripped in H3 or PARTICIPANTS.match(stripped)):
            out.append(f"<h3>{esc(stripped)}</h3>")
        else:
            out.append(f"<p>{esc(stripped)}</p>")
    close_list()
    if open_section:
        out.append("</section>")
    out.append("</footer>" if in_footer else "</main>")
    head = HEAD.format(title=esc(f"{title} | ClinicalTrials.Veeva" if title else "ClinicalTrials.Veeva"))
    return head + "\n".join(out) + "\n</body>\n</html>\n"


def generate(src_dir) -> None:
    src_dir = Path(src_dir)
    for text_name, html_name in PAGES.items():
        text = (src_dir / "text" / text_name).read_text(encoding="utf-8")
        (src_dir / html_name).write_text(assemble(text), encoding="utf-8")


if __name__ == "__main__":
    generate(Path(__file__).resolve().parent)
