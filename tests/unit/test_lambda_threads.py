"""One Airflow client shared by an SQS batch's threads: one version probe, one token per refusal."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from shared.airflow_client import AirflowClient
from shared.config import AirflowSettings
from shared.credentials import AirflowJwtCredentials, Credentials
from shared.transport import HttpTransport
from shared.triggers import TriggerRequest
from tests.fake_airflow import BASE_URL, FakeAirflow, session_for
from tests.unit.test_airflow_client import REQUEST

THREADS = 8


@dataclass
class SlowAirflow(FakeAirflow):
    """The fake Airflow; every request with a token in ``held`` waits until all threads have sent one."""

    version_seconds: float = 0.0
    held: set[str] = field(default_factory=set)
    gate: threading.Barrier = field(default_factory=lambda: threading.Barrier(THREADS, timeout=5))

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Answer like the fake, after the configured waits."""
        if (request.url or "").endswith("/version"):
            time.sleep(self.version_seconds)
        if request.headers.get("Authorization", "").removeprefix("Bearer ") in self.held:
            self.gate.wait()
        return super().send(request, **kwargs)


def client_for(fake: FakeAirflow, **settings: Any) -> AirflowClient:
    credentials = AirflowJwtCredentials(BASE_URL, "admin", "secret")
    values = {"url": BASE_URL, "auth": "jwt", "username": "admin", "deadline": 10.0, **settings}
    return AirflowClient(AirflowSettings(**values), HttpTransport(BASE_URL, credentials, session_for(fake)))


def trigger_at_once(client: AirflowClient) -> list[str]:
    """THREADS different requests triggered at the same time; their outcomes."""
    requests_ = [TriggerRequest(REQUEST.dag_id, f"run-{i}", {}, "r", REQUEST.event) for i in range(THREADS)]
    with ThreadPoolExecutor(THREADS) as pool:
        return [result.outcome for result in pool.map(client.trigger, requests_)]


def test_the_api_version_is_probed_once_however_many_threads_need_it() -> None:
    fake = SlowAirflow(version_seconds=0.2)
    assert trigger_at_once(client_for(fake)) == ["created"] * THREADS
    assert fake.calls.count(("GET", "/api/v2/version")) == 1


def test_threads_refused_together_fetch_one_new_token() -> None:
    fake = SlowAirflow(held={"forged"})
    client = client_for(fake, api_version="v2")
    credentials = client.transport.credentials  # type: ignore[attr-defined]
    credentials.token, credentials.expiry = "forged", datetime(2100, 1, 1, tzinfo=UTC)
    # All threads send the forged token, and all are refused (403 "Invalid JWT token") at the same moment.
    assert trigger_at_once(client) == ["created"] * THREADS
    assert fake.token_requests == 1


class _Tokens(Credentials):
    def refresh(self, session: requests.Session, timeout: tuple[float, float]) -> None:
        self.token = "new"


@pytest.mark.parametrize(
    ("refreshed_meanwhile", "left"),
    [(False, None), (True, "second")],
    ids=["still-the-refused-token", "another-thread-already-refreshed"],
)
def test_invalidate_forgets_only_the_token_this_thread_sent(refreshed_meanwhile: bool, left: str | None) -> None:
    credentials = _Tokens()
    credentials.token = "first"
    sent, refused = threading.Event(), threading.Event()

    def caller() -> None:
        credentials(requests.Request("GET", BASE_URL).prepare())  # this thread sends "first"
        sent.set()
        refused.wait(5)
        credentials.invalidate()

    thread = threading.Thread(target=caller)
    thread.start()
    sent.wait(5)
    if refreshed_meanwhile:
        credentials.token = "second"
    refused.set()
    thread.join(5)
    assert credentials.token == left


def test_invalidate_from_a_thread_that_sent_nothing_forgets_the_token() -> None:
    credentials = _Tokens()
    credentials.token = "first"
    credentials.invalidate()
    assert credentials.token is None
