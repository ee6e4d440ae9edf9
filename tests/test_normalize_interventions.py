import pytest

from harvester.normalize.interventions import (
    INTERVENTION_TYPES,
    normalize_intervention_type,
    parse_intervention,
)


@pytest.mark.parametrize("printed, expected", [
    # as printed on ClinicalTrials.Veeva (seed 003, reference NCT03263208)
    ("Biological: CAR-T cells", {"type": "BIOLOGICAL", "name": "CAR-T cells"}),
    ("Drug: Fludarabine", {"type": "DRUG", "name": "Fludarabine"}),
    ("Biological: CD19 CAR-T", {"type": "BIOLOGICAL", "name": "CD19 CAR-T"}),
    ("Drug: CAR-T", {"type": "DRUG", "name": "CAR-T"}),  # MedPath, seed 004
    ("Dietary Supplement: Vitamin D", {"type": "DIETARY_SUPPLEMENT", "name": "Vitamin D"}),
    ("DIETARY_SUPPLEMENT: Vitamin D", {"type": "DIETARY_SUPPLEMENT", "name": "Vitamin D"}),
    ("Combination Product: pen + insulin", {"type": "COMBINATION_PRODUCT", "name": "pen + insulin"}),
    ("Diagnostic Test: PET-CT", {"type": "DIAGNOSTIC_TEST", "name": "PET-CT"}),
    ("Procedure/Surgery: apheresis", {"type": "PROCEDURE", "name": "apheresis"}),
    ("  radiation :  total  body irradiation ", {"type": "RADIATION", "name": "total body irradiation"}),
    ("Other: Standard of care", {"type": "OTHER", "name": "Standard of care"}),
    ("Behavioral: exercise", {"type": "BEHAVIORAL", "name": "exercise"}),
    ("Genetic: gene transfer", {"type": "GENETIC", "name": "gene transfer"}),
    ("Device: pump", {"type": "DEVICE", "name": "pump"}),
])
def test_typed(printed, expected):
    assert parse_intervention(printed) == expected


def test_name_keeps_later_colons():
    assert parse_intervention("Drug: Vitamin D: 1000 IU") == {"type": "DRUG", "name": "Vitamin D: 1000 IU"}


def test_no_recognised_type_keeps_the_whole_text():
    assert parse_intervention("CAR-T cells") == {"type": None, "name": "CAR-T cells"}
    assert parse_intervention("Vaccine candidate: XYZ") == {"type": None, "name": "Vaccine candidate: XYZ"}
    assert parse_intervention("Phase 1 dose: 10 mg") == {"type": None, "name": "Phase 1 dose: 10 mg"}


@pytest.mark.parametrize("printed", [None, "", "   ", "Drug:", "Biological:  "])
def test_nothing_printed(printed):
    assert parse_intervention(printed) is None


def test_every_enum_spelled_as_words_and_as_enum():
    for enum in INTERVENTION_TYPES:
        assert normalize_intervention_type(enum) == enum
        assert normalize_intervention_type(enum.replace("_", " ").title()) == enum
    assert normalize_intervention_type("Vaccine") is None
    assert normalize_intervention_type(None) is None
