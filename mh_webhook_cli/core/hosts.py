"""Hosts as mhw's servers see them: the URL that reaches a bind address, and whether a host
is this machine. No DNS lookups: only what the text itself says.

One module because three copies of these rules disagreed: ``mhw listen`` printed
``http://[::]:8787`` for a listener bound to ``::`` while the tunnel pointed the ngrok agent
at ``[::1]``, and the forwarding-loop check missed spellings that the resolver still maps
to loopback (``127.1``, ``localhost.``, ``[::ffff:127.0.0.1]``).
"""

from __future__ import annotations

import ipaddress
import socket

from mh_webhook_cli.errors import InvalidValue

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_IPV4_SHORTHAND_CHARACTERS = frozenset("0123456789abcdefx.")
"""What ``127.1``, ``0x7f.1`` or ``2130706433`` are made of: the BSD forms of an IPv4
address that ``inet_aton``, and so ``getaddrinfo``, still accept."""


def reachable_host(bind_host: str) -> str:
    """The host part of a URL that reaches a server bound to ``bind_host``.

    An any-address (``0.0.0.0``, ``::``, empty) is reached on the loopback of its family;
    an IPv6 address gets its brackets.
    """
    host = bind_host.strip("[]")
    address = _address(host)
    if host == "" or (address is not None and address.is_unspecified):
        return "[::1]" if ":" in host else "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def is_local(host: str) -> bool:
    """Whether ``host`` names this machine: ``localhost``, a loopback or an any-address."""
    name = _name(host)
    if name in ("", "localhost") or name.endswith(".localhost"):
        return True
    address = _address(name)
    return address is not None and (address.is_loopback or address.is_unspecified)


def same_host(first: str, second: str) -> bool:
    """Whether two hosts are spelled differently but name the same address or name."""
    return _canonical(first) == _canonical(second)


def http_url(text: str, what: str) -> str:
    """``text`` if it is an http(s) URL with a host and a valid port, else a one-line
    :class:`~mh_webhook_cli.errors.InvalidValue` naming ``what`` (``"--url"``)."""
    import httpx  # parsing only, no request; imported here, for start-up time

    try:
        url = httpx.URL(text)
        port_ok = url.port is None or 0 < url.port < 65536
        valid = url.scheme in ("http", "https") and bool(url.host) and port_ok
    except (httpx.InvalidURL, ValueError):
        valid = False
    if not valid:
        raise InvalidValue(
            f"{what} {text!r} is not an http(s) URL like http://127.0.0.1:8000/webhook"
        )
    return text


def _address(host: str) -> IPAddress | None:
    """The address ``host`` spells, as the resolver would read it, or None for a name.

    An IPv4-mapped IPv6 address (``::ffff:127.0.0.1``) is the IPv4 address it carries:
    that is where a connection to it goes.
    """
    text = host.strip("[]").lower()
    try:
        address: IPAddress = ipaddress.ip_address(text)
    except ValueError:
        if not text or not set(text) <= _IPV4_SHORTHAND_CHARACTERS:
            return None
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _name(host: str) -> str:
    """``host`` lower-cased, without brackets or the trailing dot of a fully qualified name."""
    return host.strip("[]").lower().removesuffix(".")


def _canonical(host: str) -> str:
    name = _name(host)
    address = _address(name)
    return name if address is None else str(address)
