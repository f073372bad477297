"""Typer's usage errors in mhw's words.

Typer 0.29 converts option values with pydantic, and its error passes pydantic's message
through: ``Input should be a valid integer, unable to parse string as an integer``, ``Value
error, 'vidoe' is not one of …``. Here such an error says what was wrong with the value, in
the terms of the command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from collections.abc import Mapping

_WANTED = {
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "bool_parsing": "true or false",
    "path_type": "a path",
}
"""What a value of each pydantic error type should have been."""


def usage_message(failure: typer.TyperException) -> str:
    """``failure``'s one-line message, pydantic's wording replaced by mhw's."""
    if isinstance(failure, typer.BadParameter) and failure.__cause__ is not None:
        from pydantic import ValidationError  # already loaded: typer converted with it

        if isinstance(failure.__cause__, ValidationError):
            details = failure.__cause__.errors(include_url=False)
            failure.message = "; ".join(_plain(detail) for detail in details)
    return failure.format_message()


def _plain(detail: Mapping[str, Any]) -> str:
    given = detail.get("input")
    if detail["type"] == "value_error":
        # A ValueError raised by the converter (typer's own for an unknown choice): its
        # text without pydantic's "Value error, " prefix.
        return str(detail.get("ctx", {}).get("error", detail["msg"])).rstrip(".")
    bound = detail.get("ctx", {})
    limits = {
        "less_than_equal": ("is more than", "le"),
        "less_than": ("must be less than", "lt"),
        "greater_than_equal": ("is less than", "ge"),
        "greater_than": ("must be more than", "gt"),
    }
    if detail["type"] in limits:
        words, key = limits[detail["type"]]
        return f"{given} {words} {bound.get(key)}"
    wanted = _WANTED.get(detail["type"])
    if wanted is not None:
        return f"{given!r} is not {wanted}"
    message = str(detail["msg"]).removeprefix("Input should be ")
    return f"{given!r}: should be {message}" if message != detail["msg"] else message
