"""``mhw check`` and ``run_checks`` against handlers written here, served over real loopback.

The guide's handlers (``tests/guide_handlers.py``) are graded as Magic Hour's users deploy
them; the careful handler (``tests/handler_variants.py``) must pass everything, and each
variant of it, which breaks exactly one rule, must fail exactly the matching check.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import socket
import time
from collections.abc import Iterator
from xml.etree import ElementTree

import pytest
from raw_http import RawServer, endless, fixed, raw_server, trickle

from conftest import SECRET, Mhw
from mh_webhook_cli.send.battery import (
    CHECK_IDS,
    CheckOutcome,
    CheckReport,
    check_handler,
    run_checks,
)

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None,
    reason="fastapi and uvicorn are not installed (pip install -e '.[dev]' installs them)",
)

SIGNATURE_CHECKS = {
    "forged-signature-rejected",
    "wrong-secret-rejected",
    "tampered-body-rejected",
    "stale-timestamp-rejected",
    "future-timestamp-rejected",
    "unsigned-rejected",
}
NEEDS_SECRET = set(CHECK_IDS) - {
    "forged-signature-rejected",
    "wrong-secret-rejected",
    "unsigned-rejected",
    "answers-within-10s",
}
VARIANTS = {
    "accepts-unsigned": {"unsigned-rejected"},
    "ignores-future": {"future-timestamp-rejected"},
    "ignores-stale": {"stale-timestamp-rejected"},
    "trusts-seen-signatures": {"tampered-body-rejected"},
    "rejects-duplicates": {"retry-accepted"},
    "strict-schema": {"unknown-fields-accepted"},
    "crashes-on-unknown-type": {"unknown-event-type-accepted"},
    "refuses-unknown-type": set(),  # advice, not a failure
    "crashes-on-non-json": {"non-json-not-5xx"},
    "slow-on-extra-fields": {"answers-within-10s"},
    "serial": {"burst-within-10s"},
    "assumes-video-fields": {"signed-events-accepted"},
}
TIGHT_LIMIT = 1.0
"""The time limit for the variants that are slow on purpose: their slowness is fractions
of a second (see tests/handler_variants.py), so their tests stay fast."""


@pytest.fixture(scope="module")
def handlers() -> Iterator[str]:
    """One uvicorn serving every handler: ``{base}/{name}/webhook``."""
    from asgi_server import serve
    from fastapi import FastAPI
    from guide_handlers import app as guide
    from guide_handlers import production_app
    from handler_variants import BREAKS, careful_app

    root = FastAPI()
    root.mount("/guide", guide)
    root.mount("/production", production_app)
    root.mount("/careful", careful_app(SECRET))
    for name in BREAKS:
        root.mount(f"/{name}", careful_app(SECRET, name))
    with serve(root) as base:
        yield base


def url(base: str, name: str) -> str:
    return f"{base}/{name}/webhook"


def outcomes(report: CheckReport) -> dict[str, CheckOutcome]:
    return {result.id: result.outcome for result in report.results}


# The guide's handlers


def test_the_guides_handler_fails_every_signature_check_and_crashes_on_non_json(
    handlers: str,
) -> None:
    report = run_checks(url(handlers, "guide"), SECRET)
    assert set(report.failed_ids) == SIGNATURE_CHECKS | {"non-json-not-5xx"}
    assert not report.passed
    assert report.result("signed-events-accepted").outcome is CheckOutcome.PASSED
    forged = report.result("forged-signature-rejected")
    assert "accepted a forged request: it does not verify signatures" in forged.detail
    assert forged.answer is not None and forged.answer.status == 200
    assert forged.fix and "HMAC-SHA256" in forged.fix
    crash = report.result("non-json-not-5xx")
    assert crash.answer is not None and crash.answer.status == 500
    assert "Magic Hour will retry it for 24 hours" in crash.detail


def test_the_guides_production_handler_answers_200_to_what_it_cannot_parse(
    handlers: str,
) -> None:
    report = run_checks(url(handlers, "production"), SECRET)
    assert set(report.failed_ids) == SIGNATURE_CHECKS
    advice = report.result("non-json-not-5xx")
    assert advice.outcome is CheckOutcome.ADVICE and advice.severity == "advice"
    assert advice.answer is not None and advice.answer.status == 200
    assert b'[{"error":"Internal error"},500]' in advice.answer.body


# The careful handler and its variants


def test_the_careful_handler_passes_every_check_quickly(handlers: str) -> None:
    started = time.perf_counter()
    report = run_checks(url(handlers, "careful"), SECRET)
    elapsed = time.perf_counter() - started
    assert outcomes(report) == dict.fromkeys(CHECK_IDS, CheckOutcome.PASSED)
    assert report.passed
    assert elapsed < 2.0, f"the battery took {elapsed:.2f} s against a fast local handler"
    burst = report.result("burst-within-10s")
    assert len(burst.exchanges) == 20 and all(e.status == 200 for e in burst.exchanges)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_variant_fails_exactly_the_check_for_the_rule_it_breaks(
    handlers: str, variant: str
) -> None:
    slow = variant in ("slow-on-extra-fields", "serial")
    limit = {"time_limit": TIGHT_LIMIT} if slow else {}
    report = run_checks(url(handlers, variant), SECRET, **limit)  # type: ignore[arg-type]
    assert set(report.failed_ids) == VARIANTS[variant]
    for check_id in VARIANTS[variant]:
        result = report.result(check_id)
        assert result.fix, f"{check_id} failed without a fix"


def test_refusing_an_unknown_event_type_is_advice(handlers: str) -> None:
    report = run_checks(url(handlers, "refuses-unknown-type"), SECRET)
    result = report.result("unknown-event-type-accepted")
    assert (result.outcome, result.passed, report.passed) == (CheckOutcome.ADVICE, False, True)
    assert result.answer is not None and result.answer.status == 400


def test_a_slow_answer_is_graded_and_reported_as_late(handlers: str) -> None:
    report = run_checks(url(handlers, "slow-on-extra-fields"), SECRET, time_limit=TIGHT_LIMIT)
    assert report.result("unknown-fields-accepted").outcome is CheckOutcome.PASSED
    late = report.result("answers-within-10s")
    assert late.answer is not None and late.answer.label == "video.completed, extra fields"
    assert f"past the {TIGHT_LIMIT:g} s Magic Hour waits" in late.detail


# Without a secret, selecting checks, bad ids


def test_without_a_secret_the_checks_that_need_it_are_skipped(handlers: str) -> None:
    report = run_checks(url(handlers, "careful"))
    skipped = {r.id for r in report.results if r.outcome is CheckOutcome.SKIPPED}
    assert skipped == NEEDS_SECRET
    assert all(report.result(i).passed is None for i in skipped)
    assert report.passed
    guide = run_checks(url(handlers, "guide"))
    assert set(guide.failed_ids) == {
        "forged-signature-rejected",
        "wrong-secret-rejected",
        "unsigned-rejected",
    }


def test_only_and_skip_pick_checks_by_id(handlers: str) -> None:
    only = run_checks(url(handlers, "guide"), SECRET, only=["unsigned-rejected", "retry-accepted"])
    assert [r.id for r in only.results] == ["unsigned-rejected", "retry-accepted"]
    skipped = run_checks(url(handlers, "careful"), SECRET, skip=["burst-within-10s"])
    assert [r.id for r in skipped.results] == list(CHECK_IDS[:-1])
    with pytest.raises(ValueError, match="unknown check 'unsigned'"):
        run_checks(url(handlers, "careful"), SECRET, only=["unsigned"])


def test_run_checks_works_inside_a_running_event_loop(handlers: str) -> None:
    """As from an async test (pytest-asyncio, anyio): the synchronous API inside a loop."""

    async def inside_a_loop() -> tuple[CheckReport, CheckReport]:
        synchronous = run_checks(url(handlers, "careful"), SECRET, only=["unsigned-rejected"])
        awaited = await check_handler(url(handlers, "careful"), SECRET, only=["retry-accepted"])
        return synchronous, awaited

    synchronous, awaited = asyncio.run(inside_a_loop())
    assert synchronous.passed and awaited.passed
    assert [synchronous.results[0].id, awaited.results[0].id] == [
        "unsigned-rejected",
        "retry-accepted",
    ]


# Handlers that do not answer, or answer something hostile


def test_a_handler_that_stops_answering_costs_one_deadline_not_one_per_check() -> None:
    with raw_server(trickle(interval=0.2, limit=20)) as server:
        started = time.perf_counter()
        report = run_checks(server.url, SECRET, time_limit=0.3)
        elapsed = time.perf_counter() - started
    assert set(report.failed_ids) == set(CHECK_IDS)
    first = report.result("signed-events-accepted")
    assert "timed out after 2.3 s" in first.detail
    assert "not sent: an earlier request got no answer" in report.result("retry-accepted").detail
    assert server.requests == 1
    assert elapsed < 5, elapsed


def test_nothing_listening_fails_every_check_at_once() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.perf_counter()
    report = run_checks(f"http://127.0.0.1:{port}/webhook", SECRET)
    assert time.perf_counter() - started < 5
    assert set(report.failed_ids) == set(CHECK_IDS)
    assert "connection refused" in report.result("unsigned-rejected").detail


HOSTILE = b"\x1b[2J\x1b]0;pwned\x07ok\r\n\xe2\x80\xae\x00\xef\xbf\xbe</failure>]]>&<x>"


def test_a_hostile_answer_is_escaped_in_every_format(mhw: Mhw) -> None:
    with raw_server(fixed(200, HOSTILE)) as server:
        text = mhw("check", server.url, "-s", SECRET, "--only", "unsigned-rejected")
        junit = mhw("check", server.url, "-s", SECRET, "--only", "unsigned-rejected", "-f", "junit")
        data = mhw("check", server.url, "-s", SECRET, "--only", "unsigned-rejected", "-f", "json")
    assert text.code == junit.code == data.code == 1
    assert "\x1b" not in text.stdout and "\x00" not in text.stdout and "\u202e" not in text.stdout
    assert "\\x1b[2J" in text.stdout
    assert "\x1b" not in junit.stdout
    tree = ElementTree.fromstring(junit.stdout.encode())  # noqa: S314 (mhw's own output)
    failure = tree.find("./testsuite/testcase/failure")
    assert failure is not None and failure.text is not None and "&<x>" in failure.text
    [check] = json.loads(data.stdout)["checks"]
    assert check["body"].startswith("\x1b[2J")  # JSON escapes it itself


# The command


def test_check_command_text_report_card(mhw: Mhw, handlers: str) -> None:
    result = mhw("check", url(handlers, "guide"), "--secret", SECRET)
    assert result.code == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"mhw check {url(handlers, 'guide')}"
    assert any(line.startswith("✓ signed-events-accepted") for line in lines)
    forged = next(i for i, line in enumerate(lines) if line.startswith("✗ forged-signature"))
    assert "accepted a forged request: it does not verify signatures" in lines[forged]
    assert lines[forged + 1].split() == ["sent", "video.completed,", "forged", "signature"]
    assert lines[forged + 2].split()[:2] == ["got", "200"]
    assert lines[forged + 3].split()[0] == "fix"
    assert lines[-1].startswith("✗ 6 passed, 7 failed")
    assert result.stderr == ""


def test_check_command_json_and_exit_0(mhw: Mhw, handlers: str) -> None:
    result = mhw("check", url(handlers, "careful"), "-s", SECRET, "--format", "json")
    assert result.code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] is True and report["url"] == url(handlers, "careful")
    assert [check["id"] for check in report["checks"]] == list(CHECK_IDS)
    first = report["checks"][0]
    assert set(first) >= {"id", "passed", "severity", "status", "latency_ms", "detail", "fix"}
    assert (first["passed"], first["severity"], first["status"]) == (True, "required", 200)


def test_check_command_junit(mhw: Mhw, handlers: str) -> None:
    result = mhw("check", url(handlers, "production"), "-s", SECRET, "-f", "junit")
    assert result.code == 1
    suite = ElementTree.fromstring(result.stdout.encode()).find("testsuite")  # noqa: S314
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("13", "6", "0")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert list(cases) == list(CHECK_IDS)
    assert cases["unsigned-rejected"].find("failure") is not None
    assert cases["retry-accepted"].find("failure") is None
    advice = cases["non-json-not-5xx"].find("system-out")
    assert advice is not None and advice.text and advice.text.startswith("advice:")


def test_check_command_without_a_secret_warns_and_runs_the_rest(mhw: Mhw, handlers: str) -> None:
    result = mhw("check", url(handlers, "careful"), "--only", "unsigned-rejected,retry-accepted")
    assert result.code == 0, result.stdout + result.stderr
    assert "- retry-accepted" in result.stdout and "needs the webhook secret" in result.stdout
    assert result.stderr.startswith("warning: no webhook secret: 1 check skipped")
    secret_from_env = mhw(
        "check",
        url(handlers, "careful"),
        "--only",
        "retry-accepted",
        env={"MAGIC_HOUR_WEBHOOK_SECRET": SECRET},
    )
    assert secret_from_env.code == 0 and "✓ retry-accepted" in secret_from_env.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--only", "unsigned"], "unknown check 'unsigned'"),
        (["--skip", ",".join(CHECK_IDS)], "no check left"),
        (["--concurrency", "101"], "--concurrency"),
        (["-H", "no colon"], "invalid header"),
    ],
)
def test_check_command_usage_errors(mhw: Mhw, args: list[str], needle: str) -> None:
    with raw_server(fixed(200, b"")) as server:
        result = mhw("check", server.url, "-s", SECRET, *args)
        assert server.requests == 0
    assert result.code == 2, result.stdout + result.stderr
    assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_check_command_refuses_a_url_that_is_not_http(mhw: Mhw) -> None:
    result = mhw("check", "localhost:8000/webhook", "-s", SECRET)
    assert result.code == 2
    assert "has no scheme: write http://localhost:8000/webhook" in result.stderr


def test_check_command_sends_extra_headers(mhw: Mhw) -> None:
    with raw_server(fixed(401, b"")) as server:
        result = mhw("check", server.url, "--only", "unsigned-rejected", "-H", "X-Env: ci")
        heads = list(server.heads)
    assert result.code == 0
    assert all(b"\r\nX-Env: ci" in head for head in heads) and heads


def test_the_help_lists_every_check_id(mhw: Mhw) -> None:
    result = mhw("check", "--help", env={"COLUMNS": "400"})
    assert result.code == 0
    assert all(check_id in result.stdout for check_id in CHECK_IDS)


def test_a_redirect_fails_and_says_where_it_points(mhw: Mhw) -> None:
    def redirect(server: RawServer, connection: socket.socket) -> bool:
        head = b"HTTP/1.1 307 Temporary Redirect\r\nLocation: https://elsewhere.example/hook\r\n"
        server.send(connection, head + b"Content-Length: 0\r\n\r\n")
        return True

    with raw_server(redirect) as server:
        result = mhw("check", server.url, "-s", SECRET, "--only", "signed-events-accepted")
    assert result.code == 1
    line = next(line for line in result.stdout.splitlines() if "signed-events" in line)
    assert "redirected 307 to https://elsewhere.example/hook" in line
    assert "Magic Hour does not follow redirects" in result.stdout


def test_an_endless_answer_is_cut_off_not_buffered() -> None:
    with raw_server(endless(200)) as server:
        started = time.perf_counter()
        report = run_checks(server.url, SECRET, only=["unknown-fields-accepted"])
    assert time.perf_counter() - started < 10
    result = report.result("unknown-fields-accepted")
    assert result.outcome is CheckOutcome.PASSED
    assert result.answer is not None and len(result.answer.body) <= 512


def test_the_commands_copies_of_the_batterys_constants_agree() -> None:
    """``mhw check --help`` writes the ids and the burst's bounds out rather than import the
    battery (start-up is measured): held equal here."""
    import inspect

    from mh_webhook_cli.cli.check import CHECKS_HELP, check
    from mh_webhook_cli.send.battery import BURST_DEFAULT, BURST_MAX, CHECK_IDS

    assert CHECKS_HELP.split(", ") == list(CHECK_IDS)
    concurrency = inspect.signature(check, eval_str=True).parameters["concurrency"]
    assert concurrency.default == BURST_DEFAULT
    (option,) = concurrency.annotation.__metadata__
    assert option.max == BURST_MAX
