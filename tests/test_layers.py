"""The layer rule, checked on every import in the package (see ``mh_webhook_cli``'s docstring).

core/ and errors are pure and import nothing above them; the edges (files, config_file,
tunnel, send/, receive/, magichour/) import core, errors and lower edges only; report/
imports core, errors and the edges (for their types), never cli/; cli/ imports anything;
and no module reaches itself through its imports.

Every import counts: at the top of a module, inside a function (a lazy import is still a
dependency, only a later one), and under ``TYPE_CHECKING``. A type an edge names is a type
it depends on: an edge that hands events to a reporter defines the reporter's protocol
itself, so it never needs report/'s types, and a type-only cycle is the same tangle as a
runtime one, waiting for its first ``isinstance``. Read from the source (AST), so that a
branch the tests never run is checked too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mh_webhook_cli

PACKAGE = "mh_webhook_cli"
ROOT = Path(mh_webhook_cli.__file__).parent

EDGES_BELOW = {
    # Each edge and the edges it may import: two chains (files < config_file < tunnel and
    # send < receive < magichour), and receive may open a tunnel. event_loop only runs a loop.
    "event_loop": set(),
    "files": set(),
    "config_file": {"files"},
    "tunnel": {"files", "config_file"},
    "send": set(),
    "receive": {"send", "tunnel", "config_file", "files", "event_loop"},
    "magichour": {"send", "receive", "tunnel", "config_file", "files", "event_loop"},
}
MAY_IMPORT: dict[str, set[str]] = {
    "errors": set(),
    "core": {"errors"},
    # The public API re-exports the pure core, the errors and the handler battery (send/).
    "package": {"core", "errors", "send"},
    **{edge: {"core", "errors", *below} for edge, below in EDGES_BELOW.items()},
    "report": {"core", "errors", *EDGES_BELOW},
    "cli": {"package", "errors", "core", "report", *EDGES_BELOW},
    # The inspector's page, script and style, read as package data by receive/inspector.py.
    "web": set(),
    # The pytest plugin is an entry point like the CLI: the top of the house.
    "pytest_plugin": {"package", "errors", "core", "report", *EDGES_BELOW},
}
"""Each layer and the other layers it may import (its own modules it always may)."""
VERSION = "version"
"""``from mh_webhook_cli import __version__``: a constant kept in the package root for the
build; taking it imports nothing else, so every layer may."""


def layer_of(module: str) -> str:
    parts = module.split(".")
    if parts == [PACKAGE]:
        return "package"
    if parts[1] == "__main__":
        return "cli"
    return parts[1]


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    """A module of the package, or :data:`VERSION`."""
    line: int

    def __str__(self) -> str:
        return f"{self.importer} imports {self.imported} (line {self.line})"


def module_files() -> dict[str, Path]:
    modules = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


MODULES = module_files()


def imports_of(module: str, path: Path) -> Iterator[Import]:
    """Every import of a package module in ``path``, wherever it stands in the file."""
    yield from imports_in(module, path.read_text(encoding="utf-8"), path.name == "__init__.py")


def imports_in(module: str, source: str, is_package: bool) -> Iterator[Import]:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = module.split(".") if is_package else module.split(".")[:-1]
                here = here[: len(here) - node.level + 1]
                base = ".".join(here + ([base] if base else []))
            if base.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in MODULES:
                    yield Import(module, submodule, node.lineno)
                elif base == PACKAGE and alias.name == "__version__":
                    yield Import(module, VERSION, node.lineno)
                else:
                    yield Import(module, base, node.lineno)


IMPORTS = list(
    dict.fromkeys(found for module, path in MODULES.items() for found in imports_of(module, path))
)
"""Once per importer, module and line (``from x import a, b`` is one import of ``x``)."""


SAMPLE = """
from typing import TYPE_CHECKING

import mh_webhook_cli.errors
from mh_webhook_cli import __version__
from mh_webhook_cli.core import signing
from . import client
from ..receive.store import Store

if TYPE_CHECKING:
    from mh_webhook_cli.report.console import Line

def later():
    from mh_webhook_cli.cli.options import read_input
"""


def test_the_scan_sees_every_kind_of_import() -> None:
    """Top-level, relative, type-only and lazy imports, and the version constant."""
    found = {(each.imported, each.line) for each in imports_in(f"{PACKAGE}.send.x", SAMPLE, False)}
    assert found == {
        (f"{PACKAGE}.errors", 4),
        (VERSION, 5),
        (f"{PACKAGE}.core.signing", 6),
        (f"{PACKAGE}.send.client", 7),
        (f"{PACKAGE}.receive.store", 8),
        (f"{PACKAGE}.report.console", 11),
        (f"{PACKAGE}.cli.options", 14),
    }


def test_every_module_belongs_to_a_layer() -> None:
    unknown = sorted(module for module in MODULES if layer_of(module) not in MAY_IMPORT)
    assert not unknown, f"modules outside every layer (add them to MAY_IMPORT): {unknown}"


def test_every_import_follows_the_layer_rule() -> None:
    broken = []
    for each in IMPORTS:
        if each.imported == VERSION:
            continue
        if each.imported not in MODULES:
            broken.append(f"{each}: no such module")
            continue
        importer, imported = layer_of(each.importer), layer_of(each.imported)
        if importer != imported and imported not in MAY_IMPORT[importer]:
            broken.append(f"{each}: {importer} may not import {imported}")
    assert not broken, "imports against the layer rule:\n" + "\n".join(broken)


PRESENTATION_LIBRARIES = {"typer", "click", "rich"}
"""What only report/ and cli/ may use: an edge that prompts or prints has taken the
command's job (the reporter or a callback the command hands in does it)."""


def test_core_and_the_edges_never_use_a_terminal_library() -> None:
    found = []
    for module, path in MODULES.items():
        if layer_of(module) not in {"errors", "core", *EDGES_BELOW}:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            found += [
                f"{module} imports {name} (line {node.lineno})"
                for name in names
                if name.split(".")[0] in PRESENTATION_LIBRARIES
            ]
    assert not found, "terminal libraries below report/:\n" + "\n".join(found)


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for each in IMPORTS:
        if each.imported in MODULES and each.imported != each.importer:
            graph[each.importer].add(each.imported)
    cycles = [sorted(group) for group in strongly_connected(graph) if len(group) > 1]
    assert not cycles, f"modules that import each other, directly or around a loop: {cycles}"


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the groups of modules that reach each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            following = next(successors, None)
            if following is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    groups.append(group)
            elif following not in index:
                index[following] = low[following] = len(index)
                stack.append(following)
                on_stack.add(following)
                work.append((following, iter(sorted(graph[following]))))
            elif following in on_stack:
                low[node] = min(low[node], index[following])
    return groups


def test_the_cycle_finder_finds_a_loop_and_only_a_loop() -> None:
    loop = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert sorted(sorted(group) for group in strongly_connected(loop) if len(group) > 1) == [
        ["a", "b", "c"]
    ]
    assert all(len(group) == 1 for group in strongly_connected({"a": {"b"}, "b": set()}))
