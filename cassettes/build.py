"""Build the bundled cassettes from their sources.

    python cassettes/build.py            # every site
    python cassettes/build.py veeva      # one site

Each site has a folder `cassettes/src/<site>/` with `interactions.yaml`:

    - url: https://ctv.veeva.com/study/some-slug
      status: 200                      # default 200
      content_type: text/html; charset=utf-8
      body_file: some-slug.html        # a file in the same folder
      headers: {Last-Modified: ...}    # optional, added to the response
    - url: https://.../gone
      status: 404
      body: "Not Found"                # inline body instead of a file

and, optionally, a `generate.py` whose `generate(src_dir)` writes body files
first (the CT.gov one copies real API bodies from the shared reference folder
and assembles the records carried over from page text). The output is
`cassettes/<site>.yaml` in vcrpy's own cassette format, which
`harvester.middlewares.VcrCassetteMiddleware` replays.

Every response carries the same Date header (`REPLAY_DATE`): replayed records
get a stable `fetched_at`, so re-runs are byte-identical. Which bodies are
real and which were assembled is written in `cassettes/README.md`.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import yaml
from vcr.persisters.filesystem import FilesystemPersister
from vcr.request import Request
from vcr.serializers import yamlserializer

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
# When these cassettes were assembled; replayed pages were "fetched" then.
REPLAY_DATE = "Mon, 23 Nov 2026 09:00:00 GMT"


def _body(entry: dict, folder: Path) -> bytes:
    if "body_file" in entry:
        return (folder / entry["body_file"]).read_bytes()
    body = entry.get("body", "")
    return body.encode("utf-8") if isinstance(body, str) else body


def build_site(site: str, out_dir: Path = HERE, generate: bool = True) -> Path:
    folder = SRC / site
    gen = folder / "generate.py"
    if generate and gen.exists():
        spec = importlib.util.spec_from_file_location(f"_cassette_gen_{site}", gen)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.generate(folder)
    entries = yaml.safe_load((folder / "interactions.yaml").read_text(encoding="utf-8")) or []
    requests, responses = [], []
    for entry in entries:
        status = int(entry.get("status", 200))
        headers = {"Date": [REPLAY_DATE]}
        if entry.get("content_type"):
            headers["Content-Type"] = [entry["content_type"]]
        for name, value in (entry.get("headers") or {}).items():
            headers[name] = [str(value)]
        requests.append(Request(entry.get("method", "GET"), entry["url"], None, {}))
        responses.append({
            "status": {"code": status, "message": entry.get("message", _REASONS.get(status, ""))},
            "headers": headers,
            "body": {"string": _body(entry, folder)},
        })
    out = Path(out_dir) / f"{site}.yaml"
    FilesystemPersister.save_cassette(out, {"requests": requests, "responses": responses}, yamlserializer)
    return out


_REASONS = {200: "OK", 301: "Moved Permanently", 302: "Found", 304: "Not Modified",
            404: "Not Found", 410: "Gone", 429: "Too Many Requests", 500: "Internal Server Error",
            503: "Service Unavailable"}


def main(argv: list[str]) -> int:
    sites = argv or sorted(p.name for p in SRC.iterdir() if (p / "interactions.yaml").exists())
    for site in sites:
        print(build_site(site).relative_to(HERE.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
