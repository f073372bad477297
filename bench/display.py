"""What ``mhw listen``'s display costs a request, text against JSON lines, in one process.

``bench/listen.py`` measures the whole listener under wrk; on a machine shared with other
work its rounds swing by 2-10x, far more than the display's share. This bench isolates that
share: the reporter of each format is handed the same judged requests (the webhook
reference's ``video.completed``, signed, as in ``bench/listen.py``), 16 per event-loop turn
as under load, and writes through the real background writer to a file. It reports the time
per request of each (target: text within 5% of JSON lines, whose cost the listener's
throughput already carries) over alternated rounds.

    python bench/display.py [--requests 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import sys
import tempfile
import time
from pathlib import Path

from listen import BODY, SECRET

from mh_webhook_cli.core.request import Request
from mh_webhook_cli.receive.activity import RequestReceived
from mh_webhook_cli.receive.listener import ListenConfig, Listener
from mh_webhook_cli.report import console
from mh_webhook_cli.report.listen import ListenJsonReporter, ListenTextReporter
from mh_webhook_cli.report.writer import BackgroundWriter

PER_TURN = 16
TEXT_TO_JSON = 1.05
"""Issue 17: the text display within 5% of JSON lines."""


def requests(count: int) -> list[RequestReceived]:
    """``count`` requests as the listener hands them to its reporter: judged and stored."""
    timestamp = str(int(time.time()))
    signature = hmac.new(
        SECRET.encode(), f"{timestamp}.{BODY}".encode(), hashlib.sha256
    ).hexdigest()
    headers = [
        ("host", "127.0.0.1:8787"),
        ("content-type", "application/json"),
        ("content-length", str(len(BODY))),
        ("magic-hour-event-signature", signature),
        ("magic-hour-event-timestamp", timestamp),
    ]
    by_name = dict(headers)
    listener = Listener(ListenConfig(secrets=(SECRET,)), None, lambda _: None)
    judged = []
    for number in range(1, count + 1):
        received = listener.judge(
            Request("POST", "/", headers, BODY.encode(), "127.0.0.1:50000", by_name)
        )
        received.id = number
        judged.append(RequestReceived(received, True, False))
    return judged


def microseconds_each(output_format: str, events: list[RequestReceived], into: Path) -> float:
    reporter = ListenTextReporter() if output_format == "text" else ListenJsonReporter()
    with into.open("wb") as file:
        writer = BackgroundWriter(file.fileno(), limit=1 << 30)
        console.redirect("stdout", writer)

        async def report() -> float:
            started = time.perf_counter()
            for start in range(0, len(events), PER_TURN):
                for event in events[start : start + PER_TURN]:
                    reporter.report(event)
                await asyncio.sleep(0)  # the end of a loop turn: its lines are written
            reporter.flush()
            return time.perf_counter() - started

        try:
            elapsed = asyncio.run(report())
        finally:
            console.redirect("stdout", None)
            writer.close(10)
    if writer.dropped:
        raise SystemExit(f"{output_format}: {writer.dropped} lines dropped")
    return elapsed / len(events) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    events = requests(arguments.requests)
    results: dict[str, list[float]] = {"text": [], "json": []}
    with tempfile.TemporaryDirectory() as work:
        for round_number in range(arguments.rounds):
            order = ["text", "json"] if round_number % 2 == 0 else ["json", "text"]
            for output_format in order:
                cost = microseconds_each(output_format, events, Path(work) / output_format)
                results[output_format].append(cost)
            print(
                f"round {round_number + 1}: text {results['text'][-1]:.2f} µs/request   "
                f"json {results['json'][-1]:.2f} µs/request",
                flush=True,
            )
    ratios = sorted(t / j for t, j in zip(results["text"], results["json"], strict=True))
    ratio = ratios[len(ratios) // 2]
    print(
        f"display: text {min(results['text']):.2f} µs/request best, JSON lines "
        f"{min(results['json']):.2f} best; text/JSON median of {arguments.rounds} alternated "
        f"rounds {ratio:.2f} (target <= {TEXT_TO_JSON:g}; {arguments.requests} requests, "
        f"{PER_TURN} a turn)"
    )
    return 0 if ratio <= TEXT_TO_JSON else 1


if __name__ == "__main__":
    sys.exit(main())
