"""Throughput of ``mhw send --count`` against a fast loopback handler, next to an anchor.

A load test is only useful if mhw is not the bottleneck, so this measures how many
requests per second ``mhw send video.completed --count 5000 --concurrency 32`` reaches
against a minimal asyncio HTTP/1.1 server (run in a subprocess, answering 200 with
keep-alive), and compares it with an anchor measured in the same run against the same
server: ``wrk`` when installed, else a plain async httpx loop of the same count and
concurrency, i.e. the best the HTTP library alone does.

    python bench/send.py [--count 5000] [--concurrency 32]

Prints both rates and their ratio; exits 1 when mhw is under 1,000 requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

TARGET_RPS = 1000.0

SERVER = r"""
import asyncio, sys

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            writer.write(RESPONSE)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


asyncio.run(main())
"""


def start_server() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    port = int(process.stdout.readline())
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    return process, f"http://127.0.0.1:{port}/webhook"


def run_mhw(url: str, count: int, concurrency: int) -> float:
    """requests/s that ``mhw send`` reports for itself (start-up excluded, as wrk's is)."""
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mh_webhook_cli",
            "send",
            "video.completed",
            "--url",
            url,
            "--secret",
            "bench-secret",
            "--count",
            str(count),
            "--concurrency",
            str(concurrency),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    if completed.returncode != 0:
        raise SystemExit(f"mhw send failed ({completed.returncode}): {completed.stderr.strip()}")
    summary = json.loads(completed.stdout)
    if summary["ok"] != count:
        raise SystemExit(f"only {summary['ok']} of {count} requests succeeded")
    return float(summary["requests_per_second"])


def run_wrk(wrk: str, url: str, concurrency: int) -> float:
    """wrk's requests/s posting a body of the same size for three seconds."""
    script = "wrk.method = 'POST'\nwrk.body = string.rep('x', 1200)\n"
    script += "wrk.headers['Content-Type'] = 'application/json'\n"
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "mhw-bench.lua")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(script)
    output = subprocess.run(
        [wrk, "-t2", f"-c{concurrency}", "-d3s", "-s", path, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([0-9.]+)", output)
    if match is None:
        raise SystemExit(f"cannot read wrk's output:\n{output}")
    return float(match.group(1))


def run_httpx(url: str, count: int, concurrency: int) -> float:
    """A bare httpx.AsyncClient loop: the same work without mhw's signing and bookkeeping."""
    import httpx

    body = b"x" * 1200

    async def main() -> float:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        remaining = count
        async with httpx.AsyncClient(limits=limits) as client:

            async def worker() -> None:
                nonlocal remaining
                while remaining > 0:
                    remaining -= 1
                    (await client.post(url, content=body)).raise_for_status()

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return count / (time.perf_counter() - started)

    return asyncio.run(main())


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    arguments = parser.parse_args()
    process, url = start_server()
    try:
        wrk = shutil.which("wrk")
        anchor_name = "wrk" if wrk else "bare httpx loop"
        if wrk:
            anchor = run_wrk(wrk, url, arguments.concurrency)
        else:
            anchor = run_httpx(url, arguments.count, arguments.concurrency)
        mhw = run_mhw(url, arguments.count, arguments.concurrency)
    finally:
        process.terminate()
        process.wait(timeout=5)
    print(
        f"mhw send: {mhw:,.0f} requests/s   {anchor_name}: {anchor:,.0f} requests/s   "
        f"ratio {mhw / anchor:.2f}   (count {arguments.count}, "
        f"concurrency {arguments.concurrency}, target >= {TARGET_RPS:,.0f}/s)"
    )
    return 0 if mhw >= TARGET_RPS else 1


if __name__ == "__main__":
    sys.exit(main())
