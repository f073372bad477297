"""Any bytes a stranger sends, through the real server, listener and store, to every display.

The one property that sums up issue 12: whatever arrives as body, path or header value is
answered, stored byte for byte when it is a request at all, and shown as one line each, with
nothing in it that steers a terminal. Requests go over a loopback socket to mhw's own server
(llhttp framing, the listener's judgement, the writer thread's commit), in-process so that
hypothesis can try a few hundred of them in seconds.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_terminal_safety import ANY_CHARACTER, assert_one_line_each

from conftest import SECRET, wait_for
from mh_webhook_cli.core.request import Received
from mh_webhook_cli.receive.activity import RequestReceived
from mh_webhook_cli.receive.http import serve
from mh_webhook_cli.receive.listener import ListenConfig, Listener
from mh_webhook_cli.receive.store import GroupCommitter, Store
from mh_webhook_cli.report.events import detail_text, list_text
from mh_webhook_cli.report.listen import finding_lines, payload_lines, request_line


@dataclass
class Served:
    port: int
    store: Path
    delivered: dict[str, Received]
    """By the X-Seq header each request carries."""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    store_path = tmp_path_factory.mktemp("hostile") / "events.sqlite3"
    ready = threading.Event()
    stop: list[asyncio.Event] = []
    served = Served(0, store_path, {})

    def delivered(event: RequestReceived) -> None:
        served.delivered[event.received.request.by_name.get("x-seq", "")] = event.received

    async def main() -> None:
        store = Store(store_path)
        committer = GroupCommitter(store)
        listener = Listener(ListenConfig(secrets=(SECRET,)), committer, delivered)
        server = await serve(listener.handle, "127.0.0.1", 0)
        served.port = server.sockets[0].getsockname()[1]
        stop.append(asyncio.Event())
        ready.set()
        await stop[0].wait()
        server.close()
        await committer.close()
        store.close()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield served
    loop.call_soon_threadsafe(stop[0].set)
    thread.join(10)


def json_text(text: str) -> bytes:
    """An event whose strings are ``text``, lone surrogates included (as JSON escapes)."""
    escaped = "".join(
        f"\\u{ord(c):04x}" if c in '"\\' or ord(c) < 0x20 or 0xD800 <= ord(c) < 0xE000 else c
        for c in text
    )
    document = f'{{"type":"{escaped}","payload":{{"id":"{escaped}","status":"{escaped}"}}}}'
    return document.encode()


BODIES = st.binary(max_size=200) | st.text(ANY_CHARACTER, max_size=30).map(json_text)
VISIBLE = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40)
"""What llhttp lets through in a target: half the examples, so that most get stored."""


def one_field(data: bytes) -> bytes:
    """``data`` without CR LF, which would end the line it is in and frame another request:
    a bare CR or LF stays (llhttp refuses those)."""
    return data.replace(b"\r\n", b"_")


PATHS = VISIBLE.map(str.encode) | st.binary(max_size=40).map(
    lambda path: one_field(path).replace(b" ", b"_")  # a space ends the target
)
HEADER_VALUES = (
    st.text(max_size=40).map(lambda text: text.encode("utf-8", "replace")) | st.binary(max_size=40)
).map(one_field)
sequence = iter(range(1_000_000))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=BODIES, path=PATHS, header=HEADER_VALUES)
def test_any_request_is_answered_stored_exactly_and_shown_as_one_line_each(
    served: Served, body: bytes, path: bytes, header: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    seq = str(next(sequence))
    head = b"POST /" + path + b" HTTP/1.1\r\nHost: x\r\nX-Seq: " + seq.encode()
    head += b"\r\nX-Any: " + header + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as connection:
        connection.sendall(head + body)
        answer = connection.recv(65536)
    assert answer.startswith(b"HTTP/1.1 "), answer  # answered, whatever was sent
    if not answer.startswith(b"HTTP/1.1 200 "):
        assert answer.startswith(b"HTTP/1.1 400 "), answer  # refused by the framing alone
        return
    with Store(served.store) as store:
        (found,) = [
            request for request in store.requests(limit=None) if ("X-Seq", seq) in request.headers
        ]
    assert found.body == body
    assert found.target == "/" + path.decode("latin-1")
    assert ("X-Any", header.decode("latin-1").strip(" \t")) in found.headers
    # Shown after the answer is written: the display's turn comes a moment later.
    delivery = wait_for(lambda: served.delivered.get(seq), what="the delivery")
    live = [request_line(delivery), *finding_lines(delivery)]
    for lines in (live, payload_lines(delivery), list_text([found]), detail_text(found)):
        assert_one_line_each(lines, monkeypatch)
