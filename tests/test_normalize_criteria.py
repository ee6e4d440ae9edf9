"""Table tests for harvester.normalize.criteria.

The criteria blocks below are copied from the shared reference page texts
(data only); the expected items were written by reading those texts.
"""
import json
import logging
from pathlib import Path

import pytest

from harvester.normalize.criteria import split_criteria, split_items


# seeds/000 (ClinConnect): the "Eligibility criteria" list, verbatim
SEED_000 = "\n".join([
    '- Inclusion Criteria:',
    '- • 1. patients or their legal guardians voluntarily participate and sign an informed consent form;',
    '- • 2. male or female patients aged 14 to 70 years (inclusive);',
    '- • 3. be diagnosed as malignant haematological tumour by pathological and histological examination;',
    '- • 4. have a measurable or evaluable lesion;',
    '- 5. the patient has good function of major tissues and organs:',
    "- • (1) Liver function: ALT/AST \\<3 times upper limit of normal (ULN) and total bilirubin ≤34.2 μmol/L; (2) Renal function: creatinine \\<220 μmol/L; (3) Lung function: room oxygen saturation ≥95%; (4) Cardiac function: left ventricular ejection fraction (LVEF) ≥40%. (6) Patient's peripheral superficial venous blood flow is smooth and can meet the demand of intravenous drip; 7. patients with ECOG score ≤2 and expected survival time ≥3 months.",
    '- Exclusion Criteria:',
    '- • 1. Women who are pregnant (positive urine/blood pregnancy test) or breastfeeding;',
    '- • 2. men or women who are planning to conceive within the last 1 year;',
    '- • 3. patients who cannot guarantee effective contraception (condoms or birth control pills, etc.) within 1 year of enrolment;',
    '- • 4. patients with uncontrolled infections within 4 weeks prior to enrolment;',
    '- • 5. active viral hepatitis B/C;',
    '- • 6. patients with HIV infection;',
    '- • 7. patients with severe autoimmune diseases or immunodeficiency diseases;',
    '- • 8. patients who are allergic to large molecule biopharmaceuticals such as antibodies or cytokines;',
    '- • 9. patients who have participated in other clinical trials within 6 weeks prior to enrolment;',
    '- • 10. the patient has used hormones systematically within 4 weeks prior to enrolment (except for patients using inhaled hormones);',
    '- • 11. the patient has a psychiatric disorder',
    '- • 12. the patient has substance abuse/addiction;',
    '- • 13. other conditions that, in the judgement of the investigator, make the patient unsuitable for enrolment.',
])

# seeds/001 (CT.gov classic page text): criteria, verbatim
SEED_001 = "\n".join([
    'Inclusion Criteria:',
    "- Patients suffering from a hematological malignancy that is severely life-threatening or seriously affects the patient's quality of life and has no effective treatment available, who not meet the inclusion/exclusion criteria for other clinical trials in the process of subject recruitment, or who are unable to obtain other study drugs or participate in clinical studies/trials for some reason (regional or time restriction, etc., or the recruitment of subjects for clinical studies/trials has ended but the drug has not yet been approved for marketing in China);",
    '-',
    'Patients who are definitely diagnosed with the corresponding target-positive relapsed and refractory hematological malignancies, including but not limited to the following circumstances:',
    '- Patients who do not meet the inclusion/exclusion criteria for existing clinical trials, such as age <18 years, ECOG >1, extramedullary recurrence, persistent or repeatedly positive for minimal residual disease;',
    '- Patients who have relapsed after remission following CAR-T cell therapy, and are expected as judged by the investigator to benefit more from re-use of the same cell or sequential use of other CAR-T cells compared with the risk;',
    '- The quantity of CAR-T cells produced does not meet the release criteria of production quality inspection, but is >0.1× 106/kg CAR positive T cells, and the investigator judges that the expected benefit of cell infusion is greater than the risk;',
    '- The disease progresses rapidly after cell collection and before infusion, and the investigator judges that the expected benefit of cell infusion is greater than the risk;',
    '- Patients who have relapsed after autologous/heterogeneous hematopoietic stem cell transplantation (including those positive for minimal residual disease);',
    '- Other circumstances where the investigator judges that the expected benefit of cell infusion is greater than the risk.',
    '- Patients with appropriate bone marrow reserve: such as lymphocyte count >0.3×109/L;',
    '- Patients with proper heart, lung, liver, kidney and coagulation functions;',
    '- The selected patients or their legal representatives voluntarily sign the informed consent form.',
    'Exclusion Criteria:',
    '- Patients who are positive for any of HIV antibody, TP antibody, HBsAg and HCV antibody.',
    '- Patients with a history of epilepsy or other central nervous system diseases.',
    '- Patients with evidence of currently uncontrollable serious active infections (e.g., sepsis, bacteremia, fungemia, viremia, etc.).',
    '- Patients with other conditions making the patients unsuitable for receiving cell therapy as judged by the investigator.',
])

# seeds/002 (ClinicalTrials.Veeva, one criterion per line, no markers): verbatim
SEED_002 = "\n".join([
    'Inclusion criteria',
    'Aged 18-85 years (inclusive), gender not restricted. Subjects diagnosed according to WHO 2016 criteria with relapsed/refractory acute T-lymphoblastic leukemia/lymphoma (including early T-precursor lymphoblastic leukemia) who have failed standard treatment or lack effective treatment options, meeting any of the following criteria:a) Relapsed: Previously received at least two treatment regimens and achieved complete remission followed by confirmed disease recurrence, or achieved complete remission after stem cell transplantation followed by disease recurrence.b) Refractory: Previously received at least two treatment regimens and failed to achieve CR (for leukemia patients) or PR (for lymphoma patients) after the last treatment, or failed to achieve remission or experienced disease progression after stem cell transplantation.',
    'Diagnosed with AML according to the 2016 WHO classification and meeting the diagnostic criteria for relapsed and refractory AML in the Chinese Guidelines for Diagnosis and Treatment of Relapsed/Refractory Acute Myeloid Leukemia (2017 Edition):a) Diagnostic criteria for relapsed AML: Reappearance of leukemic cells in peripheral blood after complete remission (CR), or >5% blasts in bone marrow (excluding other causes such as bone marrow regeneration after consolidation chemotherapy), or extramedullary leukemic cell infiltration.b) Diagnostic criteria for refractory AML: Newly diagnosed cases failing to respond to standard treatment after 2 courses; Relapse within 12 months after CR following consolidation/intensification therapy; Relapse after 12 months but unresponsive to conventional chemotherapy; Two or more relapses; Persistent extramedullary leukemia.',
    'Hematolymphoid malignancies confirmed by flow cytometry in bone marrow examination and/or by pathological immunohistochemistry in tumor tissue as CD7-positive at screening, with tumor positivity rate ≥70%.',
    'Patients who have not received allogeneic hematopoietic stem cell transplantation (allo-HSCT) must have the ability to donate autologous mononuclear cells (hereinafter referred to as apheresis) or peripheral blood for CAR-T cell manufacturing. Peripheral blood smear at screening should show <30% tumor cells. For patients who have received allo-HSCT requiring autologous blood collection, peripheral blood smear at screening should also show <30% tumor cells; there is no such restriction if collecting donor blood.',
    'Patients have recovered from the toxicity of previous treatments, i.e., CTCAE toxicity grade <2 (unless the abnormality is tumor-related or judged by the investigator to be stable with minimal impact on safety or efficacy).',
    'ECOG performance status score 0-2 and life expectancy >3 months.',
    'Appropriate organ function:',
    'Alanine transaminase (ALT) and aspartate transaminase (AST) ≤3×upper limit of normal (ULN). For ALT and AST abnormalities judged by the investigator to be disease-related (e.g., liver infiltration or biliary obstruction), the limit may be extended to ≤5×ULN.',
    'Total bilirubin ≤1.5×ULN. Serum creatinine ≤1.5×ULN, or creatinine clearance ≥60 mL/min. Hemoglobin ≥60 g/L or maintained at this level after transfusion. Room air oxygen saturation ≥92%. Left ventricular ejection fraction (LVEF) ≥45%. Patients failing to meet any of the above criteria will not be enrolled as subjects.',
    'Exclusion criteria',
    'Patients with clinically symptomatic central nervous system leukemia. Positive for hepatitis B surface antigen (HBsAg); positive for hepatitis B core antibody (HBcAb) with HBV DNA titer outside the normal reference range; positive for hepatitis C virus (HCV) antibody; positive for human immunodeficiency virus (HIV) antibody; positive for cytomegalovirus (CMV) DNA; positive for syphilis.',
    'History of severe allergies [severe allergy defined as grade 2 or higher allergic reaction with any of the following clinical manifestations: airway obstruction (rhinorrhea, cough, wheezing, dyspnea), tachycardia, hypotension, arrhythmia, gastrointestinal symptoms (nausea, vomiting), incontinence, laryngeal edema, bronchospasm, cyanosis, shock, respiratory or cardiac arrest] or known hypersensitivity to any active ingredients, excipients, murine products, or xenogeneic proteins contained in this study (including lymphodepletion regimens).',
    'Severe heart disease, including but not limited to severe arrhythmia, unstable angina, massive myocardial infarction, New York Heart Association class III or IV cardiac insufficiency, refractory hypertension (defined as: blood pressure not controlled despite ≥3 antihypertensive drugs (including diuretics) at maximum tolerated doses for >1 month after lifestyle modification, or requiring ≥4 antihypertensive drugs for effective control).',
    'Unstable systemic disease as judged by the investigator: including but not limited to severe liver, kidney, or metabolic diseases requiring medical treatment.',
    'Previous organ transplantation or planned organ transplantation (except hematopoietic stem cell transplantation).',
    'Acute or chronic graft-versus-host disease (GVHD) of any grade occurring 2 weeks after discontinuation of immunosuppressive therapy.',
    'Hematopoietic stem cell transplantation within 6 months prior to screening. Active autoimmune or inflammatory neurological diseases (e.g., Guillain-Barré syndrome (GBS), amyotrophic lateral sclerosis (ALS)) and clinically significant active cerebrovascular disease (e.g., cerebral edema, posterior reversible encephalopathy syndrome (PRES)).',
    'Tumor emergencies requiring urgent treatment at screening or prior to infusion (e.g., spinal cord compression, intestinal obstruction, leukostasis, tumor lysis syndrome).',
    'Uncontrolled bacterial, fungal, viral, or other infections requiring antibiotic treatment.',
    'Major surgery (except diagnostic procedures and biopsies) within 4 weeks prior to lymphodepletion or planned major surgery during the study, or incompletely healed surgical wounds prior to enrollment.',
    'Live virus vaccination within 4 weeks prior to screening. Severe mental illness. History of alcoholism or substance abuse. Pregnant or lactating women, and female subjects planning pregnancy within 2 years after cell infusion or male subjects whose partners plan pregnancy within 2 years after their cell infusion.',
    'Patients with contraindications to any study procedures or other medical conditions that may put them at unacceptable risk according to investigator judgment and/or clinical standards.',
])

# seeds/003 (ClinicalTrials.Veeva NCT02186860): verbatim
SEED_003 = "\n".join([
    'Inclusion criteria',
    '',
    '  • Age: 18-65 years',
    '  • Patients with Cluster of Differentiation 19 (CD19) positive B cell malignancies as confirmed by flow cytometry',
    '  • Refractory or relapsed B cell-acute lymphoblastic leukemia',
    '  • No available curative treatment options (such as hematopoietic stem cell transplantation)',
    '  • Stage III-IV disease',
    '  • Creatinine < 2.5 mg/dl',
    '  • Aspartate transaminase-alanine transaminase ratio < 3x normal',
    '  • Bilirubin < 2.0 mg/dl',
    '  • Karnofsky performance status >= 60',
    '  • Expected survival time > 3 months',
    '  • Adequate venous access for apheresis',
    '  • Ability to understand and provide informed consent',
    '',
    'Exclusion criteria',
    '',
    '  • Pregnant or lactating women',
    '  • Patients requiring T cell immunosuppressive therapy',
    '  • Active central nervous system leukemia',
    '  • Any concurrent active malignancies',
    '  • Patients with a history of a seizure disorder or cardiac disorder',
    '  • Patients with human immunodeficiency virus, hepatitis B or C infection',
    '  • Uncontrolled active infection',
])

# seeds/004 (MedPath NCT04691349): verbatim
SEED_004 = "\n".join([
    'Inclusion Criteria',
    '  • Age 3-18',
    '  • Expected survival time ≥ 12weeks',
    '  • ECOG 0-2',
    '  • At least second-line or above chemotherapy failed',
    '  • Liver and kidney function, heart and lung function meet the following requirements:',
    '',
    'Creatinine is within the normal range; Left ventricular ejection fraction ≥ 45%; Baseline blood oxygen saturation>91%; Total bilirubin≤1.5×ULN; ALT and AST≤2.5×ULN',
    '',
    '  • Understand the trial and have signed the informed consent',
    'Exclusion Criteria',
    '  • Those who have graft-versus-host disease (GVHD) or need to use immunosuppressive agents',
    '  • Hepatitis B surface antigen (HBsAg) or hepatitis B core antibody (HBcAb) positive and peripheral blood HBV DNA titer test is not within the normal reference range; hepatitis C virus (HCV) antibody positive and peripheral blood HCV RNA positive; human immunodeficiency virus (HIV) Antibody positive; CMV DNA test positive; Syphilis test positive',
    '  • Severe heart disease',
    '  • Systemic diseases judged by the investigator to be unstable: including but not limited to severe liver, kidney or metabolic diseases that require medication',
    '  • Within 7 days before screening, there are active infections or uncontrollable infections that require systemic treatment (except for mild urogenital infections and upper respiratory tract infections)',
    '  • Those who have received CAR-T therapy or other genetically modified cell therapy before screening',
    "  • According to the researcher's judgment, it does not meet the situation of cell preparation",
    '  • Situations that other researchers think are not suitable for inclusion',
])

# reference/sites/veeva_page_text_NCT03263208.txt: start of the list (the page text is cut after "ECOG <")
VEEVA_NCT03263208 = "\n".join([
    'Inclusion criteria',
    '',
    '    1. 2 years to 70 years, expected survival > 3 months;',
    '    1. CD19 positive B-cell acute lymphoblastic leukemia;',
    '    1. ECOG <',
])

# reference/ctgov/study_NCT02513394_with_results.json protocolSection.eligibilityModule.eligibilityCriteria
CTGOV_NCT02513394 = "\n".join([
    'Inclusion Criteria:',
    '',
    '* Signed informed consent prior to study specific procedures.',
    '* Age ≥18 years (or per national guidelines).',
    '* Pre- and postmenopausal women or men with Stage II (Stage IIA limited to max. 1000 patients) or Stage III early invasive breast cancer',
    '* Patients with multicentric and/or multifocal and/or bilateral early invasive breast cancer are eligible if all histopathologically examined tumors meet pathologic criteria for ER+ and/or PR+ and HER2-.',
    '* Patients must have histologically confirmed ER+ and/or PR+, HER2-, early invasive breast cancer.',
    '* Patients must have undergone adequate (definitive) breast surgery for the current malignancy.',
    '',
    'FFPE tumor tissue block must be confirmed to be received at the central sample repository prior to randomization.',
    '',
    '* ECOG performance status 0-1.',
    '* Patients must be able and willing to swallow and retain oral medication.',
    '* Serum or urine pregnancy test must be negative in premenopausal women within 14 days of randomization, or in women with amenorrhea of less than 12 months at time of randomization.',
    '* Patients who received neo/adjuvant therapy must be after last dose of chemotherapy and/or biologic therapy and must have sufficient resolution of side effects.',
    '* Patients who received breast/axilla/post-mastectomy chest wall radiotherapy must be after last dose of radiotherapy and must have sufficient resolution of side effects.',
    '* Patients must have sufficient resolution of any surgical side effects (no active wound healing complications).',
    '',
    '-Patients must either be initiating or have already started adjuvant hormonal treatment. -',
    '',
    '* Patients who already received neo/adjuvant endocrine therapy are eligible as long as they are enrolled within 12 months of initial histological diagnosis and after completing no more than 6 months of adjuvant endocrine therapy.',
    '* Absolute neutrophil count ≥ 1,500/µL',
    '* Platelets ≥ 100,000/ mm3',
    '* Hemoglobin ≥ 10g/dL',
    "* Total serum bilirubin ≤ ULN; or total bilirubin ≤ 3.0 × ULN with direct bilirubin within normal range in patients with documented Gilbert's Syndrome.",
    '* Aspartate amino transferase (AST or SGOT) and alanine amino transferase (ALT or SGPT) ≤ 1.5 × institutional ULN.',
    '* Serum creatinine below the upper limit of the institutional normal range (ULN) or creatinine clearance ≥ 60 mL/min/1.73 m2 for patients with serum creatinine levels above institutional ULN.',
    '',
    'Exclusion Criteria:',
    '',
    '* Concurrent therapy with other Investigational Products.',
    '* Prior therapy with any CDK inhibitor.',
    '* Patients with Stage I or IV breast cancer are not eligible.',
    '* History of allergic reactions attributed to compounds of chemical or biologic composition similar to palbociclib.',
    '* Patients receiving any medications or substances that are potent inhibitors or inducers of',
    '* CYP3A isoenzymes within 7 days of randomization.',
    '* Uncontrolled intercurrent illness that would limit compliance with study requirements.',
    '* Pregnant women, or women of childbearing potential without a negative pregnancy test within 14 days prior to randomization.',
    '* Patients with a history of any malignancy are ineligible',
    '* Patients who previously received endocrine therapy within 5 years prior to diagnosis of the current malignancy.',
    '* Patients on antiretroviral therapy.',
    '* Patients with clinically significant history of any chronic liver disease.',
    '* Patients receiving concurrent exogenous hormone therapy (topical vaginal estrogen therapy is allowable).',
])


def test_seed_000_clinconnect_numbered_bullets_and_run_on_sub_items():
    inclusion, exclusion = split_criteria(SEED_000)
    assert inclusion == [
        "patients or their legal guardians voluntarily participate and sign an informed consent form;",
        "male or female patients aged 14 to 70 years (inclusive);",
        "be diagnosed as malignant haematological tumour by pathological and histological examination;",
        "have a measurable or evaluable lesion;",
        "the patient has good function of major tissues and organs:",
        # "(1) ... (2) ... (3) ... (4) ... (6) ...; 7. ..." printed on one line: one item each, escapes undone
        "Liver function: ALT/AST <3 times upper limit of normal (ULN) and total bilirubin ≤34.2 μmol/L;",
        "Renal function: creatinine <220 μmol/L;",
        "Lung function: room oxygen saturation ≥95%;",
        "Cardiac function: left ventricular ejection fraction (LVEF) ≥40%.",
        "Patient's peripheral superficial venous blood flow is smooth and can meet the demand of intravenous drip;",
        "patients with ECOG score ≤2 and expected survival time ≥3 months.",
    ]
    assert exclusion == [
        "Women who are pregnant (positive urine/blood pregnancy test) or breastfeeding;",
        "men or women who are planning to conceive within the last 1 year;",
        "patients who cannot guarantee effective contraception (condoms or birth control pills, etc.) "
        "within 1 year of enrolment;",
        "patients with uncontrolled infections within 4 weeks prior to enrolment;",
        "active viral hepatitis B/C;",
        "patients with HIV infection;",
        "patients with severe autoimmune diseases or immunodeficiency diseases;",
        "patients who are allergic to large molecule biopharmaceuticals such as antibodies or cytokines;",
        "patients who have participated in other clinical trials within 6 weeks prior to enrolment;",
        "the patient has used hormones systematically within 4 weeks prior to enrolment "
        "(except for patients using inhaled hormones);",
        "the patient has a psychiatric disorder",
        "the patient has substance abuse/addiction;",
        "other conditions that, in the judgement of the investigator, make the patient unsuitable for enrolment.",
    ]


def test_seed_001_classic_page_bullets_and_a_dash_on_its_own_line():
    inclusion, exclusion = split_criteria(SEED_001)
    assert len(inclusion) == 11
    # "inclusion/exclusion criteria" inside an item is not a heading
    assert inclusion[0].startswith("Patients suffering from a hematological malignancy")
    assert inclusion[0].endswith("approved for marketing in China);")
    # "-" alone on a line, its text on the next line
    assert inclusion[1] == (
        "Patients who are definitely diagnosed with the corresponding target-positive relapsed and refractory "
        "hematological malignancies, including but not limited to the following circumstances:"
    )
    # the sub-bullets (flattened by the page) stay separate items, in order
    assert inclusion[2].startswith("Patients who do not meet the inclusion/exclusion criteria for existing")
    assert inclusion[7] == (
        "Other circumstances where the investigator judges that the expected benefit of cell infusion is "
        "greater than the risk."
    )
    assert inclusion[8] == "Patients with appropriate bone marrow reserve: such as lymphocyte count >0.3×109/L;"
    assert inclusion[10] == "The selected patients or their legal representatives voluntarily sign the informed consent form."
    assert exclusion == [
        "Patients who are positive for any of HIV antibody, TP antibody, HBsAg and HCV antibody.",
        "Patients with a history of epilepsy or other central nervous system diseases.",
        # "(e.g., sepsis, ...)" is not an enumeration
        "Patients with evidence of currently uncontrollable serious active infections "
        "(e.g., sepsis, bacteremia, fungemia, viremia, etc.).",
        "Patients with other conditions making the patients unsuitable for receiving cell therapy as judged by "
        "the investigator.",
    ]


def test_seed_002_veeva_lines_without_markers_and_run_on_a_b():
    inclusion, exclusion = split_criteria(SEED_002)
    # 9 printed lines; the two run-on lines carry a) and b) sub-items -> 4 more items
    assert len(inclusion) == 13
    assert inclusion[0] == (
        "Aged 18-85 years (inclusive), gender not restricted. Subjects diagnosed according to WHO 2016 criteria "
        "with relapsed/refractory acute T-lymphoblastic leukemia/lymphoma (including early T-precursor "
        "lymphoblastic leukemia) who have failed standard treatment or lack effective treatment options, meeting "
        "any of the following criteria:"
    )
    assert inclusion[1] == (
        "Relapsed: Previously received at least two treatment regimens and achieved complete remission followed "
        "by confirmed disease recurrence, or achieved complete remission after stem cell transplantation followed "
        "by disease recurrence."
    )
    assert inclusion[2].startswith("Refractory: Previously received at least two treatment regimens and failed")
    # "(2017 Edition):a) ..." splits after the colon; "(2017 Edition)" is not a marker
    assert inclusion[3].endswith("Relapsed/Refractory Acute Myeloid Leukemia (2017 Edition):")
    assert inclusion[4].startswith("Diagnostic criteria for relapsed AML: Reappearance of leukemic cells")
    assert inclusion[5].startswith("Diagnostic criteria for refractory AML: Newly diagnosed cases")
    # "i.e.," does not split
    assert inclusion[8].startswith("Patients have recovered from the toxicity of previous treatments, i.e., CTCAE")
    assert inclusion[9] == "ECOG performance status score 0-2 and life expectancy >3 months."
    assert inclusion[10] == "Appropriate organ function:"
    assert len(exclusion) == 12
    assert exclusion[0].startswith("Patients with clinically symptomatic central nervous system leukemia.")
    # "class III or IV", "(e.g., cerebral edema, ...)" do not split
    assert exclusion[2].startswith("Severe heart disease, including but not limited to severe arrhythmia")
    assert "(e.g., Guillain-Barré syndrome (GBS), amyotrophic lateral sclerosis (ALS))" in exclusion[6]
    assert exclusion[11].startswith("Patients with contraindications to any study procedures")


def test_seed_003_veeva_bullets():
    assert split_criteria(SEED_003) == (
        [
            "Age: 18-65 years",
            "Patients with Cluster of Differentiation 19 (CD19) positive B cell malignancies as confirmed by "
            "flow cytometry",
            "Refractory or relapsed B cell-acute lymphoblastic leukemia",
            "No available curative treatment options (such as hematopoietic stem cell transplantation)",
            "Stage III-IV disease",
            "Creatinine < 2.5 mg/dl",
            "Aspartate transaminase-alanine transaminase ratio < 3x normal",
            "Bilirubin < 2.0 mg/dl",
            "Karnofsky performance status >= 60",
            "Expected survival time > 3 months",
            "Adequate venous access for apheresis",
            "Ability to understand and provide informed consent",
        ],
        [
            "Pregnant or lactating women",
            "Patients requiring T cell immunosuppressive therapy",
            "Active central nervous system leukemia",
            "Any concurrent active malignancies",
            "Patients with a history of a seizure disorder or cardiac disorder",
            "Patients with human immunodeficiency virus, hepatitis B or C infection",
            "Uncontrolled active infection",
        ],
    )


def test_seed_004_medpath_bullets_and_an_unmarked_paragraph():
    inclusion, exclusion = split_criteria(SEED_004)
    assert inclusion == [
        "Age 3-18",
        "Expected survival time ≥ 12weeks",
        "ECOG 0-2",
        "At least second-line or above chemotherapy failed",
        "Liver and kidney function, heart and lung function meet the following requirements:",
        # unmarked paragraph after a blank line: an item of its own
        "Creatinine is within the normal range; Left ventricular ejection fraction ≥ 45%; Baseline blood oxygen "
        "saturation>91%; Total bilirubin≤1.5×ULN; ALT and AST≤2.5×ULN",
        "Understand the trial and have signed the informed consent",
    ]
    assert len(exclusion) == 8
    assert exclusion[0] == "Those who have graft-versus-host disease (GVHD) or need to use immunosuppressive agents"
    assert exclusion[7] == "Situations that other researchers think are not suitable for inclusion"


def test_veeva_markdown_renumbered_list():
    # Veeva prints CT.gov's "1." markdown items all as "1." with deep indentation
    assert split_criteria(VEEVA_NCT03263208) == (
        [
            "2 years to 70 years, expected survival > 3 months;",
            "CD19 positive B-cell acute lymphoblastic leukemia;",
            "ECOG <",
        ],
        [],
    )


def test_ctgov_api_markdown():
    inclusion, exclusion = split_criteria(CTGOV_NCT02513394)
    assert len(inclusion) == 21
    assert inclusion[:3] == [
        "Signed informed consent prior to study specific procedures.",
        "Age ≥18 years (or per national guidelines).",
        "Pre- and postmenopausal women or men with Stage II (Stage IIA limited to max. 1000 patients) or "
        "Stage III early invasive breast cancer",
    ]
    # an unbulleted paragraph between bullets is an item of its own
    assert inclusion[6] == (
        "FFPE tumor tissue block must be confirmed to be received at the central sample repository prior to "
        "randomization."
    )
    # "-Patients must ... treatment. -": a dash glued to the text is a bullet; the stray trailing dash goes
    assert inclusion[13] == "Patients must either be initiating or have already started adjuvant hormonal treatment."
    assert inclusion[20].startswith("Serum creatinine below the upper limit of the institutional normal range")
    assert len(exclusion) == 13
    assert exclusion[2] == "Patients with Stage I or IV breast cancer are not eligible."
    # the source breaks one criterion over two bullets; both are kept as printed
    assert exclusion[4] == "Patients receiving any medications or substances that are potent inhibitors or inducers of"
    assert exclusion[5] == "CYP3A isoenzymes within 7 days of randomization."
    assert exclusion[12] == (
        "Patients receiving concurrent exogenous hormone therapy (topical vaginal estrogen therapy is allowable)."
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        # numbered
        ("1. first item\n2. second item", ["first item", "second item"]),
        ("1) first item\n2) second item", ["first item", "second item"]),
        ("(1) first item\n(2) second item", ["first item", "second item"]),
        ("    1. 2 years to 70 years, expected survival > 3 months;",  # reference veeva NCT03263208
         ["2 years to 70 years, expected survival > 3 months;"]),
        ("a. first item\nb. second item", ["first item", "second item"]),
        ("1.1. sub item", ["sub item"]),
        # bulleted
        ("* one\n* two", ["one", "two"]),
        ("- one\n- two", ["one", "two"]),
        ("• one\n• two", ["one", "two"]),
        ("- • 1. one\n- • 2. two", ["one", "two"]),  # seed 000
        ("  • Age 3-18", ["Age 3-18"]),  # seed 004
        ("-Patients must either be initiating treatment. -", ["Patients must either be initiating treatment."]),
        # nested: sub-items are items of their own, in order
        ("* Adequate organ function:\n\n  1. ANC \\>= 1500/mm\\^3\n  2. Platelets \\> 100,000\n* Age \\>= 18",
         ["Adequate organ function:", "ANC >= 1500/mm^3", "Platelets > 100,000", "Age >= 18"]),
        ("- a thing\n  - sub thing\n- other", ["a thing", "sub thing", "other"]),
        # a marker alone on its line takes the next line (seed 001)
        ("-\nPatients who are definitely diagnosed", ["Patients who are definitely diagnosed"]),
        # hard-wrapped continuation (deeper indent or lower-case start)
        ("-  Patients with histologically confirmed\n   adenocarcinoma of the lung\n-  Age 18 or older",
         ["Patients with histologically confirmed adenocarcinoma of the lung", "Age 18 or older"]),
        ("- Patients with\nchronic disease\n- Other", ["Patients with chronic disease", "Other"]),
        # run-on enumerations (seed 002)
        ("meeting any of the following criteria:a) Relapsed: previously treated.b) Refractory: no response.",
         ["meeting any of the following criteria:", "Relapsed: previously treated.", "Refractory: no response."]),
        ("(1) Liver function normal; (2) Renal function normal; (3) Lung function normal",
         ["Liver function normal;", "Renal function normal;", "Lung function normal"]),
        ("1. foo bar baz; 2. qux quux corge; 3. grault garply", ["foo bar baz;", "qux quux corge;", "grault garply"]),
        ("Criteria: i) first thing here ii) second thing here", ["Criteria:", "first thing here", "second thing here"]),
        # the second marker of each kind of list (a run-on list needs one)
        ("Criteria: A) first thing here B) second thing here", ["Criteria:", "first thing here", "second thing here"]),
        ("(1) Liver function normal; (3) Renal function normal",  # one number skipped
         ["Liver function normal;", "Renal function normal"]),
        ("1. foo bar baz; 3. qux quux corge", ["foo bar baz;", "qux quux corge"]),
        ("a) first thing here b) second thing here", ["first thing here", "second thing here"]),  # at the start
        # ... that must not split
        ("Patients with infections (e.g., sepsis, bacteremia, fungemia, viremia, etc.).",
         ["Patients with infections (e.g., sepsis, bacteremia, fungemia, viremia, etc.)."]),
        ("Stage III-IV disease", ["Stage III-IV disease"]),
        ("Infections (e.g., viremia) or anemia (see b) below)", ["Infections (e.g., viremia) or anemia (see b) below)"]),
        ("recovered from toxicity, i.e., CTCAE toxicity grade <2 (unless tumor-related)",
         ["recovered from toxicity, i.e., CTCAE toxicity grade <2 (unless tumor-related)"]),
        ("Patients meeting criteria (1) or (2) of the protocol are eligible",
         ["Patients meeting criteria (1) or (2) of the protocol are eligible"]),
        ("Total bilirubin ≤1.5×ULN. Serum creatinine ≤1.5×ULN", ["Total bilirubin ≤1.5×ULN. Serum creatinine ≤1.5×ULN"]),
        ("New York Heart Association class III or IV (a) insufficiency", ["New York Heart Association class III or IV (a) insufficiency"]),
        # Veeva: one criterion per line, no markers
        ("Appropriate organ function:\nTotal bilirubin ≤1.5×ULN.", ["Appropriate organ function:", "Total bilirubin ≤1.5×ULN."]),
        # lines already split by a parser
        (["  • Age: 18-65 years", "  • Stage III-IV disease"], ["Age: 18-65 years", "Stage III-IV disease"]),
        # empty items dropped
        ("-\n\n* \n1.\n", []),
        ("", []),
        (None, []),
        ([], []),
        ([None, "", "- ok"], ["ok"]),
        (42, ["42"]),
    ],
)
def test_split_items(text, expected):
    assert split_items(text) == expected


@pytest.mark.parametrize(
    "text, inclusion, exclusion",
    [
        # headings: any case, with or without colon, bullets or emphasis around them
        ("Inclusion Criteria:\n- a\nExclusion Criteria:\n- b", ["a"], ["b"]),
        ("INCLUSION CRITERIA\n- a\nEXCLUSION CRITERIA\n- b", ["a"], ["b"]),
        ("inclusion criteria\na\nexclusion criteria\nb", ["a"], ["b"]),
        ("- Inclusion Criteria:\n- a\n- Exclusion Criteria:\n- b", ["a"], ["b"]),  # seed 000
        ("**Inclusion Criteria:**\n\n1. a\n\n**Exclusion Criteria:**\n\n1. b", ["a"], ["b"]),
        ("Key Inclusion Criteria:\n- a\nKey Exclusion Criteria:\n- b", ["a"], ["b"]),
        ("Inclusion Criteria: Age 18-65\nExclusion Criteria: pregnancy", ["Age 18-65"], ["pregnancy"]),
        ("Inclusion:\n- a\nExclusion:\n- b", ["a"], ["b"]),
        # repeated headings (per cohort) append
        ("Inclusion Criteria (Part A):\n- a\nExclusion Criteria (Part A):\n- b\n"
         "Inclusion criteria for Part B\n- c\nExclusion criteria for Part B:\n- d", ["a", "c"], ["b", "d"]),
        # one-line block
        ("Inclusion Criteria: Age 18-65; signed consent. Exclusion Criteria: pregnancy",
         ["Age 18-65; signed consent."], ["pregnancy"]),
        # no heading: inclusion
        ("- a\n- b", ["a", "b"], []),
        # only exclusion
        ("Exclusion Criteria:\n- b", [], ["b"]),
        # mentions of the words inside items are not headings
        ("Inclusion Criteria:\n- not meeting the inclusion/exclusion criteria for other trials\n"
         "- Inclusion criteria of other studies apply", 
         ["not meeting the inclusion/exclusion criteria for other trials", "Inclusion criteria of other studies apply"], []),
        ("", [], []),
        (None, [], []),
        ("   \n", [], []),
        (17, ["17"], []),
    ],
)
def test_split_criteria(text, inclusion, exclusion):
    assert split_criteria(text) == (inclusion, exclusion)


@pytest.mark.parametrize(
    "text",
    ["(1) ab (2) cd " * 1000, "a) xxxx b) yyyy " * 1000, ". 1. " * 3000, "(" * 5000 + ")" * 5000,
     "- a\n" * 5000, ("  " * 50 + "- a\n") * 500],
)
def test_pathological_text_is_split_in_bounded_time(text):
    import time

    start = time.perf_counter()
    split_criteria(text)
    split_items(text)
    assert time.perf_counter() - start < 2.0


def test_a_heading_read_before_reads_the_same_and_shares_nothing():
    # Heading lines are remembered across records: a second record with the
    # same headings is cut the same way, and its lists are its own.
    text = "Inclusion Criteria:\n\n* Age 18 or over\n\nExclusion Criteria:\n\n* Pregnancy"
    first = split_criteria(text)
    assert first == (["Age 18 or over"], ["Pregnancy"])
    first[0].append("changed by the caller")
    assert split_criteria(text) == (["Age 18 or over"], ["Pregnancy"])
    assert split_criteria("Key Exclusion Criteria:\n* Pregnancy\nInclusion Criteria:\n* Adults") == (
        ["Adults"], ["Pregnancy"])


@pytest.mark.parametrize(
    "line, item",
    [
        ("* Age 18", "Age 18"),  # CT.gov's bullet, read at once
        ("*  Age 18", "Age 18"),  # more than one space: the bullet pattern
        ("* - Age 18", "Age 18"),  # a bullet after the bullet
        ("* 1. Age 18", "Age 18"),  # a number after the bullet
        ("*\tAge 18", "Age 18"),
        ("a) Age 18", "Age 18"),  # a letter marker
        ("iv. Age 18", "Age 18"),  # a roman one
        ("Age 18", "Age 18"),  # no marker: nothing taken off
        ("(2) Age 18", "Age 18"),
    ],
)
def test_markers_taken_off_an_item(line, item):
    assert split_items(line) == [item]


def test_headings_found_in_non_ascii_text_in_any_case():
    # Heading lines are looked for in the text lowered once: the line found
    # must be the line cut, past non-ASCII text (several bytes a character
    # in UTF-8), Windows line breaks, upper-case headings and a criterion
    # that only mentions the exclusion criteria.
    text = ("Inclusion Criteria:\r\n\r\n* Age ≥18 years; ECOG ≤2\r\n* Creatinine clearance ≥60 mL/min "
            "(Cockcroft–Gault)\r\n* Not eligible under the exclusion criteria of study 102\r\n"
            "EXCLUSION CRITERIA:\r\n* Known hypersensitivity to β-lactams\r\n* Pregnancy")
    assert split_criteria(text) == (
        ["Age ≥18 years; ECOG ≤2", "Creatinine clearance ≥60 mL/min (Cockcroft–Gault)",
         "Not eligible under the exclusion criteria of study 102"],
        ["Known hypersensitivity to β-lactams", "Pregnancy"],
    )


@pytest.mark.parametrize(
    "line, item",
    [
        ("* Âge ≥ 18 ans", "Âge ≥ 18 ans"),  # clean non-ASCII text: kept as it is
        ("* e\u0301clair", "\u00e9clair"),  # a decomposed accent: composed (NFC)
        ("1. Age  18\u00a0or over", "Age 18 or over"),  # a double space, a no-break space
        ("(a) Age\u200b 18", "Age 18"),  # a zero-width space
        ("* Age\t18", "Age 18"),
    ],
)
def test_items_are_cleaned_text(line, item):
    assert split_items(line) == [item]


# A real block (NCT00841061 as stored) with its headings typed on a Turkish
# keyboard, where a capital i is "İ" (sponsors' sites in Turkey print
# "İnclusion Criteria:" and "EXCLUSİON CRİTERİA:"); only those letters differ.
REAL_BLOCK = json.loads((Path(__file__).parent / "data" / "ctgov_real" / "NCT00841061.json").read_text(
    encoding="utf-8"))["protocolSection"]["eligibilityModule"]["eligibilityCriteria"]
REAL_INCLUSION = ["exclusively breastfed", "birth weight between 2500 and 4200g", "gestational age >36 weeks"]
REAL_EXCLUSION = ["supplementing formula", "no iron drops"]


@pytest.mark.parametrize(
    "inclusion_heading, exclusion_heading",
    [
        ("İnclusion Criteria:", "Exclusion Criteria:"),
        ("Inclusion Criteria:", "EXCLUSİON CRİTERİA:"),
        ("İnclusion Criteria:", "EXCLUSİON CRİTERİA:"),
        ("İNCLUSİON CRİTERİA:", "EXCLUSİON CRİTERİA"),  # bare, no colon
        ("ınclusıon crıterıa:", "exclusıon crıterıa:"),  # "I" lowered the Turkish way
    ],
)
def test_headings_typed_with_a_turkish_i(inclusion_heading, exclusion_heading):
    assert REAL_BLOCK.startswith("Inclusion Criteria:\n") and REAL_BLOCK.count("\nExclusion Criteria:\n") == 1
    text = REAL_BLOCK.replace("Inclusion Criteria:", inclusion_heading).replace(
        "Exclusion Criteria:", exclusion_heading)
    assert split_criteria(text) == (REAL_INCLUSION, REAL_EXCLUSION)
    # as the block's only heading, in a longer text with other non-ASCII letters
    rest = text[text.index(exclusion_heading):]
    assert split_criteria("* Âge ≥ 18 ans, İzmir\n" + rest) == (["Âge ≥ 18 ans, İzmir"], REAL_EXCLUSION)


def test_a_one_line_block_with_a_turkish_exclusion_heading():
    # NCT01892319 prints its whole block on one line, its list's "- " bullets
    # run on after each heading; only the headings' letters differ here.
    block = json.loads((Path(__file__).parent / "data" / "ctgov_real" / "NCT01892319.json").read_text(
        encoding="utf-8"))["protocolSection"]["eligibilityModule"]["eligibilityCriteria"]
    assert "\n" not in block and block.count("Exclusion Criteria:") == 1
    text = block.replace("Inclusion Criteria:", "İnclusion Criteria:").replace(
        "Exclusion Criteria:", "EXCLUSİON CRİTERİA:")
    assert split_criteria(text) == NCT01892319_CRITERIA


# The five inclusion bullets and the one exclusion bullet of NCT01892319's
# eligibilityCriteria, as its text prints them after each " - ".
NCT01892319_CRITERIA = (
    ["Informed consent obtained before any data collection",
     "Woman with a positive pregnancy test",
     "Diabetes mellitus type 1 or 2, diagnosed prior to conception",
     "Currently treated with Levemir® or other injectable antidiabetic treatment(s)",
     "Unchanged basal insulin or other injectable antidiabetic treatment product (for those not treated with "
     "basal insulin) 4 weeks prior to and following conception"],
    ["Women who have been pregnant for more than 16 weeks at baseline visit will be excluded from the study"],
)


def test_a_bulleted_list_run_onto_its_heading_line_is_split_at_its_bullets():
    block = json.loads((Path(__file__).parent / "data" / "ctgov_real" / "NCT01892319.json").read_text(
        encoding="utf-8"))["protocolSection"]["eligibilityModule"]["eligibilityCriteria"]
    assert split_criteria(block) == NCT01892319_CRITERIA
    # a range, a number after the dash, or a piece of one word is not a bullet
    assert split_criteria("Inclusion Criteria: - Age 18 - 65 years - Signed consent form "
                          "Exclusion Criteria: - Stage II - IV disease - Prior anti-PD-1 - CTLA-4 - HIV") == (
        ["Age 18 - 65 years", "Signed consent form"],
        ["Stage II - IV disease", "Prior anti-PD-1 - CTLA-4 - HIV"])
    # without a bullet opening the heading's line, a dash inside it is a dash
    assert split_criteria("Inclusion Criteria: Adults 18 - Older adults welcome") == (
        ["Adults 18 - Older adults welcome"], [])
    # bullets on lines of their own are read as before
    assert split_criteria("Inclusion Criteria:\n- Age 18 - Adult\n- Signed consent") == (
        ["Age 18 - Adult", "Signed consent"], [])


def test_a_turkish_heading_through_the_ctgov_page_object():
    from spiders.ctgov import parse_study

    study = json.loads((Path(__file__).parent / "data" / "ctgov_real" / "NCT00841061.json").read_text(
        encoding="utf-8"))
    module = study["protocolSection"]["eligibilityModule"]
    module["eligibilityCriteria"] = module["eligibilityCriteria"].replace(
        "Inclusion Criteria:", "İnclusion Criteria:").replace("Exclusion Criteria:", "EXCLUSİON CRİTERİA:")
    record = parse_study(study, fetched="2026-11-23T09:00:00Z")
    assert (record.eligibility.inclusion, record.eligibility.exclusion) == (REAL_INCLUSION, REAL_EXCLUSION)
    assert record.notes == []


def test_a_block_that_cannot_be_split_is_kept_whole_and_warned_about(monkeypatch, caplog):
    import harvester.normalize.criteria as criteria

    def broken(*args):  # whatever goes wrong inside the splitting
        raise KeyError("a reason")

    monkeypatch.setattr(criteria, "_split_criteria", broken)
    monkeypatch.setattr(criteria, "_items", broken)
    with caplog.at_level(logging.WARNING, logger="harvester.normalize.criteria"):
        assert split_criteria("Inclusion Criteria:\n\n* Age  18\n\nExclusion Criteria:\n\n* Pregnancy") == (
            ["Inclusion Criteria: * Age 18 Exclusion Criteria: * Pregnancy"], [])
        assert split_items("* Age 18\n* Pregnancy") == ["* Age 18 * Pregnancy"]
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "criteria block not split, kept whole as one inclusion item (KeyError: 'a reason')"),
        (logging.WARNING, "criteria text not split, kept whole as one item (KeyError: 'a reason')"),
    ]


def test_a_split_block_warns_of_nothing(caplog):
    with caplog.at_level(logging.DEBUG, logger="harvester.normalize.criteria"):
        assert split_criteria(REAL_BLOCK) == (REAL_INCLUSION, REAL_EXCLUSION)
        assert split_items("1. (x) 2)") == ["(x) 2)"]
    assert caplog.records == []
