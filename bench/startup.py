"""Start-up time of every ``mhw`` command against a bare one-command typer app, in one run.

Every command pays for Python, typer and rich; mhw must not add much on top
(target: at most 1.2x the bare app). The bare app is the anchor: the same
interpreter, the same typer version, one trivial command. Each command is timed
twice: its ``--help`` (against the bare app's ``--help``) and a run that does
its job offline (against the bare command's run).

    python bench/startup.py [--runs 30] [--only NAME ...]

Prints one line per case with the medians and their ratio, and exits 1 when
a ratio is over the target.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 1.2

BARE_APP = '''
import sys
import typer

app = typer.Typer()


@app.command()
def verify(body_file: str, signature: str = "", timestamp: str = "", secret: str = "") -> None:
    """Verify a body."""
    print("valid" if signature else "invalid")


app(prog_name="bare")
'''


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    )
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--only", nargs="*", default=None, help="case names to run")
    arguments = parser.parse_args()
    runs = arguments.runs

    work = Path(tempfile.mkdtemp(prefix="mhw-bench-"))
    bare = work / "bare.py"
    bare.write_text(BARE_APP)
    body = work / "body.json"
    body.write_bytes(b'{"type":"video.started","payload":{"id":"clx7uu86w0a5qp55yxz315r6r"}}')
    secret = "mhw_live_0123456789abcdef0123456789abcdef"
    env = {
        **os.environ,
        "MHW_CONFIG": str(work / "config.json"),
        "MAGIC_HOUR_CONFIG": str(work / "magic-hour.json"),
        "XDG_STATE_HOME": str(work / "state"),
        "XDG_DATA_HOME": str(work / "data"),
        "COLUMNS": "100",
    }
    for name in ("MAGIC_HOUR_API_KEY", "MAGIC_HOUR_WEBHOOK_SECRET", "NGROK_AUTHTOKEN"):
        env.pop(name, None)
    python = sys.executable
    mhw = [python, "-m", "mh_webhook_cli"]
    valid = hmac.new(secret.encode(), b"1." + body.read_bytes(), hashlib.sha256).hexdigest()
    verify = [*mhw, "verify", "-b", str(body), "--timestamp", "1", "--tolerance", "0", "-s", secret]
    bare_help = [python, str(bare), "--help"]
    bare_run = [python, str(bare), str(body), "--secret", secret, "--signature", valid]
    store = str(work / "empty.db")
    runs_offline = {
        # A valid signature: the start-up cost of a verify run.
        "verify": [*verify, "--signature", valid],
        "sign": [*mhw, "sign", "-b", str(body), "-s", secret, "--timestamp", "1"],
        "fixtures show": [*mhw, "fixtures", "show", "video.completed"],
        "fixtures list": [*mhw, "fixtures", "list"],
        "config list": [*mhw, "config", "list"],
        "events list": [*mhw, "events", "list", "--store", store],
    }
    helps = [
        [],
        ["listen"],
        ["send"],
        ["verify"],
        ["sign"],
        ["trigger"],
        ["emulate"],
        ["doctor"],
        ["events"],
        ["events", "list"],
        ["events", "replay"],
        ["fixtures"],
        ["config"],
    ]
    cases: dict[str, tuple[list[str], list[str], bool]] = {}
    for words in helps:
        cases[" ".join([*words, "--help"])] = ([*mhw, *words, "--help"], bare_help, True)
    for name, command in runs_offline.items():
        cases[name] = (command, bare_run, True)
    # A mismatch adds the diagnosis (a few hundred HMACs): reported, not held to the target.
    cases["verify, mismatch"] = ([*verify, "--signature", "0" * 64], bare_run, False)
    if arguments.only:
        cases = {name: case for name, case in cases.items() if name in arguments.only}
    failed = False
    for name, (ours, anchor, held) in cases.items():
        timed(ours, env), timed(anchor, env)  # warm the file cache and .pyc files
        ours_times, anchor_times = [], []
        for _ in range(runs):
            ours_times.append(timed(ours, env))
            anchor_times.append(timed(anchor, env))
        ours_median = statistics.median(ours_times)
        anchor_median = statistics.median(anchor_times)
        ratio = ours_median / anchor_median
        over = held and ratio > TARGET_RATIO
        failed |= over
        print(
            f"{name:22} mhw {ours_median * 1000:6.1f} ms  bare typer {anchor_median * 1000:6.1f} ms"
            f"  ratio {ratio:.2f}x{'  OVER' if over else ''}"
        )
    print(f"target <= {TARGET_RATIO}x; {runs} runs each, alternated; medians")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
