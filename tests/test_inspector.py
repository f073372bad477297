"""The web inspector (``mhw events ui``, ``mhw listen --ui``) in a real headless Chromium.

The page is driven over loopback as a developer uses it: the history from the store, events
published after it loaded, the detail, Replay to a real loopback server. The refusals (a
foreign Host, a missing token, a cross-site request) are checked with plain HTTP, as an
attacker's page would send them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import SECRET, wait_for
from mh_webhook_cli.cli.ui import inspector as make_inspector
from mh_webhook_cli.core.request import ForwardResult, Received
from mh_webhook_cli.core.signing import sign
from mh_webhook_cli.core.verification import verify
from mh_webhook_cli.receive.inspector import Inspector
from mh_webhook_cli.receive.store import Store

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "inspector.png"
"""Rewritten by the screenshot test when MHW_UPDATE_SCREENSHOT=1; committed for the README."""

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover
    Self = Any


def body_of(event_type: str, project: str, status: str = "complete") -> bytes:
    document: dict[str, Any] = {"type": event_type, "payload": {"id": project, "status": status}}
    if event_type.endswith("completed"):
        document["payload"]["downloads"] = [
            {"url": f"https://videos.magichour.ai/{project}.mp4", "expires_at": "2026-12-02"}
        ]
    return json.dumps(document).encode()


def signed_request(
    body: bytes,
    *,
    secret: str = SECRET,
    verification: str = "ok",
    event_type: str | None = "video.completed",
    project: str | None = "cm-project-1",
    findings: list[dict[str, str]] | None = None,
    received_at: float | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> Received:
    # Signed when it arrived: a replay re-signed now must carry a later timestamp, even
    # within the same second as the test began.
    timestamp = int(time.time() if received_at is None else received_at)
    return Received.of(
        received_at=time.time() if received_at is None else received_at,
        method="POST",
        target="/webhook",
        headers=headers
        or [
            ("Host", "127.0.0.1:8787"),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("magic-hour-event-signature", sign(secret, timestamp, body)),
            ("magic-hour-event-timestamp", str(timestamp)),
        ],
        body=body,
        client="127.0.0.1:50000",
        event_type=event_type,
        project_id=project,
        verification=verification,
        findings=findings or [],
        answer=200,
    )


def record_of(request: Received, request_id: int, retry_of: int | None = None) -> dict[str, Any]:
    """What ``mhw listen --format json`` prints for ``request``: what the listener publishes."""
    return {
        "kind": "request",
        "id": request_id,
        "received_at": "2026-12-01T12:00:00.000Z",
        "method": request.method,
        "path": request.target,
        "client": request.client,
        "type": request.event_type,
        "project_id": request.project_id,
        "status": "complete",
        "verification": request.verification,
        "valid": request.valid,
        "findings": request.findings,
        "retry_of": retry_of,
        "answer": request.answer,
        "forwards": [],
        "headers": dict(request.headers),
        "body": request.body.decode(),
        "body_encoding": "utf-8",
    }


def fill(path: Path, *requests: Received) -> list[int]:
    with Store(path) as store:
        return [receipt.id for receipt in store.add_many(requests)]


class Target:
    """A handler on loopback that records what it receives: where Replay sends."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("content-length", "16")
                self.end_headers()
                self.wfile.write(b'{"handled":true}')

            def log_message(self, *_: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/magic-hour"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def target() -> Iterator[Target]:
    served = Target()
    yield served
    served.close()


class LibraryInspector:
    """An :class:`Inspector` on an event loop of its own thread, as ``mhw listen`` runs one."""

    def __init__(self, store: Path | None, secrets: list[str]) -> None:
        self.inspector: Inspector = make_inspector(store, None, secrets, 300, 0)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.url = self._run(self.inspector.start())

    def _run(self, work: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(10)

    def publish(self, record: dict[str, Any]) -> None:
        self.inspector.publish(record)  # from this thread: publish is thread-safe

    def close(self) -> None:
        self._run(self.inspector.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


class EventsUi:
    """``mhw events ui --ui-port 0`` in a subprocess, and the URL it printed."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mh_webhook_cli", "events", "ui", "--ui-port", "0", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        line = wait_for(
            lambda: next((line for line in self.lines if "http://" in line), None),
            what="the inspector's URL",
        )
        self.url = line.split()[2]

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def close(self) -> int:
        self.process.terminate()
        return self.process.wait(10)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "capture" / "events.sqlite3"


@pytest.fixture
def ui_env(isolated_env: dict[str, str], store_path: Path) -> dict[str, str]:
    return {**isolated_env, "MHW_STORE": str(store_path), "MAGIC_HOUR_WEBHOOK_SECRET": SECRET}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        missing = (
            f"no Chromium at {CHROMIUM}: the browser tests need Debian's package "
            "(apt-get install -y chromium; .ci/run installs it)"
        )
        if os.environ.get("MHW_REQUIRE_CHROMIUM"):  # CI: a browser test must not pass unrun
            pytest.fail(missing)
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 860})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert errors == [], f"the page raised: {errors}"


def rows(page: Any) -> list[str]:
    return [str(text) for text in page.locator("#list .row").all_inner_texts()]


def test_events_published_after_load_appear_live_with_their_verdicts(
    page: Any, store_path: Path
) -> None:
    first = signed_request(body_of("video.started", "cm-old"), event_type="video.started")
    [old_id] = fill(store_path, first)
    served = LibraryInspector(store_path, [SECRET])
    try:
        page.goto(served.url)
        page.wait_for_selector("#live.on")
        wait_for(lambda: len(rows(page)) == 1, what="the history")
        good = signed_request(body_of("video.completed", "cm-good"), project="cm-good")
        bad = signed_request(
            body_of("image.completed", "cm-bad"),
            secret="not-the-secret",
            verification="signature_mismatch",
            event_type="image.completed",
            project="cm-bad",
        )
        good_id, bad_id = fill(store_path, good, bad)
        served.publish(record_of(good, good_id))
        served.publish(record_of(bad, bad_id, retry_of=old_id))
        shown = wait_for(lambda: len(rows(page)) == 3 and rows(page), what="the live rows")
        assert f"#{bad_id}" in shown[0] and "✗ signature_mismatch" in shown[0]
        assert f"retry of #{old_id}" in shown[0]
        assert f"#{good_id}" in shown[1] and "✓ signed" in shown[1] and "cm-good" in shown[1]
        assert f"#{old_id}" in shown[2]
        # Published again once its forwards are done: the same row, updated.
        forwarded = record_of(good, good_id)
        forwarded["forwards"] = [
            ForwardResult(
                target="http://127.0.0.1:9/", status=202, latency_ms=1.0, error=None, body=""
            )
        ]
        served.publish(forwarded)
        wait_for(lambda: rows(page)[1].endswith("202"), what="the forward result")
        assert len(rows(page)) == 3
        # A live row opens like a stored one: its detail comes from the store.
        page.locator("#list .row").first.click()
        page.wait_for_selector("[data-part=signature] .hints li")
        # A filter applies to what arrives live as to the history.
        page.locator("#filter-verdict").select_option("signature_mismatch")
        wait_for(lambda: len(rows(page)) == 1, what="the filtered list")
        again_good, again_bad = fill(store_path, good, bad)
        served.publish(record_of(good, again_good))
        served.publish(record_of(bad, again_bad))
        wait_for(lambda: len(rows(page)) == 2, what="the live match")
        assert all("signature_mismatch" in row for row in rows(page))
        assert f"#{again_bad}" in rows(page)[0]
    finally:
        served.close()


def test_replay_sends_the_exact_bytes_to_the_forward_target_and_re_signs_on_demand(
    page: Any, ui_env: dict[str, str], store_path: Path, target: Target
) -> None:
    request = signed_request(body_of("video.completed", "cm-replay"), received_at=time.time() - 900)
    [request_id] = fill(store_path, request)
    forwarded = ForwardResult(target=target.url, status=500, latency_ms=3.0, error=None, body="x")
    with Store(store_path) as store:
        store.add_forwards([(request_id, forwarded)])
    ui = EventsUi(ui_env)
    try:
        page.goto(ui.url)
        page.locator("#list .row").first.click()
        assert page.locator("input.target").input_value() == target.url
        page.get_by_role("button", name="Replay", exact=True).click()
        page.wait_for_selector(".replay-result .attempt")
        assert "200" in page.locator(".replay-result").inner_text()
        headers, body = target.received[0]
        assert body == request.body
        original = dict((name.lower(), value) for name, value in request.headers)
        for name in ("magic-hour-event-signature", "magic-hour-event-timestamp"):
            assert headers[name] == original[name]
        assert "mhw-forwarded" not in headers

        page.get_by_role("button", name="Replay re-signed").click()
        wait_for(lambda: len(target.received) == 2, what="the re-signed replay")
        headers, body = target.received[1]
        assert body == request.body
        assert headers["magic-hour-event-timestamp"] != original["magic-hour-event-timestamp"]
        assert verify(body, list(headers.items()), SECRET).valid  # fresh, so valid again
        wait_for(lambda: "re-signed" in page.locator(".replay-result").inner_text(), what="result")
        # A URL typed in its place; nothing listens there: the page says so.
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            nobody = f"http://127.0.0.1:{closed.getsockname()[1]}/"
        page.locator("input.target").fill(nobody)
        page.get_by_role("button", name="Replay", exact=True).click()
        wait_for(
            lambda: "cannot connect" in page.locator(".replay-result").inner_text(), what="error"
        )
        assert len(target.received) == 2
    finally:
        ui.close()


def test_the_detail_explains_a_bad_signature_as_verify_does(
    page: Any, ui_env: dict[str, str], store_path: Path
) -> None:
    request = signed_request(
        body_of("video.completed", "cm-hint"),
        secret=SECRET + "\n",
        verification="signature_mismatch",
        findings=[
            {"path": "$.payload.downloads[0].url", "code": "wrong_type", "message": "not a URL"}
        ],
    )
    [request_id] = fill(store_path, request)
    expected = verify(request.body, request.headers, SECRET, now=request.received_at)
    assert expected.hints  # a secret with a trailing newline is a mistake diagnosis knows
    ui = EventsUi(ui_env)
    try:
        page.goto(ui.url)
        page.wait_for_selector("#live.on")  # the feed, on the command's uvloop
        page.locator("#list .row").first.click()
        hints = page.locator("[data-part=signature] .hints li")
        hints.first.wait_for()
        assert hints.all_inner_texts() == [hint.message for hint in expected.hints]
        assert "✗ signature_mismatch" in page.locator("[data-part=signature]").inner_text()
        # The finding's JSON path points at the node in the folded body.
        page.get_by_role("button", name="$.payload.downloads[0].url").click()
        assert page.locator('.tree [data-path="$.payload.downloads[0].url"].finding').count() == 1
        page.get_by_role("button", name="Copy verify command").click()
        wait_for(
            lambda: f"mhw verify --event {request_id}" in page.locator("#notice").inner_text(),
            what="the copied command",
        )
    finally:
        ui.close()


def test_sender_controlled_text_is_shown_as_text_never_run(
    page: Any, ui_env: dict[str, str], store_path: Path
) -> None:
    markup = '<img src=x onerror="window.pwned=1">'
    body = json.dumps({"type": markup, "payload": {"id": markup, "<b>key</b>": markup}}).encode()
    headers = [("Host", "x"), ("X-Evil", "<script>window.pwned=2</script>\"'")]
    request = signed_request(
        body, verification="missing_signature", event_type=markup, project=markup, headers=headers
    )
    fill(store_path, request)
    ui = EventsUi(ui_env)
    try:
        page.goto(ui.url)
        page.locator("#list .row").first.click()
        page.wait_for_selector(".tree")
        assert markup in rows(page)[0]
        assert markup in page.locator("#detail-pane h2").inner_text()
        assert "<script>window.pwned=2</script>" in page.locator(".headers").inner_text()
        assert page.locator(".tree .key", has_text="<b>key</b>").count() == 1
        assert page.evaluate("window.pwned") is None
        assert page.locator("img, script:not([src])").count() == 0
    finally:
        ui.close()


def token_of(url: str) -> str:
    """The token in the URL mhw printed: after "#", never in the page."""
    return parse_qs(urlsplit(url).fragment)["token"][0]


def _get(
    url: str, path: str, headers: dict[str, str], method: str = "GET", body: bytes = b""
) -> tuple[int, bytes]:
    """One request with exactly these headers (no Host unless given), as any page can send."""
    port = urlsplit(url).port
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body or None)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def test_a_foreign_host_a_missing_token_and_cross_site_requests_are_refused(
    ui_env: dict[str, str], store_path: Path, target: Target
) -> None:
    request = signed_request(body_of("video.completed", "cm-x"))
    [request_id] = fill(store_path, request)
    ui = EventsUi(ui_env)
    try:
        host = urlsplit(ui.url).netloc
        # DNS rebinding: a name of the attacker's that resolves to 127.0.0.1.
        for path in ("/", "/app.js", "/api/requests"):
            status, _ = _get(ui.url, path, {"Host": "rebound.example.com"})
            assert status == 403, path
        status, page_html = _get(ui.url, "/", {"Host": host})
        assert status == 200
        token = token_of(ui.url)
        assert token.encode() not in page_html  # any local user can fetch the page
        replay = f"/api/requests/{request_id}/replay"
        to = json.dumps({"to": target.url}).encode()
        plain = {"Host": host, "Content-Type": "application/json"}
        assert _get(ui.url, replay, plain, "POST", to)[0] == 403  # no token
        assert _get(ui.url, replay, {**plain, "X-Mhw-Token": token + "x"}, "POST", to)[0] == 403
        for cross_site in (
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},
            {"Origin": "http://attacker.example"},
        ):
            headers = {**plain, "X-Mhw-Token": token, **cross_site}
            assert _get(ui.url, replay, headers, "POST", to)[0] == 403, cross_site
        assert _get(ui.url, "/api/requests", {"Host": host})[0] == 403
        assert _get(ui.url, "/api/stream", {"Host": host})[0] == 403
        assert target.received == []
        # The same action with the token, from the page's own origin, is carried out.
        with_token = {**plain, "X-Mhw-Token": token, "Origin": f"http://{host}"}
        status, answer = _get(ui.url, replay, with_token, "POST", to)
        assert status == 200 and json.loads(answer)["status"] == 200
        assert [body for _, body in target.received] == [request.body]
        # A URL that is not http(s) is refused before anything is sent.
        file_url = json.dumps({"to": "file:///etc/passwd"}).encode()
        assert _get(ui.url, replay, with_token, "POST", file_url)[0] == 400
        status, rows_json = _get(ui.url, "/api/requests", {"Host": host, "X-Mhw-Token": token})
        assert status == 200 and json.loads(rows_json)["rows"][0]["id"] == request_id
    finally:
        ui.close()


def test_the_inspector_listens_on_loopback_only_and_a_taken_port_is_one_line(
    ui_env: dict[str, str], store_path: Path
) -> None:
    ui = EventsUi(ui_env)
    try:
        assert ui.url.startswith("http://127.0.0.1:")
        taken = str(urlsplit(ui.url).port)
        second = subprocess.run(
            [sys.executable, "-m", "mh_webhook_cli", "events", "ui", "--ui-port", taken],
            env=ui_env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert second.returncode == 1
        assert f"cannot serve the inspector on 127.0.0.1:{taken}" in second.stderr
        assert "--ui-port 0" in second.stderr and "Traceback" not in second.stderr
    finally:
        assert ui.close() == 0  # SIGTERM stops it cleanly


def _open_feed(url: str, token: str, receive_buffer: int | None = None) -> socket.socket:
    port = urlsplit(url).port
    assert port is not None
    feed = socket.socket()
    if receive_buffer is not None:
        feed.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    feed.connect(("127.0.0.1", port))
    feed.sendall(
        f"GET /api/stream?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    )
    head = b""
    while b": connected\n\n" not in head:
        head += feed.recv(4096)
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"content-length" not in head.lower()
    return feed


class RenderThreads:
    """The inspector's own views, noting the thread each rendering runs on."""

    def __init__(self, views: Any) -> None:
        self.views = views
        self.threads: dict[str, set[int]] = {}

    def _noted(self, name: str) -> None:
        self.threads.setdefault(name, set()).add(threading.get_ident())

    def row(self, row: Any) -> dict[str, Any]:
        self._noted("row")
        return self.views.row(row)  # type: ignore[no-any-return]

    def live_row(self, record: dict[str, Any]) -> dict[str, Any]:
        return self.views.live_row(record)  # type: ignore[no-any-return]

    def detail(self, row: Any) -> dict[str, Any]:
        self._noted("detail")
        return self.views.detail(row)  # type: ignore[no-any-return]

    def raw(self, request: Received) -> bytes:
        return self.views.raw(request)  # type: ignore[no-any-return]


def test_a_list_and_a_detail_are_rendered_off_the_loop_that_may_be_the_listeners(
    store_path: Path,
) -> None:
    """Escaping and encoding a 1 MiB body took the loop 25-36 ms: every answer the listener
    owed meanwhile waited. Reading and rendering run on the inspector's reader thread."""
    from mh_webhook_cli.report.inspector import InspectorViews

    big = body_of("video.completed", "cm-big")[:-1] + b',"pad":"' + b"\x1b" * (1 << 20) + b'"}'
    [request_id] = fill(store_path, signed_request(big, project="cm-big"))
    views = RenderThreads(InspectorViews([SECRET], 300, None))
    inspector = Inspector(views, store_path, port=0)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        url = asyncio.run_coroutine_threadsafe(inspector.start(), loop).result(10)
        host = {"Host": urlsplit(url).netloc, "X-Mhw-Token": inspector.token}
        listed = _get(url, "/api/requests", host)
        shown = _get(url, f"/api/requests/{request_id}", host)
        assert (listed[0], shown[0]) == (200, 200)
        assert json.loads(shown[1])["body"] == big.decode()
        assert json.loads(listed[1])["rows"][0]["id"] == request_id
        assert views.threads.keys() == {"row", "detail"}
        assert thread.ident not in views.threads["row"] | views.threads["detail"]
    finally:
        asyncio.run_coroutine_threadsafe(inspector.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_a_page_that_stops_reading_never_holds_up_publish_or_the_other_pages() -> None:
    served = LibraryInspector(None, [])
    try:
        token = served.inspector.token
        assert not served.inspector.watched
        stalled = _open_feed(served.url, token, receive_buffer=4096)
        healthy = _open_feed(served.url, token)
        wait_for(lambda: served.inspector.watched, what="the feeds")
        request = signed_request(b"{}", event_type="video.completed")
        record = record_of(request, 1)
        record["path"] = "/" + "x" * 4000  # rows of 4 KB fill the stalled socket fast
        batches, batch = 30, 100
        received = bytearray()
        records = 0
        publishing = 0.0
        healthy.settimeout(10)
        # In batches that the healthy page reads in full, each flushed on its own: what the
        # stalled page's buffer holds grows past the limit, and the rest is dropped for it.
        for number in range(1, batches + 1):
            started = time.perf_counter()
            for _ in range(batch):
                served.publish(record)
            publishing += time.perf_counter() - started
            while records < number * batch:
                scanned = max(0, len(received) - 5)  # a "data:" cut in two counts once
                received += healthy.recv(1 << 20)
                records += received.count(b"data:", scanned)
                del received[: max(0, len(received) - 5)]
        count = batches * batch
        assert records == count  # the healthy page missed nothing
        assert publishing < 1.0  # an append each, whoever reads
        # The stalled page reads at last: once it has caught up, it is told how many it missed.
        stalled.settimeout(10)
        window = b""
        while not re.search(rb"event: dropped\ndata: (\d+)\n\n", window):
            chunk = stalled.recv(1 << 20)
            assert chunk, "the feed closed"
            window = window[-64:] + chunk
        notice = re.search(rb"event: dropped\ndata: (\d+)\n\n", window)
        assert notice is not None and 0 < int(notice.group(1)) < count
        # And it is live again.
        record["path"] = "/after-the-notice"
        served.publish(record)
        window = window[notice.end() :]
        while b"/after-the-notice" not in window:
            window += stalled.recv(1 << 20)
        stalled.close()
        healthy.close()
    finally:
        served.close()


def test_store_pages_newest_first_following_a_request(store_path: Path) -> None:
    now = time.time()
    ids = fill(
        store_path,
        *(signed_request(b"{}", received_at=now + index) for index in range(7)),
    )
    with Store(store_path) as store:
        first = list(store.rows(limit=3))
        second = list(store.rows(limit=3, following=first[-1].id))
        third = list(store.rows(limit=3, following=second[-1].id))
        assert [r.id for r in first + second + third] == ids[::-1]
        assert list(store.rows(following=ids[0])) == []
        # Oldest first, the same request continues the other way.
        assert [r.id for r in store.rows(oldest_first=True, following=ids[2])] == ids[3:]


def test_a_hundred_thousand_stored_requests_page_in_and_filter_without_a_stall(
    page: Any, ui_env: dict[str, str], store_path: Path
) -> None:
    now = time.time() - 100_000
    image = signed_request(b"{}", event_type="image.completed", project="cm-deep", received_at=now)
    one = signed_request(body_of("video.completed", "cm-bulk"))
    # Each its own body, as the listener stores them (its type and project come from it).
    bulk = (
        dataclasses.replace(
            one,
            request=dataclasses.replace(one.request, body=body_of("video.completed", f"cm-{i}")),
            project_id=f"cm-{i}",
            received_at=now + 1 + i,
        )
        for i in range(100_000)
    )
    with Store(store_path) as store:
        store.add_many([image, *bulk])
    ui = EventsUi(ui_env)
    try:
        started = time.perf_counter()
        page.goto(ui.url)
        wait_for(lambda: rows(page) and "#100001" in rows(page)[0], what="the newest")
        first_rows = time.perf_counter() - started
        # Virtual: a handful of row elements however long the list.
        for _ in range(20):
            page.locator("#list").evaluate("list => { list.scrollTop = list.scrollHeight; }")
            page.wait_for_timeout(50)
        assert page.locator("#list .row").count() < 80
        loaded = page.locator("#list-foot").inner_text()
        assert "scroll for older" in loaded
        # A project id only the oldest request has: found by paging through the scan budget.
        page.locator("#filter-text").fill("cm-deep")
        wait_for(lambda: len(rows(page)) == 1 and "cm-deep" in rows(page)[0], what="the match")
        wait_for(lambda: page.locator("#list-foot").inner_text() == "1 request(s)", what="done")
        assert first_rows < 15  # a page, not the store: generous for a loaded 2-core machine
    finally:
        ui.close()


def test_screenshot_of_the_inspector(
    page: Any, ui_env: dict[str, str], store_path: Path, tmp_path: Path, target: Target
) -> None:
    """The README's picture, taken from the real page (MHW_UPDATE_SCREENSHOT=1 rewrites it)."""
    now = time.time() - 600
    sample = [
        signed_request(
            body_of(
                f"image.{state}", f"cm{index}w8", "queued" if state == "started" else "complete"
            ),
            event_type=f"image.{state}",
            project=f"cm{index}w8",
        )
        for index, state in enumerate(["started", "completed", "started", "completed"] * 2)
    ] + [
        signed_request(
            body_of("video.started", "cm3x9k2"), event_type="video.started", project="cm3x9k2"
        ),
        signed_request(body_of("video.completed", "cm3x9k2"), project="cm3x9k2"),
        signed_request(
            body_of("image.completed", "cm4b7q1"),
            secret=SECRET + "\n",
            verification="signature_mismatch",
            event_type="image.completed",
            project="cm4b7q1",
        ),
        signed_request(
            body_of("video.errored", "cm5r2d8", "error"),
            event_type="video.errored",
            project="cm5r2d8",
            findings=[
                {
                    "path": "$.payload.error",
                    "code": "missing_field",
                    "message": "required field 'error' is missing",
                }
            ],
        ),
        signed_request(body_of("video.completed", "cm3x9k2"), project="cm3x9k2"),
    ]
    for index, request in enumerate(sample):
        request.received_at = now + index * 7
    ids = fill(store_path, *sample)
    with Store(store_path) as store:
        store.add_forwards(
            [
                (
                    ids[-4],
                    ForwardResult(
                        target=target.url,
                        status=200,
                        latency_ms=12.4,
                        error=None,
                        body='{"ok":true}',
                    ),
                ),
                (
                    ids[-3],
                    ForwardResult(
                        target=target.url,
                        status=401,
                        latency_ms=3.1,
                        error=None,
                        body="bad signature",
                    ),
                ),
            ]
        )
    ui = EventsUi(ui_env)
    try:
        page.goto(ui.url)
        wait_for(lambda: len(rows(page)) == len(sample), what="the rows")
        page.locator("#list .row").nth(2).click()
        page.set_viewport_size({"width": 1440, "height": 820})
        page.wait_for_selector("[data-part=signature] .hints li")
        shot = tmp_path / "inspector.png"
        page.screenshot(path=str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if os.environ.get("MHW_UPDATE_SCREENSHOT") == "1":
            SCREENSHOT.parent.mkdir(exist_ok=True)
            SCREENSHOT.write_bytes(shot.read_bytes())
    finally:
        ui.close()


def test_the_list_filters_by_type_verdict_and_text_a_page_at_a_time(store_path: Path) -> None:
    now = time.time()
    requests = [
        signed_request(
            body_of(kind, f"cm-{index}"),
            event_type=kind,
            project=f"cm-{index}",
            verification="ok" if index % 2 else "signature_mismatch",
            received_at=now + index,
        )
        for index, kind in enumerate(["video.completed", "image.completed"] * 150)
    ]
    ids = fill(store_path, *requests)
    served = LibraryInspector(store_path, [SECRET])
    try:
        host = urlsplit(served.url).netloc
        headers = {"Host": host, "X-Mhw-Token": served.inspector.token}

        def listing(query: str) -> tuple[list[int], int | None]:
            status, answer = _get(served.url, f"/api/requests?{query}", headers)
            assert status == 200, answer
            page = json.loads(answer)
            return [row["id"] for row in page["rows"]], page["next"]

        first, after = listing("")
        second, end = listing(f"before={after}")
        third, _ = listing(f"before={end}")
        assert first + second + third == ids[::-1]
        images, _ = listing("type=image.*&verdict=ok")
        assert images == ids[1::2][::-1][:100]  # image.completed are the odd ones
        bad, _ = listing("verdict=invalid&type=image.*")
        assert bad == []  # every image.completed is the odd one, signed right
        # cm-7 and cm-70 to cm-79, newest first.
        assert listing("q=cm-7")[0] == [ids[i] for i in range(79, 69, -1)] + [ids[7]]
        status, _ = _get(served.url, "/api/requests?before=x", headers)
        assert status == 400
    finally:
        served.close()


def test_listen_ui_streams_each_request_and_says_where_it_is(
    ui_env: dict[str, str], tmp_path: Path
) -> None:
    """``mhw listen --ui``: the inspector's URL is in the banner, the first JSON status line
    and the ready file; it is its own loopback port, not the webhook port; each request the
    listener stores reaches an open page as it arrives, judged."""
    ready = tmp_path / "ready.json"
    options = ("--port", "0", "--ui", "--ui-port", "0", "--ready-file", str(ready))
    listener = subprocess.Popen(
        [sys.executable, "-m", "mh_webhook_cli", "listen", *options, "--format", "json"],
        env=ui_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(ready.exists, what="the ready file")
        where = json.loads(ready.read_text())
        ui_url, url = where["ui_url"], where["url"]
        assert ui_url.startswith("http://127.0.0.1:") and ui_url != url
        host = urlsplit(ui_url).netloc
        assert _get(ui_url, "/", {"Host": "rebound.example.com"})[0] == 403
        status, page_html = _get(ui_url, "/", {"Host": host})
        assert status == 200
        token = token_of(ui_url)
        assert token.encode() not in page_html
        feed = _open_feed(ui_url, token)
        feed.settimeout(10)
        request = signed_request(body_of("video.completed", "cm-live"))
        port = int(url.rsplit(":", 1)[1].strip("/"))
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("POST", "/webhook", request.body, dict(request.headers))
        assert connection.getresponse().status == 200
        connection.close()
        streamed = b""
        while b"cm-live" not in streamed:
            streamed += feed.recv(65536)
        record = json.loads(streamed.split(b"data: ", 1)[1].split(b"\n", 1)[0])
        assert (record["id"], record["project_id"], record["verification"]) == (1, "cm-live", "ok")
        feed.close()
    finally:
        listener.terminate()
        out, err = listener.communicate(timeout=10)
    status_line = json.loads(out.splitlines()[0])
    assert status_line["state"] == "listening" and status_line["ui_url"] == ui_url
    assert f"inspect  {ui_url}" in err
