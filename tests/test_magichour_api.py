"""The Magic Hour API client against a scripted API on a real loopback port."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from fake_api import ACCOUNT, FakeApi, Reply, fake_api
from raw_http import endless, raw_server, trickle

from mh_webhook_cli import __version__
from mh_webhook_cli.core.settings import mask
from mh_webhook_cli.errors import ApiError, ExitCode, UsageError
from mh_webhook_cli.magichour.api import (
    CreatedJob,
    MagicHourApi,
    estimate_credits,
    retry_after_seconds,
)

KEY = "mhk_live_0123456789abcdefghijklmnopqrstuv"
PROJECT = "cm2zq8v1x0000abcdef123456"
T = TypeVar("T")


@pytest.fixture
def api() -> Iterator[FakeApi]:
    with fake_api() as server:
        yield server


def call(server: FakeApi, action: Callable[[MagicHourApi], Awaitable[T]], **options: Any) -> T:
    """Run one client call on a fresh loop, with waits short enough for a test."""
    options = {"backoff": 0.01, **options}

    async def main() -> T:
        async with MagicHourApi(KEY, options.pop("base_url", server.url), **options) as client:
            return await action(client)

    return asyncio.run(main())


def failure(
    server: FakeApi, action: Callable[[MagicHourApi], Awaitable[Any]], **options: Any
) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call(server, action, **options)
    error = caught.value
    text = str(error)
    assert "\n" not in text, text
    assert KEY not in text
    assert error.exit_code is ExitCode.API_ERROR
    return error


@pytest.mark.parametrize("slash", ["", "/"])
def test_account_sends_the_key_user_agent_and_accept(api: FakeApi, slash: str) -> None:
    api.script("GET", "/v1/account", Reply(200, ACCOUNT))
    account = call(api, lambda client: client.account(), base_url=api.url + slash)
    assert account == ACCOUNT
    [request] = api.requests
    assert request.path == "/v1/account"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["user-agent"] == f"mhw/{__version__}"
    assert request.headers["accept"] == "application/json"


def test_a_base_url_with_a_path_keeps_it(api: FakeApi) -> None:
    api.script("GET", "/proxy/v1/account", Reply(200, ACCOUNT))
    assert call(api, lambda c: c.account(), base_url=api.url + "/proxy/") == ACCOUNT


def test_a_rejected_key_is_one_line_with_the_key_masked(api: FakeApi) -> None:
    api.script("GET", "/v1/account", Reply(401, {"message": "Invalid API key"}))
    error = failure(api, lambda client: client.account())
    assert error.status == 401 and error.api_message == "Invalid API key"
    assert mask(KEY) in str(error)
    assert "Invalid API key" in str(error)
    assert "MAGIC_HOUR_API_KEY" in str(error) and "mhw config set api_key" in str(error)
    assert len(api.requests) == 1


def test_no_credits_says_so_with_the_api_message(api: FakeApi) -> None:
    api.script(
        "POST",
        "/v1/ai-image-generator",
        Reply(402, {"code": "insufficient_credits", "message": "You need 5 credits, have 2"}),
    )
    error = failure(api, lambda client: client.create_image("a cat"))
    assert error.status == 402 and error.code == "insufficient_credits"
    assert str(error).startswith("not enough Magic Hour credits to start an image job")
    assert "You need 5 credits, have 2" in str(error)


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (
            {"code": "invalid_body", "message": "style.prompt is required"},
            "invalid_body",
            "style.prompt is required",
        ),
        ({"message": "style.prompt is required"}, None, "style.prompt is required"),
        ({"error": "style.prompt is required"}, None, "style.prompt is required"),
        (
            {"error": {"code": "bad", "message": "style.prompt is\nrequired"}},
            "bad",
            "style.prompt is required",
        ),
        ("style.prompt is required", None, "style.prompt is required"),
    ],
)
def test_an_invalid_body_shows_the_api_message_in_any_shape(
    api: FakeApi, body: Any, code: str | None, message: str
) -> None:
    api.script("POST", "/v1/ai-voice-generator", Reply(422, body))
    error = failure(api, lambda client: client.create_audio(""))
    assert (error.status, error.code, error.api_message) == (422, code, message)
    assert message in str(error) and "start an audio job" in str(error)


def test_an_unknown_project_is_named(api: FakeApi) -> None:
    api.script("GET", f"/v1/image-projects/{PROJECT}", Reply(404, {"message": "Not found"}))
    error = failure(api, lambda client: client.project("image", PROJECT))
    assert error.status == 404
    assert f"no image project {PROJECT}" in str(error)


def test_forbidden_is_an_api_error(api: FakeApi) -> None:
    api.script("POST", "/v1/ai-image-generator", Reply(403, {"message": "Upgrade your plan"}))
    error = failure(api, lambda client: client.create_image("a cat"))
    assert error.status == 403 and "Upgrade your plan" in str(error)


def test_rate_limited_waits_as_told_then_succeeds(api: FakeApi) -> None:
    api.script(
        "GET",
        "/v1/account",
        Reply(429, {"message": "slow down"}, {"Retry-After": "1"}),
        Reply(200, ACCOUNT),
    )
    assert call(api, lambda client: client.account(), backoff=5.0) == ACCOUNT
    first, second = api.requests
    assert 0.9 <= second.at - first.at < 3.0


def test_rate_limited_job_creation_is_retried_because_it_was_refused(api: FakeApi) -> None:
    api.script(
        "POST",
        "/v1/ai-image-generator",
        Reply(429, headers={"Retry-After": "0"}),
        Reply(200, {"id": PROJECT, "credits_charged": 5, "frame_cost": 5}),
    )
    job = call(api, lambda client: client.create_image("a cat"))
    assert job == CreatedJob("image", PROJECT, 5)
    assert len(api.to("POST", "/v1/ai-image-generator")) == 2


def test_rate_limited_without_retry_after_backs_off_then_gives_up(api: FakeApi) -> None:
    api.script("GET", "/v1/account", Reply(429, {"message": "Too many requests"}))
    error = failure(api, lambda client: client.account(), retries=2, backoff=0.1)
    assert error.status == 429 and "rate limited" in str(error) and "3 times" in str(error)
    first, second, third = api.requests
    # 0.1 s, then twice that: exponential.
    assert second.at - first.at >= 0.09
    assert 0.19 <= third.at - second.at < 2.0


def test_a_retry_after_longer_than_allowed_fails_at_once(api: FakeApi) -> None:
    api.script("GET", "/v1/account", Reply(429, headers={"Retry-After": "120"}))
    error = failure(api, lambda client: client.account(), max_retry_wait=5.0)
    assert "asks to wait 120 s" in str(error)
    assert len(api.requests) == 1


def test_server_errors_are_retried_on_get(api: FakeApi) -> None:
    api.script(
        "GET",
        f"/v1/audio-projects/{PROJECT}",
        Reply(500, {"message": "oops"}),
        Reply(503, "upstream down"),
        Reply(200, {"id": PROJECT, "status": "complete"}),
    )
    project = call(api, lambda client: client.project("audio", PROJECT))
    assert project == {"id": PROJECT, "status": "complete"}
    assert len(api.requests) == 3


def test_server_errors_on_get_give_up_after_the_retries(api: FakeApi) -> None:
    api.script(
        "GET", "/v1/account", Reply(502, "<html>Bad gateway</html>", {"content-type": "text/html"})
    )
    error = failure(api, lambda client: client.account(), retries=2)
    assert error.status == 502 and "3 times" in str(error)
    assert "html" not in str(error).lower()
    assert len(api.requests) == 3


def test_a_server_error_on_job_creation_is_not_retried(api: FakeApi) -> None:
    api.script(
        "POST",
        "/v1/ai-image-generator",
        Reply(500, {"message": "internal"}),
        Reply(200, {"id": PROJECT, "credits_charged": 5}),
    )
    error = failure(api, lambda client: client.create_image("a cat"))
    assert error.status == 500
    assert "it may have started: check your Magic Hour dashboard before retrying" in str(error)
    assert len(api.requests) == 1


def test_a_timeout_on_job_creation_is_not_retried(api: FakeApi) -> None:
    api.script("POST", "/v1/ai-voice-generator", Reply(200, {"id": PROJECT}, delay=1.0))
    error = failure(api, lambda client: client.create_audio("Hello"), timeout=0.2)
    assert "timed out after 0.2 s" in str(error) and "may have started" in str(error)
    assert api.url in str(error)
    assert len(api.requests) == 1


def test_a_timeout_on_get_is_retried(api: FakeApi) -> None:
    api.script("GET", "/v1/account", Reply(200, ACCOUNT, delay=1.0), Reply(200, ACCOUNT))
    assert call(api, lambda client: client.account(), timeout=0.3) == ACCOUNT
    assert len(api.requests) == 2


def test_connection_refused_names_the_base_url() -> None:
    # Bound, never listening, held through the test: every connection is refused, and no
    # other process can take the port meanwhile.
    with socket.socket() as holder, pytest.raises(ApiError) as caught:
        holder.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{holder.getsockname()[1]}"
        asyncio.run(_account(base))
    text = str(caught.value)
    assert f"cannot reach the Magic Hour API at {base}" in text and "refused" in text
    assert "\n" not in text and caught.value.status is None


async def _account(base: str) -> dict[str, Any]:
    async with MagicHourApi(KEY, base, backoff=0.01) as client:
        return await client.account()


def test_a_non_json_answer_is_an_api_error(api: FakeApi) -> None:
    api.script(
        "GET",
        "/v1/account",
        Reply(200, "<html>Welcome to nginx</html>", {"content-type": "text/html"}),
    )
    error = failure(api, lambda client: client.account())
    assert "not JSON" in str(error) and "Welcome to nginx" in str(error)
    assert f"is {api.url} the Magic Hour API?" in str(error)


def test_an_unexpected_json_answer_is_an_api_error(api: FakeApi) -> None:
    api.script("POST", "/v1/ai-image-generator", Reply(200, {"status": "queued"}))
    error = failure(api, lambda client: client.create_image("a cat"))
    assert "no id" in str(error)
    api.script("GET", "/v1/account", Reply(200, ["not", "an", "object"]))
    assert "not a JSON object" in str(failure(api, lambda client: client.account()))


def test_job_requests_have_the_documented_bodies(api: FakeApi) -> None:
    api.script("POST", "/v1/ai-image-generator", Reply(200, {"id": PROJECT, "credits_charged": 5}))
    api.script(
        "POST", "/v1/ai-voice-generator", Reply(200, {"id": "cm-audio", "credits_charged": 1})
    )
    image = call(api, lambda client: client.create_image("A cat", aspect_ratio="16:9", name="t"))
    audio = call(api, lambda client: client.create_audio("Hello", voice="Morgan Freeman"))
    assert image == CreatedJob("image", PROJECT, 5)
    assert audio == CreatedJob("audio", "cm-audio", 1)
    assert api.to("POST", "/v1/ai-image-generator")[0].json() == {
        "image_count": 1,
        "aspect_ratio": "16:9",
        "style": {"prompt": "A cat", "tool": "general"},
        "name": "t",
    }
    [audio_request] = api.to("POST", "/v1/ai-voice-generator")
    assert audio_request.json() == {"style": {"prompt": "Hello", "voice_name": "Morgan Freeman"}}
    assert audio_request.headers["content-type"] == "application/json"


def test_download_streams_to_a_new_file_without_the_key(api: FakeApi, tmp_path: Path) -> None:
    content = bytes(range(256)) * 1000
    api.script("GET", f"/renders/{PROJECT}/output.png?sig=abc", Reply(200, content))
    url = f"{api.url}/renders/{PROJECT}/output.png?sig=abc"
    first = call(api, lambda client: client.download(url, tmp_path / "out", project_id=PROJECT))
    second = call(api, lambda client: client.download(url, tmp_path / "out", project_id=PROJECT))
    assert first == tmp_path / "out" / f"{PROJECT}-output.png"
    assert second == tmp_path / "out" / f"{PROJECT}-output-1.png"
    assert first.read_bytes() == content == second.read_bytes()
    # Links may redirect to the file; the key goes to no one but the API.
    api.script("GET", "/link", Reply(302, headers={"Location": url}))
    third = call(api, lambda client: client.download(f"{api.url}/link", tmp_path / "out"))
    assert third.name == "link" and third.read_bytes() == content
    assert all("authorization" not in request.headers for request in api.requests)


def test_download_into_an_unwritable_place_is_one_line(api: FakeApi, tmp_path: Path) -> None:
    api.script("GET", "/output.png", Reply(200, b"png"))
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(UsageError, match=f"cannot save downloads in {blocker}/out: "):
        call(api, lambda client: client.download(f"{api.url}/output.png", blocker / "out"))


def test_download_keeps_a_name_that_already_holds_the_id(api: FakeApi, tmp_path: Path) -> None:
    api.script("GET", f"/{PROJECT}.mp3", Reply(200, b"ID3"))
    url = f"{api.url}/{PROJECT}.mp3"
    path = call(api, lambda client: client.download(url, tmp_path, project_id=PROJECT))
    assert path == tmp_path / f"{PROJECT}.mp3" and path.read_bytes() == b"ID3"


def test_a_failed_download_leaves_nothing_and_hides_the_signature(
    api: FakeApi, tmp_path: Path
) -> None:
    api.script("GET", "/renders/output.png?sig=secret-token", Reply(403, "expired"))
    url = f"{api.url}/renders/output.png?sig=secret-token"
    error = failure(api, lambda client: client.download(url, tmp_path))
    assert error.status == 403 and "expire" in str(error)
    assert "secret-token" not in str(error)
    assert list(tmp_path.iterdir()) == []


def test_estimate_credits() -> None:
    assert estimate_credits("image", "anything") == 5
    assert estimate_credits("image", "", image_count=4) == 20
    assert [estimate_credits("audio", "x" * n) for n in (1, 10, 11, 30, 1000)] == [1, 1, 2, 3, 100]


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 23, 15, 0, 0, tzinfo=timezone.utc)
    assert retry_after_seconds("0") == 0.0
    assert retry_after_seconds(" 7 ") == 7.0
    assert retry_after_seconds("-3") == 0.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30
    assert retry_after_seconds(format_datetime(now - timedelta(hours=1), usegmt=True), now) == 0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_magic_hour_api_resolves_key_and_base(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mh_webhook_cli.cli.options import magic_hour_api

    for name in ("MAGIC_HOUR_API_KEY", "MAGIC_HOUR_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MHW_CONFIG", str(tmp_path / "config.json"))
    monkeypatch.setenv("MAGIC_HOUR_CONFIG", str(tmp_path / "magic-hour.json"))
    with pytest.raises(UsageError, match="no Magic Hour API key: pass --api-key"):
        magic_hour_api(None, None)
    (tmp_path / "magic-hour.json").write_text('{"api_key": "from-the-magic-hour-cli"}')
    client = magic_hour_api(None, None)
    assert (client.api_key, client.base_url) == (
        "from-the-magic-hour-cli",
        "https://api.magichour.ai",
    )
    monkeypatch.setenv("MAGIC_HOUR_API_KEY", "from-env")
    monkeypatch.setenv("MAGIC_HOUR_API_BASE", "http://127.0.0.1:9/")
    client = magic_hour_api(None, None)
    assert (client.api_key, client.base_url) == ("from-env", "http://127.0.0.1:9")
    assert magic_hour_api("from-flag", "http://localhost:1").api_key == "from-flag"
    with pytest.raises(UsageError, match="MAGIC_HOUR_API_BASE 'ftp://x' is not an http"):
        monkeypatch.setenv("MAGIC_HOUR_API_BASE", "ftp://x")
        magic_hour_api(None, None)
    with pytest.raises(UsageError, match="--api-key is empty"):
        magic_hour_api(" ", None)


# Bounds: a server that never stops answering


def bounded_failure(
    base: str, action: Callable[[MagicHourApi], Awaitable[Any]], **options: Any
) -> tuple[ApiError, float]:
    async def main() -> Any:
        async with MagicHourApi(KEY, base, backoff=0.01, **options) as client:
            return await action(client)

    started = time.monotonic()
    with pytest.raises(ApiError) as caught:
        asyncio.run(main())
    assert "\n" not in str(caught.value)
    return caught.value, time.monotonic() - started


def test_an_endless_api_answer_is_cut_off_at_the_limit() -> None:
    with raw_server(endless(head=b"Content-Type: application/json\r\n")) as server:
        error, _ = bounded_failure(server.url, lambda client: client.account(), timeout=10)
        sent = server.sent_bytes
    assert "is larger than 1048576 bytes" in str(error)
    assert sent < 32 * 2**20, f"the client read {sent >> 20} MiB of an answer it cannot use"


def test_a_trickled_api_answer_times_out_as_a_whole() -> None:
    with raw_server(trickle()) as server:
        error, elapsed = bounded_failure(
            server.url, lambda client: client.create_audio("Hello"), timeout=0.5
        )
    assert "timed out after 0.5 s reading the body of a 200 answer" in str(error)
    assert "may have started" in str(error)
    assert elapsed < 3, f"a 0.5 s timeout took {elapsed:.1f} s"


def test_an_endless_download_stops_at_the_limit_and_leaves_nothing(tmp_path: Path) -> None:
    with raw_server(endless()) as server:
        error, _ = bounded_failure(
            server.url,
            lambda client: client.download(server.url, tmp_path),
            download_limit=2**20,
        )
        sent = server.sent_bytes
    assert "larger than 1048576 bytes" in str(error)
    assert list(tmp_path.iterdir()) == []
    assert sent < 32 * 2**20


def test_a_trickled_download_ends_at_its_deadline(tmp_path: Path) -> None:
    with raw_server(trickle()) as server:
        error, elapsed = bounded_failure(
            server.url,
            lambda client: client.download(server.url, tmp_path),
            download_deadline=1.0,
        )
    assert "timed out after 1 s reading the body of a 200 answer" in str(error)
    assert list(tmp_path.iterdir()) == []
    assert elapsed < 4
