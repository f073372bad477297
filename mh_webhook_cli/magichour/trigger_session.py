"""One run of ``mhw trigger``: a listener (ours, or a running one's store), the cost question,
the check of :mod:`mh_webhook_cli.magichour.trigger`, and its outcome.

What happens goes to the reporter the command hands in, as typed events
(:data:`TriggerActivity`): this module knows nothing of formats
(:mod:`mh_webhook_cli.report.trigger` renders them).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Union

from mh_webhook_cli.errors import ApiError, ExitCode, MhwError
from mh_webhook_cli.event_loop import stop_on_signals
from mh_webhook_cli.magichour.api import JobKind, MagicHourApi, estimate_credits
from mh_webhook_cli.magichour.trigger import (
    Inbox,
    Step,
    TriggerPlan,
    TriggerResult,
    poll_store,
    run_trigger,
)

if TYPE_CHECKING:
    from mh_webhook_cli.receive.activity import Reporter
    from mh_webhook_cli.tunnel import TunnelRequest


@dataclass(frozen=True)
class WaitingAt:
    """Where the job's webhooks are awaited: our own listener's URL, or a running listener's
    store (then ``store`` is set, and ``where`` is its URL when it announced one)."""

    where: str | None
    store: Path | None = None


@dataclass(frozen=True)
class CostEstimate:
    """What the job will cost, said before anything is spent."""

    kind: JobKind
    credits: int
    balance: int | None
    """The account's credits, when the API said."""


@dataclass(frozen=True)
class NotStarted:
    """The API key could not be checked (so nothing was spent): why."""

    message: str


@dataclass(frozen=True)
class Interrupted:
    """Ctrl-C or SIGTERM before the verdict: the job, if it started, goes on."""


@dataclass(frozen=True)
class Finished:
    """The verdict, with the plan it was reached for."""

    result: TriggerResult
    plan: TriggerPlan


TriggerActivity = Union[Step, WaitingAt, CostEstimate, NotStarted, Interrupted, Finished]  # noqa: UP007 (a runtime alias)


class TriggerReporter(Protocol):
    """Shows a run of ``mhw trigger``; chosen by the command."""

    def report(self, activity: TriggerActivity) -> None: ...


@dataclass(frozen=True)
class OwnListener:
    """A listener for the run alone, as ``mhw listen`` would start it."""

    host: str
    port: int
    store: Path | None
    tunnel: TunnelRequest | None


@dataclass(frozen=True)
class AttachedListener:
    """A running ``mhw listen``, followed through its capture store."""

    store: Path
    webhook_url: str | None
    """Where it receives webhooks, when it announced itself (see
    :mod:`mh_webhook_cli.receive.registry`)."""


@dataclass
class _Run:
    """One check, whichever listener feeds its inbox."""

    api: MagicHourApi
    plan: TriggerPlan
    account: dict[str, object]
    confirm: Callable[[], bool] | None
    """Asks before anything is spent (None: ``--yes``); it blocks, so it runs off the loop."""
    reporter: TriggerReporter
    download_to: Path | None
    inbox: Inbox = field(default_factory=Inbox)

    async def until(
        self, endpoint: str, stopped: Coroutine[object, object, object]
    ) -> TriggerResult | None:
        """Say the cost, ask, then check the job's webhooks at ``endpoint``; None on Ctrl-C."""
        self.plan = replace(self.plan, endpoint=endpoint)
        await _confirm(self.plan, self.account, self.confirm, self.reporter)
        check = run_trigger(
            self.plan,
            self.api,
            self.inbox,
            on_step=self.reporter.report,
            download_to=self.download_to,
        )
        return await _until_stopped(check, stopped)


async def run_session(
    api: MagicHourApi,
    plan: TriggerPlan,
    *,
    listener: OwnListener | AttachedListener,
    confirm: Callable[[], bool] | None,
    download_to: Path | None,
    reporter: TriggerReporter,
    listener_reporter: Reporter,
) -> int:
    """The exit code of one end-to-end check (see :class:`.trigger.Verdict`).

    ``listener_reporter`` shows our own listener's activity, when it is ours.
    """
    async with api:
        try:
            # Free, and it proves the key before anything is spent.
            account = await api.account()
        except ApiError as failure:
            reporter.report(NotStarted(str(failure)))
            return ExitCode.API_ERROR
        run = _Run(api, plan, account, confirm, reporter, download_to)
        if isinstance(listener, OwnListener):
            result = await _with_own_listener(run, listener, listener_reporter)
        else:
            result = await _attached(run, listener)
    if result is None:
        reporter.report(Interrupted())
        return ExitCode.FAILED
    reporter.report(Finished(result, run.plan))
    return result.verdict.exit_code


async def _with_own_listener(
    run: _Run, own: OwnListener, reporter: Reporter
) -> TriggerResult | None:
    from mh_webhook_cli.receive.http import Limits
    from mh_webhook_cli.receive.listener import ListenConfig
    from mh_webhook_cli.receive.session import Session

    session = Session(
        ListenConfig(secrets=run.plan.secrets),
        own.host,
        own.port,
        own.store,
        Limits(),
        reporter,
        expected=(),
        count=1,
        tunnel=own.tunnel,
        on_received=run.inbox.put,
    )
    session.stop_on_signals()
    async with session.serving() as endpoint:
        where = (
            endpoint.url
            if endpoint.public_url is None
            else f"{endpoint.webhook_url} ({endpoint.url})"
        )
        run.reporter.report(WaitingAt(where))
        return await run.until(endpoint.webhook_url, session.stopped())


async def _attached(run: _Run, listener: AttachedListener) -> TriggerResult | None:
    run.reporter.report(WaitingAt(listener.webhook_url, listener.store))
    interrupted = asyncio.Event()
    stop_on_signals(interrupted.set)
    poller = asyncio.ensure_future(poll_store(listener.store, time.time() - 1, run.inbox))
    try:
        return await run.until(listener.webhook_url or "the running listener", interrupted.wait())
    finally:
        poller.cancel()


async def _confirm(
    plan: TriggerPlan,
    account: dict[str, object],
    confirm: Callable[[], bool] | None,
    reporter: TriggerReporter,
) -> None:
    """Say what the job costs; unless told ``--yes``, ask before spending it."""
    credits = account.get("credits")
    balance = credits if isinstance(credits, int) else None
    reporter.report(CostEstimate(plan.kind, estimate_credits(plan.kind, plan.text), balance))
    if confirm is None:
        return
    loop = asyncio.get_running_loop()
    # Asked off the loop, so that the listener keeps answering meanwhile.
    if not await loop.run_in_executor(None, confirm):
        raise MhwError("not started: no credits were spent")


async def _until_stopped(
    work: Coroutine[object, object, TriggerResult], stopped: Coroutine[object, object, object]
) -> TriggerResult | None:
    """``work``'s result, or None when Ctrl-C came first."""
    check = asyncio.ensure_future(work)
    interrupt = asyncio.ensure_future(stopped)
    await asyncio.wait({check, interrupt}, return_when=asyncio.FIRST_COMPLETED)
    interrupt.cancel()
    if check.done():
        return check.result()
    check.cancel()
    return None
