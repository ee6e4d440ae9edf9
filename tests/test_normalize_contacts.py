"""Printed officials' roles -> CT.gov OfficialRole; stand-ins for names."""
import pytest

from harvester.normalize.contacts import is_withheld_name, normalize_official_role


@pytest.mark.parametrize("printed, expected", [
    ("Principal Investigator", "PRINCIPAL_INVESTIGATOR"),  # seed 000 (ClinConnect)
    ("Study Director", "STUDY_DIRECTOR"),
    ("Study Chair", "STUDY_CHAIR"),
    ("Sub-Investigator", "SUB_INVESTIGATOR"),
    ("PRINCIPAL_INVESTIGATOR", "PRINCIPAL_INVESTIGATOR"),
    ("Shanxi Bethune Hospital", None),
    ("", None),
    (None, None),
])
def test_official_role(printed, expected):
    assert normalize_official_role(printed) == expected


@pytest.mark.parametrize("printed, expected", [
    ("[investigator name withheld]", True),  # the assembled ClinConnect page's stand-in
    ("[contact name withheld]", True),
    ("Yao Sun, M.D., Ph.D.", False),  # seed 003 (Veeva)
    ("[Yao Sun]", False),
    (None, False),
])
def test_withheld_name(printed, expected):
    assert is_withheld_name(printed) is expected
