"""How ``mhw events`` scales with the capture store: 10k, 100k and 1M events.

Fills one store through the store's own write path (``Store.add_many``, 10,000
requests a transaction: what a listener's group commits do, without HTTP), growing
it to each size in turn. At each size it runs each command as a user does
(``python -m mh_webhook_cli``, output to a file) and prints its wall time, peak
resident memory, and growth against the smallest size. The anchor, measured in the
same run on the same rows: the ``sqlite3`` shell's ``-json`` output of the columns
an export reads (without the shell, Python's sqlite3 module writing JSON; the
output says which). Targets (issue 17): every command under 100 MB at any size;
the filters' time flat as the store grows; export within 3x of the anchor.

From 20,000 events on, ``events export`` renders in two processes (see
``report.events.export_store``): its CPU time is both processes', and its wall time
halves only when the second core is free, so run this on a quiet machine.

    python bench/store.py [--sizes 10000,100000,1000000]

The requests: the webhook reference's ``video.completed`` example (519 bytes, as
in bench/listen.py) with the headers wrk sends there, each body unique, ten milliseconds
apart; one in 50 an ``image.completed``; one in 100 of the first 10,000 with a bad signature.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from mh_webhook_cli.core.request import Received
from mh_webhook_cli.receive.store import Store

BODY = (
    '{"type":"video.completed","payload":{"id":"clx7uu86w0a5qp55yxz315r6r","name":"Example Name",'
    '"status":"complete","type":"ANIMATION","created_at":"2023-11-07T05:31:56Z","width":512,'
    '"height":960,"enabled":true,"start_seconds":0,"end_seconds":15,"total_frame_cost":450,'
    '"credits_charged":450,"fps":30,"error":null,"downloads":[{"url":"https://videos.magichour.ai/'
    'id/output.mp4","expires_at":"2024-10-19T05:16:19.027Z"}],"download":{"url":"https://videos.'
    'magichour.ai/id/output.mp4","expires_at":"2024-10-19T05:16:19.027Z"}}}'
)
SIGNATURE = "3f" * 32
SPACING_SECONDS = 0.01
BATCH = 10_000
EARLY = 10_000
"""Requests with a bad signature come only among the first ones (the developer then fixed
their secret): a listing of them that scans newest first reads the whole store."""
ANCHOR_SQL = (
    "SELECT id, received_at, method, path, headers, body, client, event_type, project_id, "
    "verification, findings, response_status, retry_of FROM requests ORDER BY received_at, id"
)


TIME = "/usr/bin/time"


def request(number: int, start: float) -> Received:
    """The ``number``-th request of the fill: unique, realistic, and now and then not valid."""
    event_type = "image.completed" if number % 50 == 0 else "video.completed"
    project = f"{number:025d}"
    body = BODY.replace("clx7uu86w0a5qp55yxz315r6r", project).replace(
        "video.completed", event_type, 1
    )
    valid = number >= EARLY or number % 100 != 1
    return Received.of(
        received_at=start + number * SPACING_SECONDS,
        method="POST",
        target="/",
        headers=[
            ("Host", "127.0.0.1:8787"),
            ("Content-Length", str(len(body))),
            ("Content-Type", "application/json"),
            ("magic-hour-event-signature", SIGNATURE),
            ("magic-hour-event-timestamp", "1764609000"),
        ],
        body=body.encode(),
        client="127.0.0.1:50000",
        event_type=event_type,
        project_id=project,
        verification="ok" if valid else "mismatch",
        findings=[],
        answer=200 if valid else 401,
    )


def fill(path: Path, start_number: int, end_number: int, start: float) -> None:
    with Store(path) as store:
        for first in range(start_number, end_number, BATCH):
            last = min(end_number, first + BATCH)
            store.add_many([request(number, start) for number in range(first, last)])


@dataclass
class Run:
    seconds: float
    """Wall time."""
    cpu_seconds: float
    """User and system time: steadier than wall time on a shared machine."""
    peak_mb: float


def run(command: list[str], output: Path, env: dict[str, str]) -> Run:
    """Run ``command`` with stdout to ``output``: its wall time and peak RSS.

    The peak comes from GNU time, not from this process's wait4: a child forked from
    this process (grown by the fill) starts with this process's peak as its own.
    """
    report = output.with_suffix(".rss")
    with output.open("wb") as out:
        started = time.perf_counter()
        finished = subprocess.run(
            [TIME, "-f", "%M %U %S", "-o", str(report), *command],
            stdout=out,
            stderr=subprocess.PIPE,
            env=env,
        )
        took = time.perf_counter() - started
    if finished.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {finished.stderr.decode()}")
    output.unlink()  # a million rows of output is a gigabyte: the disk holds one at a time
    peak_kb, user, system = report.read_text().split()[-3:]
    return Run(took, float(user) + float(system), int(peak_kb) / 1024)


def python_anchor(path: Path, output: Path) -> None:
    """What the sqlite3 shell's -json does, for a machine without it: the rows as JSON."""
    connection = sqlite3.connect(path)
    connection.text_factory = lambda data: data.decode("utf-8", "replace")
    with output.open("w") as out:
        cursor = connection.execute(ANCHOR_SQL)
        names = [column[0] for column in cursor.description]
        out.write("[")
        for number, row in enumerate(cursor):
            values = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in row]
            out.write(("," if number else "") + json.dumps(dict(zip(names, values, strict=True))))
        out.write("]\n")
    connection.close()


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="mhw-bench-store-"))
    try:
        return measure(work)
    finally:
        shutil.rmtree(work)  # a million-row store is a gigabyte, also when a command failed


def measure(work: Path) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="10000,100000,1000000",
        help="Store sizes to measure, comma-separated, ascending (e.g. 1000,10000 for CI).",
    )
    arguments = parser.parse_args()
    sizes = sorted(int(size) for size in arguments.sizes.split(","))
    path = work / "events.sqlite3"
    env = {**os.environ, "MHW_STORE": str(path), "MHW_CONFIG": str(work / "config.json")}
    mhw = [sys.executable, "-m", "mh_webhook_cli", "events"]
    if not Path(TIME).exists():
        raise SystemExit(f"{TIME} (GNU time) is needed: apt-get install time")
    sqlite_shell = shutil.which("sqlite3")
    anchor_name = "sqlite3 -json" if sqlite_shell else "python sqlite3 -> json (no sqlite3 shell)"
    start = time.time() - sizes[-1] * SPACING_SECONDS
    print(f"anchor: {anchor_name}; {os.cpu_count()} cores; output to files in {work}", flush=True)

    results: dict[str, dict[int, Run]] = {}
    filled = 0
    for size in sizes:
        began = time.perf_counter()
        fill(path, filled, size, start)
        filled = size
        with sqlite3.connect(path) as connection:  # what a listener's checkpoints leave
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        per_event = path.stat().st_size / size
        print(
            f"\n{size:,} events: filled in {time.perf_counter() - began:.1f} s; "
            f"{per_event:,.0f} bytes an event on disk ({len(request(0, 0).body)}-byte body)",
            flush=True,
        )
        newest = start + (size - 1) * SPACING_SECONDS
        minute_before = datetime.fromtimestamp(newest - 60, timezone.utc).isoformat()
        commands: dict[str, list[str]] = {
            "list": [*mhw, "list"],
            "list --invalid": [*mhw, "list", "--invalid"],
            "list --type video.completed": [*mhw, "list", "--type", "video.completed"],
            "list --type 'image.*'": [*mhw, "list", "--type", "image.*"],
            "list --since (1 min)": [*mhw, "list", "--since", minute_before],
            "list --project (an old one)": [*mhw, "list", "--project", f"{size // 10:025d}"],
            "list --all --format json": [*mhw, "list", "--all", "--format", "json"],
            "export (jsonl)": [*mhw, "export"],
            "export --format har": [*mhw, "export", "--format", "har"],
        }
        output = work / "out"
        anchor_output = work / "anchor.json"
        if sqlite_shell:
            results.setdefault(anchor_name, {})[size] = run(
                [sqlite_shell, "-json", str(path), ANCHOR_SQL], anchor_output, env
            )
        else:
            began, cpu = time.perf_counter(), time.process_time()
            python_anchor(path, anchor_output)
            took = time.perf_counter() - began
            anchor_output.unlink()
            results.setdefault(anchor_name, {})[size] = Run(took, time.process_time() - cpu, 0.0)
        for name, command in commands.items():
            results.setdefault(name, {})[size] = run(command, output, env)
        anchor = results[anchor_name][size]
        for name, by_size in results.items():
            measured = by_size[size]
            growth = measured.seconds / by_size[sizes[0]].seconds
            note = ""
            if name.startswith(("export", "list --all")):
                note = (
                    f"  {size / measured.seconds:9,.0f} rows/s"
                    f"  {measured.seconds / anchor.seconds:4.1f}x the anchor"
                    f" ({measured.cpu_seconds / max(anchor.cpu_seconds, 0.01):.1f}x in CPU time)"
                )
            print(
                f"  {name:30} {measured.seconds:7.2f} s ({measured.cpu_seconds:6.2f} s CPU)"
                f"  {measured.peak_mb:5.0f} MB peak  {growth:5.1f}x the {sizes[0]:,} time{note}",
                flush=True,
            )
    largest = sizes[-1]
    peak = max(by_size[largest].peak_mb for name, by_size in results.items() if name in commands)
    export_ratio = max(
        results[name][largest].seconds / results[anchor_name][largest].seconds
        for name in ("export (jsonl)", "export --format har")
    )
    print(
        f"\nat {largest:,} events: highest peak RSS {peak:.0f} MB (target < 100); "
        f"export at most {export_ratio:.1f}x {anchor_name} (target <= 3x)"
    )
    return 0 if peak < 100 and export_ratio <= 3 else 1


if __name__ == "__main__":
    sys.exit(main())
