"""Table tests for harvester.normalize.enrollment."""
import pytest

from harvester.normalize.enrollment import find_planned_enrollment, parse_enrollment

SEED_002_ABOUT = (
    "This study is a single-arm, multicenter Investigator-Initiated Trial (IIT) clinical study. The primary "
    "objective is to evaluate the safety, pharmacokinetic characteristics, and preliminary efficacy of CAR-T cells "
    "in subjects with relapsed/refractory (r/r) CD7-positive hematological malignancies. The study plans to enroll "
    "20 subjects, with the actual sample size to be determined based on real-world occurrence."
)


@pytest.mark.parametrize(
    "printed, expected",
    [
        # seed 003 (Veeva NCT02186860) "Enrollment"
        ("5 estimated patients", (5, "ESTIMATED")),
        # reference/sites/veeva_page_text_NCT03263208 and _NCT05270772 "Enrollment"
        ("20 estimated patients", (20, "ESTIMATED")),
        ("9 estimated patients", (9, "ESTIMATED")),
        # seed 003 / seed 002 (Veeva) arm summary: the number, no type
        ("5 participants in 1 patient group", (5, None)),
        ("28 participants in 1 patient group", (28, None)),
        # seed 004 (MedPath) "Target Recruitment" / "10": the value alone, and with its label (a plan)
        ("10", (10, None)),
        ("Target Recruitment 10", (10, "ESTIMATED")),
        ("Target Recruitment: 10", (10, "ESTIMATED")),
        # seed 002 "About": the planned number, with "actual" later in another clause
        ("plans to enroll 20 subjects", (20, "ESTIMATED")),
        (SEED_002_ABOUT, (20, "ESTIMATED")),
        # CT.gov classic and API wording (reference JSON: count 5796, type ACTUAL)
        ("Actual Enrollment : 5796 participants", (5796, "ACTUAL")),
        ("Estimated Enrollment : 40 participants", (40, "ESTIMATED")),
        ("Enrollment: 5796 (Actual)", (5796, "ACTUAL")),
        ("40 (Anticipated)", (40, "ESTIMATED")),
        ("1,200 actual participants", (1200, "ACTUAL")),
        ("5 patients", (5, None)),
        ("20 patients enrolled", (20, "ACTUAL")),
        ("  12\u00a0participants ", (12, None)),
        (5796, (5796, None)),
        # no number
        ("Not reported", (None, None)),
        ("Patients applied", (None, None)),  # seed 000 (ClinConnect): label without a value
        ("", (None, None)),
        (None, (None, None)),
        ("estimated", (None, None)),
        (-3, (None, None)),
        ([5], (5, None)),  # odd input: read as text, never raises
    ],
)
def test_parse_enrollment(printed, expected):
    assert parse_enrollment(printed) == expected


@pytest.mark.parametrize(
    "prose, expected",
    [
        (SEED_002_ABOUT, (20, "plans to enroll 20 subjects")),
        ("A total of 60 patients will be enrolled.", (60, "A total of 60 patients will be enrolled")),
        ("We will recruit approximately 120 eligible patients over two years.",
         (120, "will recruit approximately 120 eligible patients")),
        ("The planned sample size is 1,200 participants.", (1200, "planned sample size is 1,200")),
        ("It is expected to enroll 30 participants.", (30, "expected to enroll 30 participants")),
        # no planned-enrollment statement
        ("Twenty patients were enrolled in 2019.", None),
        ("20 patients were enrolled.", None),
        ("Subjects will be evaluated every 10 weeks for 1 year.", None),  # reference veeva NCT03263208 full description
        ("Not available", None),  # seed 004 "Detailed Description"
        ("", None),
        (None, None),
    ],
)
def test_find_planned_enrollment(prose, expected):
    assert find_planned_enrollment(prose) == expected
