"""What an installed harvester declares: the commands Scrapy loads and the
settings entry point scrapyd needs to run a deployed egg."""
from importlib.metadata import entry_points


def test_scrapy_commands_are_registered():
    names = {ep.name: ep.value for ep in entry_points(group="scrapy.commands")}
    assert names["extract"] == "harvester.commands.extract:Command"
    assert names["reconcile"] == "harvester.commands.reconcile:Command"
    assert names["harvest"] == "harvester.commands.harvest:Command"
    assert names["enqueue"] == "harvester.commands.enqueue:Command"
    for ep in entry_points(group="scrapy.commands"):
        if ep.value.startswith("harvester."):
            assert ep.load().__name__ == "Command"


def test_scrapyd_finds_the_settings_module():
    (settings,) = [ep for ep in entry_points(group="scrapy") if ep.name == "settings"]
    assert settings.value == "harvester.settings"
    assert settings.load().BOT_NAME == "harvester"


# A core install (`pip install -e .`) has none of the extras' packages. The
# subprocess below hides them from import, as if they were not installed.
_HIDE_EXTRAS = """
import sys
from importlib.abc import MetaPathFinder

class _NotInstalled(MetaPathFinder):
    HIDDEN = {"redis", "scrapy_redis", "psycopg", "psycopg_binary", "valkey"}
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NotInstalled())
from scrapy.cmdline import execute
sys.argv[0] = "scrapy"
execute()
"""


def _core_scrapy(args, tmp_path, extra_env=None):
    import os
    import subprocess
    import sys

    from _project import CASSETTES, REPO

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCRAPY_", "HARVEST_"))}
    env.update(SCRAPY_SETTINGS_MODULE="harvester.settings", PYTHONPATH=str(REPO),
               HARVEST_DB=str(tmp_path / "harvest.sqlite3"))
    env.update(extra_env or {})
    cmd = [sys.executable, "-c", _HIDE_EXTRAS, *args, "-s", f"HARVEST_REPORT_DIR={tmp_path / 'reports'}",
           "-s", f"VCR_CASSETTE={CASSETTES}", "-s", "ROBOTSTXT_OBEY=False"]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_core_install_crawls_and_reconciles_with_sqlite_without_the_extras(tmp_path):
    run = _core_scrapy(["list"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert set(run.stdout.split()) >= {"ctgov", "veeva", "medpath", "clinconnect"}
    run = _core_scrapy(["crawl", "ctgov", "-a", "nct=NCT02513394", "-O", "out.jsonl"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert '"nct_id": "NCT02513394"' in (tmp_path / "out.jsonl").read_text()
    run = _core_scrapy(["reconcile", "-O", "canonical.jsonl"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert '"nct_id":"NCT02513394"' in (tmp_path / "canonical.jsonl").read_text().replace(" ", "")


def test_core_install_names_the_extra_a_feature_needs(tmp_path):
    run = _core_scrapy(["enqueue", "ctgov", "NCT02513394"], tmp_path)
    assert run.returncode != 0
    assert "[redis] extra" in run.stderr and "No module named 'redis'" in run.stderr
    run = _core_scrapy(["reconcile", "-O", "c.jsonl"], tmp_path,
                       extra_env={"HARVEST_DB": "postgresql://harvester@127.0.0.1:9/none"})
    assert run.returncode != 0
    assert "[pg] extra" in run.stderr
    run = _core_scrapy(["crawl", "ctgov", "-a", "nct=NCT02513394"], tmp_path,
                       extra_env={"HARVEST_BACKEND": "redis"})
    assert run.returncode != 0
    assert "[redis] extra" in run.stderr
