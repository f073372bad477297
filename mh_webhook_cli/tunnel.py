"""The public HTTPS URL behind ``mhw listen``: an ngrok tunnel opened through pyngrok.

Magic Hour only delivers to a public URL, so ``mhw listen`` can start the ngrok
agent itself. This module is the only place that touches pyngrok, and it keeps
pyngrok's habits away from mhw's output:

* pyngrok is imported inside the functions that need it (it costs about 0.2 s
  of start-up, which every other command would pay);
* its log records never reach the console (it logs every agent line, and
  Python prints warnings to stderr when nobody configured logging), and its
  download progress, which it writes to stdout, is turned into log lines: the
  agent's lines go to ``on_log``, for the listener to show on stderr or as JSON
  status events;
* every failure becomes one :class:`TunnelError` line that names the fix, with
  the agent's ``ERR_NGROK_*`` code when it gave one, and the authtoken masked
  wherever the agent echoed it.

Callbacks run on pyngrok's threads (the caller's thread while the agent starts,
its monitor thread afterwards): a listener running an event loop must hop back
onto it with ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from mh_webhook_cli.config_file import MAX_CONFIG_BYTES, effective
from mh_webhook_cli.core.hosts import reachable_host
from mh_webhook_cli.core.settings import NGROK_AUTHTOKEN, mask, redact
from mh_webhook_cli.errors import MhwError, TunnelError
from mh_webhook_cli.files import read_file

AUTHTOKEN_URL = "https://dashboard.ngrok.com/get-started/your-authtoken"
NGROK_PATH_ENV = "PYNGROK_NGROK_PATH"
AUTHTOKEN_ENV = "NGROK_AUTHTOKEN"
NGROK_CONFIG_ENV = "NGROK_CONFIG"
NO_AUTHTOKEN_FIX = (
    f"get one at {AUTHTOKEN_URL}, then `mhw config set ngrok_authtoken` or set NGROK_AUTHTOKEN"
)
NO_AUTHTOKEN = (
    "ngrok needs a verified account and an authtoken since 2023 (ERR_NGROK_4018): "
    + NO_AUTHTOKEN_FIX
)
INSTALL_FIX = (
    "install ngrok (https://ngrok.com/download) and pass --ngrok-path or set " + NGROK_PATH_ENV
)
DOMAIN_FIX = (
    "use a domain your account owns (every account has one free static domain: "
    "https://dashboard.ngrok.com/domains), with that account's authtoken"
)
# What to do about the agent errors a developer meets first; others link to ngrok's page.
FIXES = {
    "ERR_NGROK_4018": NO_AUTHTOKEN_FIX,
    "ERR_NGROK_105": f"copy the authtoken again from {AUTHTOKEN_URL}",
    "ERR_NGROK_107": f"copy the authtoken again from {AUTHTOKEN_URL}",
    "ERR_NGROK_108": "another ngrok agent runs on this account: stop it "
    "(https://dashboard.ngrok.com/agents)",
    "ERR_NGROK_319": DOMAIN_FIX,
    "ERR_NGROK_320": DOMAIN_FIX,
    "ERR_NGROK_334": "that URL is already online from another ngrok agent: stop that agent first",
}
# The agent's messages when its session to ngrok's cloud drops, and when it is back.
SESSION_LOST = frozenset({"session closed, starting reconnect loop", "failed to reconnect session"})
SESSION_ESTABLISHED = "client session established"
RECONNECTING = "reconnecting"
CONNECTED = "connected"
STOPPED = "stopped"

LogCallback = Callable[[str, str], None]
"""``(level, line)``: level is ``debug``/``info``/``warning``/``error``/``critical``."""
StateCallback = Callable[[str, str], None]
"""``(state, detail)``: ``reconnecting`` (detail: why), ``connected``, ``stopped``."""


@dataclass(frozen=True)
class TunnelRequest:
    """A public URL to open through ngrok once the listener is bound."""

    authtoken: str
    required: bool
    """Asked for with --tunnel: a failure stops mhw. Otherwise a failure only warns."""
    domain: str | None = None
    region: str | None = None
    ngrok_path: str | None = None


def plan_tunnel(
    asked: bool | None,
    authtoken_flag: str | None,
    domain: str | None,
    region: str | None,
    ngrok_path: str | None,
) -> TunnelRequest | None:
    """The tunnel to open: asked for (``--tunnel``), refused (``--no-tunnel``), or on by
    default because an authtoken is known. None when there is none to open; asked for
    (or a ``--domain`` given) without a token is a :class:`~mh_webhook_cli.errors.TunnelError`.
    """
    if asked is False:
        return None
    token = authtoken_source(authtoken_flag)
    if token.value is None:
        if asked or domain:
            raise TunnelError(NO_AUTHTOKEN)
        return None
    return TunnelRequest(token.value, bool(asked or domain), domain, region, ngrok_path)


@dataclass(frozen=True)
class AuthToken:
    """The ngrok authtoken to use and where it came from (shown masked, never in full)."""

    value: str | None
    source: str
    """``flag``, ``env``, ``config`` (mhw's), ``ngrok-config`` or ``unset``."""
    origin: str
    """Where, for people: ``--ngrok-authtoken``, ``NGROK_AUTHTOKEN``, a file path..."""

    @property
    def display(self) -> str:
        return mask(self.value) if self.value else ""


def authtoken_source(flag: str | None = None) -> AuthToken:
    """The authtoken by precedence: flag > NGROK_AUTHTOKEN > mhw's config > ngrok's config.

    ngrok's own config file comes last so that someone who ran ``ngrok config
    add-authtoken`` once needs no second set-up, while mhw's settings still win.
    """
    resolved = effective(NGROK_AUTHTOKEN, flag)
    if resolved.value is not None:
        origins = {"flag": NGROK_AUTHTOKEN.flag, "env": NGROK_AUTHTOKEN.env}
        source = resolved.source.value
        return AuthToken(resolved.value, source, origins.get(source, "mhw config"))
    for path in reversed(ngrok_config_paths()):  # ngrok merges its files: the last one wins
        token = read_ngrok_authtoken(path)
        if token:
            return AuthToken(token, "ngrok-config", str(path))
    return AuthToken(None, "unset", "")


def ngrok_config_paths(env: Mapping[str, str] | None = None) -> list[Path]:
    """Where the ngrok agent reads its config: ``$NGROK_CONFIG`` (comma-separated, like
    ``--config``), else its default file for this system."""
    env = os.environ if env is None else env
    if env.get(NGROK_CONFIG_ENV):
        return [Path(part).expanduser() for part in env[NGROK_CONFIG_ENV].split(",") if part]
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    elif sys.platform == "win32":
        base = Path(env.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return [base / "ngrok" / "ngrok.yml"]


def read_ngrok_authtoken(path: Path) -> str | None:
    """``authtoken`` at the top of an ngrok config (v2) or under ``agent:`` (v3).

    A few lines of parsing instead of a YAML library: the key is always a plain
    scalar written by ``ngrok config add-authtoken``, and importing PyYAML would
    cost every ``mhw listen`` start-up about 40 ms. An unreadable file counts as
    having no token: it is ngrok's file, and the agent will say what is wrong.
    """
    try:  # NGROK_CONFIG may name /dev/zero or a FIFO: refused by type, not waited on or read
        raw = read_file(path, f"ngrok config {path}", MAX_CONFIG_BYTES, regular_only=True)
        lines = raw.decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError, MhwError):
        return None
    token = None
    section = ""
    for line in lines:
        content = line.split(" #", 1)[0].rstrip()
        if not content.strip() or content.lstrip().startswith("#"):
            continue
        indented = content[0].isspace()
        key, _, value = content.strip().partition(":")
        if not indented:
            section = key
        if key == "authtoken" and (not indented or section == "agent"):
            token = value.strip().strip("'\"") or token
    return token


class Tunnel:
    """An open tunnel: ``public_url`` forwards to the local port until :meth:`close`."""

    def __init__(self, public_url: str, pyngrok_config: Any, agent_log: _AgentLog) -> None:
        self.public_url = public_url
        self._config = pyngrok_config
        self._agent_log = agent_log

    def close(self) -> None:
        """Stop the agent and wait for it: no ngrok process outlives the listener."""
        from pyngrok import ngrok

        self._agent_log.closing = True  # our own stop is not news for on_state
        ngrok.kill(self._config)

    def __enter__(self) -> Tunnel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def open_tunnel(
    port: int,
    *,
    authtoken: str | None,
    host: str = "127.0.0.1",
    domain: str | None = None,
    region: str | None = None,
    ngrok_path: str | None = None,
    config_path: str | None = None,
    on_log: LogCallback | None = None,
    on_state: StateCallback | None = None,
    startup_timeout: int = 15,
) -> Tunnel:
    """Start the ngrok agent and open an HTTP endpoint to ``host:port``.

    ``ngrok_path`` (else ``$PYNGROK_NGROK_PATH``) names an installed agent and
    must exist; without either, pyngrok's usual place is used and ngrok is
    downloaded there when missing. ``config_path`` is ngrok's config file
    (default: ngrok's own). ``domain`` asks for that static domain.
    """
    if not authtoken:
        raise TunnelError(NO_AUTHTOKEN)
    from pyngrok import conf, ngrok
    from pyngrok.exception import PyngrokError

    _silence_pyngrok_logging()
    path = _agent_path(ngrok_path, on_log)
    agent_log = _AgentLog(authtoken, on_log, on_state)
    os.environ[AUTHTOKEN_ENV] = authtoken
    pyngrok_config = conf.PyngrokConfig(
        ngrok_path=path,
        config_path=config_path,
        region=region,
        # The monitor thread drains the agent's stdout: without it the pipe fills
        # and the agent blocks. It also feeds on_log and the reconnect states.
        monitor_thread=True,
        log_event_callback=agent_log,
        startup_timeout=startup_timeout,
        ngrok_version="3",
        config_version="3",
    )
    # pyngrok would put the token on the agent's command line (its auth_token, which it
    # also fills from NGROK_AUTHTOKEN), where any user of the machine can read it with ps.
    # The agent reads NGROK_AUTHTOKEN from its environment, which only its owner can see.
    pyngrok_config.auth_token = None
    options = {"url": f"https://{domain}"} if domain else {}
    try:
        endpoint = ngrok.connect(
            f"http://{reachable_host(host)}:{port}",
            "http",
            # pyngrok would derive a name from the address, slashes included.
            name=f"mhw-listen-{port}",
            pyngrok_config=pyngrok_config,
            **options,
        )
        agent = ngrok.get_ngrok_process(pyngrok_config)
    except (PyngrokError, OSError) as error:
        ngrok.kill(pyngrok_config)
        raise TunnelError(_failure(error, path, domain, authtoken)) from None
    agent_log.live = True
    threading.Thread(target=agent_log.watch, args=(agent.proc,), daemon=True).start()
    return Tunnel(str(endpoint.public_url), pyngrok_config, agent_log)


class _AgentLog:
    """pyngrok's ``log_event_callback``: masks the token, forwards lines, tracks the session."""

    def __init__(
        self, authtoken: str, on_log: LogCallback | None, on_state: StateCallback | None
    ) -> None:
        self.authtoken = authtoken
        self.on_log = on_log
        self.on_state = on_state
        self.live = False
        """Set once the tunnel is open: failures while starting are open_tunnel's to report."""
        self.closing = False
        self.reconnecting = False

    def __call__(self, log: Any) -> None:
        if self.on_log is not None:
            level = "info" if log.lvl == "NOTSET" else str(log.lvl).lower()
            self._call(self.on_log, level, redact(log.line, self.authtoken))
        if not self.live:
            return
        if log.msg in SESSION_LOST and not self.reconnecting:
            self.reconnecting = True
            self._state(RECONNECTING, _detail(log.err or log.msg, self.authtoken))
        elif log.msg == SESSION_ESTABLISHED and self.reconnecting:
            self.reconnecting = False
            self._state(CONNECTED, "")

    def watch(self, agent: Any) -> None:
        """Runs on its own thread: an agent that exits while nobody closes it is news."""
        code = agent.wait()
        if not self.closing:
            self._state(STOPPED, f"the ngrok agent exited with code {code}")

    def _state(self, state: str, detail: str) -> None:
        if self.on_state is not None:
            self._call(self.on_state, state, detail)

    @staticmethod
    def _call(callback: Callable[[str, str], None], first: str, second: str) -> None:
        # An exception here would kill pyngrok's monitor thread; nobody would drain
        # the agent's stdout any more and the agent would hang once the pipe fills.
        with contextlib.suppress(Exception):
            callback(first, second)


class _ProgressToLog(io.StringIO):
    """Stands in for stdout while pyngrok downloads ngrok: progress becomes log lines."""

    def __init__(self, on_log: LogCallback | None) -> None:
        super().__init__()
        self.on_log = on_log

    def write(self, text: str) -> int:
        for part in re.split(r"[\r\n]", text):
            if part.strip() and self.on_log is not None:
                self.on_log("info", part.strip())
        return len(text)


def _agent_path(ngrok_path: str | None, on_log: LogCallback | None) -> str:
    """The agent to run; downloaded by pyngrok's installer only to pyngrok's default place.

    A path the user named that holds nothing is a typo or a missing install, not
    a request to download a binary there.
    """
    from pyngrok import installer
    from pyngrok.exception import PyngrokError

    named = ngrok_path or os.environ.get(NGROK_PATH_ENV)
    if named:
        if not os.path.exists(named):
            raise TunnelError(f"no ngrok agent at {named}: {INSTALL_FIX}")
        return named
    # Computed now rather than pyngrok's import-time constant, so HOME and
    # XDG_CONFIG_HOME are read when the tunnel opens.
    path = os.path.join(installer.get_default_ngrok_dir(), installer.get_ngrok_bin())
    if not os.path.exists(path):
        try:
            # redirect_stdout is process-wide: safe here because the listener
            # prints nothing before its tunnel is open.
            with contextlib.redirect_stdout(_ProgressToLog(on_log)):
                installer.install_ngrok(path, ngrok_version="3")
        except (PyngrokError, OSError) as error:
            raise TunnelError(
                f"could not download ngrok ({_cause(error)}): {INSTALL_FIX}"
            ) from None
    return path


def _silence_pyngrok_logging() -> None:
    """Keep pyngrok's records off the console: the agent's lines reach us via on_log."""
    logger = logging.getLogger("pyngrok")
    logger.propagate = False
    if not any(isinstance(handler, logging.NullHandler) for handler in logger.handlers):
        logger.addHandler(logging.NullHandler())


def _failure(error: BaseException, path: str, domain: str | None, authtoken: str) -> str:
    """One line for a failed start: what ngrok said, its code, and the fix."""
    from pyngrok.exception import PyngrokNgrokError, PyngrokNgrokHTTPError

    if isinstance(error, OSError):
        return f"cannot run the ngrok agent at {path} ({error.strerror or error}): {INSTALL_FIX}"
    what = f"ngrok could not open https://{domain}" if domain else "ngrok could not start"
    text = str(error)
    if isinstance(error, PyngrokNgrokHTTPError):
        text = _api_error_text(error.body) or text
    elif isinstance(error, PyngrokNgrokError):
        if error.ngrok_error:
            text = error.ngrok_error
        elif error.ngrok_logs:
            text = f"{text} Its last line: {error.ngrok_logs[-1].line}"
    code_match = re.search(r"ERR_NGROK_\d+", text)
    detail = _detail(text, authtoken)
    if code_match is None:
        return f"{what}: {detail}"
    code = code_match.group(0)
    fix = FIXES.get(code, f"see https://ngrok.com/docs/errors/{code.lower()}")
    return f"{what}: {detail} ({code}); {fix}"


def _api_error_text(body: str) -> str | None:
    """``details.err`` (else ``msg``) from the agent API's JSON error answer."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    details = data.get("details")
    err = details.get("err") if isinstance(details, dict) else None
    message = err or data.get("msg")
    return str(message) if message else None


def _detail(text: str, authtoken: str) -> str:
    """The first sentence of an agent message, without its code, prefixes or the token.

    The agent's messages span lines (sign-up links, the token it rejected, the
    code); its log lines carry them with ``\\r\\n`` escaped, its API unescaped.
    """
    text = text.replace("\\r", "\n").replace("\\n", "\n").replace("\r", "\n")
    text = re.sub(r"ERR_NGROK_\d+", "", text)
    first = next((line.strip() for line in text.split("\n") if line.strip()), "")
    for prefix in ("authentication failed: ", "failed to start tunnel: "):
        first = first.removeprefix(prefix)
    # The agent echoes a rejected token in full (ERR_NGROK_105).
    return redact(first.rstrip(". "), authtoken)


def _cause(error: BaseException) -> str:
    """Why a download failed, in a few words: the network error under pyngrok's wrapper."""
    seen: BaseException | None = error
    while seen is not None:
        reason = getattr(seen, "reason", None)
        if reason is not None:
            return str(getattr(reason, "strerror", None) or reason)
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    return str(error).splitlines()[0] if str(error) else type(error).__name__
