"""One run of ``mhw trigger``: a listener (ours, or a running one's store), the cost question,
the check of :mod:`mh_webhook_cli.magichour.trigger`, and its report.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from mh_webhook_cli.errors import ApiError, ExitCode, MhwError
from mh_webhook_cli.event_loop import stop_on_signals
from mh_webhook_cli.magichour.api import MagicHourApi, estimate_credits
from mh_webhook_cli.magichour.trigger import (
    Arrival,
    Inbox,
    Step,
    TriggerPlan,
    TriggerResult,
    poll_store,
    run_trigger,
)
from mh_webhook_cli.report.console import Format, emit_json, error, info, show

if TYPE_CHECKING:
    from mh_webhook_cli.receive.listener import Delivery
    from mh_webhook_cli.tunnel import TunnelRequest


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
    """Where it receives webhooks, when it announced itself (see ``listener_registry``)."""


@dataclass
class _Run:
    """One check, whichever listener feeds its inbox."""

    api: MagicHourApi
    plan: TriggerPlan
    account: dict[str, object]
    ask: bool
    on_step: Callable[[Step], None]
    download_to: Path | None
    inbox: Inbox = field(default_factory=Inbox)

    async def until(
        self, endpoint: str, stopped: Coroutine[object, object, object]
    ) -> TriggerResult | None:
        """Say the cost, ask, then check the job's webhooks at ``endpoint``; None on Ctrl-C."""
        self.plan = replace(self.plan, endpoint=endpoint)
        await _confirm(self.plan, self.account, self.ask)
        check = run_trigger(
            self.plan, self.api, self.inbox, on_step=self.on_step, download_to=self.download_to
        )
        return await _until_stopped(check, stopped)


async def run_session(
    api: MagicHourApi,
    plan: TriggerPlan,
    *,
    listener: OwnListener | AttachedListener,
    ask: bool,
    download_to: Path | None,
    output_format: Format,
) -> int:
    """The exit code of one end-to-end check (see :class:`.trigger.Verdict`)."""
    from mh_webhook_cli.report import trigger as render_trigger

    def on_step(step: Step) -> None:
        if output_format is Format.TEXT:
            show([render_trigger.step_line(step)])

    async with api:
        try:
            # Free, and it proves the key before anything is spent.
            account = await api.account()
        except ApiError as failure:
            error(str(failure))
            return ExitCode.API_ERROR
        run = _Run(api, plan, account, ask, on_step, download_to)
        if isinstance(listener, OwnListener):
            result = await _with_own_listener(run, listener)
        else:
            result = await _attached(run, listener)
    if result is None:
        error("interrupted: the job, if it started, goes on without us")
        return ExitCode.FAILED
    if output_format is Format.JSON:
        emit_json(render_trigger.result_json(result, run.plan))
    else:
        show(render_trigger.result_lines(result))
    return result.verdict.exit_code


async def _with_own_listener(run: _Run, own: OwnListener) -> TriggerResult | None:
    from mh_webhook_cli.receive.http import Limits
    from mh_webhook_cli.receive.listener import ListenConfig
    from mh_webhook_cli.receive.session import Presenter, Session

    def delivered(delivery: Delivery) -> None:
        request = delivery.request
        run.inbox.put(
            Arrival(
                delivery.received_at,
                request.body,
                request.headers,
                delivery.event_type,
                delivery.project_id,
                delivery.document,
            )
        )

    session = Session(
        ListenConfig(secrets=run.plan.secrets),
        own.host,
        own.port,
        own.store,
        Limits(),
        Presenter(Format.TEXT, verbose=False, show_deliveries=False),
        expected=(),
        count=1,
        tunnel=own.tunnel,
        on_delivery=delivered,
    )
    session.stop_on_signals()
    async with session.serving() as endpoint:
        where = (
            endpoint.url
            if endpoint.public_url is None
            else f"{endpoint.webhook_url} ({endpoint.url})"
        )
        info(f"listening for the job's webhooks at {where}")
        return await run.until(endpoint.webhook_url, session.stopped())


async def _attached(run: _Run, listener: AttachedListener) -> TriggerResult | None:
    where = f" at {listener.webhook_url}" if listener.webhook_url else ""
    info(f"watching the store of the running listener{where}: {listener.store}")
    interrupted = asyncio.Event()
    stop_on_signals(interrupted.set)
    poller = asyncio.ensure_future(poll_store(listener.store, time.time() - 1, run.inbox))
    try:
        return await run.until(listener.webhook_url or "the running listener", interrupted.wait())
    finally:
        poller.cancel()


async def _confirm(plan: TriggerPlan, account: dict[str, object], ask: bool) -> None:
    """Say what the job costs; unless told ``--yes``, ask before spending it."""
    cost = estimate_credits(plan.kind, plan.text)
    credits = account.get("credits")
    balance = f" of your {credits:,}" if isinstance(credits, int) else ""
    info(f"a real {plan.kind} job costs about {cost} credit(s){balance}")
    if not ask:
        return
    import typer

    loop = asyncio.get_running_loop()
    # Asked off the loop, so that the listener keeps answering meanwhile.
    if not await loop.run_in_executor(
        None, lambda: typer.confirm("Start it?", default=False, err=True)
    ):
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
