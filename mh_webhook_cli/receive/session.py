"""One run of ``mhw listen``: start the server, announce it, report requests, stop cleanly.

Everything worth showing goes to the :class:`~mh_webhook_cli.receive.activity.Reporter` the
command hands in, as typed events (:mod:`mh_webhook_cli.receive.activity`): this module
knows nothing of formats or terminals.

Imported only when ``mhw listen`` runs: asyncio alone costs more start-up time
than every other command needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mh_webhook_cli.core.hosts import reachable_host
from mh_webhook_cli.core.request import VERIFIED, Received, matches
from mh_webhook_cli.errors import ExitCode, MhwError
from mh_webhook_cli.event_loop import stop_on_signals
from mh_webhook_cli.files import write_private
from mh_webhook_cli.receive.activity import (
    Activity,
    AgentLog,
    Draining,
    Expectation,
    Forwarded,
    ForwardsStopped,
    Listening,
    Problem,
    Refused,
    Reporter,
    RequestReceived,
    Stopped,
    TunnelChanged,
    UnstoredAtClose,
)
from mh_webhook_cli.receive.http import Limits
from mh_webhook_cli.receive.listener import ListenConfig, Listener
from mh_webhook_cli.receive.registry import Endpoint

if TYPE_CHECKING:
    import httpx

    from mh_webhook_cli.receive.http import Server
    from mh_webhook_cli.receive.inspector import Inspector
    from mh_webhook_cli.receive.store import GroupCommitter, Store
    from mh_webhook_cli.tunnel import Tunnel, TunnelRequest

ANSWER_GRACE_SECONDS = 0.5
"""At shutdown, how long the answers under way may take: a commit takes milliseconds. Those
still waiting then (for another process's write lock) are answered 503, and their senders
retry; Ctrl-C must end a session within 2 s."""


class Session:
    """One run of the listener: start, announce, wait for a stop, clean up, summarise."""

    def __init__(
        self,
        config: ListenConfig,
        host: str,
        port: int,
        store_path: Path | None,
        limits: Limits,
        reporter: Reporter,
        expected: tuple[str, ...],
        count: int,
        tunnel: TunnelRequest | None = None,
        on_received: Callable[[Received], None] | None = None,
        inspector: Inspector | None = None,
    ) -> None:
        self.config = config
        self.inspector = inspector
        """The web inspector (``--ui``): started once the listener is bound, on its own port."""
        self.on_received = on_received
        """Told of every request stored and answered, shown or not (``mhw trigger``'s inbox)."""
        self.tunnel_request = tunnel
        self.host = host
        self.port = port
        self.store_path = store_path
        self.limits = limits
        self.reporter = reporter
        self.expected = expected
        self.count = count
        self.arrived: Counter[str] = Counter()
        self.refused = 0
        """Requests refused at the HTTP level."""
        self._satisfied = asyncio.Event()
        self._stop = asyncio.Event()
        self._interrupted = False
        self._tunnel: Tunnel | None = None
        self._server: Server | None = None
        self.listener: Listener
        """Set by :meth:`serving`."""

    async def run(self, timeout: float | None, ready_file: Path | None) -> int:
        # Signals first: a script may stop us the moment the ready file appears.
        self.stop_on_signals()
        loop = asyncio.get_running_loop()

        def reader_gone() -> None:  # ``| head -1``: the session ends as on SIGTERM, quietly
            loop.call_soon_threadsafe(self._stop.set)

        self.reporter.open(reader_gone)
        try:
            code = await self._serve(timeout, ready_file)
            self.reporter.report(
                Stopped(self.listener.counts, self.refused, interrupted=self._interrupted)
            )
        finally:
            reader_left = self.reporter.close()
        return ExitCode.BROKEN_PIPE if reader_left else code

    async def _serve(self, timeout: float | None, ready_file: Path | None) -> int:
        from mh_webhook_cli.receive.registry import register_this_listener, unregister

        async with self.serving() as endpoint:
            self._announce(endpoint)
            # Before the ready file, which tells scripts that everything is in place.
            registration = register_this_listener(endpoint, self.store_path)
            try:
                if ready_file is not None:
                    write_ready_file(
                        ready_file,
                        {
                            "url": endpoint.url,
                            "public_url": endpoint.public_url,
                            "port": endpoint.port,
                            "store": str(self.store_path) if self.store_path else None,
                            "ui_url": endpoint.ui_url,
                        },
                    )
                code = await self._wait(timeout)
            finally:
                if registration is not None:
                    unregister(registration)
        return code

    def stop_on_signals(self) -> None:
        """Ctrl-C and SIGTERM end the session cleanly (see :meth:`stop`)."""

        def interrupted() -> None:
            self._interrupted = True
            self._stop.set()

        stop_on_signals(interrupted)

    async def stopped(self) -> None:
        """Until Ctrl-C or SIGTERM."""
        await self._stop.wait()

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[Endpoint]:
        """Store, server and tunnel, open for the duration of the ``async with``; then
        stopped as :meth:`_shut_down` says, however the ``async with`` ends."""
        from mh_webhook_cli.receive.http import serve
        from mh_webhook_cli.receive.store import GroupCommitter, Store
        from mh_webhook_cli.send.forward import refuse_forwarding_loop

        store = Store(self.store_path) if self.store_path else None
        committer = GroupCommitter(store) if store else None
        client = None
        if self.config.forwards:
            from mh_webhook_cli.send.client import small_read_client

            client = small_read_client()
        self.listener = Listener(
            self.config,
            committer,
            self._received,
            self._forwarded,
            client,
            warn=self._problem,
        )
        try:
            try:
                self._server = await serve(
                    self.listener.handle,
                    self.host,
                    self.port,
                    limits=self.limits,
                    on_reject=self._refused,
                )
            except OSError as failure:
                reason = os.strerror(failure.errno) if failure.errno else str(failure)
                hint = (
                    " (use --port 0 for a free port)" if failure.errno == errno.EADDRINUSE else ""
                )
                raise MhwError(
                    f"cannot listen on {self.host}:{self.port}: {reason}{hint}"
                ) from None
            bound_port = self._server.sockets[0].getsockname()[1]
            # Again once bound: with --port 0 the port is known only now.
            refuse_forwarding_loop(self.config.forwards, self.host, bound_port)
            url = f"http://{reachable_host(self.host)}:{bound_port}{self.config.path or '/'}"
            public_url = await self._open_tunnel(bound_port)
            ui_url = await self.inspector.start() if self.inspector is not None else None
            yield Endpoint(url, public_url, bound_port, self.config.path, ui_url)
        finally:
            await self._shut_down(committer, client, store)

    async def _shut_down(
        self,
        committer: GroupCommitter | None,
        client: httpx.AsyncClient | None,
        store: Store | None,
    ) -> None:
        """Stop in the order that answers every request read, and waits for no one for long.

        Requests are read no more (keep-alive connections included: closing the listening
        socket alone let them go on arriving) before the forwards they start are drained,
        and forwards are stopped before the client they use is closed. The store closes
        last: committing what is pending gives up at once on a lock another process holds,
        answering those requests 503.
        """
        server = self._server
        if server is not None:
            server.close()
            await server.wait_closed(ANSWER_GRACE_SECONDS)
        if self._tunnel is not None:
            self._tunnel.close()
        if self.inspector is not None:  # its history reads the store: closed before it
            await self.inspector.close()
        await self._drain()
        stopped = await self.listener.stop_forwarding()
        if stopped:
            self._report(ForwardsStopped(stopped))
        if committer is not None:
            await committer.close()
            refused = self.listener.closing_refusals
            if refused:
                if server is not None:  # their 503s go out, then those connections close
                    await server.wait_closed(ANSWER_GRACE_SECONDS)
                self._report(UnstoredAtClose(refused))
        if client is not None:
            await client.aclose()
        if store is not None:
            store.close()

    async def _open_tunnel(self, port: int) -> str | None:
        """The public URL, with the agent started off the loop (it takes a second or two)."""
        request = self.tunnel_request
        if request is None:
            return None
        from mh_webhook_cli.errors import TunnelError
        from mh_webhook_cli.tunnel import open_tunnel

        loop = asyncio.get_running_loop()

        # The agent's callbacks run on pyngrok's threads: hand them to the loop.
        def on_log(level: str, line: str) -> None:
            loop.call_soon_threadsafe(self._agent_log, level, line)

        def on_state(state: str, detail: str) -> None:
            loop.call_soon_threadsafe(self._tunnel_state, state, detail)

        def opened() -> Tunnel:
            return open_tunnel(
                port,
                authtoken=request.authtoken,
                host=self.host,
                domain=request.domain,
                region=request.region,
                ngrok_path=request.ngrok_path,
                on_log=on_log,
                on_state=on_state,
            )

        self._report(TunnelChanged("starting"))
        try:
            self._tunnel = await loop.run_in_executor(None, opened)
        except TunnelError as failure:
            if request.required:
                raise
            self._problem(f"{failure} (listening locally only)")
            return None
        return self._tunnel.public_url

    def _agent_log(self, level: str, line: str) -> None:
        self._report(AgentLog(level, line))

    def _tunnel_state(self, state: str, detail: str) -> None:
        self._report(TunnelChanged(state, detail))

    def _report(self, activity: Activity) -> None:
        """Hand ``activity`` to the reporter: a failure to show something never stops the
        session (it would stop counting and answering too)."""
        try:
            self.reporter.report(activity)
        except Exception as failure:
            if isinstance(activity, RequestReceived):
                what = f"request #{activity.received.id}"
            else:
                what = type(activity).__name__
            with contextlib.suppress(Exception):
                self.reporter.report(Problem(f"could not show {what}: {failure!r}"))

    def _problem(self, message: str) -> None:
        self._report(Problem(message))

    def _refused(self, client: str, status: int, reason: str) -> None:
        self.refused += 1
        self._report(Refused(client, status, reason))

    def _forwarded(self, received: Received) -> None:
        self._report(Forwarded(received))

    def _received(self, event: RequestReceived) -> None:
        received = event.received
        if event.shown:
            self._report(event)
        if self.on_received is not None:
            self.on_received(received)
        accepted = received.verification == VERIFIED and received.answer < 300
        if self.expected and accepted:
            for pattern in self.expected:
                if matches(received.event_type, (pattern,)):
                    self.arrived[pattern] += 1
            if all(self.arrived[pattern] >= self.count for pattern in self.expected):
                self._satisfied.set()

    async def _wait(self, timeout: float | None) -> int:
        """Until Ctrl-C, SIGTERM, the expected events, or the timeout; returns the exit code."""
        waiters = {
            asyncio.ensure_future(self._stop.wait()),
            asyncio.ensure_future(self._satisfied.wait()),
        }
        done, pending = await asyncio.wait(
            waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        if self._satisfied.is_set():
            self._report(self._expectation(met=True))
            return ExitCode.OK
        if self.expected:
            if not done:
                self._report(self._expectation(met=False))
            return ExitCode.FAILED
        return ExitCode.OK

    async def _drain(self) -> None:
        """Let forwards under way finish (their results are stored), for at most
        ``--forward-timeout``, unless asked again to stop."""
        listener = self.listener
        if not listener.forwards_under_way:
            return
        self._report(Draining(listener.forwards_under_way, self.config.forward_timeout))
        self._stop.clear()
        again = asyncio.ensure_future(self._stop.wait())
        drained = asyncio.ensure_future(listener.drain(self.config.forward_timeout))
        await asyncio.wait({again, drained}, return_when=asyncio.FIRST_COMPLETED)
        again.cancel()
        drained.cancel()

    def _expectation(self, *, met: bool) -> Expectation:
        arrived = tuple((pattern, self.arrived[pattern]) for pattern in self.expected)
        return Expectation(met, arrived, self.count)

    def _announce(self, endpoint: Endpoint) -> None:
        from mh_webhook_cli.core.settings import mask

        config = self.config
        self._report(
            Listening(
                url=endpoint.url,
                public_url=endpoint.public_url,
                webhook_url=None if endpoint.public_url is None else endpoint.webhook_url,
                any_path=config.path is None,
                secrets=tuple(mask(secret) for secret in config.secrets),
                store=str(self.store_path) if self.store_path else None,
                forwards=tuple((route.pattern, route.url) for route in config.forwards),
                expected=self.expected,
                count=self.count,
                ui_url=endpoint.ui_url,
                events=config.event_patterns,
            )
        )


def write_ready_file(path: Path, data: dict[str, Any]) -> None:
    """Tell a waiting script that a server accepts connections: ``data`` and our pid, as JSON.

    Private (0600) and atomic (:func:`~mh_webhook_cli.files.write_private`): it names the
    local store and port, and a script polls for it.
    """
    write_private(path, json.dumps({**data, "pid": os.getpid()}) + "\n")
