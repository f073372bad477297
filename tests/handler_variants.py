"""A careful Magic Hour webhook handler, and variants of it that each break one rule.

The careful handler does what Magic Hour's rules ask: it verifies the HMAC over the raw body
(written here from the documented recipe, not with mhw's code), rejects timestamps more than
five minutes away in either direction and unsigned requests (401), answers 400 to a body it
cannot parse, 2xx to unknown fields and event types, deduplicates retries by ``payload.id``,
and answers at once. Each variant (``BREAKS``) changes exactly one of those behaviours, the
way real handlers get it wrong; ``mhw check`` must fail exactly the matching check.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

TOLERANCE = 300
SLOW_SECONDS = 1.5
"""How long ``slow-on-extra-fields`` takes: past the 1 s limit its test sets."""
SERIAL_WORK_SECONDS = 0.1
"""How long ``serial`` holds its one lock per request: 20 at once queue for 2 s."""

BREAKS: dict[str, str] = {
    "accepts-unsigned": "verifies a signature only when there is one",
    "ignores-future": "checks the age as now - timestamp > 300, without abs()",
    "ignores-stale": "rejects only timestamps in the future",
    "trusts-seen-signatures": "accepts a signature it has verified before, whatever the body",
    "rejects-duplicates": "answers 409 to an event it has seen (a retry)",
    "strict-schema": "answers 422 to fields it does not know",
    "crashes-on-unknown-type": "raises on an event type it does not handle (500)",
    "refuses-unknown-type": "answers 400 to an event type it does not handle",
    "crashes-on-non-json": "parses the body without catching the error (500)",
    "slow-on-extra-fields": "takes 1.5 s on an event with fields it does not know",
    "serial": "handles one request at a time, 100 ms each, behind a lock",
    "assumes-video-fields": "reads payload.width, which image and audio events lack (500)",
}


def careful_app(secret: str, breaks: str | None = None) -> FastAPI:
    """The careful handler at ``/webhook``, or the variant that ``breaks`` one rule."""
    if breaks is not None and breaks not in BREAKS:
        raise ValueError(f"unknown variant {breaks!r}")
    app = FastAPI()
    seen: set[tuple[str, str]] = set()
    """(payload.id, type) of each event handled: a retry is a duplicate, not an error."""
    seen_signatures: set[str] = set()
    one_at_a_time = asyncio.Lock()

    def refuse(status: int, reason: str) -> Response:
        return JSONResponse({"error": reason}, status_code=status)

    @app.post("/webhook")
    async def webhook(request: Request) -> Response:
        if breaks == "serial":
            async with one_at_a_time:
                await asyncio.sleep(SERIAL_WORK_SECONDS)  # the work done before answering
                return await handle(request)
        return await handle(request)

    async def handle(request: Request) -> Response:
        body = await request.body()
        signature = request.headers.get("magic-hour-event-signature")
        timestamp = request.headers.get("magic-hour-event-timestamp")
        if signature is None or timestamp is None:
            if breaks != "accepts-unsigned":
                return refuse(401, "unsigned")
        elif not (breaks == "trusts-seen-signatures" and signature in seen_signatures):
            if not timestamp.isdigit():
                return refuse(401, "bad timestamp")
            expected = hmac.new(
                secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
            ).hexdigest()
            if not hmac.compare_digest(expected, signature):
                return refuse(401, "bad signature")
            age = time.time() - int(timestamp)
            too_old, too_new = age > TOLERANCE, -age > TOLERANCE
            if (too_old and breaks != "ignores-stale") or (too_new and breaks != "ignores-future"):
                return refuse(401, "stale timestamp")
            seen_signatures.add(signature)
        try:
            event: Any = json.loads(body)
        except ValueError:
            if breaks == "crashes-on-non-json":
                raise
            return refuse(400, "not JSON")
        if not isinstance(event, dict) or not isinstance(event.get("payload"), dict):
            return refuse(400, "not an event")
        return await process(event)

    async def process(event: dict[str, Any]) -> Response:
        payload = event["payload"]
        if breaks == "strict-schema" and set(event) - {"type", "payload"}:
            return refuse(422, "unexpected fields")
        if breaks == "slow-on-extra-fields" and set(event) - {"type", "payload"}:
            await asyncio.sleep(SLOW_SECONDS)
        if breaks == "assumes-video-fields":
            print(payload["width"], payload["height"])  # the mistake: a KeyError on images
        action = str(event.get("type")).rpartition(".")[2]
        if action not in ("started", "completed", "errored"):
            if breaks == "crashes-on-unknown-type":
                raise KeyError(event.get("type"))
            if breaks == "refuses-unknown-type":
                return refuse(400, "unknown event type")
            return JSONResponse({"ignored": True})
        delivery = (str(payload.get("id")), str(event["type"]))
        if delivery in seen:
            if breaks == "rejects-duplicates":
                return refuse(409, "duplicate")
            return JSONResponse({"duplicate": True})
        seen.add(delivery)
        return JSONResponse({"received": True})

    return app
