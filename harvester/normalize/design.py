"""Printed study-design words -> CT.gov's design enums (API v2 OpenAPI).

Sites print the design as ClinicalTrials.gov's pages do ("Single Group
Assignment", "None (Open label)", "N/A") or as the API's enum names
(MedPath: "SINGLE_GROUP"). Each normalizer returns `(enum | None, known)`:

- no value -> `(None, True)`;
- a known printed form -> `(ENUM, True)`;
- anything else -> `(None, False)`: the caller notes the printed words as a
  vocabulary it does not know (never a guess, never a crash).

`normalize_masking` also gives who is masked, from the parenthesis
("Quadruple (Participant, Care Provider, Investigator, Outcomes Assessor)").
Case, punctuation and underscores are ignored.
"""
from __future__ import annotations

import re
from typing import Any, get_args

from items.records import (Allocation, InterventionModel, Masking, ObservationalModel, PrimaryPurpose,
                           TimePerspective, WhoMasked)

from .text import clean_text

__all__ = ["ARM_GROUP_TYPES", "normalize_allocation", "normalize_arm_group_type", "normalize_intervention_model",
           "normalize_masking", "normalize_observational_model", "normalize_primary_purpose",
           "normalize_time_perspective"]

#: CT.gov's ArmGroupType (API v2); the record keeps it as a string
ARM_GROUP_TYPES = ("EXPERIMENTAL", "ACTIVE_COMPARATOR", "PLACEBO_COMPARATOR", "SHAM_COMPARATOR",
                   "NO_INTERVENTION", "OTHER")


def _key(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


def _table(vocab: Any, words: dict[str, str]) -> dict[str, str]:
    table = {_key(v): v for v in get_args(vocab)}  # the enum names themselves
    table.update({_key(k): v for k, v in words.items()})
    return table


_ALLOCATION = _table(Allocation, {"N/A": "NA", "Not Applicable": "NA", "Non-Randomized": "NON_RANDOMIZED",
                                  "Nonrandomized": "NON_RANDOMIZED"})
_MODEL = _table(InterventionModel, {
    "Single Group Assignment": "SINGLE_GROUP", "Single Group": "SINGLE_GROUP",
    "Parallel Assignment": "PARALLEL", "Crossover Assignment": "CROSSOVER",
    "Factorial Assignment": "FACTORIAL", "Sequential Assignment": "SEQUENTIAL"})
_PURPOSE = _table(PrimaryPurpose, {
    "Educational/Counseling/Training": "ECT", "Supportive Care": "SUPPORTIVE_CARE",
    "Health Services Research": "HEALTH_SERVICES_RESEARCH", "Basic Science": "BASIC_SCIENCE",
    "Device Feasibility": "DEVICE_FEASIBILITY"})
_MASKING = _table(Masking, {"None": "NONE", "Open Label": "NONE", "None (Open Label)": "NONE"})
_WHO = _table(WhoMasked, {"Care Provider": "CARE_PROVIDER", "Outcomes Assessor": "OUTCOMES_ASSESSOR"})
_OBSERVATIONAL = _table(ObservationalModel, {
    "Case-Control": "CASE_CONTROL", "Case-Only": "CASE_ONLY", "Case-Crossover": "CASE_CROSSOVER",
    "Ecologic or Community": "ECOLOGIC_OR_COMMUNITY", "Family-Based": "FAMILY_BASED",
    "Defined Population": "DEFINED_POPULATION", "Natural History": "NATURAL_HISTORY"})
_PERSPECTIVE = _table(TimePerspective, {"Cross-Sectional": "CROSS_SECTIONAL"})
_ARM_TYPE = {_key(v): v for v in ARM_GROUP_TYPES}


def _lookup(table: dict[str, str], text: Any) -> tuple[str | None, bool]:
    s = clean_text(text)
    if not s or not _key(s):
        return None, True
    value = table.get(_key(s))
    return (value, True) if value else (None, False)


def normalize_allocation(text: Any) -> tuple[str | None, bool]:
    return _lookup(_ALLOCATION, text)


def normalize_intervention_model(text: Any) -> tuple[str | None, bool]:
    return _lookup(_MODEL, text)


def normalize_primary_purpose(text: Any) -> tuple[str | None, bool]:
    return _lookup(_PURPOSE, text)


def normalize_observational_model(text: Any) -> tuple[str | None, bool]:
    return _lookup(_OBSERVATIONAL, text)


def normalize_time_perspective(text: Any) -> tuple[str | None, bool]:
    return _lookup(_PERSPECTIVE, text)


def normalize_arm_group_type(text: Any) -> tuple[str | None, bool]:
    """"Experimental group" (Veeva), "Experimental", "Placebo Comparator" ->
    the ArmGroupType; the word "group" or "arm" after it is the site's."""
    s = clean_text(text)
    if not s:
        return None, True
    return _lookup(_ARM_TYPE, re.sub(r"\s+(?:group|arm)$", "", s, flags=re.I))


def normalize_masking(text: Any) -> tuple[str | None, list[str], bool]:
    """"Double (Participant, Investigator)" -> ("DOUBLE", ["PARTICIPANT",
    "INVESTIGATOR"], True); "None (Open label)" -> ("NONE", [], True)."""
    s = clean_text(text)
    if not s or not _key(s):
        return None, [], True
    whole = _MASKING.get(_key(s))
    if whole:
        return whole, [], True
    m = re.fullmatch(r"([^()]+?)\s*\(([^()]*)\)", s)
    if not m:
        return None, [], False
    level = _MASKING.get(_key(m.group(1)))
    who = [_WHO.get(_key(w)) for w in m.group(2).split(",") if _key(w)]
    if level is None or (level != "NONE" and not all(who)):
        return None, [], False
    return level, [w for w in who if w] if level != "NONE" else [], True
