"""The README's GitHub Actions job, run offline: every step after the install, in order, with
the job's and the step's environment, against a handler of the test's own (the careful one of
``tests/handler_variants.py``) in place of ``./start-my-handler``.

Ports are the README's (8000 the handler, 8787 the listener, 8788 the emulator) renamed to
ports this test holds, so that it cannot collide with anything else on the machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from asgi_server import serve
from handler_variants import careful_app
from ports import reserved_port

README = Path(__file__).resolve().parents[1] / "README.md"

pytestmark = pytest.mark.timeout(120)


def the_job() -> dict[str, Any]:
    text = README.read_text(encoding="utf-8")
    block = text.split("As a GitHub Actions job", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    workflow = yaml.safe_load(block)
    (job,) = workflow["jobs"].values()
    return dict(job)


def test_the_readmes_github_actions_job_passes_offline(
    tmp_path: Path, isolated_env: dict[str, str]
) -> None:
    job = the_job()
    steps = [step for step in job["steps"] if "run" in step]
    install, start_handler, *checks = steps
    assert install["run"].startswith("pip install ")  # mhw is installed here already
    assert start_handler["run"].startswith("./start-my-handler &")
    assert checks, "the job checks nothing"
    secret = job["env"]["MAGIC_HOUR_WEBHOOK_SECRET"]
    with serve(careful_app(secret)) as handler:
        ports = {
            "8000": handler.rsplit(":", 1)[1],
            "8787": str(reserved_port()),
            "8788": str(reserved_port()),
        }

        def ours(text: str) -> str:
            return (
                re.sub(
                    r"127\.0\.0\.1:(8000|8787|8788)\b", lambda m: f"127.0.0.1:{ports[m[1]]}", text
                )
                .replace("--port 8787", f"--port {ports['8787']}")
                .replace("--port 8788", f"--port {ports['8788']}")
            )

        binaries = str(Path(sys.executable).parent)
        for step in checks:
            env = {
                # Not the developer's settings, nor their capture store: the job's own.
                **isolated_env,
                "PATH": binaries + os.pathsep + os.environ.get("PATH", ""),
                **{name: ours(str(value)) for name, value in job["env"].items()},
                **{name: ours(str(value)) for name, value in step.get("env", {}).items()},
            }
            # The step's background jobs (the emulator, the listener) end with it, as on CI.
            script = "set -e\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + ours(step["run"])
            ran = subprocess.run(
                [shutil.which("bash") or "/bin/bash", "-c", script],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=90,
            )
            assert ran.returncode == 0, f"{step['run']}\n{ran.stdout}\n{ran.stderr}"
        # The emulator and the listener in the background write to the same stdout.
        (verdict,) = [
            json.loads(line) for line in ran.stdout.splitlines() if line.startswith('{"verdict"')
        ]
        assert verdict["verdict"] == "ok", verdict
