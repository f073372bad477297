"""Which URL reaches a bind address, and which hosts are this machine: one set of rules for
the listener's URL, the tunnel's upstream and the forwarding-loop check."""

from __future__ import annotations

import re

import pytest

from conftest import Mhw
from mh_webhook_cli.core.hosts import bind_host, http_url, is_local, reachable_host, same_host
from mh_webhook_cli.errors import InvalidValue

PORT = 18787
"""Never bound: each command is refused before it listens."""


@pytest.mark.parametrize(
    ("bind_host", "url_host"),
    [
        ("0.0.0.0", "127.0.0.1"),  # noqa: S104
        ("", "127.0.0.1"),
        ("::", "[::1]"),  # main printed http://[::]:8787 here, and gave the tunnel [::1]
        ("[::]", "[::1]"),
        ("127.0.0.1", "127.0.0.1"),
        ("localhost", "localhost"),
        ("::1", "[::1]"),
        ("[::1]", "[::1]"),
        ("192.0.2.7", "192.0.2.7"),
        ("fe80::1", "[fe80::1]"),
    ],
)
def test_the_url_that_reaches_a_bind_address(bind_host: str, url_host: str) -> None:
    assert reachable_host(bind_host) == url_host


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LocalHost",
        "localhost.",
        "api.localhost",
        "127.0.0.1",
        "127.0.0.1.",
        "127.1",
        "127.9.9.9",
        "0x7f.1",
        "2130706433",
        "0177.0.0.1",
        "0.0.0.0",  # noqa: S104
        "0",
        "::1",
        "[::1]",
        "::",
        "::ffff:127.0.0.1",
        "[::ffff:127.0.0.1]",
        "",
    ],
)
def test_hosts_that_are_this_machine(host: str) -> None:
    assert is_local(host)


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "localhost.example.com",
        "127.1.example.com",
        "192.0.2.7",
        "::ffff:192.0.2.7",
        "2001:db8::1",
        "cafe",
        "0x7f.1 x",
    ],
)
def test_hosts_that_are_not(host: str) -> None:
    assert not is_local(host)


def test_one_address_however_spelled() -> None:
    assert same_host("192.0.2.7", "[::ffff:192.0.2.7]")
    assert same_host("192.0.2.7", "192.0.2.7.")
    assert same_host("Handler.Example", "handler.example.")
    assert same_host("2001:db8::1", "[2001:DB8:0::1]")
    assert not same_host("192.0.2.7", "192.0.2.8")


@pytest.mark.parametrize(
    ("bind_host", "target"),
    [
        ("127.0.0.1", "127.1"),
        ("127.0.0.1", "localhost."),
        ("127.0.0.1", "[::ffff:127.0.0.1]"),
        ("127.0.0.1", "0x7f.0.0.1"),
        ("127.0.0.1", "2130706433"),
        ("::1", "localhost."),
        ("::1", "127.1"),
    ],
)
def test_forwarding_to_this_listener_however_spelled_is_refused(
    mhw: Mhw, bind_host: str, target: str
) -> None:
    """Each spelling reaches the listener through the resolver; on main they all started it
    (``--timeout`` makes that a quick exit 0 rather than a hang)."""
    result = mhw(
        "listen", "--host", bind_host, "--port", str(PORT), "--timeout", "1",
        "--forward-to", f"http://{target}:{PORT}/hook",
    )  # fmt: skip
    assert result.code == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: --forward-to http://{target}:{PORT}/hook is this listener")


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/webhook", "https://example.test", "http://[::1]:1/x?y=1"]
)
def test_http_url_takes_http_and_https_with_a_host(url: str) -> None:
    assert http_url(url, "--url") == url


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://127.0.0.1/x", r"is not an http\(s\) URL"),
        ("127.0.0.1:8000", r"has no scheme: write http://127\.0\.0\.1:8000$"),
        ("http://", r"is not an http\(s\) URL"),
        ("http://127.0.0.1:0/", r"the port '0' is not a number from 1 to 65535"),
        ("http://127.0.0.1:65536/", r"the port '65536' is not a number from 1 to 65535"),
        ("http://127.0.0.1:port/", r"is not an http\(s\) URL"),
        ("", r"has no scheme"),
    ],
)
def test_http_url_refuses_in_one_line_naming_the_option(url: str, problem: str) -> None:
    """One line that names the option and says what is wrong: the scheme, or the port."""
    with pytest.raises(
        InvalidValue, match=rf"^--forward-to '{re.escape(url)}'[: ].*{problem}"
    ) as raised:
        http_url(url, "--forward-to")
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "0.0.0.0", "::", "[::1]", "localhost", "127.1", ""],  # noqa: S104 - parsed only
)
def test_bind_host_takes_addresses_and_names(host: str) -> None:
    assert bind_host(host, "--host") == host


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("999.1.1.1", "is not an IP address"),
        ("1.2.3.4.5", "is not an IP address"),
        ("::zz", "is not an IP address"),
        ("bad_host!", "is neither an IP address nor a host name"),
        ("-leading.example", "is neither an IP address nor a host name"),
    ],
)
def test_bind_host_refuses_what_no_resolver_can_bind(host: str, problem: str) -> None:
    """No DNS is asked: 999.1.1.1 would otherwise fail at bind as 'Unknown error -2'."""
    with pytest.raises(InvalidValue, match=rf"^--host '{re.escape(host)}' {problem}$"):
        bind_host(host, "--host")
