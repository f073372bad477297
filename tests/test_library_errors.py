"""A bad value a user gave (an option, a header, a check id) is an ``InvalidValue``: a usage
error the CLI maps to exit 2 in one place (``cli.main``), and a ``ValueError`` for a library
caller. No command has to translate a plain ``ValueError`` into a usage error itself."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timezone

import pytest

from mh_webhook_cli.errors import ExitCode, InvalidValue
from mh_webhook_cli.magichour.emulator import EmulatorConfig
from mh_webhook_cli.send.battery import CHECK_IDS, build_event, check_handler, select_checks
from mh_webhook_cli.send.delivery import parse_header, tls_context


def _run_battery_with_no_burst() -> None:
    asyncio.run(check_handler("http://127.0.0.1:9/", None, burst=0))


@pytest.mark.parametrize(
    "call",
    [
        lambda: select_checks(only=["no-such-check"]),
        lambda: select_checks(skip=CHECK_IDS),
        _run_battery_with_no_burst,
        lambda: build_event("payment.completed", now=datetime.now(timezone.utc)),
        lambda: parse_header("no colon here"),
        lambda: parse_header("X-Bad: a\x01b"),
        lambda: tls_context(insecure=False, cacert="/nonexistent/ca.pem"),
        lambda: EmulatorConfig(fail_rate=2.0),
        lambda: EmulatorConfig(tier="platinum"),
    ],
)
def test_a_bad_value_is_an_invalid_value_with_the_usage_exit_code(
    call: Callable[[], object],
) -> None:
    with pytest.raises(InvalidValue) as raised:
        call()
    assert isinstance(raised.value, ValueError)
    assert raised.value.exit_code == ExitCode.USAGE
    assert "\n" not in str(raised.value)
