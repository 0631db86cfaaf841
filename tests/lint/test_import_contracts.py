"""The domain_interfaces import contract (scripts/import_contracts.py) catches what it promises:
a deep import into another domain package, a cycle through interfaces, and a package folder
that exists but is left out of root_packages. Each case is a small package tree on disk."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

from scripts.import_contracts import DomainInterfacesContract


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.split(".")[0] in {"alpha", "beta", "gamma"}]:
        del sys.modules[name]


def _check(roots: list[str], packages: list[str]) -> dict[str, list]:
    graph = grimp.build_graph(*roots, cache_dir=None)
    contract = DomainInterfacesContract(
        name="domain", session_options={"root_packages": roots}, contract_options={"packages": packages}
    )
    result = contract.check(graph, verbose=False)
    assert result.kept == (not any(result.metadata.values()))
    return result.metadata


def test_interfaces_only_is_kept(tree: Path) -> None:
    _write(tree, {
        "alpha/__init__.py": "from alpha.service import serve\n",
        "alpha/service.py": "import beta\n\ndef serve() -> object:\n    return beta.helper\n",
        "beta/__init__.py": "from beta.tools import helper\n",
        "beta/tools.py": "helper = 1\n",
    })
    assert _check(["alpha", "beta"], ["alpha", "beta", "(gamma)"]) == {"unlisted": [], "deep_imports": [], "cycles": []}


def test_deep_import_and_cycle_are_broken(tree: Path) -> None:
    _write(tree, {
        "alpha/__init__.py": "",
        "alpha/service.py": "from beta.tools import helper\n",
        "beta/__init__.py": "",
        "beta/tools.py": "import alpha\nhelper = 1\n",
    })
    found = _check(["alpha", "beta"], ["alpha", "beta"])
    assert found["deep_imports"] == ["alpha.service -> beta.tools (l.1): import beta, not its module"]
    assert found["cycles"] == [["alpha", "beta", "alpha"]]


def test_optional_package_that_exists_must_be_a_root(tree: Path) -> None:
    _write(tree, {"alpha/__init__.py": "", "gamma/__init__.py": ""})
    assert _check(["alpha"], ["alpha", "(gamma)"])["unlisted"] == ["gamma"]


def test_required_package_missing_is_an_error(tree: Path) -> None:
    _write(tree, {"alpha/__init__.py": ""})
    with pytest.raises(ValueError, match="gamma"):
        _check(["alpha"], ["alpha", "gamma"])
