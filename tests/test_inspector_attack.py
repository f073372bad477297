"""The web inspector attacked over loopback: what another local user, or a page on any other
site, can get out of it (the threat model is in ``mh_webhook_cli/receive/inspector.py``)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from test_inspector import (
    LibraryInspector,
    Target,
    _get,
    body_of,
    fill,
    signed_request,
    store_path,
    target,
    token_of,
)

from conftest import SECRET

__all__ = ["store_path", "target"]  # fixtures, used by name


def test_another_local_user_who_fetches_the_page_learns_no_token(store_path: Path) -> None:
    """Any local user can connect to 127.0.0.1 and send the right ``Host``: the page must not
    hand them the token that reads every capture and replays re-signed with the secret. The
    token is only in the URL mhw printed, after "#", which no request carries."""
    [request_id] = fill(store_path, signed_request(body_of("video.completed", "cm-secret")))
    served = LibraryInspector(store_path, [SECRET])
    try:
        host = urlsplit(served.url).netloc
        token = token_of(served.url)
        assert token == served.inspector.token
        for path in ("/", "/app.js", "/app.css"):
            status, body = _get(served.url, path, {"Host": host})
            assert status == 200, path
            assert token.encode() not in body, path
        status, _ = _get(served.url, f"/api/requests/{request_id}", {"Host": host})
        assert status == 403
        status, detail = _get(
            served.url, f"/api/requests/{request_id}", {"Host": host, "X-Mhw-Token": token}
        )
        assert status == 200 and b"cm-secret" in detail
    finally:
        served.close()


def test_a_request_id_that_is_not_ascii_digits_or_past_sqlite_is_refused_not_a_500(
    store_path: Path,
) -> None:
    """``str.isdigit`` takes a superscript two, which ``int`` refuses, and 20 digits overflow
    SQLite's integer: both were an internal error."""
    fill(store_path, signed_request(body_of("video.completed", "cm-1")))
    served = LibraryInspector(store_path, [SECRET])
    try:
        headers = {"Host": urlsplit(served.url).netloc, "X-Mhw-Token": served.inspector.token}
        for before in ("%C2%B2", "9" * 20, "%D9%A1", "1%20", "-1"):
            status, answer = _get(served.url, f"/api/requests?before={before}", headers)
            assert status == 400, (before, answer)
        for path in ("/api/requests/" + "9" * 19, "/api/requests/%D9%A1", "/api/requests/1/"):
            assert _get(served.url, path, headers)[0] == 404, path
        assert _get(served.url, "/api/requests/" + "9" * 18, headers)[0] == 404
    finally:
        served.close()


def test_copy_as_curl_pastes_no_control_character_and_sends_the_same_bytes(
    store_path: Path, target: Target
) -> None:
    """A sender writes the curl command the developer pastes into a terminal: ESC ``[201~``
    ends a bracketed paste, Ctrl-U wipes what was pasted and the newline runs the rest. The
    command holds nothing but printable ASCII, newlines and tabs, and still sends the bytes
    received."""
    planted = "\x1b[201~\x15touch /tmp/mhw-pwned\n"
    body = '{"type": "video.completed", "note": "' + planted + '"}'  # raw, as a sender may
    request = signed_request(
        body.encode(),
        headers=[
            ("Host", "127.0.0.1:8787"),
            ("Content-Type", "application/json"),
            ("X-Odd", "caf\xe9 \x9b2J \u00ae 'quoted' $HOME `id` %s \\n"),
        ],
    )
    plain = signed_request(b'{"type": "video.completed", "note": "it\'s\\n\tfine"}')
    ids = fill(store_path, request, plain)
    served = LibraryInspector(store_path, [SECRET])
    try:
        headers = {"Host": urlsplit(served.url).netloc, "X-Mhw-Token": served.inspector.token}
        for request_id, sent in zip(ids, (request, plain), strict=True):
            status, answer = _get(served.url, f"/api/requests/{request_id}", headers)
            assert status == 200
            curl = json.loads(answer)["curl"]
            command = f"{curl['before_url']} {target.url} {curl['after_url']}"  # as the page does
            unsafe = [c for c in command if not (" " <= c <= "~" or c in "\n\t")]
            assert unsafe == [], command
            subprocess.run(["/bin/sh", "-c", command], check=True, capture_output=True, timeout=30)
            received_headers, received_body = target.received[-1]
            assert received_body == sent.body
            for name, value in sent.headers:
                if name.lower().startswith(("x-", "magic-hour")):
                    assert received_headers[name.lower()] == value
        assert "--data-raw" in command  # the plain one went inline
    finally:
        served.close()
