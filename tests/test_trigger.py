"""``mhw trigger`` end to end against ``mhw emulate``: real sockets, real processes, offline."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ports import reserved_port

from conftest import SECRET, Mhw, wait_for
from mh_webhook_cli.core.request import Received
from mh_webhook_cli.errors import ExitCode
from mh_webhook_cli.magichour.trigger import Inbox, poll_store
from mh_webhook_cli.receive.store import Store

API_KEY = "mhk_test_0123456789abcdef0123456789"
FAST = ["--queue-seconds", "0.05", "--render-seconds", "0.3"]


@dataclass
class Background:
    process: subprocess.Popen[bytes]
    ready: dict[str, Any]
    stdout_path: Path

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")


Start = Callable[..., Background]


@pytest.fixture
def start(isolated_env: dict[str, str], tmp_path: Path) -> Iterator[Start]:
    """Start ``mhw ARGS --ready-file F`` in the background and wait until it accepts."""
    started: list[Background] = []

    def run(*args: str) -> Background:
        index = len(started)
        ready = tmp_path / f"ready-{index}.json"
        out = tmp_path / f"out-{index}.txt"
        with out.open("wb") as stdout, (tmp_path / f"err-{index}.txt").open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "mh_webhook_cli", *args, "--ready-file", str(ready)],
                stdout=stdout,
                stderr=stderr,
                env=isolated_env,
            )
        background = Background(process, {}, out)
        started.append(background)

        def is_ready() -> bool:
            if process.poll() is not None:
                raise AssertionError((tmp_path / f"err-{index}.txt").read_text())
            return ready.exists()

        wait_for(is_ready, what=f"mhw {args[0]}")
        background.ready = json.loads(ready.read_text())
        return background

    yield run
    for background in started:
        if background.process.poll() is None:
            background.process.send_signal(signal.SIGTERM)
            background.process.wait(timeout=20)


def emulate(start: Start, webhook_port: int | None, *extra: str, secret: str = SECRET) -> str:
    """An emulator delivering to ``webhook_port``; its base URL."""
    hook = ["--webhook-url", f"http://127.0.0.1:{webhook_port}/"] if webhook_port else []
    args = ["emulate", "--port", "0", *hook, "--secret", secret, *FAST, *extra]
    return str(start(*args).ready["url"])


def trigger(mhw: Mhw, api_base: str, port: int, *extra: str) -> Any:
    return mhw(
        "trigger",
        "image",
        "--yes",
        "--secret",
        SECRET,
        "--api-key",
        API_KEY,
        "--api-base",
        api_base,
        "--port",
        str(port),
        "--no-tunnel",
        "--poll-interval",
        "0.1",
        *extra,
    )


def test_success_shows_the_timeline_and_exits_0(mhw: Mhw, start: Start) -> None:
    port = reserved_port()
    base = emulate(start, port)
    result = trigger(mhw, base, port)
    assert result.code == ExitCode.OK, result.stderr
    assert "image.completed" in result.stdout
    assert "✓ ok" in result.stdout
    assert "5 credit(s)" in result.stderr  # what it costs, said before spending


def test_json_summary_is_one_object(mhw: Mhw, start: Start) -> None:
    port = reserved_port()
    base = emulate(start, port, "--render-seconds", "1.5")
    result = trigger(mhw, base, port, "--format", "json")
    assert result.code == ExitCode.OK, result.stderr
    summary = json.loads(result.stdout)
    assert summary["verdict"] == "ok"
    assert summary["api_status"] == "complete"
    assert summary["endpoint"] == f"http://127.0.0.1:{port}/"
    webhooks = [step["what"] for step in summary["timeline"] if step["source"] == "webhook"]
    assert webhooks == ["image.started", "image.completed"]
    assert all(s["verification"] == "ok" for s in summary["timeline"] if s["source"] == "webhook")


def test_errored_job_exits_4_unless_expected(mhw: Mhw, start: Start) -> None:
    port = reserved_port()
    base = emulate(start, port, "--fail-rate", "1", "--error-code", "no_source_face")
    failed = trigger(mhw, base, port)
    assert failed.code == ExitCode.JOB_FAILED
    assert "no_source_face" in failed.stdout
    expected = trigger(mhw, base, port, "--expect-error")
    assert expected.code == ExitCode.OK, expected.stdout
    assert "image.errored" in expected.stdout


def test_webhook_never_delivered_exits_5_and_says_what_to_check(mhw: Mhw, start: Start) -> None:
    port = reserved_port()
    base = emulate(start, None)  # no endpoint registered: nothing is delivered
    result = trigger(mhw, base, port, "--webhook-timeout", "0.5")
    assert result.code == ExitCode.NO_WEBHOOK
    assert "nothing reached http://127.0.0.1:" in result.stdout
    assert "image.completed" in result.stdout


def test_endpoint_without_the_final_event_is_named(mhw: Mhw, start: Start) -> None:
    """started arrives but completed does not: the URL is right, the event list is not."""
    port = reserved_port()
    base = emulate(start, port, "--render-seconds", "1.5", "--events", "image.started")
    result = trigger(mhw, base, port, "--webhook-timeout", "0.5")
    assert result.code == ExitCode.NO_WEBHOOK
    assert "add image.completed to the events" in result.stdout


def test_wrong_secret_exits_6(mhw: Mhw, start: Start) -> None:
    port = reserved_port()
    other = "mhw_live_ffffffffffffffffffffffffffffffff"
    base = emulate(start, port, secret=other)
    result = trigger(mhw, base, port)
    assert result.code == ExitCode.BAD_SIGNATURE
    assert "secret is probably wrong" in result.stdout
    assert other not in result.stdout + result.stderr


def test_wrong_api_key_exits_3_without_printing_it(mhw: Mhw, start: Start) -> None:
    port = reserved_port()
    base = emulate(start, port, "--api-key", "mhk_live_the_right_key_0123456789")
    result = trigger(mhw, base, port)
    assert result.code == ExitCode.API_ERROR
    assert "401" in result.stderr
    assert API_KEY not in result.stdout + result.stderr


def test_job_slower_than_timeout_exits_7(mhw: Mhw, start: Start) -> None:
    port = reserved_port()
    base = emulate(start, port, "--render-seconds", "30")
    result = trigger(mhw, base, port, "--timeout", "1")
    assert result.code == ExitCode.JOB_TIMEOUT
    assert "still rendering" in result.stdout


def test_attach_uses_a_running_listeners_store(mhw: Mhw, start: Start, tmp_path: Path) -> None:
    store = tmp_path / "listen.sqlite3"
    listener = start("listen", "--port", "0", "--no-tunnel", "--store", str(store))
    base = emulate(start, listener.ready["port"])
    result = trigger(mhw, base, 0, "--attach", "--store", str(store), "--format", "json")
    assert result.code == ExitCode.OK, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    webhooks = [step["what"] for step in summary["timeline"] if step["source"] == "webhook"]
    assert "image.completed" in webhooks
    # Named after the running listener, as it announced itself.
    assert summary["endpoint"] == listener.ready["url"]
    assert f"running listener at {listener.ready['url']}" in result.stderr
    # The running listener showed them too: it received them, not us.
    assert "image.completed" in listener.stdout()


def test_download_saves_the_output(mhw: Mhw, start: Start, tmp_path: Path) -> None:
    port = reserved_port()
    base = emulate(start, port)
    downloads = tmp_path / "out"
    downloads.mkdir()
    result = trigger(mhw, base, port, "--download", str(downloads))
    assert result.code == ExitCode.OK, result.stderr
    (saved,) = downloads.iterdir()
    assert saved.read_bytes().startswith(b"\x89PNG")


def test_without_yes_and_no_terminal_it_refuses(mhw: Mhw) -> None:
    result = mhw("trigger", "image", "--secret", SECRET, "--api-key", API_KEY)
    assert result.code == ExitCode.USAGE
    assert "--yes" in result.stderr


def _ask_on_a_terminal(
    isolated_env: dict[str, str], base: str, port: int, answer: bytes
) -> tuple[int, str]:
    """Run trigger on a pseudo-terminal of its own (its controlling terminal, so that a typed
    ^C is SIGINT, as in a shell), answer its question; (exit code, what the terminal showed)."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))

    def own_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "mh_webhook_cli", "trigger", "image", "--secret", SECRET),
            *("--api-key", API_KEY, "--api-base", base, "--port", str(port), "--no-tunnel"),
            *("--poll-interval", "0.1"),
        ],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=terminal,
        env=isolated_env,
        preexec_fn=own_terminal,
    )
    os.close(terminal)
    seen = b""

    def asked() -> bool:
        nonlocal seen
        seen += os.read(controller, 4096)
        return b"Start it?" in seen

    wait_for(asked, what="the cost question")
    os.write(controller, answer)
    process.wait(timeout=20)
    try:
        while chunk := os.read(controller, 4096):
            seen += chunk
    except OSError:  # the terminal is gone once the process is
        pass
    os.close(controller)
    return process.returncode, seen.decode(errors="replace")


def test_cost_question_on_a_terminal(isolated_env: dict[str, str], start: Start) -> None:
    port = reserved_port()
    emulator = start(
        "emulate", "--port", "0", "--webhook-url", f"http://127.0.0.1:{port}/", "--secret", SECRET
    )
    base = emulator.ready["url"]
    code, said = _ask_on_a_terminal(isolated_env, base, port, b"n\n")
    assert code == ExitCode.FAILED
    assert "5 credit(s)" in said and "no credits were spent" in said
    assert "never awaited" not in said and "Warning" not in said, said
    assert "ai-image-generator" not in emulator.stdout()  # nothing was created
    code, said = _ask_on_a_terminal(isolated_env, base, port, b"y\n")
    assert code == ExitCode.OK, said


def test_ctrl_c_at_the_cost_question_stops_there(
    isolated_env: dict[str, str], start: Start
) -> None:
    """^C typed at the question ends trigger at once (130), with nothing started or printed
    from Python's insides; the next line typed is not taken as the answer."""
    port = reserved_port()
    emulator = start(
        "emulate", "--port", "0", "--webhook-url", f"http://127.0.0.1:{port}/", "--secret", SECRET
    )
    code, said = _ask_on_a_terminal(isolated_env, emulator.ready["url"], port, b"\x03")
    assert code == ExitCode.INTERRUPTED, said
    assert "no credits were spent" in said
    assert "Traceback" not in said and "never awaited" not in said, said
    assert "ai-image-generator" not in emulator.stdout()


def test_video_jobs_are_checked_end_to_end(mhw: Mhw, start: Start, tmp_path: Path) -> None:
    port = reserved_port()
    base = emulate(start, port)
    downloads = tmp_path / "out"
    downloads.mkdir()
    result = mhw(
        *("trigger", "video", "--yes", "--secret", SECRET, "--api-key", API_KEY),
        *("--api-base", base, "--port", str(port), "--no-tunnel", "--poll-interval", "0.1"),
        *("--download", str(downloads), "--format", "json"),
    )
    assert result.code == ExitCode.OK, result.stderr
    # The cheapest clip the API documents: ltx-2.5, 480p, 1 s at 120 credits per 5 s.
    assert "a real video job costs about 24 credit(s)" in result.stderr
    summary = json.loads(result.stdout)
    webhooks = [step["what"] for step in summary["timeline"] if step["source"] == "webhook"]
    assert webhooks == ["video.started", "video.completed"]
    (saved,) = downloads.iterdir()
    assert saved.suffix == ".mp4" and saved.read_bytes()[4:8] == b"ftyp"


def stored_event(store: Store, event_type: str, received_at: float) -> int:
    body = json.dumps({"type": event_type, "payload": {"id": "clxattach"}}).encode()
    return store.add(
        Received.of(
            received_at,
            "POST",
            "/",
            [],
            body,
            "127.0.0.1:1",
            event_type,
            "clxattach",
            "ok",
            [],
            200,
        )
    )


def test_attached_polling_reads_only_what_is_new(tmp_path: Path) -> None:
    """``--attach`` follows the store by id: every request stored since the start exactly once,
    in order, each look reading only those stored after the last one seen (it once re-read
    every row since the start, four times a second). The sleep is the test's: no wall clock."""
    path = tmp_path / "events.sqlite3"
    since = 1_800_000_000.0
    looks: list[float] = []
    with Store(path) as store:
        stored_event(store, "video.started", since - 5)  # before the run: not ours
        first = stored_event(store, "video.started", since + 1)

        async def between_looks(interval: float) -> None:
            looks.append(interval)
            if len(looks) == 1:  # the listener stores two more, one stamped before `since`
                stored_event(store, "video.completed", since + 2)
                stored_event(store, "video.errored", since - 1)
            if len(looks) == 3:
                raise asyncio.CancelledError

        async def follow() -> list[Received]:
            inbox = Inbox()
            with contextlib.suppress(asyncio.CancelledError):
                await poll_store(path, since, inbox, sleep=between_looks)
            arrived = []
            while (received := await inbox.next(0.01)) is not None:
                arrived.append(received)
            return arrived

        arrived = asyncio.run(follow())
    assert looks == [0.25] * 3
    assert [r.id for r in arrived] == [first, first + 1, first + 2]
    assert [r.event_type for r in arrived] == ["video.started", "video.completed", "video.errored"]
    assert [r.document["type"] for r in arrived] == [r.event_type for r in arrived]
    with Store(path) as store:
        assert [r.id for r in store.after(first)] == [first + 1, first + 2]
        assert store.after(first + 2) == []
