"""Table tests for harvester.normalize.text."""
import pytest

from harvester.normalize.text import _clean_prose_general, _clean_text_general, clean_prose, clean_text, unescape_ctgov


@pytest.mark.parametrize(
    "raw, expected",
    [
        # seed 000 (ClinConnect): title line, plain
        ("Clinical Study of CAR-T Technology for the Treatment of Relapsed Refractory Malignant Haematological Tumours",
         "Clinical Study of CAR-T Technology for the Treatment of Relapsed Refractory Malignant Haematological Tumours"),
        # seed 000: "Launched by SHANXI BETHUNE HOSPITAL · Jan 25, 2024" (middle dot kept)
        ("Launched by SHANXI BETHUNE HOSPITAL \u00b7 Jan 25, 2024", "Launched by SHANXI BETHUNE HOSPITAL \u00b7 Jan 25, 2024"),
        # seed 003 (Veeva): value lines are indented with two spaces and a bullet
        ("  \u2022 Age: 18-65 years", "\u2022 Age: 18-65 years"),
        # seed 001 (CT.gov classic): table cells end in " |"
        ("Expanded Access |", "Expanded Access |"),
        # no-break spaces and narrow no-break spaces become spaces
        ("18\u00a0to\u202f65 years old", "18 to 65 years old"),
        # zero-width characters and a BOM vanish
        ("\ufeffNCT0\u200b2186860", "NCT02186860"),
        ("Re\u00adcruiting", "Recruiting"),  # soft hyphen
        # newlines, tabs and runs of spaces collapse
        ("  Acute \n\t Lymphoblastic   Leukemia  ", "Acute Lymphoblastic Leukemia"),
        # NFC: "e" + combining acute == precomposed "é" (seed 002 "Guillain-Barré")
        ("Guillain-Barre\u0301 syndrome", "Guillain-Barr\u00e9 syndrome"),
        # control characters dropped
        ("abc\x00\x07def", "abcdef"),
        # empty results
        ("", None),
        ("   \n\t ", None),
        ("\u200b\u00a0", None),
        (None, None),
        # non-strings never raise
        (10, "10"),
        (b"Phase 1", "Phase 1"),
        (b"\xff\xfeok", "\ufffd\ufffdok"),
    ],
)
def test_clean_text(raw, expected):
    assert clean_text(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        # seed 003 (Veeva) "About" then a blank line then text: paragraphs kept
        ("Traditional standard treatments.\n\n\n\nMany people do not respond.",
         "Traditional standard treatments.\n\nMany people do not respond."),
        ("a  \u00a0b \r\n  c\r\n", "a b\nc"),
        # CT.gov's criteria: a nested list is indented, a blank line may be doubled
        ("Inclusion Criteria:\n\n* Age 18\n\n   * nested  item \n\n\nExclusion Criteria:\n",
         "Inclusion Criteria:\n\n* Age 18\n\n* nested item\n\nExclusion Criteria:"),
        (" one line,  two spaces ", "one line, two spaces"),
        ("\n\n  \n", None),
        (None, None),
    ],
)
def test_clean_prose(raw, expected):
    assert clean_prose(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        # seed 000 (ClinConnect copies CT.gov's markdown): "ALT/AST \<3 times", "creatinine \<220"
        (r"ALT/AST \<3 times upper limit of normal (ULN)", "ALT/AST <3 times upper limit of normal (ULN)"),
        (r"creatinine \<220 μmol/L", "creatinine <220 μmol/L"),
        # CT.gov API escapes
        (r"ANC \>= 1500/mm\^3", "ANC >= 1500/mm^3"),
        (r"\[severe allergy\] \*not\* \_all\_ \(see\) \~ \# \+ \- \. \! \| \{ \} \&",
         "[severe allergy] *not* _all_ (see) ~ # + - . ! | { } &"),
        (r"a \\ b", "a \\ b"),  # an escaped backslash is one backslash
        (r"x \\\> y", r"x \> y"),  # an escaped backslash, then an escaped ">"
        # real backslashes (not before ASCII punctuation) stay
        (r"C:\Users\data", r"C:\Users\data"),
        (r"\d+ and \n", r"\d+ and \n"),
        ("≥ 18 years", "≥ 18 years"),  # nothing to undo
        ("", ""),
        (None, None),
    ],
)
def test_unescape_ctgov(raw, expected):
    assert unescape_ctgov(raw) == expected


def test_unescape_then_clean_is_what_parsers_do():
    assert clean_text(unescape_ctgov("  \\>0.3\u00d7109/L \n")) == ">0.3\u00d7109/L"


def test_the_shortcut_for_clean_values_gives_what_the_general_path_gives():
    import json
    import unicodedata
    from pathlib import Path

    samples = ["Boston", "São Paulo", "Zürich", "United States", "RECRUITING", "a  b", " a", "a ", "a\tb",
               "a\u00a0b", "a\u200bb", "a\u00adb", "Cafe\u0301", "Caf\u00e9", "x\u2028y", "\u3000x", "a\u1680b",
               "\ufeffBOM", "e\u0301\u0327", "ＡＢＣ", "ﬁ ligature", "Ω ohm \u2126", "tab\x0bvt", "\x85nel",
               "日本語 テスト", "\U0001F600 smile", "Dr. O'Brien — Ⅳ", "1\u20132"]
    # and every location value of the real study bodies the project has
    real = Path(__file__).resolve().parents[1] / "cassettes" / "src" / "ctgov" / "study_NCT02513394.json"
    study = json.loads(real.read_text(encoding="utf-8"))
    for loc in study["protocolSection"]["contactsLocationsModule"]["locations"]:
        samples.extend(v for v in loc.values() if isinstance(v, str))
    samples.extend(chr(c) + "x" for c in range(0x20, 0x3000) if unicodedata.category(chr(c)) != "Cs")
    samples.extend("x" + chr(c) for c in range(0x20, 0x3000) if unicodedata.category(chr(c)) != "Cs")
    for s in samples:
        assert clean_text(s) == _clean_text_general(s), repr(s)


def test_the_shortcut_for_clean_prose_gives_what_the_general_path_gives():
    import itertools
    import json
    from pathlib import Path

    # every short string over the characters that matter to it
    alphabet = [" ", "\n", "a", "\t", "\r", "\u00a0", "\u200b", "e\u0301", "\u2028", "\x85"]
    samples = ["".join(p) for n in range(1, 6) for p in itertools.product(alphabet, repeat=n)]
    # longer runs of spaces and line breaks (each line break's neighbours are read)
    samples += ["".join(p) for n in range(6, 9) for p in itertools.product(" \na", repeat=n)]
    # every ASCII character inside a multi-line ASCII text, and at its ends
    for c in map(chr, range(0x80)):
        samples += [f"ab{c}\ncd", f"ab\n{c}", f"{c}\nab", f"one line {c} only"]
    # every other character up to U+3000 (and a few beyond, a lone surrogate) inside a multi-line text
    for c in [*map(chr, range(0x80, 0x3000)), "\ufeff", "\uff21", "\U0001F600", "\ud800"]:
        samples += [f"ab{c}\ncd", f"≥ 1{c}\n\nx"]
    # and every string of the real study bodies the project has
    root = Path(__file__).resolve().parents[1]

    def walk(o):
        if isinstance(o, dict):
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
        elif isinstance(o, str):
            samples.append(o)
    for path in [root / "cassettes" / "src" / "ctgov" / "study_NCT02513394.json",
                 *sorted((root / "tests" / "data" / "ctgov_real").glob("NCT*.json"))]:
        walk(json.loads(path.read_text(encoding="utf-8")))
    for s in samples:
        assert clean_prose(s) == _clean_prose_general(s), repr(s)
