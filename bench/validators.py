"""In-process cost of deciding that a webhook's payload meets the spec, by each candidate.

Why ``validate_event`` answers "valid" with msgspec and words findings with pydantic: a
listener validates every request it receives, and almost all of them are valid. Each
contender checks the payload of the webhook reference's ``video.completed`` example (the
body ``bench/listen.py`` sends) against the same strict, open model:

- "pydantic model": ``VideoProject.model_validate``, which builds the model (what mhw did);
- "pydantic TypedDict": a ``TypeAdapter`` over a TypedDict of the same fields, which
  builds a dict instead;
- "msgspec": ``msgspec.convert(strict=True)`` into a Struct derived from the model (what
  mhw does first);
- "validate_event": the whole of mhw's check, envelope included.

    python bench/validators.py [--checks 20000] [--rounds 7]

Prints µs per payload: the median of the rounds (compare columns of one run, not runs).
``tests/test_events.py`` holds msgspec's answer to pydantic's on generated payloads.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import msgspec
import orjson
from pydantic import ConfigDict, TypeAdapter
from typing_extensions import TypedDict

from mh_webhook_cli.core import catalog

sys.path.insert(0, str(Path(__file__).resolve().parent))
from listen import BODY  # the webhook bench/listen.py sends


class _Download(TypedDict):
    url: str
    expires_at: str


class _Error(TypedDict):
    message: str
    code: str


class _VideoProject(TypedDict):
    __pydantic_config__ = ConfigDict(extra="allow", strict=True)  # type: ignore[misc]
    id: str
    name: str | None
    status: Literal["draft", "queued", "rendering", "complete", "error", "canceled"]
    type: str
    created_at: str
    enabled: bool
    credits_charged: int
    downloads: list[_Download]
    error: _Error | None
    width: int
    height: int
    start_seconds: float
    end_seconds: float
    total_frame_cost: int
    fps: float
    download: _Download | None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    arguments = parser.parse_args()
    event = orjson.loads(BODY.encode())
    payload = event["payload"]
    model = catalog.VideoProject
    as_typed_dict = TypeAdapter(_VideoProject)
    struct = catalog._msgspec_type(model)
    contenders: dict[str, Callable[[], Any]] = {
        "pydantic model": lambda: model.model_validate(payload),
        "pydantic TypedDict": lambda: as_typed_dict.validate_python(payload),
        "msgspec": lambda: msgspec.convert(payload, struct, strict=True),
        "validate_event": lambda: catalog.validate_event(event),
    }
    assert catalog.validate_event(event) == [], "the example must be valid"
    timings: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(arguments.rounds):
        for name, check in contenders.items():
            started = time.perf_counter()
            for _ in range(arguments.checks):
                check()
            timings[name].append((time.perf_counter() - started) / arguments.checks * 1e6)
    for name, rounds in timings.items():
        print(f"{name:<20} {statistics.median(rounds):6.2f} µs a payload")


if __name__ == "__main__":
    main()
