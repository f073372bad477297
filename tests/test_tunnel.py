"""The ngrok tunnel, through pyngrok itself, against a stand-in agent on real loopback sockets.

Nothing of mhw's or pyngrok's is replaced: pyngrok starts ``tests/fake_ngrok.py``
as the agent at ``ngrok_path`` and talks to it over its local API, exactly as it
does with the real binary (see that file for what it fakes and how).
"""

from __future__ import annotations

import http.server
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import wait_for
from mh_webhook_cli.config_file import save_config
from mh_webhook_cli.core.settings import mask
from mh_webhook_cli.errors import TunnelError
from mh_webhook_cli.tunnel import (
    DOMAIN_FIX,
    INSTALL_FIX,
    NO_AUTHTOKEN,
    AuthToken,
    TunnelRequest,
    authtoken_source,
    open_tunnel,
    plan_tunnel,
)

FAKE_AGENT = Path(__file__).with_name("fake_ngrok.py")
TOKEN = "2abcdefghijklmnopqrsTU_3vwxyzABCDEFGHIJKLmn"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class Agent:
    """The fake agent as pyngrok sees it, and what it recorded about its runs."""

    path: Path
    config: Path
    record: Path

    def runs(self) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines()]

    def open(self, port: int, **options: Any) -> Any:
        options.setdefault("authtoken", TOKEN)
        return open_tunnel(port, ngrok_path=str(self.path), config_path=str(self.config), **options)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No ngrok or mhw settings from the developer's machine."""
    for name in ("NGROK_AUTHTOKEN", "NGROK_CONFIG", "PYNGROK_NGROK_PATH", "NGROK_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("MHW_CONFIG", str(tmp_path / "mhw" / "config.json"))
    return home


@pytest.fixture
def agent(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Agent]:
    """``ngrok`` in tmp_path: runs the fake agent with this venv's interpreter."""
    launcher = tmp_path / "bin" / "ngrok"
    launcher.parent.mkdir()
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_AGENT}" "$@"\n')
    launcher.chmod(0o755)
    record = tmp_path / "agent-runs.jsonl"
    monkeypatch.setenv("FAKE_NGROK_RECORD", str(record))
    fake = Agent(launcher, tmp_path / "ngrok" / "ngrok.yml", record)
    yield fake
    from pyngrok import process

    process.kill_process(str(launcher))  # a failed test must not leak an agent into the next


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Upstream:
    """The local HTTP server the tunnel forwards to, recording what reaches it."""

    port: int
    received: list[Received] = field(default_factory=list)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    state = Upstream(0)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append(Received(self.path, dict(self.headers.items()), body))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test asserts on what arrived, not on access logs."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_port
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def test_a_post_to_the_public_url_arrives_byte_for_byte_and_close_stops_the_agent(
    agent: Agent, upstream: Upstream
) -> None:
    body = b'{"type":"video.completed","payload":{"id":"\xc3\xa9t\xc3\xa9"}}\r\n\x00tail'
    with agent.open(upstream.port, region="eu") as tunnel:
        response = httpx.post(
            f"{tunnel.public_url}/webhooks/magic-hour?x=1",
            content=body,
            headers={"magic-hour-event-signature": "abc", "content-type": "application/json"},
            timeout=5,
        )
        assert response.status_code == 200
        assert response.content == b"ok"
        (run,) = agent.runs()
        assert alive(run["pid"])
    [received] = upstream.received
    assert received.body == body
    assert received.path == "/webhooks/magic-hour?x=1"
    assert received.headers["magic-hour-event-signature"] == "abc"
    # The command line pyngrok starts the agent with: the region, but never the token,
    # which anyone could read with ps (the agent gets it in its environment).
    assert run["argv"] == [
        "start",
        "--none",
        "--log",
        "stdout",
        "--config",
        str(agent.config),
        "--region",
        "eu",
    ]
    assert not alive(run["pid"])
    with pytest.raises(httpx.ConnectError):
        httpx.post(tunnel.public_url, content=b"{}", timeout=2)


def test_without_a_token_no_agent_starts_and_the_message_names_the_fix(agent: Agent) -> None:
    with pytest.raises(TunnelError) as caught:
        agent.open(8080, authtoken=None)
    assert str(caught.value) == NO_AUTHTOKEN
    assert "ERR_NGROK_4018" in NO_AUTHTOKEN
    assert "mhw config set ngrok_authtoken" in NO_AUTHTOKEN
    assert "NGROK_AUTHTOKEN" in NO_AUTHTOKEN
    assert agent.runs() == []


def test_a_rejected_token_gives_the_agent_code_and_never_shows_the_token(agent: Agent) -> None:
    token = "not-a-real-ngrok-token-1234"
    lines: list[tuple[str, str]] = []
    with pytest.raises(TunnelError) as caught:
        agent.open(8080, authtoken=token, on_log=lambda level, line: lines.append((level, line)))
    message = str(caught.value)
    assert message == (
        "ngrok could not start: The authtoken you specified does not look like a proper ngrok "
        "authtoken (ERR_NGROK_105); copy the authtoken again from "
        "https://dashboard.ngrok.com/get-started/your-authtoken"
    )
    assert "\n" not in message
    assert ("error", lines[-1][1]) == lines[-1]
    assert any(f"Your authtoken: {mask(token)}" in line for _, line in lines)
    assert not any(token in line for _, line in lines)
    (run,) = agent.runs()
    assert not alive(run["pid"])


def test_a_domain_of_another_account_is_refused_with_its_code_and_the_agent_stops(
    agent: Agent, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NGROK_FOREIGN_DOMAINS", "someone-else.ngrok.app")
    with pytest.raises(TunnelError) as caught:
        agent.open(upstream.port, domain="someone-else.ngrok.app")
    assert str(caught.value) == (
        "ngrok could not open https://someone-else.ngrok.app: This domain is reserved for "
        f"another account (ERR_NGROK_320); {DOMAIN_FIX}"
    )
    (run,) = agent.runs()
    wait_for(lambda: not alive(run["pid"]), what="the agent to stop")


def test_a_static_domain_is_asked_for_and_becomes_the_public_url(
    agent: Agent, upstream: Upstream
) -> None:
    with agent.open(upstream.port, domain="my-own.ngrok-free.app") as tunnel:
        assert tunnel.public_url == "https://my-own.ngrok-free.app"


@pytest.mark.parametrize("via", ["argument", "environment"])
def test_a_named_agent_that_does_not_exist_is_not_downloaded(
    via: str, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere" / "ngrok"
    if via == "environment":
        monkeypatch.setenv("PYNGROK_NGROK_PATH", str(missing))
    with pytest.raises(TunnelError) as caught:
        open_tunnel(8080, authtoken=TOKEN, ngrok_path=str(missing) if via == "argument" else None)
    assert str(caught.value) == f"no ngrok agent at {missing}: {INSTALL_FIX}"
    assert not missing.parent.exists()


DOWNLOAD_SCRIPT = """
import sys
from mh_webhook_cli.errors import TunnelError
from mh_webhook_cli.tunnel import open_tunnel

def log(level, line):
    print(f"log {level}: {line}", file=sys.stderr)

try:
    open_tunnel(8080, authtoken=sys.argv[1], on_log=log)
except TunnelError as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(3)
"""


def test_a_failed_download_is_one_line_with_the_fix_and_nothing_on_stdout(
    tmp_path: Path, home: Path
) -> None:
    """pyngrok's own installer runs (no agent at its default place) behind a dead proxy.

    A separate process, because urllib builds its proxy settings once per process.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    proxy = f"http://127.0.0.1:{dead_port}"
    env = {**os.environ, "HTTPS_PROXY": proxy, "https_proxy": proxy, "NO_PROXY": "", "no_proxy": ""}
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-c", DOWNLOAD_SCRIPT, TOKEN],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert time.monotonic() - started < 15
    assert completed.returncode == 3, completed.stderr
    assert completed.stdout == ""
    lines = completed.stderr.splitlines()
    assert lines == [
        "log info: Downloading ngrok ...",
        f"error: could not download ngrok (Connection refused): {INSTALL_FIX}",
    ]
    assert not (home / ".config" / "ngrok" / "ngrok").exists()


def test_the_token_comes_from_flag_then_env_then_mhw_config_then_ngrok_config(
    agent: Agent, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyngrok import conf, ngrok

    assert authtoken_source() == AuthToken(None, "unset", "")
    # ngrok's own config, as `ngrok config add-authtoken` writes it (pyngrok driving the agent).
    ngrok_config = home / ".config" / "ngrok" / "ngrok.yml"
    ngrok_token = "1ngrokConfigTokenAAAA_BBBBBBBBBBBBBBBBngrk"
    pyngrok_config = conf.PyngrokConfig(ngrok_path=str(agent.path), config_path=str(ngrok_config))
    ngrok.set_auth_token(ngrok_token, pyngrok_config)
    assert ngrok.get_version(pyngrok_config)[0] == "3.22.1"
    found = authtoken_source()
    assert found == AuthToken(ngrok_token, "ngrok-config", str(ngrok_config))
    assert found.display == "…ngrk"

    save_config({"ngrok_authtoken": "mhwConfigTokenAAAAAAAA_BBBBBBBBBBBBBBBBmhwc"})
    assert authtoken_source().source == "config"
    assert authtoken_source().origin == "mhw config"
    assert authtoken_source().display == "…mhwc"

    monkeypatch.setenv("NGROK_AUTHTOKEN", "envTokenAAAAAAAAAAAAAAAA_BBBBBBBBBBBBBBBBenvv")
    assert (authtoken_source().source, authtoken_source().origin) == ("env", "NGROK_AUTHTOKEN")

    flagged = authtoken_source("flagTokenAAAAAAAAAAAAAAA_BBBBBBBBBBBBBBBBflag")
    assert (flagged.source, flagged.origin, flagged.display) == (
        "flag",
        "--ngrok-authtoken",
        "…flag",
    )


@pytest.mark.parametrize(
    "text",
    [
        "version: 2\nauthtoken: TOKEN\nregion: eu\n",
        'version: "3"\nagent:\n    region: eu  # comment\n    authtoken: "TOKEN"\nendpoints: []\n',
    ],
    ids=["v2-top-level", "v3-agent-block"],
)
def test_ngrok_config_files_of_both_versions_and_ngrok_config_env_are_read(
    text: str, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ngrok merges the files given to it: the last one with a token wins."""
    first = tmp_path / "first.yml"
    first.write_text(text.replace("TOKEN", "firstTokenAAAAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBB"))
    elsewhere = tmp_path / "elsewhere.yml"
    elsewhere.write_text(text.replace("TOKEN", "elsewhereTokenAAAAAAAA_BBBBBBBBBBBBBBBBBBBB"))
    monkeypatch.setenv("NGROK_CONFIG", f"{first},{tmp_path / 'absent.yml'},{elsewhere}")
    found = authtoken_source()
    assert found == AuthToken(
        "elsewhereTokenAAAAAAAA_BBBBBBBBBBBBBBBBBBBB", "ngrok-config", str(elsewhere)
    )


def test_a_token_under_another_section_is_not_the_agent_token(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "ngrok.yml"
    config.write_text('version: "3"\nendpoints:\n  - name: x\n    authtoken: notTheAgentToken\n')
    monkeypatch.setenv("NGROK_CONFIG", str(config))
    assert authtoken_source().source == "unset"


def test_a_dropped_session_is_reported_and_so_is_its_return(
    agent: Agent, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NGROK_DROP_AFTER", "0.2")
    states: list[tuple[str, str]] = []
    with agent.open(upstream.port, on_state=lambda *state: states.append(state)) as tunnel:
        wait_for(lambda: len(states) >= 2, what="the session to drop and come back")
        assert states == [("reconnecting", "read EOF from remote peer"), ("connected", "")]
        response = httpx.post(tunnel.public_url, content=b"after", timeout=5)
        assert response.status_code == 200
    assert upstream.received[-1].body == b"after"


def test_an_agent_that_dies_while_listening_is_reported_and_close_still_works(
    agent: Agent, upstream: Upstream
) -> None:
    states: list[tuple[str, str]] = []
    tunnel = agent.open(upstream.port, on_state=lambda *state: states.append(state))
    (run,) = agent.runs()
    os.kill(run["pid"], signal.SIGKILL)
    wait_for(lambda: states, what="the stopped state")
    assert states == [("stopped", "the ngrok agent exited with code -9")]
    tunnel.close()
    assert states == [("stopped", "the ngrok agent exited with code -9")]


def test_closing_is_not_reported_as_the_agent_stopping(agent: Agent, upstream: Upstream) -> None:
    states: list[tuple[str, str]] = []
    tunnel = agent.open(upstream.port, on_state=lambda *state: states.append(state))
    (run,) = agent.runs()
    tunnel.close()
    assert not alive(run["pid"])
    assert states == []


def test_pyngrok_output_never_reaches_the_console(
    agent: Agent, upstream: Upstream, capfd: pytest.CaptureFixture[str]
) -> None:
    """Even when the application logs everything to stdout, pyngrok's records stay out."""
    handler = logging.StreamHandler(sys.stdout)
    root = logging.getLogger()
    root.addHandler(handler)
    previous_level = root.level
    root.setLevel(logging.DEBUG)
    lines: list[tuple[str, str]] = []
    try:
        with agent.open(upstream.port, on_log=lambda *line: lines.append(line)):
            pass
        with pytest.raises(TunnelError):
            agent.open(upstream.port, authtoken="not-a-real-ngrok-token-1234")
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
    captured = capfd.readouterr()
    assert (captured.out, captured.err) == ("", "")
    assert any("client session established" in line for _, line in lines)


def test_a_wildcard_bind_is_reached_on_loopback(agent: Agent, upstream: Upstream) -> None:
    lines: list[str] = []
    wildcard = "0.0.0.0"  # noqa: S104 - the listener's bind address, translated, not bound here
    with agent.open(upstream.port, host=wildcard, on_log=lambda _, line: lines.append(line)):
        pass
    started = [line for line in lines if 'msg="started tunnel"' in line]
    assert len(started) == 1
    assert f"addr=http://127.0.0.1:{upstream.port} " in started[0]


def test_an_agent_that_cannot_be_run_is_one_line_with_the_fix(tmp_path: Path, home: Path) -> None:
    not_executable = tmp_path / "ngrok"
    not_executable.write_text("not a program\n")
    with pytest.raises(TunnelError) as caught:
        open_tunnel(
            8080,
            authtoken=TOKEN,
            ngrok_path=str(not_executable),
            config_path=str(tmp_path / "ngrok.yml"),
        )
    assert str(caught.value) == (
        f"cannot run the ngrok agent at {not_executable} (Permission denied): {INSTALL_FIX}"
    )


def test_plan_tunnel_follows_the_flag_then_the_token(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--no-tunnel wins; without a token there is no tunnel unless one was asked for, which
    is then an error; with a token, one opens by default, required only when asked for."""
    assert plan_tunnel(None, None, None, None, None) is None
    with pytest.raises(TunnelError, match="ERR_NGROK_4018"):
        plan_tunnel(True, None, None, None, None)
    with pytest.raises(TunnelError, match="ERR_NGROK_4018"):
        plan_tunnel(None, None, "me.ngrok.app", None, None)
    monkeypatch.setenv("NGROK_AUTHTOKEN", TOKEN)
    assert plan_tunnel(False, None, "me.ngrok.app", None, None) is None
    assert plan_tunnel(None, None, None, "eu", None) == TunnelRequest(TOKEN, False, None, "eu")
    assert plan_tunnel(True, None, None, None, "/bin/ngrok") == TunnelRequest(
        TOKEN, True, ngrok_path="/bin/ngrok"
    )
    assert plan_tunnel(None, "flag-token", "me.ngrok.app", None, None) == TunnelRequest(
        "flag-token", True, "me.ngrok.app"
    )
