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
