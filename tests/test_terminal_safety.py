"""What reaches a person's terminal: a sender's text is shown, never obeyed.

Every string a stranger controls (path, headers, ``type``, ``payload.id``, any payload text)
must reach the screen with its control characters escaped: one event is one line, and the
only escape sequences on the screen are the colours mhw itself draws.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_listen import Start, event_body, signed_headers, start_listener  # noqa: F401

from conftest import SECRET, Mhw, wait_for
from mh_webhook_cli.core.json_text import dumps
from mh_webhook_cli.core.request import Received, Request
from mh_webhook_cli.magichour.emulator import ApiCall
from mh_webhook_cli.receive.listener import ListenConfig, Listener
from mh_webhook_cli.receive.store import Store
from mh_webhook_cli.report import console as output
from mh_webhook_cli.report.emulate import activity_line
from mh_webhook_cli.report.escape import shown
from mh_webhook_cli.report.events import detail_text, list_text
from mh_webhook_cli.report.listen import finding_lines, payload_lines, request_line

FORGED = "14:00:00  video.completed  clx  complete  ✓ signed  → 200  #9"
HOSTILE_TYPE = f"video.completed\n{FORGED}\r\x1b]0;pwned\x07\x1b[1A\x1b[2K\u202eevil"
HOSTILE_ID = "clx\x1b[2J\x9b31m\u2066id\x7f"
HOSTILE_STATUS = "complete\n\x1bPtmux;\x1b\x1b]52;c;Zm9v\x07\x1b\\"

COLOUR = {"FORCE_COLOR": "1", "TERM": "xterm-256color"}
"""Rich's colours in a pipe, as on a terminal (the tests' environment says TERM=dumb)."""
SGR = re.compile(r"\x1b\[[0-9;]*m")
"""The escape sequence of mhw's own styling (rich colours, bold, dim)."""
OWN = re.compile(SGR.pattern + r"|\x1b\]8;(?:id=\d+;https?://[!-~]+)?;?\x1b\\")
"""mhw's escapes: its styles, and (``-v``) an OSC 8 link around an http(s) URL of plain ASCII."""
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
"""Anything that steers a terminal, the newline that ends each line excepted."""


def hostile_body() -> bytes:
    document = json.loads(event_body())
    document["type"] = HOSTILE_TYPE
    document["payload"]["id"] = HOSTILE_ID
    document["payload"]["status"] = HOSTILE_STATUS
    return json.dumps(document, ensure_ascii=False).encode()


def steering(text: str) -> list[str]:
    """What in ``text`` could steer a terminal: control characters outside mhw's colours."""
    return CONTROL.findall(OWN.sub("", text))


# The escape function itself


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\nb", "a\\nb"),
        ("a\r\tb", "a\\r\\tb"),
        ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
        ("\x1b[2K\x7f", "\\x1b[2K\\x7f"),
        ("c1 \x9b31m \x85", "c1 \\x9b31m \\x85"),
        ("abc\u202edef\u2066\u2069", "abc\\u202edef\\u2066\\u2069"),
        ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
        ("line\u2028separator", "line\\u2028separator"),
        ("image.completed\u200b", "image.completed\\u200b"),
        ("soft\u00adhyphen\ufeff", "soft\\xadhyphen\\ufeff"),
        ("tag\U000e0041", "tag\\U000e0041"),
    ],
)
def test_control_bidi_and_surrogates_are_shown_escaped(text: str, expected: str) -> None:
    assert shown(text) == expected


def test_printable_text_is_kept_as_it_is() -> None:
    text = "Crème brûlée 👨‍👩‍👧 ✓ → 東京 \\x1b (a literal backslash)"
    assert shown(text) is text


@pytest.mark.parametrize("payload", [b"null", b'"text"', b"3", b"[]"])
def test_verbose_shows_a_payload_that_is_not_an_object(
    payload: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``"payload": null`` raised in ``-v`` and hid the delivery's line."""
    delivery = judged(b'{"type":"video.completed","payload":' + payload + b"}", "/", "")
    lines = payload_lines(delivery)
    assert payload.decode() in rendered(lines, False, monkeypatch)


def test_a_line_separator_starts_no_line_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``str.splitlines`` cut at U+2028 and U+0085, so a payload could forge a ``↳`` line."""
    forged = "a\u2028↳ http://localhost:3000/webhook  200  4 ms\x85b"
    body = json.dumps({"type": "video.completed", "payload": {"id": forged}}).encode()
    delivery = judged(body, "/", "")
    for lines in (payload_lines(delivery), detail_text(stored(delivery, tmp_path))):
        text = rendered(lines, False, monkeypatch)
        assert "\\u2028↳" in text and "\\x85b" in text
        assert not any(line.lstrip().startswith("↳") for line in text.split("\n"))


ANY_CHARACTER = st.characters(blacklist_categories=())
"""Lone surrogates included, which ``st.text()`` leaves out."""


@given(st.text(ANY_CHARACTER))
def test_shown_text_is_one_line_and_steers_nothing(text: str) -> None:
    result = shown(text)
    assert not steering(result)
    result.encode("utf-8")  # raises on a surrogate
    assert len(result.splitlines()) <= 1


def test_json_lines_survive_a_lone_surrogate() -> None:
    document = {"type": "video.completed\ud800", "payload": {"id": "\udfff é"}}
    text = dumps(document)
    assert json.loads(text.encode("utf-8")) == document


@given(st.text(ANY_CHARACTER))
def test_a_json_line_steers_no_terminal_and_is_one_line_for_any_reader(text: str) -> None:
    """JSON lets C1 controls, U+2028 and bidi overrides through raw: ``--format json`` on a
    terminal obeyed them, and ``str.splitlines`` cut an exported line in two."""
    document = {"type": text, "payload": {"id": text}}
    line = dumps(document)
    assert json.loads(line.encode("utf-8")) == document
    assert len(line.splitlines()) == 1
    assert not steering(line)


# The live line, -v, events list/show and verify, as the real CLI prints them


def test_listen_shows_a_forged_line_as_one_escaped_line(start_listener: Start) -> None:  # noqa: F811
    listening = start_listener()
    assert httpx.post(listening.url, content=hostile_body()).status_code == 200
    httpx.post(listening.url, content=event_body())
    text = wait_for(lambda: listening.stdout().count("#2") and listening.stdout())
    assert not steering(text)
    event_lines = [line for line in text.splitlines() if not line.startswith("    ")]
    assert len(event_lines) == 2, text
    assert FORGED in event_lines[0]
    assert "\\x1b]0;pwned\\x07" in event_lines[0]
    assert "\\u202eevil" in event_lines[0]
    assert "clx\\x1b[2J\\x9b31m\\u2066id\\x7f" in event_lines[0]


@pytest.mark.parametrize("verbose", [[], ["-v"]])
def test_colour_output_has_only_mhws_own_escapes(
    start_listener: Start,  # noqa: F811
    verbose: list[str],
) -> None:
    listening = start_listener(*verbose, env=COLOUR)
    httpx.post(listening.url, content=hostile_body())
    httpx.post(listening.url, content=event_body())
    text = wait_for(lambda: listening.stdout().count("#2") and listening.stdout())
    assert SGR.search(text), "colours were forced"
    assert not steering(text)
    first = [line for line in text.splitlines() if "#1" in line]
    assert len(first) == 1 and FORGED in first[0]


def test_events_list_and_show_escape_what_was_stored(
    start_listener: Start,  # noqa: F811
    mhw: Mhw,
) -> None:
    listening = start_listener()
    httpx.post(
        listening.url + "pa%1bth?\u202e=1",
        content=hostile_body(),
        # Raw bytes: 0x9b is CSI to a terminal in 8-bit mode (the server reads latin-1).
        headers=[(b"x-note", b"a\x9b2Jb")]
        + [(name.encode(), value.encode()) for name, value in signed_headers(b"").items()],
    )
    wait_for(lambda: "#1" in listening.stdout())
    listening.stop()
    store = ["--store", str(listening.store)]
    for env in ({}, COLOUR):
        listed = mhw("events", "list", *store, env=env)
        assert listed.code == 0, listed.stderr
        assert not steering(listed.stdout)
        assert len(listed.stdout.splitlines()) == 2  # the header and the one request
        detail = mhw("events", "show", "1", *store, env=env)
        assert detail.code == 0, detail.stderr
        assert not steering(detail.stdout)
        event_line = next(line for line in detail.stdout.splitlines() if "event " in line)
        assert FORGED in event_line and "\\x1b]0;pwned" in event_line
        assert "x-note: a\\x9b2Jb" in SGR.sub("", detail.stdout)


def test_verify_escapes_a_header_from_the_capture(mhw: Mhw, tmp_path: Path) -> None:
    body = event_body()
    hostile = "\x1b]0;pwned\x07\x1b[1A\x1b[2K✓ valid"
    capture = tmp_path / "request.http"
    capture.write_bytes(
        b"POST /webhook HTTP/1.1\r\nHost: x\r\n"
        + f"magic-hour-event-signature: {hostile}\r\n".encode()
        + f"magic-hour-event-timestamp: {int(time.time())}\r\n".encode()
        + f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    for env in ({}, COLOUR):
        result = mhw("verify", "--request", str(capture), "--secret", SECRET, env=env)
        assert result.code == 1, result.stderr
        assert not steering(result.stdout + result.stderr)
        assert "\\x1b]0;pwned\\x07" in result.stdout


def test_verbose_display_survives_a_lone_surrogate_and_expect_counts_it(tmp_path: Path) -> None:
    """A field nobody validates holds a lone surrogate: the event is shown and counted."""
    document = json.loads(event_body())
    document["payload"]["name"] = "\ud800 and \udfff"
    body = json.dumps(document).encode()  # "\ud800" as JSON's escape: valid JSON text
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "mh_webhook_cli", "listen", "-v", "--no-store"]
    command += ["--port", str(port), "--secret", SECRET, "--expect", "video.completed"]
    command += ["--timeout", "20"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MHW_", "MAGIC_HOUR_"))}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path
    )
    try:

        def posted() -> bool:
            try:
                answer = httpx.post(
                    f"http://127.0.0.1:{port}/", content=body, headers=signed_headers(body)
                )
            except httpx.ConnectError:
                return False
            return answer.status_code == 200

        wait_for(posted, what="the listener to answer")
        out, err = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0, err.decode()
    text = out.decode("utf-8")
    assert '"name": "\\ud800 and \\udfff"' in text
    assert not steering(text)


# A real terminal


def test_a_pseudo_terminal_shows_hostile_events_as_single_lines(
    isolated_env: dict[str, str], tmp_path: Path
) -> None:
    """Through a pty, as a person sees it: rich draws colours, the sender draws nothing."""
    ready = tmp_path / "ready.json"
    primary, secondary = pty.openpty()
    command = [sys.executable, "-m", "mh_webhook_cli", "listen", "--port", "0"]
    command += ["--ready-file", str(ready), "--no-store"]
    env = {**isolated_env, "TERM": "xterm-256color", "COLUMNS": "300"}
    process = subprocess.Popen(command, stdout=secondary, stderr=secondary, env=env, cwd=tmp_path)
    os.close(secondary)
    screen = b""
    try:
        wait_for(ready.exists, what="the ready file")
        url = json.loads(ready.read_text())["url"]
        httpx.post(url, content=hostile_body())
        httpx.post(url, content=event_body(project_id="second0000000000000000000"))
        deadline = time.monotonic() + 15
        while b"second0000" not in screen:
            if time.monotonic() > deadline:
                raise AssertionError(f"no second line on the terminal: {screen!r}")
            if select.select([primary], [], [], 0.5)[0]:
                screen += os.read(primary, 65536)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    finally:
        process.kill()
        os.close(primary)
    text = screen.decode("utf-8").replace("\r\n", "\n")
    assert SGR.search(text), "rich styles a terminal"
    assert not steering(text), steering(text)
    event_lines = [line for line in SGR.sub("", text).splitlines() if "unsigned  → 200" in line]
    assert len(event_lines) == 2 and FORGED in event_lines[0], text


# Arbitrary bytes, through the listener's judgement, the store and every display

LATIN_1 = st.binary(max_size=40).map(lambda raw: raw.decode("latin-1"))
"""A header value or target as the server hands it over: any bytes, read as latin-1."""
HOSTILE_TEXT = st.sampled_from(["\x1b]0;t\x07", "a\nb", "\u202e", "\x9b2J", "\r", "\x85"])


@st.composite
def bodies(draw: st.DrawFn, text: st.SearchStrategy[str]) -> bytes:
    """Bytes of any kind, or an event whose strings are ``text`` (what a JSON body holds)."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=200))
    value = st.one_of(text, HOSTILE_TEXT)
    document: dict[str, Any] = {
        "type": draw(value),
        "payload": {"id": draw(value), "status": draw(value), "x": draw(value)},
    }
    # ensure_ascii: a lone surrogate as JSON's escape, the only way JSON text carries one.
    return json.dumps(document, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")


def rendered(lines: list[output.Line], terminal: bool, monkeypatch: pytest.MonkeyPatch) -> str:
    """What ``mhw`` writes for ``lines``: through output's own path, captured by a sink."""
    written: list[bytes] = []

    class Capture:
        def write(self, data: bytes, lines: int) -> bool:
            written.append(data)
            return True

    for name, value in COLOUR.items():
        monkeypatch.setenv(name, value) if terminal else monkeypatch.delenv(name, raising=False)
    output.stdout.cache_clear()
    output.redirect("stdout", Capture())
    try:
        output.show(lines)
    finally:
        output.redirect("stdout", None)
        output.stdout.cache_clear()
    return b"".join(written).decode("utf-8")


def assert_one_line_each(
    lines: list[output.Line], monkeypatch: pytest.MonkeyPatch, *, exactly: int | None = None
) -> None:
    """Plain and styled: ``len(lines)`` lines on screen, nothing that steers the terminal."""
    for terminal in (False, True):
        text = rendered(lines, terminal, monkeypatch)
        assert text.count("\n") == (len(lines) if exactly is None else exactly), text
        assert not steering(text), text


def judged(body: bytes, target: str, header: str) -> Any:
    request = Request("POST", target, [("x-any", header)], body, "127.0.0.1:1", {"x-any": header})
    listener = Listener(ListenConfig(secrets=(SECRET,)), None, lambda _: None)
    delivery = listener.judge(request)
    delivery.id = 1
    return delivery


def stored(delivery: Any, directory: Path) -> Any:
    """``delivery`` written to a new store and read back, as ``mhw events`` reads it."""
    request = delivery.request
    with Store(directory / "events.sqlite3") as store:
        store.add(
            Received.of(
                delivery.received_at,
                request.method,
                request.target,
                request.headers,
                request.body,
                request.client,
                delivery.event_type,
                delivery.project_id,
                delivery.verification,
                delivery.findings,
                delivery.answer,
            )
        )
        (found,) = store.requests()
    assert (found.body, found.target, found.headers) == (
        request.body,
        request.target,
        request.headers,
    )
    return found


EXAMPLES = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@EXAMPLES
@given(body=bodies(st.text(ANY_CHARACTER, max_size=30)), target=LATIN_1, header=LATIN_1)
def test_any_request_is_one_line_live_and_with_v(
    body: bytes, target: str, header: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    delivery = judged(body, "/" + target, header)
    assert_one_line_each([request_line(delivery)], monkeypatch)
    assert_one_line_each(finding_lines(delivery), monkeypatch)
    assert_one_line_each(payload_lines(delivery), monkeypatch)


@EXAMPLES
@given(body=bodies(st.text(max_size=30)), target=LATIN_1, header=LATIN_1)
def test_any_stored_request_is_one_line_in_events_list_and_show(
    body: bytes, target: str, header: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Strings without lone surrogates: those are :func:`test_a_lone_surrogate_is_stored`."""
    with tempfile.TemporaryDirectory() as directory:
        found = stored(judged(body, "/" + target, header), Path(directory))
    assert_one_line_each(list_text([found]), monkeypatch)
    assert_one_line_each(detail_text(found), monkeypatch)


def test_a_lone_surrogate_is_stored_and_shown_in_events_list_and_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = b'{"type":"video.completed\\ud800","payload":{"id":"\\udfff\\n"}}'
    found = stored(judged(body, "/", ""), tmp_path)
    assert_one_line_each(list_text([found]), monkeypatch)
    assert_one_line_each(detail_text(found), monkeypatch)


def test_the_emulator_log_escapes_a_callers_path(
    isolated_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller's C1 CSI (0x9b) never steers the terminal through ``mhw emulate``'s log.

    On the wire, llhttp refuses it in the target (400); the log line
    escapes whatever path reaches it all the same, since it is the last line of defence.
    """
    ready = tmp_path / "ready.json"
    log = tmp_path / "stderr.txt"
    command = [sys.executable, "-m", "mh_webhook_cli", "emulate", "--port", "0"]
    command += ["--ready-file", str(ready)]
    with log.open("wb") as errors:
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=errors, env=isolated_env, cwd=tmp_path
        )
    try:
        wait_for(ready.exists, what="the ready file")
        port = int(json.loads(ready.read_text())["port"])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
            connection.sendall(b"GET /v1/\xc2\x9b2J\xe2\x80\xae HTTP/1.1\r\nHost: x\r\n\r\n")
            assert connection.recv(64).startswith(b"HTTP/1.1 400 ")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    assert not steering(log.read_text(encoding="utf-8"))

    call = ApiCall(
        at=0.0, method="GET", path="/v1/\x9b2J\u202e", status=404, latency_ms=1.0, client="c"
    )
    assert_one_line_each([activity_line(call)], monkeypatch)
    assert "/v1/\\x9b2J\\u202e" in rendered([activity_line(call)], False, monkeypatch)
