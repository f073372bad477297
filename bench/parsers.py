"""In-process cost of parsing one webhook request: h11, httptools, and mhw's old parser.

Why mhw's server parses with httptools (llhttp): it is the strict parser and the
fast one. Each contender turns the same raw requests into what mhw's handler needs
(method, target, the header list, a lower-cased dict of headers, the body), one
request after another on one connection, as a kept-alive sender sends them:

- "hand-written (before)": the regex parser mhw had until it moved to httptools,
  copied below as it was (its request line, header and chunk patterns);
- "httptools": llhttp with the callbacks mhw's server uses;
- "h11": h11's server connection (it must answer each request before reading the
  next, so its cost includes writing a minimal response);
- "mhw server (after)": the whole ``HttpProtocol`` per request with a stand-in
  transport: llhttp plus timers, the request queue and the encoded answer.

    python bench/parsers.py [--requests 20000] [--rounds 7]

Prints µs per request for each request shape: the median of the rounds (the
machine is shared and noisy: compare columns of one run, not runs).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import time
from collections.abc import Callable
from typing import Any, cast

import h11
import httptools

from mh_webhook_cli.core.request import Request
from mh_webhook_cli.receive.http import HttpProtocol, Limits, Response

BODY = (
    b'{"type":"video.completed","payload":{"id":"clx7uu86w0a5qp55yxz315r6r","name":"Example Name",'
    b'"status":"complete","type":"ANIMATION","created_at":"2023-11-07T05:31:56Z","width":512,'
    b'"height":960,"enabled":true,"start_seconds":0,"end_seconds":15,"total_frame_cost":450,'
    b'"credits_charged":450,"fps":30,"error":null,"downloads":[{"url":"https://videos.magichour.ai/'
    b'id/output.mp4","expires_at":"2024-10-19T05:16:19.027Z"}],"download":{"url":"https://videos.'
    b'magichour.ai/id/output.mp4","expires_at":"2024-10-19T05:16:19.027Z"}}}'
)
HEAD = (
    b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1:8787\r\nContent-Type: application/json\r\n"
    b"User-Agent: magic-hour-webhooks/1.0\r\n"
    b"magic-hour-event-signature: "
    b"5d41402abc4b2a76b9719d911017c592aaf0c6b1f5e4a9b5d8e0c3a4b7f21e90\r\n"
    b"magic-hour-event-timestamp: 1700000000\r\n"
)
SHAPES = {
    "webhook, Content-Length": HEAD + b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY),
    "webhook, chunked (4 chunks)": HEAD
    + b"Transfer-Encoding: chunked\r\n\r\n"
    + b"".join(
        b"%x\r\n%s\r\n" % (len(part), part)
        for part in (BODY[i : i + 140] for i in range(0, 560, 140))
    )
    + b"0\r\n\r\n",
    "small GET": b"GET /health HTTP/1.1\r\nHost: 127.0.0.1:8787\r\n\r\n",
}

Parsed = tuple[str, str, list[tuple[str, str]], dict[str, str], bytes]


# The hand-written parser mhw used before httptools, as it was (errors reduced to ValueError).

_REQUEST_LINE = re.compile(r"([A-Z]{1,20}) (\S{1,8192}) HTTP/(1\.[01])")
_HEADER_FIELD = re.compile(
    r"(?<=\r\n)([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*"
    r"(?:([^\x00-\x20\x7f](?:[^\x00-\x08\x0a-\x1f\x7f]*[^\x00-\x20\x7f])?)[ \t]*)?\r\n"
)
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;[^\r\n]{0,256})?")
_DIGITS = re.compile(r"[0-9]{1,15}")
MAX_HEAD = 32 * 1024
MAX_BODY = 1024 * 1024


def handwritten_parse(buffer: bytearray) -> tuple[Parsed, int] | None:
    head_end = buffer.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    head = buffer[: head_end + 2].decode("latin-1")
    line_end = head.find("\r\n")
    start = _REQUEST_LINE.fullmatch(head, 0, line_end)
    if start is None:
        raise ValueError("not an HTTP request")
    headers: list[tuple[str, str]] = _HEADER_FIELD.findall(head, line_end + 2)
    if len(headers) != head.count("\r\n", line_end + 2):
        raise ValueError("malformed header line")
    by_name = {name.lower(): value for name, value in headers}
    if len(by_name) < len(headers):
        lengths = {value for name, value in headers if name.lower() == "content-length"}
        if len(lengths) > 1:
            raise ValueError("conflicting Content-Length headers")
    body_start = head_end + 4
    encoding = by_name.get("transfer-encoding", "").strip().lower()
    if encoding not in ("", "chunked"):
        raise ValueError("unsupported Transfer-Encoding")
    if encoding == "chunked":
        decoded = _dechunk(buffer, body_start)
        if decoded is None:
            return None
        body, end = decoded
    else:
        length_text = by_name.get("content-length", "0").strip()
        if not _DIGITS.fullmatch(length_text):
            raise ValueError("invalid Content-Length")
        end = body_start + int(length_text)
        if len(buffer) < end:
            return None
        body = bytes(buffer[body_start:end])
    return (start.group(1), start.group(2), headers, by_name, body), end


def _dechunk(buffer: bytearray, position: int) -> tuple[bytes, int] | None:
    body = bytearray()
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        size_match = _CHUNK_SIZE.fullmatch(buffer, position, line_end)
        if size_match is None:
            raise ValueError("malformed chunk size")
        size = int(size_match.group(1), 16)
        position = line_end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n\r\n", position - 2)
            if trailer_end < 0:
                return None
            return bytes(body), trailer_end + 4
        if len(buffer) < position + size + 2:
            return None
        if buffer[position + size : position + size + 2] != b"\r\n":
            raise ValueError("chunk longer than its size")
        body += buffer[position : position + size]
        position += size + 2


def run_handwritten(data: bytes, count: int) -> None:
    buffer = bytearray()
    for _ in range(count):
        buffer += data
        parsed = handwritten_parse(buffer)
        assert parsed is not None
        del buffer[: parsed[1]]


# httptools with the callbacks mhw's server uses.


class _Collector:
    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.parsed = 0
        self.last: Parsed | None = None
        self.url = b""
        self.headers: list[tuple[str, str]] = []
        self.by_name: dict[str, str] = {}
        self.body: list[bytes] = []

    def on_message_begin(self) -> None:
        self.url, self.headers, self.by_name, self.body = b"", [], {}, []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        field = name.decode("latin-1")
        text = value.decode("latin-1").rstrip(" \t")
        self.headers.append((field, text))
        self.by_name[field.lower()] = text

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        body = self.body
        self.parsed += 1
        self.last = (
            self.parser.get_method().decode("ascii"),
            self.url.decode("latin-1"),
            self.headers,
            self.by_name,
            body[0] if len(body) == 1 else b"".join(body),
        )


def run_httptools(data: bytes, count: int) -> None:
    collector = _Collector()
    for _ in range(count):
        collector.parser.feed_data(data)
    assert collector.parsed == count


# h11, which must answer a request before it reads the next.

_H11_RESPONSE = h11.Response(status_code=200, headers=[("content-length", "0")])


def run_h11(data: bytes, count: int) -> None:
    connection = h11.Connection(h11.SERVER)
    for _ in range(count):
        connection.receive_data(data)
        body = bytearray()
        while True:
            event = connection.next_event()
            if isinstance(event, h11.Request):
                target = event.target.decode("latin-1")
                headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in event.headers]
                by_name = {name: value for name, value in headers}
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
        assert target and by_name is not None
        connection.send(_H11_RESPONSE)
        connection.send(h11.EndOfMessage())
        connection.start_next_cycle()


# mhw's whole server protocol, with a stand-in transport.


class _Transport:
    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return False


_OK = Response(200, b'{"received":true}', (("content-type", "application/json"),))


def run_mhw_server(data: bytes, count: int) -> None:
    async def serve() -> None:
        answered = 0

        def handler(request: Request) -> Response:
            nonlocal answered
            answered += 1
            return _OK

        protocol = HttpProtocol(handler, Limits(), None)
        protocol.connection_made(cast(Any, _Transport()))
        for _ in range(count):
            protocol.data_received(data)
        assert answered == count
        protocol.connection_lost(None)

    asyncio.run(serve())


CONTENDERS: dict[str, Callable[[bytes, int], None]] = {
    "hand-written (before)": run_handwritten,
    "httptools": run_httptools,
    "h11": run_h11,
    "mhw server (after)": run_mhw_server,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    arguments = parser.parse_args()
    names = list(CONTENDERS)
    print(f"{'µs per request (median of ' + str(arguments.rounds) + ' rounds)':45}", end="")
    print("".join(f"{name:>24}" for name in names))
    for shape, data in SHAPES.items():
        medians = []
        for name in names:
            run = CONTENDERS[name]
            timings = []
            for _ in range(arguments.rounds):
                started = time.perf_counter()
                run(data, arguments.requests)
                timings.append((time.perf_counter() - started) / arguments.requests * 1e6)
            medians.append(statistics.median(timings))
        print(f"{shape:45}" + "".join(f"{median:24.2f}" for median in medians), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
