"""split_place: printed places as they appear in the page texts."""
import pytest

from harvester.normalize.places import split_place


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
