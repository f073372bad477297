#!/usr/bin/env python3
"""A stand-in ngrok v3 agent, so the tests can drive pyngrok itself with no network.

It speaks the parts of the real agent's interface that pyngrok uses:

* ``ngrok --version`` / ``ngrok version``: ``ngrok version 3.x.y``;
* ``ngrok config add-authtoken TOKEN [--log stdout] [--config PATH]``: saves the
  token under ``agent: authtoken:`` and says ``Authtoken saved to configuration file``;
* ``ngrok start --none --log stdout [--config PATH] [--authtoken T] [--region R]``:
  logs in logfmt on stdout the lines pyngrok waits for (``starting web service``
  with ``addr=``, ``tunnel session started``, ``client session established``),
  then serves the local agent API on that address: ``GET``/``POST /api/endpoints``,
  ``GET``/``DELETE /api/endpoints/NAME``, with the real agent's response shapes.

Public URLs: there is no TLS and no DNS here, so each endpoint gets a loopback
port that pipes raw TCP to its upstream, byte for byte, and the endpoint's
``url`` is ``http://127.0.0.1:PORT``. An endpoint asked for a domain
(``url: https://NAME``) reports that URL, as ngrok does, and is served on a
loopback port too.

Failure modes, each with the real agent's log line or API answer:

* no authtoken: ``ERR_NGROK_4018`` on the session, then exit 1;
* an authtoken not shaped like ngrok's (``<id>_<secret>``): ``ERR_NGROK_105``, exit 1;
* ``FAKE_NGROK_FOREIGN_DOMAINS=a.example,b.example``: creating an endpoint on one
  of them answers 502 with ``ERR_NGROK_320`` (reserved for another account);
* ``FAKE_NGROK_DROP_AFTER=SECONDS``: that long after the first endpoint opens, the
  session drops (``session closed, starting reconnect loop``, ``failed to
  reconnect session``) and comes back (``client session established``).

``FAKE_NGROK_RECORD=PATH`` appends one JSON line per run, ``{"pid", "argv"}``,
so a test can check the command line pyngrok used and that no agent survives.

It exits on SIGTERM/SIGINT/SIGKILL, when its parent dies, or when stdout closes,
and it never starts a child process: threads only.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

VERSION = "3.22.1"
TOKEN_SHAPE = re.compile(r"^[0-9A-Za-z]{16,}_[0-9A-Za-z]{16,}$")
AUTHTOKEN_URL = "https://dashboard.ngrok.com/get-started/your-authtoken"

_print_lock = threading.Lock()


def log(lvl: str, msg: str, **fields: str) -> None:
    """One logfmt line as the agent writes it: values quoted Go-style when needed."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S%z")
    parts = [f"t={stamp}", f"lvl={lvl}", f"msg={_value(msg)}"]
    parts += [f"{key}={_value(value)}" for key, value in fields.items()]
    try:
        with _print_lock:
            sys.stdout.write(" ".join(parts) + "\n")
            sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        # Whoever read our logs is gone: so is the reason to run.
        os._exit(0)


def _value(text: str) -> str:
    if text and re.fullmatch(r"[\w./:\-\[\]@]+", text):
        return text
    return json.dumps(text)  # Go's %q: backslash escapes inside double quotes


def option(args: list[str], name: str) -> str | None:
    """``--name VALUE`` or ``--name=VALUE``; the last one wins, as with Go's flag package."""
    found = None
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            found = args[index + 1]
        elif arg.startswith(name + "="):
            found = arg.split("=", 1)[1]
    return found


def read_authtoken(paths: list[str]) -> str | None:
    """``authtoken`` from ngrok config files: top level (v2) or under ``agent:`` (v3); last wins."""
    token = None
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except FileNotFoundError:
            continue
        in_agent = False
        for line in lines:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            indented = line[0].isspace()
            if not indented:
                in_agent = line.split(":", 1)[0].strip() == "agent"
            if indented and not in_agent:
                continue
            key, _, value = line.strip().partition(":")
            if key == "authtoken" and value.strip():
                token = value.strip().strip("'\"")
    return token


def add_authtoken(args: list[str]) -> int:
    token = args[2] if len(args) > 2 else ""
    path = option(args, "--config") or os.path.join(
        os.environ.get("XDG_CONFIG_HOME", os.path.expanduser("~/.config")), "ngrok", "ngrok.yml"
    )
    kept: list[str] = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            skipping = False
            for line in handle.read().splitlines():
                if line and not line[0].isspace():
                    skipping = line.split(":", 1)[0] in ("agent", "version", "authtoken")
                if not skipping:
                    kept.append(line)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(['version: "3"', "agent:", f"    authtoken: {token}", *kept]) + "\n")
    print(f"Authtoken saved to configuration file: {path}")
    return 0


class Endpoint:
    """One endpoint: its API record and the loopback port that stands in for its public URL."""

    def __init__(self, name: str, upstream: str, url: str | None) -> None:
        self.name = name
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        port = self.listener.getsockname()[1]
        self.url = url or f"http://127.0.0.1:{port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def record(self) -> dict[str, Any]:
        return {
            "id": f"ep_{self.name}",
            "name": self.name,
            "uri": f"/api/endpoints/{self.name}",
            "url": self.url,
            "upstream": {"url": self.upstream, "protocol": "http1"},
            "traffic_policy": "",
            "pooling_enabled": False,
        }

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        target = urlsplit(self.upstream)
        address = (target.hostname or "localhost", target.port or 80)
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            log("info", "join connections", obj="join", l=f"{address[0]}:{address[1]}")
            threading.Thread(target=self._join, args=(client, address), daemon=True).start()

    @staticmethod
    def _join(client: socket.socket, address: tuple[str, int]) -> None:
        try:
            upstream = socket.create_connection(address, timeout=10)
        except OSError as error:
            log("warn", "failed to dial upstream", obj="join", err=str(error))
            client.close()
            return
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass


class Agent:
    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.endpoints: dict[str, Endpoint] = {}
        self.lock = threading.Lock()
        self.foreign = {
            name.strip().lower()
            for name in os.environ.get("FAKE_NGROK_FOREIGN_DOMAINS", "").split(",")
            if name.strip()
        }
        self.drop_after = os.environ.get("FAKE_NGROK_DROP_AFTER")

    def create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        name = str(body.get("name") or f"endpoint-{secrets.token_hex(4)}")
        upstream = body.get("upstream") or {}
        upstream_url = str(upstream.get("url") or "http://localhost:80")
        url = body.get("url")
        host = urlsplit(str(url)).hostname if url else None
        if host and host.lower() in self.foreign:
            err = (
                "failed to start tunnel: This domain is reserved for another account.\n"
                f"Failed to create an endpoint with the domain '{host}' for the account 'Fake'.\n\n"
                "If you have reserved this name, make sure that you are using an\n"
                "authtoken credential for the appropriate account.\n\n"
                "Reserve a name on your dashboard: https://dashboard.ngrok.com/domains/new"
                "\r\n\r\nERR_NGROK_320\r\n"
            )
            log("eror", "failed to start tunnel", obj="tunnels", name=name, err=err)
            return 502, {
                "error_code": 103,
                "status_code": 502,
                "msg": "failed to start tunnel",
                "details": {"err": err},
            }
        endpoint = Endpoint(name, upstream_url, str(url) if url else None)
        with self.lock:
            first = not self.endpoints
            self.endpoints[name] = endpoint
        log("info", "started tunnel", obj="tunnels", name=name, addr=upstream_url, url=endpoint.url)
        if first and self.drop_after:
            threading.Thread(target=self._drop, args=(float(self.drop_after),), daemon=True).start()
        return 201, endpoint.record()

    def _drop(self, after: float) -> None:
        time.sleep(after)
        csess = {"obj": "csess", "id": self.session_id}
        log(
            "eror",
            "session closed, starting reconnect loop",
            err="read EOF from remote peer",
            **csess,
        )
        log(
            "eror",
            "failed to reconnect session",
            err="dial tcp: lookup connect.ngrok-agent.com: no such host",
            **csess,
        )
        time.sleep(0.2)
        log("info", "tunnel session started", obj="tunnels.session")
        log("info", "client session established", **csess)


def make_handler(agent: Agent) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """The real agent logs API calls at debug level; pyngrok runs it at info."""

        def _send(self, status: int, data: dict[str, Any] | None) -> None:
            body = b"" if data is None else json.dumps(data).encode()
            self.send_response(status)
            if data is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _not_found(self) -> None:
            self._send(404, {"error_code": 100, "status_code": 404, "msg": "not found"})

        def do_GET(self) -> None:
            if self.path == "/api/endpoints":
                with agent.lock:
                    items = [endpoint.record() for endpoint in agent.endpoints.values()]
                self._send(200, {"endpoints": items, "uri": "/api/endpoints"})
                return
            endpoint = agent.endpoints.get(self.path.removeprefix("/api/endpoints/"))
            if endpoint is None:
                self._not_found()
            else:
                self._send(200, endpoint.record())

        def do_POST(self) -> None:
            if self.path != "/api/endpoints":
                self._not_found()
                return
            length = int(self.headers.get("Content-Length") or 0)
            status, data = agent.create(json.loads(self.rfile.read(length) or b"{}"))
            self._send(status, data)

        def do_DELETE(self) -> None:
            with agent.lock:
                endpoint = agent.endpoints.pop(self.path.removeprefix("/api/endpoints/"), None)
            if endpoint is None:
                self._not_found()
                return
            endpoint.close()
            log("info", "stopped tunnel", obj="tunnels", name=endpoint.name)
            self._send(204, None)

    return Handler


def exit_with_parent() -> None:
    """The real agent dies with its pipe; a parent gone for good must not leave us behind."""
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.1)
    os._exit(0)


def start(args: list[str]) -> int:
    configs = [path for path in (option(args, "--config") or "").split(",") if path]
    if not configs:
        configs = [
            os.path.join(
                os.environ.get("XDG_CONFIG_HOME", os.path.expanduser("~/.config")),
                "ngrok",
                "ngrok.yml",
            )
        ]
    token = (
        option(args, "--authtoken") or os.environ.get("NGROK_AUTHTOKEN") or read_authtoken(configs)
    )

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: os._exit(0))
    threading.Thread(target=exit_with_parent, daemon=True).start()

    session_id = secrets.token_hex(6)
    agent = Agent(session_id)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(agent))
    for path in configs:
        log("info", "open config file", path=path, err="nil")
    log("info", "starting web service", obj="web", addr=f"127.0.0.1:{server.server_port}")

    failure = None
    if not token:
        failure = (
            "authentication failed: Usage of ngrok requires a verified account and authtoken.\n\n"
            "Sign up for an account: https://dashboard.ngrok.com/signup\n"
            f"Install your authtoken: {AUTHTOKEN_URL}\r\n\r\nERR_NGROK_4018\r\n"
        )
    elif not TOKEN_SHAPE.match(token):
        failure = (
            "authentication failed: The authtoken you specified does not look like a proper "
            f"ngrok authtoken.\nYour authtoken: {token}\nInstructions to install your authtoken "
            f"are on your ngrok dashboard:\n{AUTHTOKEN_URL}\r\n\r\nERR_NGROK_105\r\n"
        )
    if failure is not None:
        csess = {"obj": "csess", "id": session_id}
        log("eror", "failed to reconnect session", err=failure, **csess)
        log("eror", "session closing", obj="tunnels.session", err=failure)
        return 1

    log("info", "tunnel session started", obj="tunnels.session")
    log("info", "client session established", obj="csess", id=session_id)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    while True:
        time.sleep(3600)


def main(argv: list[str]) -> int:
    record = os.environ.get("FAKE_NGROK_RECORD")
    if record:
        with open(record, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"pid": os.getpid(), "argv": argv[1:]}) + "\n")
    args = argv[1:]
    if args[:1] in (["--version"], ["version"]):
        print(f"ngrok version {VERSION}")
        return 0
    if args[:2] == ["config", "add-authtoken"]:
        return add_authtoken(args)
    if args[:1] == ["start"]:
        return start(args)
    print(f"ERROR:  unknown command {' '.join(args)!r}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
