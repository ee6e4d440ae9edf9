"""The layers import downwards only: items know nothing of the rest, the
pipelines nothing of the spiders, the two store backends nothing of each
other. Checked on the source (what each module imports) and, for the store,
on a fresh interpreter."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at module level or inside functions."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
    return out


def modules_under(folder: str) -> list[Path]:
    return sorted((REPO / folder).rglob("*.py"))


def test_pipelines_do_not_import_spiders():
    for path in modules_under("pipelines"):
        bad = {m for m in imported_modules(path) if m == "spiders" or m.startswith("spiders.")}
        assert not bad, f"{path.name} imports {bad}"


def test_items_import_nothing_of_the_crawler():
    for path in modules_under("items"):
        bad = {m for m in imported_modules(path)
               if m.split(".")[0] in {"spiders", "pipelines", "harvester", "scrapy"}}
        assert not bad, f"{path.name} imports {bad}"


def test_the_store_backends_do_not_import_each_other():
    assert "harvester.store" not in imported_modules(REPO / "harvester" / "store_pg.py")
    assert "harvester.store_pg" not in imported_modules(REPO / "harvester" / "store_base.py")
    assert "harvester.store" not in imported_modules(REPO / "harvester" / "store_base.py")
    code = ("import sys; import harvester.store_pg; "
            "assert 'harvester.store' not in sys.modules, 'store_pg loaded store'")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_no_record_carries_a_private_body():
    # the body travels as RecordWithBody.body, never as an attribute set on a record
    for folder in ("spiders", "pipelines", "harvester", "items"):
        for path in modules_under(folder):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            uses = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "_body"]
            assert not uses, f"{path.relative_to(REPO)}: ._body at lines {uses}"


def _code_strings(path: Path) -> list[tuple[int, str]]:
    """String constants of a module that are not docstrings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]


def test_nothing_outside_the_site_modules_names_a_site():
    import re

    from harvester.sites import sites

    names = set(sites())
    assert len(names) >= 4
    # the CT.gov candidate lookup is the one client of one source's API that
    # reconciliation uses for linking: it may name that source
    own_source = {REPO / "harvester" / "reconciliation" / "ctgov_candidates.py"}
    shared = [p for p in (*modules_under("harvester"), *modules_under("pipelines"), *modules_under("items"),
                          *(REPO / "spiders" / f for f in ("base.py", "pages.py", "sections.py")))
              if p not in own_source]
    for path in shared:
        for lineno, text in _code_strings(path):
            named = names & set(re.findall(r"[a-z][a-z0-9_]*", text))
            assert not named, f"{path.relative_to(REPO)}:{lineno} names site(s) {named} in {text!r}"
