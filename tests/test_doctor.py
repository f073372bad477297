"""``mhw doctor`` as a user runs it, against a scripted API and real listeners."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_api import ACCOUNT, FakeApi, Reply, fake_api

from conftest import SECRET, Mhw, Result, wait_for

KEY = "mhk_live_0123456789abcdefghijklmnopqrstuv"
NGROK_TOKEN = "2abcDEFghiJKLmnoPQRstuVWXyz_1234567890abcdefghij"


@pytest.fixture
def api() -> Iterator[FakeApi]:
    with fake_api() as server:
        server.script("GET", "/v1/account", Reply(200, ACCOUNT))
        yield server


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Settings for a developer who has everything; tests take away what they test."""
    return {
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "MAGIC_HOUR_API_KEY": KEY,
        "MAGIC_HOUR_WEBHOOK_SECRET": SECRET,
        "NGROK_AUTHTOKEN": NGROK_TOKEN,
    }


def doctor(mhw: Mhw, api: FakeApi, env: dict[str, str], *args: str) -> Result:
    result = mhw("doctor", "--api-base", api.url, *args, env=env)
    for secret in (KEY, SECRET, NGROK_TOKEN):
        assert secret not in result.stdout + result.stderr
    return result


def checks(result: Result) -> dict[str, list[dict[str, Any]]]:
    """The JSON report's checks by name (a name repeats for several listeners)."""
    report = json.loads(result.stdout)
    assert set(report) == {"ok", "checks"}
    assert report["ok"] is (result.code == 0)
    found: dict[str, list[dict[str, Any]]] = {}
    for check in report["checks"]:
        assert set(check) == {"name", "status", "detail", "fix"}
        assert check["status"] in ("ok", "warn", "fail")
        found.setdefault(check["name"], []).append(check)
    return found


def test_all_set_passes_and_shows_the_account(mhw: Mhw, api: FakeApi, env: dict[str, str]) -> None:
    result = doctor(mhw, api, env, "--format", "json")
    assert result.code == 0, result.stderr
    found = checks(result)
    assert list(found) == ["api_key", "webhook_secret", "ngrok_authtoken", "listener"]
    [key] = found["api_key"]
    assert key["status"] == "ok"
    assert "mhk_live_…stuv from MAGIC_HOUR_API_KEY" in key["detail"]
    assert "dev@example.com" in key["detail"] and "1,234 credits" in key["detail"]
    assert found["webhook_secret"][0]["status"] == "ok"
    assert found["ngrok_authtoken"][0]["status"] == "ok"
    assert found["listener"] == [
        {
            "name": "listener",
            "status": "warn",
            "detail": "none running",
            "fix": "start one with 'mhw listen'",
        }
    ]
    [request] = api.requests
    assert request.headers["authorization"] == f"Bearer {KEY}"


def test_text_report_has_one_line_per_check_and_fixes(
    mhw: Mhw, api: FakeApi, env: dict[str, str]
) -> None:
    del env["NGROK_AUTHTOKEN"]
    result = doctor(mhw, api, env)
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("✓  api_key") and "dev@example.com" in lines[0]
    assert lines[1].startswith("✓  webhook_secret")
    assert lines[2].startswith("!  ngrok_authtoken  not set")
    assert lines[3].startswith("  → ") and "mhw config set ngrok_authtoken" in lines[3]
    assert lines[-1] == "✓ ready, with 2 warnings"


def test_a_rejected_key_fails_with_one_line(mhw: Mhw, api: FakeApi, env: dict[str, str]) -> None:
    api.script("GET", "/v1/account", Reply(401, {"message": "Invalid API key"}))
    result = doctor(mhw, api, env, "--format", "json")
    assert result.code == 1
    [key] = checks(result)["api_key"]
    assert key["status"] == "fail"
    assert "\n" not in key["detail"]
    assert "rejected the API key mhk_live_…stuv (401: Invalid API key)" in key["detail"]
    text = doctor(mhw, api, env)
    assert text.code == 1 and text.stdout.splitlines()[-1].startswith("✗ 1 failed")


def test_no_key_is_a_warning_without_calling_the_api(
    mhw: Mhw, api: FakeApi, env: dict[str, str]
) -> None:
    """Only trigger needs a key: a fresh machine passes doctor without one (exit 0)."""
    del env["MAGIC_HOUR_API_KEY"]
    result = doctor(mhw, api, env, "--format", "json")
    assert result.code == 0
    [key] = checks(result)["api_key"]
    assert (key["status"], key["detail"]) == (
        "warn",
        "not set: only mhw trigger needs one (to start real jobs)",
    )
    assert "mhw config set api_key" in key["fix"]
    assert api.requests == []


def test_a_key_from_the_flag_or_the_magic_hour_cli(
    mhw: Mhw, api: FakeApi, env: dict[str, str], tmp_path: Path
) -> None:
    del env["MAGIC_HOUR_API_KEY"]
    official = tmp_path / "magic-hour.json"
    official.write_text(json.dumps({"api_key": KEY}))
    env["MAGIC_HOUR_CONFIG"] = str(official)
    [key] = checks(doctor(mhw, api, env, "--format", "json"))["api_key"]
    assert f"from the Magic Hour CLI's config ({official})" in key["detail"]
    other = "mhk_live_zyxwvutsrqponmlkjihgfedcba9876"
    [key] = checks(doctor(mhw, api, env, "--format", "json", "--api-key", other))["api_key"]
    assert "mhk_live_…9876 from --api-key" in key["detail"]
    assert [r.headers["authorization"] for r in api.requests] == [
        f"Bearer {KEY}",
        f"Bearer {other}",
    ]


def test_an_unreachable_api_fails_naming_it(mhw: Mhw, env: dict[str, str]) -> None:
    with fake_api() as gone:
        url = gone.url
    result = mhw("doctor", "--api-base", url, "--format", "json", env=env)
    assert result.code == 1
    [key] = checks(result)["api_key"]
    assert f"cannot reach the Magic Hour API at {url}" in key["detail"]


def test_missing_secret_fails_and_an_odd_one_warns(
    mhw: Mhw, api: FakeApi, env: dict[str, str]
) -> None:
    del env["MAGIC_HOUR_WEBHOOK_SECRET"]
    result = doctor(mhw, api, env, "--format", "json")
    assert result.code == 1
    [secret] = checks(result)["webhook_secret"]
    assert secret["status"] == "fail" and "cannot verify" in secret["detail"]
    assert "mhw config set webhook_secret" in secret["fix"]
    odd = "whsec_0123456789abcdefghijkl"
    result = doctor(mhw, api, env, "--format", "json", "--secret", odd)
    assert result.code == 0
    [secret] = checks(result)["webhook_secret"]
    assert secret["status"] == "warn" and "does not start with mhw_" in secret["detail"]
    assert odd not in result.stdout


def test_a_broken_config_file_fails_the_checks_that_read_it(
    mhw: Mhw, api: FakeApi, env: dict[str, str], isolated_env: dict[str, str]
) -> None:
    config = Path(isolated_env["MHW_CONFIG"])
    config.parent.mkdir(parents=True)
    config.write_text("{not json")
    result = doctor(mhw, api, env, "--format", "json")
    assert result.code == 1
    found = checks(result)
    for name in ("api_key", "webhook_secret", "ngrok_authtoken"):
        [check] = found[name]
        assert check["status"] == "fail" and str(config) in check["detail"]
    assert found["listener"][0]["status"] == "warn"


def test_finds_a_running_listener_until_it_stops(
    mhw: Mhw, api: FakeApi, env: dict[str, str], isolated_env: dict[str, str], tmp_path: Path
) -> None:
    ready = tmp_path / "ready.json"
    command = [sys.executable, "-m", "mh_webhook_cli", "listen", "--port", "0", "--no-tunnel"]
    command += ["--no-store", "--ready-file", str(ready)]
    listener = subprocess.Popen(
        command,
        env={**isolated_env, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: ready.exists() or listener.poll() is not None, what="the ready file")
        assert listener.poll() is None, "the listener exited"
        url = json.loads(ready.read_text())["url"]
        result = doctor(mhw, api, env, "--format", "json")
        assert checks(result)["listener"] == [
            {
                "name": "listener",
                "status": "ok",
                "detail": f"{url} (pid {listener.pid})",
                "fix": None,
            }
        ]
        registry = tmp_path / "state" / "mhw" / "listeners"
        assert (registry / f"{listener.pid}.json").stat().st_mode & 0o777 == 0o600
        assert registry.stat().st_mode & 0o777 == 0o700
    finally:
        listener.send_signal(signal.SIGTERM)
        assert listener.wait(timeout=20) == 0
    assert list(registry.iterdir()) == []
    [check] = checks(doctor(mhw, api, env, "--format", "json"))["listener"]
    assert check["detail"] == "none running"


def test_stale_and_unreadable_entries_are_ignored_and_removed(
    mhw: Mhw, api: FakeApi, env: dict[str, str], tmp_path: Path
) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    registry = tmp_path / "state" / "mhw" / "listeners"
    registry.mkdir(parents=True)
    entry = {
        "pid": dead.pid,
        "url": "http://127.0.0.1:9/",
        "port": 9,
        "public_url": None,
        "store": None,
        "started_at": "2026-11-23T15:00:00Z",
    }
    (registry / f"{dead.pid}.json").write_text(json.dumps(entry))
    (registry / "123.json").write_text("{half a fi")
    [check] = checks(doctor(mhw, api, env, "--format", "json"))["listener"]
    assert check["detail"] == "none running"
    assert list(registry.iterdir()) == []
