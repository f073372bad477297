"""The default ports of the servers mhw runs side by side (the README's CI recipe runs
``mhw emulate`` and ``mhw listen`` together, and ``--ui`` adds the inspector)."""

from __future__ import annotations

import inspect

from mh_webhook_cli.cli.emulate import emulate
from mh_webhook_cli.cli.listener_options import ListenerOptions
from mh_webhook_cli.cli.ui import DEFAULT_UI_PORT
from mh_webhook_cli.magichour.emulator import DEFAULT_PORT as EMULATOR_PORT


def test_listen_emulate_and_the_inspector_default_to_three_different_ports() -> None:
    listen_port = ListenerOptions().port
    emulate_port = inspect.signature(emulate).parameters["port"].default
    assert emulate_port == EMULATOR_PORT  # the CLI's copy (importing the emulator costs start-up)
    assert len({listen_port, emulate_port, DEFAULT_UI_PORT}) == 3, (
        listen_port,
        emulate_port,
        DEFAULT_UI_PORT,
    )
