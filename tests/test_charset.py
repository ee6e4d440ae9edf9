"""The declared charset is honoured (HTTP header, byte-order mark, <meta
charset>) by the page objects, in a crawl and in `scrapy extract`: the real
MedPath page (NCT04691349) served in ISO-8859-1, UTF-16 and EUC-JP gives the
record it gives in UTF-8, and undecodable bytes beside an NCT ID do not turn
it into another identifier.

The page text has "×" (ISO-8859-1 byte D7) in "Total bilirubin≤1.5×ULN";
characters a charset cannot hold ("≥", "≤") are written as HTML character
references, as a page in that charset must."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from scrapy.http import HtmlResponse

from _fakesite import FakeSite, Reply, crawl
from harvester.store import Store
from spiders.medpath import MedpathPage
from spiders.veeva import VeevaPage
from tests._project import CASSETTES

REPO = Path(__file__).resolve().parents[1]
SRC = CASSETTES / "src"
DATE = "Mon, 23 Nov 2026 09:00:00 GMT"
MEDPATH_URL = ("https://trial.medpath.com/clinical-trial/50b4028075e01462/"
               "chimeric-antigen-receptor-t-cells-therapy-children-tumors")
SERVED = (SRC / "medpath" / "NCT04691349.html").read_text(encoding="utf-8")
CRITERION = ("Liver and kidney function, heart and lung function meet the following requirements: Creatinine "
             "is within the normal range; Left ventricular ejection fraction ≥ 45%; Baseline blood oxygen "
             "saturation>91%; Total bilirubin≤1.5×ULN; ALT and AST≤2.5×ULN")


def encoded(charset: str, meta: bool = True) -> bytes:
    page = SERVED.replace('<meta charset="utf-8">', f'<meta charset="{charset}">' if meta else "")
    return page.encode(charset, "xmlcharrefreplace")


def response(body: bytes, content_type: str = "text/html", url: str = MEDPATH_URL) -> HtmlResponse:
    return HtmlResponse(url=url, body=body, headers={"Content-Type": content_type, "Date": DATE})


def dump(record) -> dict:
    return record.model_dump(mode="json", by_alias=True)


EXPECTED = MedpathPage(response(SERVED.encode("utf-8"), "text/html; charset=utf-8")).to_record()


def test_the_expected_record_has_the_criterion_with_its_non_ascii_characters():
    assert CRITERION in EXPECTED.eligibility.inclusion  # read by hand from the page text


@pytest.mark.parametrize("how,body,content_type", [
    ("ISO-8859-1 by <meta charset>", encoded("iso-8859-1"), "text/html"),
    ("ISO-8859-1 by the HTTP header", encoded("iso-8859-1", meta=False), "text/html; charset=iso-8859-1"),
    ("UTF-16 by its byte-order mark", encoded("utf-16", meta=False), "text/html"),
    ("UTF-16 LE by the header", encoded("utf-16-le", meta=False), "text/html; charset=utf-16-le"),
    ("EUC-JP by <meta charset>", encoded("euc-jp"), "text/html"),
    ("EUC-JP by the HTTP header", encoded("euc-jp", meta=False), "text/html; charset=EUC-JP"),
])
def test_a_page_in_its_declared_charset_gives_the_same_record(how, body, content_type):
    assert b"\xd7" in body or "utf-16" in how or "EUC" in how  # the × really is a Latin-1 byte
    assert dump(MedpathPage(response(body, content_type)).to_record()) == dump(EXPECTED)


def test_undecodable_bytes_beside_an_nct_id_do_not_make_it_another_identifier():
    url = ("https://ctv.veeva.com/study/chimeric-antigen-receptor-car-modified-t-cell-therapy-in-"
           "treating-patients-with-acute-lymphoblastic-leukemia")
    body = (SRC / "veeva" / "seed003.html").read_bytes()
    assert b"<p>NCT02186860</p>" in body
    broken = body.replace(b"<p>NCT02186860</p>", b"<p>NCT02186860\xff\xfe</p>")
    clean = VeevaPage(response(body, "text/html; charset=utf-8", url)).to_record()
    r = VeevaPage(response(broken, "text/html; charset=utf-8", url)).to_record()
    assert r.nct_id == "NCT02186860"
    assert r.secondary_ids == clean.secondary_ids  # the org study ID only, no "NCT02186860\ufffd"
    [note] = [n for n in r.notes if n.kind == "undecodable_bytes"]
    assert note.field == "page" and "utf-8" in note.detail


# --- scrapy extract on saved pages -------------------------------------------------------------
def extract(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPY_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["SCRAPY_SETTINGS_MODULE"] = "harvester.settings"
    return subprocess.run([sys.executable, "-m", "scrapy", "extract", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("charset,meta,option", [
    ("iso-8859-1", True, []), ("utf-16", False, []), ("euc-jp", True, []),
    ("iso-8859-1", False, ["--encoding", "iso-8859-1"]),
])
def test_extract_reads_a_saved_page_in_its_charset(tmp_path, charset, meta, option):
    page = tmp_path / "page.html"
    page.write_bytes(encoded(charset, meta))
    run = extract(tmp_path, "medpath", str(page), "--url", MEDPATH_URL, *option)
    assert run.returncode == 0, run.stderr[-2000:]
    record = json.loads(run.stdout)
    assert CRITERION in record["eligibility"]["inclusion"]
    assert record["brief_title"] == "CAR-T for r/r Malignant Tumors in Children"
    assert record["lead_sponsor"]["name"] == "PersonGen BioTherapeutics (Suzhou) Co., Ltd."


def test_extract_refuses_an_unknown_encoding(tmp_path):
    page = tmp_path / "page.html"
    shutil.copy(SRC / "medpath" / "NCT04691349.html", page)
    run = extract(tmp_path, "medpath", str(page), "--encoding", "no-such-charset")
    assert run.returncode == 1 and "unknown encoding 'no-such-charset'" in run.stderr


# --- a crawl --------------------------------------------------------------------------------------
def test_a_crawl_honours_the_charset_the_server_declares(tmp_path):
    site = FakeSite()
    try:
        path = "/clinical-trial/50b4028075e01462/chimeric-antigen-receptor-t-cells-therapy-children-tumors"
        site.script(path, Reply(body=encoded("iso-8859-1", meta=False),
                                content_type="text/html; charset=iso-8859-1"))
        run = crawl("medpath", tmp_path, "-a", f"base_url={site.url('')}", "-a", f"urls={site.url(path)}")
    finally:
        site.close()
    assert run.returncode == 0, run.stderr[-3000:]
    with Store(tmp_path / "harvest.sqlite3") as store:
        [stored] = list(store.iter_sources())
    assert CRITERION in stored.record.eligibility.inclusion
    assert stored.record.brief_title == EXPECTED.brief_title
