"""Where mhw is the client of someone else's server: bounded in time and memory, never looping.

A forward target, a replay target: each is a real loopback server that misbehaves on
purpose (tests/raw_http.py): an endless body, an answer trickled a byte at a time. The
listener runs as ``mhw listen`` in a subprocess, so its memory is measured as a user's is.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from ports import reserved_port
from raw_http import RawServer, endless, fixed, raw_server, trickle

from conftest import Mhw, wait_for
from mh_webhook_cli.core.request import Received
from mh_webhook_cli.receive.store import Store

BODY = b'{"type":"video.completed","payload":{"id":"clforward0000000000000001"}}'


@dataclass
class Listener:
    process: subprocess.Popen[bytes]
    url: str
    store: Path
    stdout: Path
    stderr: Path

    def json_lines(self) -> list[dict[str, Any]]:
        text = self.stdout.read_text(encoding="utf-8", errors="replace")
        lines = [json.loads(line) for line in text.splitlines() if line.strip()]
        return [line for line in lines if line["kind"] == "request"]

    def peak_rss_kib(self) -> int:
        """The most resident memory the listener has had so far (the kernel's VmHWM, Linux).

        The peak, not the current size: memory a burst took and gave back counts too.
        """
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM line")


@pytest.fixture
def listen(isolated_env: dict[str, str], tmp_path: Path) -> Iterator[Any]:
    """Start ``mhw listen --format json`` with the given options; all are stopped at the end."""
    started: list[Listener] = []

    def start(*args: str, port: int = 0) -> Listener:
        index = len(started)
        ready = tmp_path / f"ready-{index}.json"
        store = tmp_path / f"events-{index}.sqlite3"
        stdout, stderr = tmp_path / f"stdout-{index}.txt", tmp_path / f"stderr-{index}.txt"
        command = [sys.executable, "-m", "mh_webhook_cli", "listen", "--port", str(port)]
        command += ["--ready-file", str(ready), "--store", str(store), "--format", "json", *args]
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen(
                command, stdout=out, stderr=err, env=isolated_env, cwd=tmp_path
            )
        listener = Listener(process, "", store, stdout, stderr)
        started.append(listener)

        def is_ready() -> bool:
            if listener.process.poll() is not None:
                raise AssertionError(f"listener exited: {listener.stderr.read_text()}")
            return ready.exists()

        wait_for(is_ready, what="the ready file")
        listener.url = json.loads(ready.read_text())["url"]
        return listener

    yield start
    for listener in started:
        if listener.process.poll() is None:
            listener.process.send_signal(signal.SIGINT)
            try:
                listener.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                listener.process.kill()


def stored_rows(mhw: Mhw, store: Path) -> list[dict[str, Any]]:
    result = mhw("events", "list", "--all", "--format", "json", "--store", str(store))
    assert result.code == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


# Forwarding to a misbehaving handler


def test_forward_to_an_endless_body_stops_reading_and_memory_stays_flat(listen: Any) -> None:
    with raw_server(endless()) as target:
        listener = listen("--forward-to", target.url, "--forward-timeout", "20")
        # Settle the listener's own start-up allocations before the baseline.
        assert httpx.post(listener.url, content=b"{}").status_code == 200
        wait_for(lambda: len(listener.json_lines()) == 1, what="the first forward")
        before = listener.peak_rss_kib()
        started = time.monotonic()
        for _ in range(10):  # answered at once: the ten forwards run side by side
            assert httpx.post(listener.url, content=BODY).status_code == 200
        lines = wait_for(lambda: len(listener.json_lines()) == 11 and listener.json_lines())
        elapsed = time.monotonic() - started
        growth_mib = (listener.peak_rss_kib() - before) / 1024
        sent_mib = target.sent_bytes / 2**20
    results = [line["forwards"][0] for line in lines[1:]]
    assert all(result["status"] == 200 for result in results), results
    assert all(result["body"] == "x" * 2000 for result in results)
    assert elapsed < 15, "the forwards read the endless body to its end"
    assert growth_mib < 20, f"the listener's peak memory grew by {growth_mib:.0f} MiB"
    assert sent_mib < 160, f"the listener read {sent_mib:.0f} MiB of answers it does not keep"


def test_forward_to_a_trickling_handler_ends_at_the_forward_timeout(listen: Any) -> None:
    with raw_server(trickle()) as target:
        listener = listen("--forward-to", target.url, "--forward-timeout", "1")
        started = time.monotonic()
        assert httpx.post(listener.url, content=BODY).status_code == 200
        [line] = wait_for(listener.json_lines, what="the forward result")
        elapsed = time.monotonic() - started
    [result] = line["forwards"]
    assert result["status"] is None
    assert result["error"] == (
        "no complete answer within 1 s (reading the body of a 200 answer)"
    ), result
    assert elapsed < 4, f"the forward took {elapsed:.1f} s with --forward-timeout 1"


# Loops


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "0.0.0.0", "[::1]"])  # noqa: S104
def test_forwarding_to_this_listener_is_refused_at_start(mhw: Mhw, host: str) -> None:
    port = reserved_port()
    result = mhw("listen", "--port", str(port), "--forward-to", f"video.*=http://{host}:{port}/")
    assert result.code == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: --forward-to ") and "is this listener itself" in line


def test_listeners_forwarding_to_each_other_do_not_loop(mhw: Mhw, listen: Any) -> None:
    port_b = reserved_port()  # A must name it before B starts; A's own is --port 0's
    a = listen("--forward-to", f"http://127.0.0.1:{port_b}/")
    b = listen("--forward-to", a.url, port=port_b)
    assert httpx.post(a.url, content=BODY).status_code == 200
    # B shows the request once it is done with it: stored, and (without the fix) forwarded.
    [at_b] = wait_for(b.json_lines, what="the request at B")
    [at_a] = wait_for(a.json_lines, what="A's forward result")
    assert at_a["forwards"][0]["status"] == 200
    assert at_b["forwards"] == [], "B forwarded a request that a listener had forwarded"
    assert ["mhw-forwarded", "1"] in at_b["headers"]
    assert len(stored_rows(mhw, a.store)) == 1
    assert len(stored_rows(mhw, b.store)) == 1


# Replay


def forwarded_capture(store: Path) -> int:
    """A stored request that a listener had forwarded; its id."""
    with Store(store) as opened:
        return opened.add(
            Received.of(
                received_at=time.time(),
                method="POST",
                target="/webhook",
                headers=[("Content-Type", "application/json"), ("mhw-forwarded", "1")],
                body=BODY,
                client="127.0.0.1:50000",
                event_type="video.completed",
                project_id="clforward0000000000000001",
                verification="unsigned",
                findings=[],
                answer=200,
            )
        )


def test_replay_is_a_new_delivery_without_the_hop_header(mhw: Mhw, tmp_path: Path) -> None:
    store = tmp_path / "events.sqlite3"
    request_id = forwarded_capture(store)

    def accept(server: RawServer, connection: socket.socket) -> bool:
        server.send(connection, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        return False

    with raw_server(accept) as target:
        result = mhw("events", "replay", str(request_id), "--to", target.url, "--store", str(store))
        [head] = target.heads
    assert result.code == 0, result.stdout + result.stderr
    assert b"\r\ncontent-type: application/json" in head.lower()
    assert b"mhw-forwarded" not in head.lower(), "the target would not forward a replay"


def test_replay_sends_the_captured_headers_as_they_came(mhw: Mhw, tmp_path: Path) -> None:
    """A capture's own Content-Type and User-Agent are sent, not doubled by mhw's defaults, and
    a repeated header goes out as often as it came in."""
    store = tmp_path / "events.sqlite3"
    headers = [("content-type", "application/json"), ("user-agent", "Svix-Webhooks/1.0")]
    headers += [("x-dup", "a"), ("x-dup", "b")]
    with Store(store) as opened:
        request_id = opened.add(
            Received.of(time.time(), "POST", "/", headers, BODY, "127.0.0.1:1", None, None,
                        "unsigned", [], 200)
        )  # fmt: skip

    def accept(server: RawServer, connection: socket.socket) -> bool:
        server.send(connection, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        return False

    with raw_server(accept) as target:
        result = mhw("events", "replay", str(request_id), "--to", target.url, "--store", str(store))
        [head] = target.heads
    assert result.code == 0, result.stdout + result.stderr
    lines = head.lower().split(b"\r\n")
    assert [line for line in lines if line.startswith(b"content-type:")] == [
        b"content-type: application/json"
    ]
    assert [line for line in lines if line.startswith(b"user-agent:")] == [
        b"user-agent: svix-webhooks/1.0"
    ]
    assert [line for line in lines if line.startswith(b"x-dup:")] == [b"x-dup: a", b"x-dup: b"]


def test_replay_timeout_is_for_the_whole_answer(mhw: Mhw, tmp_path: Path) -> None:
    store = tmp_path / "events.sqlite3"
    request_id = forwarded_capture(store)
    with raw_server(trickle()) as target:
        started = time.monotonic()
        result = mhw(
            "events", "replay", str(request_id), "--to", target.url,
            "--timeout", "1", "--store", str(store),
        )  # fmt: skip
        elapsed = time.monotonic() - started
    assert result.code == 1, result.stdout + result.stderr
    assert "timed out after 1 s reading the body of a 200 answer" in result.stdout
    assert elapsed < 5, f"replay took {elapsed:.1f} s with --timeout 1"


def test_a_header_with_any_byte_is_forwarded_as_it_came(listen: Any) -> None:
    """A byte over 0x7f in a header (llhttp accepts it) made httpx raise in the forward: no
    forward, a traceback per request, and under --mirror-status a 500 and nothing stored."""
    with raw_server(fixed(200, b"ok")) as target:
        listener = listen("--forward-to", target.url, "--mirror-status")
        port = int(listener.url.rsplit(":", 1)[1].split("/")[0])
        head = b"POST /hook HTTP/1.1\r\nHost: x\r\nX-Name: caf\xe9\r\nContent-Length: %d\r\n\r\n"
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(head % len(BODY) + BODY)
            assert connection.recv(65536).startswith(b"HTTP/1.1 200 ")
        forwarded = wait_for(lambda: target.heads, what="the forwarded request")[0]
    assert b"\r\nX-Name: caf\xe9\r\n" in forwarded
    (line,) = wait_for(listener.json_lines, what="the delivery line")
    assert line["forwards"][0]["status"] == 200


def test_a_replay_or_forward_carries_no_header_about_the_first_connection() -> None:
    """Upgrade, TE, Trailer and the rest were about the sender's connection to mhw: sent on,
    an ``Upgrade: h2c`` could have a target switch protocols mid-replay."""
    from mh_webhook_cli.send.replay import replay_headers

    captured = [
        ("TE", "trailers"),
        ("Upgrade", "h2c"),
        ("Connection", "Upgrade, HTTP2-Settings"),
        ("Trailer", "x-checksum"),
        ("Proxy-Connection", "keep-alive"),
        ("Keep-Alive", "timeout=5"),
        ("X-Kept", "1"),
    ]
    assert replay_headers(captured, b"{}", None, 0) == [("X-Kept", "1")]
