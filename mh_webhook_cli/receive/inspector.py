"""The web inspector's server: the page, the capture store's history, a live feed, the actions.

It is a second server on its own port, bound to 127.0.0.1 only, never the webhook port a
tunnel exposes. A page on any other site can still make the browser send requests to
127.0.0.1, so:

- a ``Host`` other than ``127.0.0.1:PORT`` or ``localhost:PORT`` gets 403: a rebound DNS name
  (``evil.example`` resolving to 127.0.0.1) reaches the socket but never the data;
- every ``/api/`` request carries the per-run token (a header, or ``?token=`` for the event
  stream, which cannot send headers). The token is only in the URL mhw prints, after ``#``
  (a fragment never reaches a server, a log or a Referer), never in the page: any local
  user can connect to 127.0.0.1 and fetch the page, and must learn nothing from it. A request
  marked cross-site (``Sec-Fetch-Site``) or from another ``Origin`` is refused, token or not;
- the page is served with a content security policy that allows only its own script, and
  shows every sender-controlled string as text, never as markup.

The live feed is server-sent events. The listener calls :meth:`Inspector.publish` once per
request: an append, O(1), from any thread, and nothing at all while no page is open. Once a
loop turn, the records published are encoded once, as one chunk that is written to every
page: no work per page but a write. A page that does not read (a stopped tab, a dead
machine) is never waited for: its socket's buffer is its bounded queue, and when that holds
more than :data:`CLIENT_BUFFER_LIMIT`, what is published is dropped for that page alone, and
it is told how many as soon as it has caught up (the page then reloads the list from the
store).
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import os
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fnmatch import fnmatchcase
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, urlsplit

from mh_webhook_cli.core.json_text import dumps
from mh_webhook_cli.core.request import ForwardResult, Received, Request
from mh_webhook_cli.errors import MhwError
from mh_webhook_cli.receive.http import Limits, Response, Server, serve
from mh_webhook_cli.receive.store import Store, StoredRow

if TYPE_CHECKING:
    import httpx

HOST = "127.0.0.1"
LIST_PAGE_ROWS = 100
"""Rows in one page of the list."""
SCAN_ROWS = 5000
"""Rows a filtered page reads at most before answering with what it found so far."""
CLIENT_BUFFER_LIMIT = 1024 * 1024
"""Bytes waiting in one page's socket before live records are dropped for it."""
MAX_PAGES = 8
"""Live feeds open at once; more get 503."""
HEARTBEAT_SECONDS = 15.0
"""A comment sent to every feed this often, so that a page that went away is noticed."""
REPLAY_DEADLINE_SECONDS = 10.0
"""A replay's whole exchange, as Magic Hour allows a delivery."""
TOKEN_HEADER = "x-mhw-token"  # noqa: S105 (a header name)
_LIMITS = Limits(max_body=64 * 1024, max_connections=64)
_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/app.css": ("app.css", "text/css; charset=utf-8"),
}
_SECURITY_HEADERS = (
    ("cache-control", "no-store"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
)
_PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_REQUEST_ID = "[0-9]{1,18}"
"""A request id in a path or ``?before=``: ASCII digits only (``str.isdigit`` takes a
superscript two, which ``int`` refuses: a 500), and below SQLite's 2**63 (an overflow: a 500)."""
_REQUEST_PATH = re.compile(rf"/api/requests/({_REQUEST_ID})(/raw|/replay)?")


class Views(Protocol):
    """How requests look on the page: the presentation layer's part, handed in by the CLI."""

    def row(self, row: StoredRow) -> dict[str, Any]:
        """One line of the list."""

    def live_row(self, record: dict[str, Any]) -> dict[str, Any]:
        """One line of the list from a published record (``mhw listen --format json``'s)."""

    def detail(self, row: StoredRow) -> dict[str, Any]:
        """Everything the detail pane shows."""

    def raw(self, request: Received) -> bytes:
        """The capture as raw HTTP, for download."""


@dataclass(frozen=True)
class Filters:
    """What the list shows: a type glob, a verdict, and text in the row's own fields."""

    event_glob: str | None = None
    verdict: str | None = None
    """``ok``, ``invalid`` (anything but a clean signature and schema), or a verification."""
    text: str | None = None

    def needs_scan(self) -> bool:
        """Whether rows must be read and tested here, beyond what the store's query selects."""
        return bool(self.text) or self.verdict not in (None, "invalid")

    def matches(self, row: StoredRow) -> bool:
        if self.verdict == "invalid" and row.valid:
            return False
        if self.verdict not in (None, "invalid") and row.verification != self.verdict:
            return False
        if self.event_glob and not fnmatchcase(row.event_type or "", self.event_glob):
            return False
        if self.text:
            fields = (row.event_type, row.project_id, row.path, row.client)
            wanted = self.text.lower()
            return any(wanted in (value or "").lower() for value in fields) or wanted == str(row.id)
        return True


class Inspector:
    """One run's inspector: start it, hand its :attr:`url` to the user, :meth:`publish`."""

    def __init__(
        self,
        views: Views,
        store_path: Path | None,
        *,
        port: int,
        forward_url: str | None = None,
        resign_secret: str | None = None,
    ) -> None:
        """``port`` 0 picks a free one; ``forward_url``: where Replay sends a request that was
        never forwarded; ``resign_secret``: what a re-signed replay is signed with (None: not
        offered)."""
        self.token = secrets.token_urlsafe(24)
        self._port = port
        self._views = views
        self._store_path = store_path
        self._forward_url = forward_url
        self._resign_secret = resign_secret
        self._store: Store | None = None
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mhw-inspector")
        """The store's one thread: reads never run on the loop, which may be the listener's."""
        self._server: Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._hosts: frozenset[str] = frozenset()
        self._origins: frozenset[str] = frozenset()
        self._feeds: set[_Feed] = set()
        self._pending: deque[dict[str, Any]] = deque()
        self._flush_scheduled = False
        self._heartbeat: asyncio.TimerHandle | None = None
        self._client: httpx.AsyncClient | None = None
        self.url = ""

    async def start(self) -> str:
        """Serve on 127.0.0.1 at the port given; the page's URL, with the token in its fragment."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        try:
            self._server = await serve(self._handle, HOST, self._port, limits=_LIMITS)
        except OSError as failure:
            reason = os.strerror(failure.errno) if failure.errno else str(failure)
            hint = " (use --ui-port 0 for a free port)" if failure.errno == errno.EADDRINUSE else ""
            raise MhwError(
                f"cannot serve the inspector on {HOST}:{self._port}: {reason}{hint}"
            ) from None
        chosen = self._server.sockets[0].getsockname()[1]
        self._hosts = frozenset({f"{HOST}:{chosen}", f"localhost:{chosen}"})
        self._origins = frozenset(f"http://{host}" for host in self._hosts)
        self._heartbeat = self._loop.call_later(HEARTBEAT_SECONDS, self._beat)
        self.url = f"http://{HOST}:{chosen}/#token={self.token}"
        return self.url

    @property
    def watched(self) -> bool:
        """Whether a page is open: a reporter that must build the record only for
        :meth:`publish` can skip that while nobody watches."""
        return bool(self._feeds)

    def publish(self, record: dict[str, Any]) -> None:
        """A request the listener received (its ``--format json`` record); from any thread.

        O(1), and nothing while no page is open: the listener's hot path pays for an
        open page only in :meth:`_flush`, once per loop turn.
        """
        if not self._feeds:
            return
        self._pending.append(record)
        if not self._flush_scheduled and self._loop is not None:
            self._flush_scheduled = True
            if threading.get_ident() == self._loop_thread:
                self._loop.call_soon(self._flush)
            else:
                self._loop.call_soon_threadsafe(self._flush)

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        for feed in list(self._feeds):
            feed.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed(1.0)
        if self._client is not None:
            await self._client.aclose()
        if self._store is not None:
            await self._read(self._store.close)
        self._reader.shutdown(wait=False)

    # the live feed

    def _flush(self) -> None:
        """Send what was published since the last flush to every page: encoded once."""
        self._flush_scheduled = False  # first: a publish from now on schedules another
        pending = self._pending
        if not pending:
            return
        live_row = self._views.live_row
        parts = []
        while pending:
            parts.append(f"data: {dumps(live_row(pending.popleft()))}\n\n")
        chunk = "".join(parts).encode()
        count = len(parts)
        for feed in list(self._feeds):
            feed.send(chunk, count)

    def _beat(self) -> None:
        for feed in list(self._feeds):
            feed.send(b": heartbeat\n\n", 0)
        assert self._loop is not None
        self._heartbeat = self._loop.call_later(HEARTBEAT_SECONDS, self._beat)

    def _open_feed(self, transport: asyncio.Transport) -> _Feed:
        feed = _Feed(transport, self._feeds.discard)
        self._feeds.add(feed)
        transport.write(b"retry: 2000\n: connected\n\n")
        return feed

    # requests

    def _handle(self, request: Request) -> Response | Awaitable[Response]:
        if request.header("host") not in self._hosts:
            return _plain(403, "foreign Host header: open the inspector by the URL mhw printed")
        target = urlsplit(request.target)
        path = target.path
        if not path.startswith("/api/"):
            if request.method != "GET" or path not in _STATIC:
                return _plain(404, "not found")
            return self._static(path)
        refusal = self._refusal(request, target.query)
        if refusal is not None:
            return refusal
        if path == "/api/stream" and request.method == "GET":
            if len(self._feeds) >= MAX_PAGES:
                return _plain(503, f"{MAX_PAGES} live feeds already open")
            return Response(
                200,
                headers=(("content-type", "text/event-stream"), *_SECURITY_HEADERS),
                stream=self._open_feed,
            )
        if path == "/api/info" and request.method == "GET":
            return _json(
                {"forward_url": self._forward_url, "can_resign": self._resign_secret is not None}
            )
        if path == "/api/requests" and request.method == "GET":
            return self._list(parse_qs(target.query))
        found = _REQUEST_PATH.fullmatch(path)
        if found is None:
            return _plain(404, "not found")
        request_id, action = int(found.group(1)), found.group(2)
        if action is None and request.method == "GET":
            return self._detail(request_id)
        if action == "/raw" and request.method == "GET":
            return self._with_request(request_id, self._download)
        if action == "/replay" and request.method == "POST":
            return self._replay(request_id, request.body)
        return _plain(405, "method not allowed")

    def _refusal(self, request: Request, query: str) -> Response | None:
        """403 for a request another site made the browser send, or one without the token."""
        fetch_site = request.header("sec-fetch-site")
        if fetch_site is not None and fetch_site not in ("same-origin", "none"):
            return _plain(403, f"cross-site request refused (Sec-Fetch-Site: {fetch_site})")
        origin = request.header("origin")
        if origin is not None and origin not in self._origins:
            return _plain(403, "cross-origin request refused")
        token = request.header(TOKEN_HEADER) or parse_qs(query).get("token", [""])[0]
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            return _plain(
                403, "missing or wrong inspector token: open the URL mhw printed, #token included"
            )
        return None

    def _static(self, path: str) -> Response:
        name, kind = _STATIC[path]
        headers = (("content-type", kind), ("content-security-policy", _PAGE_POLICY))
        return Response(200, _static(name), (*headers, *_SECURITY_HEADERS))

    async def _list(self, query: dict[str, list[str]]) -> Response:
        def first(name: str) -> str | None:
            return (query.get(name) or [""])[0] or None

        before = first("before")
        if before is not None and not re.fullmatch(_REQUEST_ID, before):
            return _plain(400, "before must be a request id")
        filters = Filters(first("type"), first("verdict"), first("q"))
        cursor = None if before is None else int(before)
        response: Response = await self._read(self._page_response, filters, cursor)
        return response

    def _page_response(self, filters: Filters, before: int | None) -> Response:
        rows, after = self._page_of(filters, before)
        return _json({"rows": [self._views.row(row) for row in rows], "next": after})

    def _page_of(self, filters: Filters, before: int | None) -> tuple[list[StoredRow], int | None]:
        """One page, newest first, and the id to continue after (None at the end).

        A filter the store cannot apply reads up to :data:`SCAN_ROWS` rows and answers with
        what matched so far: a rare match deep in 100,000 rows costs several pages, never
        one long stall.
        """
        store = self._opened()
        if store is None:
            return [], None
        glob = filters.event_glob
        invalid_only = filters.verdict == "invalid"
        if not filters.needs_scan():
            rows = list(
                store.rows(
                    event_glob=glob,
                    invalid_only=invalid_only,
                    limit=LIST_PAGE_ROWS,
                    following=before,
                )
            )
            return rows, rows[-1].id if len(rows) == LIST_PAGE_ROWS else None
        found: list[StoredRow] = []
        scanned = 0
        while scanned < SCAN_ROWS:
            batch = list(
                store.rows(event_glob=glob, invalid_only=invalid_only, limit=500, following=before)
            )
            scanned += len(batch)
            for row in batch:
                before = row.id
                if filters.matches(row):
                    found.append(row)
                    if len(found) == LIST_PAGE_ROWS:
                        return found, before
            if len(batch) < 500:
                return found, None
        return found, before

    async def _detail(self, request_id: int) -> Response:
        response: Response = await self._read(self._detail_response, request_id)
        return response

    def _detail_response(self, request_id: int) -> Response:
        # Rendered on the reader's thread too: a 1 MiB body took the loop, which may be the
        # listener's, 25-36 ms to escape and encode, and every answer waited that long.
        stored = self._get_row(request_id)
        if stored is None:
            return _plain(404, f"no request {request_id} in the capture store")
        return _json(self._views.detail(stored))

    async def _with_request(
        self, request_id: int, answer: Callable[[Received], Response]
    ) -> Response:
        stored = await self._read(self._get, request_id)
        if stored is None:
            return _plain(404, f"no request {request_id} in the capture store")
        return answer(stored)

    def _download(self, stored: Received) -> Response:
        disposition = f'attachment; filename="mhw-request-{stored.id}.http"'
        headers = (
            ("content-type", "application/octet-stream"),
            ("content-disposition", disposition),
            *_SECURITY_HEADERS,
        )
        return Response(200, self._views.raw(stored), headers)

    async def _replay(self, request_id: int, body: bytes) -> Response:
        import json

        try:
            asked = json.loads(body or b"{}")
        except ValueError:
            return _plain(400, "the replay request is not JSON")
        if not isinstance(asked, dict):
            return _plain(400, "the replay request is not a JSON object")
        resign = asked.get("resign") is True
        if resign and self._resign_secret is None:
            return _plain(400, "re-signing needs a webhook secret (--secret or config)")
        stored = await self._read(self._get, request_id)
        if stored is None:
            return _plain(404, f"no request {request_id} in the capture store")
        url = asked.get("to") or _first_target(stored) or self._forward_url
        if not isinstance(url, str) or not url:
            return _plain(400, "no forward target: type the URL to replay to")
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            return _plain(400, f"not an http(s) URL: {url[:200]!r}")
        return _json(await self._send_again(stored, url, self._resign_secret if resign else None))

    async def _send_again(
        self, stored: Received, url: str, resign_with: str | None
    ) -> ForwardResult:
        """Replay ``stored`` to ``url``; what came back, as a forward's result is shown."""
        import httpx

        from mh_webhook_cli.errors import DeadlineExceeded
        from mh_webhook_cli.send.client import small_read_client
        from mh_webhook_cli.send.forward import answer_result, failure_result
        from mh_webhook_cli.send.replay import replay, replay_headers

        if self._client is None:
            self._client = small_read_client()
        headers = replay_headers(stored.headers, stored.body, resign_with, time.time())
        try:
            answer = await replay(
                self._client,
                url,
                stored.method,
                headers,
                stored.body,
                deadline=REPLAY_DEADLINE_SECONDS,
            )
        except (DeadlineExceeded, httpx.HTTPError) as failure:
            return failure_result(url, failure)
        return answer_result(url, answer)

    # the store, and what is rendered from it, on its own thread

    async def _read(self, work: Callable[..., Any], *arguments: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._reader, work, *arguments)

    def _opened(self) -> Store | None:
        """The store, opened on first need; None while nothing was ever captured (reading
        must not create one)."""
        if self._store is None and self._store_path is not None and self._store_path.exists():
            self._store = Store(self._store_path)
        return self._store

    def _get(self, request_id: int) -> Received | None:
        store = self._opened()
        return None if store is None else store.get(request_id)

    def _get_row(self, request_id: int) -> StoredRow | None:
        store = self._opened()
        return None if store is None else store.row(request_id)


class _Feed(asyncio.Protocol):
    """One page's live feed, after the response head: what the browser sends is ignored.

    The transport's buffer is the page's bounded queue: past :data:`CLIENT_BUFFER_LIMIT`
    the transport says so (``pause_writing``) and records are dropped for this page; once
    it has read most of its backlog (``resume_writing``), it is told how many.
    """

    def __init__(self, transport: asyncio.Transport, gone: Callable[[_Feed], None]) -> None:
        self._transport = transport
        self._gone = gone
        self._dropped = 0
        self._paused = False
        transport.set_write_buffer_limits(high=CLIENT_BUFFER_LIMIT)

    def send(self, chunk: bytes, count: int) -> None:
        if self._paused:
            self._dropped += count
        elif not self._transport.is_closing():
            self._transport.write(chunk)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._dropped and not self._transport.is_closing():
            self._transport.write(f"event: dropped\ndata: {self._dropped}\n\n".encode())
            self._dropped = 0

    def close(self) -> None:
        self._transport.close()

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        return False  # the page closed its side: close ours

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone(self)


def _first_target(stored: Received) -> str | None:
    return next((forward["target"] for forward in stored.forwards), None)


def _static(name: str) -> bytes:
    return resources.files("mh_webhook_cli.web").joinpath(name).read_bytes()


def _plain(status: int, message: str) -> Response:
    return Response(status, (message + "\n").encode(), _SECURITY_HEADERS)


def _json(data: Any) -> Response:
    headers: Sequence[tuple[str, str]] = (("content-type", "application/json"), *_SECURITY_HEADERS)
    return Response(200, dumps(data).encode(), tuple(headers))
