"""When to try again: Magic Hour's backoff schedule, the one rule behind every retry mhw makes.

Magic Hour retries a failed delivery after 1 s, 2 s, 4 s ... for 24 hours. ``mhw send
--retry`` and the emulator follow that schedule; the API client follows the same doubling,
capped per wait and bounded by a number of attempts. Each site waits its own way (a blocking
sleep, an asyncio sleep, a loop timer that holds no sender), so what they share is the
decision: :meth:`Backoff.wait_after` says how long to wait after a failed attempt, or that
there is no next one.

Pure: elapsed time is passed in, so the schedule is tested without a clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAGIC_HOUR_RETRY_SECONDS = 24 * 60 * 60.0
"""Magic Hour keeps retrying a failed delivery for a day."""
FIRST_DELAY_SECONDS = 1.0


@dataclass(frozen=True)
class Backoff:
    """Waits of ``first``, twice that, four times ... each at most ``cap`` seconds.

    No retry starts more than ``limit`` seconds after the first attempt began, and no more
    than ``attempts`` attempts are made in all (None: as many as ``limit`` allows).
    """

    first: float = FIRST_DELAY_SECONDS
    limit: float = MAGIC_HOUR_RETRY_SECONDS
    cap: float = math.inf
    attempts: int | None = None

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (from 1): ``first * 2**(attempt-1)``."""
        try:
            return min(self.first * 2.0 ** (attempt - 1), self.cap)
        except OverflowError:  # past attempt 1024 with no limit in sight: the cap, or forever
            return self.cap

    def wait_after(self, attempt: int, elapsed: float) -> float | None:
        """The wait before attempt ``attempt + 1``, or None when there is to be none.

        ``elapsed`` is the time since the first attempt began, in the schedule's seconds.
        """
        if self.attempts is not None and attempt >= self.attempts:
            return None
        delay = self.delay(attempt)
        return delay if elapsed + delay <= self.limit else None
