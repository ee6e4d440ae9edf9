"""Table tests for harvester.normalize.ids."""
import pytest

from harvester.normalize.ids import classify_identifier, is_placeholder, normalize_nct


@pytest.mark.parametrize(
    "printed, expected",
    [
        # seed 003 (Veeva) "Identifiers" / "NCT02186860"
        ("NCT02186860", "NCT02186860"),
        # seed 001 (CT.gov classic) "ClinicalTrials.gov Identifier: NCT04008524 |" (value cell)
        ("NCT04008524 ", "NCT04008524"),
        # seed 004 (MedPath) "Registration Number" / "NCT04691349"
        ("NCT04691349", "NCT04691349"),
        # case, spaces, separators
        ("nct02186860", "NCT02186860"),
        (" NCT 02186860 ", "NCT02186860"),
        ("NCT-02186860", "NCT02186860"),
        ("NCT\u00a002186860", "NCT02186860"),
        # digits of another script are digits (read as their value), not the canonical form as it stands
        ("NCT\uff10\uff12\uff11\uff18\uff16\uff18\uff16\uff10", "NCT02186860"),
        # short number: zero-padded to 8 digits
        ("NCT001715", "NCT00001715"),
        ("NCT1", "NCT00000001"),
        # placeholders and non-IDs
        ("N/A", None),
        ("not applicable", None),
        ("NCT00000000", None),
        ("NCT", None),
        ("NCT123456789", None),  # 9 digits
        ("02186860", None),  # no prefix
        ("NCT0218686O", None),  # letter O
        ("https://clinicaltrials.gov/study/NCT02186860", None),
        ("NCT02186860, NCT03263208", None),
        ("", None),
        (None, None),
        (2186860, None),
    ],
)
def test_normalize_nct(printed, expected):
    assert normalize_nct(printed) == expected


@pytest.mark.parametrize(
    "printed, kind",
    [
        # seed 003 (Veeva) "Identifiers": NCT02186860 and 307-CTC-CAR T
        ("NCT02186860", "NCT"),
        ("307-CTC-CAR T", "ORG"),
        # reference/sites/veeva_page_text_NCT03263208 "Identifiers": HenanCH152
        ("HenanCH152", "ORG"),
        # reference/sites/veeva_page_text_NCT05270772 "Identifiers": CT19-ALL-02
        ("CT19-ALL-02", "ORG"),
        # seed 001 (CT.gov classic) "Other Study ID Numbers: | HY001502 |"
        ("HY001502", "ORG"),
        # reference/ctgov JSON: orgStudyIdInfo AFT-05; secondaryIdInfos ABCSG 42, BIG 14-03, 2014-005181-30
        ("AFT-05", "ORG"),
        ("ABCSG 42", "ORG"),
        ("BIG 14-03", "ORG"),
        ("2014-005181-30", "EUDRACT"),
        ("EudraCT Number: 2014-005181-30", "EUDRACT"),
        # other registries
        ("ISRCTN12345678", "ISRCTN"),
        ("ChiCTR2000012345", "CHICTR"),
        ("ChiCTR-TRC-12002345", "CHICTR"),
        ("UTN000468416", "UTN"),  # Veeva
        ("U1111-1234-5678", "UTN"),  # WHO Universal Trial Number
        ("2023-501234-12-00", "CTIS"),
        ("nct02186860", "NCT"),
        # no identifier: OTHER, never ORG
        ("N/A", "OTHER"),
        ("Not applicable", "OTHER"),
        ("NCT00000000", "OTHER"),
        ("", "OTHER"),
        (None, "OTHER"),
        # near misses of the registry formats are a sponsor's own number
        ("2014-5181-30", "ORG"),
        ("ISRCTN1234", "ORG"),
        ("NCT123456789", "ORG"),
    ],
)
def test_classify_identifier(printed, kind):
    assert classify_identifier(printed) == kind


def test_kinds_are_in_the_data_contract():
    from typing import get_args

    from harvester.normalize.ids import IDENTIFIER_KINDS
    from items.records import IdentifierKind

    assert set(IDENTIFIER_KINDS) <= set(get_args(IdentifierKind))


@pytest.mark.parametrize(
    "printed, expected",
    [
        ("N/A", True),
        ("NA", True),
        ("n/a", True),
        ("not applicable", True),
        ("Not Applicable", True),
        ("Not reported", True),  # seed 000 (ClinConnect) timeline "Not reported"
        ("Not available", True),  # seed 004 (MedPath) "Detailed Description" / "Not available"
        ("None", True),
        ("Unknown", True),
        ("TBD", True),
        ("-", True),
        ("0", True),
        ("NCT00000000", True),
        ("", True),
        ("   ", True),
        (None, True),
        ("NCT02186860", False),
        ("HY001502", False),
        ("307-CTC-CAR T", False),
        ("NA-001", False),
    ],
)
def test_is_placeholder(printed, expected):
    assert is_placeholder(printed) is expected


@pytest.mark.parametrize("printed, declared, expected", [
    ("N/A", None, (None, "OTHER", "placeholder")),
    ("not applicable", "ORG", (None, "OTHER", "placeholder")),
    ("NCT00000000", None, (None, "OTHER", "placeholder")),
    ("307-CTC-CAR T", None, ("307-CTC-CAR T", "ORG", None)),           # seed 003, org study ID
    ("UTN000468416", None, ("UTN000468416", "UTN", None)),             # Veeva-only ID (issue text)
    ("2014-005181-30", "EUDRACT", ("2014-005181-30", "EUDRACT", None)),  # PALLAS secondary ID
    ("ABCSG 42", "OTHER", ("ABCSG 42", "OTHER", None)),                # PALLAS, another org's number
    ("nct 2186860", None, ("NCT02186860", "NCT", None)),
    ("NCT02186860", "EUDRACT", ("NCT02186860", "NCT", "form of NCT")),
    ("2023-501234-12-00", "EUDRACT", ("2023-501234-12-00", "CTIS", "form of CTIS")),
])
def test_screen_identifier(printed, declared, expected):
    from harvester.normalize.ids import screen_identifier

    value, kind, problem = screen_identifier(printed, declared)
    assert (value, kind) == expected[:2]
    if expected[2] is None:
        assert problem is None
    else:
        assert expected[2] in problem
