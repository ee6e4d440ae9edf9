"""Table tests for harvester.normalize.sex."""
import pytest

from harvester.normalize.sex import SEXES, normalize_sex


@pytest.mark.parametrize(
    "printed, expected",
    [
        # seed 000 (ClinConnect) "Gender" / "ALL"
        ("ALL", "ALL"),
        # seeds 003, 004 and the reference Veeva/MedPath pages: "Sex" / "All"
        ("All", "ALL"),
        # seed 001 (CT.gov classic) "Sexes Eligible for Study: | All |"
        ("Sexes Eligible for Study: All", "ALL"),
        # seed 002 (Veeva) criterion: "Aged 18-85 years (inclusive), gender not restricted."
        ("gender not restricted", "ALL"),
        # reference/ctgov JSON eligibilityModule.sex
        ("FEMALE", "FEMALE"),
        ("MALE", "MALE"),
        # other printed forms
        ("Both", "ALL"),
        ("All genders", "ALL"),
        ("Both sexes", "ALL"),
        ("Male and female", "ALL"),
        ("Men and women", "ALL"),
        ("Female", "FEMALE"),
        ("Women", "FEMALE"),
        ("Females only", "FEMALE"),
        ("Women only", "FEMALE"),
        ("Male", "MALE"),
        ("Men", "MALE"),
        ("Gender: Male", "MALE"),
        ("  all  ", "ALL"),
        # unknown -> None, never a guess
        ("N/A", None),
        ("Not reported", None),
        ("Other", None),
        ("Transgender", None),
        ("Pregnant women", None),
        ("", None),
        (None, None),
        (1, None),
        ("x" * 500, None),
    ],
)
def test_normalize_sex(printed, expected):
    assert normalize_sex(printed) == expected


def test_sex_vocabulary_matches_the_data_contract():
    from typing import get_args

    from items.records import Sex

    assert set(SEXES) == set(get_args(Sex))
