"""Output never holds the receiver: a reader that stalls costs lines, one that leaves ends mhw.

``mhw listen`` and ``mhw emulate`` print from the loop that answers requests; these tests
pipe their stdout into a reader that never reads, or that goes away, and check that the
listener keeps answering and storing, that signals still end it, and that it ends quietly.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import Mhw, wait_for
from mh_webhook_cli.core.request import Received
from mh_webhook_cli.receive.store import Store

BROKEN_PIPE = 141
"""The exit status of a filter whose reader left: 128 + SIGPIPE, as a shell reports it."""


def spawn(
    args: list[str], env: dict[str, str], tmp_path: Path
) -> tuple[subprocess.Popen[bytes], dict[str, Any], Path]:
    """``mhw ARGS`` with stdout on a pipe the test controls; stderr to a file."""
    ready = tmp_path / "ready.json"
    stderr = tmp_path / "stderr.txt"
    command = [sys.executable, "-m", "mh_webhook_cli", *args, "--port", "0"]
    command += ["--ready-file", str(ready)]
    with stderr.open("wb") as err:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=err, env=env, cwd=tmp_path
        )

    def is_ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"exited: {stderr.read_text()}")
        return ready.exists()

    wait_for(is_ready, what="the ready file")
    return process, json.loads(ready.read_text()), stderr


def post(port: int, body: bytes, path: str = "/") -> int | None:
    """One request on its own connection: the status, or None when nobody answered in 5 s."""
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
            connection.sendall(head.encode() + b"Connection: close\r\n\r\n" + body)
            answer = connection.recv(64)
    except OSError:
        return None
    return int(answer.split(b" ")[1]) if answer.startswith(b"HTTP/1.1 ") else None


def event(index: int) -> bytes:
    """An event whose lines on stdout take about 700 bytes as text (its id is shortened, its
    schema findings summed up after five) and 3 kB as JSON: 2,000 of them overflow the pipe
    and the writer's 1 MiB."""
    padding = "p" * 2500
    return json.dumps({"type": "video.completed", "payload": {"id": f"{index}{padding}"}}).encode()


@pytest.mark.parametrize("output_format", ["json", "text"])
def test_a_reader_that_stops_reading_never_stops_the_listener(
    isolated_env: dict[str, str], tmp_path: Path, output_format: str
) -> None:
    store = tmp_path / "events.sqlite3"
    args = ["listen", "--store", str(store), "--format", output_format]
    process, ready, stderr = spawn(args, isolated_env, tmp_path)
    try:  # nobody ever reads process.stdout
        requests = 2000
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: post(int(ready["port"]), event(i)), range(requests)))

        assert answers.count(200) == requests, f"{answers.count(None)} not answered"
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=5)
        assert time.monotonic() - stopping < 2.0
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0
    with Store(store) as stored:
        assert len(list(stored.requests())) == requests
    said = stderr.read_text()
    assert "stdout is not being read: dropping output lines" in said
    assert "output line(s) dropped: stdout was not read fast enough" in said
    assert "Traceback" not in said


def test_a_reader_that_leaves_ends_the_listener_quietly(
    isolated_env: dict[str, str], tmp_path: Path
) -> None:
    """``mhw listen | head -1``: the first line read, the pipe closed, the listener ends."""
    store = tmp_path / "events.sqlite3"
    args = ["listen", "--store", str(store)]
    process, ready, stderr = spawn(args, isolated_env, tmp_path)
    port = int(ready["port"])
    try:
        assert post(port, event(0)) == 200
        assert process.stdout is not None
        assert b"video.completed" in process.stdout.readline()
        process.stdout.close()  # as head does once it has its line
        answers: list[int | None] = []
        while process.poll() is None and len(answers) < 100:
            answers.append(post(port, event(len(answers) + 1)))
        process.wait(timeout=5)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == BROKEN_PIPE
    said = stderr.read_text()
    assert "Traceback" not in said and "BrokenPipeError" not in said
    assert answers[0] == 200 and 500 not in answers
    with Store(store) as stored:  # every request answered 200 was stored
        assert len(list(stored.requests())) == 1 + answers.count(200)


def test_a_reader_that_leaves_ends_the_emulator_without_failing_api_calls(
    isolated_env: dict[str, str], tmp_path: Path
) -> None:
    """``mhw emulate | head -1``: no 500 for the calls after it, and a quiet end."""
    process, ready, stderr = spawn(["emulate"], isolated_env, tmp_path)
    url = f"{ready['url']}/v1/account"
    key = {"authorization": "Bearer any-key"}
    try:
        assert httpx.get(url, headers=key).status_code == 200
        assert process.stdout is not None
        assert b"/v1/account" in process.stdout.readline()
        process.stdout.close()
        answers: list[int | None] = []
        while process.poll() is None and len(answers) < 100:
            try:
                answers.append(httpx.get(url, headers=key, timeout=5).status_code)
            except httpx.TransportError:
                break  # it has stopped listening: it is ending
        process.wait(timeout=5)
    finally:
        process.kill()
        process.wait()
    assert set(answers) <= {200}, answers
    assert process.returncode == BROKEN_PIPE
    said = stderr.read_text()
    assert "Traceback" not in said and "BrokenPipeError" not in said


@pytest.mark.parametrize(
    "args",
    [
        ["events", "list"],  # written during the command
        ["events", "export"],
        ["fixtures", "show", "video.completed"],  # print(): written by the flush at the end
        ["--version"],
    ],
)
def test_a_command_whose_reader_left_ends_quietly(
    mhw: Mhw, isolated_env: dict[str, str], tmp_path: Path, args: list[str]
) -> None:
    """``mhw events list | head -1``: stdout closed before mhw writes; no traceback."""
    store = tmp_path / "events.sqlite3"
    with Store(store) as stored:
        for index in range(50):
            body = event(index)
            stored.add(
                Received.of(
                    time.time(),
                    "POST",
                    "/",
                    [],
                    body,
                    "127.0.0.1:1",
                    "video.completed",
                    str(index),
                    "unsigned",
                    [],
                    200,
                )
            )
    env = {**isolated_env, "MHW_STORE": str(store)}
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first write
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "mh_webhook_cli", *args],
            stdout=write,
            stderr=subprocess.PIPE,
            env=env,
            cwd=tmp_path,
            timeout=30,
            check=False,
        )
    finally:
        os.close(write)
    assert completed.stderr.decode() == ""
    assert completed.returncode == BROKEN_PIPE


def test_a_terminal_that_stops_scrolling_never_stops_the_listener(
    isolated_env: dict[str, str], tmp_path: Path
) -> None:
    """A pty nobody reads (a stopped tmux pane, Ctrl-S): rich output stalls, answers do not."""
    import pty

    primary, secondary = pty.openpty()
    ready = tmp_path / "ready.json"
    command = [sys.executable, "-m", "mh_webhook_cli", "listen", "--port", "0", "--no-store"]
    command += ["--ready-file", str(ready)]
    env = {**isolated_env, "TERM": "xterm-256color"}
    process = subprocess.Popen(
        command, stdout=secondary, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path
    )
    os.close(secondary)
    try:  # the terminal's buffer (a few kB) fills within the first requests
        wait_for(ready.exists, what="the ready file")
        port = int(json.loads(ready.read_text())["port"])
        answers = [post(port, event(index)) for index in range(300)]
        assert answers.count(200) == len(answers), f"{answers.count(None)} not answered"
        stopping = time.monotonic()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=5)
        assert time.monotonic() - stopping < 2.0
    finally:
        process.kill()
        process.wait()
        os.close(primary)


@pytest.mark.parametrize("command", [["listen", "--no-store"], ["emulate"]])
def test_the_ready_file_is_private(
    isolated_env: dict[str, str], tmp_path: Path, command: list[str]
) -> None:
    """It names the port and the store, like the listener registry: mode 0600."""
    process, _, _ = spawn(command, isolated_env, tmp_path)
    try:
        assert (tmp_path / "ready.json").stat().st_mode & 0o777 == 0o600
    finally:
        process.kill()
        process.wait()


def test_a_listener_started_with_stdout_closed_prints_to_no_connection(
    isolated_env: dict[str, str], tmp_path: Path
) -> None:
    """``mhw listen >&-``: fd 1 is free, and must not become a stranger's connection."""
    ready = tmp_path / "ready.json"
    store = tmp_path / "events.sqlite3"
    command = [sys.executable, "-m", "mh_webhook_cli", "listen", "--port", "0"]
    command += ["--ready-file", str(ready), "--store", str(store)]
    process = subprocess.Popen(
        command,
        stderr=subprocess.DEVNULL,
        env=isolated_env,
        cwd=tmp_path,
        preexec_fn=lambda: os.close(1),  # as the shell does for >&-
    )
    try:
        wait_for(lambda: ready.exists() or process.poll() is not None, what="the ready file")
        assert process.poll() is None, "the listener ended"
        port = int(json.loads(ready.read_text())["port"])
        for index in range(3):
            body = event(index)
            with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
                connection.sendall(
                    f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                answer = connection.recv(4096)
            assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
            assert b"video.completed" not in answer
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        process.kill()
        process.wait()
    with Store(store) as stored:
        assert len(list(stored.requests())) == 3


def test_the_writer_gathers_the_lines_of_a_flood_into_few_writes() -> None:
    """Each datagram of a SEQPACKET socket is one ``write``. Lines queued a millisecond apart
    (the loop lets go of the GIL between them, as a listener does) go out at most once per
    interval, not once each: under load the writer's thread wakes 50 times a second."""
    from mh_webhook_cli.report.writer import WRITE_INTERVAL_SECONDS, BackgroundWriter

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    writer = BackgroundWriter(ours.fileno())
    lines = [b"line %d\n" % number for number in range(20)]
    try:
        theirs.settimeout(5)
        started = time.monotonic()
        for line in lines:
            writer.write(line, 1)
            time.sleep(0.001)  # pacing the flood, not waiting for an outcome
        elapsed = time.monotonic() - started
        received, writes = b"", 0
        while len(received) < len(b"".join(lines)):
            received += theirs.recv(65536)
            writes += 1
        assert received == b"".join(lines)
        assert writes <= 2 + elapsed / WRITE_INTERVAL_SECONDS
    finally:
        writer.close(1.0)
        ours.close()
        theirs.close()
