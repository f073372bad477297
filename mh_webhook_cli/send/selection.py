"""Which events ``mhw send`` sends: one type, a given document, all nine, or a lifecycle.

The choice is a value (:class:`EventSelection`) the command fills from its options; the
events it stands for are built here, so the rules (exactly one source, which options shape
which) are testable without a command line. A bad combination raises :class:`UsageError`
with one line in the words of the options.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from mh_webhook_cli.errors import UsageError

Event = tuple[str | None, Any]
"""An event to send and its type, for the report (None for a document that names none)."""


@dataclass(frozen=True)
class EventSelection:
    """The events to send, from exactly one of ``event``, ``data``, ``all_events``, ``lifecycle``.

    ``data`` reads the given document when it is needed (after the options are checked, so a
    wrong combination never waits on stdin): its bytes and where they came from. ``lifecycle``
    is a kind (``video``, ``image``, ``audio``): its started event, then completed (errored
    with ``fail``), for one project. ``assignments`` are ``--set PATH=VALUE`` changes.
    """

    event: str | None = None
    data: Callable[[], tuple[bytes, str]] | None = None
    all_events: bool = False
    lifecycle: str | None = None
    fail: bool = False
    project_id: str | None = None
    error_code: str | None = None
    assignments: tuple[str, ...] = ()

    def events(self, now: datetime | None = None) -> list[Event]:
        """The events, built at ``now`` (fixtures carry timestamps), with the changes applied."""
        return [(name, _apply_sets(body, self.assignments)) for name, body in self._chosen(now)]

    def _chosen(self, now: datetime | None) -> list[Event]:
        from mh_webhook_cli.core.catalog import EVENT_TYPES
        from mh_webhook_cli.core.fixtures import build_fixture

        sources = [
            self.event is not None,
            self.data is not None,
            self.all_events,
            self.lifecycle is not None,
        ]
        if sum(sources) != 1:
            raise UsageError("give exactly one of EVENT, --data, --all or --lifecycle")
        if self.fail and self.lifecycle is None:
            raise UsageError("--fail applies only to --lifecycle")
        if self.lifecycle is not None and self.error_code is not None and not self.fail:
            raise UsageError("--error-code shapes the errored event: add --fail to --lifecycle")
        if self.data is not None:
            if self.project_id is not None or self.error_code is not None:
                raise UsageError("--id and --error-code shape fixtures; with --data use --set")
            body = parse_document(*self.data())
            name = body.get("type") if isinstance(body, dict) else None
            return [(name if isinstance(name, str) else None, body)]

        if self.event is not None:
            if self.event not in EVENT_TYPES:
                raise UsageError(
                    f"unknown event {self.event!r}; choose one of {', '.join(EVENT_TYPES)}"
                )
            names = [self.event]
        elif self.all_events:
            names = list(EVENT_TYPES)
        else:
            ending = "errored" if self.fail else "completed"
            names = [f"{self.lifecycle}.started", f"{self.lifecycle}.{ending}"]
        at = now or datetime.now(timezone.utc)
        project_id = self.project_id
        events: list[Event] = []
        for name in names:
            shaped = name.endswith(".errored") or self.event is not None
            code = self.error_code if shaped else None
            try:
                fixture = build_fixture(name, now=at, project_id=project_id, error_code=code)
            except ValueError as failure:
                raise UsageError(str(failure)) from None
            if self.lifecycle is not None:
                # Every event of a lifecycle is about one project, so they share its id.
                project_id = fixture["payload"]["id"]
            events.append((name, fixture))
        return events


def parse_document(raw: bytes, where: str) -> Any:
    """A given event's JSON, read by the listener's parser: its refusals (not UTF-8, too
    deep, NaN) become one line naming ``where`` it came from."""
    from mh_webhook_cli.core.catalog import parse_body

    document, findings = parse_body(raw)
    if findings:
        raise UsageError(f"{where} is not JSON ({findings[0].message}){_file_hint(raw, where)}")
    return document


def _file_hint(raw: bytes, where: str) -> str:
    """``--data event.json`` was meant as a file: say how to give one."""
    if where != "--data" or not _LOOKS_LIKE_A_PATH.fullmatch(raw):
        return ""
    return f"; to send a file's content, write --data @{raw.decode()}"


_LOOKS_LIKE_A_PATH = re.compile(rb"[\w./~-]{1,200}")
"""Text that may name a file (and is safe to echo back): no JSON starts like this."""


def _apply_sets(body: Any, assignments: tuple[str, ...]) -> Any:
    if not assignments:
        return body
    from mh_webhook_cli.core.fixtures import apply_overrides

    if not isinstance(body, dict):
        raise UsageError("--set needs the event to be a JSON object")
    try:
        return apply_overrides(body, list(assignments))  # its OverrideError is a UsageError
    except RecursionError:  # its copy of the event recurses once per level of nesting
        raise UsageError("--set cannot change an event nested this deeply") from None
