"""Table tests for harvester.normalize.phases."""
import pytest

from harvester.normalize.phases import PHASES, normalize_phases


@pytest.mark.parametrize(
    "printed, phases, unrecognised",
    [
        # seed 003 (Veeva NCT02186860), veeva_page_text_NCT05270772: "Phase 1" under "Status and phase"
        ("Phase 1", ["PHASE1"], []),
        # reference/sites/veeva_page_text_NCT03263208: "Phase 2" then "Phase 1" on separate lines
        (["Phase 2", "Phase 1"], ["PHASE1", "PHASE2"], []),
        ("Phase 2\nPhase 1", ["PHASE1", "PHASE2"], []),
        # seed 004 (MedPath NCT04691349): "Early Phase 1" above "Conditions"
        ("Early Phase 1", ["EARLY_PHASE1"], []),
        # reference/ctgov/study_NCT02513394_with_results.json designModule.phases
        (["PHASE3"], ["PHASE3"], []),
        # seed 003 "About": "The investigators start Phase I study" -> the form "Phase I"
        ("Phase I", ["PHASE1"], []),
        # CT.gov enums and site spellings
        ("EARLY_PHASE1", ["EARLY_PHASE1"], []),
        ("PHASE1", ["PHASE1"], []),
        (["PHASE1", "PHASE2"], ["PHASE1", "PHASE2"], []),
        (["PHASE3", "PHASE1", "PHASE3"], ["PHASE1", "PHASE3"], []),  # deduplicated, in canonical order
        (["PHASE1", "Phase 2"], ["PHASE1", "PHASE2"], []),  # an enum beside a printed form
        (["PHASE1", "PHASE 5"], ["PHASE1"], ["PHASE 5"]),
        ("PHASE1|PHASE2", ["PHASE1", "PHASE2"], []),
        ("Phase 1/Phase 2", ["PHASE1", "PHASE2"], []),
        ("Phase I/II", ["PHASE1", "PHASE2"], []),
        ("Phase 1/2", ["PHASE1", "PHASE2"], []),
        ("Phase 2/3", ["PHASE2", "PHASE3"], []),
        ("Phase II/III", ["PHASE2", "PHASE3"], []),
        ("Phase 1-2", ["PHASE1", "PHASE2"], []),
        ("Phase 1, Phase 2", ["PHASE1", "PHASE2"], []),
        ("Phase 1 and 2", ["PHASE1", "PHASE2"], []),
        ("Phase 1b/2a", ["PHASE1", "PHASE2"], []),
        ("phase IIb", ["PHASE2"], []),
        ("Phase III", ["PHASE3"], []),
        ("Phase IV", ["PHASE4"], []),
        ("Phase 4", ["PHASE4"], []),
        ("Phase 0", ["EARLY_PHASE1"], []),  # CT.gov: Early Phase 1, formerly "Phase 0"
        ("N/A", ["NA"], []),
        ("Not Applicable", ["NA"], []),
        ("NA", ["NA"], []),
        # duplicates collapse, canonical order
        (["Phase 3", "PHASE3", "Phase III", "Phase 1"], ["PHASE1", "PHASE3"], []),
        (["N/A", "Early Phase 1"], ["NA", "EARLY_PHASE1"], []),
        # unrecognised pieces are reported, cleaned, and add no phase
        ("Phase 5", [], ["Phase 5"]),
        ("Pilot", [], ["Pilot"]),
        ("Phase I study", [], ["Phase I study"]),
        (["Phase 2", "  Feasibility "], ["PHASE2"], ["Feasibility"]),
        ("2", [], ["2"]),  # a bare number is not a phase
        ("Early 1", [], ["Early 1"]),
        ("Early Phase 2", [], ["Early Phase 2"]),  # no such phase
        # nothing
        (None, [], []),
        ("", [], []),
        ([], [], []),
        (["", None, "  "], [], []),
        # odd input never raises
        (3, [], ["3"]),
        ([None, 3], [], ["3"]),
    ],
)
def test_normalize_phases(printed, phases, unrecognised):
    assert normalize_phases(printed) == (phases, unrecognised)


def test_phase_vocabulary_matches_the_data_contract():
    from typing import get_args

    from items.records import Phase

    assert PHASES == get_args(Phase)
