"""Hosts as mhw's servers see them: the URL that reaches a bind address, and whether a host
is this machine. No DNS lookups: only what the text itself says.

One module because three copies of these rules disagreed: ``mhw listen`` printed
``http://[::]:8787`` for a listener bound to ``::`` while the tunnel pointed the ngrok agent
at ``[::1]``, and the forwarding-loop check missed spellings that the resolver still maps
to loopback (``127.1``, ``localhost.``, ``[::ffff:127.0.0.1]``).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

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
    :class:`~mh_webhook_cli.errors.InvalidValue` naming ``what`` (``"--url"``) and what is
    wrong: no scheme, another scheme, a port out of range."""
    import httpx  # parsing only, no request; imported here, for start-up time

    like = "an http(s) URL like http://127.0.0.1:8000/webhook"
    scheme, separator, _ = text.partition("://")
    if not separator:
        raise InvalidValue(f"{what} {text!r} has no scheme: write http://{text}")
    if scheme.lower() not in ("http", "https"):
        raise InvalidValue(f"{what} {text!r} is not {like}")
    try:
        parts = urlsplit(text)
        valid = bool(httpx.URL(text).host)
    except (httpx.InvalidURL, ValueError):
        valid = False
    if not valid:
        raise InvalidValue(f"{what} {text!r} is not {like}")
    try:
        port = parts.port
    except ValueError:  # out of range, or not a number
        port = 0
    if port == 0:
        given = parts.netloc.rpartition(":")[2]
        raise InvalidValue(f"{what} {text!r}: the port {given!r} is not a number from 1 to 65535")
    return text


_HOST_NAME = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.?", re.I)


def bind_host(text: str, what: str) -> str:
    """``text`` if a server can be asked to bind it: an IP address or a host name.

    Numbers that are not an address (``999.1.1.1``) would otherwise reach the resolver as a
    name, and fail as "Unknown error -2" at bind time. Whether a name resolves is left to
    the bind: no DNS lookup here.
    """
    host = text.strip()
    bare = host.removeprefix("[").removesuffix("]")
    if host == "" or _address(bare) is not None:
        return host
    if ":" in bare or set(bare) <= _IPV4_SHORTHAND_CHARACTERS - set("abcdefx"):
        raise InvalidValue(f"{what} {text!r} is not an IP address")
    if not _HOST_NAME.fullmatch(bare) or len(bare) > 253:
        raise InvalidValue(f"{what} {text!r} is neither an IP address nor a host name")
    return host


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
