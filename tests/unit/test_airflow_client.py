"""The Airflow client against an in-process fake API: outcomes, auth refresh, retries, paused policy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from shared.airflow_client import ALREADY_TRIGGERED, CREATED, MAX_RETRY_AFTER, AirflowClient
from shared.config import AirflowSettings
from shared.credentials import AirflowJwtCredentials, BasicCredentials, NoCredentials
from shared.errors import (
    AirflowError,
    CredentialError,
    DagNotFoundError,
    DagPausedError,
    ForbiddenError,
    InvalidRequestError,
    RetryableAirflowError,
    UnauthorizedError,
)
from shared.events import ObjectEvent
from shared.retry import Backoff, Deadline, retry_after_seconds
from shared.transport import HttpTransport
from shared.triggers import TriggerRequest
from tests.fake_airflow import BASE_URL, GOOD_TOKEN, FakeAirflow, response, session_for

EVENT = ObjectEvent(
    source="gcs",
    bucket="acme-landing",
    key="incoming/orders.csv",
    event_type="created",
    event_name="google.cloud.storage.object.v1.finalized",
    event_time=datetime(2026, 11, 23, 8, 13, 20, tzinfo=UTC),
    event_id="1",
    version="17",
)
REQUEST = TriggerRequest("load_orders", "gcs__2026-11-23T08:13:20Z__0123456789abcdef", {"key": EVENT.key}, "r", EVENT)


class Clock:
    """Monotonic time that only moves when the client sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_client(fake: FakeAirflow, clock: Clock | None = None, **settings: Any) -> AirflowClient:
    clock = clock or Clock()
    session = session_for(fake)
    auth = settings.pop("auth", "jwt" if fake.version == "v2" else "basic")
    values = {"url": BASE_URL, "deadline": 60.0, "auth": auth, "username": "admin", **settings}
    airflow = AirflowSettings(**values)
    if auth == "jwt":
        credentials: Any = AirflowJwtCredentials(BASE_URL, "admin", "secret")
    elif auth == "basic":
        credentials = BasicCredentials("admin", "secret")
    else:
        credentials = NoCredentials()
    return AirflowClient(
        airflow,
        HttpTransport(BASE_URL, credentials, session),
        backoff=Backoff(base=1.0, cap=8.0, random=lambda: 1.0),
        sleep=clock.sleep,
        clock=clock,
    )


def posts(fake: FakeAirflow) -> list[str]:
    return [path for method, path in fake.calls if method == "POST" and "dagRuns" in path]


def test_airflow3_creates_run_with_null_logical_date_and_one_token() -> None:
    fake = FakeAirflow()
    result = make_client(fake).trigger(REQUEST)
    assert (result.outcome, result.state, result.attempts) == (CREATED, "queued", 1)
    assert fake.runs[("load_orders", REQUEST.dag_run_id)]["conf"] == {"key": "incoming/orders.csv"}
    assert fake.token_requests == 1


def test_airflow2_omits_logical_date_and_uses_basic_auth() -> None:
    fake = FakeAirflow(version="v1")
    client = make_client(fake)
    result = client.trigger(REQUEST)
    assert result.outcome == CREATED
    assert client.api_version() == "v1"
    assert ("GET", "/api/v2/version") in fake.calls  # detected, not configured


def test_duplicate_is_confirmed_by_reading_our_run() -> None:
    fake = FakeAirflow()
    client = make_client(fake)
    client.trigger(REQUEST)
    again = client.trigger(REQUEST)
    assert again.outcome == ALREADY_TRIGGERED
    assert ("GET", f"/api/v2/dags/load_orders/dagRuns/{REQUEST.dag_run_id}") in fake.calls
    assert len(fake.runs) == 1


def test_conflict_that_is_not_our_run_is_retried_until_created() -> None:
    # Airflow 2 answers 409 when another run holds the same logical date.
    fake = FakeAirflow(version="v1")
    clash = [True]

    def logical_date_clash(request: requests.PreparedRequest) -> requests.Response | None:
        if request.method == "POST" and clash:
            clash.pop()
            return response(409, {"detail": "DAGRun with logical date already exists"})
        return None

    clock = Clock()
    client = make_client(fake, clock)
    client.api_version()
    fake.faults.extend([lambda r: None, logical_date_clash, lambda r: None, logical_date_clash])
    result = client.trigger(REQUEST)
    assert result.outcome == CREATED
    assert result.attempts == 2
    assert clock.sleeps == [1.0]


def test_unknown_dag_is_a_clear_non_retryable_error() -> None:
    fake = FakeAirflow()
    request = TriggerRequest("no_such_dag", REQUEST.dag_run_id, {}, "r", EVENT)
    with pytest.raises(DagNotFoundError, match="no_such_dag") as info:
        make_client(fake).trigger(request)
    assert not info.value.retryable
    assert posts(fake) == []


@pytest.mark.parametrize(
    ("status", "body", "error", "retryable"),
    [
        (400, {"detail": "bad conf"}, InvalidRequestError, False),
        (422, {"detail": [{"msg": "Extra inputs are not permitted"}]}, InvalidRequestError, False),
        (403, {"detail": "Forbidden"}, ForbiddenError, False),
        (404, {"detail": "gone"}, DagNotFoundError, False),
        (418, {"detail": "teapot"}, AirflowError, False),
        (500, {"detail": "database is locked"}, RetryableAirflowError, True),
        (502, None, RetryableAirflowError, True),
        (503, None, RetryableAirflowError, True),
        (429, None, RetryableAirflowError, True),
    ],
)
def test_status_mapping(status: int, body: Any, error: type[Exception], retryable: bool) -> None:
    fake = FakeAirflow()
    client = make_client(fake, deadline=5.0)
    client.api_version()
    client.get_dag("load_orders")
    fake.faults.extend([lambda r: response(status, body)] * 10)
    with pytest.raises(error) as info:
        client.trigger(REQUEST)
    assert type(info.value) is error
    assert info.value.retryable is retryable
    if body and status in (400, 422):
        assert str(body["detail"])[:20] in str(info.value)


def test_retries_5xx_with_full_jitter_backoff_then_succeeds() -> None:
    fake = FakeAirflow()
    clock = Clock()
    client = make_client(fake, clock)
    client.get_dag("load_orders")
    fake.faults.extend([lambda r: response(500, {"detail": "database is locked"})] * 3)
    result = client.trigger(REQUEST)
    assert (result.outcome, result.attempts) == (CREATED, 4)
    assert clock.sleeps == [1.0, 2.0, 4.0]


def test_backoff_is_full_jitter_and_capped() -> None:
    backoff = Backoff(base=0.5, cap=3.0, random=lambda: 0.5)
    assert [backoff.delay(n) for n in range(5)] == [0.25, 0.5, 1.0, 1.5, 1.5]


def test_retry_after_is_honoured() -> None:
    fake = FakeAirflow()
    clock = Clock()
    client = make_client(fake, clock)
    client.get_dag("load_orders")
    fake.faults.append(lambda r: response(429, {"detail": "slow down"}, {"Retry-After": "7"}))
    assert client.trigger(REQUEST).attempts == 2
    assert clock.sleeps == [7.0]


def test_retry_after_beyond_the_cap_gives_up_at_once() -> None:
    fake = FakeAirflow()
    clock = Clock()
    client = make_client(fake, clock, deadline=600.0)
    client.get_dag("load_orders")
    fake.faults.append(lambda r: response(503, None, {"Retry-After": str(int(MAX_RETRY_AFTER) + 1)}))
    with pytest.raises(RetryableAirflowError, match="503"):
        client.trigger(REQUEST)
    assert clock.sleeps == []


def test_deadline_bounds_all_retries() -> None:
    fake = FakeAirflow()
    clock = Clock()
    client = make_client(fake, clock)
    client.get_dag("load_orders")
    fake.faults.extend([lambda r: response(503)] * 100)
    with pytest.raises(RetryableAirflowError, match=r"gave up after \d+ attempt"):
        client.trigger(REQUEST, Deadline(10.0, clock))
    assert sum(clock.sleeps) < 10.0
    assert clock.sleeps == [1.0, 2.0, 4.0]


@pytest.mark.parametrize(
    "failure",
    [requests.ConnectionError("Connection refused"), requests.ReadTimeout("read timed out")],
    ids=["connection-error", "read-timeout"],
)
def test_transport_failures_are_retried(failure: Exception) -> None:
    fake = FakeAirflow()
    client = make_client(fake)
    client.get_dag("load_orders")
    fake.faults.append(lambda r: failure)
    assert client.trigger(REQUEST).attempts == 2


def test_expired_token_401_refreshes_once() -> None:
    fake = FakeAirflow()
    client = make_client(fake)
    client.trigger(REQUEST)
    fake.faults.append(lambda r: response(401, {"detail": "Token expired"}))
    other = TriggerRequest("load_orders", "gcs__2026-11-23T08:13:20Z__fedcba9876543210", {}, "r", EVENT)
    assert client.trigger(other).outcome == CREATED
    assert fake.token_requests == 2


def test_invalid_jwt_403_refreshes_once() -> None:
    fake = FakeAirflow()
    client = make_client(fake)
    client.transport.credentials.token = "forged"  # type: ignore[attr-defined]
    client.transport.credentials.expiry = datetime(2100, 1, 1, tzinfo=UTC)  # type: ignore[attr-defined]
    assert client.trigger(REQUEST).outcome == CREATED
    assert fake.token_requests == 1


def test_token_still_refused_after_refresh_is_unauthorized() -> None:
    fake = FakeAirflow()
    client = make_client(fake)
    client.get_dag("load_orders")
    fake.valid_tokens.clear()  # e.g. the server's JWT secret changed
    with pytest.raises(UnauthorizedError, match="Invalid JWT token"):
        client.trigger(REQUEST)
    assert fake.token_requests == 2


def test_wrong_password_is_a_credential_error_naming_the_user() -> None:
    fake = FakeAirflow(password="other")
    with pytest.raises(CredentialError, match="'admin'") as info:
        make_client(fake).trigger(REQUEST)
    assert not info.value.retryable
    assert "secret" not in str(info.value)


def test_token_expiry_comes_from_the_jwt() -> None:
    fake = FakeAirflow()
    client = make_client(fake)
    client.trigger(REQUEST)
    assert client.transport.credentials.token == GOOD_TOKEN
    assert client.transport.credentials.expiry == datetime(2100, 1, 1, tzinfo=UTC)


def test_paused_dag_warn_creates_a_queued_run_with_a_warning() -> None:
    fake = FakeAirflow(dags={"load_orders": True})
    result = make_client(fake).trigger(REQUEST)
    assert result.outcome == CREATED
    assert "paused" in result.warnings[0]


def test_paused_dag_fail_creates_nothing() -> None:
    fake = FakeAirflow(dags={"load_orders": True})
    with pytest.raises(DagPausedError, match="paused"):
        make_client(fake, paused="fail").trigger(REQUEST)
    assert fake.runs == {}


def test_paused_dag_unpause_unpauses_then_creates() -> None:
    fake = FakeAirflow(dags={"load_orders": True})
    result = make_client(fake, paused="unpause").trigger(REQUEST)
    assert result.outcome == CREATED
    assert fake.dags["load_orders"] is False
    assert ("PATCH", "/api/v2/dags/load_orders?update_mask=is_paused") in fake.calls


def test_redirect_is_never_followed() -> None:
    fake = FakeAirflow()
    client = make_client(fake, auth="none")
    client.api_version()
    fake.faults.append(lambda r: response(302, None, {"Location": "https://login.example.com/?sig=SECRET"}))
    with pytest.raises(AirflowError, match=r"redirected to https://login\.example\.com/") as info:
        client.trigger(REQUEST)
    assert "SECRET" not in str(info.value)
    assert len(fake.calls) == 2


def test_no_airflow_api_at_url_says_so() -> None:
    fake = FakeAirflow(version="v3-not-there")
    with pytest.raises(AirflowError, match="no Airflow REST API"):
        make_client(fake, auth="none").api_version()


def test_version_detection_honours_the_callers_deadline() -> None:
    # Regression: detecting the API version used to open its own, longer retry loop.
    fake = FakeAirflow()
    clock = Clock()
    client = make_client(fake, clock, deadline=60.0)
    fake.faults.extend([lambda r: requests.ConnectionError("Connection refused")] * 100)
    with pytest.raises(RetryableAirflowError, match="cannot connect"):
        client.trigger(REQUEST, Deadline(3.0, clock))
    assert sum(clock.sleeps) < 3.0


def test_netrc_credentials_are_never_sent(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine airflow.test login intruder password from-netrc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    fake = FakeAirflow()
    seen: list[str | None] = []
    fake.faults.append(lambda r: seen.append(r.headers.get("Authorization")))  # type: ignore[func-returns-value]
    make_client(fake, auth="none").api_version()
    assert seen == [None]


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("7", 7.0),
        (" 12 ", 12.0),
        ("Mon, 23 Nov 2026 08:00:30 GMT", 30.0),
        ("Mon, 23 Nov 2026 07:59:00 GMT", 0.0),  # a date in the past means "now"
        ("soon", None),
    ],
)
def test_retry_after_header_forms(header: str | None, seconds: float | None) -> None:
    now = datetime(2026, 11, 23, 8, 0, 0, tzinfo=UTC)
    assert retry_after_seconds(header, now=lambda: now) == seconds
