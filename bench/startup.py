"""Start-up time of ``mhw`` against a bare two-command typer app, alternated in one run.

Every command pays for Python, typer and rich; mhw must not add much on top
(target: at most 1.2x the bare app). The bare app is the anchor: the same
interpreter, the same typer version, two trivial commands.

    python bench/startup.py [--runs 30]

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


@app.command()
def sign(body_file: str) -> None:
    """Sign a body."""
    print("signed")


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
    runs = parser.parse_args().runs

    work = Path(tempfile.mkdtemp(prefix="mhw-bench-"))
    bare = work / "bare.py"
    bare.write_text(BARE_APP)
    body = work / "body.json"
    body.write_bytes(b'{"type":"video.started","payload":{"id":"clx7uu86w0a5qp55yxz315r6r"}}')
    secret = "mhw_live_0123456789abcdef0123456789abcdef"
    env = {**os.environ, "MHW_CONFIG": str(work / "config.json"), "COLUMNS": "100"}
    python = sys.executable
    mhw = [python, "-m", "mh_webhook_cli"]
    valid = hmac.new(secret.encode(), b"1." + body.read_bytes(), hashlib.sha256).hexdigest()
    verify = [*mhw, "verify", "-b", str(body), "--timestamp", "1", "--tolerance", "0", "-s", secret]
    bare_verify = [python, str(bare), "verify", str(body), "--secret", secret, "--signature"]
    cases = {
        "--help": ([*mhw, "--help"], [python, str(bare), "--help"]),
        # A valid signature: the start-up cost of a verify run, held to the target.
        "verify": ([*verify, "--signature", valid], [*bare_verify, valid]),
        # A mismatch adds the diagnosis (a few hundred HMACs): reported, not held to it.
        "verify, mismatch": ([*verify, "--signature", "0" * 64], [*bare_verify, "0" * 64]),
    }
    failed = False
    for name, (ours, anchor) in cases.items():
        timed(ours, env), timed(anchor, env)  # warm the file cache and .pyc files
        ours_times, anchor_times = [], []
        for _ in range(runs):
            ours_times.append(timed(ours, env))
            anchor_times.append(timed(anchor, env))
        ours_median = statistics.median(ours_times)
        anchor_median = statistics.median(anchor_times)
        ratio = ours_median / anchor_median
        failed |= ratio > TARGET_RATIO and name != "verify, mismatch"
        print(
            f"{name:16} mhw {ours_median * 1000:6.1f} ms  bare typer {anchor_median * 1000:6.1f} ms"
            f"   ratio {ratio:.2f}x (target <= {TARGET_RATIO}x, {runs} runs each, alternated)"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
