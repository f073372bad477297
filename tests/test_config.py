"""``mhw config`` and the precedence every command shares: flag > env > config file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from conftest import SECRET, Mhw
from mh_webhook_cli.config_file import load_config, set_value, webhook_secrets
from mh_webhook_cli.core.settings import API_KEY, WEBHOOK_SECRET, Source, clean_value, mask, resolve
from mh_webhook_cli.errors import InvalidValue, UsageError


def config_file(env: dict[str, str]) -> Path:
    return Path(env["MHW_CONFIG"])


def test_set_writes_a_0600_file_in_a_0700_directory(mhw: Mhw, isolated_env: dict[str, str]) -> None:
    result = mhw("config", "set", "webhook_secret", SECRET)
    assert result.code == 0
    path = config_file(isolated_env)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert json.loads(path.read_text()) == {"webhook_secret": SECRET}
    assert SECRET not in result.stdout + result.stderr
    assert "mhw_live_…cdef" in result.stderr


def test_set_keeps_mode_0600_under_a_permissive_umask(
    mhw: Mhw, isolated_env: dict[str, str]
) -> None:
    old = os.umask(0)
    try:
        mhw("config", "set", "api_key", "first-key-0123456789")
        mhw("config", "set", "api_key", "second-key-0123456789")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(config_file(isolated_env)).st_mode) == 0o600


def test_set_reads_the_value_from_stdin(mhw: Mhw, isolated_env: dict[str, str]) -> None:
    assert mhw("config", "set", "webhook_secret", input=SECRET + "\n").code == 0
    assert json.loads(config_file(isolated_env).read_text())["webhook_secret"] == SECRET


def test_get_masks_secrets_and_reports_unset(mhw: Mhw) -> None:
    assert mhw("config", "get", "webhook_secret").code == 1
    mhw("config", "set", "webhook_secret", SECRET)
    result = mhw("config", "get", "webhook-secret")
    assert (result.code, result.stdout.strip()) == (0, "mhw_live_…cdef")
    data = json.loads(mhw("config", "get", "webhook_secret", "-f", "json").stdout)
    assert data == {
        "key": "webhook_secret",
        "value": "mhw_live_…cdef",
        "source": "config",
        "env": "MAGIC_HOUR_WEBHOOK_SECRET",
        "secret": True,
    }


def test_non_secret_settings_are_shown_in_full(mhw: Mhw) -> None:
    mhw("config", "set", "api_base", "http://127.0.0.1:8788")
    assert mhw("config", "get", "api_base").stdout.strip() == "http://127.0.0.1:8788"


def test_unset_removes_the_value(mhw: Mhw, isolated_env: dict[str, str]) -> None:
    mhw("config", "set", "webhook_secret", SECRET)
    assert mhw("config", "unset", "webhook_secret").code == 0
    assert json.loads(config_file(isolated_env).read_text()) == {}
    assert "was not set" in mhw("config", "unset", "webhook_secret").stderr


def test_list_shows_value_and_source_of_every_setting(
    mhw: Mhw, isolated_env: dict[str, str], tmp_path: Path
) -> None:
    mhw("config", "set", "webhook_secret", SECRET)
    official = tmp_path / "magic-hour.json"
    official.write_text(json.dumps({"api_key": "mhk_live_abcdefghijklmnopqrstuvwxyz"}))
    env = {
        "NGROK_AUTHTOKEN": "2abcdefghijklmnopqrstuvwxyz_token",
        "MAGIC_HOUR_CONFIG": str(official),
    }
    listing = {
        item["key"]: item
        for item in json.loads(mhw("config", "list", "-f", "json", env=env).stdout)
    }
    assert listing["webhook_secret"]["source"] == "config"
    assert listing["api_key"]["source"] == "magic-hour-cli"
    assert listing["api_key"]["value"] == "mhk_live_…wxyz"
    assert listing["ngrok_authtoken"]["source"] == "env"
    assert listing["api_base"]["source"] == "unset"
    text = mhw("config", "list", env=env)
    assert "webhook_secret" in text.stdout and "magic-hour-cli" in text.stdout
    assert SECRET not in text.stdout and "abcdefghijklmnopqrstuvwxyz" not in text.stdout


def test_official_cli_config_defaults_to_its_home_path(
    mhw: Mhw, isolated_env: dict[str, str]
) -> None:
    official = Path(isolated_env["HOME"]) / ".config" / "magic-hour" / "config.json"
    official.parent.mkdir(parents=True)
    official.write_text(json.dumps({"api_key": "mhk_live_fromofficialcli0123456789"}))
    data = json.loads(mhw("config", "get", "api_key", "-f", "json").stdout)
    assert data["source"] == "magic-hour-cli"


def test_precedence_flag_over_env_over_config(mhw: Mhw, tmp_path: Path) -> None:
    body = tmp_path / "b.json"
    body.write_bytes(b"{}")

    def used_secret(*args: str, env: dict[str, str] | None = None) -> str:
        result = mhw("sign", str(body), "-t", "1", "-f", "json", *args, env=env)
        signature = json.loads(result.stdout)["signature"]
        from mh_webhook_cli import sign

        for name in ("flag-secret-value", "env-secret-value", "config-secret-value"):
            if sign(name, 1, b"{}") == signature:
                return name
        raise AssertionError("signed with an unexpected secret")

    mhw("config", "set", "webhook_secret", "config-secret-value")
    env = {"MAGIC_HOUR_WEBHOOK_SECRET": "env-secret-value"}
    assert used_secret() == "config-secret-value"
    assert used_secret(env=env) == "env-secret-value"
    assert used_secret("--secret", "flag-secret-value", env=env) == "flag-secret-value"
    assert used_secret(env={"MAGIC_HOUR_WEBHOOK_SECRET": ""}) == "config-secret-value"


def test_env_overriding_the_file_is_pointed_out(mhw: Mhw) -> None:
    result = mhw("config", "set", "webhook_secret", SECRET, env={"MAGIC_HOUR_WEBHOOK_SECRET": "x"})
    assert "takes precedence" in result.stderr


def test_resolve_order_for_the_api_key() -> None:
    official = {"api_key": "official"}
    assert (
        resolve(API_KEY, env={}, config={}, magic_hour_cli=official).source is Source.MAGIC_HOUR_CLI
    )
    assert resolve(API_KEY, env={}, config={"api_key": "c"}, magic_hour_cli=official).value == "c"
    assert resolve(API_KEY, env={"MAGIC_HOUR_API_KEY": "e"}, config={"api_key": "c"}).value == "e"
    assert (
        resolve(WEBHOOK_SECRET, env={}, config={}, magic_hour_cli={"webhook_secret": "no"}).source
        is Source.UNSET
    )


@pytest.mark.parametrize(
    ("secret", "masked"),
    [
        ("mhw_live_0123456789abcdef0123456789a1b2", "mhw_live_…a1b2"),
        ("sk_0123456789abcdef0123", "sk_…0123"),
        ("plainsecretwithoutprefix", "…efix"),
        ("short", "(hidden)"),
        ("dev-endpoint", "(hidden)"),
        ("0123456789abcdefghi", "(hidden)"),
        ("0123456789abcdefghij", "…ghij"),
        ("", ""),
        ("mhw_live_0123456789abcdef0123456789a1b\udcff", "mhw_live_…a1b\\udcff"),
    ],
)
def test_mask(secret: str, masked: str) -> None:
    assert mask(secret) == masked


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["config", "get", "password"], "unknown setting 'password'"),
        (["config", "set", "webhook_secret", "  "], "empty value"),
    ],
)
def test_config_usage_errors(mhw: Mhw, args: list[str], message: str) -> None:
    result = mhw(*args)
    assert result.code == 2 and message in result.stderr


def test_corrupt_config_file_is_one_clear_line(mhw: Mhw, isolated_env: dict[str, str]) -> None:
    path = config_file(isolated_env)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    result = mhw("config", "list")
    assert result.code == 2
    assert "is not valid JSON" in result.stderr and "fix or delete it" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_path(mhw: Mhw, isolated_env: dict[str, str]) -> None:
    assert mhw("config", "path").stdout.strip() == isolated_env["MHW_CONFIG"]


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"\xff\xfe\x00garbage", "not UTF-8"), (b'{"webhook_secret": 123}', "must be a string")],
)
def test_unreadable_config_contents_are_one_line(
    mhw: Mhw, isolated_env: dict[str, str], content: bytes, message: str
) -> None:
    path = config_file(isolated_env)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    result = mhw("config", "list")
    assert result.code == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("value", "cleaned", "warned"),
    [
        ("mhw_live_abc", "mhw_live_abc", False),
        ("mhw_live_abc\n", "mhw_live_abc", True),
        ("\t mhw_live_abc \r\n", "mhw_live_abc", True),
    ],
)
def test_clean_value_trims_and_says_so(value: str, cleaned: str, warned: bool) -> None:
    result, warning = clean_value(value, "webhook secret from --secret")
    assert result == cleaned
    assert (warning is not None) is warned
    assert warning is None or ("--secret" in warning and "mhw_live_abc" not in warning)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("mhw_live_abc\udcff", "not valid UTF-8"),
        ("  \n", "is empty"),
        ("mhw_live_\x00abc", "control characters"),
        ("mhw_live_\x1b[2Jabc", "control characters"),
    ],
)
def test_clean_value_refuses_without_showing_the_value(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        clean_value(value, "webhook secret from MAGIC_HOUR_WEBHOOK_SECRET")
    assert "MAGIC_HOUR_WEBHOOK_SECRET" in str(refused.value)
    assert "abc" not in str(refused.value)


@pytest.fixture
def no_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The library's view of a machine with no mhw settings: a config file of our own."""
    for name in (WEBHOOK_SECRET.env, API_KEY.env):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "mhw" / "config.json"
    monkeypatch.setenv("MHW_CONFIG", str(config))
    return config


def test_webhook_secrets_hand_their_warning_to_the_caller(
    no_settings: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The library prints nothing: a trimmed secret's warning goes to the callback."""
    warnings: list[str] = []
    assert webhook_secrets(None, warn=warnings.append, required=False) == []
    with pytest.raises(UsageError, match="no webhook secret"):
        webhook_secrets(None, warn=warnings.append)
    monkeypatch.setenv(WEBHOOK_SECRET.env, SECRET + "\n")
    assert webhook_secrets(None, warn=warnings.append) == [SECRET]
    assert webhook_secrets(["a", " b "], warn=warnings.append) == ["a", "b"]
    assert len(warnings) == 2
    assert "MAGIC_HOUR_WEBHOOK_SECRET" in warnings[0] and "--secret" in warnings[1]
    assert not any(SECRET in warning for warning in warnings)


def test_set_value_saves_nothing_it_refuses(no_settings: Path) -> None:
    warnings: list[str] = []
    assert set_value(WEBHOOK_SECRET, f" {SECRET} ", warn=warnings.append) == (SECRET, no_settings)
    assert load_config() == {WEBHOOK_SECRET.key: SECRET} and len(warnings) == 1
    with pytest.raises(InvalidValue, match=r"holds control characters.*; nothing saved$"):
        set_value(WEBHOOK_SECRET, "abc\x1b[2Jdef", warn=warnings.append)
    assert load_config() == {WEBHOOK_SECRET.key: SECRET}
