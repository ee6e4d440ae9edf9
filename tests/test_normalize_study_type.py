"""Table tests for harvester.normalize.study_type."""
import pytest

from harvester.normalize.study_type import STUDY_TYPES, normalize_study_type


@pytest.mark.parametrize(
    "printed, expected",
    [
        # seed 003 and the reference Veeva pages: "Study type" / "Interventional"
        ("Interventional", "INTERVENTIONAL"),
        # seed 004 (MedPath) "Study Type" / "INTERVENTIONAL"; reference/ctgov JSON designModule.studyType
        ("INTERVENTIONAL", "INTERVENTIONAL"),
        # seed 001 (CT.gov classic) "Study Type : | Expanded Access |"
        ("Expanded Access", "EXPANDED_ACCESS"),
        ("Study Type : Expanded Access", "EXPANDED_ACCESS"),
        # reference/ctgov/openapi_v2.yaml StudyType enum
        ("EXPANDED_ACCESS", "EXPANDED_ACCESS"),
        ("OBSERVATIONAL", "OBSERVATIONAL"),
        # CT.gov qualified forms
        ("Observational [Patient Registry]", "OBSERVATIONAL"),
        ("Observational (Patient Registry)", "OBSERVATIONAL"),
        ("Interventional  (Clinical Trial)", "INTERVENTIONAL"),
        ("Observational", "OBSERVATIONAL"),
        ("Observational study", "OBSERVATIONAL"),
        ("Expanded access program", "EXPANDED_ACCESS"),
        ("Patient Registry", "OBSERVATIONAL"),
        ("  interventional ", "INTERVENTIONAL"),
        # not a study type
        ("Interventional model", None),  # seed 003 label "Interventional model" (Single Group Assignment)
        ("SINGLE_GROUP", None),  # seed 004 "Study Design"
        ("Clinical trial", None),
        ("Treatment", None),  # seed 003 "Primary purpose"
        ("", None),
        (None, None),
        (3, None),
    ],
)
def test_normalize_study_type(printed, expected):
    assert normalize_study_type(printed) == expected


def test_study_types_match_the_data_contract():
    from typing import get_args

    from items.records import StudyType

    assert set(STUDY_TYPES) == set(get_args(StudyType))
