"""Throughput of ``mhw listen`` against the FastAPI handler from Magic Hour's guide, in one run.

All servers run for the whole benchmark and take turns under the same wrk load:
one core for the servers, the other for wrk, 32 connections, and the webhook
reference's example as a schema-valid ``video.completed`` body of 519 bytes,
signed. mhw does strictly more per request: it verifies the signature,
validates the event, commits it to SQLite before answering and prints a line
(text, the default) or a JSON line (``--format json``) to a file. The anchor
only parses the JSON and prints two lines, as in the guide (its Step 1 handler,
``tests/guide_handlers.py``).

    python bench/listen.py [--seconds 10] [--rounds 5] [--formats text,json]
                           [--rows 0,100000,1000000]

Needs wrk, taskset, and fastapi + uvicorn[standard] (bench-only dependencies:
``pip install fastapi 'uvicorn[standard]'``). Reports requests/s of each, the
median ratio over the rounds of each output format to the anchor (target: text
>= 3x, JSON >= 2x) and, with both formats, of text to JSON (the display's cost:
target >= 0.95), lost requests (answered 2xx but not in the store: must be 0)
and each listener's resident memory once it has served over 100,000 events
(target < 100 MB; a short run is topped up to that).

Then the latency as the store grows: the p99 of a listener in the first format under the
same load, one listener for each of ``--rows``, its store filled to that many requests
through the store's own write path before it starts; target under 20 ms at every size.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

ANCHOR = Path(__file__).resolve().parent.parent / "tests"
"""Where the guide's handler lives (``guide_handlers:app``): in the repository, so that the
benchmark runs from any checkout."""
TARGETS = {"text": 3.0, "json": 2.0}
"""The least ratio to the anchor each output format must reach (issue 17: the display costs
little, so the default text output is held to more than JSON's floor)."""
TEXT_TO_JSON = 0.95
"""Text output within 5% of JSON lines' throughput."""
SECRET = "mhw_live_0123456789abcdef0123456789abcdef"
# The request example of the webhook reference (video.started), as video.completed: 519 bytes.
BODY = (
    '{"type":"video.completed","payload":{"id":"clx7uu86w0a5qp55yxz315r6r","name":"Example Name",'
    '"status":"complete","type":"ANIMATION","created_at":"2023-11-07T05:31:56Z","width":512,'
    '"height":960,"enabled":true,"start_seconds":0,"end_seconds":15,"total_frame_cost":450,'
    '"credits_charged":450,"fps":30,"error":null,"downloads":[{"url":"https://videos.magichour.ai/'
    'id/output.mp4","expires_at":"2024-10-19T05:16:19.027Z"}],"download":{"url":"https://videos.'
    'magichour.ai/id/output.mp4","expires_at":"2024-10-19T05:16:19.027Z"}}}'
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server on port {port} did not start")


class Run(NamedTuple):
    rate: float
    """Requests per second."""
    answered: int
    """Requests answered 2xx."""
    in_flight: int
    """Requests sent, or about to be, and not answered when wrk stopped."""
    p99_ms: float
    """wrk's 99th percentile latency."""


def wrk(url: str, script: Path, seconds: int) -> Run:
    load = ["wrk", "-t1", "-c32", f"-d{seconds}s", "--latency", "-s", str(script), url]
    output = subprocess.run(
        ["taskset", "-c", "1", *load],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    p99_ms = float(p99.group(1)) * _MILLISECONDS[p99.group(2)]  # type: ignore[union-attr]
    completed = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    sent = int(re.search(r"^sent (\d+)$", output, re.MULTILINE).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: .*timeout (\d+)", output)
    failed = (int(bad.group(1)) if bad else 0) + (int(errors.group(1)) if errors else 0)
    return Run(rate, completed - failed, sent - completed, p99_ms)


_MILLISECONDS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def rss_peak_mb(pid: int) -> float:
    """The most memory the process has held resident (VmHWM), not only what it holds now."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--formats",
        default="text,json",
        help="mhw's output formats to run, each as its own listener (default: text,json)",
    )
    parser.add_argument(
        "--rows",
        default="0,100000,1000000",
        help="Store sizes at which to measure p99 latency, ascending (the first should be 0).",
    )
    arguments = parser.parse_args()
    formats = [name.strip() for name in arguments.formats.split(",") if name.strip()]
    if not formats or set(formats) - set(TARGETS):
        raise SystemExit(f"--formats: a comma-separated choice of {', '.join(TARGETS)}")
    sizes = sorted(int(size) for size in arguments.rows.split(",") if size)
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed (apt-get install wrk util-linux)")

    work = Path(tempfile.mkdtemp(prefix="mhw-bench-listen-"))
    # Its stores and outputs take gigabytes: gone at exit, however the run ends.
    atexit.register(shutil.rmtree, work, True)
    servers = ["anchor", *formats]
    results: dict[str, list[float]] = {name: [] for name in servers}
    answered = dict.fromkeys(formats, 0)
    in_flight = dict.fromkeys(formats, 0)
    rss: dict[str, float] = {}
    # Every server runs for the whole benchmark, on the same core, and they take turns under
    # load: the idle ones cost nothing, and memory is judged in each long-lived listener.
    with contextlib.ExitStack() as stack:
        ports: dict[str, int] = {}
        pids: dict[str, int] = {}
        for name in servers:
            ports[name], pids[name] = stack.enter_context(_server(work, name))
        urls = {name: f"http://127.0.0.1:{port}/" for name, port in ports.items()}
        urls["anchor"] += "webhook"
        watched = formats[0]
        """The listener whose p99 is measured as its store grows."""
        latencies: dict[int, Run] = {}
        """p99 runs by the number of requests the store held when each began."""
        for round_number in range(arguments.rounds):
            script = _signed_request_script(work)
            # Who goes first rotates, so that none always meets the machine warm.
            shift = round_number % len(servers)
            for name in servers[shift:] + servers[:shift]:
                run = wrk(urls[name], script, arguments.seconds)
                results[name].append(run.rate)
                if name != "anchor":
                    answered[name] += run.answered
                    in_flight[name] += run.in_flight
            print(
                f"round {round_number + 1}: "
                + "   ".join(f"{_label(name)} {results[name][-1]:8.0f} req/s" for name in servers),
                flush=True,
            )
        for name in formats:
            # The memory target is judged after 100,000 events: top up a fast run's total.
            while answered[name] < 100_000:
                run = wrk(urls[name], _signed_request_script(work), 5)
                answered[name] += run.answered
                in_flight[name] += run.in_flight
            rss[name] = rss_peak_mb(pids[name])
        # Counted before the fills below add rows of their own.
        stored = {name: _stored(work / f"{name}.sqlite3") for name in formats}
        for size in sizes:
            # A listener of its own for each size, its store filled before it starts: the
            # rounds above stored more than 100,000, and each run stores more again.
            store_name = f"latency-{size}"
            _fill(work / f"{store_name}.sqlite3", size)
            with _server(work, watched, store_name) as (port, _):
                latencies[size] = wrk(
                    f"http://127.0.0.1:{port}/", _signed_request_script(work), arguments.seconds
                )
            for leftover in work.glob(f"{store_name}.sqlite3*"):  # a gigabyte at 1M
                leftover.unlink()
    # Counted once the listeners have stopped. wrk cannot say which request an answer was for,
    # so this is a bound: the requests in flight when wrk stopped (sent or about to be) may be
    # stored unanswered and mask as many losses. tests/test_listen.py checks every request.
    good = True
    for name in formats:
        ratio = _median_ratio(results[name], results["anchor"])
        lost = max(0, answered[name] - stored[name])
        good = good and ratio >= TARGETS[name] and lost == 0 and rss[name] < 100
        print(
            f"listen ({_label(name)}): {max(results[name]):.0f} req/s best vs FastAPI guide "
            f"handler {max(results['anchor']):.0f} req/s best; median ratio of "
            f"{arguments.rounds} alternated rounds {ratio:.2f}x (target >= {TARGETS[name]:g}x; "
            f"each {arguments.seconds} s, wrk -t1 -c32, servers on core 0)"
        )
        print(
            f"  lost: {lost} (target 0): {stored[name]} stored, {answered[name]} answered 2xx; "
            f"{in_flight[name]} were in flight when wrk stopped"
        )
        print(
            f"  memory: peak RSS {rss[name]:.1f} MB after serving {answered[name]} events in one "
            "process (target < 100 MB after 100,000)"
        )
    if "text" in formats and "json" in formats:
        ratio = _median_ratio(results["text"], results["json"])
        good = good and ratio >= TEXT_TO_JSON
        print(
            f"display: text output at {ratio:.3f}x the throughput of JSON lines, median of "
            f"{arguments.rounds} rounds (target >= {TEXT_TO_JSON:g})"
        )
    for size, run in latencies.items():
        print(
            f"latency ({_label(watched)}): p99 {run.p99_ms:.1f} ms at {run.rate:.0f} req/s with "
            f"the store at {size:,} requests when the load began (target < 20 ms)"
        )
    slowest = max((run.p99_ms for run in latencies.values()), default=0.0)
    return 0 if good and slowest < 20 else 1


def _label(name: str) -> str:
    return name if name == "anchor" else f"mhw {name}"


def _median_ratio(ours: list[float], theirs: list[float]) -> float:
    """Each round's ratio compares runs seconds apart; their median resists load spikes."""
    ratios = sorted(a / b for a, b in zip(ours, theirs, strict=True))
    return ratios[len(ratios) // 2]


def _signed_request_script(work: Path) -> Path:
    """wrk's script for the signed webhook, timestamped now (a round must stay in tolerance)."""
    timestamp = str(int(time.time()))
    signature = hmac.new(
        SECRET.encode(), f"{timestamp}.{BODY}".encode(), hashlib.sha256
    ).hexdigest()
    script = work / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(BODY)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["magic-hour-event-signature"] = "{signature}"\n'
        f'wrk.headers["magic-hour-event-timestamp"] = "{timestamp}"\n'
        # Count what is sent: the requests in flight at the end bound the lost count.
        "local threads = {}\n"
        "function setup(thread) table.insert(threads, thread) end\n"
        "function init(args) sent = 0 end\n"
        "function request() sent = sent + 1; return wrk.format() end\n"
        "function done(summary, latency, requests)\n"
        "  local total = 0\n"
        '  for _, thread in ipairs(threads) do total = total + thread:get("sent") end\n'
        '  io.write(string.format("sent %d\\n", total))\n'
        "end\n"
    )
    return script


@contextlib.contextmanager
def _server(work: Path, which: str, store_name: str | None = None) -> Iterator[tuple[int, int]]:
    """The anchor (the guide's FastAPI handler under uvicorn, stdout to a file) or ``mhw
    listen`` in format ``which`` (verifying, storing in ``store_name``, by default named after
    the format, its lines to a file), on core 0: port and pid."""
    name = store_name or which
    port = free_port()
    if which == "anchor":
        command = ["-m", "uvicorn", "guide_handlers:app", "--port", str(port)]
        command += ["--log-level", "warning"]
        cwd: Path | None = ANCHOR
    else:
        command = ["-m", "mh_webhook_cli", "listen", "--port", str(port), "--secret", SECRET]
        command += ["--store", str(work / f"{name}.sqlite3"), "--format", which]
        cwd = None
    with (work / f"{name}.out").open("wb") as out, (work / f"{name}.err").open("wb") as err:
        server = subprocess.Popen(
            ["taskset", "-c", "0", sys.executable, *command],
            cwd=cwd,
            stdout=out,
            stderr=err,
            env={**os.environ, "MHW_CONFIG": str(work / "c.json")},
        )
    try:
        wait_for_port(port)
        yield port, server.pid  # taskset execs the server: same pid
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _fill(store: Path, size: int) -> None:
    """Grow the store to ``size`` requests through its own write path, 10,000 a transaction:
    signed, valid, each body unique (so each one adds to the retry index, as events do)."""
    from mh_webhook_cli.core.request import Received
    from mh_webhook_cli.receive.store import Store

    stored = _stored(store)
    now = time.time()
    with Store(store) as opened:
        for first in range(stored, size, 10_000):
            opened.add_many(
                [
                    Received.of(
                        now,
                        "POST",
                        "/",
                        [("Content-Type", "application/json")],
                        BODY.replace("clx7uu86w0a5qp55yxz315r6r", f"fill{number:021d}").encode(),
                        "127.0.0.1:1",
                        "video.completed",
                        f"fill{number:021d}",
                        "ok",
                        [],
                        200,
                    )
                    for number in range(first, min(size, first + 10_000))
                ]
            )


def _stored(store: Path) -> int:
    if not store.exists():
        return 0
    with sqlite3.connect(store) as connection:
        return int(connection.execute("SELECT count(*) FROM requests").fetchone()[0])


if __name__ == "__main__":
    sys.exit(main())
