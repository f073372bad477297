"""``mhw emulate`` under load: a burst of jobs, bounded concurrency, handlers that never finish.

The emulator runs through the CLI, in its own process as a user runs it. The webhook handlers
are small asyncio servers written here (independent of mhw's server) on a loop in a thread,
and the jobs are created from that same loop, over real loopback sockets.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from test_emulate import IMAGE, Emulating, emulate  # noqa: F401 (emulate: a fixture)

from conftest import SECRET, Mhw, wait_for
from mh_webhook_cli.magichour.emulator import (
    BACKLOG_PER_SENDER,
    DEFAULT_DELIVERY_CONCURRENCY,
    HOLD_SECONDS,
    MAX_ANSWER_BYTES,
)

T = TypeVar("T")
Handle = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Handler:
    """A webhook handler on a loop in a thread; ``behaviour(handler)`` serves each connection."""

    def __init__(self, behaviour: Callable[[Handler], Handle]) -> None:
        handle = behaviour(self)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.arrivals: dict[str, float] = {}
        """Project id -> when its first event arrived (time.monotonic)."""
        self.requests = 0
        self.in_flight = 0
        self.most_in_flight = 0

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await handle(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass  # the emulator closed the connection: often the point of the test
            finally:
                writer.close()

        async def start() -> asyncio.Server:
            return await asyncio.start_server(serve, "127.0.0.1", 0, backlog=1024)

        self.server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(timeout=10)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/webhook"

    async def read_event(self, reader: asyncio.StreamReader) -> dict[str, object]:
        """The next request's event, noted as arrived and in flight (``done`` when answered)."""
        head = await reader.readuntil(b"\r\n\r\n")
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        event: dict[str, object] = json.loads(await reader.readexactly(_content_length(head)))
        self.requests += 1  # after the last await: the caller sees its own request's number
        payload = event["payload"]
        assert isinstance(payload, dict)
        self.arrivals.setdefault(payload["id"], time.monotonic())
        return event

    def done(self) -> None:
        self.in_flight -= 1

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run ``coroutine`` on the handler's loop: a client there gets no GIL contention from
        the handler's thread (a second busy thread makes each of them wait its turn, ~5 ms)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            connections = asyncio.all_tasks() - {asyncio.current_task()}
            for connection in connections:
                connection.cancel()
            await asyncio.gather(*connections, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


StartHandler = Callable[[Callable[[Handler], Handle]], Handler]


@pytest.fixture
def handler() -> Iterator[StartHandler]:
    started: list[Handler] = []

    def start(behaviour: Callable[[Handler], Handle]) -> Handler:
        started.append(Handler(behaviour))
        return started[-1]

    yield start
    for each in started:
        each.close()


def answering_at_once(hooks: Handler) -> Handle:
    """200 to every request on a keep-alive connection, after one turn of the loop."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await hooks.read_event(reader)
            await asyncio.sleep(0)  # lets concurrent requests overlap, so they can be counted
            writer.write(OK)
            hooks.done()

    return handle


async def create_images(
    base_url: str, count: int, clients: int = 32, *, seconds: float | None = None
) -> dict[str, float]:
    """Create ``count`` image jobs from ``clients`` connections (or as many as they get answered
    in ``seconds``); id -> when it was asked for.

    Plain HTTP/1.1 on asyncio streams: an httpx client costs ~10x the CPU a request, and the
    test would measure it rather than the emulator.
    """
    created: dict[str, float] = {}
    remaining = count
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    body = json.dumps(IMAGE).encode()
    request = (
        f"POST /v1/ai-image-generator HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer any\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode() + body

    end = None if seconds is None else time.monotonic() + seconds

    async def creating() -> None:
        nonlocal remaining
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while remaining > 0 and (end is None or time.monotonic() < end):
                remaining -= 1
                asked = time.monotonic()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                answer = await reader.readexactly(_content_length(head))
                assert head.startswith(b"HTTP/1.1 200 "), head + answer
                created[json.loads(answer)["id"]] = asked
        finally:
            writer.close()

    await asyncio.gather(*(creating() for _ in range(min(clients, count))))
    return created


def _content_length(head: bytes) -> int:
    return next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )


def test_a_burst_of_2000_jobs_is_all_delivered_and_the_next_job_is_prompt(
    emulate: Callable[..., Emulating],  # noqa: F811 (the fixture imported above)
    handler: StartHandler,
) -> None:
    hooks = handler(answering_at_once)
    # Every job completes at once and sends one image.completed: 2,000 deliveries at once.
    emulating = emulate(
        *("--webhook-url", hooks.url, "--secret", SECRET, "--format", "json"),
        *("--queue-seconds", "0", "--render-seconds", "0"),
    )
    created = hooks.run(create_images(emulating.url, 2000), timeout=25)

    wait_for(lambda: len(hooks.arrivals) == 2000, timeout=25, what="all 2,000 webhooks")
    assert hooks.arrivals.keys() == created.keys()
    # The handler is never sent more at once than the emulator's senders for it.
    assert 1 < hooks.most_in_flight <= DEFAULT_DELIVERY_CONCURRENCY

    # Drained: a job created now is not stuck behind anything.
    [(late, asked)] = hooks.run(create_images(emulating.url, 1, clients=1)).items()
    arrived = wait_for(lambda: hooks.arrivals.get(late), timeout=10, what="the later webhook")
    assert arrived - asked <= 1.0

    assert emulating.stop() == 0
    summary = emulating.json_lines("summary")[0]
    assert (summary["attempts"], summary["delivered"], summary["retries"]) == (2001, 2001, 0)


def test_under_saturation_deliveries_keep_pace_with_jobs_and_none_times_out(
    emulate: Callable[..., Emulating],  # noqa: F811 (the fixture imported above)
    handler: StartHandler,
) -> None:
    hooks = handler(answering_at_once)
    # A short timeout: an attempt that waited for the emulator's own loop would pass it.
    emulating = emulate(
        *("--webhook-url", hooks.url, "--secret", SECRET, "--format", "json"),
        *("--queue-seconds", "0", "--render-seconds", "0", "--delivery-timeout", "2"),
    )
    # Jobs as fast as 32 clients get them answered: each completes at once with one event.
    created = hooks.run(create_images(emulating.url, 10**9, seconds=3))
    window_end = time.monotonic()
    arrived_in_window = sum(1 for at in list(hooks.arrivals.values()) if at <= window_end)

    # Behind by no more than the backlog the senders work from (it was thousands, and growing).
    backlog = BACKLOG_PER_SENDER * DEFAULT_DELIVERY_CONCURRENCY + DEFAULT_DELIVERY_CONCURRENCY
    assert len(created) - arrived_in_window <= backlog + 32, (len(created), arrived_in_window)
    wait_for(lambda: len(hooks.arrivals) >= len(created), timeout=5, what="the backlog drained")
    assert hooks.arrivals.keys() == created.keys()

    assert emulating.stop() == 0
    summary = emulating.json_lines("summary")[0]
    assert summary["delivered"] == summary["attempts"] == len(created)
    assert summary["retries"] == 0


def test_a_handler_that_hangs_slows_job_creation_without_stopping_it(
    emulate: Callable[..., Emulating],  # noqa: F811 (the fixture imported above)
    handler: StartHandler,
) -> None:
    def never_answering(hooks: Handler) -> Handle:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await hooks.read_event(reader)
            await asyncio.sleep(3600)

        return handle

    hooks = handler(never_answering)
    emulating = emulate(
        *("--webhook-url", hooks.url, "--secret", SECRET, "--delivery-concurrency", "1"),
        *("--queue-seconds", "0", "--render-seconds", "0"),
    )
    # One event in flight (hanging) and the backlog full: created at once, one at a time.
    first = hooks.run(create_images(emulating.url, 1 + BACKLOG_PER_SENDER, clients=1))
    wait_for(lambda: hooks.requests == 1, what="the first event at the handler")
    assert len(first) == 1 + BACKLOG_PER_SENDER
    # The next waits for room, which never comes: held for HOLD_SECONDS, then created anyway.
    asked = time.monotonic()
    later = hooks.run(create_images(emulating.url, 2, clients=1))
    took = time.monotonic() - asked
    assert len(later) == 2
    assert 2 * HOLD_SECONDS * 0.9 <= took < 2 * HOLD_SECONDS + 3


def test_without_webhooks_no_job_creation_is_held(
    emulate: Callable[..., Emulating],  # noqa: F811 (the fixture imported above)
    handler: StartHandler,
) -> None:
    hooks = handler(answering_at_once)  # only for its loop, to create jobs from
    emulating = emulate("--format", "json", "--queue-seconds", "0", "--render-seconds", "0")
    created = hooks.run(create_images(emulating.url, 200))
    assert len(created) == 200
    calls = wait_for(
        lambda: len(lines := emulating.json_lines("api")) == 200 and lines, what="200 api lines"
    )
    # Each answered as it came: none waited for room in a backlog that cannot exist.
    assert max(call["latency_ms"] for call in calls) < HOLD_SECONDS * 1000 / 2


def test_a_stop_with_deliveries_under_way_ends_at_once_and_counts_them_unfinished(
    emulate: Callable[..., Emulating],  # noqa: F811 (the fixture imported above)
    handler: StartHandler,
) -> None:
    hooks = handler(answering_at_once)
    emulating = emulate(
        *("--webhook-url", hooks.url, "--secret", SECRET, "--format", "json"),
        *("--queue-seconds", "0", "--render-seconds", "0", "--delivery-concurrency", "64"),
    )
    created = hooks.run(create_images(emulating.url, 1000))
    # Stopped while the senders are mid-exchange: each one's cancellation can come as its
    # answer does, which asyncio.wait_for (before Python 3.12) swallowed: the stop hung.
    wait_for(lambda: len(hooks.arrivals) >= 100, what="deliveries under way")
    emulating.process.send_signal(signal.SIGINT)
    assert emulating.process.wait(timeout=10) == 0
    summary = emulating.json_lines("summary")[0]
    assert summary["jobs"] == len(created)
    assert summary["delivered"] + summary["unfinished"] == len(created)


def test_delivery_concurrency_bounds_the_requests_a_handler_gets_at_once(
    emulate: Callable[..., Emulating],  # noqa: F811 (the fixture imported above)
    handler: StartHandler,
) -> None:
    def answering_slowly(hooks: Handler) -> Handle:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                await hooks.read_event(reader)
                await asyncio.sleep(0.1)
                writer.write(OK)
                hooks.done()

        return handle

    hooks = handler(answering_slowly)
    emulating = emulate(
        *("--webhook-url", hooks.url, "--secret", SECRET, "--delivery-concurrency", "3"),
        *("--queue-seconds", "0", "--render-seconds", "0"),
    )
    created = hooks.run(create_images(emulating.url, 12))
    wait_for(lambda: len(hooks.arrivals) == 12, what="12 webhooks")
    assert hooks.arrivals.keys() == created.keys()
    assert hooks.most_in_flight == 3


def test_answers_without_end_are_cut_off_by_size_or_deadline_and_retried(
    emulate: Callable[..., Emulating],  # noqa: F811 (the fixture imported above)
    handler: StartHandler,
) -> None:
    flooded: list[int] = [0]
    """Bytes of the flood the handler got into the connection before the emulator closed it."""
    endless_head = b"HTTP/1.1 200 OK\r\ncontent-length: 1000000000000\r\n\r\n"

    async def flood(writer: asyncio.StreamWriter) -> None:
        # As fast as the connection takes it; capped at 64 MiB, so that an emulator keeping it
        # all (as one once did) fails this test rather than take the machine down.
        writer.write(endless_head)
        chunk = bytes(256 * 1024)
        while flooded[0] < 64 * 1024 * 1024:
            writer.write(chunk)
            await writer.drain()
            flooded[0] += len(chunk)
        await asyncio.sleep(3600)

    async def trickle(writer: asyncio.StreamWriter) -> None:
        writer.write(endless_head)
        while True:  # a byte now and then: no read ever times out, only the whole answer can
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.05)

    def flood_then_trickle_then_ok(hooks: Handler) -> Handle:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                await hooks.read_event(reader)
                try:
                    if hooks.requests == 1:
                        await flood(writer)
                    elif hooks.requests == 2:
                        await trickle(writer)
                    writer.write(OK)
                finally:
                    hooks.done()

        return handle

    hooks = handler(flood_then_trickle_then_ok)
    emulating = emulate(
        *("--webhook-url", hooks.url, "--secret", SECRET, "--format", "json"),
        *("--queue-seconds", "0", "--render-seconds", "0", "--speed", "100"),
        *("--delivery-timeout", "2"),
    )
    created = hooks.run(create_images(emulating.url, 2, clients=2))

    def settled() -> list[dict[str, Any]]:
        lines = emulating.json_lines("delivery")
        return lines if sum(line["ok"] for line in lines) == 2 else []

    lines = wait_for(settled, what="both events delivered on a retry")
    assert sorted((line["attempt"], line["ok"]) for line in lines) == [
        (1, False),
        (1, False),
        (2, True),
        (2, True),
    ]
    assert {line["project_id"] for line in lines} == created.keys()
    [flood_line] = [line for line in lines if line["error"] and "went on" in line["error"]]
    assert flood_line["error"].startswith(f"the answer went on past {MAX_ANSWER_BYTES:,} bytes")
    assert flood_line["retry_in"] == 0.01
    [trickle_line] = [line for line in lines if line["error"] and "timed out" in line["error"]]
    assert trickle_line["error"].startswith("timed out after 2 s")
    assert trickle_line["latency_ms"] >= 2000 and trickle_line["retry_in"] == 0.01
    # What the emulator read before it closed, and what the kernel's buffers took: not 64 MiB.
    assert flooded[0] < 24 * 1024 * 1024


@pytest.mark.parametrize("value", ["0", "257"])
def test_delivery_concurrency_out_of_range_is_a_usage_error(mhw: Mhw, value: str) -> None:
    result = mhw("emulate", "--delivery-concurrency", value)
    assert result.code == 2
    assert "Invalid value for '--delivery-concurrency'" in result.stderr
    assert "Traceback" not in result.stderr
