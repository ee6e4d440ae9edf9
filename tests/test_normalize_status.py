"""Table tests for harvester.normalize.status."""
import pytest

from harvester.normalize.status import STATUSES, normalize_status


@pytest.mark.parametrize(
    "printed, expected",
    [
        # seed 004 and reference/sites/medpath_page_text_list_style: "Status" / "UNKNOWN"
        ("UNKNOWN", ("UNKNOWN", True)),
        # seed 003 (Veeva NCT02186860), reference/sites/veeva_page_text_NCT03263208: "Status and phase" / "Unknown"
        ("Unknown", ("UNKNOWN", True)),
        # reference/sites/veeva_page_text_NCT05270772: "Status and phase" / "Enrolling"
        ("Enrolling", ("RECRUITING", True)),
        # seed 000 (ClinConnect): "Current as of June 26, 2025" / "Recruiting"
        ("Recruiting", ("RECRUITING", True)),
        # seed 001 (CT.gov classic expanded access): "Expanded Access Status :" / "Available"
        ("Available", ("AVAILABLE", True)),
        ("Expanded Access Status : Available", ("AVAILABLE", True)),
        # seed 001: the location table prints the site's status "| Available |"
        ("Available |", ("AVAILABLE", True)),
        # reference/ctgov/study_NCT02513394_with_results.json statusModule.overallStatus
        ("ACTIVE_NOT_RECRUITING", ("ACTIVE_NOT_RECRUITING", True)),
        # reference/ctgov/studies_page_with_nextPageToken.json
        ("RECRUITING", ("RECRUITING", True)),
        # CT.gov site words
        ("Active, not recruiting", ("ACTIVE_NOT_RECRUITING", True)),
        ("Unknown status", ("UNKNOWN", True)),
        ("Not yet recruiting", ("NOT_YET_RECRUITING", True)),
        ("Enrolling by invitation", ("ENROLLING_BY_INVITATION", True)),
        ("Completed", ("COMPLETED", True)),
        ("Terminated", ("TERMINATED", True)),
        ("Withdrawn", ("WITHDRAWN", True)),
        ("Suspended", ("SUSPENDED", True)),
        ("No longer available", ("NO_LONGER_AVAILABLE", True)),
        ("Temporarily not available", ("TEMPORARILY_NOT_AVAILABLE", True)),
        ("Approved for marketing", ("APPROVED_FOR_MARKETING", True)),
        ("Withheld", ("WITHHELD", True)),
        # Veeva words
        ("Not yet enrolling", ("NOT_YET_RECRUITING", True)),
        # case, spacing, labels and stray marks do not matter
        ("  recruiting ", ("RECRUITING", True)),
        ("ACTIVE, NOT RECRUITING", ("ACTIVE_NOT_RECRUITING", True)),
        ("Overall Status: Completed", ("COMPLETED", True)),
        ("Recruitment Status : Recruiting", ("RECRUITING", True)),
        ("Unknown \u2020", ("UNKNOWN", True)),
        ("not_yet_recruiting", ("NOT_YET_RECRUITING", True)),
        # no value: nothing to map, not an unknown word
        (None, (None, True)),
        ("", (None, True)),
        ("  \u00a0", (None, True)),
        ("-", (None, True)),
        # a new, unseen word: UNKNOWN, flagged as not recognised
        ("Paused", ("UNKNOWN", False)),
        ("Not recruiting", ("UNKNOWN", False)),  # ambiguous: active or completed?
        ("Recruiting soon", ("UNKNOWN", False)),
        ("Status not reported", ("UNKNOWN", False)),
        (12, ("UNKNOWN", False)),
        (["Recruiting"], ("UNKNOWN", False)),
    ],
)
def test_normalize_status(printed, expected):
    assert normalize_status(printed) == expected


def test_every_enum_maps_to_itself():
    assert STATUSES == (
        "RECRUITING", "NOT_YET_RECRUITING", "ACTIVE_NOT_RECRUITING", "ENROLLING_BY_INVITATION",
        "COMPLETED", "SUSPENDED", "TERMINATED", "WITHDRAWN", "AVAILABLE", "NO_LONGER_AVAILABLE",
        "TEMPORARILY_NOT_AVAILABLE", "APPROVED_FOR_MARKETING", "WITHHELD", "UNKNOWN",
    )
    for s in STATUSES:
        assert normalize_status(s) == (s, True)


def test_statuses_match_the_data_contract():
    from typing import get_args

    from items.records import Status

    assert set(STATUSES) == set(get_args(Status))
