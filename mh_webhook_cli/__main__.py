"""``python -m mh_webhook_cli`` and the ``mhw`` script: the CLI, with Ctrl-C handled from the start.

Importing the CLI (typer, click, rich, a command's modules) takes tens of milliseconds; a
Ctrl-C in that time would print a KeyboardInterrupt traceback from deep in those imports.
This module imports nothing before its ``try``, so mhw ends quietly with 130 instead, the
status a shell gives a command that SIGINT ended.
"""

import sys


def run() -> None:
    """The ``mhw`` console script (see ``[project.scripts]``)."""
    try:
        from mh_webhook_cli.cli import main

        main()
    except KeyboardInterrupt:
        # The value of errors.ExitCode.INTERRUPTED: importing it here could be interrupted too.
        sys.exit(130)


if __name__ == "__main__":
    run()
