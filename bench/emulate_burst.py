"""``mhw emulate`` webhook deliveries under a burst of jobs and under a steady pace.

Runs the emulator through the CLI (``--queue-seconds 0 --render-seconds 0``, so every image job
sends one ``image.completed`` at once) against a minimal asyncio HTTP/1.1 sink written here (a
subprocess answering 200 at once with keep-alive, no nginx needed), and creates jobs from this
process with 32 keep-alive clients. Each row starts a fresh emulator and reports:

- the creation rate (jobs/s the API answered, with a webhook URL set; one row without),
- how many webhooks the sink received within ``--drain-seconds`` and at what rate (from the
  first job asked for to the last webhook), their latency from the job's creation to its
  arrival (p50 / p99 / max: with a queue drained at a steady rate it grows linearly with the
  burst),
- whether 10 jobs created afterwards, one a second, each arrive within a second, and the
  emulator's CPU meanwhile (a retry storm shows as a busy core), and its own retry count
  (from its summary) and the duplicates the sink saw (retries of what had arrived),
- then, paced rows: jobs created at a steady rate for ``--paced-seconds``, and their latency,
- then, saturated rows (``--saturated SECONDS``): jobs created as fast as 32 clients can for
  that long, with the emulator's own ``--queue-seconds``/``--render-seconds`` (defaults 0 and
  0; ``--saturated-job "0.5 2"`` for the real defaults), and, measured in the same window,
  jobs/s created and completed against webhooks/s the sink received, then how long the
  backlog took to drain, and the attempts that failed ("timed out" counted apart) from the
  emulator's own delivery lines. A delivery's timeout must measure the handler: against this
  sink, which answers at once, there must be none, and deliveries/s must keep up with jobs/s.

    python bench/emulate_burst.py [--bursts 96,480,992,2000,4000] [--paced 100,300,1000]
    python bench/emulate_burst.py --bursts "" --paced "" --saturated 10
    python bench/emulate_burst.py --bursts 2000 --paced "" \\
        --emulator-args "--delivery-concurrency 64"
    cd /tmp && PYTHONPATH=/path/to/other/checkout python /path/to/bench/emulate_burst.py
    (another version of mhw: from outside the checkout, or ``-m`` finds the one in the cwd)

By default the emulator and the sink share core 0 and the clients use core 1 (``--no-pin`` to
leave placement to the kernel). Timings on a shared machine are noisy: compare rows of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SINK = r"""
import asyncio, json, re, sys, time

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
ID = re.compile(rb'"payload":\{.*?"id":"([^"]+)"')
arrivals = {}   # project id -> first arrival (CLOCK_MONOTONIC, shared by processes)
duplicates = 0


def answer(path, writer):
    global arrivals, duplicates
    if path == b"/stats":
        body = json.dumps({"received": len(arrivals), "duplicates": duplicates}).encode()
    elif path == b"/dump":
        body = json.dumps(arrivals).encode()
    elif path == b"/reset":
        arrivals, duplicates, body = {}, 0, b"{}"
    else:
        return False
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    return True


async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            now = time.monotonic()
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length) if length else b""
            if answer(head.split(b" ", 2)[1], writer):
                continue
            global duplicates
            found = ID.search(body)
            key = found.group(1).decode() if found else "?"
            if key in arrivals:
                duplicates += 1
            else:
                arrivals[key] = now
            writer.write(OK)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

try:
    import uvloop
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
"""

IMAGE_BODY = json.dumps({"image_count": 1, "style": {"prompt": "A cat in sunglasses"}}).encode()
CLIENTS = 32
_SUMMARY = re.compile(r"deliveries\s+([\d,]+) delivered, ([\d,]+) retries, ([\d,]+) given up")


def _pin(process_id: int, core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > core:
        os.sched_setaffinity(process_id, {core})


class Connection:
    """One keep-alive HTTP/1.1 connection: a client with nothing between it and the socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def request(self, method: str, path: str, body: bytes = b"") -> bytes:
        self.writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer bench\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length:\s*(\d+)", head)
        answer = await self.reader.readexactly(int(length.group(1)) if length else 0)
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"{method} {path}: {head.splitlines()[0]!r} {answer[:200]!r}")
        return answer

    def close(self) -> None:
        self.writer.close()


async def _get(port: int, path: str) -> Any:
    connection = await Connection.open(port)
    try:
        return json.loads(await connection.request("GET", path))
    finally:
        connection.close()


@dataclass
class Emulator:
    process: subprocess.Popen[bytes]
    port: int
    stderr: Path

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> str:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.stderr.read_text(encoding="utf-8", errors="replace")


def start_emulator(
    sink_url: str | None,
    extra: list[str],
    pin: bool,
    scratch: Path,
    stdout: Path | None = None,
    job_seconds: tuple[str, str] = ("0", "0"),
) -> Emulator:
    """``stdout`` None throws the emulator's lines away; else they go to that file."""
    ready = scratch / f"ready-{time.monotonic_ns()}.json"
    stderr = scratch / f"stderr-{time.monotonic_ns()}.txt"
    command = [sys.executable, "-m", "mh_webhook_cli", "emulate", "--port", "0"]
    command += ["--queue-seconds", job_seconds[0], "--render-seconds", job_seconds[1]]
    command += ["--ready-file", str(ready)]
    if sink_url is not None:
        command += ["--webhook-url", sink_url, "--secret", "whsec_bench_secret_0123456789"]
    with stderr.open("wb") as errors, (stdout or Path(os.devnull)).open("wb") as lines:
        process = subprocess.Popen(
            [*command, *extra], stdout=lines, stderr=errors, env=os.environ.copy()
        )
    if pin:
        _pin(process.pid, 0)
    deadline = time.monotonic() + 30
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the emulator did not start: {stderr.read_text()}")
        time.sleep(0.05)
    return Emulator(process, json.loads(ready.read_text())["port"], stderr)


async def create_jobs(port: int, count: int) -> dict[str, float]:
    """Create ``count`` image jobs from 32 connections; project id -> when its answer came."""
    created: dict[str, float] = {}
    remaining = count

    async def client() -> None:
        nonlocal remaining
        connection = await Connection.open(port)
        try:
            while remaining > 0:
                remaining -= 1
                answer = await connection.request("POST", "/v1/ai-image-generator", IMAGE_BODY)
                created[json.loads(answer)["id"]] = time.monotonic()
        finally:
            connection.close()

    await asyncio.gather(*(client() for _ in range(min(CLIENTS, count))))
    return created


async def create_paced(port: int, rate: float, seconds: float) -> tuple[dict[str, float], float]:
    """Ask for a job every 1/``rate`` s for ``seconds`` on 32 connections: (id -> when it was
    asked for, the rate achieved). An emulator that answers slowly falls behind the schedule
    (it is never sent more than 32 requests at once): fewer jobs are asked for in the time."""
    created: dict[str, float] = {}
    total = int(rate * seconds)
    taken = 0
    start = time.monotonic()

    async def client() -> None:
        nonlocal taken
        connection = await Connection.open(port)
        try:
            while taken < total and time.monotonic() < start + seconds:
                index, taken = taken, taken + 1
                await asyncio.sleep(max(0.0, start + index / rate - time.monotonic()))
                asked = time.monotonic()
                answer = await connection.request("POST", "/v1/ai-image-generator", IMAGE_BODY)
                created[json.loads(answer)["id"]] = asked
        finally:
            connection.close()

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return created, len(created) / (time.monotonic() - start)


async def create_for(port: int, seconds: float) -> dict[str, float]:
    """Create image jobs from 32 connections as fast as they are answered, for ``seconds``."""
    created: dict[str, float] = {}
    end = time.monotonic() + seconds

    async def client() -> None:
        connection = await Connection.open(port)
        try:
            while time.monotonic() < end:
                answer = await connection.request("POST", "/v1/ai-image-generator", IMAGE_BODY)
                created[json.loads(answer)["id"]] = time.monotonic()
        finally:
            connection.close()

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return created


async def wait_delivered(sink_port: int, count: int, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while True:
        received = int((await _get(sink_port, "/stats"))["received"])
        if received >= count or time.monotonic() > deadline:
            return received
        await asyncio.sleep(0.1)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


async def latencies(sink_port: int, created: dict[str, float]) -> list[float]:
    arrivals: dict[str, float] = await _get(sink_port, "/dump")
    return [arrivals[key] - at for key, at in created.items() if key in arrivals]


async def burst_row(
    count: int, sink_port: int, extra: list[str], pin: bool, scratch: Path, drain: float
) -> str:
    await _get(sink_port, "/reset")
    emulator = start_emulator(f"http://127.0.0.1:{sink_port}/webhook", extra, pin, scratch)
    try:
        began = time.monotonic()
        created = await create_jobs(emulator.port, count)
        creation_rate = count / (time.monotonic() - began)
        await wait_delivered(sink_port, count, drain)
        arrivals: dict[str, float] = await _get(sink_port, "/dump")
        burst = [arrivals[key] - at for key, at in created.items() if key in arrivals]
        last = max((arrivals[key] for key in created if key in arrivals), default=began)
        delivery_rate = len(burst) / max(last - began, 1e-9)
        # Then 10 jobs, one a second: does a lone job still get through within a second? And
        # how busy is the emulator meanwhile (a retry storm shows as a busy core)?
        cpu_before, window = emulator.cpu_seconds(), time.monotonic()
        later: dict[str, float] = {}
        for _ in range(10):
            later.update(await create_jobs(emulator.port, 1))
            await asyncio.sleep(1.0)
        window = time.monotonic() - window  # over 10 s when a stuck emulator answers slowly
        cpu_after = (emulator.cpu_seconds() - cpu_before) / window * 100
        late = await latencies(sink_port, later)
        prompt = sum(1 for value in late if value <= 1.0)
        duplicates = int((await _get(sink_port, "/stats"))["duplicates"])
    finally:
        summary = _SUMMARY.search(emulator.stop())
    attempts = f"{summary.group(2)} retries" if summary else "no summary"
    return (
        f"{count:>6} | {creation_rate:>7,.0f} | {len(burst):>5} of {count:<5} | "
        f"{delivery_rate:>7,.0f} | {percentile(burst, 0.5):6.3f} / "
        f"{percentile(burst, 0.99):6.3f} / {max(burst, default=float('nan')):6.3f} s | "
        f"{prompt:>2} of 10 | {cpu_after:5.1f} % | {attempts}, {duplicates} duplicates"
    )


async def paced_row(
    rate: float, seconds: float, sink_port: int, extra: list[str], pin: bool, scratch: Path
) -> str:
    await _get(sink_port, "/reset")
    emulator = start_emulator(f"http://127.0.0.1:{sink_port}/webhook", extra, pin, scratch)
    try:
        created, achieved = await create_paced(emulator.port, rate, seconds)
        await wait_delivered(sink_port, len(created), 20)
        values = await latencies(sink_port, created)
    finally:
        emulator.stop()
    p50, p99 = (percentile(values, share) * 1000 for share in (0.5, 0.99))
    return (
        f"paced {rate:>6,.0f}/s for {seconds:g} s (got {achieved:,.0f}/s) | "
        f"{len(values):>5} of {len(created):<5} in 20 s | p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  "
        f"max {max(values, default=0.0) * 1000:7.1f} ms"
    )


async def saturated_row(
    seconds: float,
    job_seconds: tuple[str, str],
    sink_port: int,
    extra: list[str],
    pin: bool,
    scratch: Path,
    drain: float,
) -> str:
    """Jobs as fast as they come for ``seconds``: jobs/s against deliveries/s in that window."""
    await _get(sink_port, "/reset")
    lines = scratch / f"stdout-{time.monotonic_ns()}.txt"
    url = f"http://127.0.0.1:{sink_port}/webhook"
    emulator = start_emulator(url, extra, pin, scratch, lines, job_seconds)
    try:
        began = time.monotonic()
        created = await create_for(emulator.port, seconds)
        window = time.monotonic() - began
        arrivals: dict[str, float] = await _get(sink_port, "/dump")
        in_window = sum(1 for at in arrivals.values() if at <= began + window)
        await wait_delivered(sink_port, len(created), drain)
        arrivals = await _get(sink_port, "/dump")
        last = max((arrivals[key] for key in created if key in arrivals), default=began)
        values = [arrivals[key] - at for key, at in created.items() if key in arrivals]
    finally:
        stderr = emulator.stop()
        summary = _SUMMARY.search(stderr)
    if summary is None:
        print(stderr[-2000:], file=sys.stderr)
    timeouts = lines.read_text(encoding="utf-8", errors="replace").count("timed out after")
    failed = f"{summary.group(2)} retries, {summary.group(3)} given up" if summary else "?"
    return (
        f"{len(created) / window:>6,.0f} jobs/s | {in_window / window:>6,.0f} webhooks/s | "
        f"{len(values):>6,} of {len(created):<6,} {last - began - window:5.1f} s after | "
        f"{percentile(values, 0.5):6.3f} / {percentile(values, 0.99):6.3f} s | "
        f"{timeouts:,} timed out; {failed}"
    )


async def creation_without_webhooks(count: int, pin: bool, scratch: Path) -> float:
    emulator = start_emulator(None, [], pin, scratch)
    try:
        began = time.monotonic()
        await create_jobs(emulator.port, count)
        return count / (time.monotonic() - began)
    finally:
        emulator.stop()


async def run(arguments: argparse.Namespace, sink_port: int, scratch: Path) -> None:
    extra = arguments.emulator_args.split()
    bursts = [int(each) for each in arguments.bursts.split(",") if each]
    paced = [float(each) for each in arguments.paced.split(",") if each]
    pin = arguments.pin
    if pin:
        _pin(0, 1)
    print(f"emulator args: {' '.join(extra) or '(defaults)'}; python {sys.version.split()[0]}")
    rate = await creation_without_webhooks(max(bursts, default=2000), pin, scratch)
    print(f"job creation without a webhook URL: {rate:,.0f} jobs/s")
    print(
        f" burst | jobs/s  | delivered in {arguments.drain_seconds:g} s | deliv/s | "
        "latency p50 / p99 / max      | 10 later | CPU then | emulator"
    )
    for count in bursts:
        print(await burst_row(count, sink_port, extra, pin, scratch, arguments.drain_seconds))
    for each in paced:
        print(await paced_row(each, arguments.paced_seconds, sink_port, extra, pin, scratch))
    if arguments.saturated:
        print(
            f"saturated for {arguments.saturated:g} s, jobs queued/rendering "
            f"{arguments.saturated_job} s: created | received in the same window | all "
            "received, how long after the window | latency p50 / p99 | failed attempts"
        )
        job_seconds = tuple(arguments.saturated_job.split())
        assert len(job_seconds) == 2, "--saturated-job takes two numbers: queue and render"
        print(
            await saturated_row(
                arguments.saturated,
                (job_seconds[0], job_seconds[1]),
                sink_port,
                extra,
                pin,
                scratch,
                arguments.drain_seconds,
            )
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--bursts", default="96,480,992,2000,4000")
    parser.add_argument("--paced", default="100,300,1000")
    parser.add_argument("--paced-seconds", type=float, default=5.0)
    parser.add_argument("--saturated", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--saturated-job", default="0 0", help="queue and render seconds")
    parser.add_argument("--drain-seconds", type=float, default=40.0)
    parser.add_argument("--emulator-args", default="", help="extra options for mhw emulate")
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    arguments = parser.parse_args()
    sink = subprocess.Popen([sys.executable, "-c", SINK], stdout=subprocess.PIPE, text=True)
    try:
        assert sink.stdout is not None
        sink_port = int(sink.stdout.readline())
        if arguments.pin:
            _pin(sink.pid, 0)
        with socket.create_connection(("127.0.0.1", sink_port), timeout=5):
            pass
        with tempfile.TemporaryDirectory() as scratch:
            asyncio.run(run(arguments, sink_port, Path(scratch)))
    finally:
        sink.terminate()
        sink.wait(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
