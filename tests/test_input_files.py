"""Files named by path, through the real CLI: config files are regular files or nothing, and
an input FIFO is waited on for its writer, never opened in a way that hangs on its own."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import SECRET, Mhw, Result, wait_for

BODY = b'{"type":"video.completed","payload":{"id":"clx7uu86w0a5qp55yxz315r6r"}}'
PROMPTLY = 10.0
"""Seconds: one process start, with room for a loaded machine; main never returned."""


def one_line_error(result: Result, *needles: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.code == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], result.stderr


def signed_capture() -> bytes:
    now = int(time.time())
    signature = hmac.new(SECRET.encode(), f"{now}.".encode() + BODY, hashlib.sha256).hexdigest()
    head = [
        b"POST /webhook HTTP/1.1",
        b"Magic-Hour-Event-Signature: " + signature.encode(),
        b"Magic-Hour-Event-Timestamp: %d" % now,
        b"Content-Length: %d" % len(BODY),
    ]
    return b"\r\n".join([*head, b"", BODY])


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


def test_a_config_file_that_is_a_fifo_with_no_writer_is_one_line_at_once(
    mhw: Mhw, fifo: Path
) -> None:
    """Opening a FIFO waits for a writer: on main ``mhw config list`` waited forever."""
    started = time.monotonic()
    result = mhw("config", "list", env={"MHW_CONFIG": str(fifo)})
    one_line_error(result, f"config file {fifo} is not a regular file")
    assert time.monotonic() - started < PROMPTLY


def test_a_config_file_that_is_a_directory_is_one_line(mhw: Mhw, tmp_path: Path) -> None:
    one_line_error(
        mhw("config", "list", env={"MHW_CONFIG": str(tmp_path)}), "is not a regular file"
    )


def test_an_ngrok_config_that_is_a_fifo_counts_as_no_token_at_once(mhw: Mhw, fifo: Path) -> None:
    started = time.monotonic()
    result = mhw("doctor", "--format", "json", env={"NGROK_CONFIG": str(fifo)})
    assert time.monotonic() - started < PROMPTLY
    assert result.stderr == ""
    [ngrok] = [
        check for check in json.loads(result.stdout)["checks"] if check["name"] == "ngrok_authtoken"
    ]
    assert "not set" in ngrok["detail"]


def test_a_config_file_past_its_limit_does_not_point_at_mhw_max_input_bytes(
    mhw: Mhw, tmp_path: Path
) -> None:
    """The config limit is fixed: the variable that raises the input limit does not raise it."""
    config = tmp_path / "big.json"
    config.write_bytes(b'{"api_key": "' + b"x" * (1024 * 1024) + b'"}')
    result = mhw("config", "list", env={"MHW_CONFIG": str(config), "MHW_MAX_INPUT_BYTES": "9" * 9})
    one_line_error(result, f"config file {config} is larger than 1 MiB")
    assert "MHW_MAX_INPUT_BYTES" not in result.stderr


def test_verify_reads_a_fifo_whose_writer_is_waiting(mhw: Mhw, fifo: Path) -> None:
    capture = signed_capture()

    def write() -> None:
        with open(fifo, "wb") as sink:  # blocks until mhw opens the FIFO to read
            sink.write(capture)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    result = mhw("verify", "--request", str(fifo), "--secret", SECRET)
    assert result.code == 0, result.stdout + result.stderr
    assert "✓ valid" in result.stdout
    writer.join(timeout=10)


def test_verify_waits_for_a_fifo_writer_that_comes_after_it(
    isolated_env: dict[str, str], tmp_path: Path, fifo: Path
) -> None:
    """Opened without blocking, the FIFO has no writer yet: mhw must wait for one, as ``cat``
    does, rather than read an empty input."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mh_webhook_cli", "verify", "--request", str(fifo), "-s", SECRET],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=isolated_env,
        cwd=tmp_path,
    )
    try:

        def open_once_mhw_reads() -> int | None:
            try:  # without a reader, a non-blocking open for writing fails (ENXIO)
                return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                assert process.poll() is None, process.communicate()
                return None

        sink = wait_for(open_once_mhw_reads, what="mhw to open the FIFO")
        os.set_blocking(sink, True)
        with open(sink, "wb") as writer:
            writer.write(signed_capture())
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stdout.decode() + stderr.decode()
    assert "✓ valid" in stdout.decode()
