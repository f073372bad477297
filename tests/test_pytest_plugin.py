"""mhw's pytest plugin, used as a project that installed mhw uses it (pytester).

Each test writes a small project: an app with a webhook handler, and tests that use the
``magic_hour_webhook`` fixture with the framework's own test client. pytest finds the fixture
through the ``pytest11`` entry point, with no ``pytest_plugins`` line in the project.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from conftest import SECRET

pytest_plugins = ["pytester"]

VERIFY = '''
import hashlib, hmac, json, time

SECRET = "{secret}"


def verdict(body, signature, timestamp):
    """The status a careful handler answers, written from Magic Hour's docs."""
    if not signature or not timestamp or not timestamp.isdigit():
        return 401
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    if not hmac.compare_digest(expected.hexdigest(), signature):
        return 401
    if abs(time.time() - int(timestamp)) > 300:
        return 401
    try:
        event = json.loads(body)
    except ValueError:
        return 400
    return 200 if isinstance(event, dict) and "type" in event else 400
'''

FASTAPI_APP = """
from fastapi import FastAPI, Request, Response
from verify import verdict

app = FastAPI()
received = []


@app.post("/webhook")
async def webhook(request: Request) -> Response:
    body = await request.body()
    status = verdict(
        body,
        request.headers.get("magic-hour-event-signature"),
        request.headers.get("magic-hour-event-timestamp"),
    )
    if status == 200:
        received.append(body)
    return Response(status_code=status)
"""

FLASK_APP = """
from flask import Flask, request
from verify import verdict

app = Flask(__name__)
received = []


@app.post("/webhook")
def webhook():
    body = request.get_data()
    status = verdict(
        body,
        request.headers.get("magic-hour-event-signature"),
        request.headers.get("magic-hour-event-timestamp"),
    )
    if status == 200:
        received.append(body)
    return "", status
"""

# The same tests for both frameworks: only how the client is made differs.
USER_TESTS = """
import json

import pytest
from app import received

{client}


@pytest.fixture
def magic_hour_webhook_secret():
    return "{secret}"


@pytest.mark.parametrize("event_type", ["video.completed", "image.errored", "audio.started"])
def test_a_genuine_event_is_accepted(client, magic_hour_webhook, event_type):
    delivery = magic_hour_webhook.delivery(event_type)
    assert delivery.post(client, "/webhook").status_code == 200
    assert json.loads(received[-1])["type"] == event_type
    assert received[-1] == delivery.body


def test_changes_are_applied_and_still_signed(client, magic_hour_webhook):
    delivery = magic_hour_webhook.delivery(
        "video.errored", changes={{"payload.error.code": "file_too_large"}}
    )
    assert delivery.post(client, "/webhook").status_code == 200
    assert json.loads(received[-1])["payload"]["error"]["code"] == "file_too_large"


def test_an_unknown_event_type_gets_a_realistic_payload(client, magic_hour_webhook):
    delivery = magic_hour_webhook.delivery("video.queued")
    assert delivery.post(client, "/webhook").status_code == 200
    assert delivery.event["payload"]["id"]


@pytest.mark.parametrize(
    "forgery",
    [
        {{"secret": "not-the-secret"}},
        {{"timestamp_offset": -600}},
        {{"timestamp_offset": 600}},
        {{"signed": False}},
        {{"headers": {{"magic-hour-event-signature": None}}}},
        {{"headers": {{"Magic-Hour-Event-Signature": "0" * 64}}}},
    ],
)
def test_a_forgery_is_refused(client, magic_hour_webhook, forgery):
    delivery = magic_hour_webhook.delivery("video.completed", **forgery)
    assert delivery.post(client, "/webhook").status_code == 401


def test_a_raw_body_is_signed_as_given(client, magic_hour_webhook):
    delivery = magic_hour_webhook.delivery(body=b"not json")
    assert delivery.body == b"not json" and delivery.event is None
    assert delivery.post(client, "/webhook").status_code == 400
    replaced = magic_hour_webhook.delivery(body={{"type": "video.started", "payload": {{}}}})
    assert replaced.post(client, "/webhook").status_code == 200
"""

DJANGO_APP = """
import django
from django.conf import settings

settings.configure(
    ROOT_URLCONF=__name__, ALLOWED_HOSTS=["testserver"], SECRET_KEY="tests", MIDDLEWARE=[]
)
django.setup()

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from verify import verdict

received = []


@csrf_exempt
def webhook(request):
    status = verdict(
        request.body,
        request.headers.get("magic-hour-event-signature"),
        request.headers.get("magic-hour-event-timestamp"),
    )
    if status == 200:
        received.append(request.body)
    return HttpResponse(status=status)


urlpatterns = [path("webhook", webhook)]
"""

CLIENTS = {
    "fastapi": (
        FASTAPI_APP,
        """
from fastapi.testclient import TestClient
from app import app


@pytest.fixture
def client():
    return TestClient(app)
""",
    ),
    "flask": (
        FLASK_APP,
        """
from app import app


@pytest.fixture
def client():
    return app.test_client()
""",
    ),
    "django": (
        DJANGO_APP,
        """
from django.test import Client


@pytest.fixture
def client():
    return Client()
""",
    ),
}


@pytest.mark.parametrize("framework", list(CLIENTS))
def test_deliveries_through_the_frameworks_test_client(
    pytester: pytest.Pytester, framework: str
) -> None:
    if importlib.util.find_spec(framework) is None:
        pytest.skip(
            f"{framework} is not installed (pip install -e '.[dev]' installs all but django)"
        )
    app, client = CLIENTS[framework]
    pytester.makepyfile(
        verify=VERIFY.format(secret=SECRET),
        app=app,
        test_webhooks=USER_TESTS.format(client=client, secret=SECRET),
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=12)


def test_the_default_secret_comes_from_the_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAGIC_HOUR_WEBHOOK_SECRET", "from-the-env")
    pytester.makepyfile(
        """
        import hashlib, hmac

        def test_signed_with_the_env_secret(magic_hour_webhook, magic_hour_webhook_secret):
            assert magic_hour_webhook_secret == "from-the-env"
            d = magic_hour_webhook.delivery("image.completed")
            timestamp = d.headers["magic-hour-event-timestamp"]
            expected = hmac.new(b"from-the-env", timestamp.encode() + b"." + d.body, hashlib.sha256)
            assert d.headers["magic-hour-event-signature"] == expected.hexdigest()
            assert d.headers["Content-Type"] == "application/json"
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


@pytest.fixture
def served() -> Iterator[dict[str, str]]:
    """The careful handler and the guide's, over loopback, for the battery helper."""
    pytest.importorskip("fastapi")
    from asgi_server import serve
    from fastapi import FastAPI
    from guide_handlers import app as guide
    from handler_variants import careful_app

    root = FastAPI()
    root.mount("/careful", careful_app(SECRET))
    root.mount("/guide", guide)
    with serve(root) as base:
        yield {"careful": f"{base}/careful/webhook", "guide": f"{base}/guide/webhook"}


def test_the_battery_helper_passes_a_careful_handler_and_fails_the_guides(
    pytester: pytest.Pytester, served: dict[str, str]
) -> None:
    pytester.makepyfile(
        f"""
        import pytest


        @pytest.fixture
        def magic_hour_webhook_secret():
            return "{SECRET}"


        def test_careful(magic_hour_webhook):
            report = magic_hour_webhook.assert_handler_passes("{served["careful"]}")
            assert report.passed and len(report.results) == 13


        def test_guide(magic_hour_webhook):
            magic_hour_webhook.assert_handler_passes("{served["guide"]}")


        def test_guide_without_the_burst(magic_hour_webhook):
            report = magic_hour_webhook.check("{served["guide"]}", only=["unsigned-rejected"])
            assert report.failed_ids == ["unsigned-rejected"]
        """
    )
    # In-process, so that the handlers served by this test are there to answer.
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "mhw check *guide/webhook",
            "✓ signed-events-accepted*",
            "✗ forged-signature-rejected*accepted a forged request*",
            "✗ 6 passed, 7 failed*",
        ]
    )
    assert "pytest_plugin.py" not in result.stdout.str(), "the report card, not mhw's traceback"
