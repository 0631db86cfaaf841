"""import-linter contract for the domain packages (`make lint`; configured in pyproject.toml).

The built-in contract types cannot say "siblings meet only through each other's `__init__`":
`independence` forbids every import between them, `protected` needs each package to exist.
This contract checks, for the listed packages:

1. an import from one package into another names the other package itself (its `__init__`
   interface), never one of its modules (`crm.screen_pop -> handoff` is fine,
   `crm.screen_pop -> handoff.service` is not);
2. no cycle between the packages, even through their interfaces (crm -> handoff -> crm);
3. a package written `(name)` is optional: it may not exist yet, but once its folder has an
   `__init__.py` it must be one of `root_packages`, or it would escape every contract.
"""

from __future__ import annotations

from pathlib import Path

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output


class DomainInterfacesContract(Contract):
    type_name = "domain_interfaces"

    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        wanted = [_strip_optional(raw) for raw in self.packages]  # type: ignore[attr-defined]
        unlisted = [
            name for name, optional in wanted
            if name not in graph.modules and optional and Path(name, "__init__.py").is_file()
        ]
        missing = [name for name, optional in wanted if name not in graph.modules and not optional]
        if missing:
            raise ValueError(f"domain packages not in the import graph: {', '.join(missing)}")
        present = [name for name, _ in wanted if name in graph.modules]

        deep_imports: list[str] = []
        depends_on: dict[str, set[str]] = {name: set() for name in present}
        for package in present:
            for importer in sorted(graph.find_descendants(package) | {package}):
                for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                    target = imported.split(".")[0]
                    if target == package or target not in depends_on:
                        continue
                    depends_on[package].add(target)
                    if imported != target:
                        lines = ", ".join(
                            str(detail["line_number"])
                            for detail in graph.get_import_details(importer=importer, imported=imported)
                        )
                        deep_imports.append(f"{importer} -> {imported} (l.{lines}): import {target}, not its module")

        cycles = _cycles(depends_on)
        return ContractCheck(
            kept=not (unlisted or deep_imports or cycles),
            warnings=[],
            metadata={"unlisted": unlisted, "deep_imports": deep_imports, "cycles": cycles},
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        for name in check.metadata["unlisted"]:
            output.print_error(f"- {name}/ exists but is not in root_packages (pyproject.toml)", bold=False)
        for line in check.metadata["deep_imports"]:
            output.print_error(f"- {line}", bold=False)
        for cycle in check.metadata["cycles"]:
            output.print_error(f"- cycle: {' -> '.join(cycle)}", bold=False)
        output.new_line()


def _strip_optional(raw: str) -> tuple[str, bool]:
    raw = raw.strip()
    if raw.startswith("(") and raw.endswith(")"):
        return raw[1:-1].strip(), True
    return raw, False


def _cycles(depends_on: dict[str, set[str]]) -> list[list[str]]:
    """One shortest cycle through each package that has any, each cycle reported once."""
    seen: set[frozenset[str]] = set()
    cycles: list[list[str]] = []
    for start in sorted(depends_on):
        # breadth-first from start's dependencies back to start: the shortest way round
        paths = [[start, nxt] for nxt in sorted(depends_on[start])]
        visited: set[str] = set()
        while paths:
            path = paths.pop(0)
            if path[-1] == start:
                if frozenset(path) not in seen:
                    seen.add(frozenset(path))
                    cycles.append(path)
                break
            if path[-1] in visited:
                continue
            visited.add(path[-1])
            paths.extend(path + [nxt] for nxt in sorted(depends_on[path[-1]]))
    return cycles
