"""Printed study-design words -> CT.gov's design enums."""
import pytest

from harvester.normalize.design import (normalize_allocation, normalize_arm_group_type, normalize_intervention_model,
                                        normalize_masking,
                                        normalize_observational_model, normalize_primary_purpose,
                                        normalize_time_perspective)


@pytest.mark.parametrize("fn,printed,expected", [
    # seed 003, the Veeva page of NCT02186860: its trial design block
    (normalize_primary_purpose, "Treatment", ("TREATMENT", True)),
    (normalize_allocation, "N/A", ("NA", True)),
    (normalize_intervention_model, "Single Group Assignment", ("SINGLE_GROUP", True)),
    # seed 004, the MedPath page of NCT04691349: "Study Design SINGLE_GROUP"
    (normalize_intervention_model, "SINGLE_GROUP", ("SINGLE_GROUP", True)),
    # CT.gov's own words for the other values
    (normalize_allocation, "Randomized", ("RANDOMIZED", True)),
    (normalize_allocation, "Non-Randomized", ("NON_RANDOMIZED", True)),
    (normalize_intervention_model, "Crossover Assignment", ("CROSSOVER", True)),
    (normalize_primary_purpose, "Educational/Counseling/Training", ("ECT", True)),
    (normalize_primary_purpose, "Supportive Care", ("SUPPORTIVE_CARE", True)),
    (normalize_observational_model, "Case-Control", ("CASE_CONTROL", True)),
    (normalize_observational_model, "COHORT", ("COHORT", True)),
    (normalize_time_perspective, "Cross-Sectional", ("CROSS_SECTIONAL", True)),
    (normalize_time_perspective, "Prospective", ("PROSPECTIVE", True)),
    # nothing to map, and a word the table does not know
    (normalize_allocation, None, (None, True)),
    (normalize_allocation, "  ", (None, True)),
    (normalize_allocation, "Stratified by site", (None, False)),
    (normalize_primary_purpose, "Curing", (None, False)),
])
def test_design_words(fn, printed, expected):
    assert fn(printed) == expected


@pytest.mark.parametrize("printed,expected", [
    ("None (Open label)", ("NONE", [], True)),  # seed 003
    ("NONE", ("NONE", [], True)),
    ("Single (Participant)", ("SINGLE", ["PARTICIPANT"], True)),
    ("Double (Participant, Investigator)", ("DOUBLE", ["PARTICIPANT", "INVESTIGATOR"], True)),
    ("Quadruple (Participant, Care Provider, Investigator, Outcomes Assessor)",
     ("QUADRUPLE", ["PARTICIPANT", "CARE_PROVIDER", "INVESTIGATOR", "OUTCOMES_ASSESSOR"], True)),
    ("Triple", ("TRIPLE", [], True)),
    ("Double (Participant, Statistician)", (None, [], False)),  # a role the vocabulary lacks: not half-read
    ("Blinded", (None, [], False)),
    (None, (None, [], True)),
])
def test_masking_and_who_is_masked(printed, expected):
    assert normalize_masking(printed) == expected


@pytest.mark.parametrize("printed,expected", [
    ("Experimental group", ("EXPERIMENTAL", True)),  # seed 003 (Veeva)
    ("EXPERIMENTAL", ("EXPERIMENTAL", True)),        # the API's enum
    ("Placebo Comparator", ("PLACEBO_COMPARATOR", True)),
    ("No Intervention group", ("NO_INTERVENTION", True)),
    ("Active Comparator arm", ("ACTIVE_COMPARATOR", True)),
    ("Investigational group", (None, False)),
    ("", (None, True)),
])
def test_arm_group_type(printed, expected):
    assert normalize_arm_group_type(printed) == expected
