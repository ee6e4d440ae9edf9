"""Run the project's own `scrapy` commands in a subprocess, as a user would,
offline from the bundled cassettes, with the store and reports in a temp dir."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASSETTES = REPO / "cassettes"


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    tmp: Path

    def report(self, spider: str) -> dict:
        return json.loads((self.tmp / "reports" / f"{spider}-latest.json").read_text())

    def stats(self, spider: str) -> dict:
        return self.report(spider)["stats"]


def scrapy(args: list[str], tmp: Path, *, offline: bool = True, timeout: float = 120,
           extra_env: dict | None = None, cassettes: Path = CASSETTES) -> Run:
    tmp.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPY_")}
    env.update(
        SCRAPY_SETTINGS_MODULE="harvester.settings",
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
        HARVEST_DB=str(tmp / "harvest.sqlite3"),
    )
    env.update(extra_env or {})
    settings = ["-s", f"HARVEST_REPORT_DIR={tmp / 'reports'}"]
    if offline:
        settings += ["-s", f"VCR_CASSETTE={cassettes}", "-s", "ROBOTSTXT_OBEY=False"]
    cmd = [sys.executable, "-m", "scrapy", *args, *settings]
    proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout)
    return Run(proc.returncode, proc.stdout, proc.stderr, tmp)
