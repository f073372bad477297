"""``python -m mh_webhook_cli`` and the ``mhw`` script: the CLI, with Ctrl-C handled from the start.

Importing the CLI (typer, click, rich, a command's modules) takes tens of milliseconds; a
Ctrl-C in that time would print a KeyboardInterrupt traceback from deep in those imports.
This module imports nothing before its ``try``, so mhw ends quietly with 130 instead, the
status a shell gives a command that SIGINT ended.

The cyclic garbage collector is off while mhw starts, and each command turns it on as it
starts its work (``mh_webhook_cli.cli._collecting``): starting, mhw makes hundreds of
thousands of objects (typer, rich, pydantic, its own modules), nearly none of them garbage,
and the collector's passes over them took 7-9 ms of every command's start, 6% of it
(``bench/startup.py``; a ``--help`` ends before any command starts).
"""

import gc
import sys


def run() -> None:
    """The ``mhw`` console script (see ``[project.scripts]``)."""
    try:
        gc.disable()
        from mh_webhook_cli.cli import main

        main()
    except KeyboardInterrupt:
        # The value of errors.ExitCode.INTERRUPTED: importing it here could be interrupted too.
        sys.exit(130)


if __name__ == "__main__":
    run()
