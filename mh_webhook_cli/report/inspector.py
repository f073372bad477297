"""How the web inspector shows requests: the data its page renders, from the same views as
``mhw events`` (list, detail) and ``mhw verify`` (the verdict and its hints).

Only data leaves here, never markup: the page puts every string in as text.
"""

from __future__ import annotations

import base64
import json
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mh_webhook_cli.core.request import HOP_BY_HOP_HEADERS, Received
from mh_webhook_cli.core.verification import verify
from mh_webhook_cli.receive.activity import Activity, Forwarded, Reporter, RequestReceived
from mh_webhook_cli.receive.store import StoredRow
from mh_webhook_cli.report.events import detail_json, raw_request, summary_json
from mh_webhook_cli.report.verify import verify_json

if TYPE_CHECKING:
    from collections.abc import Callable

    from mh_webhook_cli.receive.inspector import Inspector


class InspectorViews:
    """The inspector's :class:`~mh_webhook_cli.receive.inspector.Views`.

    ``secrets`` and ``tolerance`` judge a signature as ``mhw verify --event`` does (as of when
    the request arrived); ``store`` is the ``--store`` given, if any, for the commands shown.
    """

    def __init__(self, secrets: Sequence[str], tolerance: int, store: Path | None) -> None:
        self._secrets = list(secrets)
        self._tolerance = tolerance
        self._store = store

    def row(self, row: StoredRow) -> dict[str, Any]:
        return {**summary_json(row), "status": project_status(row.body)}

    def live_row(self, record: dict[str, Any]) -> dict[str, Any]:
        """A ``mhw listen --format json`` record in the list's shape (that of :meth:`row`)."""
        return {
            "id": record.get("id"),
            "received_at": record.get("received_at"),
            "method": record.get("method"),
            "path": record.get("path"),
            "client": record.get("client"),
            "event_type": record.get("type"),
            "project_id": record.get("project_id"),
            "status": record.get("status"),
            "verification": record.get("verification"),
            "valid": record.get("valid"),
            "findings": record.get("findings", []),
            "response_status": record.get("answer"),
            "forwards": record.get("forwards", []),
            "retry_of": record.get("retry_of"),
        }

    def detail(self, row: StoredRow) -> dict[str, Any]:
        detail = detail_json(row)
        request = row.request()
        detail["signature"] = self._signature(request)
        detail["curl"] = curl_command(request)
        command = ["mhw", "verify", "--event", str(request.id)]
        if self._store is not None:
            command += ["--store", str(self._store)]
        detail["verify_command"] = shlex.join(command)
        return detail

    def raw(self, request: Received) -> bytes:
        return raw_request(request)

    def _signature(self, request: Received) -> dict[str, Any] | None:
        """``mhw verify --event``'s verdict with its hints; None without a secret to judge by."""
        if not self._secrets:
            return None
        result = verify(
            request.body,
            request.headers,
            self._secrets,
            tolerance=self._tolerance,
            now=request.received_at,
        )
        return verify_json(result, request.body, self._secrets, [])


def project_status(body: bytes) -> str | None:
    """``payload.status`` of an event (``complete``, ``error``…), as ``mhw listen`` shows it."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    payload = document.get("payload") if isinstance(document, dict) else None
    status = payload.get("status") if isinstance(payload, dict) else None
    return status if isinstance(status, str) else None


def curl_command(request: Received) -> dict[str, str]:
    """A curl command that sends the captured request again, byte for byte: the text before
    and after its URL, which the page fills in (shell-quoted) with the replay target.

    The developer pastes it into a terminal, and a sender wrote it: it holds no control or
    format character, which a terminal or the shell's line editor would act on (ESC ``[201~``
    ends a bracketed paste, then Ctrl-U wipes the line and a newline runs what follows).
    A body of such text goes inline with ``--data-raw`` (which never reads ``@`` as a file
    name); any other body is piped through ``base64 -d``, the only way a shell command
    carries arbitrary bytes. A header with other bytes is spelled by ``printf``.
    """
    options: list[str] = []
    for name, value in request.headers:
        if name.lower() not in HOP_BY_HOP_HEADERS:
            options += ["-H", _shell_word(f"{name}: {value}")]
    head = shlex.join(["curl", "-X", request.method])
    try:
        text: str | None = request.body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and _pastes_safely(text):
        return {
            "before_url": head,
            "after_url": " ".join([*options, "--data-raw", shlex.quote(text)]),
        }
    encoded = base64.b64encode(request.body).decode("ascii")
    return {
        "before_url": f"printf %s {encoded} | base64 -d | {head}",
        "after_url": " ".join([*options, "--data-binary", "@-"]),
    }


def _pastes_safely(text: str) -> bool:
    """Nothing a terminal acts on or that makes text look like other text: no control
    character but newline and tab, no format character (bidi overrides, zero widths), no
    unusual space. ``str.isprintable`` runs in C: a 1 MiB body costs about a millisecond on
    the loop the listener may share, where a per-character test costs 60."""
    return text.replace("\n", " ").replace("\t", " ").isprintable()


def _shell_word(header: str) -> str:
    """A header line as one shell word of the bytes it came as (latin-1, as raw downloads
    write it: any byte but CR, LF and NUL). Printable ASCII is quoted as it is; anything else
    is written by ``printf`` with octal escapes, so nothing but ASCII is ever pasted."""
    if all(" " <= character <= "~" for character in header):
        return shlex.quote(header)
    escaped = "".join(
        chr(byte)
        if byte < 128 and (chr(byte).isalnum() or chr(byte) in " :-_.,/=+;")
        else f"\\{byte:03o}"
        for byte in header.encode("latin-1")
    )
    return f"\"$(printf '{escaped}')\""


class InspectorFeed:
    """The reporter of ``mhw listen --ui``: the chosen reporter's output, and each request,
    as ``--format json`` writes it, to the inspector's open pages.

    A request is published when shown and again when its forwards are done (the page updates
    its row in place). With no page open nothing is built: a page costs only while watched.
    """

    def __init__(self, reporter: Reporter, inspector: Inspector) -> None:
        self._reporter = reporter
        self._inspector = inspector

    def open(self, reader_gone: Callable[[], None]) -> None:
        self._reporter.open(reader_gone)

    def close(self) -> bool:
        return self._reporter.close()

    def report(self, activity: Activity) -> None:
        self._reporter.report(activity)
        if isinstance(activity, (RequestReceived, Forwarded)) and self._inspector.watched:
            from mh_webhook_cli.report.listen import request_json

            self._inspector.publish(request_json(activity.received))
