"""The public API is ``mh_webhook_cli.__all__``, and the package keeps its promises about it.

As httpx's test of the same name: a name is public because it is listed, the list is kept
sorted, and every listed name is importable. mhw's package imports its members lazily
(start-up time is measured), so this also checks what a plain ``vars()`` cannot: that the
names mypy sees (the ``TYPE_CHECKING`` block) are the names listed, that each comes from
the module the package says, and that importing the package imports none of them.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import mh_webhook_cli
from mh_webhook_cli import errors

PACKAGE_FILE = Path(mh_webhook_cli.__file__)


def isort_order(name: str) -> tuple[int, str]:
    """Constants, then classes, then the rest: the order ruff keeps ``__all__`` in."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_all_is_sorted_and_unique() -> None:
    assert mh_webhook_cli.__all__ == sorted(set(mh_webhook_cli.__all__), key=isort_order)


def test_every_listed_name_is_importable_from_its_home() -> None:
    namespace: dict[str, object] = {}
    exec("from mh_webhook_cli import *", namespace)  # noqa: S102 - the star import users write
    for name in mh_webhook_cli.__all__:
        assert namespace[name] is getattr(mh_webhook_cli, name)
    for module, names in mh_webhook_cli._HOMES.items():
        for name in names:
            assert getattr(mh_webhook_cli, name) is getattr(importlib.import_module(module), name)
    assert set(mh_webhook_cli._HOME_OF) | {"__version__"} == set(mh_webhook_cli.__all__)


def test_unlisted_names_are_not_attributes() -> None:
    assert not hasattr(mh_webhook_cli, "signature_digest")  # public in its module, not here
    assert "verify" in dir(mh_webhook_cli)


def test_type_checkers_see_the_listed_names_from_the_same_homes() -> None:
    """The ``if TYPE_CHECKING:`` imports are what mypy and editors resolve: they must name
    exactly the listed members, from where the lazy lookup takes them."""
    tree = ast.parse(PACKAGE_FILE.read_text(encoding="utf-8"))
    guarded = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    )
    seen = {
        alias.name: node.module
        for node in guarded.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert seen == mh_webhook_cli._HOME_OF


def test_every_error_the_cli_maps_is_public() -> None:
    """Whoever calls the library can catch what it raises: the whole MhwError tree."""
    tree = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, errors.MhwError)
    }
    assert tree <= set(mh_webhook_cli.__all__)
    assert {"MhwError", "UsageError", "StoreError", "ApiError", "TunnelError"} <= tree


def test_public_names_come_from_the_pure_layers_and_the_battery_only() -> None:
    """The package root re-exports core and errors, and of the edges only the handler
    battery (``run_checks``, what ``mhw check`` runs), never a server or a store."""
    for module in mh_webhook_cli._HOMES:
        assert module in {"mh_webhook_cli.errors", "mh_webhook_cli.send.battery"} or (
            module.startswith("mh_webhook_cli.core.")
        )


def test_importing_the_package_imports_none_of_its_members() -> None:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, mh_webhook_cli; "
            "print(sorted(m for m in sys.modules if m.startswith('mh_webhook_cli.')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"


def test_the_package_says_it_is_typed() -> None:
    """PEP 561: without py.typed, mypy ignores mhw's annotations in a user's project."""
    assert (PACKAGE_FILE.parent / "py.typed").is_file()
