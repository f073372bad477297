"""mhw against the handler from Magic Hour's "Create a Webhook" guide, run as its users run it:
``uvicorn guide_handlers:app`` (the guide's code, copied into ``tests/guide_handlers.py``)."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import SECRET, Mhw, wait_for

TESTS = Path(__file__).resolve().parent

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None,
    reason="fastapi and uvicorn are not installed (pip install -e '.[dev]' installs them)",
)


@pytest.fixture
def seed_handler(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``uvicorn guide_handlers:app`` on a socket bound here and handed over (``--fd``), so
    that no other process can take its port in between; yields its URL and its log."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(128)
    port = listening.getsockname()[1]
    log = tmp_path / "uvicorn.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "guide_handlers:app",
                "--fd",
                str(listening.fileno()),
            ],
            cwd=TESTS,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={"PYTHONUNBUFFERED": "1", "PATH": "/usr/bin:/bin"},
            pass_fds=(listening.fileno(),),
        )
    listening.close()

    def started() -> bool:
        assert server.poll() is None, log.read_text()
        return "Application startup complete" in log.read_text()

    wait_for(started, timeout=20, what="uvicorn serving the guide's handler")
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
    wait_for(lambda: "audio.errored" in log.read_text(), what="the handler's last log line")
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
    wait_for(ready.exists, what="the listener's ready file")
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
