"""Table tests for harvester.normalize.sponsors."""
import pytest

from harvester.normalize.sponsors import same_sponsor, sponsor_key


@pytest.mark.parametrize(
    "printed, key",
    [
        # seed 004 and reference/sites/medpath_page_text_list_style: "Lead Sponsor"
        ("PersonGen BioTherapeutics (Suzhou) Co., Ltd.", "persongen biotherapeutics"),
        ("PersonGen BioTherapeutics", "persongen biotherapeutics"),
        # seed 000 (ClinConnect): "Launched by SHANXI BETHUNE HOSPITAL", "About Shanxi Bethune Hospital"
        ("SHANXI BETHUNE HOSPITAL", "shanxi bethune hospital"),
        ("Shanxi Bethune Hospital", "shanxi bethune hospital"),
        # seed 003 (Veeva): sponsor line
        ("Affiliated Hospital to Academy of Military Medical Sciences",
         "affiliated hospital to academy of military medical sciences"),
        # reference/sites/veeva_page_text_NCT05270772: "(301 Hospital)" is dropped with the other parentheses
        ("Chinese PLA General Hospital (301 Hospital)", "chinese pla general hospital"),
        # seed 001 (CT.gov classic): "Institute of Hematology & Blood Diseases Hospital"
        ("Institute of Hematology & Blood Diseases Hospital", "institute of hematology and blood diseases hospital"),
        # seed 004 location: "Chilren's Hospital of Soochow University" (apostrophe dropped, typo kept)
        ("Chilren's Hospital of Soochow University", "chilrens hospital of soochow university"),
        # reference/ctgov JSON sponsors and collaborators
        ("Alliance Foundation Trials, LLC.", "alliance foundation trials"),
        ("NSABP Foundation Inc", "nsabp foundation"),
        ("PrECOG, LLC.", "precog"),
        ("Austrian Breast & Colorectal Cancer Study Group", "austrian breast and colorectal cancer study group"),
        ("ABCSG GmbH", "abcsg"),
        ("Pfizer", "pfizer"),
        # legal forms
        ("Novartis Pharma AG", "novartis pharma"),
        ("Sanofi S.A.", "sanofi"),
        ("Eli Lilly and Company", "eli lilly"),
        ("Novo Nordisk A/S", "novo nordisk"),
        ("Jiangsu Hengrui Medicine Co.,Ltd", "jiangsu hengrui medicine"),
        ("Acme Corporation Limited", "acme"),
        ("Acme Corp.", "acme"),
        ("Glaxo plc", "glaxo"),
        ("The University of Texas M.D. Anderson Cancer Center", "university of texas md anderson cancer center"),
        ("Hôpital Européen Georges-Pompidou", "hopital europeen georges pompidou"),
        # a name that is only a legal form or a parenthesis keeps something
        ("(Suzhou)", "suzhou"),
        ("Co., Ltd.", "co"),
        # nothing
        ("", ""),
        ("   ", ""),
        (None, ""),
        (12, "12"),
    ],
)
def test_sponsor_key(printed, key):
    assert sponsor_key(printed) == key


@pytest.mark.parametrize(
    "a, b, same",
    [
        # the pairs the seeds put side by side
        ("PersonGen BioTherapeutics", "PersonGen BioTherapeutics (Suzhou) Co., Ltd.", True),
        ("SHANXI BETHUNE HOSPITAL", "Shanxi Bethune Hospital", True),
        ("Institute of Hematology & Blood Diseases Hospital", "Institute of Hematology and Blood Diseases Hospital", True),
        ("Chinese PLA General Hospital (301 Hospital)", "Chinese PLA General Hospital", True),
        ("Alliance Foundation Trials, LLC.", "Alliance Foundation Trials", True),
        # small words differ
        ("Affiliated Hospital to Academy of Military Medical Sciences",
         "Affiliated Hospital of Academy of Military Medical Sciences", True),
        # punctuation / abbreviation dots
        ("Memorial Sloan Kettering Cancer Center", "Memorial Sloan-Kettering Cancer Center", True),
        ("M.D. Anderson Cancer Center", "MD Anderson Cancer Center", True),
        # fuzzy, long names, spelling variants of long words
        ("Institute of Hematology & Blood Diseases Hospital", "Institute of Hematology & Blood Disease Hospital", True),
        ("Institute of Haematology & Blood Diseases Hospital", "Institute of Hematology & Blood Diseases Hospital", True),
        # near misses that are different organisations
        ("Henan Cancer Hospital", "Hunan Cancer Hospital", False),  # reference veeva NCT03263208 sponsor vs a neighbour
        ("Henan Provincial People's Hospital", "Hunan Provincial People's Hospital", False),
        ("Shanxi Provincial People's Hospital", "Shaanxi Provincial People's Hospital", False),
        ("Shanxi Bethune Hospital", "Shanxi Cancer Hospital", False),
        ("Sun Yat-sen University", "Sun Yat-sen University Cancer Center", False),
        ("Cancer Hospital", "Henan Cancer Hospital", False),
        ("Peking University People's Hospital", "Peking University Third Hospital", False),
        ("First Affiliated Hospital of Zhejiang University", "Second Affiliated Hospital of Zhejiang University", False),
        ("Chinese PLA General Hospital", "Chinese PLA General Hospital 2", False),
        ("Pfizer", "Pfizer Japan", False),
        # nothing is not a sponsor
        ("", "", False),
        (None, "Pfizer", False),
        ("Pfizer", None, False),
    ],
)
def test_same_sponsor(a, b, same):
    assert same_sponsor(a, b) is same
    assert same_sponsor(b, a) is same
