"""What a person sees in a real terminal: the live lines of ``listen``, ``emulate`` and
``doctor`` on pseudo-terminals of 80x24 and 120x40, resized while running.

Each event is one line that keeps its ``#N`` (the number ``mhw events show`` needs): a line
no wider than the terminal is never wrapped mid-word nor cropped. The real ``mhw`` runs on the
pty; nothing sleeps blindly, every wait is on what the screen shows.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import json
import os
import pty
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.cells import cell_len
from test_listen import event_body, signed_headers

from conftest import SECRET
from mh_webhook_cli.core.request import Request
from mh_webhook_cli.receive.listener import ListenConfig, Listener
from mh_webhook_cli.report.console import cells, cut, fit
from mh_webhook_cli.report.listen import forward_lines, request_line

STYLES = re.compile(r"\x1b\[[0-9;]*m|\x1b\]8;[^\x1b]*\x1b\\")
"""mhw's own escapes (colours, OSC 8 links): not shown, they take no column."""


class Terminal:
    """The real ``mhw`` with stdout and stderr on a pseudo-terminal of a given size."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path, size: tuple[int, int]):
        self.primary, secondary = pty.openpty()
        self.resize(*size)
        environment = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")}
        environment["TERM"] = "xterm-256color"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mh_webhook_cli", *args],
            stdin=subprocess.DEVNULL,
            stdout=secondary,
            stderr=secondary,
            env=environment,
            cwd=cwd,
        )
        os.close(secondary)
        self.output = b""

    def resize(self, columns: int, rows: int) -> None:
        """What a terminal window does when dragged: the size the program reads next."""
        fcntl.ioctl(self.primary, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    def _read(self, timeout: float) -> bool:
        """Take what the program wrote within ``timeout``; False at the end of its output."""
        if not select.select([self.primary], [], [], timeout)[0]:
            return True
        try:
            chunk = os.read(self.primary, 65536)
        except OSError:  # EIO: the program closed the terminal (it exited)
            return False
        self.output += chunk
        return bool(chunk)

    def lines(self) -> list[str]:
        """The lines on screen as a person reads them (no styles, no carriage returns)."""
        text = self.output.decode("utf-8", "replace").replace("\r", "")
        return STYLES.sub("", text).split("\n")

    def wait_for(self, condition: Callable[[list[str]], Any], what: str) -> Any:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = condition(self.lines())
            if found:
                return found
            if not self._read(0.1) and self.process.poll() is not None:
                break
        raise AssertionError(f"timed out waiting for {what}:\n" + "\n".join(self.lines()))

    def stop(self) -> list[str]:
        """Ctrl-C, then everything it writes until it exits."""
        self.process.send_signal(signal.SIGINT)
        return self.end()

    def end(self) -> list[str]:
        """Everything it writes until it exits (its end of the terminal then reads as closed)."""
        deadline = time.monotonic() + 20
        while self._read(0.1) and time.monotonic() < deadline:
            pass
        self.process.wait(timeout=10)
        return self.lines()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.primary)


Start = Callable[..., Terminal]


@pytest.fixture
def terminal(isolated_env: dict[str, str], tmp_path: Path) -> Iterator[Start]:
    started: list[Terminal] = []

    def start(*args: str, size: tuple[int, int] = (80, 24)) -> Terminal:
        started.append(Terminal(list(args), isolated_env, tmp_path, size))
        return started[-1]

    yield start
    for each in started:
        each.close()


def listen(terminal: Start, tmp_path: Path, *args: str, size: tuple[int, int]) -> Any:
    """``mhw listen`` on a terminal of ``size``: the terminal and the listener's URL."""
    ready = tmp_path / f"ready-{time.monotonic_ns()}.json"
    shown = terminal(
        *("listen", "--port", "0", "--ready-file", str(ready)),
        *("--store", str(tmp_path / "events.sqlite3"), *args),
        size=size,
    )
    shown.wait_for(lambda _: ready.exists(), "the ready file")
    return shown, json.loads(ready.read_text())["url"]


def numbered(lines: list[str], number: int) -> list[str]:
    """The line of request ``#number`` (it ends with its number), and the results of its
    forwards (they start with it)."""
    return [
        line
        for line in lines
        if line.rstrip().endswith(f"  #{number}") or line.lstrip().startswith(f"↳ #{number} ")
    ]


def post_the_usual_four(url: str) -> None:
    """A signed event, its retry, a forged signature, an unsigned one: the README's session."""
    body = event_body()
    for _ in range(2):
        assert httpx.post(url, content=body, headers=signed_headers(body)).status_code == 200
    forged = event_body("clxforged00000000000000000", "image.errored")
    httpx.post(url, content=forged, headers=signed_headers(forged, "someone-else"))
    httpx.post(url, content=forged)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_each_request_is_one_line_with_its_number_at_any_width(
    terminal: Start, tmp_path: Path, size: tuple[int, int]
) -> None:
    shown, url = listen(terminal, tmp_path, "--secret", SECRET, size=size)
    post_the_usual_four(url)
    lines = shown.wait_for(lambda lines: numbered(lines, 4) and lines, "the fourth request")
    columns = size[0]
    assert all(cell_len(line) <= columns for line in lines if "#" in line), lines
    events = [numbered(lines, number) for number in (1, 2, 3, 4)]
    assert all(len(each) == 1 for each in events), lines
    (first,), (retry,), (forged,), (unsigned,) = events
    assert "video.completed" in first and "✓ signed" in first and "→ 200" in first
    assert "✗ unsigned" in unsigned  # with a secret, unsigned is invalid: a cross, in red
    if columns >= 120:  # room for all of it
        assert "clx7uu86w0a5qp55yxz315r6r  complete  ✓ signed" in first
        assert "retry of #1" in retry and "✗ signature_mismatch" in forged
        assert re.match(r"\d\d:\d\d:\d\d ", first)
    else:  # the status word goes, then the seconds, the verdict's words, the id's middle
        assert "retry #1" in retry and "✗ mismatch" in forged
        assert "  complete  " not in first
    summary = shown.stop()
    assert any("image.errored" in line and "✗ unsigned" in line for line in summary)


def test_lines_follow_the_terminal_when_it_is_resized(terminal: Start, tmp_path: Path) -> None:
    shown, url = listen(terminal, tmp_path, "--secret", SECRET, size=(120, 40))
    body = event_body()
    httpx.post(url, content=body, headers=signed_headers(body))
    (wide,) = shown.wait_for(lambda lines: numbered(lines, 1), "the first request")
    shown.resize(60, 24)
    httpx.post(url, content=body, headers=signed_headers(body))
    (narrow,) = shown.wait_for(lambda lines: numbered(lines, 2), "the second request")
    assert cell_len(wide) > 80 and "  complete  " in wide
    assert cell_len(narrow) <= 60 and narrow.endswith("#2"), narrow
    shown.resize(120, 40)
    httpx.post(url, content=body, headers=signed_headers(body))
    (again,) = shown.wait_for(lambda lines: numbered(lines, 3), "the third request")
    assert "  complete  " in again and "retry of #" in again


def test_verbose_keeps_the_request_line_in_view_at_80x24(terminal: Start, tmp_path: Path) -> None:
    """``-v`` printed about 22 lines per event: the event's own line scrolled away at once."""
    shown, url = listen(terminal, tmp_path, "--secret", SECRET, "-v", size=(80, 24))
    body = event_body()
    httpx.post(url, content=body, headers=signed_headers(body))
    httpx.post(url, content=body, headers=signed_headers(body))
    lines = shown.wait_for(
        lambda lines: numbered(lines, 2) and any("⬇" in line for line in lines[-4:]) and lines,
        "the second request with its payload",
    )
    first = lines.index(numbered(lines, 1)[0])
    second = lines.index(numbered(lines, 2)[0])
    block = lines[first:second]
    assert len(block) <= 8, block  # its line, a few of the payload, what was left out, a link
    assert all(cell_len(line) <= 80 for line in lines[first:]), lines
    assert '"type": "video.completed"' in block[1]
    assert any("… the rest: mhw events show 1" in line for line in block)
    assert any("⬇ https://videos.magichour.ai/" in line for line in block)


class Handler(BaseHTTPRequestHandler):
    """A user's handler that fails: 502 with why."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        body = b'{"error":"database is down"}'
        self.send_response(502)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def failing_handler() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/webhooks/magic-hour/handler"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("mirror", [[], ["--mirror-status"]], ids=["forward", "mirror-status"])
def test_forward_results_name_their_request_and_say_why(
    terminal: Start, tmp_path: Path, failing_handler: str, mirror: list[str]
) -> None:
    """``--mirror-status`` hid them in text mode, though README's CI recipe uses it."""
    shown, url = listen(
        terminal, tmp_path, "--secret", SECRET, "--forward-to", failing_handler, *mirror,
        size=(80, 24),
    )  # fmt: skip
    body = event_body()
    answer = httpx.post(url, content=body, headers=signed_headers(body))
    assert answer.status_code == (502 if mirror else 200)
    lines = shown.wait_for(lambda lines: len(numbered(lines, 1)) == 2 and lines, "the forward")
    event, forwarded = numbered(lines, 1)
    assert forwarded.lstrip().startswith("↳ #1 ") and "502" in forwarded
    assert "/api/webhooks/" in forwarded  # its URL, shortened in the middle if need be
    why = lines[lines.index(forwarded) + 1]
    assert '{"error":"database is down"}' in why
    assert all(cell_len(line) <= 80 for line in lines[lines.index(event) :]), lines
    if mirror:  # answered once the handler has: printed together, the result right under it
        assert lines.index(forwarded) == lines.index(event) + 1
        assert "→ 502" in event


def test_a_late_answer_says_it_came_after_magic_hours_limit(
    terminal: Start, tmp_path: Path
) -> None:
    """``--respond-delay 12`` logged ``→ 200`` although the sender gave up at 10 s."""
    shown, url = listen(terminal, tmp_path, "--respond-delay", "10.5", size=(120, 40))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(httpx.post, url, content=event_body(), timeout=20)
        (line,) = shown.wait_for(lambda lines: numbered(lines, 1), "the request's line")
        shown.stop()
        assert pending.result(timeout=20).status_code == 503  # stopped before answering
    assert "→ 200" in line and "late: after 10.5 s, Magic Hour waits 10 s" in line


@contextlib.contextmanager
def refusing_ports(count: int) -> Iterator[list[int]]:
    """Ports bound (so that nothing else takes them) and never listened on: refused."""
    with contextlib.ExitStack() as stack:
        bound = [stack.enter_context(socket.socket()) for _ in range(count)]
        for each in bound:
            each.bind(("127.0.0.1", 0))
        yield [each.getsockname()[1] for each in bound]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_emulator_lines_fit_the_terminal(
    terminal: Start, tmp_path: Path, size: tuple[int, int]
) -> None:
    """Two webhook URLs (each line names its own) that nobody answers: the longest lines."""
    with refusing_ports(2) as ports:
        ready = tmp_path / "ready.json"
        shown = terminal(
            *("emulate", "--port", "0", "--ready-file", str(ready), "--secret", SECRET),
            *("--queue-seconds", "0.01", "--render-seconds", "0.02"),
            *(arg for port in ports for arg in ("--webhook-url", f"http://127.0.0.1:{port}/hook")),
            size=size,
        )
        shown.wait_for(lambda _: ready.exists(), "the ready file")
        api = json.loads(ready.read_text())["url"]
        answer = httpx.post(
            f"{api}/v1/ai-image-generator",
            json={"image_count": 1, "aspect_ratio": "1:1", "style": {"prompt": "A cat"}},
            headers={"authorization": "Bearer any"},
        )
        assert answer.status_code == 200, answer.text
        project = answer.json()["id"]
        lines = shown.wait_for(
            lambda lines: sum("retry in" in line or "↻" in line for line in lines) >= 2 and lines,
            "a failed delivery to each URL",
        )
    job = [line for line in lines if " job " in line and "complete" in line]
    deliveries = [line for line in lines if "image.completed" in line and "#1" in line]
    assert job and len(deliveries) == 2, lines
    assert all(cell_len(line) <= size[0] for line in lines if line.strip()), lines
    if size[0] >= 120:  # the note on the skipped event, shortened; the id whole
        assert any("rendering  (image.started skipped)" in line for line in lines), lines
        assert project in job[0]


def test_doctor_folds_its_advice_at_80_columns(terminal: Start) -> None:
    """A fix to follow is folded at spaces, whole, never wider than the terminal."""
    shown = terminal("doctor", size=(80, 24))
    # doctor ends by itself: a Ctrl-C as it exits printed Python's KeyboardInterrupt traceback.
    lines = shown.end()
    assert shown.process.returncode == 1, lines  # no webhook secret: a failed check
    too_wide = [line for line in lines if cell_len(line) > 80]
    assert not too_wide, too_wide
    assert any("https://magichour.ai/developer?tab=webhooks" in line for line in lines), lines
    assert "MAGIC_HOUR_WEBHOOK_SECRET" in " ".join(lines)


# The line itself, at any width, for anything a sender sends


def judged(body: bytes, target: str = "/") -> Any:
    request = Request("POST", target, [], body, "127.0.0.1:1", {})
    received = Listener(ListenConfig(secrets=(SECRET,)), None, lambda _: None).judge(request)
    received.id, received.retry_of = 123456, 99999
    return received


def drawn(line: Any) -> str:
    return "".join(text for text, _ in line)


def test_lines_drawn_for_huge_fields_keep_no_copy_of_them() -> None:
    """The line's caches hold what a line draws (FIELD_SHOWN characters of a field), never a
    stranger's whole megabyte of type, status or target: 64 entries of those kept 128 MB."""
    import gc
    import tracemalloc

    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for number in range(40):
            huge = f"{number:03d}" + "x" * 500_000
            request_line(judged(json.dumps({"type": huge, "payload": {}}).encode()), 120)
            event = {"type": "video.completed", "payload": {"status": huge}}
            request_line(judged(json.dumps(event).encode()), 120)
            request_line(judged(b"{}", target="/" + huge[:30_000]), 120)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 4_000_000, f"{kept / 1e6:.0f} MB kept after the requests are gone"


WIDE = st.text(st.sampled_from("a\x1b\u202e東京👨\u200d👩e\u0301\n"), max_size=80)
"""Escapes (4 columns each), wide characters, combining marks, a zero-width joiner."""


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_type=WIDE, project_id=WIDE, status=WIDE, width=st.integers(40, 200))
def test_any_request_line_fits_any_width_and_keeps_its_number(
    event_type: str, project_id: str, status: str, width: int
) -> None:
    document = {"type": event_type, "payload": {"id": project_id, "status": status, "x": 1}}
    received = judged(json.dumps(document).encode())
    line = drawn(request_line(received, width, delay=12))
    assert cells(line) <= width, (width, line)
    assert line.endswith("#123456") and "→ 200" in line and "late" in line
    assert "\n" not in line and "\x1b" not in line


def test_a_forward_line_keeps_its_number_and_status_at_40_columns() -> None:
    received = judged(event_body())
    target = "http://127.0.0.1:3000/" + "very-long-path/" * 10
    received.forwards = [
        {"target": target, "status": 502, "latency_ms": 12_345.0, "error": None, "body": "x" * 900}
    ]
    line, body = (drawn(each) for each in forward_lines(received, False, 40))
    assert line.startswith("    ↳ #123456 ") and " 502" in line and cells(line) <= 40, line
    assert cells(body) <= 40 and "…" in body
    full, _ = (drawn(each) for each in forward_lines(received, False, None))
    assert target in full and "slower than Magic Hour's 10 s limit: it will retry" in full


@pytest.mark.parametrize(
    ("text", "width", "expected"),
    [
        ("clx7uu86w0a5qp55yxz315r6r", 11, "clx7u…15r6r"),
        ("clx7uu86w0a5qp55yxz315r6r", 30, "clx7uu86w0a5qp55yxz315r6r"),
        ("東京東京東京", 7, "東…東京"),  # two columns each: never half a character
        ("abc", 1, "…"),
    ],
)
def test_cut_keeps_both_ends_within_the_columns(text: str, width: int, expected: str) -> None:
    assert cut(text, width) == expected
    assert cells(cut(text, width)) <= width


def test_fit_gives_up_parts_in_the_order_asked_and_never_the_rest() -> None:
    parts = [
        ((("keep", ""),),),
        (((" drop-me", ""),), ()),
        (((" middle-of-this-long-part", ""),),),
    ]
    steps = ((1, 0), (2, 8))
    assert drawn(fit(parts, steps, None)) == "keep drop-me middle-of-this-long-part"
    assert drawn(fit(parts, steps, 40)) == "keep drop-me middle-of-this-long-part"
    assert drawn(fit(parts, steps, 30)) == "keep middle-of-this-long-part"
    assert drawn(fit(parts, steps, 20)) == "keep middle-…ng-part"
    assert drawn(fit(parts, steps, 5)) == "keep mid…art"  # as far as the steps go


def test_a_megabyte_type_is_measured_and_drawn_in_bounded_time() -> None:
    """A sender's ``type`` may be as large as the body: each line measured it whole."""
    document = {"type": "東" * 500_000, "payload": {"id": "é" * 500_000, "status": "x" * 500_000}}
    received = judged(json.dumps(document, ensure_ascii=False).encode())
    started = time.perf_counter()
    for width in (None, 200, 80):
        line = drawn(request_line(received, width))
        assert line.endswith("#123456") and cells(line) <= (width or 1_200), cells(line)
    assert time.perf_counter() - started < 0.5


def test_the_summary_starts_below_the_echoed_ctrl_c(terminal: Start, tmp_path: Path) -> None:
    """A terminal echoes ``^C`` where the cursor is, at the start of a line: the summary
    begins on the next one, never as ``^Creceived 4 request(s)``."""
    shown, url = listen(terminal, tmp_path, "--secret", SECRET, size=(80, 24))
    post_the_usual_four(url)
    shown.wait_for(lambda lines: numbered(lines, 4), "the fourth request")
    lines = shown.stop()
    at = next(index for index, line in enumerate(lines) if line.startswith("received 4 request"))
    assert lines[at - 1] == "" and numbered(lines[at - 2 : at - 1], 4), lines
