"""What an open web inspector costs the listener per request: ``Inspector.publish`` + its flush.

``mhw listen --ui`` calls ``publish`` once per request on the listener's loop. This runs
an inspector on one loop, opens N live feeds that read everything (as pages do), and
publishes the JSON record of bench/listen.py's ``video.completed`` in groups of 30 a loop
turn (a group commit's size under bench/listen.py's load), 10,000 in all; the pages read
on threads of their own, so only the server's side is timed:

    python bench/inspector_publish.py [--events 10000] [--feeds 0 1 4]

It prints microseconds of loop time per event for each number of feeds. Compare with the
listener's time per request (1e6 / its requests/s in bench/listen.py): the UI must stay
within 10% of it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from mh_webhook_cli.cli.ui import inspector

GROUP = 30
BODY = json.dumps(
    {
        "type": "video.completed",
        "payload": {
            "id": "clx7uu86w0a5qp55yxz315r6r",
            "name": "Example Name",
            "status": "complete",
            "downloads": [{"url": "https://videos.magichour.ai/id/output.mp4"}],
        },
    }
)


def record(request_id: int) -> dict[str, Any]:
    """A ``mhw listen --format json`` record, as the listener would publish it."""
    return {
        "kind": "request",
        "id": request_id,
        "received_at": "2026-12-01T12:00:00.000Z",
        "method": "POST",
        "path": "/",
        "client": "127.0.0.1:50000",
        "type": "video.completed",
        "project_id": "clx7uu86w0a5qp55yxz315r6r",
        "status": "complete",
        "verification": "ok",
        "valid": True,
        "findings": [],
        "retry_of": None,
        "answer": 200,
        "forwards": [],
        "headers": {"content-type": "application/json", "content-length": str(len(BODY))},
        "body": BODY,
        "body_encoding": "utf-8",
    }


def feed(url: str, token: str, counts: list[int], index: int) -> None:
    """A page's feed, read on a thread of its own: the loop measured does only the server's part."""
    port = urlsplit(url).port  # the URL ends in "#token=...": the token is given apart
    assert port is not None
    with socket.create_connection(("127.0.0.1", port)) as page:
        page.sendall(
            f"GET /api/stream?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        )
        tail = b""
        while chunk := page.recv(1 << 16):
            seen = tail + chunk
            counts[index] += seen.count(b"data: ") - tail.count(b"data: ")
            tail = seen[-5:]  # a "data: " cut between two reads is counted once


async def measure(events: int, feeds: int) -> float:
    served = inspector(None, None, [], 300, 0)
    url = await served.start()
    counts = [0] * feeds
    for index in range(feeds):
        threading.Thread(target=feed, args=(url, served.token, counts, index), daemon=True).start()
    while len(served._feeds) < feeds:  # every page in before the clock starts
        await asyncio.sleep(0.01)
    records = [record(i) for i in range(events)]
    loop_time = 0.0
    for start in range(0, events, GROUP):
        began = time.perf_counter()
        for one in records[start : start + GROUP]:
            served.publish(one)
        await asyncio.sleep(0)  # the turn in which the flush runs
        loop_time += time.perf_counter() - began
    while feeds and min(counts) < events:
        await asyncio.sleep(0.01)
    await served.close()
    return loop_time / events * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--feeds", type=int, nargs="+", default=[0, 1, 4])
    arguments = parser.parse_args()
    for feeds in arguments.feeds:
        cost = asyncio.run(measure(arguments.events, feeds))
        print(f"{feeds} feed(s): {cost:.2f} µs of loop time per published event")
    return 0


if __name__ == "__main__":
    sys.exit(main())
