"""One run of ``mhw listen``: start the server, announce it, show deliveries, stop cleanly.

Imported only when ``mhw listen`` runs: asyncio alone costs more start-up time
than every other command needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mh_webhook_cli.core.hosts import reachable_host
from mh_webhook_cli.errors import ExitCode, MhwError
from mh_webhook_cli.event_loop import stop_on_signals
from mh_webhook_cli.files import write_private
from mh_webhook_cli.receive.http import Limits
from mh_webhook_cli.receive.listener import VERIFIED, Delivery, ListenConfig, Listener, matches
from mh_webhook_cli.report import listen as render_listen

if TYPE_CHECKING:
    import httpx

    from mh_webhook_cli.receive.http import Server
    from mh_webhook_cli.receive.store import GroupCommitter, Store
    from mh_webhook_cli.tunnel import Tunnel, TunnelRequest

from mh_webhook_cli.report.console import (
    Format,
    Line,
    emit_json_lines,
    info,
    show,
    show_stderr,
    warn,
)

ANSWER_GRACE_SECONDS = 0.5
"""At shutdown, how long the answers under way may take: a commit takes milliseconds. Those
still waiting then (for another process's write lock) are answered 503, and their senders
retry; Ctrl-C must end a session within 2 s."""


@dataclass(frozen=True)
class Endpoint:
    """Where a running listener receives webhooks."""

    url: str
    public_url: str | None
    port: int
    path: str | None = None

    @property
    def webhook_url(self) -> str:
        """The URL to register in the Developer Hub: the public one when there is a tunnel."""
        if self.public_url is None:
            return self.url
        return self.public_url.rstrip("/") + (self.path or "/webhook")


REFUSALS_SHOWN_PER_SECOND = 10


class Presenter:
    """Shows deliveries as they are committed: lines on a terminal or JSON lines on stdout."""

    def __init__(self, output_format: Format, verbose: bool, show_deliveries: bool = True) -> None:
        self.output_format = output_format
        self.verbose = verbose
        self.show_deliveries = show_deliveries
        """False when another command (``mhw trigger``) reports deliveries its own way."""
        self.refused = 0
        self._refusals_since = 0.0
        self._refusals_shown = 0
        self._refusals_hidden = 0
        self._json_lines: list[dict[str, Any]] = []

    def _emit(self, data: dict[str, Any]) -> None:
        """Queue a JSON line; lines of one loop turn are written and flushed together."""
        if not self._json_lines:
            asyncio.get_running_loop().call_soon(self.flush)
        self._json_lines.append(data)

    def flush(self) -> None:
        """Write the queued JSON lines (also at shutdown, when the loop runs no more turns)."""
        lines, self._json_lines = self._json_lines, []
        if lines:
            emit_json_lines(lines)

    def delivered(self, delivery: Delivery) -> None:
        if not delivery.shown or not self.show_deliveries:
            return
        if self.output_format is Format.JSON:
            if not delivery.forwarding:
                self._emit(render_listen.delivery_json(delivery))
            return
        lines = [render_listen.delivery_line(delivery), *render_listen.finding_lines(delivery)]
        if self.verbose:
            lines += render_listen.payload_lines(delivery)
        show(lines)

    def forwarded(self, delivery: Delivery) -> None:
        if self.output_format is Format.JSON:
            self._emit(render_listen.delivery_json(delivery))
        else:
            show(render_listen.forward_lines(delivery, self.verbose))

    def status(self, message: str, **data: Any) -> None:
        """Something about the listener itself: on stderr, and as a JSON status line."""
        if self.output_format is Format.JSON:
            self._emit({"kind": "status", "message": message, **data})
        info(message)

    def refused_request(self, client: str, status: int, reason: str) -> None:
        """A warning per refusal, up to :data:`REFUSALS_SHOWN_PER_SECOND`; past that, a count.

        Refusing costs the sender nothing, so a flood of garbage would otherwise have the
        listener draw a line per request, and bury everything else on the screen.
        """
        self.refused += 1
        now = time.monotonic()
        if now - self._refusals_since >= 1.0:
            if self._refusals_hidden:
                warn(f"refused {self._refusals_hidden} more request(s) in the last second")
            self._refusals_since, self._refusals_shown, self._refusals_hidden = now, 0, 0
        if self._refusals_shown < REFUSALS_SHOWN_PER_SECOND:
            self._refusals_shown += 1
            warn(f"refused a request from {client}: {status} {reason}")
        else:
            self._refusals_hidden += 1


class Session:
    """One run of the listener: start, announce, wait for a stop, clean up, summarise."""

    def __init__(
        self,
        config: ListenConfig,
        host: str,
        port: int,
        store_path: Path | None,
        limits: Limits,
        presenter: Presenter,
        expected: tuple[str, ...],
        count: int,
        tunnel: TunnelRequest | None = None,
        on_delivery: Callable[[Delivery], None] | None = None,
    ) -> None:
        self.config = config
        self.on_delivery = on_delivery
        self.tunnel_request = tunnel
        self.host = host
        self.port = port
        self.store_path = store_path
        self.limits = limits
        self.presenter = presenter
        self.expected = expected
        self.count = count
        self.arrived: Counter[str] = Counter()
        self._satisfied = asyncio.Event()
        self._stop = asyncio.Event()
        self._tunnel: Tunnel | None = None
        self._server: Server | None = None
        self.listener: Listener
        """Set by :meth:`serving`."""

    async def run(self, timeout: float | None, ready_file: Path | None) -> int:
        from mh_webhook_cli.report.writer import session_output

        # Signals first: a script may stop us the moment the ready file appears.
        self.stop_on_signals()
        loop = asyncio.get_running_loop()

        def reader_gone() -> None:  # ``| head -1``: the session ends as on SIGTERM, quietly
            loop.call_soon_threadsafe(self._stop.set)

        with session_output(reader_gone) as output:
            code = await self._serve(timeout, ready_file)
            self._summary(output.close_stdout())
        return ExitCode.BROKEN_PIPE if output.stdout.reader_gone else code

    async def _serve(self, timeout: float | None, ready_file: Path | None) -> int:
        from mh_webhook_cli.receive.registry import register_this_listener, unregister

        async with self.serving() as endpoint:
            self._banner(endpoint.url, endpoint.public_url)
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
                        },
                    )
                code = await self._wait(timeout)
            finally:
                if registration is not None:
                    unregister(registration)
        return code

    def stop_on_signals(self) -> None:
        """Ctrl-C and SIGTERM end the session cleanly (see :meth:`stop`)."""
        stop_on_signals(self._stop.set)

    async def stopped(self) -> None:
        """Until Ctrl-C or SIGTERM."""
        await self._stop.wait()

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[Endpoint]:
        """Store, server and tunnel, open for the duration of the ``async with``; then
        stopped as :meth:`_shut_down` says, however the ``async with`` ends."""
        from mh_webhook_cli.receive.http import serve
        from mh_webhook_cli.receive.listener import Listener, refuse_forwarding_loop
        from mh_webhook_cli.receive.store import GroupCommitter, Store

        store = Store(self.store_path) if self.store_path else None
        committer = GroupCommitter(store) if store else None
        client = None
        if self.config.forwards:
            from mh_webhook_cli.send.client import small_read_client

            client = small_read_client()
        self.listener = Listener(
            self.config,
            committer,
            self._delivered,
            self.presenter.forwarded,
            client,
            warn=warn,
        )
        try:
            try:
                self._server = await serve(
                    self.listener.handle,
                    self.host,
                    self.port,
                    limits=self.limits,
                    on_reject=self.presenter.refused_request,
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
            yield Endpoint(url, public_url, bound_port, self.config.path)
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
        await self._drain()
        stopped = await self.listener.stop_forwarding()
        if stopped:
            warn(f"stopped {stopped} forward(s) still under way: their results are not stored")
        if committer is not None:
            await committer.close()
            refused = self.listener.closing_refusals
            if refused:
                if server is not None:  # their 503s go out, then those connections close
                    await server.wait_closed(ANSWER_GRACE_SECONDS)
                warn(
                    f"answered 503 to {refused} request(s) not stored before the store closed "
                    "(another process held its lock); their senders deliver them again"
                )
        if client is not None:
            await client.aclose()
        if store is not None:
            store.close()
        self.presenter.flush()

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

        self.presenter.status("starting ngrok…", state="starting")
        try:
            self._tunnel = await loop.run_in_executor(None, opened)
        except TunnelError as failure:
            if request.required:
                raise
            warn(f"{failure} (listening locally only)")
            return None
        return self._tunnel.public_url

    def _agent_log(self, level: str, line: str) -> None:
        """ngrok's own log: its warnings and errors always, the rest with -v."""
        if level in ("warn", "eror", "crit") or self.presenter.verbose:
            info([("ngrok: ", "dim"), (line, "dim")])

    def _tunnel_state(self, state: str, detail: str) -> None:
        messages = {
            "reconnecting": f"tunnel dropped ({detail}): ngrok is reconnecting…",
            "connected": "tunnel reconnected: the public URL works again",
            "stopped": f"the ngrok agent stopped ({detail}): listening locally only",
        }
        self.presenter.status(messages.get(state, f"tunnel {state}"), state=state)

    def _delivered(self, delivery: Delivery) -> None:
        try:
            self.presenter.delivered(delivery)
        except Exception as failure:  # showing a request must never stop counting it
            warn(f"could not show request #{delivery.id}: {failure!r}")
        if self.on_delivery is not None:
            self.on_delivery(delivery)
        accepted = delivery.verification == VERIFIED and delivery.answer < 300
        if self.expected and accepted:
            for pattern in self.expected:
                if matches(delivery.event_type, (pattern,)):
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
            info(f"all expected events arrived: {self._arrivals()}")
            return ExitCode.OK
        if self.expected:
            if not done:
                info(f"timed out waiting for {', '.join(self.expected)}: {self._arrivals()}")
            return ExitCode.FAILED
        return ExitCode.OK

    async def _drain(self) -> None:
        """Let forwards under way finish (their results are stored), for at most
        ``--forward-timeout``, unless asked again to stop."""
        listener = self.listener
        if not listener.forwards_under_way:
            return
        info(
            f"waiting up to {self.config.forward_timeout:g} s for "
            f"{listener.forwards_under_way} forward(s); Ctrl-C again to quit now"
        )
        self._stop.clear()
        again = asyncio.ensure_future(self._stop.wait())
        drained = asyncio.ensure_future(listener.drain(self.config.forward_timeout))
        await asyncio.wait({again, drained}, return_when=asyncio.FIRST_COMPLETED)
        again.cancel()
        drained.cancel()

    def _arrivals(self) -> str:
        return ", ".join(f"{p} x{self.arrived[p]} of {self.count}" for p in self.expected)

    def _banner(self, url: str, public_url: str | None) -> None:
        from mh_webhook_cli.core.settings import mask

        any_path = "" if self.config.path else " (any path)"
        lines: list[Line] = [
            [("mhw listening", "bold"), (" on ", ""), (url, "bold cyan"), (any_path, "")]
        ]
        webhook_url = None
        if public_url is not None:
            webhook_url = public_url.rstrip("/") + (self.config.path or "/webhook")
            lines += [
                [("  public   ", ""), (public_url, "bold cyan")],
                [
                    ("  paste    ", ""),
                    (webhook_url, "bold green"),
                    ("  ← Developer Hub URL", "dim"),
                ],
                [
                    (
                        "           in magichour.ai/developer: Create Webhook, this URL, and the "
                        "events you handle (image.started may be skipped for fast jobs)",
                        "dim",
                    )
                ],
            ]
        if self.config.secrets:
            lines.append("  secret   " + ", ".join(mask(s) for s in self.config.secrets))
        lines.append(f"  store    {self.store_path or 'off (--no-store)'}")
        lines += [f"  forward  {r.pattern or '*'} → {r.url}" for r in self.config.forwards]
        if self.expected:
            lines.append(f"  expect   {', '.join(self.expected)} x{self.count}")
        lines.append([("  Ctrl-C to stop", "dim")])
        show_stderr(lines)
        if self.presenter.output_format is Format.JSON:
            self.presenter.status(
                "listening",
                state="listening",
                url=url,
                public_url=public_url,
                webhook_url=webhook_url,
            )
        if not self.config.secrets:
            if public_url is not None:
                warn(
                    "no webhook secret and a public URL: anyone can post to it. Pass --secret "
                    "(from the Developer Hub) and --reject-invalid"
                )
            else:
                warn(
                    "no webhook secret: signatures are not checked "
                    "(pass --secret or run 'mhw config set webhook_secret')"
                )

    def _summary(self, dropped: int) -> None:
        show_stderr(
            render_listen.summary_lines(self.listener.counts, self.presenter.refused, dropped)
        )


def write_ready_file(path: Path, data: dict[str, Any]) -> None:
    """Tell a waiting script that a server accepts connections: ``data`` and our pid, as JSON.

    Private (0600) and atomic (:func:`~mh_webhook_cli.files.write_private`): it names the
    local store and port, and a script polls for it.
    """
    write_private(path, json.dumps({**data, "pid": os.getpid()}) + "\n")
