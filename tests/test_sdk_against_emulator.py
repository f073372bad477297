"""Magic Hour's official Python SDK, unchanged, against a real ``mhw emulate`` process.

The SDK (PyPI ``magic-hour``, a dev dependency nobody here wrote) is pointed at the emulator
with ``base_url`` and used as its README shows: create, get, ``check_result`` with downloads,
``generate``, ``delete``, and the error cases. Every answer the emulator gives is captured
raw (an httpx response hook on the SDK's own client) and validated with the SDK's generated
pydantic model for that route, with no field the model lacks; every error body is compared
with the SDKs' error schemas. Every webhook the jobs send is checked for its signature and
its ``payload`` validated the same way with the SDK's project model, so the three kinds and
their nine events are known to be what an SDK user's code will parse.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest
from magic_hour import Client
from magic_hour.types import models
from make_api_request import ApiError
from test_emulate import API_KEY, PNG_SIGNATURE, Emulating, Receiver, assert_genuine

from conftest import SECRET, wait_for

pytest_plugins = ["test_emulate"]
"""Its fixtures: ``emulate`` (a real ``mhw emulate`` process) and ``receiver`` (webhooks)."""

POLL = "0.05"
"""MAGIC_HOUR_POLL_INTERVAL: how often the SDK's check_result reads a project, in seconds."""

_CREATED = {
    "/v1/ai-image-generator": models.V1AiImageGeneratorCreateResponse,
    "/v1/ai-voice-generator": models.V1AiVoiceGeneratorCreateResponse,
    "/v1/text-to-video": models.V1TextToVideoCreateResponse,
    "/v1/image-to-video": models.V1ImageToVideoCreateResponse,
}
PROJECT_MODELS: dict[str, type[pydantic.BaseModel]] = {
    "image": models.V1ImageProjectsGetResponse,
    "audio": models.V1AudioProjectsGetResponse,
    "video": models.V1VideoProjectsGetResponse,
}
_PROJECT = re.compile(r"/v1/(image|audio|video)-projects/[^/]+")
ERROR_SCHEMAS = {401: {"message": "Unauthorized"}, 404: {"message": "Not Found"}}
"""The Node SDK's V1...Response401 / Response404 types (the Python SDK has no error models)."""


def strictly(model: type[pydantic.BaseModel], data: Any) -> pydantic.BaseModel:
    """``data`` as ``model`` parses it, and nothing in it that the model does not know."""
    parsed = model.model_validate(data)
    known = {field.alias or name for name, field in model.model_fields.items()}
    assert isinstance(data, dict) and set(data) <= known, (model.__name__, set(data) - known)
    return parsed


def check_answer(response: httpx.Response) -> None:
    """One raw answer against the SDK's model for its route (or the error schemas)."""
    response.read()
    path, status = response.request.url.path, response.status_code
    if status == 204:
        assert response.request.method == "DELETE" and response.content == b""
        return
    body = response.json()
    if status in ERROR_SCHEMAS:
        assert body == ERROR_SCHEMAS[status], (path, body)
    elif status >= 400:  # 400, 402 and 422: {"message": string}
        assert isinstance(body.get("message"), str) and body["message"], (path, body)
    elif path == "/v1/account":
        strictly(models.V1AccountListResponse, body)
    elif path in _CREATED:
        strictly(_CREATED[path], body)
    else:
        match = _PROJECT.fullmatch(path)
        assert match, f"an answer from a route the SDK does not call: {path}"
        strictly(PROJECT_MODELS[match.group(1)], body)


class Sdk:
    """An SDK client on the emulator whose every answer goes through ``check_answer``."""

    def __init__(self, base_url: str, token: str) -> None:
        self.answers: list[tuple[str, str, int]] = []

        def record(response: httpx.Response) -> None:
            check_answer(response)
            request = response.request
            self.answers.append((request.method, request.url.path, response.status_code))

        self.http = httpx.Client(timeout=10, event_hooks={"response": [record]})
        self.client = Client(token=token, base_url=base_url, httpx_client=self.http)

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def sdk(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], Sdk]]:
    monkeypatch.setenv("MAGIC_HOUR_POLL_INTERVAL", POLL)
    opened: list[Sdk] = []

    def open_sdk(base_url: str, token: str = API_KEY) -> Sdk:
        opened.append(Sdk(base_url, token))
        return opened[-1]

    yield open_sdk
    for each in opened:
        each.close()


def refused(call: Callable[[], object]) -> ApiError:
    with pytest.raises(ApiError) as raised:
        call()
    return raised.value


def check_webhooks(hooks: Receiver, expected: list[str]) -> dict[str, dict[str, Any]]:
    """Wait for exactly the ``expected`` events; each genuine and an SDK model's payload."""
    wait_for(lambda: len(hooks.received) >= len(expected), what=f"events {expected}")
    by_type: dict[str, dict[str, Any]] = {}
    for request in hooks.received:
        assert_genuine(request)
        kind = request.type.split(".")[0]
        strictly(PROJECT_MODELS[kind], request.event["payload"])
        by_type[request.type] = request.event["payload"]
    assert sorted(request.type for request in hooks.received) == sorted(expected)
    return by_type


def test_the_official_sdk_creates_follows_downloads_and_deletes_every_kind(
    emulate: Callable[..., Emulating],
    receiver: Callable[..., Receiver],
    sdk: Callable[..., Sdk],
    tmp_path: Path,
) -> None:
    hooks = receiver()
    # A creator account: nano-banana-2 is a paid model. Renders of 1 s: image.started is sent.
    emulating = emulate(
        *("--api-key", API_KEY, "--tier", "creator", "--credits", "100000"),
        *("--queue-seconds", "0.1", "--render-seconds", "1"),
        *("--webhook-url", hooks.url, "--secret", SECRET),
    )
    session = sdk(emulating.url)
    v1 = session.client.v1
    account = v1.account.list()
    assert (account.tier, account.credits) == ("creator", 100000)

    # Images: generate() = create + check_result(wait, download). Nine images, nine files.
    images = tmp_path / "images"
    images.mkdir()
    image = v1.ai_image_generator.generate(
        image_count=9,
        style={"prompt": "A lighthouse at dusk", "tool": "ai-landscape-generator"},
        model="nano-banana-2",
        aspect_ratio="16:9",
        resolution="2k",
        download_directory=str(images),
    )
    assert image.status == "complete" and image.image_count == 9
    assert image.credits_charged == 900  # "from 100 credits/image"
    assert len(image.downloaded_paths) == 9 and len(set(image.downloaded_paths)) == 9
    for path in image.downloaded_paths:
        assert Path(path).read_bytes().startswith(PNG_SIGNATURE)

    # Voice: generate() with one of the SDK's voices.
    voice = v1.ai_voice_generator.generate(
        style={"prompt": "Hello from the official SDK.", "voice_name": "Morgan Freeman"},
        download_directory=str(tmp_path),
    )
    assert voice.status == "complete" and voice.credits_charged == 3  # 28 characters
    [voice_file] = voice.downloaded_paths
    assert Path(voice_file).read_bytes()[:2] == b"\xff\xfb"  # an MPEG audio frame

    # Video: create, then get and check_result, as a caller polling on its own would.
    text_video = v1.text_to_video.create(
        end_seconds=5,
        style={"prompt": "A corgi surfing at sunset"},
        model="kling-3.0",
        resolution="1080p",
        aspect_ratio="9:16",
    )
    assert text_video.credits_charged == 600 == text_video.estimated_frame_cost
    assert v1.video_projects.get(id=text_video.id).status in ("queued", "rendering")
    videos = tmp_path / "videos"
    videos.mkdir()
    done = v1.video_projects.check_result(
        id=text_video.id,
        wait_for_completion=True,
        download_outputs=True,
        download_directory=str(videos),
    )
    assert done.status == "complete" and (done.width, done.height) == (1080, 1920)
    assert done.end_seconds == 5 and done.download is not None
    [video_file] = done.downloaded_paths
    assert Path(video_file).read_bytes()[4:8] == b"ftyp"
    # delete() is 204, then the project is gone (404 with the schema's body), its job stopped.
    from_image = v1.image_to_video.create(
        assets={"image_file_path": "https://example.com/cat.png"}, end_seconds=5
    )
    assert from_image.credits_charged == 300  # a paid tier's default: kling-3.0 at 720p
    v1.video_projects.delete(id=from_image.id)
    v1.image_projects.delete(id=image.id)
    v1.audio_projects.delete(id=voice.id)
    for get in (
        lambda: v1.image_projects.get(id=image.id),
        lambda: v1.audio_projects.get(id=voice.id),
        lambda: v1.video_projects.get(id=from_image.id),
        lambda: v1.image_projects.delete(id=image.id),
    ):
        gone = refused(get)
        assert (gone.status_code, gone.body) == (404, {"message": "Not Found"})
    assert httpx.get(image.downloads[0].url).status_code == 404
    assert v1.video_projects.get(id=text_video.id).status == "complete"

    # Every event of the three kinds, each payload what the SDK's model parses. The deleted
    # job may have started before its delete, never more.
    expected = ["image.started", "image.completed", "audio.started", "audio.completed"]
    expected += ["video.started", "video.completed"]
    wait_for(lambda: len(hooks.received) >= len(expected), what=f"events {expected}")
    assert emulating.stop() == 0
    deleted = [r for r in hooks.received if r.event["payload"]["id"] == from_image.id]
    assert [request.type for request in deleted] in ([], ["video.started"])
    hooks.received[:] = [r for r in hooks.received if r not in deleted]
    payloads = check_webhooks(hooks, expected)
    assert payloads["image.completed"]["id"] == image.id
    assert payloads["video.completed"]["downloads"] == [
        {"url": download.url, "expires_at": download.expires_at} for download in done.downloads
    ]
    statuses = {status for _, _, status in session.answers}
    assert statuses == {200, 204, 404}, session.answers


def test_the_official_sdk_sees_the_real_apis_errors(
    emulate: Callable[..., Emulating],
    receiver: Callable[..., Receiver],
    sdk: Callable[..., Sdk],
    tmp_path: Path,
) -> None:
    hooks = receiver()
    # A free account with 100 credits, where every job fails (and is refunded).
    emulating = emulate(
        *("--api-key", API_KEY, "--credits", "100", "--fail-rate", "1"),
        *("--queue-seconds", "0.05", "--render-seconds", "0.2"),
        *("--webhook-url", hooks.url, "--secret", SECRET),
    )
    v1 = sdk(emulating.url).client.v1

    wrong_key = refused(sdk(emulating.url, token="mhk_live_wrong").client.v1.account.list)
    assert (wrong_key.status_code, wrong_key.body) == (401, {"message": "Unauthorized"})
    missing = refused(lambda: v1.video_projects.get(id="cnotaproject000000000000"))
    assert (missing.status_code, missing.body) == (404, {"message": "Not Found"})

    def create_image(**options: Any) -> ApiError:
        return refused(lambda: v1.ai_image_generator.create(style={"prompt": "a cube"}, **options))

    # Values the SDK's enums allow, but this model or this tier does not.
    for options, message in [
        ({"image_count": 3, "model": "nano-banana-2"}, "image_count must be one of 1, 4, 9, 16"),
        ({"image_count": 2, "model": "flux-2-klein"}, "image_count must be 1 with model"),
        ({"image_count": 1, "model": "gpt-image-2"}, "model gpt-image-2 is for the creator"),
        ({"image_count": 1, "model": "krea-2", "resolution": "4k"}, "resolution must be one"),
    ]:
        error = create_image(**options)
        assert error.status_code == 422 and error.body["message"].startswith(message), error
    video = refused(
        lambda: v1.text_to_video.create(end_seconds=7, style={"prompt": "x"}, model="kling-2.6")
    )
    assert video.status_code == 422
    assert video.body["message"] == "end_seconds must be one of 5, 10 with model kling-2.6"
    too_dear = refused(
        lambda: v1.text_to_video.create(end_seconds=25, style={"prompt": "x"})
    )  # ltx-2.5 at 480p, the free tier's defaults: 600 credits
    assert too_dear.status_code == 402 and "costs 600" in too_dear.body["message"]

    # A job that fails: check_result returns the error, the refund shows, the event arrives.
    failed = v1.ai_voice_generator.generate(
        style={"prompt": "This will fail.", "voice_name": "Elon Musk"},
        download_directory=str(tmp_path),
    )
    assert failed.status == "error" and failed.error is not None
    assert failed.credits_charged == 0 and failed.downloaded_paths is None
    job = v1.image_to_video.create(
        assets={"image_file_path": "https://example.com/a.png"}, end_seconds=2
    )
    assert job.credits_charged == 48  # ltx-2.5 at 480p: 120 credits per 5 s
    final = v1.video_projects.check_result(
        id=job.id, wait_for_completion=True, download_outputs=True
    )
    assert final.status == "error" and final.error is not None and final.credits_charged == 0
    payloads = check_webhooks(
        hooks, ["audio.started", "audio.errored", "video.started", "video.errored"]
    )
    assert payloads["video.errored"]["error"] == final.error.model_dump(by_alias=True)
    assert v1.account.list().credits == 100
    assert not list(tmp_path.glob("*.mp3"))
    assert emulating.stop() == 0
