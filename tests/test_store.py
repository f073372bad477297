"""The capture store on real SQLite files: round trips, filters, group commits, crashes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import wait_for
from mh_webhook_cli.core.request import ForwardResult, Received
from mh_webhook_cli.errors import StoreClosed, StoreError
from mh_webhook_cli.receive.migrations import SCHEMA_VERSION
from mh_webhook_cli.receive.store import (
    GroupCommitter,
    Store,
    default_store_path,
)

BODY = b'{"type":"video.completed","payload":{"id":"proj-1","status":"complete"}}\n'


def request(
    *,
    body: bytes = BODY,
    received_at: float = 1_800_000_000.0,
    event_type: str | None = "video.completed",
    project_id: str | None = "proj-1",
    verification: str = "ok",
    findings: list[dict[str, str]] | None = None,
) -> Received:
    return Received.of(
        received_at=received_at,
        method="POST",
        target="/webhook?source=test",
        headers=[
            ("X-B", "2"),
            ("Content-Type", "application/json"),
            ("X-A", "1"),
            ("X-B", "repeated, kept"),
        ],
        body=body,
        client="127.0.0.1:50123",
        event_type=event_type,
        project_id=project_id,
        verification=verification,
        findings=findings or [],
        answer=200,
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "events.sqlite3"


@pytest.fixture
def store(path: Path) -> Iterator[Store]:
    with Store(path) as opened:
        yield opened


@contextlib.asynccontextmanager
async def committer_on(path: Path) -> AsyncIterator[GroupCommitter]:
    """A committer on a new store at ``path``, its writer stopped and the store closed after."""
    with Store(path) as store:
        committer = GroupCommitter(store)
        try:
            yield committer
        finally:
            await committer.close()


def visible_ids(path: Path) -> set[int]:
    """The committed ids, as a fresh connection (another reader) sees them."""
    connection = sqlite3.connect(path)
    try:
        return {row_id for (row_id,) in connection.execute("SELECT id FROM requests")}
    finally:
        connection.close()


def test_add_get_round_trip_keeps_exact_bytes_and_header_order(store: Store) -> None:
    binary = b"\x00\xff\xfe not utf-8 \r\n\x80"
    original = request(body=binary, event_type=None, project_id=None, verification="unsigned")
    stored = store.get(store.add(original))
    assert stored is not None
    assert stored.body == binary
    assert stored.headers == original.headers
    assert (stored.method, stored.target, stored.client) == (
        "POST",
        "/webhook?source=test",
        "127.0.0.1:50123",
    )
    assert (stored.event_type, stored.project_id, stored.verification) == (None, None, "unsigned")
    assert stored.received_at == original.received_at
    assert (stored.forwards, stored.retry_of) == ([], None)
    assert stored.id is not None
    assert store.get(stored.id + 1) is None


def test_add_many_returns_ids_in_order(store: Store) -> None:
    bodies = [b'{"n":%d}' % n for n in range(5)]
    receipts = store.add_many([request(body=body, event_type=None) for body in bodies])
    assert all(receipt.retry_of is None for receipt in receipts)
    ids = [receipt.id for receipt in receipts]
    stored = [store.get(row_id) for row_id in ids]
    assert [item.body for item in stored if item is not None] == bodies
    assert ids == sorted(ids)


def test_list_is_newest_first_and_filters(store: Store) -> None:
    now = 1_800_000_000.0
    old = store.add(request(received_at=now - 7200, event_type="video.started", body=b"1"))
    image = store.add(request(received_at=now - 60, event_type="image.completed", body=b"2"))
    bad = store.add(
        request(
            received_at=now - 30,
            event_type="video.errored",
            body=b"3",
            verification="signature_mismatch",
        )
    )
    finding = {"path": "payload.id", "code": "missing", "message": "required"}
    schema = store.add(
        request(received_at=now - 10, event_type="video.completed", body=b"4", findings=[finding])
    )
    junk = store.add(request(received_at=now, event_type=None, body=b"5", verification="unsigned"))

    assert [item.id for item in store.requests()] == [junk, schema, bad, image, old]
    assert [item.id for item in store.requests(event_glob="video.*")] == [schema, bad, old]
    assert [item.id for item in store.requests(event_glob="[!v]*")] == [image]
    assert [item.id for item in store.requests(since=now - 60)] == [junk, schema, bad, image]
    assert [item.id for item in store.requests(invalid_only=True)] == [junk, schema, bad]
    assert store.get(schema) is not None and store.get(schema).findings == [finding]  # type: ignore[union-attr]
    assert [item.id for item in store.requests(limit=2)] == [junk, schema]
    assert [
        item.id for item in store.requests(event_glob="video.*", invalid_only=True, limit=1)
    ] == [schema]
    assert [item.id for item in store.requests(oldest_first=True, page_size=2)] == [
        old,
        image,
        bad,
        schema,
        junk,
    ]


def test_retry_of_points_at_the_first_delivery_of_the_same_event(store: Store) -> None:
    first = store.add(request())
    retry = store.add(request(received_at=1_800_000_060.0))
    again = store.add(request(received_at=1_800_000_120.0))
    other_body = store.add(request(body=BODY.replace(b"complete", b"completed")))
    other_project = store.add(request(project_id="proj-2"))
    junk = [store.add(request(event_type=None, body=b"ping")) for _ in range(2)]
    # An event that names no project is looked up by its bytes alone.
    unowned = b'{"type":"video.completed","payload":{}}'
    first_unowned, retry_unowned = (
        store.add(request(body=unowned, project_id=None)) for _ in range(2)
    )
    retries = {item.id: item.retry_of for item in store.requests()}
    assert retries[first] is None
    assert retries[retry] == first
    assert retries[again] == first
    assert retries[other_body] is None
    assert retries[other_project] is None
    assert [retries[row_id] for row_id in junk] == [None, None]
    assert (retries[first_unowned], retries[retry_unowned]) == (None, first_unowned)


def test_forwards_are_attached_in_order(store: Store) -> None:
    row_id = store.add(request())
    results = [
        {
            "target": "http://localhost:3000/a",
            "status": 200,
            "latency_ms": 4.5,
            "error": None,
            "body": "ok",
        },
        {
            "target": "http://localhost:3000/b",
            "status": None,
            "latency_ms": None,
            "error": "refused",
            "body": None,
        },
    ]
    store.add_forwards([(row_id, result) for result in results])  # type: ignore[misc]
    stored = store.get(row_id)
    assert stored is not None and stored.forwards == results
    assert next(store.requests()).forwards == results


def test_count_and_clear_and_ids_are_not_reused(
    store: Store, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mh_webhook_cli.receive.store.CLEAR_BATCH_ROWS", 2)  # 5 rows: 3 batches
    ids = [
        r.id for r in store.add_many([request(body=b"%d" % n, event_type=None) for n in range(5)])
    ]
    result = {"target": "t", "status": 200, "latency_ms": 1.0, "error": None, "body": None}
    store.add_forwards([(ids[0], result), (ids[4], result)])  # type: ignore[list-item]
    assert store.count() == 5
    assert store.clear() == 5
    assert store.count() == 0
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT count(*) FROM forwards").fetchone() == (0,)
    assert store.add(request()) > max(ids)


def test_files_are_private(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        path = tmp_path / "new" / "dir" / "events.sqlite3"
        with Store(path) as store:
            store.add(request())
            assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
            for name in ("events.sqlite3", "events.sqlite3-wal", "events.sqlite3-shm"):
                assert stat.S_IMODE((path.parent / name).stat().st_mode) == 0o600, name
    finally:
        os.umask(previous)


def test_default_store_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MHW_STORE", str(tmp_path / "mine.sqlite3"))
    assert default_store_path() == tmp_path / "mine.sqlite3"
    monkeypatch.delenv("MHW_STORE")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_store_path() == tmp_path / "data" / "mhw" / "events.sqlite3"


def test_wal_mode_schema_version_and_a_newer_schema_is_refused(path: Path) -> None:
    Store(path).close()
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
    connection.execute("PRAGMA user_version = 99")
    connection.close()
    with pytest.raises(StoreError, match="schema version 99"):
        Store(path)


def test_a_new_store_packs_rows_in_8_kb_pages_and_an_old_one_keeps_its_own(
    tmp_path: Path,
) -> None:
    """A 4 KB page held four ~850-byte webhooks and a fifth of itself stayed empty; each
    16 KB page a commit touches cost a listener CPU (see SQLITE_PAGE_BYTES)."""
    from mh_webhook_cli.receive.store import INLINE_CHECKPOINT_BYTES

    new, old = tmp_path / "new.sqlite3", tmp_path / "old.sqlite3"
    with sqlite3.connect(old) as connection:  # as an earlier mhw created it
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("CREATE TABLE t (x)")
    for path, page_bytes in ((new, 8192), (old, 4096)):

        async def main(path: Path = path) -> int:
            async with committer_on(path) as committer:
                await committer.submit(request())
                connection = committer.store._connection
                return int(connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0])

        # The writer copies the WAL in line at the same size in bytes, whatever the page.
        assert asyncio.run(main()) == INLINE_CHECKPOINT_BYTES // page_bytes
        with sqlite3.connect(path) as connection:
            assert connection.execute("PRAGMA page_size").fetchone()[0] == page_bytes
            assert connection.execute("SELECT count(*) FROM requests").fetchone()[0] == 1


def test_a_file_that_is_not_a_store_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database, just some text that is long enough to have a header" * 10)
    with pytest.raises(StoreError, match=r"notes\.txt"):
        Store(path)


def test_committer_resolves_futures_only_once_rows_are_visible_to_other_readers(path: Path) -> None:
    seen: list[bool] = []

    async def main() -> list[int]:
        async with committer_on(path) as committer:
            futures = [committer.submit(request(body=b"%d" % n)) for n in range(300)]
            for future in futures:
                # Runs as the future resolves, right after the commit: another reader sees the row.
                future.add_done_callback(
                    lambda done: seen.append(done.result().id in visible_ids(path))
                )
            receipts = await asyncio.gather(*futures)
        return [receipt.id for receipt in receipts]

    ids = asyncio.run(main())
    assert len(seen) == 300 and all(seen)
    assert len(set(ids)) == 300
    assert visible_ids(path) == set(ids)


def test_one_loop_turn_is_one_transaction(path: Path) -> None:
    """32 concurrent submitters share commits: fewer transactions than requests."""
    commits = 0

    async def main() -> None:
        nonlocal commits
        async with committer_on(path) as committer:
            store = committer.store
            original = store.add_many

            def counting_add_many(requests: Any) -> Any:
                nonlocal commits
                commits += 1
                return original(requests)

            store.add_many = counting_add_many  # type: ignore[method-assign]

            async def submitter(worker: int) -> None:
                for n in range(200):
                    await committer.submit(request(body=b"%d-%d" % (worker, n), event_type=None))

            await asyncio.gather(*(submitter(worker) for worker in range(32)))

    asyncio.run(main())
    with Store(path) as store:
        assert store.count() == 32 * 200
    assert commits <= 200 + 1, f"{commits} commits for 6400 requests from 32 submitters"


def test_receipts_mark_retries(path: Path) -> None:
    async def main() -> list[Any]:
        async with committer_on(path) as committer:
            first = await committer.submit(request())
            again = await asyncio.gather(committer.submit(request()), committer.submit(request()))
            return [first, *again]

    first, second, third = asyncio.run(main())
    assert first.retry_of is None
    assert second.retry_of == third.retry_of == first.id


def test_a_failed_commit_rejects_its_futures_and_the_committer_recovers(path: Path) -> None:
    async def main() -> None:
        async with committer_on(path) as committer:
            await committer.submit(request())
            blocker = sqlite3.connect(path)
            blocker.execute(
                "CREATE TRIGGER full BEFORE INSERT ON requests "
                "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
            )
            blocker.commit()
            futures = [committer.submit(request(body=b"%d" % n)) for n in range(20)]
            for future in futures:
                with pytest.raises(StoreError, match="disk is full"):
                    await future
            blocker.execute("DROP TRIGGER full")
            blocker.commit()
            blocker.close()
            assert (await committer.submit(request(body=b"after"))).id > 0

    asyncio.run(main())
    with Store(path) as store:
        assert store.count() == 2


def test_a_programming_error_in_a_store_method_is_not_reported_as_bad_input(
    store: Store,
) -> None:
    """Every TypeError and ValueError once became StoreError: exit 2, "bad input", no trace."""
    row_id = store.add(request())
    broken = ForwardResult(target=object(), status=200, latency_ms=1.0, error=None, body="")  # type: ignore[typeddict-item]
    with pytest.raises(TypeError):
        store.add_forwards([(row_id, broken)])
    with pytest.raises(StoreError, match="JSON serializable"):  # a request's findings: its input
        store.add(request(findings=[{"path": object()}]))  # type: ignore[dict-item]


def test_the_forward_results_of_a_delivery_are_recorded_as_one(path: Path) -> None:
    results = [
        ForwardResult(
            target=f"http://127.0.0.1:1/{n}", status=200, latency_ms=1.0, error=None, body=""
        )
        for n in range(3)
    ]

    async def main() -> int:
        async with committer_on(path) as committer:
            receipt = await committer.submit(request())
            await committer.record_forwards(receipt.id, results)
            return receipt.id

    row_id = asyncio.run(main())
    with Store(path) as store:
        stored = store.get(row_id)
    assert stored is not None and stored.forwards == results


def test_closing_commits_what_was_submitted_and_refuses_what_comes_after(path: Path) -> None:
    async def main() -> None:
        with Store(path) as store:
            committer = GroupCommitter(store)
            pending = [committer.submit(request(body=b"%d" % n)) for n in range(3)]
            await committer.close()
            assert [receipt.id for receipt in await asyncio.gather(*pending)] == [1, 2, 3]
            with pytest.raises(StoreClosed):
                await committer.submit(request(body=b"late"))
            with pytest.raises(StoreClosed):
                await committer.record_forwards(1, [])

    asyncio.run(main())
    assert visible_ids(path) == {1, 2, 3}


def test_closing_gives_up_waiting_for_a_lock_another_connection_holds(path: Path) -> None:
    """Each group waited BUSY_TIMEOUT_SECONDS (5 s) for the lock, on the loop, at close."""
    Store(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")

    async def main() -> float:
        with Store(path) as store:
            committer = GroupCommitter(store)
            first = committer.submit(request(body=b"first"))
            await asyncio.sleep(0)  # the first group goes to the writer, which waits for the lock
            second = committer.submit(request(body=b"second"))
            started = time.monotonic()
            await committer.close()
            took = time.monotonic() - started
            for future in (first, second):
                with pytest.raises(StoreClosed):
                    await future
            return took

    try:
        took = asyncio.run(main())
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert took < 1.0, f"closing took {took:.1f} s"
    assert visible_ids(path) == set()


READER = textwrap.dedent(
    """
    import sqlite3, sys
    connection = sqlite3.connect(sys.argv[1], timeout=0.1, isolation_level=None)
    connection.execute("BEGIN")
    before = connection.execute("SELECT count(*) FROM requests").fetchone()[0]
    print(before, flush=True)
    sys.stdin.readline()  # the writer commits while this snapshot is open
    during = connection.execute("SELECT count(*) FROM requests").fetchone()[0]
    connection.execute("COMMIT")
    after = connection.execute("SELECT count(*) FROM requests").fetchone()[0]
    print(during, after, flush=True)
    """
)


def test_a_reader_in_another_process_does_not_block_the_writer(path: Path) -> None:
    with Store(path) as store:
        store.add(request(body=b"first"))
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert reader.stdout is not None and reader.stdin is not None
            assert reader.stdout.readline().strip() == "1"
            # With a rollback journal this commit would wait for the reader's lock and time out.
            receipts = store.add_many([request(body=b"%d" % n) for n in range(100)])
            assert len(receipts) == 100
            reader.stdin.write("go\n")
            reader.stdin.flush()
            assert reader.stdout.readline().split() == ["1", "101"]
        finally:
            reader.kill()
            reader.wait(timeout=10)


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from mh_webhook_cli.core.request import ForwardResult, Received
    from mh_webhook_cli.receive.store import GroupCommitter, Store

    async def submit_forever(committer, worker):
        n = 0
        while True:
            n += 1
            body = b'{"worker":%d,"n":%d}' % (worker, n)
            request = Received.of(0.0, "POST", "/", [], body, "c", None, None, "unsigned", [], 200)
            receipt = await committer.submit(request)
            sys.stdout.write(f"{receipt.id}\\n")
            sys.stdout.flush()

    async def main():
        committer = GroupCommitter(Store(Path(sys.argv[1])))
        await asyncio.gather(*(submit_forever(committer, worker) for worker in range(8)))

    asyncio.run(main())
    """
)


def test_sigkill_mid_burst_keeps_every_acknowledged_request(path: Path) -> None:
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE)
    lines: queue.SimpleQueue[bytes] = queue.SimpleQueue()

    def pump() -> None:
        assert writer.stdout is not None
        for line in writer.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    acknowledged: list[bytes] = []
    try:
        deadline = time.monotonic() + 30
        while len(acknowledged) < 3000:
            acknowledged.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
    while not lines.empty():
        acknowledged.append(lines.get())
    ids = {int(line) for line in acknowledged if line.endswith(b"\n")}
    assert len(ids) >= 3000
    assert writer.returncode == -signal.SIGKILL
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {row_id for (row_id,) in connection.execute("SELECT id FROM requests")}
    finally:
        connection.close()
    assert ids <= stored


def test_a_store_that_ran_a_migration_this_mhw_does_not_know_is_refused(path: Path) -> None:
    Store(path).close()
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("INSERT INTO mhw_migrations (name, applied_at) VALUES ('from_later', 0)")
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
    connection.close()
    with pytest.raises(StoreError, match=r"migrations this mhw does not know \(from_later\)"):
        Store(path)


def fill_directly(
    path: Path, rows: list[tuple[float, str, str]], project: Callable[[int], str] = lambda n: "p"
) -> None:
    """``(received_at, event_type, verification)`` rows, inserted at SQLite's speed; the
    ``n``-th row's project id is ``project(n)``."""
    Store(path).close()  # the schema, as mhw makes it
    with sqlite3.connect(path) as connection:
        connection.executemany(
            "INSERT INTO requests (received_at, method, path, headers, body, body_hash, client, "
            "event_type, project_id, verification, findings, response_status) "
            "VALUES (?, 'POST', '/', '[]', x'7b7d', 0, 'c', ?, ?, ?, '[]', 200)",
            [(at, kind, project(n), verdict) for n, (at, kind, verdict) in enumerate(rows)],
        )


@pytest.mark.parametrize("page_bytes", [8 * 1024 * 1024, 5])
def test_pages_resume_exactly_after_their_last_row_even_among_equal_times(
    path: Path, monkeypatch: pytest.MonkeyPatch, page_bytes: int
) -> None:
    """A page ends inside a run of equal times (or after any row, when its bodies are
    large): the next one must start with the row after it, never skip or repeat one."""
    monkeypatch.setattr("mh_webhook_cli.receive.store.PAGE_BYTES", page_bytes)
    times = [100.0] * 9 + [50.0] * 5 + [200.0] * 9
    kinds = ["image.completed" if n % 3 == 0 else "video.completed" for n in range(len(times))]
    fill_directly(
        path,
        [
            (t, kind, "ok" if n % 2 else "bad")
            for n, (t, kind) in enumerate(zip(times, kinds, strict=True))
        ],
    )
    newest_first = sorted(range(1, len(times) + 1), key=lambda i: (times[i - 1], i), reverse=True)
    with Store(path) as store:
        for page_size in (1, 2, 4, 100):
            listed = [r.id for r in store.rows(page_size=page_size)]
            assert listed == newest_first
            assert [r.id for r in store.rows(page_size=page_size, oldest_first=True)] == (
                newest_first[::-1]
            )
            assert [r.id for r in store.rows(page_size=page_size, limit=7)] == newest_first[:7]
            assert [r.id for r in store.rows(page_size=page_size, invalid_only=True)] == [
                i for i in newest_first if (i - 1) % 2 == 0
            ]
            assert [r.id for r in store.rows(page_size=page_size, event_glob="image.*")] == [
                i for i in newest_first if (i - 1) % 3 == 0
            ]
            # Two types merged, with times shared across them.
            assert [r.id for r in store.rows(page_size=page_size, event_glob="*e*")] == (
                newest_first
            )
            merged = store.rows(page_size=page_size, event_glob="*", limit=5, oldest_first=True)
            assert [r.id for r in merged] == newest_first[::-1][:5]


@contextlib.contextmanager
def sqlite_steps(store: Store, every: int = 1000) -> Iterator[Callable[[], int]]:
    """How many times ``every`` SQLite VM instructions the store's connection ran inside
    the block: what a query costs, measured without a clock."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    store._connection.set_progress_handler(count, every)
    try:
        yield lambda: steps
    finally:
        store._connection.set_progress_handler(None, 0)


def steps_to_list(store: Store, **filters: Any) -> int:
    """Thousands of SQLite VM instructions to read the first 20 rows a filter selects."""
    wanted = filters.pop("limit", 20)
    with sqlite_steps(store) as steps:
        assert len(list(store.rows(limit=wanted, **filters))) == wanted
    return steps()


def test_a_filtered_listing_reads_as_much_whatever_the_store_holds(tmp_path: Path) -> None:
    """--invalid scanned every row (817 ms at a million): each filter walks an index now.

    The rows it selects are the oldest ones, so a scan newest first would read them all.
    """
    costs: dict[str, list[int]] = {}
    for size in (2_000, 60_000):
        path = tmp_path / f"{size}.sqlite3"
        rare = [(float(n), "image.completed", "bad") for n in range(100)]
        common = [(100.0 + n, "video.completed", "ok") for n in range(size - 100)]
        # As jobs do, each project has a few requests (started, completed, a retry).
        fill_directly(path, rare + common, lambda n: f"p{n // 3}")
        with Store(path) as store:
            listings: dict[str, dict[str, Any]] = {
                "none": {},
                "invalid": {"invalid_only": True},
                "type": {"event_glob": "image.completed"},
                "type pattern": {"event_glob": "ima*"},
                "type and since": {"event_glob": "image.completed", "since": 50.0},
                "since": {"since": size - 200.0},
                "an old project": {"project": "p7", "limit": 3},
                "a new project": {"project": f"p{(size - 1) // 3 - 1}", "limit": 3},
            }
            for name, filters in listings.items():
                costs.setdefault(name, []).append(steps_to_list(store, **filters))
    for name, (small, large) in costs.items():
        assert large <= 2 * small + 5, f"{name}: {small} -> {large} thousand steps"


def test_listing_one_project_costs_its_rows_once_however_many_pages(tmp_path: Path) -> None:
    """Paged like the other filters, each page sorted all of the project's rows again: a
    sender flooding one project id made --project --all quadratic."""
    costs = []
    for size in (1_000, 4_000):
        path = tmp_path / f"{size}.sqlite3"
        fill_directly(path, [(float(n), "video.completed", "ok") for n in range(size)])
        with Store(path) as store, sqlite_steps(store, every=100) as steps:
            listed = [row.id for row in store.rows(project="p", page_size=50)]
            assert listed == list(range(size, 0, -1))
            costs.append(steps())
    small, large = costs
    assert large <= 6 * small, f"4x the rows cost {large / small:.1f}x the steps"


def wal_frames(path: Path) -> tuple[int, int]:
    """The WAL's frames, and how many of them are copied into the database (from the
    wal-index header in the -shm file: mxFrame at byte 16, nBackfill at byte 96)."""
    header = Path(f"{path}-shm").read_bytes()[:100]
    return int.from_bytes(header[16:20], sys.byteorder), int.from_bytes(
        header[96:100], sys.byteorder
    )


def test_a_listener_checkpoints_beside_its_commits_not_in_them(path: Path) -> None:
    """The commit that took the WAL past 1,000 pages also copied it into the database and
    synced the disk: 200-400 ms at a million rows, which every answer of its group waited."""
    from mh_webhook_cli.receive.store import INLINE_CHECKPOINT_BYTES, SQLITE_PAGE_BYTES

    checked: list[tuple[int, int]] = []

    async def main() -> None:
        async with committer_on(path) as committer:
            for group in range(20):
                await asyncio.gather(
                    *(committer.submit(request(body=b"%d-%d" % (group, n))) for n in range(30))
                )
            frames = wait_for(
                lambda: (framed := wal_frames(path))[0] > 0 and framed[0] == framed[1] and framed,
                what="the WAL copied into the database",
            )
            checked.append(frames)
            autocheckpoint = committer.store._connection.execute("PRAGMA wal_autocheckpoint")
            assert autocheckpoint.fetchone()[0] == INLINE_CHECKPOINT_BYTES // SQLITE_PAGE_BYTES

    asyncio.run(main())
    # Far below SQLite's own 1,000 pages, so no commit checkpointed: the checkpointer did.
    assert 0 < checked[0][0] < 1000


@pytest.mark.parametrize("merged_at_most", [32, 1])
def test_a_pattern_lists_the_same_whether_merged_by_type_or_walked_in_time(
    path: Path, monkeypatch: pytest.MonkeyPatch, merged_at_most: int
) -> None:
    """Past MERGE_TYPES matching types (a flood of junk types), a pattern walks time order."""
    monkeypatch.setattr("mh_webhook_cli.receive.store.MERGE_TYPES", merged_at_most)
    kinds = ["a*b", "a[b", "video.completed", "image.completed", "a?c"]  # types are text too
    fill_directly(path, [(float(n % 4), kinds[n % 5], "ok") for n in range(40)])
    newest_first = sorted(range(1, 41), key=lambda i: ((i - 1) % 4, i), reverse=True)
    with Store(path) as store:
        for pattern, wanted in {
            "a*": {"a*b", "a[b", "a?c"},
            "a[*]b": {"a*b"},
            "[!a]*": {"video.completed", "image.completed"},
            "*": set(kinds),
        }.items():
            assert [r.id for r in store.rows(event_glob=pattern, page_size=3)] == [
                i for i in newest_first if kinds[(i - 1) % 5] in wanted
            ], pattern
