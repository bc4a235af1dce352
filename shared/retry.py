"""Retry decisions as small pieces: a backoff, a deadline, and a Retry-After reader.

``random``, ``sleep`` and the clock are passed in, so tests are exact.
"""

from __future__ import annotations

import random as _random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class Backoff:
    """Full-jitter exponential backoff: ``delay(n) = random() * min(cap, base * 2**n)``.

    With ``random=lambda: 1`` and ``base=1`` the delays are 1, 2, 4, 8 ... up to ``cap``.
    Full jitter spreads a burst of redelivered events so they do not hit a recovering Airflow at once.
    """

    base: float = 0.5
    cap: float = 8.0
    random: Callable[[], float] = field(default=_random.random, repr=False)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0 for the first retry)."""
        return self.random() * min(self.cap, self.base * 2.0 ** min(attempt, 32))


class Deadline:
    """A point in time after which no new attempt starts (for Lambda: the remaining invocation time)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + seconds

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self._end - self._clock())


def retry_after_seconds(value: str | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> float | None:
    """The wait a ``Retry-After`` header asks for (delta-seconds or an HTTP date), ``None`` if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())
