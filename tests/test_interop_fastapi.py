"""mhw against the handler from Magic Hour's "Create a Webhook" guide, run as its users run it."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import SECRET, Mhw

ANCHOR = Path(__file__).resolve().parents[2] / "shared" / "anchor"

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None,
        reason="fastapi and uvicorn are not installed (pip install -e '.[dev]' installs them)",
    ),
    pytest.mark.skipif(
        not (ANCHOR / "seed_fastapi_handler.py").exists(),
        reason=f"the guide's handler is not at {ANCHOR}",
    ),
]


@pytest.fixture
def seed_handler(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``uvicorn seed_fastapi_handler:app`` on a free port; yields its URL and its log."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "uvicorn.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "seed_fastapi_handler:app", "--port", str(port)],
            cwd=ANCHOR,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={"PYTHONUNBUFFERED": "1", "PATH": "/usr/bin:/bin"},
        )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert server.poll() is None, log.read_text()
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/webhook", log
    server.terminate()
    server.wait(timeout=10)


def test_all_nine_fixtures_are_accepted_by_the_guides_handler(
    mhw: Mhw, seed_handler: tuple[str, Path]
) -> None:
    url, log = seed_handler
    result = mhw("send", "--all", "--url", url, "--secret", SECRET, "--format", "json")
    assert result.code == 0, result.stdout + result.stderr
    results = [json.loads(line) for line in result.stdout.splitlines()]
    assert [result["status"] for result in results] == [200] * 9
    deadline = time.monotonic() + 10
    while "audio.errored" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    printed = log.read_text()
    for event in ("video.completed", "image.completed", "audio.errored"):
        assert f"Received event: {event}" in printed


def test_listen_forwards_to_the_guides_handler(
    mhw: Mhw, seed_handler: tuple[str, Path], tmp_path: Path
) -> None:
    url, _ = seed_handler
    ready = tmp_path / "ready.json"
    listener = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mh_webhook_cli",
            "listen",
            "--port",
            "0",
            "--no-store",
            "--secret",
            SECRET,
            "--forward-to",
            url,
            "--format",
            "json",
            "--ready-file",
            str(ready),
            "--expect",
            "video.completed",
            "--timeout",
            "30",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    listen_url = json.loads(ready.read_text())["url"]
    sent = mhw("send", "video.completed", "--url", listen_url, "--secret", SECRET)
    assert sent.code == 0, sent.stderr
    stdout, stderr = listener.communicate(timeout=30)
    assert listener.returncode == 0, stderr.decode()
    lines = [json.loads(line) for line in stdout.decode().splitlines()]
    assert lines[0]["kind"] == "status" and lines[0]["url"] == listen_url
    forwarded = next(line for line in lines if line["kind"] == "request")["forwards"][0]
    assert forwarded["status"] == 200
    assert json.loads(forwarded["body"]) == {"success": True}
