"""Shell completion as typer writes it, with its zsh script fixed, and completers of values.

zsh's compinit reads a completion file only when its first line is ``#compdef``; typer
0.29's zsh script starts with an empty line, so a copied ``_mhw`` (or the one
``--install-completion`` writes) is silently ignored. :func:`fix_zsh_script` gives both
ways of getting it the same script without that line.
"""

from __future__ import annotations


def fix_zsh_script() -> None:
    """Make typer's zsh completion script start with ``#compdef``.

    Typer keeps the script in two places: the class that prints it (``_MHW_COMPLETE=
    source_zsh``) and the table ``--install-completion`` writes from. Called before the
    command line runs, after typer registered its classes (:func:`.help_text.command_of`).
    """
    from typer import _completion_classes, _completion_shared

    script = _completion_shared.COMPLETION_SCRIPT_ZSH.lstrip("\n")
    _completion_classes.ZshComplete.source_template = script
    _completion_shared._completion_scripts["zsh"] = script


def event_types(incomplete: str) -> list[str]:
    """The event types that start with what was typed: ``mhw send vid<TAB>``."""
    from mh_webhook_cli.core.catalog import EVENT_TYPES

    return [event_type for event_type in EVENT_TYPES if event_type.startswith(incomplete)]
