"""``python -m mh_webhook_cli`` and the ``mhw`` script: the CLI, with Ctrl-C handled from the start.

Importing the CLI (typer, click, rich, a command's modules) takes tens of milliseconds; a
Ctrl-C in that time would print a KeyboardInterrupt traceback from deep in those imports.
This module imports nothing before its ``try``, so mhw ends quietly with 130 instead, the
status a shell gives a command that SIGINT ended. Once the command is done, a Ctrl-C ends mhw
by the signal itself, the same 130 to a shell: Python's shutdown (joining threads, ``atexit``)
would print its KeyboardInterrupt as "Exception ignored in: <module 'threading'...>" and a
traceback, and under load that shutdown lasts long enough for a Ctrl-C to land in it.

The cyclic garbage collector is off while mhw starts; a command freezes what start-up made
and turns it back on as it starts its work (``mh_webhook_cli.cli._collecting``). Start-up
makes some 50,000 objects that live as long as the process (typer, rich, pydantic, mhw's
modules) and next to no garbage: the collector's passes over them took 7-10 ms of every
start, and its pass at exit 20-30 ms more of every run (typer imports pydantic to parse
options), measured with ``bench/startup.py``. A ``--help`` ends before any command starts.
"""

import gc
import sys


def run() -> None:
    """The ``mhw`` console script (see ``[project.scripts]``)."""
    try:
        try:
            gc.disable()
            from mh_webhook_cli.cli import main

            main()
        finally:  # a Ctrl-C before the handler is changed is still the except's below
            import signal

            signal.signal(signal.SIGINT, signal.SIG_DFL)
    except KeyboardInterrupt:
        # The value of errors.ExitCode.INTERRUPTED: importing it here could be interrupted too.
        sys.exit(130)


if __name__ == "__main__":
    run()
