"""Table tests for harvester.normalize.dates."""
import datetime as dt

import pytest

from harvester.normalize.dates import normalize_date


@pytest.mark.parametrize(
    "printed, expected",
    [
        # seed 000 (ClinConnect): "Launched by SHANXI BETHUNE HOSPITAL · Jan 25, 2024"
        ("Jan 25, 2024", "2024-01-25"),
        ("Launched by SHANXI BETHUNE HOSPITAL \u00b7 Jan 25, 2024", "2024-01-25"),
        # seed 000: "Current as of June 26, 2025"
        ("June 26, 2025", "2025-06-26"),
        ("Current as of June 26, 2025", "2025-06-26"),
        # seed 000 timeline: "Estimated completion" / "Not reported"
        ("Not reported", None),
        # seed 001 (CT.gov classic): First Posted, Last Update Posted, Last Verified
        ("July 5, 2019", "2019-07-05"),
        ("August 3, 2022", "2022-08-03"),
        ("August 2022", "2022-08"),  # month only: no day is invented
        ("July 5, 2019 Key Record Dates", "2019-07-05"),
        # reference/ctgov JSON statusModule dates
        ("2015-08", "2015-08"),
        ("2015-07-29", "2015-07-29"),
        ("2023-04", "2023-04"),
        ("2025-09", "2025-09"),
        # year only
        ("2022", "2022"),
        # other printed forms
        ("2024-1-5", "2024-01-05"),
        ("2024-01-25T10:00:00Z", "2024-01-25"),
        ("2024/01/25", "2024-01-25"),
        ("Sept. 3rd, 2022", "2022-09-03"),
        ("Aug 2022", "2022-08"),
        ("January, 2024", "2024-01"),
        ("25 January 2024", "2024-01-25"),
        ("25th of Jan, 2024", "2024-01-25"),
        ("JULY 5, 2019", "2019-07-05"),
        ("01/25/2024", "2024-01-25"),  # only one reading is a date
        ("25/01/2024", "2024-01-25"),
        ("2024 January 25", "2024-01-25"),  # dateparser fallback
        # refused
        ("03/04/2024", None),  # month/day order cannot be told
        ("2024-02-30", None),
        ("2024-13", None),
        ("2024-00", None),
        ("2024-01-00", None),
        ("1899-12-31", None),  # before MIN_YEAR
        ("2024-02-29", "2024-02-29"),  # a leap day
        ("2100-12-31", "2100-12-31"),  # MAX_YEAR
        ("\u0662\u0660\u0662\u0664-01-05", "2024-01-05"),  # Arabic-Indic digits are digits too
        ("February 30, 2024", None),
        ("First Posted: July 5, 2019 Last Update Posted: August 3, 2022", None),  # two dates: which?
        ("\u00a9 Copyright 2026 Veeva Systems", None),  # seed 003 footer
        ("\u00a9 Copyright 2025. All Rights Reserved by MedPath", None),  # seed 004 footer
        ("yesterday", None),
        ("2 days ago", None),
        ("Spring 2021", None),
        ("June 26", None),  # no year: none is invented
        ("1850", None),
        ("", None),
        (None, None),
        (20240125, None),
        (dt.date(2024, 1, 25), "2024-01-25"),
        (dt.datetime(2024, 1, 25, 10, 30), "2024-01-25"),
    ],
)
def test_normalize_date(printed, expected):
    assert normalize_date(printed) == expected


@pytest.mark.parametrize(
    "printed",
    ["2024-01-25", "2015-08", "2022", "Jan 25, 2024", "July 5, 2019", "August 2022", "25 January 2024",
     "Current as of June 26, 2025", "Not reported", "Recruiting", "03/04/2024"],
)
def test_printed_forms_never_reach_dateparser(printed, monkeypatch):
    """dateparser is slow; the forms the sites print take the regex path."""
    import harvester.normalize.dates as dates

    def boom(s):
        raise AssertionError(f"dateparser called for {s!r}")

    monkeypatch.setattr(dates, "_dateparser", boom)
    dates._normalize.cache_clear()
    try:
        normalize_date(printed)
    finally:
        dates._normalize.cache_clear()
