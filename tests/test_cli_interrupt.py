"""Ctrl-C at any moment of a command ends it quietly with 130, never a traceback."""

from __future__ import annotations

import importlib.metadata
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import wait_for


@pytest.mark.parametrize(
    "module", ["typer._click.core", "mh_webhook_cli.cli.options", "mh_webhook_cli.core.signing"]
)
def test_ctrl_c_during_the_imports_prints_no_traceback(
    isolated_env: dict[str, str], module: str
) -> None:
    """-X importtime reports each import as it ends: the interrupt lands while the CLI loads."""
    process = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "mh_webhook_cli", "sign", "-s", "x" * 24],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=isolated_env,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if line.split(b"|")[-1].strip() == module.encode():
            break
    else:
        process.kill()
        pytest.fail(f"{module} was never imported")
    process.send_signal(signal.SIGINT)
    _out, rest = process.communicate(timeout=30)
    errors = rest.decode(errors="replace")
    assert "Traceback" not in errors and "KeyboardInterrupt" not in errors, errors
    assert process.returncode == 130


def test_ctrl_c_while_a_command_reads_stdin_exits_130(isolated_env: dict[str, str]) -> None:
    """Click turns the interrupt into Abort: it is still 130, with no 'aborted' error."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mh_webhook_cli", "sign", "-s", "x" * 24],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**isolated_env, "PYTHONUNBUFFERED": "1"},
    )
    wait_for(lambda: _reads_stdin(process.pid), what="mhw sign to read stdin")
    process.send_signal(signal.SIGINT)
    _out, errors = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "Traceback" not in errors.decode() and "aborted" not in errors.decode()


def test_ctrl_c_while_mhw_exits_prints_no_traceback(isolated_env: dict[str, str]) -> None:
    """The command is done and Python shuts down (threads joined, ``atexit``), which under load
    takes long enough for a Ctrl-C to land in: it printed "Exception ignored in: <module
    'threading'...>" and a KeyboardInterrupt traceback. An ``atexit`` hook that waits on stdin
    holds mhw in its shutdown until the interrupt has landed."""
    held_at_exit = (
        "import atexit, runpy, sys\n"
        "def hold():\n"
        "    print('exiting', file=sys.stderr, flush=True)\n"
        "    sys.stdin.read()\n"
        "atexit.register(hold)\n"
        "sys.argv[1:] = ['doctor']\n"
        "runpy.run_module('mh_webhook_cli', run_name='__main__', alter_sys=True)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", held_at_exit],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=isolated_env,
    )
    assert process.stderr is not None and process.stdin is not None
    assert process.stderr.readline() == b"exiting\n"
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)
    errors = process.stderr.read().decode(errors="replace")
    process.stdin.close()
    assert "Traceback" not in errors and "KeyboardInterrupt" not in errors, errors
    assert process.returncode in (130, -signal.SIGINT)  # a shell reports 130 for both


def _reads_stdin(pid: int) -> bool:
    """The process sleeps in read(0): /proc says so (Linux)."""
    try:
        syscall = Path(f"/proc/{pid}/syscall").read_text().split()
    except OSError:
        return False
    return bool(syscall) and syscall[0] == "0" and syscall[1] == "0x0"


def test_the_mhw_script_runs_the_guarded_entry_point() -> None:
    [script] = [
        ep for ep in importlib.metadata.entry_points(group="console_scripts") if ep.name == "mhw"
    ]
    assert script.value == "mh_webhook_cli.__main__:run"
