"""The bundled cassettes are what `cassettes/build.py` makes of their sources:
nobody can edit a cassette by hand and leave its source saying otherwise."""
import importlib.util

import pytest
import yaml

from tests._project import CASSETTES

spec = importlib.util.spec_from_file_location("cassette_build", CASSETTES / "build.py")
build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build)

SITES = sorted(p.name for p in (CASSETTES / "src").iterdir() if (p / "interactions.yaml").exists())


def test_every_site_of_the_registry_has_a_cassette_source():
    from harvester.sites import sites

    assert SITES == sorted(sites())
    assert len(SITES) >= 4


@pytest.mark.parametrize("site", SITES)
def test_cassette_is_rebuilt_byte_for_byte_from_its_sources(site, tmp_path):
    built = build.build_site(site, out_dir=tmp_path, generate=False)
    assert built.read_bytes() == (CASSETTES / f"{site}.yaml").read_bytes(), (
        f"cassettes/{site}.yaml is stale: run `python cassettes/build.py {site}`")


@pytest.mark.parametrize("site", SITES)
def test_every_response_carries_the_replay_date(site):
    data = yaml.safe_load((CASSETTES / f"{site}.yaml").read_text(encoding="utf-8"))
    assert data["interactions"], site
    for interaction in data["interactions"]:
        assert interaction["response"]["headers"]["Date"] == [build.REPLAY_DATE]
        assert "Set-Cookie" not in interaction["response"]["headers"]
