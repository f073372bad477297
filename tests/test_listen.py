"""``mhw listen`` as a real process on a real loopback port."""

from __future__ import annotations

import concurrent.futures
import hashlib
import hmac
import http.server
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import SECRET, wait_for
from mh_webhook_cli.core.fixtures import build_fixture
from mh_webhook_cli.receive.activity import Refused
from mh_webhook_cli.receive.store import Store
from mh_webhook_cli.report.listen import ListenTextReporter

PROJECT_ID = "clx7uu86w0a5qp55yxz315r6r"


def signed_headers(body: bytes, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    """The documented recipe, written independently of mhw."""
    timestamp = str(int(time.time()) if at is None else at)
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return {
        "content-type": "application/json",
        "magic-hour-event-signature": signature.hexdigest(),
        "magic-hour-event-timestamp": timestamp,
    }


def event_body(
    project_id: str = "clx7uu86w0a5qp55yxz315r6r", kind: str = "video.completed"
) -> bytes:
    """A complete, schema-valid event, compact as Magic Hour sends it."""
    event = build_fixture(kind, project_id=project_id, now=datetime.now(timezone.utc))
    return json.dumps(event, separators=(",", ":")).encode()


@dataclass
class Listening:
    process: subprocess.Popen[bytes]
    url: str
    port: int
    store: Path
    stdout_path: Path
    stderr_path: Path

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def json_lines(self, kind: str = "request") -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.stdout().splitlines() if line.strip()]
        return [line for line in lines if line["kind"] == kind]

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=20)

    def stored(self) -> list[tuple[Any, ...]]:
        """(id, type, project id, verification, answer, body) of every stored request."""
        with Store(self.store) as store:
            requests = sorted(store.requests(), key=lambda request: request.id or 0)
        return [
            (r.id, r.event_type, r.project_id, r.verification, r.answer, r.body) for r in requests
        ]


Start = Callable[..., Listening]


@pytest.fixture
def start_listener(isolated_env: dict[str, str], tmp_path: Path) -> Iterator[Start]:
    started: list[Listening] = []

    def start(*args: str, store: bool = True, env: dict[str, str] | None = None) -> Listening:
        index = len(started)
        ready = tmp_path / f"ready-{index}.json"
        store_path = tmp_path / f"events-{index}.sqlite3"
        stdout_path = tmp_path / f"stdout-{index}.txt"
        stderr_path = tmp_path / f"stderr-{index}.txt"
        command = [sys.executable, "-m", "mh_webhook_cli", "listen", "--port", "0"]
        command += ["--ready-file", str(ready), *args]
        if store:
            command += ["--store", str(store_path)]
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            process = subprocess.Popen(
                command, stdout=out, stderr=err, env={**isolated_env, **(env or {})}
            )
        listening = Listening(process, "", 0, store_path, stdout_path, stderr_path)
        started.append(listening)

        def is_ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"listener exited: {listening.stderr()}")
            return ready.exists()

        wait_for(is_ready, what="the ready file")
        info = json.loads(ready.read_text())
        listening.url, listening.port = info["url"], info["port"]
        return listening

    yield start
    for listening in started:
        if listening.process.poll() is None:
            listening.process.kill()
            listening.process.wait()


def test_signed_event_is_verified_stored_and_printed_as_json(start_listener: Start) -> None:
    listening = start_listener("--secret", SECRET, "--format", "json")
    body = event_body()
    answer = httpx.post(listening.url, content=body, headers=signed_headers(body))
    assert answer.status_code == 200
    line = wait_for(listening.json_lines, what="a JSON line")[0]
    assert line["type"] == "video.completed"
    assert line["project_id"] == "clx7uu86w0a5qp55yxz315r6r"
    assert line["verification"] == "ok" and line["valid"] is True
    assert line["body"].encode() == body
    assert line["answer"] == 200
    assert listening.stop() == 0
    [(row_id, kind, project, verification, status, stored_body)] = listening.stored()
    assert (kind, project, verification, status, stored_body) == (
        "video.completed",
        "clx7uu86w0a5qp55yxz315r6r",
        "ok",
        200,
        body,
    )
    assert line["id"] == row_id
    assert SECRET not in listening.stdout() + listening.stderr()
    assert "mhw_live_…cdef" in listening.stderr()


def test_text_lines_show_type_id_verdict_answer_and_retries(start_listener: Start) -> None:
    listening = start_listener("--secret", SECRET)
    body = event_body()
    for _ in range(2):
        httpx.post(listening.url, content=body, headers=signed_headers(body))
    forged = event_body("clxforged00000000000000000")
    httpx.post(listening.url, content=forged, headers=signed_headers(forged, "someone-else"))
    httpx.post(listening.url, content=forged)
    wait_for(lambda: listening.stdout().count("\n") >= 4, what="four lines")
    lines = listening.stdout().splitlines()
    assert "video.completed" in lines[0] and "✓ signed" in lines[0] and "→ 200" in lines[0]
    assert "retry of #1" in lines[1]
    assert "✗ signature_mismatch" in lines[2]
    assert "unsigned" in lines[3]
    assert listening.stop() == 0
    summary = listening.stderr()
    assert "received 4 request(s)" in summary


def test_an_event_with_a_lone_surrogate_key_is_answered_stored_and_shown(
    start_listener: Start,
) -> None:
    """Valid JSON ({"\\ud800": 1}) that once made the judging raise: 500, nothing stored."""
    listening = start_listener("--format", "json")
    event = json.loads(event_body())
    event["payload"]["\ud800"] = 1
    body = json.dumps(event).encode()  # the surrogate on the wire as its JSON escape
    assert httpx.post(listening.url, content=body).status_code == 200
    wait_for(listening.json_lines, what="the request's line")
    assert listening.stop() == 0
    assert [row[-1] for row in listening.stored()] == [body]


def test_reject_invalid_answers_401_but_stores(start_listener: Start) -> None:
    listening = start_listener("--secret", SECRET, "--reject-invalid")
    body = event_body()
    assert httpx.post(listening.url, content=body).status_code == 401
    stale = signed_headers(body, at=int(time.time()) - 3600)
    assert httpx.post(listening.url, content=body, headers=stale).status_code == 401
    assert httpx.post(listening.url, content=body, headers=signed_headers(body)).status_code == 200
    listening.stop()
    verdicts = [row[3] for row in listening.stored()]
    assert verdicts == ["unsigned", "timestamp_too_old", "ok"]


def test_respond_status_and_path(start_listener: Start) -> None:
    listening = start_listener("--respond-status", "503", "--path", "/hooks/mh")
    base = listening.url.rsplit("/hooks/mh", 1)[0]
    assert httpx.post(f"{base}/hooks/mh", content=event_body()).status_code == 503
    assert httpx.post(f"{base}/elsewhere", content=event_body()).status_code == 404
    assert httpx.get(f"{base}/hooks/mh").status_code == 405
    listening.stop()
    assert [row[4] for row in listening.stored()] == [503, 404, 405]


def test_burst_at_concurrency_32_stores_every_acknowledged_request(start_listener: Start) -> None:
    listening = start_listener("--secret", SECRET, "--format", "json")
    total = 2000

    def send_many(worker: int) -> int:
        acknowledged = 0
        with httpx.Client() as client:
            for index in range(worker, total, 32):
                body = event_body(f"clxburst{index:017d}")
                if client.post(
                    listening.url, content=body, headers=signed_headers(body)
                ).is_success:
                    acknowledged += 1
        return acknowledged

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        acknowledged = sum(pool.map(send_many, range(32)))
    assert acknowledged == total
    assert listening.stop() == 0
    rows = listening.stored()
    assert len(rows) == total
    assert {row[2] for row in rows} == {f"clxburst{index:017d}" for index in range(total)}
    assert all(row[3] == "ok" for row in rows)
    assert len(listening.json_lines()) == total


def test_sigkill_mid_burst_loses_no_acknowledged_request(start_listener: Start) -> None:
    listening = start_listener()
    acknowledged: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def send_until_stopped(worker: int) -> None:
        with httpx.Client(timeout=5) as client:
            for index in range(worker, 10**6, 16):
                if stop.is_set():
                    return
                project = f"clxkill{index:018d}"
                try:
                    answer = client.post(listening.url, content=event_body(project))
                except httpx.HTTPError:
                    return
                if answer.is_success:
                    with lock:
                        acknowledged.add(project)

    threads = [threading.Thread(target=send_until_stopped, args=(w,)) for w in range(16)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(acknowledged) >= 500, what="500 acknowledged requests")
    listening.process.kill()
    listening.process.wait(timeout=10)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    with sqlite3.connect(listening.store) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    stored = {row[2] for row in listening.stored()}
    assert acknowledged <= stored, f"lost {len(acknowledged - stored)} acknowledged requests"


def raw_exchange(port: int, data: bytes, *, read_timeout: float = 10.0) -> bytes:
    """Send raw bytes, return everything the server answers until it closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as connection:
        connection.sendall(data)
        connection.shutdown(socket.SHUT_WR)
        received = b""
        while True:
            try:
                chunk = connection.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            received += chunk
        return received


def test_bad_input_corpus_then_still_serving(start_listener: Start) -> None:
    listening = start_listener(
        "--secret", SECRET, "--max-body", "4096", "--read-timeout", "0.5", "--format", "json"
    )
    port = listening.port
    body = event_body()
    cases = {
        "invalid json": (b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\n{not json", b" 200 "),
        "not utf-8": (b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n\xff\xfe\x00{", b" 200 "),
        # Sent whole: the 413 must reach a client still sending, not be lost to a reset.
        "oversized body": (
            b"POST / HTTP/1.1\r\nContent-Length: 999999\r\n\r\n" + b"x" * 999999,
            b" 413 ",
        ),
        "oversized headers": (b"POST / HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", b" 431 "),
        "garbled timestamp": (
            b"POST / HTTP/1.1\r\nmagic-hour-event-signature: abc\r\n"
            b"magic-hour-event-timestamp: yesterday\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body),
            b" 200 ",
        ),
        "chunked": (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
            + b"".join(f"{k}: {v}\r\n".encode() for k, v in signed_headers(body).items())
            + b"\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body),
            b" 200 ",
        ),
        "not http": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", b" 400 "),
        "slow client": (b"POST / HTTP/1.1\r\nContent-Length: 50\r\n\r\n{", b" 408 "),
    }
    for name, (data, expected_status) in cases.items():
        if name == "slow client":
            with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
                connection.sendall(data)
                answer = connection.recv(4096)
        else:
            answer = raw_exchange(port, data)
        assert expected_status in answer.split(b"\r\n", 1)[0], f"{name}: {answer[:80]!r}"
    valid = httpx.post(listening.url, content=body, headers=signed_headers(body))
    assert valid.status_code == 200
    listening.stop()
    stored = [(row[5], row[3]) for row in listening.stored()]
    assert (b"{not json", "unsigned") in stored
    assert (b"\xff\xfe\x00{", "unsigned") in stored
    assert [verdict for stored_body, verdict in stored if stored_body == body] == [
        "malformed_timestamp",
        "ok",  # chunked, verified over the de-chunked bytes
        "ok",
    ]
    lines = listening.json_lines()
    codes = {f["code"] for line in lines for f in line["findings"]}
    assert {"invalid_json", "not_utf8"} <= codes
    warnings = listening.stderr()
    for status in ("413", "431", "400", "408"):
        assert f": {status} " in warnings


class _Handler(http.server.BaseHTTPRequestHandler):
    status = 200
    delay = 0.0
    received: list[tuple[dict[str, str], bytes]] = []  # noqa: RUF012 - test-local state

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers.items()), body))
        time.sleep(self.delay)
        answer = b'{"handled":true}'
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def handler_server() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"received": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/webhook", handler
    server.shutdown()
    server.server_close()


def test_forward_sends_exact_bytes_and_signature(
    start_listener: Start, handler_server: tuple[str, type[_Handler]]
) -> None:
    url, handler = handler_server
    listening = start_listener(
        "--secret", SECRET, "--forward-to", url, "-H", "X-Forwarded-By: mhw", "--format", "json"
    )
    body = event_body()
    headers = signed_headers(body)
    assert httpx.post(listening.url, content=body, headers=headers).status_code == 200
    line = wait_for(listening.json_lines, what="the forwarded line")[0]
    assert line["forwards"][0]["status"] == 200
    forwarded_headers, forwarded_body = handler.received[0]
    assert forwarded_body == body
    lowered = {k.lower(): v for k, v in forwarded_headers.items()}
    assert lowered["magic-hour-event-signature"] == headers["magic-hour-event-signature"]
    assert lowered["x-forwarded-by"] == "mhw"
    listening.stop()
    with Store(listening.store) as store:
        stored = store.get(line["id"])
    assert stored is not None and stored.forwards[0]["status"] == 200


@pytest.mark.parametrize("failure", ["down", "slow", "500"])
def test_failing_forward_target_never_blocks_receiving(
    start_listener: Start, handler_server: tuple[str, type[_Handler]], failure: str
) -> None:
    url, handler = handler_server
    if failure == "down":
        with socket.socket() as placeholder:
            placeholder.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{placeholder.getsockname()[1]}/webhook"
    elif failure == "slow":
        handler.delay = 3.0
    else:
        handler.status = 500
    listening = start_listener("--forward-to", url, "--forward-timeout", "1", "--format", "json")
    started = time.monotonic()
    for index in range(3):
        answer = httpx.post(listening.url, content=event_body(f"clxfwd{index:019d}"))
        assert answer.status_code == 200
    assert time.monotonic() - started < 2.0, "a failing forward delayed the answers"
    lines = wait_for(lambda: len(listening.json_lines()) == 3 and listening.json_lines())
    results = [line["forwards"][0] for line in lines]
    if failure == "500":
        assert all(result["status"] == 500 for result in results)
    else:
        assert all(result["status"] is None and result["error"] for result in results)
    listening.stop()
    assert len(listening.stored()) == 3


def test_mirror_status_answers_with_the_handlers_status(
    start_listener: Start, handler_server: tuple[str, type[_Handler]]
) -> None:
    url, handler = handler_server
    handler.status = 503
    listening = start_listener("--forward-to", url, "--mirror-status")
    assert httpx.post(listening.url, content=event_body()).status_code == 503


def test_expect_exits_0_once_the_events_arrive(start_listener: Start) -> None:
    listening = start_listener(
        "--secret", SECRET, "--expect", "image.completed,video.*", "--timeout", "20"
    )
    for kind in ("image.completed", "video.started"):
        body = event_body(kind=kind)
        httpx.post(listening.url, content=body, headers=signed_headers(body, "wrong-secret"))
    assert listening.process.poll() is None, "forged events must not satisfy --expect"
    for kind in ("image.completed", "video.started"):
        body = event_body(kind=kind)
        httpx.post(listening.url, content=body, headers=signed_headers(body))
    assert listening.process.wait(timeout=10) == 0
    assert "all expected events arrived" in listening.stderr()


def test_expect_times_out_with_exit_1_and_says_what_arrived(start_listener: Start) -> None:
    listening = start_listener(
        "--secret", SECRET, "--expect", "image.completed", "--count", "2", "--timeout", "1.5"
    )
    body = event_body(kind="image.completed")
    httpx.post(listening.url, content=body, headers=signed_headers(body))
    assert listening.process.wait(timeout=10) == 1
    assert "image.completed x1 of 2" in listening.stderr()


def test_port_in_use_is_one_line(mhw: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = mhw("listen", "--port", str(taken.getsockname()[1]), "--no-store")
    assert result.code == 1
    assert "cannot listen on 127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr


def test_sigterm_stops_cleanly(start_listener: Start) -> None:
    listening = start_listener()
    assert listening.stop(signal.SIGTERM) == 0
    assert "received 0 request(s)" in listening.stderr()


def test_store_file_is_private(start_listener: Start) -> None:
    listening = start_listener()
    httpx.post(listening.url, content=event_body())
    listening.stop()
    assert os.stat(listening.store).st_mode & 0o077 == 0


def test_verify_event_judges_a_stored_request_as_of_its_arrival(
    start_listener: Start, mhw: Any
) -> None:
    listening = start_listener("--secret", SECRET)
    body = event_body()
    old = int(time.time()) - 120  # within the window when it arrived, stale ten minutes later
    httpx.post(listening.url, content=body, headers=signed_headers(body, at=old))
    forged = event_body("clxforged00000000000000000")
    httpx.post(listening.url, content=forged, headers=signed_headers(forged, "not-the-secret"))
    listening.stop()
    store = str(listening.store)
    good = mhw("verify", "--event", "1", "--store", store, "--secret", SECRET)
    assert good.code == 0, good.stdout + good.stderr
    later = mhw(
        "verify", "-e", "1", "--store", store, "-s", SECRET, "--at", str(old + 900), "-f", "json"
    )
    assert json.loads(later.stdout)["reason"] == "timestamp_too_old"
    bad = mhw("verify", "-e", "2", "--store", store, "-s", SECRET, "-f", "json")
    assert bad.code == 1
    assert json.loads(bad.stdout)["hint_codes"] == ["wrong_secret"]
    missing = mhw("verify", "-e", "99", "--store", store, "-s", SECRET)
    assert missing.code == 2 and "no request 99" in missing.stderr


@pytest.mark.parametrize("resign", [False, True])
def test_replay_sends_the_stored_request_and_it_verifies_at_its_target(
    start_listener: Start, mhw: Any, resign: bool
) -> None:
    listening = start_listener("--secret", SECRET)
    body = event_body()
    old = int(time.time()) - 3600  # by replay time the original signature is an hour old
    httpx.post(listening.url, content=body, headers=signed_headers(body, at=old))
    listening.stop()
    target = start_listener("--secret", SECRET, "--format", "json", "--tolerance", "0")
    strict = start_listener("--secret", SECRET, "--format", "json", "--reject-invalid")
    store = str(listening.store)
    flags = ["--resign", "--secret", SECRET] if resign else []
    exact = mhw("events", "replay", "1", "--to", target.url, "--store", store, *flags)
    assert exact.code == 0, exact.stdout + exact.stderr
    line = wait_for(target.json_lines, what="the replayed request")[0]
    assert line["body"].encode() == body
    assert line["verification"] == "ok"
    resent = dict(line["headers"])["magic-hour-event-timestamp"]
    assert (resent != str(old)) is resign
    to_strict = mhw("events", "replay", "1", "--to", strict.url, "--store", store, *flags)
    assert to_strict.code == (0 if resign else 1)  # only a fresh signature passes a 5-minute window


def test_events_filter_shows_and_forwards_only_matching_but_stores_all(
    start_listener: Start, handler_server: tuple[str, type[_Handler]]
) -> None:
    url, handler = handler_server
    listening = start_listener(
        "--events", "image.*,video.completed", "--forward-to", url, "--format", "json"
    )
    for kind in ("video.started", "image.started", "video.completed", "audio.completed"):
        assert httpx.post(listening.url, content=event_body(kind=kind)).status_code == 200
    lines = wait_for(lambda: len(listening.json_lines()) == 2 and listening.json_lines())
    assert sorted(line["type"] for line in lines) == ["image.started", "video.completed"]
    forwarded = sorted(json.loads(body)["type"] for _, body in handler.received)
    assert forwarded == ["image.started", "video.completed"]
    listening.stop()
    assert len(listening.stored()) == 4


def test_verbose_prints_the_payload_and_download_links(start_listener: Start) -> None:
    listening = start_listener("-v")
    httpx.post(listening.url, content=event_body(PROJECT_ID, "audio.completed"))
    text = wait_for(lambda: "⬇" in listening.stdout() and listening.stdout())
    assert '"type": "audio.completed"' in text
    assert f"https://audio.magichour.ai/{PROJECT_ID}/" in text


def test_respond_delay_and_body_simulate_a_slow_handler(start_listener: Start) -> None:
    listening = start_listener("--respond-delay", "0.6", "--respond-body", '{"ok":1}')
    started = time.monotonic()
    answer = httpx.post(listening.url, content=event_body())
    assert time.monotonic() - started >= 0.6
    assert answer.json() == {"ok": 1}


def test_header_values_are_kept_as_sent_without_surrounding_whitespace(
    start_listener: Start,
) -> None:
    listening = start_listener()
    answer = raw_exchange(
        listening.port,
        b"POST /hook HTTP/1.1\r\nX-Inner: a  b\tc\r\nX-Padded: \t v \t\r\nX-Empty:\r\n"
        b"X-Blank:   \r\nX-Latin: caf\xe9\r\nContent-Length: 2\r\n\r\n{}",
    )
    assert b" 200 " in answer.split(b"\r\n", 1)[0]
    listening.stop()
    with Store(listening.store) as store:
        (request,) = store.requests()
    assert request.headers == [
        ("X-Inner", "a  b\tc"),
        ("X-Padded", "v"),
        ("X-Empty", ""),
        ("X-Blank", ""),
        ("X-Latin", "caf\xe9"),
        ("Content-Length", "2"),
    ]


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"POST / HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n{}", b" 400 "),
        (b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", b" 400 "),
        (b"POST / HTTP/1.1\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\n{}", b" 400 "),
        # Spaces then a control character: refused at once, not after quadratic backtracking.
        (b"POST / HTTP/1.1\r\nX-A: " + b" " * 30000 + b"\x01\r\n\r\n", b" 400 "),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            b" 501 ",
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;x\x01\r\n{}",
            b" 400 ",
        ),
    ],
)
def test_malformed_framing_is_refused_and_the_listener_carries_on(
    start_listener: Start, data: bytes, status: bytes
) -> None:
    listening = start_listener()
    answer = raw_exchange(listening.port, data)
    assert status in answer.split(b"\r\n", 1)[0], answer[:80]
    assert httpx.post(listening.url, content=event_body()).status_code == 200
    listening.stop()
    assert "Traceback" not in listening.stderr()
    assert len(listening.stored()) == 1


def test_a_flood_of_refused_requests_is_counted_not_drawn_line_by_line(
    start_listener: Start,
) -> None:
    """Garbage costs a sender nothing: a warning per refusal buried the screen (and cost the
    listener a drawn line each)."""
    listening = start_listener()
    for _ in range(200):
        assert b" 400 " in raw_exchange(listening.port, b"NOT HTTP\r\n\r\n").split(b"\r\n")[0]
    listening.stop()
    stderr = listening.stderr()
    warnings = [line for line in stderr.splitlines() if line.startswith("warning: refused a ")]
    assert 1 <= len(warnings) < 200, len(warnings)  # how many a second: the test below
    assert "200 refused at the HTTP level" in stderr


def test_refusals_are_shown_ten_a_second_then_counted(capsys: pytest.CaptureFixture[str]) -> None:
    """The rate limit, on the reporter's own clock: no wall-clock window to race."""
    now = [100.0]
    reporter = ListenTextReporter(clock=lambda: now[0])
    for second, refusals in ((0.0, 25), (0.5, 5), (1.0, 3), (2.5, 1)):
        now[0] = 100.0 + second
        for _ in range(refusals):
            reporter.report(Refused("127.0.0.1:1", 400, "malformed request"))
    warnings = capsys.readouterr().err.splitlines()
    shown = "warning: refused a request from 127.0.0.1:1: 400 malformed request"
    assert warnings == [
        *[shown] * 10,  # in the first second ten are shown, the other twenty counted
        "warning: refused 20 more request(s) in the last second",
        *[shown] * 3,
        shown,  # a quiet second later: shown, with no count to report
    ]


def test_mirror_status_stores_the_status_it_answered(
    start_listener: Start, handler_server: tuple[str, type[_Handler]]
) -> None:
    url, handler = handler_server
    handler.status = 503
    listening = start_listener("--forward-to", url, "--mirror-status", "--format", "json")
    assert httpx.post(listening.url, content=event_body()).status_code == 503
    line = wait_for(listening.json_lines, what="the mirrored delivery")[0]
    assert line["answer"] == 503 and line["forwards"][0]["status"] == 503
    listening.stop()
    assert [row[4] for row in listening.stored()] == [503]


def test_shutdown_during_a_delayed_answer_says_so(start_listener: Start) -> None:
    listening = start_listener("--respond-delay", "10")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(httpx.post, listening.url, content=event_body(), timeout=20)
        wait_for(lambda: listening.stored(), what="the request to be stored")
        listening.stop(signal.SIGTERM)
        answer = pending.result(timeout=20)
    assert answer.status_code == 503


def test_expect_counts_only_accepted_events_whatever_is_shown(start_listener: Start) -> None:
    listening = start_listener(
        "--secret",
        SECRET,
        "--path",
        "/webhook",
        "--events",
        "video.*",
        "--expect",
        "image.completed",
        "--timeout",
        "20",
    )
    base = listening.url.rsplit("/webhook", 1)[0]
    body = event_body(kind="image.completed")
    misrouted = httpx.post(f"{base}/elsewhere", content=body, headers=signed_headers(body))
    assert misrouted.status_code == 404
    assert listening.process.poll() is None, "a 404'd event must not satisfy --expect"
    httpx.post(f"{base}/webhook", content=body, headers=signed_headers(body))
    assert listening.process.wait(timeout=10) == 0  # though --events hides image.* lines


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--forward-to", "http://[::1"], "--forward-to"),
        (["--path", "webhook"], "must start with /"),
        (["--port", "70000"], "--port"),
        (["--expect", "video.completed", "--timeout", "1"], "needs a webhook secret"),
        (["--ready-file", "/nonexistent-dir/ready.json"], "no directory"),
        (["--secret", ""], "--secret is empty"),
        (["-H", "X-A: a\rb", "--forward-to", "http://127.0.0.1:9/"], "control characters"),
    ],
)
def test_listen_usage_errors(mhw: Any, args: list[str], message: str) -> None:
    result = mhw("listen", "--no-store", *args)
    assert result.code == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


NGROK_TOKEN = "2abcdefghijklmnopqrsTU_3vwxyzABCDEFGHIJKLmn"


@pytest.fixture
def fake_ngrok(tmp_path: Path) -> tuple[Path, Path]:
    """An ``ngrok`` launcher running the stand-in agent, and the file it records its runs in."""
    launcher = tmp_path / "bin" / "ngrok"
    launcher.parent.mkdir()
    agent = Path(__file__).with_name("fake_ngrok.py")
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{agent}" "$@"\n')
    launcher.chmod(0o755)
    return launcher, tmp_path / "agent-runs.jsonl"


def start_tunneled(start: Start, fake_ngrok: tuple[Path, Path], **agent_env: str) -> Listening:
    """``mhw listen --tunnel`` through the stand-in agent, verifying, with JSON output."""
    launcher, record = fake_ngrok
    env = {"NGROK_AUTHTOKEN": NGROK_TOKEN, "FAKE_NGROK_RECORD": str(record), **agent_env}
    args = ["--secret", SECRET, "--tunnel", "--ngrok-path", str(launcher), "--format", "json"]
    return start(*args, env=env)


def agent_pids(record: Path) -> list[int]:
    lines = record.read_text().splitlines() if record.exists() else []
    return [json.loads(line)["pid"] for line in lines if "start" in json.loads(line)["argv"]]


def test_tunnel_gives_a_public_url_that_reaches_the_listener(
    start_listener: Start, fake_ngrok: tuple[Path, Path]
) -> None:
    listening = start_tunneled(start_listener, fake_ngrok)
    record = fake_ngrok[1]
    # Output is written off the loop, so the status line may follow the ready file.
    status = wait_for(
        lambda: [line for line in listening.json_lines("status") if "public_url" in line],
        what="the listening status line",
    )[-1]
    public_url = status["public_url"]
    assert public_url and status["webhook_url"] == public_url.rstrip("/") + "/webhook"
    body = event_body()
    answer = httpx.post(status["webhook_url"], content=body, headers=signed_headers(body))
    assert answer.status_code == 200
    line = wait_for(listening.json_lines, what="the event through the tunnel")[0]
    assert line["verification"] == "ok" and line["body"].encode() == body
    banner = listening.stderr()
    assert public_url in banner and "Developer Hub" in banner
    assert NGROK_TOKEN not in banner + listening.stdout()
    pids = agent_pids(record)
    assert pids and all(os.path.exists(f"/proc/{pid}") for pid in pids)
    assert listening.stop() == 0
    wait_for(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in pids), what="no agent")


def test_token_in_the_environment_turns_the_tunnel_on_and_warns_without_a_secret(
    start_listener: Start, fake_ngrok: tuple[Path, Path]
) -> None:
    launcher, record = fake_ngrok
    listening = start_listener(
        "--ngrok-path",
        str(launcher),
        env={"NGROK_AUTHTOKEN": NGROK_TOKEN, "FAKE_NGROK_RECORD": str(record)},
    )
    wait_for(lambda: "anyone can post to it" in listening.stderr(), what="the warning")
    assert "public" in listening.stderr()
    listening.stop(signal.SIGTERM)
    pids = agent_pids(record)
    wait_for(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in pids), what="no agent")


def test_without_a_token_listen_is_local_and_says_how_to_get_a_public_url(
    start_listener: Start,
) -> None:
    listening = start_listener()
    assert "local only" in listening.stderr() and "ngrok_authtoken" in listening.stderr()


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--tunnel"], {}, "ERR_NGROK_4018"),
        (
            ["--tunnel", "--ngrok-path", "/nonexistent/ngrok"],
            {"NGROK_AUTHTOKEN": NGROK_TOKEN},
            "no ngrok agent",
        ),
    ],
)
def test_tunnel_failures_are_one_line(
    mhw: Any, args: list[str], env: dict[str, str], message: str
) -> None:
    result = mhw("listen", "--no-store", "--port", "0", *args, env=env)
    assert result.code == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert NGROK_TOKEN not in result.stderr


def test_a_dropped_tunnel_is_reported_and_its_return_too(
    start_listener: Start, fake_ngrok: tuple[Path, Path]
) -> None:
    listening = start_tunneled(start_listener, fake_ngrok, FAKE_NGROK_DROP_AFTER="0.3")

    def states() -> list[str]:
        return [line["state"] for line in listening.json_lines("status")]

    wait_for(lambda: "connected" in states(), what="reconnected", timeout=20)
    assert "reconnecting" in states()
    assert "reconnecting" in listening.stderr()


def test_stopping_with_a_slow_forward_waits_and_a_second_signal_quits(
    start_listener: Start, handler_server: tuple[str, type[_Handler]]
) -> None:
    url, handler = handler_server
    handler.delay = 8.0
    listening = start_listener("--forward-to", url, "--forward-timeout", "9")
    assert httpx.post(listening.url, content=event_body()).status_code == 200
    wait_for(lambda: handler.received, what="the forward to start")
    listening.process.send_signal(signal.SIGINT)
    wait_for(lambda: "Ctrl-C again" in listening.stderr(), what="the waiting message")
    started = time.monotonic()
    assert listening.stop() == 0
    assert time.monotonic() - started < 5


def test_receiving_and_triggering_leave_presentation_to_the_reporters() -> None:
    """The layer rule for ``listen`` and ``trigger``: what receives and what checks emit typed
    events; no module of theirs imports report/ or cli/, lazily or not."""
    import ast

    import mh_webhook_cli

    package = Path(mh_webhook_cli.__file__).parent
    modules = [*package.glob("receive/*.py"), *package.glob("magichour/trigger*.py")]
    modules.append(package / "send" / "forward.py")
    reaching_up = []
    for module in modules:
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            reaching_up += [
                f"{module.relative_to(package)}: {name}"
                for name in names
                if name.startswith(("mh_webhook_cli.report", "mh_webhook_cli.cli"))
            ]
    assert len(modules) >= 9, modules
    assert reaching_up == []


def test_the_verdict_of_a_good_signature_is_one_word_everywhere() -> None:
    """core.request spells it out rather than import signing into every reader of the store."""
    from mh_webhook_cli.core.request import VERIFIED
    from mh_webhook_cli.core.signing import Reason

    assert Reason.OK.value == VERIFIED


def test_json_lines_keep_repeated_headers_in_order(start_listener: Start) -> None:
    """Two signature headers are the ``ambiguous_headers`` case: a machine reading the JSON
    line must see both, as the store keeps them."""
    listening = start_listener("--format", "json", store=False)
    body = b'{"type":"video.started","payload":{"id":"clxrepeat"}}'
    with socket.create_connection(("127.0.0.1", listening.port)) as raw:
        raw.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nX-Repeat: 1\r\nX-Repeat: 2\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        assert raw.recv(4096).startswith(b"HTTP/1.1 200")
    (line,) = wait_for(listening.json_lines, what="the request's JSON line")
    assert [value for name, value in line["headers"] if name == "X-Repeat"] == ["1", "2"]
