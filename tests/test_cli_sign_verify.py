"""``mhw sign`` and ``mhw verify`` driven as a user drives them."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from conftest import SECRET, Mhw

BODY = (
    b'{"type":"video.completed","payload":{"id":"clx7uu86w0a5qp55yxz315r6r",'
    b'"status":"complete","name":"Caf\xc3\xa9"}}'
)


def recipe(secret: str, timestamp: int | str, body: bytes) -> str:
    """Magic Hour's documented recipe, written independently of mhw."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


@pytest.fixture
def body_file(tmp_path: Path) -> Path:
    path = tmp_path / "body.json"
    path.write_bytes(BODY)
    return path


def raw_request(
    body: bytes, signature: str, timestamp: int | str, newline: bytes = b"\r\n"
) -> bytes:
    lines = [
        b"POST /webhook HTTP/1.1",
        b"Host: localhost:8787",
        b"Content-Type: application/json",
        b"Magic-Hour-Event-Signature: " + signature.encode(),
        b"Magic-Hour-Event-Timestamp: " + str(timestamp).encode(),
        b"Content-Length: %d" % len(body),
        b"",
        body,
    ]
    return newline.join(lines)


def test_sign_prints_the_two_headers(mhw: Mhw, body_file: Path) -> None:
    result = mhw("sign", str(body_file), "--secret", SECRET, "--timestamp", "1730742038")
    assert result.code == 0
    assert result.stdout.splitlines() == [
        f"magic-hour-event-signature: {recipe(SECRET, 1730742038, BODY)}",
        "magic-hour-event-timestamp: 1730742038",
    ]


def test_sign_reads_stdin_and_defaults_to_now(mhw: Mhw) -> None:
    before = int(time.time())
    result = mhw("sign", "-", "--secret", SECRET, "--format", "json", input=BODY)
    data = json.loads(result.stdout)
    assert before <= data["timestamp"] <= int(time.time())
    assert data["signature"] == recipe(SECRET, data["timestamp"], BODY)


def test_sign_uses_the_secret_from_the_environment(mhw: Mhw, body_file: Path) -> None:
    result = mhw(
        "sign",
        "--body-file",
        str(body_file),
        "-t",
        "5",
        "-f",
        "json",
        env={"MAGIC_HOUR_WEBHOOK_SECRET": "from-env-secret"},
    )
    assert json.loads(result.stdout)["signature"] == recipe("from-env-secret", 5, BODY)


def test_sign_without_any_secret_is_a_usage_error(mhw: Mhw, body_file: Path) -> None:
    result = mhw("sign", str(body_file))
    assert result.code == 2
    assert "no webhook secret" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


class _Recorder(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        _Recorder.received.append((dict(self.headers.items()), self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    _Recorder.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize("from_stdin", [False, True])
def test_curl_command_sends_exact_signed_bytes(
    mhw: Mhw, body_file: Path, recorder: str, from_stdin: bool
) -> None:
    body = BODY + b"\n"  # a final newline that curl -d @file would have dropped
    body_file.write_bytes(body)
    args = ["sign", "--secret", SECRET, "--curl", recorder]
    result = mhw(*args, "-", input=body) if from_stdin else mhw(*args, str(body_file))
    assert result.code == 0, result.stderr
    bash = shutil.which("bash") or "/bin/bash"
    subprocess.run([bash, "-c", result.stdout], check=True, capture_output=True, timeout=20)
    headers, received = _Recorder.received[-1]
    assert received == body
    assert headers["magic-hour-event-signature"] == recipe(
        SECRET, headers["magic-hour-event-timestamp"], body
    )


@pytest.mark.parametrize("newline", [b"\r\n", b"\n"])
def test_verify_a_raw_request_file(mhw: Mhw, tmp_path: Path, newline: bytes) -> None:
    now = int(time.time())
    capture = tmp_path / "request.http"
    capture.write_bytes(raw_request(BODY, recipe(SECRET, now, BODY), now, newline))
    result = mhw("verify", "--request", str(capture), "--secret", SECRET)
    assert result.code == 0, result.stdout + result.stderr
    assert "✓ valid" in result.stdout


def test_verify_reads_a_raw_request_on_stdin(mhw: Mhw) -> None:
    now = int(time.time())
    request = raw_request(BODY, recipe(SECRET, now, BODY), now)
    assert mhw("verify", "--secret", SECRET, input=request).code == 0
    assert mhw("verify", "--request", "-", "--secret", SECRET, input=request).code == 0


def test_verify_body_file_with_header_values(mhw: Mhw, body_file: Path) -> None:
    now = int(time.time())
    args = ["verify", "--body-file", str(body_file), "--timestamp", str(now), "--secret", SECRET]
    assert mhw(*args, "--signature", recipe(SECRET, now, BODY)).code == 0
    bad = mhw(*args, "--signature", recipe("another-secret", now, BODY), "-f", "json")
    assert bad.code == 1
    assert json.loads(bad.stdout)["reason"] == "signature_mismatch"


def test_verify_json_explains_a_reserialized_body(mhw: Mhw, tmp_path: Path) -> None:
    now = int(time.time())
    pretty = json.dumps(json.loads(BODY), indent=2).encode()
    capture = tmp_path / "request.http"
    capture.write_bytes(raw_request(pretty, recipe(SECRET, now, BODY), now))
    result = mhw("verify", "-r", str(capture), "-s", SECRET, "--format", "json")
    assert result.code == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert report["reason"] == "signature_mismatch"
    assert "body_pretty_printed" in report["hint_codes"]
    assert report["expected_signature"] == recipe(SECRET, now, pretty)
    assert report["received_signature"] == recipe(SECRET, now, BODY)
    assert report["secrets"] == ["mhw_live_…cdef"]
    assert all(isinstance(hint, str) for hint in report["hints"])


def test_verify_text_shows_verdict_reason_hints_and_age(mhw: Mhw, tmp_path: Path) -> None:
    then = int(time.time()) - 7200
    capture = tmp_path / "old.http"
    capture.write_bytes(raw_request(BODY, recipe(SECRET, then, BODY), then))
    result = mhw("verify", "-r", str(capture), "-s", SECRET)
    assert result.code == 1
    assert "timestamp_too_old" in result.stdout
    assert "2 hours ago" in result.stdout
    assert "genuine" in result.stdout
    assert "--at" in result.stdout


def test_verify_at_judges_an_old_capture_as_of_then(mhw: Mhw, tmp_path: Path) -> None:
    capture = tmp_path / "old.http"
    capture.write_bytes(raw_request(BODY, recipe(SECRET, 1730742038, BODY), 1730742038))
    args = ["verify", "-r", str(capture), "-s", SECRET]
    assert mhw(*args).code == 1
    assert mhw(*args, "--at", "1730742100").code == 0
    assert mhw(*args, "--at", "2024-11-04T17:41:00Z").code == 0
    assert mhw(*args, "--tolerance", "0").code == 0
    bad_time = mhw(*args, "--at", "yesterday")
    assert bad_time.code == 2 and "ISO 8601" in bad_time.stderr


def test_verify_option_overrides_captured_header(mhw: Mhw, tmp_path: Path) -> None:
    now = int(time.time())
    capture = tmp_path / "request.http"
    capture.write_bytes(raw_request(BODY, "0" * 64, now))
    args = ["verify", "-r", str(capture), "-s", SECRET]
    assert mhw(*args).code == 1
    assert mhw(*args, "--signature", recipe(SECRET, now, BODY)).code == 0


def test_verify_accepts_several_secrets(mhw: Mhw, body_file: Path) -> None:
    now = int(time.time())
    result = mhw(
        "verify",
        "-b",
        str(body_file),
        "--signature",
        recipe("new-secret-0123456789", now, BODY),
        "--timestamp",
        str(now),
        "-s",
        "old-secret-0123456789",
        "-s",
        "new-secret-0123456789",
        "-f",
        "json",
    )
    assert result.code == 0
    assert json.loads(result.stdout)["matched_secret_index"] == 1


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["-b", "body.json"], b"", "--body-file needs --signature and --timestamp"),
        (["-b", "body.json", "-r", "x.http"], b"", "not both"),
        (["-r", "missing.http"], b"", "cannot read request missing.http"),
        ([], b"", "stdin was empty"),
        ([], BODY, "not an HTTP request"),
        (["--tolerance", "-1"], b"", "--tolerance"),
        (["--format", "yaml"], b"", "--format"),
    ],
)
def test_verify_usage_errors_are_one_line_and_exit_2(
    mhw: Mhw, body_file: Path, args: list[str], stdin: bytes, message: str
) -> None:
    result = mhw("verify", "-s", SECRET, *args, input=stdin)
    assert result.code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_secret_is_never_printed_in_full(mhw: Mhw, body_file: Path) -> None:
    now = int(time.time())
    for output_format in ("text", "json"):
        for signature in (recipe(SECRET, now, BODY), "0" * 64):
            result = mhw(
                "verify",
                "-b",
                str(body_file),
                "--signature",
                signature,
                "--timestamp",
                str(now),
                "-s",
                SECRET,
                "-f",
                output_format,
            )
            assert SECRET not in result.stdout + result.stderr
            assert "mhw_live_…cdef" in result.stdout


def test_no_color_is_honoured(mhw: Mhw, body_file: Path) -> None:
    args = [
        "verify",
        "-b",
        str(body_file),
        "--signature",
        "0" * 64,
        "--timestamp",
        "1",
        "-s",
        SECRET,
    ]
    colored = mhw(*args, env={"FORCE_COLOR": "1", "TERM": "xterm-256color"})
    plain = mhw(*args, env={"FORCE_COLOR": "1", "TERM": "xterm-256color", "NO_COLOR": "1"})
    assert "\x1b[1;31m" in colored.stdout
    assert "\x1b[1;31m" not in plain.stdout and "31m" not in plain.stdout
    piped = mhw(*args)
    assert "\x1b[" not in piped.stdout


def test_verify_from_a_store_that_cannot_be_read_fails_at_run_time(
    mhw: Mhw, tmp_path: Path
) -> None:
    """A store the disk cannot give back is a failure (exit 1), not bad usage (2): the
    command line was right. One line names the file, no traceback."""
    path = tmp_path / "notes.txt"
    path.write_text("these are notes, not a capture store\n")
    result = mhw("verify", "-e", "1", "--store", str(path), "-s", SECRET)
    assert result.code == 1
    assert result.stderr.count("\n") == 1
    assert "cannot open capture store" in result.stderr and str(path) in result.stderr


def test_verify_at_accepts_a_duration_as_events_since_does(mhw: Mhw, tmp_path: Path) -> None:
    """One time parser for every command: --at 5m is five minutes ago, as --since 5m is."""
    now = int(time.time())
    capture = tmp_path / "recent.http"
    stamp = now - 3600
    capture.write_bytes(raw_request(BODY, recipe(SECRET, stamp, BODY), stamp))
    args = ["verify", "-r", str(capture), "-s", SECRET]
    assert mhw(*args).code == 1  # an hour old: too old now
    assert mhw(*args, "--at", "58m").code == 0  # as of 58 minutes ago: two minutes old
    bad = mhw(*args, "--at", "5 fortnights")
    assert bad.code == 2 and "duration" in bad.stderr
