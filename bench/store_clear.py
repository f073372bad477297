"""How long ``mhw events clear`` keeps a listener on the same store waiting.

Builds a store of N requests (default 1,000,000), then clears it while another
process takes the write lock over and over, as the listener's writer thread does
for each group commit, and reports the longest wait for the lock and the clear's
duration. Target: no wait over 100 ms.

    python bench/store_clear.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import atexit
import multiprocessing
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from mh_webhook_cli.core.request import Received
from mh_webhook_cli.receive.store import LockHolds, Store

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Event

ROW = (
    "INSERT INTO requests (received_at, method, path, headers, body, body_hash, client, "
    "event_type, project_id, verification, findings, response_status) "
    "VALUES (?, 'POST', '/', '[]', ?, ?, '127.0.0.1:1', 'video.completed', ?, 'ok', '[]', 200)"
)


def build(path: Path, rows: int) -> None:
    Store(path).close()  # the schema, as mhw creates it
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("BEGIN")
    body = b'{"type":"video.completed","payload":{"id":"p","status":"complete"}}' * 4
    connection.executemany(
        ROW, ((1.8e9 + n, body + b"%d" % n, n, f"p{n % 1000}") for n in range(rows))
    )
    connection.execute("COMMIT")
    connection.close()


def probe(path: str, stop: Event, waits: Queue[float]) -> None:
    """Store a request every millisecond, as a listener's writer would; the longest it took."""
    request = Received.of(0.0, "POST", "/", [], b"{}", "127.0.0.1:1", None, None, "ok", [], 200)
    longest = 0.0
    with Store(Path(path)) as store:
        while not stop.is_set():
            started = time.perf_counter()
            store.add(request)
            longest = max(longest, time.perf_counter() - started)
            time.sleep(0.001)
    waits.put(longest)


def describe(holds: LockHolds) -> str:
    ordered = sorted(holds.seconds)
    median, p99 = ordered[len(ordered) // 2], ordered[len(ordered) * 99 // 100]
    return (
        f"{len(ordered)} transactions holding the write lock {median * 1000:.0f} ms "
        f"(median), {p99 * 1000:.0f} ms (p99), {ordered[-1] * 1000:.0f} ms (longest)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    arguments = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mhw-bench-clear-"))
    atexit.register(shutil.rmtree, work, True)  # a store of hundreds of megabytes
    path = work / "events.sqlite3"
    started = time.perf_counter()
    build(path, arguments.rows)
    print(f"built {arguments.rows} rows in {time.perf_counter() - started:.1f} s", flush=True)
    stop = multiprocessing.Event()
    waits: Queue[float] = multiprocessing.Queue()
    prober = multiprocessing.Process(target=probe, args=(str(path), stop, waits))
    prober.start()
    time.sleep(0.5)  # the prober is taking the lock
    with Store(path) as store:
        holds = store.trace_lock_holds()
        started = time.perf_counter()
        deleted = store.clear()
        took = time.perf_counter() - started
    stop.set()
    longest = waits.get(timeout=30)
    prober.join()
    print(
        f"clear: {deleted} rows in {took:.1f} s, {describe(holds)}; a concurrent writer "
        f"stored a request in at most {longest * 1000:.0f} ms (target <= 100 ms)"
    )
    return 0 if longest <= 0.1 else 1


if __name__ == "__main__":
    sys.exit(main())
