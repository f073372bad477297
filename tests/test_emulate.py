"""``mhw emulate``: the local Magic Hour API and its webhook deliveries, over real sockets.

The API is driven with httpx, the webhooks land in a small ``http.server`` receiver written
here (independent of mhw's own server), and signatures are checked with mhw's verifier and the
documented recipe. The emulator runs as a real process through the CLI, or in-process on a loop
in a thread when a test needs its records or several emulators at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.server
import itertools
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import SECRET, Mhw, wait_for
from mh_webhook_cli.core.catalog import validate_event
from mh_webhook_cli.core.fixtures import VideoClip, project_payload
from mh_webhook_cli.core.verification import verify
from mh_webhook_cli.magichour.emulator import (
    Activity,
    DeliveryAttempt,
    Emulator,
    EmulatorConfig,
    JobChange,
)
from mh_webhook_cli.report.console import Line
from mh_webhook_cli.report.emulate import activity_line

API_KEY = "mhk_live_abcdefghijklmnopqrstuvwxyz012345"
CUID = re.compile(r"c[0-9a-z]{24}")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMAGE = {"image_count": 1, "aspect_ratio": "1:1", "style": {"prompt": "A cat in sunglasses"}}


def voice(text: str = "Hello from the emulator") -> dict[str, Any]:
    return {"style": {"prompt": text, "voice_name": "Elon Musk"}}


# --- a webhook receiver, independent of mhw --------------------------------------------------


@dataclass
class Received:
    arrived: float
    headers: dict[str, str]
    body: bytes
    answered: float = 0.0

    @property
    def event(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.body)
        return document

    @property
    def type(self) -> str:
        return str(self.event["type"])


Answer = Callable[[Received, int], tuple[int, float]]
"""(request, how many times this event arrived before) -> (status, seconds to wait first)."""


def always_ok(request: Received, earlier: int) -> tuple[int, float]:
    return 200, 0.0


@dataclass
class Receiver:
    answer: Answer = always_ok
    received: list[Received] = field(default_factory=list)
    closing: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                arrived = time.monotonic()
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                request = Received(arrived, {k.lower(): v for k, v in self.headers.items()}, body)
                earlier = sum(
                    1
                    for other in list(receiver.received)
                    if other.type == request.type
                    and other.event["payload"]["id"] == request.event["payload"]["id"]
                )
                receiver.received.append(request)
                status, delay = receiver.answer(request, earlier)
                if delay:
                    receiver.closing.wait(delay)  # a slow handler, released when the test ends
                request.answered = time.monotonic()
                try:
                    self.send_response(status)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the emulator gave up waiting: that is the point of a slow answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def of(self, event_type: str) -> list[Received]:
        return [request for request in list(self.received) if request.type == event_type]

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(answer: Answer = always_ok) -> Receiver:
        started.append(Receiver(answer))
        return started[-1]

    yield start
    for each in started:
        each.close()


def plain(line: Line) -> str:
    return line if isinstance(line, str) else "".join(text for text, _ in line)


def assert_genuine(request: Received) -> None:
    """Signed as documented, compact JSON, valid against the spec."""
    assert verify(request.body, request.headers, SECRET).valid
    timestamp = request.headers["magic-hour-event-timestamp"]
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256)
    assert request.headers["magic-hour-event-signature"] == expected.hexdigest()
    assert request.headers["content-type"] == "application/json"
    compact = json.dumps(request.event, separators=(",", ":"), ensure_ascii=False).encode()
    assert request.body == compact
    assert validate_event(request.event) == []


# --- the emulator, in-process on its own loop, or as a process through the CLI ---------------


class Running:
    """An emulator on an event loop in a thread, so the test itself can stay synchronous."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.activity: list[Activity] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.emulator = Emulator(config, on_event=self.activity.append)
        self.url = self._run(self.emulator.start("127.0.0.1", 0))
        self.client = httpx.Client(base_url=self.url, headers={"authorization": "Bearer any"})

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    def create(self, path: str, body: dict[str, Any]) -> str:
        answer = self.client.post(path, json=body)
        assert answer.status_code == 200, answer.text
        project_id: str = answer.json()["id"]
        return project_id

    def deliveries(self) -> list[DeliveryAttempt]:
        return [each for each in list(self.activity) if isinstance(each, DeliveryAttempt)]

    def close(self) -> None:
        self.client.close()
        self._run(self.emulator.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def emulator() -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(**settings: Any) -> Running:
        settings.setdefault("queue_seconds", 0.02)
        settings.setdefault("render_seconds", 0.05)
        if settings.get("webhook_urls"):
            settings.setdefault("secret", SECRET)
        started.append(Running(EmulatorConfig(**settings)))
        return started[-1]

    yield start
    for running in started:
        running.close()


@dataclass
class Emulating:
    process: subprocess.Popen[bytes]
    url: str
    stdout_path: Path
    stderr_path: Path

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8")

    def json_lines(self, kind: str | None = None) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.stdout().splitlines()]
        return [line for line in lines if kind is None or line["kind"] == kind]

    def stop(self, signum: int = signal.SIGINT) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=20)


@pytest.fixture
def emulate(isolated_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Emulating]]:
    started: list[Emulating] = []

    def start(*args: str) -> Emulating:
        index = len(started)
        ready = tmp_path / f"ready-{index}.json"
        stdout_path = tmp_path / f"stdout-{index}.txt"
        stderr_path = tmp_path / f"stderr-{index}.txt"
        command = [sys.executable, "-m", "mh_webhook_cli", "emulate", "--port", "0"]
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            process = subprocess.Popen(
                [*command, "--ready-file", str(ready), *args],
                stdout=out,
                stderr=err,
                env=isolated_env,
            )
        emulating = Emulating(process, "", stdout_path, stderr_path)
        started.append(emulating)

        def is_ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"emulator exited: {emulating.stderr()}")
            return ready.exists()

        wait_for(is_ready, what="the ready file")
        info = json.loads(ready.read_text())
        emulating.url = info["url"]
        assert info["url"] == f"http://127.0.0.1:{info['port']}"
        return emulating

    yield start
    for emulating in started:
        if emulating.process.poll() is None:
            emulating.process.kill()
            emulating.process.wait()


# --- the API ---------------------------------------------------------------------------------


def test_api_contract_through_the_cli(
    emulate: Callable[..., Emulating], receiver: Callable[..., Receiver]
) -> None:
    hooks = receiver()
    # Enough credits for two images (10) and a 25-character voice-over (3), nothing more.
    emulating = emulate(
        *("--api-key", API_KEY, "--credits", "13", "--format", "json"),
        *("--queue-seconds", "0.3", "--render-seconds", "0.3"),
        *("--webhook-url", hooks.url, "--secret", SECRET),
    )
    client = httpx.Client(base_url=emulating.url, headers={"authorization": f"Bearer {API_KEY}"})
    anonymous = httpx.Client(base_url=emulating.url)
    made: list[tuple[str, int]] = []

    def call(method: str, path: str, *, body: Any = None, via: httpx.Client = client) -> Any:
        answer = via.request(method, path, json=body)
        made.append((f"{method} {path}", answer.status_code))
        return answer

    assert call("GET", "/v1/account", via=anonymous).status_code == 401
    wrong = httpx.get(f"{emulating.url}/v1/account", headers={"authorization": "Bearer nope"})
    made.append(("GET /v1/account", wrong.status_code))
    assert wrong.status_code == 401 and list(wrong.json()) == ["message"]
    account = call("GET", "/v1/account").json()
    assert account["credits"] == 13 and set(account) == {
        "id",
        "email",
        "credits",
        "tier",
        "subscription",
    }

    invalid: dict[str, list[tuple[Any, str]]] = {
        "/v1/ai-image-generator": [
            ({"style": {"prompt": "x"}}, "image_count is required"),
            ({**IMAGE, "image_count": 5}, "image_count must be an integer from 1 to 4"),
            ({**IMAGE, "image_count": True}, "image_count must be an integer from 1 to 4"),
            ({**IMAGE, "aspect_ratio": "7:3"}, "aspect_ratio must be one of 1:1, 16:9"),
            ({"image_count": 1, "style": {}}, "style.prompt is required"),
            ({"image_count": 1, "style": {"prompt": " "}}, "style.prompt must be a non-empty"),
            ({"image_count": 1}, "style is required"),
            ([1, 2], "the body must be a JSON object"),
        ],
        "/v1/ai-voice-generator": [
            ({"style": {"prompt": "hi"}}, "style.voice_name is required"),
            (voice("x" * 1001), "style.prompt must be at most 1000 characters (it has 1001)"),
            ({**voice(), "name": 3}, "name must be a string"),
        ],
    }
    for path, cases in invalid.items():
        for body, message in cases:
            answer = call("POST", path, body=body)
            assert answer.status_code == 422, (body, answer.text)
            assert answer.json()["code"] == "invalid_request"
            assert answer.json()["message"].startswith(message), answer.json()
    not_json = client.post("/v1/ai-image-generator", content=b"{not json")
    made.append(("POST /v1/ai-image-generator", not_json.status_code))
    assert not_json.status_code == 422

    unknown_route = call("GET", "/v1/nothing-here")
    assert unknown_route.status_code == 404 and list(unknown_route.json()) == ["message"]
    assert call("GET", "/v1/image-projects/cnotaproject000000000000").status_code == 404
    assert call("GET", "/v1/video-projects/cnotaproject000000000000").status_code == 404
    wrong_method = call("DELETE", "/v1/account")
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "GET"

    created = call("POST", "/v1/ai-image-generator", body={**IMAGE, "image_count": 2}).json()
    assert CUID.fullmatch(created["id"])
    assert created["credits_charged"] == 10 and created["frame_cost"] == 10
    statuses = [call("GET", f"/v1/image-projects/{created['id']}").json()["status"]]

    def complete() -> bool:
        project = call("GET", f"/v1/image-projects/{created['id']}").json()
        if project["status"] != statuses[-1]:
            statuses.append(project["status"])
        return bool(project["status"] == "complete")

    wait_for(complete, what="the image to complete")
    assert statuses == ["queued", "rendering", "complete"]

    audio = call("POST", "/v1/ai-voice-generator", body=voice("x" * 25)).json()
    assert audio["credits_charged"] == 3
    assert call("GET", "/v1/account").json()["credits"] == 0
    broke = call("POST", "/v1/ai-image-generator", body=IMAGE)
    assert broke.status_code == 402 and list(broke.json()) == ["message"]
    assert call("GET", f"/v1/image-projects/{audio['id']}").status_code == 404

    image = call("GET", f"/v1/image-projects/{created['id']}").json()
    assert image["image_count"] == 2 and image["credits_charged"] == 10
    # One file per image, each with its own name: the SDKs save a download under its URL's
    # last segment, so two outputs under one name would leave one file.
    outputs = [f"/downloads/{created['id']}/output-{number}.png" for number in (1, 2)]
    assert [download["url"] for download in image["downloads"]] == [
        f"{emulating.url}{output}" for output in outputs
    ]
    for output in outputs:
        png = httpx.get(f"{emulating.url}{output}")  # no key: download links are signed URLs
        made.append((f"GET {output}", png.status_code))
        assert png.headers["content-type"] == "image/png"
        assert png.content.startswith(PNG_SIGNATURE)

    wait_for(lambda: hooks.of("audio.completed"), what="audio.completed")
    # The image rendered in 0.3 s: too fast for an image.started.
    assert [request.type for request in hooks.received] == [
        "image.completed",
        "audio.started",
        "audio.completed",
    ]
    assert emulating.stop() == 0

    lines = emulating.json_lines()
    assert lines[0]["kind"] == "status" and lines[0]["url"] == emulating.url
    assert lines[-1]["kind"] == "summary"
    assert (lines[-1]["jobs"], lines[-1]["completed"], lines[-1]["delivered"]) == (2, 2, 3)
    api = [
        (f"{line['method']} {line['path']}", line["status"])
        for line in lines[1:-1]
        if line["kind"] == "api"
    ]
    assert api == made
    image_jobs = [
        (line["status"], line["event"], line["skipped_event"])
        for line in emulating.json_lines("job")
        if line["project_id"] == created["id"]
    ]
    assert image_jobs == [
        ("queued", None, None),
        ("rendering", None, "image.started"),
        ("complete", "image.completed", None),
    ]
    delivered = emulating.json_lines("delivery")
    assert sorted(line["type"] for line in delivered if line["ok"]) == [
        "audio.completed",
        "audio.started",
        "image.completed",
    ]
    stderr = emulating.stderr()
    assert f"MAGIC_HOUR_API_BASE={emulating.url}" in stderr
    assert "mhw_live_…cdef" in stderr and "mhk_live_…2345" in stderr
    assert "emulated 2 job(s): 2 complete, 0 errored" in stderr
    for secret in (SECRET, API_KEY):
        assert secret not in emulating.stdout() + stderr


TEXT_VIDEO = {"end_seconds": 5, "style": {"prompt": "A corgi surfing at sunset"}}
IMAGE_VIDEO = {"end_seconds": 5, "assets": {"image_file_path": "https://example.com/a.png"}}


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        # Each value the real API's enums lack (the SDK's lists: magichour/api_reference.py).
        (
            "/v1/ai-image-generator",
            {**IMAGE, "aspect_ratio": "4:3"},
            "aspect_ratio must be one of 1:1, 16:9, 9:16",
        ),
        (
            "/v1/ai-image-generator",
            {**IMAGE, "style": {"prompt": "x", "tool": "not-a-tool"}},
            "style.tool must be one of ai-anime-generator, ",
        ),
        (
            "/v1/ai-image-generator",
            {**IMAGE, "orientation": "diagonal"},
            "orientation must be one of landscape, portrait, square",
        ),
        (
            "/v1/ai-image-generator",
            {**IMAGE, "model": "gpt-9"},
            "model must be one of default, flux-2-klein, ",
        ),
        (
            "/v1/ai-image-generator",
            {**IMAGE, "resolution": "8k"},
            "resolution must be one of 640px, 1k, 2k, 4k, auto",
        ),
        (
            "/v1/ai-image-generator",
            {**IMAGE, "style": {"prompt": "x", "quality_mode": "ultra"}},
            "style.quality_mode must be one of standard, pro",
        ),
        ("/v1/ai-image-generator", {**IMAGE, "model": 3}, "model must be one of default, "),
        (
            "/v1/ai-image-generator",
            {**IMAGE, "style": {"prompt": "x", "quality_mode": ["pro"]}},
            "style.quality_mode must be one of standard, pro",
        ),
        (
            "/v1/text-to-video",
            {**TEXT_VIDEO, "style": {"prompt": "x", "quality_mode": {"a": 1}}},
            "style.quality_mode must be one of quick, studio",
        ),
        (
            "/v1/ai-voice-generator",
            {"style": {"prompt": "hi", "voice_name": "Nobody At All"}},
            "style.voice_name must be one of the API's 1,264 voices",
        ),
        (
            "/v1/text-to-video",
            {**TEXT_VIDEO, "model": "gpt-9"},
            "model must be one of default, gemini-omni-1.1, ",
        ),
        (
            "/v1/text-to-video",
            {**TEXT_VIDEO, "resolution": "8k"},
            "resolution must be one of 360p, 480p, 720p, 1080p, 4k",
        ),
        (
            "/v1/text-to-video",
            {**TEXT_VIDEO, "aspect_ratio": "4:3"},
            "aspect_ratio must be one of 16:9, 1:1, 9:16",
        ),
        (
            "/v1/text-to-video",
            {**TEXT_VIDEO, "style": {"prompt": "x", "quality_mode": "ultra"}},
            "style.quality_mode must be one of quick, studio",
        ),
        (
            "/v1/image-to-video",
            {**IMAGE_VIDEO, "style": {"quality_mode": "ultra"}},
            "style.quality_mode must be one of quick, studio",
        ),
        # The model's own rules, within the enums.
        (
            "/v1/ai-image-generator",
            {**IMAGE, "image_count": 4, "model": "flux-2-klein"},
            "image_count must be 1 with model flux-2-klein",
        ),
        (
            "/v1/ai-image-generator",
            {**IMAGE, "image_count": 2, "model": "nano-banana-pro"},
            "image_count must be one of 1, 4, 9, 16 with model nano-banana-pro",
        ),
        (
            "/v1/ai-image-generator",
            {**IMAGE, "model": "gpt-image-2"},
            "model gpt-image-2 is for the creator, pro, business tiers; this account is free",
        ),
        (
            "/v1/ai-image-generator",
            {**IMAGE, "style": {"prompt": "x", "quality_mode": "pro"}},
            "model seedream-v4 is for the creator",
        ),
        (
            "/v1/text-to-video",
            {**TEXT_VIDEO, "end_seconds": 61},
            "end_seconds must be an integer from 1 to 60 with model ltx-2.5",
        ),
        (
            "/v1/text-to-video",
            {**TEXT_VIDEO, "model": "veo3.1", "end_seconds": 5},
            "end_seconds must be one of 4, 6, 8, 16",
        ),
        (
            "/v1/text-to-video",
            {**TEXT_VIDEO, "model": "kling-2.6", "resolution": "480p"},
            "resolution must be one of 720p, 1080p with model kling-2.6",
        ),
        (
            "/v1/text-to-video",
            {**TEXT_VIDEO, "model": "veo3.1", "end_seconds": 8, "aspect_ratio": "1:1"},
            "aspect_ratio must be one of 16:9, 9:16 with model veo3.1",
        ),
        (
            "/v1/text-to-video",
            {**TEXT_VIDEO, "model": "wan-2.2", "audio": True},
            "model wan-2.2 makes no audio",
        ),
        ("/v1/text-to-video", {"end_seconds": 5}, "style is required"),
        ("/v1/text-to-video", {**TEXT_VIDEO, "end_seconds": True}, "end_seconds must be a number"),
        ("/v1/image-to-video", {"end_seconds": 5}, "assets is required"),
        (
            "/v1/image-to-video",
            {"end_seconds": 5, "assets": {}},
            "assets.image_file_path is required",
        ),
        ("/v1/image-to-video", {"assets": {"image_file_path": "a.png"}}, "end_seconds is required"),
    ],
)
def test_values_the_real_api_refuses_are_422(
    emulator: Callable[..., Running], path: str, body: dict[str, Any], message: str
) -> None:
    running = emulator()
    answer = running.client.post(path, json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["message"].startswith(message), answer.json()
    assert running.emulator.stats.jobs == 0 and running.emulator.credits == 1_000_000


@pytest.mark.parametrize(
    ("tier", "path", "body", "credits"),
    [
        ("free", "/v1/ai-image-generator", IMAGE, 5),
        (
            "free",
            "/v1/ai-image-generator",
            {**IMAGE, "image_count": 3, "model": "qwen-image-2.1"},
            30,
        ),
        (
            "free",
            "/v1/ai-image-generator",
            {**IMAGE, "style": {"prompt": "x", "quality_mode": "standard"}},
            5,
        ),
        ("creator", "/v1/ai-image-generator", {**IMAGE, "model": "gpt-image-2"}, 50),
        (
            "creator",
            "/v1/ai-image-generator",
            {**IMAGE, "image_count": 16, "model": "nano-banana-pro"},
            2400,
        ),
        ("pro", "/v1/ai-image-generator", {**IMAGE, "model": "seedream", "image_count": 2}, 80),
        (
            "business",
            "/v1/ai-image-generator",
            {**IMAGE, "style": {"prompt": "x", "quality_mode": "pro"}},
            40,
        ),
        ("free", "/v1/ai-voice-generator", voice("x" * 31), 4),
        # Video: 480p 120, 720p 300, 1080p 600 credits per 5 seconds; defaults by tier.
        ("free", "/v1/text-to-video", TEXT_VIDEO, 120),
        ("creator", "/v1/text-to-video", TEXT_VIDEO, 300),
        (
            "free",
            "/v1/text-to-video",
            {**TEXT_VIDEO, "style": {"prompt": "x", "quality_mode": "studio"}},
            600,
        ),
        ("free", "/v1/text-to-video", {**TEXT_VIDEO, "model": "kling-3.0"}, 300),
        (
            "pro",
            "/v1/text-to-video",
            {**TEXT_VIDEO, "end_seconds": 15, "resolution": "1080p"},
            1800,
        ),
        ("free", "/v1/image-to-video", {**IMAGE_VIDEO, "style": {"high_quality": True}}, 600),
        ("free", "/v1/image-to-video", {**IMAGE_VIDEO, "end_seconds": 2, "model": "sora-2"}, 48),
    ],
)
def test_costs_follow_the_model_and_the_tier(
    emulator: Callable[..., Running], tier: str, path: str, body: dict[str, Any], credits: int
) -> None:
    running = emulator(tier=tier)
    answer = running.client.post(path, json=body)
    assert answer.status_code == 200, answer.text
    created = answer.json()
    assert created["credits_charged"] == credits
    assert running.emulator.credits == 1_000_000 - credits
    assert running.client.get("/v1/account").json()["tier"] == tier
    if path == "/v1/ai-image-generator":
        assert created["frame_cost"] == credits
    elif "video" in path:
        assert created["estimated_frame_cost"] == credits


def test_delete_removes_a_project_and_stops_its_job(emulator: Callable[..., Running]) -> None:
    running = emulator(queue_seconds=0.02, render_seconds=30)
    image = running.create("/v1/ai-image-generator", IMAGE)
    video = running.create("/v1/text-to-video", TEXT_VIDEO)
    wrong_kind = running.client.delete(f"/v1/audio-projects/{image}")
    assert (wrong_kind.status_code, wrong_kind.json()) == (404, {"message": "Not Found"})
    for kind, project_id in (("image", image), ("video", video)):
        deleted = running.client.delete(f"/v1/{kind}-projects/{project_id}")
        assert (deleted.status_code, deleted.content) == (204, b"")
        for method in ("GET", "DELETE"):
            gone = running.client.request(method, f"/v1/{kind}-projects/{project_id}")
            assert (gone.status_code, gone.json()) == (404, {"message": "Not Found"})
    # Their jobs were stopped mid-render: nothing more happens to them.
    wait_for(lambda: not running.emulator._jobs, what="the jobs to stop")
    assert running.emulator.stats.completed == 0
    anonymous = httpx.delete(f"{running.url}/v1/image-projects/{image}")
    assert (anonymous.status_code, anonymous.json()) == (401, {"message": "Unauthorized"})
    put = running.client.put(f"/v1/image-projects/{image}")
    assert put.status_code == 405 and put.headers["allow"] == "GET, DELETE"


def test_video_jobs_send_video_events_end_to_end(
    emulator: Callable[..., Running], receiver: Callable[..., Receiver]
) -> None:
    hooks = receiver()
    running = emulator(webhook_urls=(hooks.url,), render_seconds=0.1, tier="creator")
    made = running.create(
        "/v1/text-to-video", {**TEXT_VIDEO, "resolution": "1080p", "aspect_ratio": "9:16"}
    )
    [completed] = wait_for(lambda: hooks.of("video.completed"), what="video.completed")
    assert [request.type for request in hooks.received] == ["video.started", "video.completed"]
    for request in hooks.received:
        assert_genuine(request)
    project = running.client.get(f"/v1/video-projects/{made}").json()
    assert completed.event["payload"] == project
    assert (project["type"], project["width"], project["height"]) == ("TEXT_TO_VIDEO", 1080, 1920)
    assert (project["end_seconds"], project["fps"], project["credits_charged"]) == (5, 30, 600)
    [download] = project["downloads"]
    assert download == project["download"]
    assert download["url"] == f"{running.url}/downloads/{made}/output.mp4"
    mp4 = httpx.get(download["url"])
    assert mp4.headers["content-type"] == "video/mp4" and mp4.content[4:8] == b"ftyp"

    failing_hooks = receiver()
    failing = emulator(webhook_urls=(failing_hooks.url,), fail_rate=1, error_code="file_too_large")
    failed = failing.create("/v1/image-to-video", IMAGE_VIDEO)
    [errored] = wait_for(lambda: failing_hooks.of("video.errored"), what="video.errored")
    assert_genuine(errored)
    payload = errored.event["payload"]
    assert payload["id"] == failed and payload["type"] == "IMAGE_TO_VIDEO"
    assert payload["credits_charged"] == 0 and payload["error"]["code"] == "file_too_large"
    assert failing.emulator.credits == 1_000_000  # refunded


# --- webhooks --------------------------------------------------------------------------------


def test_webhooks_are_signed_and_carry_what_the_api_returns(
    emulator: Callable[..., Running], receiver: Callable[..., Receiver]
) -> None:
    fast_hooks, slow_hooks = receiver(), receiver()
    fast = emulator(webhook_urls=(fast_hooks.url,), render_seconds=0.05)
    slow = emulator(webhook_urls=(slow_hooks.url,), render_seconds=1.0)
    slow_image = slow.create("/v1/ai-image-generator", IMAGE)
    fast_image = fast.create("/v1/ai-image-generator", IMAGE)
    fast_audio = fast.create("/v1/ai-voice-generator", voice())

    # A render of a second or more announces itself; the payload is what GET says meanwhile.
    [started] = wait_for(lambda: slow_hooks.of("image.started"), what="image.started")
    during = slow.client.get(f"/v1/image-projects/{slow_image}").json()
    assert started.event["payload"] == during and during["status"] == "rendering"
    [completed] = wait_for(lambda: slow_hooks.of("image.completed"), what="image.completed")
    assert completed.event["payload"] == slow.client.get(f"/v1/image-projects/{slow_image}").json()

    # A fast image render skips image.started, as Magic Hour's do; audio always has one.
    wait_for(lambda: fast_hooks.of("audio.completed") and fast_hooks.of("image.completed"))
    assert [
        request.type for request in fast_hooks.received if request.type.startswith("image")
    ] == ["image.completed"]
    assert [
        request.type for request in fast_hooks.received if request.type.startswith("audio")
    ] == [
        "audio.started",
        "audio.completed",
    ]
    skipped = [
        change.skipped_event
        for change in fast.activity
        if isinstance(change, JobChange) and change.project_id == fast_image
    ]
    assert skipped == [None, "image.started", None]

    for request in slow_hooks.received + fast_hooks.received:
        assert_genuine(request)
    project = fast.client.get(f"/v1/audio-projects/{fast_audio}").json()
    assert fast_hooks.of("audio.completed")[0].event["payload"] == project
    assert project["type"] == "VOICE_GENERATOR" and project["credits_charged"] == 3
    mp3 = httpx.get(project["downloads"][0]["url"])
    assert mp3.status_code == 200 and mp3.headers["content-type"] == "audio/mpeg"
    assert mp3.content.startswith(b"\xff\xfb")
    image = fast_hooks.of("image.completed")[0].event["payload"]
    assert image["id"] == fast_image and image["type"] == "AI_IMAGE"
    assert image["name"].startswith("Ai Image - ")


def test_failed_jobs_report_the_error_refund_and_reach_every_url(
    emulator: Callable[..., Running], receiver: Callable[..., Receiver]
) -> None:
    first, second = receiver(), receiver()
    running = emulator(
        webhook_urls=(first.url, second.url),
        credits=100,
        fail_rate=1,
        error_code="content_policy_violation",
    )
    image = running.create("/v1/ai-image-generator", {**IMAGE, "name": "Storm"})
    audio = running.create("/v1/ai-voice-generator", voice())
    assert running.client.get("/v1/account").json()["credits"] == 100 - 5 - 3
    for hooks in (first, second):

        def both_errored(hooks: Receiver = hooks) -> bool:
            return bool(hooks.of("image.errored") and hooks.of("audio.errored"))

        wait_for(both_errored, what="both errored events")
    assert running.client.get("/v1/account").json()["credits"] == 100

    failed_image = running.client.get(f"/v1/image-projects/{image}").json()
    assert failed_image["status"] == "error" and failed_image["name"] == "Storm"
    assert failed_image["error"]["code"] == "content_policy_violation"
    assert failed_image["credits_charged"] == failed_image["total_frame_cost"] == 0
    assert failed_image["downloads"] == []
    failed_audio = running.client.get(f"/v1/audio-projects/{audio}").json()
    # content_policy_violation is not an audio code: audio reports its first documented one.
    assert failed_audio["error"]["code"] == "text_too_long"
    for hooks in (first, second):
        assert hooks.of("image.errored")[0].event["payload"] == failed_image
        assert hooks.of("audio.errored")[0].event["payload"] == failed_audio
        for request in hooks.received:
            assert_genuine(request)
    assert httpx.get(f"{running.url}/downloads/{image}/output.png").status_code == 404
    assert running.emulator.stats.errored == 2


def test_a_seed_decides_which_jobs_fail(emulator: Callable[..., Running]) -> None:
    fates = []
    for _ in range(2):
        running = emulator(fail_rate=0.5, seed=7, queue_seconds=0, render_seconds=0)
        ids = [running.create("/v1/ai-image-generator", IMAGE) for _ in range(8)]

        def statuses(running: Running = running, ids: list[str] = ids) -> list[str]:
            found = [running.client.get(f"/v1/image-projects/{i}").json()["status"] for i in ids]
            return found if all(status in ("complete", "error") for status in found) else []

        fates.append(wait_for(statuses, what="every job to finish"))
    assert fates[0] == fates[1]
    assert set(fates[0]) == {"complete", "error"}


# --- retries ---------------------------------------------------------------------------------


def test_retries_follow_magic_hours_schedule_sped_up(
    emulate: Callable[..., Emulating], receiver: Callable[..., Receiver]
) -> None:
    def fail_three_times(request: Received, earlier: int) -> tuple[int, float]:
        return (500 if earlier < 3 else 200), 0.0

    hooks = receiver(fail_three_times)
    emulating = emulate(
        *("--webhook-url", hooks.url, "--secret", SECRET, "--speed", "20", "--format", "json"),
        *("--queue-seconds", "0", "--render-seconds", "0.05"),
    )
    created = httpx.post(
        f"{emulating.url}/v1/ai-image-generator",
        json=IMAGE,
        headers={"authorization": "Bearer any"},
    ).json()
    attempts = wait_for(lambda: len(hooks.received) >= 4 and hooks.received, what="4 attempts")
    gaps = [later.arrived - earlier.arrived for earlier, later in itertools.pairwise(attempts)]
    for gap, expected in zip(gaps, (0.05, 0.1, 0.2), strict=True):
        assert 0.8 * expected <= gap < expected + 0.25, gaps
    for request in attempts:
        assert request.type == "image.completed"
        assert request.event["payload"]["id"] == created["id"]
        assert_genuine(request)
    wait_for(lambda: len(emulating.json_lines("delivery")) == 4, what="4 delivery lines")
    assert emulating.stop(signal.SIGTERM) == 0
    log = [
        (line["attempt"], line["status"], line["retry_in"], line["ok"])
        for line in emulating.json_lines("delivery")
    ]
    assert log == [
        (1, 500, 0.05, False),
        (2, 500, 0.1, False),
        (3, 500, 0.2, False),
        (4, 200, None, True),
    ]
    summary = emulating.json_lines("summary")[0]
    assert (summary["delivered"], summary["retries"], summary["given_up"]) == (1, 3, 0)
    assert "  deliveries  1 delivered, 3 retries, 0 given up" in emulating.stderr()


def test_a_handler_that_times_out_is_retried_with_a_fresh_signature(
    emulator: Callable[..., Running], receiver: Callable[..., Receiver]
) -> None:
    def hang_first(request: Received, earlier: int) -> tuple[int, float]:
        return 200, (5.0 if earlier == 0 else 0.0)

    hooks = receiver(hang_first)
    running = emulator(webhook_urls=(hooks.url,), delivery_timeout=0.3)
    running.create("/v1/ai-image-generator", IMAGE)
    first, second = wait_for(lambda: len(hooks.received) >= 2 and hooks.received)
    # The real one-second wait after a 0.3 s timeout: a whole second later, a new timestamp.
    assert 1.25 <= second.arrived - first.arrived < 2.0
    stamps = [int(request.headers["magic-hour-event-timestamp"]) for request in (first, second)]
    assert stamps[1] > stamps[0]
    assert (
        second.headers["magic-hour-event-signature"] != first.headers["magic-hour-event-signature"]
    )
    assert first.body == second.body
    assert_genuine(first)
    assert_genuine(second)
    attempts = wait_for(lambda: len(running.deliveries()) >= 2 and running.deliveries())
    assert attempts[0].status is None and attempts[0].retry_in == 1.0
    assert attempts[0].error is not None and attempts[0].error.startswith("timed out after 0.3 s")
    assert (attempts[1].attempt, attempts[1].status, attempts[1].ok) == (2, 200, True)
    assert [attempt.timestamp for attempt in attempts] == stamps


def test_first_attempts_keep_a_projects_order_but_retries_block_nothing(
    emulator: Callable[..., Running], receiver: Callable[..., Receiver]
) -> None:
    def slow_failing_start(request: Received, earlier: int) -> tuple[int, float]:
        if request.type == "audio.started" and earlier == 0:
            return 500, 0.3
        return 200, 0.0

    hooks = receiver(slow_failing_start)
    running = emulator(webhook_urls=(hooks.url,), speed=4)  # retry after 0.25 s
    running.create("/v1/ai-voice-generator", voice())
    wait_for(lambda: len(hooks.received) >= 3, what="three deliveries")
    [first_start, retried_start] = hooks.of("audio.started")
    [completed] = hooks.of("audio.completed")
    # Ready 0.05 s in, completed waited for started's answer (0.3 s), not for its retry.
    assert completed.arrived >= first_start.answered
    assert retried_start.arrived > completed.arrived
    assert [request.type for request in hooks.received] == [
        "audio.started",
        "audio.completed",
        "audio.started",
    ]


def test_a_delivery_is_given_up_when_the_retry_time_runs_out(
    emulator: Callable[..., Running], receiver: Callable[..., Receiver]
) -> None:
    hooks = receiver(lambda request, earlier: (503, 0.0))
    # Attempts at 0 s, 1 s and 3 s of Magic Hour time (plus latencies, sped up as well):
    # the next would be at 7 s, past 5 s.
    running = emulator(webhook_urls=(hooks.url,), speed=20, max_retry_seconds=5)
    running.create("/v1/ai-image-generator", IMAGE)
    attempts = wait_for(
        lambda: [a for a in running.deliveries() if a.gave_up], what="the delivery to give up"
    )
    attempts = running.deliveries()
    assert [(a.attempt, a.status, a.retry_in, a.gave_up) for a in attempts] == [
        (1, 503, 0.05, False),
        (2, 503, 0.1, False),
        (3, 503, None, True),
    ]
    assert len(hooks.received) == 3
    stats = running.emulator.stats
    assert (stats.delivered, stats.retries, stats.given_up) == (0, 2, 1)
    text = [plain(activity_line(attempt)) for attempt in attempts]
    assert "image.completed" in text[0] and "→ 503" in text[0] and "retry in 0.05 s" in text[0]
    assert "#3" in text[2] and "✗ gave up after 3 attempt(s)" in text[2]


def test_unreachable_url_is_retried_and_reported(
    emulator: Callable[..., Running],
) -> None:
    with socket.socket() as placeholder:  # a port nothing listens on
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    running = emulator(webhook_urls=(f"http://127.0.0.1:{port}/webhook",), speed=100)
    running.create("/v1/ai-image-generator", IMAGE)
    attempts = wait_for(lambda: len(running.deliveries()) >= 2 and running.deliveries())
    assert attempts[0].status is None and attempts[0].error is not None
    assert "connection refused" in attempts[0].error and attempts[0].retry_in == 0.01


# --- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--webhook-url", "http://127.0.0.1:9/webhook"], "no webhook secret"),
        (["--error-code", "oops"], "unknown error code 'oops'; choose one of no_source_face"),
        (["--fail-rate", "1.5"], "--fail-rate"),
        (["--tier", "gold"], "unknown tier 'gold'; choose one of free, creator, pro, business"),
    ],
)
def test_bad_options_are_one_line_usage_errors(mhw: Mhw, args: list[str], message: str) -> None:
    result = mhw("emulate", *args)
    assert result.code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_busy_port_is_one_line(mhw: Mhw) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = mhw("emulate", "--port", str(busy.getsockname()[1]))
    assert result.code == 1
    assert "cannot listen on 127.0.0.1" in result.stderr and "--port 0" in result.stderr
    assert "Traceback" not in result.stderr


# --- the shared payload builder --------------------------------------------------------------


def test_project_payload_is_the_one_builder_of_valid_payloads() -> None:
    now = datetime(2024, 10, 19, 5, 15, 45, 123000, tzinfo=timezone.utc)
    common: dict[str, Any] = {
        "project_id": "cm2fxyi2q0001ml0gq5g7m8pt",
        "name": None,
        "created_at": now - timedelta(seconds=9),
        "now": now,
        "credits_charged": 30,
    }
    clip = VideoClip(width=720, height=1280, end_seconds=5, fps=30)
    video = project_payload(
        "video",
        project_type="TEXT_TO_VIDEO",
        status="complete",
        download_urls=["https://videos.example/out.mp4"],
        clip=clip,
        **common,
    )
    assert (
        video["download"]
        == video["downloads"][0]
        == {
            "url": "https://videos.example/out.mp4",
            "expires_at": "2024-10-20T05:15:45.123Z",
        }
    )
    assert validate_event({"type": "video.completed", "payload": video}) == []
    errored = project_payload("audio", project_type="VOICE_GENERATOR", status="error", **common)
    assert errored["error"]["code"] == "text_too_long"
    assert validate_event({"type": "audio.errored", "payload": errored}) == []
    with pytest.raises(ValueError, match="needs its clip"):
        project_payload("video", project_type="ANIMATION", status="queued", **common)
    with pytest.raises(ValueError, match="error_code applies only"):
        project_payload(
            "image",
            project_type="AI_IMAGE",
            status="rendering",
            error_code="no_source_face",
            **common,
        )
