"""Stopping ``mhw listen`` while senders keep their connections busy, or the store is locked.

Each test is a shutdown measured on an earlier mhw: keep-alive senders whose requests
kept arriving after the server stopped accepting (forwarded through a closed client:
72 tracebacks, and requests stored but never answered), and a held write lock that
made SIGTERM take 9.6 s.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
import threading
import time
from typing import Any

import httpx
import pytest
from ports import reserved_port
from test_listen import Start, _Handler, event_body, signed_headers
from test_listen import handler_server as handler_server  # the fixtures, shared
from test_listen import start_listener as start_listener
from test_store_hostile import hold_write_lock, refused_within

from conftest import SECRET, wait_for
from mh_webhook_cli.core.request import Request
from mh_webhook_cli.errors import UsageError
from mh_webhook_cli.receive.http import Limits, Response, serve
from mh_webhook_cli.receive.listener import ListenConfig, Listener
from mh_webhook_cli.receive.session import Session
from mh_webhook_cli.report.listen import ListenTextReporter
from mh_webhook_cli.send.forward import ForwardRoute


class Sender(threading.Thread):
    """Posts events one after another on one keep-alive connection until a request fails
    (once the listener stops: refused, or closed before it read the request)."""

    def __init__(self, url: str, worker: int) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.worker = worker
        self.answered: dict[bytes, int] = {}

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            for n in range(100_000):
                body = event_body(f"clxshut{self.worker:02d}{n:016d}")
                try:
                    answer = client.post(self.url, content=body, headers=signed_headers(body))
                except httpx.HTTPError:
                    return
                self.answered[body] = answer.status_code


def post(path: str, body: bytes = b"{}") -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (
        path.encode(),
        len(body),
        body,
    )


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_closing_the_server_stops_reading_and_answers_what_each_connection_received(
    loop_kind: str,
) -> None:
    """asyncio's Server.close() leaves keep-alive connections open, still reading requests."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        pending: list[asyncio.Future[Response]] = []

        def handler(request: Request) -> Response | asyncio.Future[Response]:
            if request.path == "/slow":
                pending.append(loop.create_future())
                return pending[-1]
            return Response(200, b"ok")

        server = await serve(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        idle = await asyncio.open_connection("127.0.0.1", port)
        idle[1].write(post("/"))
        assert (await idle[0].readuntil(b"ok")).startswith(b"HTTP/1.1 200")
        # The partial head first: once the server has read the request after it, it has
        # read the partial head too (on loopback, bytes arrive as they are sent).
        partial = await asyncio.open_connection("127.0.0.1", port)
        partial[1].write(b"POST / HTTP/1.1\r\nHost: x\r\n")
        busy = await asyncio.open_connection("127.0.0.1", port)
        busy[1].write(post("/slow"))
        while not pending:  # the server reads in its own callbacks, on this loop
            await asyncio.sleep(0)
        server.close()
        assert await idle[0].read() == b""  # idle: closed at once
        assert (await partial[0].read()).startswith(b"HTTP/1.1 503")
        assert not await server.wait_closed(0.05)  # the busy one still owes its answer
        pending[0].set_result(Response(200, b"late"))
        answer = await busy[0].read()
        assert answer.startswith(b"HTTP/1.1 200") and answer.count(b"HTTP/1.1") == 1
        assert b"connection: close" in answer and answer.endswith(b"late")
        assert await server.wait_closed(5)
        for _, writer in (idle, busy, partial):
            writer.close()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)

    run = asyncio.run if loop_kind == "asyncio" else pytest.importorskip("uvloop").run
    run(asyncio.wait_for(scenario(), 10))


def test_sigterm_under_keep_alive_senders_answers_every_request_it_read(
    start_listener: Start, handler_server: tuple[str, type[_Handler]]
) -> None:
    """Every stored request was answered 200, and nothing after the summary."""
    url, _ = handler_server
    listening = start_listener("--secret", SECRET, "--forward-to", url, "--format", "json")
    senders = [Sender(listening.url, worker) for worker in range(8)]
    for sender in senders:
        sender.start()
    wait_for(lambda: len(listening.json_lines()) >= 200, what="200 forwarded deliveries")
    listening.process.send_signal(signal.SIGTERM)
    assert listening.process.wait(timeout=20) == 0
    for sender in senders:
        sender.join(timeout=20)
        assert not sender.is_alive()
    stored = {row[5] for row in listening.stored()}
    acknowledged = {body for s in senders for body, status in s.answered.items() if status == 200}
    assert acknowledged == stored, "a request stored but not acknowledged, or the reverse"
    statuses = {status for s in senders for status in s.answered.values()}
    assert statuses <= {200, 503}
    stderr = listening.stderr()
    assert "Traceback" not in stderr and "never retrieved" not in stderr, stderr
    # The summary comes last: nothing but its own indented lines after it.
    after_summary = stderr[stderr.rindex("received ") :].splitlines()[1:]
    assert after_summary and all(line.startswith("  ") for line in after_summary), stderr
    # Every forwarded delivery is shown once, with its forward result, and stored with it.
    lines = listening.json_lines()
    assert len(lines) == len({line["id"] for line in lines}) == len(stored)
    with_results = {line["id"] for line in lines if line["forwards"]}
    assert len(with_results) >= 200


def test_sigterm_while_another_process_holds_the_write_lock_ends_within_2_s(
    start_listener: Start,
) -> None:
    """The requests waiting for the lock are answered 503 (their senders retry), not 500."""
    listening = start_listener("--secret", SECRET)
    release, held = threading.Event(), threading.Event()
    holder = threading.Thread(target=hold_write_lock, args=(listening.store, release, held))
    holder.start()
    waiting: list[socket.socket] = []
    try:
        assert held.wait(timeout=10)
        for n in range(2):
            body = event_body(f"clxheld{n:018d}")
            head = f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
            head += "".join(f"{name}: {value}\r\n" for name, value in signed_headers(body).items())
            connection = socket.create_connection(("127.0.0.1", listening.port), timeout=15)
            connection.sendall(head.encode() + b"\r\n" + body)
            waiting.append(connection)
            # Answered after the listener read the request before it: two groups wait.
            refused_within(listening.port)
        started = time.monotonic()
        listening.process.send_signal(signal.SIGTERM)
        code = listening.process.wait(timeout=20)
        took = time.monotonic() - started
        answers = [connection.recv(1000) for connection in waiting]
    finally:
        release.set()
        holder.join(timeout=10)
        for connection in waiting:
            connection.close()
    assert code == 0
    assert took < 2.0, f"SIGTERM took {took:.1f} s"
    assert all(answer.startswith(b"HTTP/1.1 503") for answer in answers), answers
    assert listening.stored() == []
    stderr = listening.stderr()
    assert "Traceback" not in stderr and "answered 500" not in stderr, stderr
    assert "answered 503 to 2 request(s)" in stderr, stderr


def test_a_failure_after_binding_closes_the_server() -> None:
    """A forwarding loop found once bound once left the port open until the loop ended."""
    port = reserved_port()
    config = ListenConfig(forwards=(ForwardRoute(f"http://localhost:{port}/hook"),))
    session = Session(config, "127.0.0.1", port, None, Limits(), ListenTextReporter(), (), 1)

    async def scenario() -> None:
        with pytest.raises(UsageError, match="this listener itself"):
            async with session.serving():
                pass
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)

    asyncio.run(scenario())


def test_a_forward_that_raises_is_one_warning_not_an_unretrieved_task_exception() -> None:
    """A forward through a closed client raised RuntimeError in a task no one awaited."""
    warnings: list[str] = []
    unhandled: list[dict[str, Any]] = []

    async def scenario() -> None:
        asyncio.get_running_loop().set_exception_handler(
            lambda _, context: unhandled.append(context)
        )
        client = httpx.AsyncClient()
        await client.aclose()
        config = ListenConfig(forwards=(ForwardRoute("http://127.0.0.1:9/hook"),))
        listener = Listener(config, None, lambda _: None, client=client, warn=warnings.append)
        request = Request("POST", "/", [], b"{}", "127.0.0.1:1", {})
        listener.handle(request)
        await listener.drain(5)

    asyncio.run(scenario())
    gc.collect()
    assert unhandled == []
    assert len(warnings) == 1 and "could not forward" in warnings[0], warnings
    assert "client has been closed" in warnings[0]


def test_stopping_cuts_forwards_still_under_way_and_shows_them(
    start_listener: Start, handler_server: tuple[str, type[_Handler]]
) -> None:
    """A second Ctrl-C during the drain: the forward is shown as cut short, no traceback."""
    url, handler = handler_server
    handler.delay = 8.0
    listening = start_listener("--forward-to", url, "--forward-timeout", "9", "--format", "json")
    assert httpx.post(listening.url, content=event_body()).status_code == 200
    wait_for(lambda: handler.received, what="the forward to start")
    listening.process.send_signal(signal.SIGINT)
    wait_for(lambda: "Ctrl-C again" in listening.stderr(), what="the waiting message")
    assert listening.stop() == 0
    (line,) = listening.json_lines()
    assert line["forwards"][0]["status"] is None
    assert "stopped" in line["forwards"][0]["error"]
    stderr = listening.stderr()
    assert "Traceback" not in stderr and "never retrieved" not in stderr, stderr
