"""What an attacker, or a bad copy-paste, feeds mhw: broken secrets, repeated signature
headers, timestamps past year 9999, devices, endless streams, deep JSON and huge captures.

Each gets one line and a documented exit code, or one verdict, from the real CLI.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import SECRET, Mhw, Result, wait_for

BODY = b'{"type":"video.completed","payload":{"id":"clx7uu86w0a5qp55yxz315r6r"}}'
NOT_UTF8 = SECRET + "\udcff"
"""What Python makes of a secret holding the byte 0xff in argv or the environment."""
CLOSED_URL = "http://127.0.0.1:9/hook"
"""Nothing listens there; the commands under test must stop before sending anything."""
FUTURE = "99999999999999"
"""About year 3,170,000: past anything datetime can show."""


def recipe(secret: str, timestamp: int | str, body: bytes) -> str:
    """Magic Hour's documented recipe, written independently of mhw."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def one_line_error(result: Result, *needles: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.code == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], result.stderr


@pytest.fixture
def body_file(tmp_path: Path) -> Path:
    path = tmp_path / "body.json"
    path.write_bytes(BODY)
    return path


# Secrets


def test_config_set_refuses_a_secret_that_is_not_utf8(
    mhw: Mhw, isolated_env: dict[str, str]
) -> None:
    result = mhw("config", "set", "webhook_secret", NOT_UTF8)
    one_line_error(result, "not valid UTF-8", "nothing saved")
    assert SECRET not in result.stderr
    assert not Path(isolated_env["MHW_CONFIG"]).exists()


def test_config_set_refuses_bytes_that_are_not_utf8_on_stdin(
    mhw: Mhw, isolated_env: dict[str, str]
) -> None:
    result = mhw("config", "set", "webhook_secret", input=SECRET.encode() + b"\xff\n")
    one_line_error(result, "not valid UTF-8")
    assert not Path(isolated_env["MHW_CONFIG"]).exists()


def _secret_command(command: str, body_file: Path) -> list[str]:
    return {
        "verify": ["verify", "-b", str(body_file), "--signature", "0" * 64, "--timestamp", "1"],
        "sign": ["sign", str(body_file)],
        "send": ["send", "--url", CLOSED_URL, "video.completed"],
        # --timeout: a listener that does not refuse its secret must still end the test.
        "listen": ["listen", "--no-store", "--port", "0", "--timeout", "3"],
    }[command]


@pytest.mark.parametrize("command", ["verify", "sign", "send", "listen"])
@pytest.mark.parametrize("source", ["flag", "env", "config"])
def test_a_secret_that_is_not_utf8_is_one_line_wherever_it_comes_from(
    mhw: Mhw, isolated_env: dict[str, str], body_file: Path, command: str, source: str
) -> None:
    args, env = _secret_command(command, body_file), {}
    if source == "flag":
        args += ["--secret", NOT_UTF8]
    elif source == "env":
        env["MAGIC_HOUR_WEBHOOK_SECRET"] = NOT_UTF8
    else:  # what `mhw config set` saved before it checked: JSON escapes the lone surrogate
        config = Path(isolated_env["MHW_CONFIG"])
        config.parent.mkdir(parents=True)
        config.write_text(json.dumps({"webhook_secret": NOT_UTF8}))
    result = mhw(*args, env=env)
    where = {"flag": "--secret", "env": "MAGIC_HOUR_WEBHOOK_SECRET", "config": "mhw config"}
    one_line_error(result, "webhook secret from " + where[source], "not valid UTF-8")
    assert SECRET not in result.stderr


def test_doctor_reports_settings_that_are_not_utf8_as_failed_checks(mhw: Mhw) -> None:
    result = mhw(
        "doctor",
        "--format",
        "json",
        env={
            "MAGIC_HOUR_API_KEY": NOT_UTF8,
            "MAGIC_HOUR_WEBHOOK_SECRET": NOT_UTF8,
            "MAGIC_HOUR_API_BASE": CLOSED_URL,
        },
    )
    assert result.code == 1, result.stderr
    assert result.stderr == ""
    text = result.stdout
    assert "API key from MAGIC_HOUR_API_KEY is not valid UTF-8" in text
    assert "webhook secret from MAGIC_HOUR_WEBHOOK_SECRET is not valid UTF-8" in text
    assert SECRET not in text


def test_a_secret_with_surrounding_whitespace_is_trimmed_with_a_warning(
    mhw: Mhw, body_file: Path
) -> None:
    padded = f"  {SECRET}\n"
    signed = mhw(
        "sign", str(body_file), "-t", "5", "-f", "json", env={"MAGIC_HOUR_WEBHOOK_SECRET": padded}
    )
    assert signed.code == 0, signed.stderr
    assert json.loads(signed.stdout)["signature"] == recipe(SECRET, 5, BODY)
    assert "warning: ignored the whitespace" in signed.stderr
    assert "MAGIC_HOUR_WEBHOOK_SECRET" in signed.stderr
    assert SECRET not in signed.stderr

    now = str(int(time.time()))
    checked = mhw(
        "verify", "-b", str(body_file), "--timestamp", now,
        "--signature", recipe(SECRET, now, BODY), "--secret", padded,
    )  # fmt: skip
    assert checked.code == 0, checked.stdout + checked.stderr
    assert "warning: ignored the whitespace around the webhook secret from --secret" in (
        checked.stderr
    )


def test_config_set_trims_whitespace_with_a_warning(mhw: Mhw, isolated_env: dict[str, str]) -> None:
    result = mhw("config", "set", "webhook_secret", f" {SECRET}\t")
    assert result.code == 0, result.stderr
    assert "warning: ignored the whitespace" in result.stderr
    assert json.loads(Path(isolated_env["MHW_CONFIG"]).read_text()) == {"webhook_secret": SECRET}


# Repeated signature headers, and timestamps past year 9999


def _raw_request(headers: list[tuple[str, str]], body: bytes = BODY) -> bytes:
    head = ["POST /webhook HTTP/1.1", "Host: 127.0.0.1"]
    head += [f"{name}: {value}" for name, value in headers]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _twice_signed(now: int) -> list[tuple[str, str]]:
    """A forged signature, then the genuine one in other letter case: on main the listener
    took the last (valid) and ``mhw verify`` the lower-case one (invalid)."""
    return [
        ("magic-hour-event-signature", recipe("forger", now, BODY)),
        ("Magic-Hour-Event-Signature", recipe(SECRET, now, BODY)),
        ("magic-hour-event-timestamp", str(now)),
    ]


@pytest.fixture
def listener(isolated_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """``mhw listen`` on a free loopback port with a store: (port, store path)."""
    ready, store = tmp_path / "ready.json", tmp_path / "events.sqlite3"
    command = [sys.executable, "-m", "mh_webhook_cli", "listen", "--port", "0", "--secret"]
    command += [SECRET, "--ready-file", str(ready), "--store", str(store), "--format", "json"]
    errors = tmp_path / "listen.stderr"
    with errors.open("wb") as sink:  # a file, not a pipe: nothing can block the listener
        process = subprocess.Popen(
            command, env=isolated_env, stdout=subprocess.DEVNULL, stderr=sink
        )
    try:
        wait_for(lambda: ready.exists() or process.poll() is not None, what="the ready file")
        assert process.poll() is None, errors.read_text()
        yield json.loads(ready.read_text())["port"], store
    finally:
        process.kill()
        process.wait()


def _post_raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        return connection.recv(65536)


def test_repeated_signature_headers_get_one_ambiguous_verdict_everywhere(
    mhw: Mhw, listener: tuple[int, Path], tmp_path: Path
) -> None:
    port, store = listener
    now = int(time.time())
    request = _raw_request(_twice_signed(now))
    assert _post_raw(port, request).startswith(b"HTTP/1.1 200")
    listed = mhw("events", "list", "--store", str(store), "--format", "json")
    [stored] = json.loads(listed.stdout)
    assert stored["verification"] == "ambiguous_headers"

    from_store = mhw("verify", "--event", str(stored["id"]), "--store", str(store), "-s", SECRET)
    capture = tmp_path / "twice.http"
    capture.write_bytes(request)
    from_file = mhw("verify", "--request", str(capture), "-s", SECRET, "-f", "json")
    for result in (from_store, from_file):
        assert result.code == 1, result.stdout + result.stderr
        assert "ambiguous_headers" in result.stdout
    assert json.loads(from_file.stdout)["reason"] == "ambiguous_headers"
    assert "repeats the magic-hour-event-signature" in from_store.stdout


def test_repeated_timestamp_headers_are_ambiguous_too(mhw: Mhw, tmp_path: Path) -> None:
    now = int(time.time())
    capture = tmp_path / "two-timestamps.http"
    capture.write_bytes(
        _raw_request(
            [
                ("Magic-Hour-Event-Timestamp", "1"),
                ("magic-hour-event-signature", recipe(SECRET, now, BODY)),
                ("magic-hour-event-timestamp", str(now)),
            ]
        )
    )
    result = mhw("verify", "--request", str(capture), "-s", SECRET, "-f", "json")
    assert result.code == 1
    assert json.loads(result.stdout)["reason"] == "ambiguous_headers"


@pytest.mark.parametrize("output", ["text", "json"])
@pytest.mark.parametrize("timestamp", [FUTURE, "9" * 20])
def test_a_timestamp_past_year_9999_is_a_verdict(
    mhw: Mhw, body_file: Path, output: str, timestamp: str
) -> None:
    result = mhw(
        "verify", "-b", str(body_file), "--timestamp", timestamp,
        "--signature", recipe(SECRET, timestamp, BODY), "-s", SECRET, "-f", output,
    )  # fmt: skip
    assert result.code == 1, result.stderr
    assert result.stderr == ""
    if output == "json":
        report = json.loads(result.stdout)
        assert report["reason"] == "timestamp_in_future"
        assert report["timestamp"] == int(timestamp)
        assert report["timestamp_utc"] is None
    else:
        assert "timestamp_in_future" in result.stdout
        assert "beyond year 9999" in result.stdout


def test_a_stored_request_with_a_timestamp_past_year_9999_is_a_verdict(
    mhw: Mhw, listener: tuple[int, Path]
) -> None:
    port, store = listener
    headers = [
        ("magic-hour-event-signature", recipe(SECRET, FUTURE, BODY)),
        ("magic-hour-event-timestamp", FUTURE),
    ]
    assert _post_raw(port, _raw_request(headers)).startswith(b"HTTP/1.1 200")
    [stored] = json.loads(mhw("events", "list", "--store", str(store), "-f", "json").stdout)
    assert stored["verification"] == "timestamp_in_future"
    result = mhw("verify", "--event", str(stored["id"]), "--store", str(store), "-s", SECRET)
    assert result.code == 1, result.stderr
    assert "timestamp_in_future" in result.stdout
    assert "beyond year 9999" in result.stdout


def test_verify_at_refuses_a_time_that_is_not_a_number(mhw: Mhw, body_file: Path) -> None:
    args = ["verify", "-b", str(body_file), "--timestamp", "1", "--signature", "0" * 64]
    one_line_error(mhw(*args, "-s", SECRET, "--at", "nan"), "--at")


# Input files: devices, endless streams, size


READERS = {
    "sign": ["sign", "{}", "-s", SECRET],
    "verify --request": ["verify", "--request", "{}", "-s", SECRET],
    "verify --body-file": [
        "verify", "--body-file", "{}", "--signature", "0" * 64, "--timestamp", "1", "-s", SECRET,
    ],
    "send --data": ["send", "--url", CLOSED_URL, "--data", "@{}", "-s", SECRET],
    "fixtures validate": ["fixtures", "validate", "{}"],
}  # fmt: skip


def _reading(command: str, path: str) -> list[str]:
    return [arg.replace("{}", path) for arg in READERS[command]]


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
@pytest.mark.parametrize("command", list(READERS))
def test_a_device_is_refused_at_once(mhw: Mhw, command: str, device: str) -> None:
    started = time.monotonic()
    result = mhw(*_reading(command, device))
    one_line_error(result, device, "is a device")
    assert time.monotonic() - started < 10  # one process start; main read until memory ran out


@pytest.mark.parametrize("command", ["sign", "verify --request", "fixtures validate"])
def test_a_device_on_stdin_is_refused(
    isolated_env: dict[str, str], tmp_path: Path, command: str
) -> None:
    with open("/dev/zero", "rb") as zero:
        completed = subprocess.run(
            [sys.executable, "-m", "mh_webhook_cli", *_reading(command, "-")],
            stdin=zero,
            capture_output=True,
            env=isolated_env,
            cwd=tmp_path,
            timeout=30,
            check=False,
        )
    assert completed.returncode == 2
    assert completed.stderr.decode().strip().splitlines() == [completed.stderr.decode().strip()]
    assert b"on stdin is a device" in completed.stderr


def _feed_forever(path: str | int) -> threading.Thread:
    """Write to a FIFO or a pipe until its reader goes away."""

    def feed() -> None:
        chunk = b"x" * 65536
        try:
            with open(path, "wb", buffering=0) as sink:
                while True:
                    sink.write(chunk)
        except (BrokenPipeError, OSError):
            pass

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("command", list(READERS))
def test_an_endless_fifo_is_refused_at_the_limit(mhw: Mhw, tmp_path: Path, command: str) -> None:
    fifo = tmp_path / "endless"
    os.mkfifo(fifo)
    feeder = _feed_forever(str(fifo))
    result = mhw(*_reading(command, str(fifo)))
    one_line_error(result, str(fifo), "larger than 16 MiB", "MHW_MAX_INPUT_BYTES")
    feeder.join(timeout=10)
    assert not feeder.is_alive()


def test_a_100_mb_capture_of_20m_header_lines_on_stdin_is_refused_at_the_limit(
    isolated_env: dict[str, str], tmp_path: Path
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "mh_webhook_cli", "verify", "-s", SECRET],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=isolated_env,
        cwd=tmp_path,
    )
    assert process.stdin is not None and process.stderr is not None
    lines = b"a:b\r\n" * 200_000  # 1 MB: a hundred of them, 20M header lines in all
    try:
        process.stdin.write(b"POST / HTTP/1.1\r\n")
        for _ in range(100):
            process.stdin.write(lines)
        process.stdin.close()
    except BrokenPipeError:
        pass  # mhw stopped reading at the limit, as it should
    stderr = process.stderr.read()
    assert process.wait(timeout=30) == 2
    assert stderr.decode().strip().splitlines() == [
        "error: the request on stdin is larger than 16 MiB: set MHW_MAX_INPUT_BYTES to a "
        "larger number of bytes to read it"
    ]


def test_the_limit_is_raised_with_mhw_max_input_bytes(mhw: Mhw, tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b'{"type":"video.completed","pad":"' + b"x" * (16 * 1024 * 1024) + b'"}')
    one_line_error(mhw("sign", str(big), "-s", SECRET), "larger than 16 MiB")
    raised = mhw("sign", str(big), "-s", SECRET, env={"MHW_MAX_INPUT_BYTES": "20000000"})
    assert raised.code == 0, raised.stderr
    one_line_error(
        mhw("sign", str(big), "-s", SECRET, env={"MHW_MAX_INPUT_BYTES": "lots"}),
        "MHW_MAX_INPUT_BYTES must be a whole number of bytes",
    )


def test_a_capture_of_a_million_tiny_header_lines_is_refused(mhw: Mhw, tmp_path: Path) -> None:
    capture = tmp_path / "headers.http"
    capture.write_bytes(b"POST / HTTP/1.1\n" + b"a:\n" * 1_000_000 + b"\n" + BODY)
    result = mhw("verify", "--request", str(capture), "-s", SECRET)
    one_line_error(result, "more than 1000 header lines")


def test_a_capture_takes_1000_header_lines_and_no_more() -> None:
    from mh_webhook_cli.core.http_text import parse_request
    from mh_webhook_cli.errors import CaptureError

    def capture(count: int) -> bytes:
        return b"POST / HTTP/1.1\n" + b"x-h: v\n" * count + b"\n" + BODY

    assert len(parse_request(capture(1000)).request.headers) == 1000
    with pytest.raises(CaptureError, match="more than 1000 header lines"):
        parse_request(capture(1001))


@pytest.mark.parametrize("size", [b"-4", b"+1", b"0x1", b"1_0"])
def test_a_chunk_size_that_is_not_hex_digits_is_one_line(
    mhw: Mhw, tmp_path: Path, size: bytes
) -> None:
    """``int(size, 16)`` takes all of these; a negative size walked back into the capture and
    read the same chunk again, forever."""
    capture = tmp_path / "chunks.http"
    capture.write_bytes(b"POST / HTTP/1.1\nTransfer-Encoding: chunked\n\n1\nA\n" + size + b"\n")
    one_line_error(mhw("verify", "--request", str(capture), "-s", SECRET), "bad chunk size")


@pytest.mark.parametrize("length", [b"\xb2", b"9" * 5000])
def test_a_content_length_that_is_not_ascii_digits_is_one_line(
    mhw: Mhw, tmp_path: Path, length: bytes
) -> None:
    capture = tmp_path / "length.http"
    capture.write_bytes(b"POST / HTTP/1.1\nContent-Length: " + length + b"\n\n" + BODY)
    one_line_error(mhw("verify", "--request", str(capture), "-s", SECRET), "is not a number")


def test_a_config_file_that_is_a_device_is_one_line(mhw: Mhw) -> None:
    one_line_error(mhw("config", "list", env={"MHW_CONFIG": "/dev/zero"}), "is a device")


def test_an_ngrok_config_that_is_a_device_counts_as_no_token(mhw: Mhw) -> None:
    result = mhw("doctor", "--format", "json", env={"NGROK_CONFIG": "/dev/zero"})
    assert result.stderr == ""
    [ngrok] = [
        check for check in json.loads(result.stdout)["checks"] if check["name"] == "ngrok_authtoken"
    ]
    assert "not set" in ngrok["detail"]


@pytest.mark.parametrize("source", ["endless pipe", "/dev/zero"])
def test_config_set_from_an_endless_stdin_is_one_line(
    isolated_env: dict[str, str], tmp_path: Path, source: str
) -> None:
    if source == "/dev/zero":
        stdin, feeder, expected = os.open(source, os.O_RDONLY), None, "is a device"
    else:
        stdin, sink = os.pipe()
        feeder, expected = _feed_forever(sink), "is larger than 4 KiB"
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "mh_webhook_cli", "config", "set", "webhook_secret"],
            stdin=stdin,
            capture_output=True,
            env=isolated_env,
            cwd=tmp_path,
            timeout=30,
            check=False,
        )
    finally:
        os.close(stdin)
    assert completed.returncode == 2
    [line] = completed.stderr.decode().splitlines()
    assert line.startswith("error: the value for webhook_secret on stdin ") and expected in line
    assert not Path(isolated_env["MHW_CONFIG"]).exists()
    if feeder is not None:
        feeder.join(timeout=10)
        assert not feeder.is_alive()


# Deep JSON


def test_deep_inline_data_is_one_line(mhw: Mhw) -> None:
    deep = "[" * 60_000 + "]" * 60_000  # as deep as one argument can be (128 KiB)
    one_line_error(mhw("send", "--url", CLOSED_URL, "--data", deep, "-s", SECRET), "too deeply")


def test_a_deep_data_file_is_one_line(mhw: Mhw, tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    args = ["send", "--url", CLOSED_URL, "--data", f"@{deep}", "-s", SECRET]
    one_line_error(mhw(*args), "too deeply")


def test_set_on_a_deep_event_is_one_line(mhw: Mhw) -> None:
    event = '{"type":"video.completed","a":' + "[" * 600 + "]" * 600 + "}"
    args = ["send", "--url", CLOSED_URL, "--data", event, "--set", "b=1", "-s", SECRET]
    one_line_error(mhw(*args), "nested this deeply")


def test_a_deep_config_file_is_one_line(mhw: Mhw, isolated_env: dict[str, str]) -> None:
    config = Path(isolated_env["MHW_CONFIG"])
    config.parent.mkdir(parents=True)
    config.write_text("[" * 100_000 + "]" * 100_000)
    one_line_error(mhw("config", "list"), "nested too deeply")
