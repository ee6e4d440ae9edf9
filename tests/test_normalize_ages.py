"""Table tests for harvester.normalize.ages."""
import pytest

from harvester.normalize.ages import AgeRange, ages_from_criteria, parse_age, parse_age_range

DAY = 1 / 365.25


@pytest.mark.parametrize(
    "printed, years",
    [
        # reference/ctgov/study_NCT02513394_with_results.json eligibilityModule.minimumAge
        ("18 Years", 18.0),
        # CT.gov units (OpenAPI minimumAge pattern: Year(s)|Month(s)|Week(s)|Day(s)|Hour(s)|Minute(s))
        ("1 Year", 1.0),
        ("6 Months", 0.5),
        ("1 Month", 1 / 12),
        ("2 Weeks", 2 / 52),
        ("10 Days", 10 * DAY),
        ("12 Hours", 12 * DAY / 24),
        ("30 Minutes", 30 * DAY / 24 / 60),
        ("65 years", 65.0),
        ("18 years old", 18.0),
        ("18", 18.0),  # a bare number is years
        ("  17 Years ", 17.0),
        (18, 18.0),
        (0.5, 0.5),
        # no age
        ("N/A", None),
        ("", None),
        (None, None),
        ("Child", None),
        ("eighteen years", None),
        ("18 parsecs", None),
        ("200 Years", None),  # not a human age
        ("18 to 65 years", None),  # a range, not one age: parse_age_range
        (True, None),
        ([18], None),
    ],
)
def test_parse_age(printed, years):
    got = parse_age(printed)
    if years is None:
        assert got is None
    else:
        assert got == pytest.approx(years)


@pytest.mark.parametrize(
    "printed, lo, hi",
    [
        # seed 003 (Veeva NCT02186860) "Ages"
        ("18 to 65 years old", 18, 65),
        # reference/sites/veeva_page_text_NCT03263208 "Ages"
        ("2 to 70 years old", 2, 70),
        # reference/sites/veeva_page_text_NCT05270772 "Ages"
        ("Under 25 years old", None, 25),
        # reference/sites/veeva_page_text_NCT05270772 "About": "... B-ALL under the age of 25."
        ("under the age of 25", None, 25),
        # seed 001 (CT.gov classic) "Ages Eligible for Study: | Child, Adult, Older Adult |": groups, no numbers
        ("Child, Adult, Older Adult", None, None),
        # reference/ctgov JSON stdAges
        ("ADULT, OLDER_ADULT", None, None),
        # seed 004 (MedPath) inclusion criterion
        ("Age 3-18", 3, 18),
        # seed 003 inclusion criterion
        ("Age: 18-65 years", 18, 65),
        # seed 000 (ClinConnect) criterion 2
        ("aged 14 to 70 years (inclusive)", 14, 70),
        # seed 002 (Veeva) first inclusion criterion
        ("Aged 18-85 years (inclusive)", 18, 85),
        # reference/sites/veeva_page_text_NCT03263208 criterion 1
        ("2 years to 70 years", 2, 70),
        # reference/ctgov JSON eligibilityCriteria
        ("Age ≥18 years (or per national guidelines)", 18, None),
        # other printed forms
        ("3 to 18 years old", 3, 18),
        ("≥ 18", 18, None),
        (">= 18 years", 18, None),
        ("> 18", 18, None),  # bounds are kept as printed
        ("18+", 18, None),
        ("18+ years old", 18, None),
        ("18 years and older", 18, None),
        ("18 Years and older   (Adult, Older Adult)", 18, None),  # CT.gov classic
        ("18 years of age or older", 18, None),
        ("Over 18 years of age", 18, None),
        ("at least 18 years", 18, None),
        ("up to 65 years", None, 65),
        ("up to 17 Years   (Child)", None, 17),  # CT.gov classic
        ("< 65", None, 65),
        ("65 years and younger", None, 65),
        ("6 Months to 17 Years", 0.5, 17),
        ("18 Years to 65 Years   (Adult, Older Adult)", 18, 65),  # CT.gov classic
        ("between 18 and 75 years", 18, 75),
        ("≥18 and ≤75 years", 18, 75),
        ("18 - 65", 18, 65),
        ("18–65 years", 18, 65),  # en dash
        # no range
        ("N/A", None, None),
        ("", None, None),
        (None, None, None),
        ("Adults", None, None),
        ("65-18", None, None),  # min above max: not a range
        ("200 years and older", None, None),
        ("LVEF ≥40%", None, None),  # a percentage is not an age
        ("2016", None, None),
        (42, None, None),
        ([1, 2], None, None),
    ],
)
def test_parse_age_range(printed, lo, hi):
    got = parse_age_range(printed)
    assert isinstance(got, AgeRange)
    assert got.min_years == (None if lo is None else pytest.approx(lo))
    assert got.max_years == (None if hi is None else pytest.approx(hi))


# Inclusion lists as the pages print them (markers removed).
SEED_000 = [  # ClinConnect, inclusion criteria 1-7
    "patients or their legal guardians voluntarily participate and sign an informed consent form;",
    "male or female patients aged 14 to 70 years (inclusive);",
    "be diagnosed as malignant haematological tumour by pathological and histological examination;",
    "have a measurable or evaluable lesion;",
    "the patient has good function of major tissues and organs:",
    "Cardiac function: left ventricular ejection fraction (LVEF) ≥40%.",
    "patients with ECOG score ≤2 and expected survival time ≥3 months.",
]
SEED_001 = [  # CT.gov classic expanded access: "age <18 years" describes *other* trials' criteria
    "Patients who are definitely diagnosed with the corresponding target-positive relapsed and refractory "
    "hematological malignancies, including but not limited to the following circumstances:",
    "Patients who do not meet the inclusion/exclusion criteria for existing clinical trials, such as age <18 years, "
    "ECOG >1, extramedullary recurrence, persistent or repeatedly positive for minimal residual disease;",
    "The quantity of CAR-T cells produced does not meet the release criteria of production quality inspection, "
    "but is >0.1× 106/kg CAR positive T cells, and the investigator judges that the expected benefit of cell "
    "infusion is greater than the risk;",
    "Patients with appropriate bone marrow reserve: such as lymphocyte count >0.3×109/L;",
]
SEED_002 = [  # Veeva NCT: first item is a run-on paragraph
    "Aged 18-85 years (inclusive), gender not restricted. Subjects diagnosed according to WHO 2016 criteria with "
    "relapsed/refractory acute T-lymphoblastic leukemia/lymphoma (including early T-precursor lymphoblastic "
    "leukemia) who have failed standard treatment or lack effective treatment options, meeting any of the "
    "following criteria:",
    "ECOG performance status score 0-2 and life expectancy >3 months.",
]
SEED_003 = ["Age: 18-65 years", "Stage III-IV disease", "Creatinine < 2.5 mg/dl", "Karnofsky performance status >= 60",
            "Expected survival time > 3 months"]
SEED_004 = ["Age 3-18", "Expected survival time ≥ 12weeks", "ECOG 0-2",
            "Creatinine is within the normal range; Left ventricular ejection fraction ≥ 45%; Baseline blood oxygen "
            "saturation>91%; Total bilirubin≤1.5×ULN; ALT and AST≤2.5×ULN"]
VEEVA_NCT03263208 = ["2 years to 70 years, expected survival > 3 months;", "CD19 positive B-cell acute lymphoblastic leukemia;"]
VEEVA_NCT05270772 = [
    "Patients with relapse/refractory B-ALL.",
    "Tumor cells from bone marrow or peripheral blood are measured CD19+ with 3 months before enrollment.",
    "Karnofsky Score ≥ 70 or Lansky Score ≥ 50.",
    "Patients who have a life expectancy of at least 12 weeks.",
]
CTGOV_NCT02513394 = [
    "Signed informed consent prior to study specific procedures.",
    "Age ≥18 years (or per national guidelines).",
    "ECOG performance status 0-1.",
]
CTGOV_UNRELATED = [  # same study, items with numbers that are not ages
    "Serum or urine pregnancy test must be negative in premenopausal women within 14 days of randomization, or in "
    "women with amenorrhea of less than 12 months at time of randomization.",
    "Patients who already received neo/adjuvant endocrine therapy are eligible as long as they are enrolled within "
    "12 months of initial histological diagnosis and after completing no more than 6 months of adjuvant endocrine "
    "therapy.",
    "Platelets ≥ 100,000/ mm3",
    "Absolute neutrophil count ≥ 1,500/µL",
]


@pytest.mark.parametrize(
    "items, lo, hi, text",
    [
        (SEED_000, 14, 70, "aged 14 to 70 years (inclusive)"),
        (SEED_002, 18, 85, "Aged 18-85 years (inclusive)"),
        (SEED_003, 18, 65, "Age: 18-65 years"),
        (SEED_004, 3, 18, "Age 3-18"),
        (VEEVA_NCT03263208, 2, 70, "2 years to 70 years"),
        (["1. 2 years to 70 years, expected survival > 3 months;"], 2, 70, "2 years to 70 years"),  # marker kept
        (CTGOV_NCT02513394, 18, None, "Age ≥18 years"),
        # the first age criterion wins, wherever it is in the list
        (CTGOV_UNRELATED + ["Age 3-18"], 3, 18, "Age 3-18"),
        # other phrasings
        (["Patients aged ≥ 18 years and ≤ 75 years"], 18, 75, "aged ≥ 18 years and ≤ 75 years"),
        (["Participants must be at least 18 years of age"], 18, None, "at least 18 years of age"),
        (["Male or female, 18 years or older"], 18, None, "18 years or older"),
        (["Signed consent; age 18-75 years"], 18, 75, "age 18-75 years"),
        (["Children aged 6 months to 17 years"], 0.5, 17, "aged 6 months to 17 years"),
        ("Age 3-18", 3, 18, "Age 3-18"),  # one string is one item
        ([None, 5, "Age 3-18"], 3, 18, "Age 3-18"),
    ],
)
def test_ages_from_criteria(items, lo, hi, text):
    got = ages_from_criteria(items)
    assert got is not None
    rng, found = got
    assert rng.min_years == (None if lo is None else pytest.approx(lo))
    assert rng.max_years == (None if hi is None else pytest.approx(hi))
    assert found == text
    assert any(isinstance(i, str) and found in i for i in ([items] if isinstance(items, str) else items))


@pytest.mark.parametrize(
    "items",
    [
        SEED_001,  # "such as age <18 years": not this study's age limit
        VEEVA_NCT05270772,  # Karnofsky/Lansky scores, "at least 12 weeks"
        CTGOV_UNRELATED,  # "less than 12 months", "no more than 6 months"
        ["ECOG 0-2"],
        ["survival time ≥3 months"],
        ["within 4 weeks prior to enrolment"],
        ["LVEF ≥40%"],
        ["Left ventricular ejection fraction (LVEF) ≥45%."],
        ["Stage III-IV disease"],
        ["Expected survival time ≥ 12weeks"],
        ["Within 7 days before screening, there are active infections"],
        ["female subjects planning pregnancy within 2 years after cell infusion"],
        ["Women of childbearing age must use contraception for 12 months"],
        ["Gestational age ≥ 32 weeks"],
        ["Disease onset at age 40 or older is excluded"],
        ["Symptoms for 2 years or more"],
        ["Previous treatment within 5 years prior to diagnosis"],
        [],
        None,
        [""],
        42,
    ],
)
def test_ages_from_criteria_ignores_numbers_that_are_not_age_limits(items):
    assert ages_from_criteria(items) is None


@pytest.mark.parametrize(
    "text",
    ["1 to " * 3000, "18-" * 5000, "≥18 and " * 2000, "aged " * 4000 + "18", "1 " * 10000],
)
def test_pathological_text_is_read_in_bounded_time(text):
    import time

    start = time.perf_counter()
    parse_age_range(text)
    ages_from_criteria([text, text])
    assert time.perf_counter() - start < 1.0
