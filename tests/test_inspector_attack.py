"""The web inspector attacked over loopback: what another local user, or a page on any other
site, can get out of it (the threat model is in ``mh_webhook_cli/receive/inspector.py``)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from test_inspector import (
    LibraryInspector,
    _get,
    body_of,
    fill,
    signed_request,
    store_path,
    token_of,
)

from conftest import SECRET

__all__ = ["store_path"]  # a fixture, used by name


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
