"""MWAA pieces that need no AWS: the rate limiter, and which API version an Airflow version speaks."""

from __future__ import annotations

import pytest

from shared.errors import AirflowError
from shared.mwaa import TokenBucket, _version_of
from shared.transport import Retryable


class Clock:
    """A clock that moves only when something sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_a_burst_up_to_the_rate_passes_then_calls_are_spaced() -> None:
    clock = Clock()
    bucket = TokenBucket(4.0, clock=clock, sleep=clock.sleep)
    for _ in range(6):
        bucket.acquire(budget=10.0)
    assert clock.slept == [0.25, 0.25]


def test_tokens_come_back_with_time_up_to_the_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(2.0, clock=clock, sleep=clock.sleep)
    bucket.acquire(10.0)
    bucket.acquire(10.0)
    clock.now += 60.0  # a quiet minute refills only the burst of 2
    for _ in range(3):
        bucket.acquire(10.0)
    assert clock.slept == [0.5]


def test_a_wait_longer_than_the_budget_is_retryable_and_takes_no_token() -> None:
    clock = Clock()
    bucket = TokenBucket(1.0, clock=clock, sleep=clock.sleep)
    bucket.acquire(10.0)
    with pytest.raises(Retryable, match="rate limit of 1 calls/s"):
        bucket.acquire(budget=0.5)
    bucket.acquire(budget=1.0)
    assert clock.slept == [1.0]


@pytest.mark.parametrize(("airflow", "api"), [("2.10.3", "v1"), ("2.11.0", "v1"), ("3.0.6", "v2"), ("10.1", "v2")])
def test_api_version_of_an_airflow_version(airflow: str, api: str) -> None:
    assert _version_of(airflow) == api


def test_an_unreadable_airflow_version_is_an_error() -> None:
    with pytest.raises(AirflowError, match="cannot tell the REST API"):
        _version_of("unknown")
