"""split_place: printed places as they appear in the page texts."""
import pytest

from harvester.normalize.places import place_fields, split_place


@pytest.mark.parametrize("printed, expected", [
    ("Suzhou, Jiangsu, China", ("Suzhou", "Jiangsu", "China")),   # seed 004 (MedPath)
    ("Taiyuan, Shanxi, China", ("Taiyuan", "Shanxi", "China")),   # seed 000 (ClinConnect)
    ("Tianjin, China", ("Tianjin", None, "China")),
    ("China", (None, None, "China")),
    ("  Suzhou ,  Jiangsu,China ", ("Suzhou", "Jiangsu", "China")),
    ("", (None, None, None)),
    (None, (None, None, None)),
])
def test_split_place(printed, expected):
    got = split_place(printed)
    assert (got["city"], got["state"], got["country"]) == expected


@pytest.mark.parametrize("printed, expected", [
    ("Suzhou, Jiangsu, China", ("China", "CN")),   # seed 004 (MedPath)
    ("Taiyuan, Shanxi, China", ("China", "CN")),   # seed 000 (ClinConnect)
    ("Boston, Massachusetts, United States", ("United States", "US")),
    ("Taiyuan, Shanxi", ("Shanxi", None)),         # no country printed: the last part is no country
    ("", (None, None)),
])
def test_place_fields_give_the_iso_code_beside_the_printed_country(printed, expected):
    got = place_fields(printed)
    assert (got["country"], got["country_code"]) == expected
