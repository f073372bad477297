"""The bounded client every mhw request goes through, against a scripted loopback server."""

from __future__ import annotations

import asyncio
import socket

from raw_http import RawServer, raw_server

from mh_webhook_cli.send.client import Answer, request, small_read_client

DOUBLED = (
    b"HTTP/1.1 429 Too Many Requests\r\n"
    b"Retry-After: 1\r\n"
    b"X-Trace: a\r\n"
    b"retry-after: 120\r\n"
    b"Content-Length: 2\r\n"
    b"\r\n"
    b"{}"
)


def answer_doubled(server: RawServer, connection: socket.socket) -> bool:
    server.send(connection, DOUBLED)
    return False


def fetch(url: str) -> Answer:
    async def exchange() -> Answer:
        async with small_read_client() as client:
            return await request(client, "GET", url, deadline=10, keep=1024)

    return asyncio.run(exchange())


def test_a_repeated_header_is_kept_once_for_each_time_it_was_sent() -> None:
    """httpx's ``headers.items()`` joins repeats with commas: ``header()`` said "the first
    value" and gave ``"1, 120"``, which no Retry-After parser reads as a number."""
    with raw_server(answer_doubled) as server:
        answer = fetch(server.url)
    assert answer.headers == [
        ("retry-after", "1"),
        ("x-trace", "a"),
        ("retry-after", "120"),
        ("content-length", "2"),
    ]
    assert answer.header("Retry-After") == "1"
    assert answer.header("x-missing") is None
