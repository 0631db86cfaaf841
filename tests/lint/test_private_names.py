"""A name that starts with an underscore belongs to its module: no other module imports it.

ruff's `SLF001` (pyproject.toml) already refuses `other._private` attribute access in the
product code. What it cannot see, and this walk of the syntax trees does:

- `from kb_sync.store import _aware` anywhere in the repo, tests included (ruff's
  `PLC2701` is preview-only and lets modules of one package import each other's privates);
- `getattr(answers, "_store")` and the like in the product code: a private reached by name.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("core", "flow", "hub", "bot", "channels", "handoff", "crm", "kb_sync", "qa", "voice_bridge")
OURS = (*PRODUCT, "tests", "bench", "scripts")
BY_NAME = {"getattr", "setattr", "hasattr", "delattr"}

# Left in files another change owns when this check came in; the integrator empties this list.
KNOWN: set[str] = set()


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _imported_module(node: ast.ImportFrom, where: str) -> str:
    if not node.level:
        return node.module or ""
    package = where.removesuffix(".py").split("/")[:-1]  # a module's package; __init__'s is its folder
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _violations(source: str, where: str) -> list[str]:
    """`where`: the file's path from the repo root, with forward slashes."""
    product = where.split("/")[0] in PRODUCT
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename=where)):
        if isinstance(node, ast.ImportFrom):
            module = _imported_module(node, where)
            if module.split(".")[0] in OURS:
                found += [f"{where}:{node.lineno} imports {module}.{a.name}" for a in node.names if _private(a.name)]
        elif (
            product
            and isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in BY_NAME
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
            and not (isinstance(node.args[0], ast.Name) and node.args[0].id in {"self", "cls"})
        ):
            found.append(f'{where}:{node.lineno} {node.func.id}(..., "{node.args[1].value}")')
    return found


def _python_files() -> list[Path]:
    files = []
    for top in OURS:
        files += [p for p in (ROOT / top).rglob("*.py") if "migrations/versions" not in p.as_posix()]
    return sorted(files)


def test_no_private_name_crosses_a_module() -> None:
    found = {
        line
        for path in _python_files()
        for line in _violations(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
    }
    assert sorted(found - KNOWN) == []


def test_the_check_sees_what_it_promises() -> None:
    """The walk itself: a private import, relative or absolute, and a private reached by name."""
    source = (
        "from kb_sync.store import _aware\nfrom .store import KbStore, _helper\nfrom . import _rules\n"
        'x = getattr(answers, "_store", None)\ny = getattr(self, "_own", None)\nz = getattr(o, "__doc__")\n'
        "from jieba import _private_of_a_library\n"
    )
    assert _violations(source, "kb_sync/sample.py") == [
        "kb_sync/sample.py:1 imports kb_sync.store._aware",
        "kb_sync/sample.py:2 imports kb_sync.store._helper",
        "kb_sync/sample.py:3 imports kb_sync._rules",
        'kb_sync/sample.py:4 getattr(..., "_store")',
    ]
    in_tests = _violations(source, "tests/kb_sync/sample.py")
    assert in_tests[-1] == "tests/kb_sync/sample.py:3 imports tests.kb_sync._rules"  # getattr only in product code
