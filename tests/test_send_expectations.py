"""``mhw send`` with a deliberate forgery expects the handler to refuse it (issue 15).

``--bad-signature``, ``--no-sign`` and a ``--timestamp-offset`` past Magic Hour's five minutes
used to print ✓ and exit 0 when the handler accepted the forgery. They now expect a 4xx unless
``--expect-status`` says otherwise, and ``--expect-status`` takes a class such as ``4xx``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from test_send import Handler

from conftest import SECRET, Mhw

FORGERIES = [
    ["--bad-signature"],
    ["--no-sign"],
    ["--timestamp-offset", "-600"],
    ["--timestamp-offset", "600"],
]


@pytest.fixture
def handler() -> Iterator[Handler]:
    server = Handler()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def answering(handler: Handler, status: int) -> None:
    handler.answer = lambda _: (status, b'{"answer":"%d"}' % status, [])


def send(mhw: Mhw, handler: Handler, *flags: str) -> tuple[int, dict[str, object]]:
    signing = [] if "--no-sign" in flags else ["-s", SECRET]
    result = mhw("send", "video.completed", "-u", handler.url, *signing, *flags, "-f", "json")
    assert result.stderr == "", result.stderr
    return result.code, json.loads(result.stdout)


@pytest.mark.parametrize("forgery", FORGERIES, ids=" ".join)
def test_a_forgery_that_the_handler_accepts_fails(
    mhw: Mhw, handler: Handler, forgery: list[str]
) -> None:
    answering(handler, 200)
    code, report = send(mhw, handler, *forgery)
    assert (code, report["ok"], report["expected_status"]) == (1, False, "4xx")


@pytest.mark.parametrize(
    ("forgery", "status"), list(zip(FORGERIES, [401, 400, 403, 401], strict=True))
)
def test_a_forgery_that_the_handler_refuses_passes(
    mhw: Mhw, handler: Handler, forgery: list[str], status: int
) -> None:
    answering(handler, status)
    code, report = send(mhw, handler, *forgery)
    assert (code, report["ok"], report["status"]) == (0, True, status)


def test_a_crash_is_not_a_rejection_and_acceptance_is_not_either(
    mhw: Mhw, handler: Handler
) -> None:
    for status, code in ((500, 1), (200, 1), (401, 0)):
        answering(handler, status)
        assert send(mhw, handler, "--bad-signature")[0] == code, status


def test_the_text_verdict_says_what_was_expected(mhw: Mhw, handler: Handler) -> None:
    answering(handler, 200)
    result = mhw("send", "video.completed", "-u", handler.url, "-s", SECRET, "--no-sign")
    assert result.code == 2  # --no-sign with --secret is a usage error, as before
    result = mhw("send", "video.completed", "-u", handler.url, "--no-sign")
    assert result.code == 1
    assert result.stdout.startswith("✗ video.completed")
    assert "status 4xx" in result.stdout


def test_only_an_offset_past_the_tolerance_expects_a_rejection(mhw: Mhw, handler: Handler) -> None:
    answering(handler, 200)
    code, report = send(mhw, handler, "--timestamp-offset", "-60")
    assert (code, report["ok"], report["expected_status"]) == (0, True, None)
    code, report = send(mhw, handler, "--timestamp-offset", "-301")
    assert (code, report["ok"], report["expected_status"]) == (1, False, "4xx")


def test_an_explicit_expectation_wins(mhw: Mhw, handler: Handler) -> None:
    answering(handler, 200)
    code, report = send(mhw, handler, "--no-sign", "--expect-status", "2xx")
    assert (code, report["ok"], report["expected_status"]) == (0, True, "2xx")


@pytest.mark.parametrize(
    ("expect", "status", "code"),
    [
        ("4xx", 404, 0),
        ("4XX", 499, 0),
        ("4xx", 200, 1),
        ("4xx", 500, 1),
        ("5xx", 503, 0),
    ],
)
def test_expect_status_takes_a_class(
    mhw: Mhw, handler: Handler, expect: str, status: int, code: int
) -> None:
    answering(handler, status)
    assert send(mhw, handler, "--expect-status", expect)[0] == code


def test_expect_status_takes_a_class_and_nothing_else(mhw: Mhw, handler: Handler) -> None:
    answering(handler, 404)
    assert send(mhw, handler, "--expect-status", "4xx")[0] == 0
    for expect in ("4x", "6xx", "600"):
        args = ["send", "video.completed", "-u", handler.url, "-s", SECRET]
        result = mhw(*args, "--expect-status", expect)
        assert result.code == 2, result.stdout + result.stderr
        assert "--expect-status" in result.stderr and len(result.stderr.splitlines()) == 1
    assert len(handler.received) == 1


def test_a_load_test_counts_a_class(mhw: Mhw, handler: Handler) -> None:
    answering(handler, 401)
    result = mhw(
        "send", "video.completed", "-u", handler.url, "-s", SECRET, "--bad-signature",
        "--count", "6", "-c", "2", "-f", "json",
    )  # fmt: skip
    assert result.code == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert (summary["ok"], summary["statuses"]) == (6, {"401": 6})
