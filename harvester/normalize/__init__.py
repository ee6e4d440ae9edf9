"""Normalizers: pure functions that turn a site's printed value into the data
contract's vocabulary. They never raise on odd input; they return None (or
the vocabulary's unknown value) and say so.

Modules:
    text        clean_text, clean_prose, unescape_ctgov
    status      normalize_status, STATUSES
    phases      normalize_phases, PHASES
    ages        parse_age, parse_age_range, ages_from_criteria, AgeRange
    enrollment  parse_enrollment, find_planned_enrollment
    sex         normalize_sex
    dates       normalize_date
    criteria    split_criteria, split_items
    sponsors    sponsor_key, same_sponsor
    ids         normalize_nct, classify_identifier, is_placeholder
    study_type  normalize_study_type
    interventions  parse_intervention, normalize_intervention_type (maintained
                separately; listed here for completeness)
"""
