"""Bad input gets one line in mhw's words and exit 2: no traceback, no library's wording."""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import SECRET, Mhw

LOOPBACK_CLOSED = "http://127.0.0.1:9/"
"""Nothing listens on the discard port: a command refused before sending never gets there."""

LEAKS = ("Traceback", "Value error,", "Input should be", "Errno", "pydantic")


def one_line_usage_error(result: object, *expected: str) -> None:
    code, stderr = result.code, result.stderr  # type: ignore[attr-defined]
    assert code == 2, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    for words in expected:
        assert words in stderr, stderr
    for leak in LEAKS:
        assert leak not in stderr, stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--events", "vidoe.*"], ["--events 'vidoe.*' matches no event", "video.completed"]),
        (["--events", "video.*,image.complete"], ["--events 'image.complete' matches no event"]),
        (["--forward-to", "vidoe.*=http://127.0.0.1:9000/"], ["--forward-to 'vidoe.*'"]),
        (
            ["--secret", SECRET, "--expect", "image.complete", "--timeout", "5"],
            ["--expect 'image.complete' matches no event"],
        ),
        (["--secret", SECRET, "--expect", "image.completed"], ["--expect needs --timeout"]),
        (["--host", "999.1.1.1"], ["'999.1.1.1' is not an IP address"]),
        (["--host", "bad_host!"], ["neither an IP address nor a host name"]),
        (["--port", "abc"], ["'--port': 'abc' is not a whole number"]),
        (["--port", "70000"], ["'--port': 70000 is more than 65535"]),
        (["--forward-to", "http://127.0.0.1:99999/"], ["the port '99999' is not a number"]),
        (["--forward-to", "localhost:8000/hook"], ["has no scheme: write http://localhost"]),
    ],
)
def test_listen_refuses_with_one_line(mhw: Mhw, args: list[str], expected: list[str]) -> None:
    one_line_usage_error(mhw("listen", "--no-store", "--no-tunnel", *args), *expected)


def test_a_glob_that_matches_known_events_is_accepted(mhw: Mhw, tmp_path: Path) -> None:
    """Only the typo is refused: the listener starts with real patterns (and stops at once)."""
    ready = tmp_path / "ready.json"
    result = mhw(
        *("listen", "--no-store", "--no-tunnel", "--port", "0", "--secret", SECRET),
        *("--events", "video.*,image.completed", "--expect", "audio.*", "--timeout", "0.2"),
        *("--forward-to", "image.*=http://127.0.0.1:9/", "--ready-file", str(ready)),
    )
    assert result.code == 1, result.stderr  # --expect timed out: it did run
    assert json.loads(ready.read_text())["port"] > 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["video.completed", "--url", "http://127.0.0.1:99999/"], ["the port '99999'"]),
        (["video.completed", "--url", "127.0.0.1:8000/webhook"], ["has no scheme"]),
        (["vidoe.completed", "--url", LOOPBACK_CLOSED], ["unknown event 'vidoe.completed'"]),
        (["--lifecycle", "vidoe", "--url", LOOPBACK_CLOSED], ["'vidoe' is not one of"]),
        (["video.completed", "--url", LOOPBACK_CLOSED, "--count", "x"], ["'x' is not a whole"]),
        (["video.completed", "--url", LOOPBACK_CLOSED, "-c", "5"], ["--concurrency", "--count"]),
        (
            ["--url", LOOPBACK_CLOSED, "--data", "event.json"],
            ["--data is not JSON", "write --data @event.json"],
        ),
    ],
)
def test_send_refuses_with_one_line(mhw: Mhw, args: list[str], expected: list[str]) -> None:
    one_line_usage_error(mhw("send", "--secret", SECRET, *args), *expected)


def test_json_that_is_not_a_path_gets_no_file_hint(mhw: Mhw) -> None:
    result = mhw("send", "--secret", SECRET, "--url", LOOPBACK_CLOSED, "--data", '{"type": }')
    one_line_usage_error(result, "--data is not JSON")
    assert "@" not in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["trigger", "vidoe"], ["'vidoe' is not one of 'image', 'audio', 'video'"]),
        (["events", "show", "abc"], ["'abc' is not a whole number"]),
        (["emulate", "--fail-rate", "lots"], ["'lots' is not a number"]),
        (["sign", "--secret", SECRET, "--curl", "localhost:8000/webhook"], ["--curl", "scheme"]),
        (["emulate", "--events", "x*"], ["--events 'x*' matches no event"]),
    ],
)
def test_other_commands_refuse_with_one_line(
    mhw: Mhw, args: list[str], expected: list[str]
) -> None:
    one_line_usage_error(mhw(*args, input=b"{}"), *expected)


def test_config_set_checks_api_base_before_saving(mhw: Mhw, isolated_env: dict[str, str]) -> None:
    result = mhw("config", "set", "api_base", "localhost:20788")
    one_line_usage_error(result, "api_base 'localhost:20788' has no scheme", "nothing saved")
    config = Path(isolated_env["MHW_CONFIG"])
    assert not config.exists() or "api_base" not in json.loads(config.read_text())
    assert mhw("config", "set", "api_base", "http://localhost:20788").code == 0


@pytest.fixture
def resetting_server() -> Iterator[str]:
    """A loopback server that resets every connection it accepts (SO_LINGER 0)."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            connection.recv(65536)
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/"
    stop.set()
    thread.join(timeout=5)
    server.close()


def test_a_reset_connection_is_said_in_words(mhw: Mhw, resetting_server: str) -> None:
    """The load test's summary names what happened, never Python's ConnectionResetError."""
    result = mhw(
        *("send", "video.completed", "--url", resetting_server, "--secret", SECRET),
        *("--count", "3", "--format", "json"),
    )
    assert result.code == 1
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["errors"] == {
        "the server reset the connection before answering (it crashed, or is full)": 3
    }
    for leak in ("Errno", "ConnectionResetError"):
        assert leak not in result.stdout + result.stderr
