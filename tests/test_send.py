"""``mhw send`` against real loopback handlers that check what arrives on their own terms.

The receiving server verifies signatures with an HMAC written here from Magic Hour's
documented recipe, never with mhw's code, so a bug shared by signer and verifier cannot hide.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from raw_http import ENDLESS_CAP, RawServer, endless, raw_server, trickle

from conftest import SECRET, Mhw
from mh_webhook_cli import __version__
from mh_webhook_cli.send.delivery import Delivery, SendResult, Signer, make_client, send_with_retry
from mh_webhook_cli.send.delivery import tls_context as make_tls
from mh_webhook_cli.send.retry import MAGIC_HOUR_RETRY_SECONDS, Backoff

NINE = [
    f"{kind}.{action}"
    for kind in ("video", "image", "audio")
    for action in ("started", "completed", "errored")
]
STALE_AFTER = 300


def recipe(secret: str, timestamp: str, body: bytes) -> str:
    """Magic Hour's documented signature, written independently of mhw."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def compact(event: object) -> bytes:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    def signature_valid(self, secret: str = SECRET) -> bool:
        timestamp = self.headers["magic-hour-event-timestamp"]
        expected = recipe(secret, timestamp, self.body)
        return hmac.compare_digest(expected, self.headers["magic-hour-event-signature"])

    def age(self) -> float:
        return time.time() - int(self.headers["magic-hour-event-timestamp"])

    def event(self) -> dict[str, object]:
        data = json.loads(self.body)
        assert isinstance(data, dict)
        return data


Answer = Callable[[int], tuple[int, bytes, list[tuple[str, str]]]]


def accept(_: int) -> tuple[int, bytes, list[tuple[str, str]]]:
    return 200, b'{"received":true}', []


def refuse(_: int) -> tuple[int, bytes, list[tuple[str, str]]]:
    return 401, b'{"error":"invalid signature"}', []


class Handler(http.server.ThreadingHTTPServer):
    """A webhook handler that records each request and answers as its test tells it to."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handle)
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.answer: Answer = accept

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/webhooks/magic-hour"


class _Handle(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real handlers do
    server: Handler

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = {name.lower(): value for name, value in self.headers.items()}
        with self.server.lock:
            self.server.received.append(Received(headers, body, time.monotonic()))
            number = len(self.server.received)
        status, reply, extra = self.server.answer(number)
        self.send_response(status)
        for name, value in extra:
            self.send_header(name, value)
        if not any(name.lower() == "transfer-encoding" for name, _ in extra):
            self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def handler() -> Iterator[Handler]:
    server = Handler()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port nothing listens on: bound and never listening, so the kernel refuses every
    connection, and held for the whole test, so that nothing else can take it meanwhile."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port: int = holder.getsockname()[1]
        yield port


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A server that accepts connections (the kernel's backlog does) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"


def one_line_error(stderr: str, *needles: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    for needle in needles:
        assert needle in lines[0], stderr
    assert "Traceback" not in stderr


# Body and signature


def test_fixture_arrives_signed_over_the_exact_bytes(mhw: Mhw, handler: Handler) -> None:
    result = mhw("send", "video.completed", "--url", handler.url, "--secret", SECRET)
    assert result.code == 0, result.stderr
    [request] = handler.received
    assert request.signature_valid()
    assert abs(request.age()) < 5
    event = request.event()
    assert event["type"] == "video.completed"
    assert request.body == compact(event), "not the compact form Magic Hour sends"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == f"mhw/{__version__}"
    first_line = result.stdout.splitlines()[0]
    assert first_line.startswith("✓ video.completed") and " 200 " in first_line
    assert '{"received":true}' in result.stdout


def test_all_nine_events_arrive_in_order(mhw: Mhw, handler: Handler) -> None:
    result = mhw("send", "--all", "--url", handler.url, "--secret", SECRET)
    assert result.code == 0, result.stderr
    assert [r.event()["type"] for r in handler.received] == NINE
    for request in handler.received:
        payload = request.event()["payload"]
        assert isinstance(payload, dict) and isinstance(payload["id"], str) and payload["id"]
        assert request.signature_valid()
    assert len(result.stdout.strip().splitlines()) == 9


@pytest.mark.parametrize(("fail", "last"), [(False, "completed"), (True, "errored")])
def test_lifecycle_sends_started_then_the_end_for_one_project(
    mhw: Mhw, handler: Handler, fail: bool, last: str
) -> None:
    flags = ["--fail"] if fail else []
    result = mhw("send", "--lifecycle", "image", *flags, "--url", handler.url, "-s", SECRET)
    assert result.code == 0, result.stderr
    events = [request.event() for request in handler.received]
    assert [event["type"] for event in events] == ["image.started", f"image.{last}"]
    payloads = [event["payload"] for event in events]
    assert all(isinstance(payload, dict) for payload in payloads)
    ids = {payload["id"] for payload in payloads if isinstance(payload, dict)}
    assert len(ids) == 1


def test_set_changes_a_nested_field_and_id_names_the_project(mhw: Mhw, handler: Handler) -> None:
    result = mhw(
        "send",
        "video.errored",
        "--url",
        handler.url,
        "-s",
        SECRET,
        "--id",
        "clproject000000000000000001",
        "--set",
        "payload.error.code=my_code",
        "--set",
        "payload.name=Café ☕",
    )
    assert result.code == 0, result.stderr
    [request] = handler.received
    payload = request.event()["payload"]
    assert isinstance(payload, dict)
    assert payload["id"] == "clproject000000000000000001"
    assert payload["error"]["code"] == "my_code"
    assert "Café ☕".encode() in request.body, "non-ASCII must travel as UTF-8, not \\u escapes"
    assert request.signature_valid()


def test_data_from_a_file_stdin_and_inline(mhw: Mhw, handler: Handler, tmp_path: Path) -> None:
    event = {"type": "audio.completed", "payload": {"id": "a1", "name": "Ünïcode"}}
    spaced = json.dumps(event, indent=2).encode()
    (tmp_path / "event.json").write_bytes(spaced)
    for args, stdin in (
        (["--data", f"@{tmp_path / 'event.json'}"], None),
        (["--data", "-"], spaced),
        (["--data", json.dumps(event)], None),
    ):
        result = mhw("send", *args, "--url", handler.url, "-s", SECRET, input=stdin)
        assert result.code == 0, result.stderr
        assert "audio.completed" in result.stdout
    assert [request.body for request in handler.received] == [compact(event)] * 3
    assert all(request.signature_valid() for request in handler.received)


def test_extra_headers_arrive(mhw: Mhw, handler: Handler) -> None:
    result = mhw("send", "image.started", "-u", handler.url, "-s", SECRET, "-H", "X-Trace: abc: 1")
    assert result.code == 0, result.stderr
    assert handler.received[0].headers["x-trace"] == "abc: 1"


def test_secret_from_the_environment(mhw: Mhw, handler: Handler) -> None:
    result = mhw(
        "send", "audio.started", "-u", handler.url, env={"MAGIC_HOUR_WEBHOOK_SECRET": "env-s"}
    )
    assert result.code == 0, result.stderr
    assert handler.received[0].signature_valid("env-s")


# Negative tests for handlers


def test_no_sign_sends_neither_header_and_needs_no_secret(mhw: Mhw, handler: Handler) -> None:
    handler.answer = refuse  # these expect a rejection (tests/test_send_expectations.py)
    result = mhw("send", "video.started", "--url", handler.url, "--no-sign")
    assert result.code == 0, result.stderr
    headers = handler.received[0].headers
    assert "magic-hour-event-signature" not in headers
    assert "magic-hour-event-timestamp" not in headers


def test_bad_signature_looks_valid_but_fails_verification(mhw: Mhw, handler: Handler) -> None:
    handler.answer = refuse  # these expect a rejection (tests/test_send_expectations.py)
    result = mhw("send", "video.started", "-u", handler.url, "-s", SECRET, "--bad-signature")
    assert result.code == 0, result.stderr
    [request] = handler.received
    assert re.fullmatch(r"[0-9a-f]{64}", request.headers["magic-hour-event-signature"])
    assert abs(request.age()) < 5
    assert not request.signature_valid()


def test_timestamp_offset_signs_a_stale_request(mhw: Mhw, handler: Handler) -> None:
    handler.answer = refuse  # these expect a rejection (tests/test_send_expectations.py)
    result = mhw(
        "send", "video.started", "-u", handler.url, "-s", SECRET, "--timestamp-offset", "-600"
    )
    assert result.code == 0, result.stderr
    [request] = handler.received
    assert request.signature_valid(), "the signature itself is genuine"
    assert 595 <= request.age() <= 610
    assert request.age() > STALE_AFTER, "a handler checking the age must reject it"


# Exit codes


@pytest.mark.parametrize(
    ("status", "expect", "code"),
    [
        (204, None, 0),
        (500, None, 1),
        (401, "401", 0),
        (200, "401", 1),
        (302, None, 1),
    ],
)
def test_exit_code_follows_the_status(
    mhw: Mhw, handler: Handler, status: int, expect: str | None, code: int
) -> None:
    handler.answer = lambda _: (status, b"" if status == 204 else b"nope", [])
    flags = ["--expect-status", expect] if expect else []
    result = mhw("send", "video.completed", "-u", handler.url, "-s", SECRET, *flags)
    assert result.code == code, result.stdout + result.stderr
    assert f" {status} " in result.stdout.splitlines()[0]
    assert len(handler.received) == 1


def test_all_fails_when_any_event_fails(mhw: Mhw, handler: Handler) -> None:
    handler.answer = lambda n: (500, b"", []) if n == 5 else accept(n)
    result = mhw("send", "--all", "-u", handler.url, "-s", SECRET, "-f", "json")
    assert result.code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["ok"] for line in lines] == [n != 5 for n in range(1, 10)]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["video.finished"], "video.started, video.completed"),
        (["video.started", "-H", "no colon"], "invalid header"),
        (["video.started", "--set", "payload"], "expected PATH=VALUE"),
        (["video.started", "--data", "{}"], "exactly one of"),
        ([], "exactly one of"),
        (["--data", "{not json"], "not JSON"),
        (["video.started", "--count", "5", "--retry"], "--count"),
        (["video.started", "--cacert", "/nonexistent.pem"], "cannot load --cacert"),
        (["video.started", "--no-sign", "--bad-signature"], "--no-sign"),
        (["video.completed", "--error-code", "file_too_large"], "error_code applies only"),
        (["--lifecycle", "video", "--error-code", "file_too_large"], "--fail"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    mhw: Mhw, handler: Handler, args: list[str], needle: str
) -> None:
    result = mhw("send", *args, "-u", handler.url, "-s", SECRET)
    assert result.code == 2, result.stdout + result.stderr
    one_line_error(result.stderr, needle)
    assert handler.received == []


def test_no_secret_is_a_usage_error(mhw: Mhw, handler: Handler) -> None:
    result = mhw("send", "video.started", "-u", handler.url)
    assert result.code == 2
    one_line_error(result.stderr, "no webhook secret")


def test_url_must_be_http(mhw: Mhw) -> None:
    result = mhw("send", "video.started", "-u", "ftp://example.com/", "-s", SECRET)
    assert result.code == 2
    one_line_error(result.stderr, "http://")


# Network failures: one line, exit 1


def test_refused_connection(mhw: Mhw, closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/hook"
    result = mhw("send", "video.started", "-u", url, "-s", SECRET)
    assert result.code == 1
    one_line_error(result.stderr, "connection refused", url)
    assert result.stdout == ""


def test_timeout(mhw: Mhw, silent_url: str) -> None:
    started = time.monotonic()
    result = mhw("send", "video.started", "-u", silent_url, "-s", SECRET, "--timeout", "0.5")
    assert result.code == 1
    one_line_error(result.stderr, "timed out after 0.5 s")
    assert time.monotonic() - started < 10


def test_tls_to_a_plain_http_server(mhw: Mhw, handler: Handler) -> None:
    url = handler.url.replace("http://", "https://")
    result = mhw("send", "video.started", "-u", url, "-s", SECRET, "--timeout", "5")
    assert result.code == 1
    one_line_error(result.stderr, "TLS")


def test_unresolvable_host(mhw: Mhw) -> None:
    result = mhw("send", "video.started", "-u", "http://mhw-test.invalid/", "-s", SECRET)
    assert result.code == 1
    one_line_error(result.stderr, "resolve")


def test_no_answer_in_json_is_still_one_object(mhw: Mhw, closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/"
    result = mhw("send", "video.started", "-u", url, "-s", SECRET, "-f", "json")
    assert result.code == 1
    data = json.loads(result.stdout)
    assert data["status"] is None and data["ok"] is False
    assert "connection refused" in data["error"]


@pytest.fixture
def tls_handler(handler: Handler, tmp_path: Path) -> tuple[Handler, Path]:
    """The handler behind TLS with a fresh self-signed certificate for 127.0.0.1."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    handler.socket = context.wrap_socket(handler.socket, server_side=True)
    return handler, cert


def test_tls_self_signed_is_rejected_unless_trusted(
    mhw: Mhw, tls_handler: tuple[Handler, Path]
) -> None:
    handler, cert = tls_handler
    url = handler.url.replace("http://", "https://")
    rejected = mhw("send", "video.started", "-u", url, "-s", SECRET)
    assert rejected.code == 1
    one_line_error(rejected.stderr, "TLS certificate rejected", "--cacert")
    assert handler.received == []
    for flags in (["--cacert", str(cert)], ["--insecure"]):
        accepted = mhw("send", "video.started", "-u", url, "-s", SECRET, *flags)
        assert accepted.code == 0, accepted.stderr
    assert len(handler.received) == 2
    assert all(request.signature_valid() for request in handler.received)


def test_count_over_tls(mhw: Mhw, tls_handler: tuple[Handler, Path]) -> None:
    handler, cert = tls_handler
    url = handler.url.replace("http://", "https://")
    result = mhw(
        "send", "video.started", "-u", url, "-s", SECRET, "--count", "12", "--cacert", str(cert)
    )
    assert result.code == 0, result.stdout + result.stderr
    assert "12 of 12 accepted" in result.stdout
    assert len(handler.received) == 12


# Output


def test_json_result_has_the_request_and_the_response(mhw: Mhw, handler: Handler) -> None:
    handler.answer = lambda _: (202, b"queued", [("X-Handler", "test")])
    result = mhw("send", "audio.errored", "-u", handler.url, "-s", SECRET, "--format", "json")
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    request = handler.received[0]
    assert data["url"] == handler.url
    assert data["event"] == "audio.errored"
    assert (data["status"], data["ok"], data["body"], data["body_truncated"]) == (
        202,
        True,
        "queued",
        False,
    )
    assert data["response_headers"]["x-handler"] == "test"
    assert data["signature"] == request.headers["magic-hour-event-signature"]
    assert str(data["timestamp"]) == request.headers["magic-hour-event-timestamp"]
    assert data["latency_ms"] > 0


def test_long_bodies_are_truncated_in_text_and_say_so(mhw: Mhw, handler: Handler) -> None:
    handler.answer = lambda _: (500, b"x" * 10_000, [])
    result = mhw("send", "video.started", "-u", handler.url, "-s", SECRET)
    assert result.code == 1
    assert "10000 bytes" in result.stdout
    assert "truncated to the first 2048 bytes" in result.stdout
    assert result.stdout.count("x") < 2200


# Retries


class SteppedClock:
    """Time that passes only when the code under test sleeps: retries without waiting."""

    def __init__(self, handler: Handler) -> None:
        self.now = 0.0
        self.handler = handler
        self.slept: list[tuple[float, int]] = []
        """Each wait, with how many requests the handler had received when it began."""

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append((seconds, len(self.handler.received)))
        self.now += seconds


def test_retry_schedule_doubles_and_resigns_the_same_bytes(handler: Handler) -> None:
    handler.answer = lambda n: (500, b"", []) if n <= 3 else accept(n)
    delivery = Delivery(handler.url, b'{"type":"video.started"}', "video.started")
    retried: list[tuple[int, float]] = []
    clock = SteppedClock(handler)
    with make_client(make_tls(False, None)) as client:
        result = send_with_retry(
            client,
            delivery,
            Signer(SECRET),
            5.0,
            schedule=Backoff(first=0.2),
            on_retry=lambda failed, delay: retried.append((failed.attempts, delay)),
            sleep=clock.sleep,
            clock=clock,
        )
    assert result.status == 200 and result.attempts == 4
    assert retried == [(1, 0.2), (2, 0.4), (3, 0.8)]
    # Each wait comes after an attempt was answered and before the next one was sent.
    assert clock.slept == [(0.2, 1), (0.4, 2), (0.8, 3)]
    assert len(handler.received) == 4
    assert {request.body for request in handler.received} == {delivery.body}
    assert all(request.signature_valid() for request in handler.received)


def test_retry_gives_up_at_the_time_limit(handler: Handler) -> None:
    handler.answer = lambda _: (503, b"", [])
    clock = SteppedClock(handler)
    with make_client(make_tls(False, None)) as client:
        result: SendResult = send_with_retry(
            client,
            Delivery(handler.url, b"{}"),
            Signer(SECRET),
            5.0,
            schedule=Backoff(first=0.05, limit=0.5),
            sleep=clock.sleep,
            clock=clock,
        )
    # Retries start at 0.05, 0.15, 0.35 s; the next would start at 0.75 s, past the limit.
    assert result.status == 503 and result.attempts == 4
    assert [wait for wait, _ in clock.slept] == [0.05, 0.1, 0.2]
    assert len(handler.received) == 4


def test_the_backoff_is_magic_hours_schedule() -> None:
    """1 s, 2 s, 4 s ... and no retry that would start more than 24 hours after the first."""
    schedule = Backoff()
    waits: list[float] = []
    elapsed = 0.0
    while (wait := schedule.wait_after(len(waits) + 1, elapsed)) is not None:
        waits.append(wait)
        elapsed += wait
    assert waits == [2.0**n for n in range(16)]
    assert elapsed <= MAGIC_HOUR_RETRY_SECONDS == 24 * 3600 < elapsed + 2.0**16
    # The API client's form: the same doubling, each wait capped, a number of attempts.
    capped = Backoff(first=1.0, cap=3.0, attempts=4)
    assert [capped.wait_after(n, 0.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 3.0, None]


def test_retry_from_the_cli_reports_each_attempt(mhw: Mhw, handler: Handler) -> None:
    handler.answer = lambda n: (500, b"", []) if n == 1 else accept(n)
    result = mhw("send", "video.started", "-u", handler.url, "-s", SECRET, "--retry")
    assert result.code == 0, result.stderr
    assert result.stderr.strip() == "attempt 1: status 500; retrying in 1 s"
    assert "after 2 attempts" in result.stdout
    assert len(handler.received) == 2


# Load test


def chunked_some_closing(number: int) -> tuple[int, bytes, list[tuple[str, str]]]:
    """Every fifth answer is a 500; the rest are chunked, every third closing the connection.

    So the load test's client meets both keep-alive and reconnecting, and chunked bodies.
    """
    if number % 5 == 0:
        return 500, b"no", []
    headers = [("Transfer-Encoding", "chunked")]
    if number % 3 == 0:
        headers.append(("Connection", "close"))
    return 200, b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", headers


@pytest.mark.parametrize("output", ["json", "text"])
def test_count_summary_counts_every_request(mhw: Mhw, handler: Handler, output: str) -> None:
    handler.answer = chunked_some_closing
    result = mhw(
        "send",
        "image.completed",
        "-u",
        handler.url,
        "-s",
        SECRET,
        "--count",
        "60",
        "--concurrency",
        "4",
        "--format",
        output,
    )
    assert result.code == 1, "12 of the 60 answers are 500"
    assert len(handler.received) == 60
    assert all(request.signature_valid() for request in handler.received)
    if output == "text":
        assert "48 of 60 accepted" in result.stdout
        assert "200: 48  500: 12" in result.stdout
        return
    data = json.loads(result.stdout)
    assert (data["count"], data["ok"], data["failed"]) == (60, 48, 12)
    assert data["statuses"] == {"200": 48, "500": 12}
    assert data["errors"] == {}
    latency = data["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    assert data["requests_per_second"] > 0


def test_count_against_a_dead_handler_counts_errors(mhw: Mhw, closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/"
    result = mhw("send", "video.started", "-u", url, "-s", SECRET, "--count", "7", "-f", "json")
    assert result.code == 1
    data = json.loads(result.stdout)
    assert data["ok"] == 0 and data["statuses"] == {}
    [(message, number)] = data["errors"].items()
    assert "connection refused" in message and number == 7


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://[::1", "is not an http(s) URL"),
        ("http://", "is not an http(s) URL"),
        ("http://x:99999/", "the port '99999' is not a number from 1 to 65535"),
    ],
)  # ftp: test_url_must_be_http
def test_malformed_urls_are_usage_errors(mhw: Mhw, url: str, problem: str) -> None:
    result = mhw("send", "video.completed", "--url", url, "--secret", "s" * 20)
    assert result.code == 2, result.stderr
    assert problem in result.stderr
    assert "Traceback" not in result.stderr


# Bounds: the whole exchange within --timeout, only what is kept read


def test_timeout_is_for_the_whole_answer_not_each_read(mhw: Mhw) -> None:
    with raw_server(trickle()) as server:
        started = time.monotonic()
        result = mhw("send", "video.started", "-u", server.url, "-s", SECRET, "--timeout", "1")
        elapsed = time.monotonic() - started
    assert result.code == 1
    one_line_error(result.stderr, "timed out after 1 s reading the body of a 200 answer")
    assert elapsed < 5, f"--timeout 1 took {elapsed:.1f} s against a trickling handler"


def test_retry_attempts_are_bounded_too() -> None:
    with raw_server(trickle()) as server, make_client(make_tls(False, None)) as client:
        started = time.monotonic()
        result = send_with_retry(
            client, Delivery(server.url, b"{}"), Signer(SECRET), 0.5,
            schedule=Backoff(first=0.05, limit=1.5),
        )  # fmt: skip
        elapsed = time.monotonic() - started
    assert result.status is None and result.attempts >= 2
    assert result.error is not None and result.error.startswith("timed out after 0.5 s")
    # No retry starts after 1.5 s, and the last one ends 0.5 s later.
    assert elapsed < 2.0 + 1.0, f"{result.attempts} attempts took {elapsed:.1f} s"


def test_an_endless_answer_is_read_up_to_the_limit_then_dropped(mhw: Mhw) -> None:
    with raw_server(endless(head=b"Content-Type: text/plain\r\n")) as server:
        result = mhw("send", "video.started", "-u", server.url, "-s", SECRET, "-f", "json")
        sent = server.sent_bytes
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["status"] == 200 and data["body_truncated"] is True
    assert data["body"] == "x" * 65536
    assert 2**20 < data["body_bytes"] < 2**20 + 65536 * 2
    assert sent < 32 * 2**20, f"the handler got to send {sent >> 20} MiB"


def varied_answers(server: RawServer, connection: socket.socket) -> bool:
    """Every way an HTTP/1.x answer can be framed, in turn; True keeps the connection."""
    number = server.requests % 5
    if number == 0:  # HTTP/1.0: the body ends with the connection
        server.send(connection, b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nbye")
        return False
    if number == 1:  # an interim answer first
        server.send(connection, b"HTTP/1.1 100 Continue\r\n\r\n")
        server.send(connection, b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
        return True
    if number == 2:
        server.send(connection, b"HTTP/1.1 204 No Content\r\n\r\n")
        return True
    if number == 3:  # chunked, with a trailer
        server.send(connection, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        server.send(connection, b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n")
        return True
    return endless()(server, connection)


def test_count_reads_every_framing_and_stops_an_endless_body(mhw: Mhw) -> None:
    with raw_server(varied_answers) as server:
        result = mhw(
            "send", "video.started", "-u", server.url, "-s", SECRET, "--count", "20",
            "--concurrency", "3", "--timeout", "5", "-f", "json",
        )  # fmt: skip
        sent = server.sent_bytes
    assert result.code == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert data["errors"] == {}
    assert data["statuses"] == {"200": 12, "201": 4, "204": 4}
    assert server.requests == 20
    assert sent < 64 * 2**20, f"the load client read {sent >> 20} MiB of endless bodies"


def test_count_counts_an_endless_head_as_malformed(mhw: Mhw) -> None:
    def endless_head(server: RawServer, connection: socket.socket) -> bool:
        server.send(connection, b"HTTP/1.1 200 OK\r\n")
        while not server.stopped.is_set() and server.sent_bytes < ENDLESS_CAP:
            server.send(connection, b"X-Padding: " + b"x" * 1000 + b"\r\n")
        return False

    with raw_server(endless_head) as server:
        result = mhw(
            "send", "video.started", "-u", server.url, "-s", SECRET, "--count", "2", "-f", "json"
        )
    assert result.code == 1
    assert "Traceback" not in result.stderr, result.stderr
    data = json.loads(result.stdout)
    [(message, number)] = data["errors"].items()
    assert message.startswith("malformed response") and number == 2


def test_a_repeated_response_header_is_shown_each_time_and_joined_in_json(
    mhw: Mhw, handler: Handler
) -> None:
    handler.answer = lambda _: (200, b"ok", [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
    text = mhw("send", "audio.errored", "-u", handler.url, "-s", SECRET)
    assert text.code == 0, text.stderr
    lines = [line.strip().lower() for line in text.stdout.splitlines()]
    assert [line for line in lines if line.startswith("set-cookie")] == [
        "set-cookie: a=1",
        "set-cookie: b=2",
    ]
    data = json.loads(
        mhw("send", "audio.errored", "-u", handler.url, "-s", SECRET, "-f", "json").stdout
    )
    assert data["response_headers"]["set-cookie"] == "a=1, b=2"


def test_a_lone_surrogate_in_an_event_is_sent_as_its_json_escape() -> None:
    """``json.loads`` reads ``"\\ud800"`` as a lone surrogate, which has no UTF-8 form: an
    emulator job named so died with a traceback and its webhook never went out."""
    from mh_webhook_cli.send.delivery import serialize

    body = serialize({"type": "image.completed", "payload": {"name": "a\ud800"}})
    assert body == b'{"type":"image.completed","payload":{"name":"a\\ud800"}}'
    assert json.loads(body)["payload"]["name"] == "a\ud800"


# Choosing the events, as a library


def test_a_selection_builds_the_events_without_a_command_line() -> None:
    from mh_webhook_cli.errors import UsageError
    from mh_webhook_cli.send.selection import EventSelection

    [(started, first), (errored, last)] = EventSelection(
        lifecycle="audio", fail=True, error_code="invalid_voice", assignments=("payload.name=x",)
    ).events()
    assert (started, errored) == ("audio.started", "audio.errored")
    assert first["payload"]["id"] == last["payload"]["id"]
    assert first["payload"]["name"] == last["payload"]["name"] == "x"
    assert last["payload"]["error"]["code"] == "invalid_voice"

    def unreadable() -> tuple[bytes, str]:
        raise AssertionError("the document is read only once the options are known to fit")

    with pytest.raises(UsageError, match="exactly one of EVENT, --data"):
        EventSelection(event="video.started", data=unreadable).events()
    [(name, document)] = EventSelection(data=lambda: (b'{"type":"x.y"}', "stdin")).events()
    assert (name, document) == ("x.y", {"type": "x.y"})
    with pytest.raises(UsageError, match=r"^stdin is not JSON \("):
        EventSelection(data=lambda: (b"{", "stdin")).events()
