"""Start-up time of every ``mhw`` command against a bare one-command typer app, in one run.

Every command pays for Python, typer and rich; mhw must not add much on top
(target: at most 1.2x the bare app). The bare app is the anchor: the same
interpreter, the same typer version, one trivial command. Every command, group and
subcommand's ``--help`` is timed (against the bare app's ``--help``), the list read from
mhw's own command tree so that a new command is timed too, and each command that can do
its job offline is timed doing it (against the bare command's run).

    python bench/startup.py [--runs 20] [--only NAME ...]
    python bench/startup.py --send [--runs 20]

Prints one line per case with the medians, the lower quartiles and their
ratios, and exits 1 when a case's ratio of lower quartiles is over the target:
on a shared machine other processes only ever add time, in bursts, so the
quartile of alternated runs says what each command costs, where a median moves
with the neighbours' load (measured here: the bare app's median went from 122
to 300 ms between two runs, its lower quartile far less).

mhw's modules are byte-compiled first, as ``pip install`` leaves them (typer's, rich's and
pydantic's are): with ``PYTHONDONTWRITEBYTECODE`` set, as it is on some machines, the
warm-up runs write no ``.pyc`` files, and every timed run compiled mhw's modules from
source again, 5-30 ms a command that a user never pays (measured here).

``--send`` instead times one ``mhw send`` to a loopback handler (a subprocess
answering 200 at once) next to the steps it is made of, each a whole process,
alternated: the plan for its one-shot latency starts from these.
"""

from __future__ import annotations

import argparse
import compileall
import hashlib
import hmac
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_RATIO = 1.2

HANDLER = r"""
import socket, sys
server = socket.create_server(("127.0.0.1", 0))
print(server.getsockname()[1], flush=True)
while True:
    connection, _ = server.accept()
    with connection:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = connection.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        while len(body) < length:
            chunk = connection.recv(65536)
            if not chunk:
                break
            body += chunk
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
"""

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


def quartile(values: list[float]) -> float:
    return statistics.quantiles(values, n=4)[0]


def send_breakdown(runs: int, env: dict[str, str], body: Path) -> int:
    """One ``mhw send`` and the steps it is made of, each a whole process, alternated."""
    handler = subprocess.Popen([sys.executable, "-c", HANDLER], stdout=subprocess.PIPE, text=True)
    try:
        assert handler.stdout is not None
        url = f"http://127.0.0.1:{int(handler.stdout.readline())}/webhook"
        python = sys.executable
        post = f"httpx.post({url!r}, content=b'{{}}')"
        steps = {
            "python -c pass": [python, "-c", "pass"],
            "import typer (with rich)": [python, "-c", "import typer"],
            "import httpx": [python, "-c", "import httpx"],
            "import pydantic": [python, "-c", "import pydantic"],
            "import mhw's event catalog": [python, "-c", "import mh_webhook_cli.core.catalog"],
            "httpx one-shot POST": [python, "-c", f"import httpx; {post}"],
            "mhw sign (no network)": [
                *(
                    python,
                    "-m",
                    "mh_webhook_cli",
                    "sign",
                    "-b",
                    str(body),
                    "-s",
                    "whsec_bench_0123",
                ),
            ],
            "mhw send --help": [python, "-m", "mh_webhook_cli", "send", "--help"],
            "mhw send video.completed": [
                *(python, "-m", "mh_webhook_cli", "send", "video.completed", "-u", url),
                *("--secret", "whsec_bench_0123"),
            ],
        }
        if shutil.which("curl"):
            steps["curl POST"] = ["curl", "-s", "-o", os.devnull, "-d", "{}", url]
        for command in steps.values():
            timed(command, env)  # warm the file cache and .pyc files
        times: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(runs):
            for name, command in steps.items():
                times[name].append(timed(command, env))
        for name, values in times.items():
            print(
                f"{name:28} median {statistics.median(values) * 1000:6.1f} ms  "
                f"lower quartile {quartile(values) * 1000:6.1f} ms"
            )
        print(f"{runs} runs each, alternated")
    finally:
        handler.kill()
        handler.wait()
    return 0


def command_paths() -> list[list[str]]:
    """Every mhw command, group and subcommand, read from mhw's own command tree."""
    from mh_webhook_cli.cli import build_app
    from mh_webhook_cli.cli.help_text import command_of

    paths: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        paths.append(path)
        for name, subcommand in getattr(command, "commands", {}).items():
            walk(subcommand, [*path, name])

    walk(command_of(build_app(everything=True)), [])
    return paths


def compile_package() -> None:
    """Byte-compile mhw as ``pip install`` does, whatever ``PYTHONDONTWRITEBYTECODE`` says."""
    spec = importlib.util.find_spec("mh_webhook_cli")
    assert spec is not None and spec.submodule_search_locations, "mh_webhook_cli is not installed"
    for folder in spec.submodule_search_locations:
        compileall.compile_dir(folder, quiet=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--only", nargs="*", default=None, help="case names to run")
    parser.add_argument("--send", action="store_true", help="time mhw send's steps instead")
    arguments = parser.parse_args()
    runs = arguments.runs
    if runs < 2:
        parser.error("--runs takes 2 or more: a quartile needs two values")
    compile_package()

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
    if arguments.send:
        return send_breakdown(runs, env, body)
    python = sys.executable
    mhw = [python, "-m", "mh_webhook_cli"]
    valid = hmac.new(secret.encode(), b"1." + body.read_bytes(), hashlib.sha256).hexdigest()
    verify = [*mhw, "verify", "-b", str(body), "--timestamp", "1", "--tolerance", "0", "-s", secret]
    bare_help = [python, str(bare), "--help"]
    bare_run = [python, str(bare), str(body), "--secret", secret, "--signature", valid]
    store = str(work / "empty.db")
    event = work / "event.json"
    fixture = [*mhw, "fixtures", "show", "video.completed", "--format", "json"]
    event.write_bytes(subprocess.run(fixture, env=env, capture_output=True, check=True).stdout)
    runs_offline = {
        # A valid signature: the start-up cost of a verify run.
        "verify": [*verify, "--signature", valid],
        "sign": [*mhw, "sign", "-b", str(body), "-s", secret, "--timestamp", "1"],
        "fixtures show": [*mhw, "fixtures", "show", "video.completed"],
        "fixtures list": [*mhw, "fixtures", "list"],
        "fixtures validate": [*mhw, "fixtures", "validate", str(event)],
        "config list": [*mhw, "config", "list"],
        "config path": [*mhw, "config", "path"],
        "events list": [*mhw, "events", "list", "--store", store],
        # No key, secret, token or listener: its checks say so, offline.
        "doctor": [*mhw, "doctor"],
    }
    helps = command_paths()
    # Every case is held to the target, a mismatch too: its diagnosis (a few hundred HMACs)
    # is what a user waits for when their handler fails, the run they make most.
    cases: dict[str, tuple[list[str], list[str]]] = {}
    for words in helps:
        cases[" ".join([*words, "--help"])] = ([*mhw, *words, "--help"], bare_help)
    for name, command in runs_offline.items():
        cases[name] = (command, bare_run)
    cases["verify, mismatch"] = ([*verify, "--signature", "0" * 64], bare_run)
    if arguments.only:
        unknown = sorted(set(arguments.only) - set(cases))
        if unknown:
            parser.error(f"no such case: {', '.join(unknown)}; the cases: {', '.join(cases)}")
        cases = {name: case for name, case in cases.items() if name in arguments.only}
    failed = False
    for name, (ours, anchor) in cases.items():
        timed(ours, env), timed(anchor, env)  # warm the file cache and .pyc files
        ours_times, anchor_times = [], []
        for _ in range(runs):
            ours_times.append(timed(ours, env))
            anchor_times.append(timed(anchor, env))
        ours_median = statistics.median(ours_times)
        anchor_median = statistics.median(anchor_times)
        ratio = quartile(ours_times) / quartile(anchor_times)
        over = ratio > TARGET_RATIO
        failed |= over
        print(
            f"{name:26} mhw {ours_median * 1000:6.1f} ms  bare typer {anchor_median * 1000:6.1f} ms"
            f"  ratio {ours_median / anchor_median:.2f}x; lower quartiles "
            f"{quartile(ours_times) * 1000:6.1f} / {quartile(anchor_times) * 1000:6.1f} ms"
            f"  ratio {ratio:.2f}x{'  OVER' if over else ''}"
        )
    print(
        f"target <= {TARGET_RATIO}x (lower quartiles); {runs} runs each, alternated; "
        "medians then lower quartiles"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
