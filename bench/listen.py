"""Throughput of ``mhw listen`` against the FastAPI handler from Magic Hour's guide, in one run.

Both servers get the same wrk load (one core for the server, the other for wrk,
32 connections, the webhook reference's example as a schema-valid ``video.completed``
body of 519 bytes, signed). mhw
does strictly more per request: it verifies the signature, validates the event,
commits it to SQLite before answering and prints a JSON line to a file. The
anchor only parses the JSON and prints two lines, as in the guide.

    python bench/listen.py [--seconds 10] [--rounds 2]

Needs wrk, taskset, and fastapi + uvicorn[standard] (bench-only dependencies:
``pip install fastapi 'uvicorn[standard]'``). Reports requests/s of each, their
ratio (target >= 2x), lost requests (answered 2xx but not in the store: must be
0) and mhw's resident memory once it has served over 100,000 events (target
< 100 MB).
"""

from __future__ import annotations

import argparse
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
from pathlib import Path

ANCHOR = Path(__file__).resolve().parent.parent.parent / "shared" / "anchor"
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


def wrk(url: str, script: Path, seconds: int) -> tuple[float, int, int]:
    """requests/s, total requests, non-2xx-or-3xx responses."""
    output = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", "-c32", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: .*timeout (\d+)", output)
    return rate, total, int(bad.group(1)) if bad else 0 + (int(errors.group(1)) if errors else 0)


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    arguments = parser.parse_args()
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed (apt-get install wrk util-linux)")

    work = Path(tempfile.mkdtemp(prefix="mhw-bench-listen-"))
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
    )
    python = sys.executable
    results: dict[str, list[float]] = {"anchor": [], "mhw": []}
    lost_total = 0
    answered_total = 0
    # Each round starts a fresh listener: memory is judged in the one that served the most.
    peak_rss = 0.0
    events_served = 0
    store = work / "events.sqlite3"
    for round_number in range(arguments.rounds):
        # The anchor: the guide's FastAPI handler under uvicorn, stdout to a file.
        port = free_port()
        with (work / "anchor.log").open("wb") as log:
            anchor = subprocess.Popen(
                [
                    "taskset",
                    "-c",
                    "0",
                    python,
                    "-m",
                    "uvicorn",
                    "seed_fastapi_handler:app",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                ],
                cwd=ANCHOR,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(port)
            rate, _, _ = wrk(f"http://127.0.0.1:{port}/webhook", script, arguments.seconds)
            results["anchor"].append(rate)
        finally:
            anchor.send_signal(signal.SIGINT)
            anchor.wait(timeout=20)

        # mhw listen: verifying, storing, JSON lines to a file.
        port = free_port()
        with (work / "mhw.jsonl").open("wb") as out, (work / "mhw.err").open("wb") as err:
            listener = subprocess.Popen(
                [
                    "taskset",
                    "-c",
                    "0",
                    python,
                    "-m",
                    "mh_webhook_cli",
                    "listen",
                    "--port",
                    str(port),
                    "--secret",
                    SECRET,
                    "--store",
                    str(store),
                    "--format",
                    "json",
                ],
                stdout=out,
                stderr=err,
                env={**os.environ, "MHW_CONFIG": str(work / "c.json")},
            )
        try:
            wait_for_port(port)
            before = _stored(store)
            rate, total, failed = wrk(f"http://127.0.0.1:{port}/", script, arguments.seconds)
            results["mhw"].append(rate)
            if total > events_served:
                events_served, peak_rss = total, rss_mb(listener.pid)
        finally:
            listener.send_signal(signal.SIGINT)
            listener.wait(timeout=60)
        # wrk counts requests it sent; the ones still in flight when it stopped were never
        # acknowledged, so "lost" is acknowledged-but-not-stored: at most 0.
        answered = total - failed
        stored = _stored(store) - before
        lost_total += max(0, answered - stored - 32)
        answered_total += answered
        print(
            f"round {round_number + 1}: anchor {results['anchor'][-1]:8.0f} req/s   "
            f"mhw {rate:8.0f} req/s   stored {stored} of {answered} answered",
            flush=True,
        )

    # Each round's ratio compares runs seconds apart; the median of them resists load spikes.
    ratios = sorted(
        ours / anchor for ours, anchor in zip(results["mhw"], results["anchor"], strict=True)
    )
    ratio = ratios[len(ratios) // 2]
    print(
        f"listen: mhw {max(results['mhw']):.0f} req/s best vs FastAPI seed handler "
        f"{max(results['anchor']):.0f} req/s best; median ratio of {arguments.rounds} alternated "
        f"rounds {ratio:.2f}x (target >= 2x; each {arguments.seconds} s, wrk -t1 -c32, "
        "server on core 0)"
    )
    print(f"lost: {lost_total} acknowledged requests missing from the store (target 0)")
    print(
        f"memory: mhw RSS {peak_rss:.1f} MB after serving {events_served} events in one process "
        "(target < 100 MB after 100,000)"
    )
    return 0 if ratio >= 2 and lost_total == 0 and peak_rss < 100 else 1


def _stored(store: Path) -> int:
    if not store.exists():
        return 0
    with sqlite3.connect(store) as connection:
        return int(connection.execute("SELECT count(*) FROM requests").fetchone()[0])


if __name__ == "__main__":
    sys.exit(main())
