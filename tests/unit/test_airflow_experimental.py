"""The Airflow client on Airflow 1.10's experimental API (Cloud Composer 1), against the fake playing 1.10.15."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from shared.airflow_client import ALREADY_TRIGGERED, CREATED, AirflowClient
from shared.credentials import StaticCredentials
from shared.errors import (
    AirflowError,
    DagNotFoundError,
    DagPausedError,
    ForbiddenError,
    InvalidRequestError,
    RetryableAirflowError,
)
from shared.transport import HttpTransport
from shared.triggers import TriggerRequest
from tests.fake_airflow import BASE_URL, FakeAirflow, response, traceback_page
from tests.unit.test_airflow_client import EVENT, REQUEST, Clock, make_client

RUNS = "/api/experimental/dags/load_orders/dag_runs"
PAUSED = "/api/experimental/dags/load_orders/paused"
OTHER = TriggerRequest("load_orders", "gcs__2026-11-23T08:13:20Z__fedcba9876543210", {}, "r", EVENT)


def experimental_client(fake: FakeAirflow, clock: Clock | None = None, **settings: Any) -> AirflowClient:
    return make_client(fake, clock, **{"auth": "none", "api_version": "experimental", **settings})


def already_exists(request: requests.PreparedRequest) -> requests.Response:
    return response(400, {"error": f"Run id {REQUEST.dag_run_id} already exists for dag id load_orders"})


def passes(request: requests.PreparedRequest) -> None:
    return None


class ProxyCredentials(StaticCredentials):
    """A token checked by Identity-Aware Proxy in front of Composer 1's web server."""

    at_proxy = True

    def apply(self, headers: Any) -> None:
        headers["Authorization"] = "Bearer proxy-token"


def test_creates_the_run_with_our_id() -> None:
    fake = FakeAirflow(version="experimental")
    result = experimental_client(fake).trigger(REQUEST)
    assert (result.outcome, result.attempts) == (CREATED, 1)
    assert fake.runs[("load_orders", REQUEST.dag_run_id)]["conf"] == {"key": "incoming/orders.csv"}
    assert ("POST", RUNS) in fake.calls


def test_trigger_body_keeps_microseconds_and_carries_our_run_id() -> None:
    fake = FakeAirflow(version="experimental")
    bodies: list[Any] = []
    fake.faults.extend([passes, lambda r: bodies.append(json.loads(r.body or b""))])  # type: ignore[func-returns-value]
    experimental_client(fake).trigger(REQUEST)
    assert bodies == [
        {"run_id": REQUEST.dag_run_id, "conf": {"key": "incoming/orders.csv"}, "replace_microseconds": "false"}
    ]


def test_two_events_in_one_second_are_two_runs() -> None:
    # Airflow would truncate both execution dates to the same second and fail the second run on that key.
    fake = FakeAirflow(version="experimental")
    client = experimental_client(fake)
    assert [client.trigger(r).attempts for r in (REQUEST, OTHER)] == [1, 1]
    dates = [run["execution_date"] for run in fake.runs.values()]
    assert len(set(dates)) == 2
    assert len({date[:19] for date in dates}) == 1


def test_redelivery_is_already_triggered_after_reading_our_run_back() -> None:
    fake = FakeAirflow(version="experimental")
    client = experimental_client(fake)
    client.trigger(REQUEST)
    again = client.trigger(REQUEST)
    assert (again.outcome, again.state, again.attempts) == (ALREADY_TRIGGERED, "running", 1)
    assert fake.calls[-2:] == [("POST", RUNS), ("GET", RUNS)]
    assert len(fake.runs) == 1


@pytest.mark.parametrize("clashes", [1, 3])
def test_already_exists_without_our_run_is_retried_until_created(clashes: int) -> None:
    fake = FakeAirflow(version="experimental")
    clock = Clock()
    # The paused flag is read once; each refused attempt is then a POST answered 400 and a read-back that
    # finds no run of ours.
    fake.faults.extend([passes] + [already_exists, passes] * clashes)
    result = experimental_client(fake, clock).trigger(REQUEST)
    assert (result.outcome, result.attempts) == (CREATED, clashes + 1)
    assert clock.sleeps == [1.0, 2.0, 4.0][:clashes]
    assert fake.calls.count(("GET", RUNS)) == clashes


def test_already_exists_that_never_shows_our_run_gives_up_retryable() -> None:
    fake = FakeAirflow(version="experimental")
    fake.faults.extend([passes] + [already_exists, passes] * 10)
    with pytest.raises(RetryableAirflowError, match=r"400 \(already exists\).*does not exist"):
        experimental_client(fake, deadline=5.0).trigger(REQUEST)
    assert fake.runs == {}


def test_unknown_dag_is_not_found_although_paused_answers_500() -> None:
    # 1.10.15's /paused dereferences the missing DagModel (500); the run list names the DAG as not found.
    fake = FakeAirflow(version="experimental", dags={})
    with pytest.raises(DagNotFoundError, match="'load_orders' does not exist in Airflow") as info:
        experimental_client(fake).trigger(REQUEST)
    assert not info.value.retryable
    assert fake.calls == [("GET", PAUSED), ("GET", RUNS)]


def test_dag_removed_after_the_paused_check_is_not_found() -> None:
    fake = FakeAirflow(version="experimental")
    client = experimental_client(fake)
    client.trigger(OTHER)  # reads the paused flag, which is then trusted for DAG_INFO_TTL
    del fake.dags["load_orders"]
    with pytest.raises(DagNotFoundError, match="'load_orders' does not exist in Airflow"):
        client.trigger(REQUEST)
    assert fake.calls[-1] == ("POST", RUNS)


def test_paused_answering_500_for_a_known_dag_is_retried() -> None:
    fake = FakeAirflow(version="experimental")
    fake.faults.append(lambda r: traceback_page())
    result = experimental_client(fake).trigger(REQUEST)
    assert (result.outcome, result.attempts) == (CREATED, 2)
    assert fake.calls[:3] == [("GET", PAUSED), ("GET", RUNS), ("GET", PAUSED)]


@pytest.mark.parametrize(
    ("answer", "error", "retryable", "says"),
    [
        (
            response(400, {"error": "Given execution date, x, could not be identified as a date"}),
            InvalidRequestError,
            False,
            r"refused triggering DAG 'load_orders' as invalid \(400\): Given execution date",
        ),
        (response(404, {"error": "Dag id load_orders not found"}), DagNotFoundError, False, "does not exist"),
        (response(403, None), ForbiddenError, False, "deny_all"),
        (traceback_page(), RetryableAirflowError, True, "Ooops"),
    ],
    ids=["other-400", "404", "403-deny-all", "500"],
)
def test_trigger_status_mapping(answer: requests.Response, error: type[Exception], retryable: bool, says: str) -> None:
    fake = FakeAirflow(version="experimental")
    fake.faults.extend([passes] + [lambda r: answer] * 10)
    with pytest.raises(error, match=says) as info:
        experimental_client(fake, deadline=5.0).trigger(REQUEST)
    assert type(info.value) is error
    assert info.value.retryable is retryable
    assert fake.runs == {}


@pytest.mark.parametrize(
    ("policy", "created", "paused_after"),
    [("warn", True, True), ("fail", False, True), ("unpause", True, False)],
)
def test_paused_policy(policy: str, created: bool, paused_after: bool) -> None:
    fake = FakeAirflow(version="experimental", dags={"load_orders": True})
    client = experimental_client(fake, paused=policy)
    if created:
        assert client.trigger(REQUEST).warnings[0].startswith("DAG 'load_orders' ")
    else:
        with pytest.raises(DagPausedError, match="paused = 'fail'"):
            client.trigger(REQUEST)
    assert (("load_orders", REQUEST.dag_run_id) in fake.runs) is created
    assert fake.dags["load_orders"] is paused_after
    assert (("GET", f"{PAUSED}/false") in fake.calls) is (policy == "unpause")


def test_paused_flag_is_read_again_only_after_its_ttl() -> None:
    fake = FakeAirflow(version="experimental")
    clock = Clock()
    client = experimental_client(fake, clock)
    client.trigger(REQUEST)
    client.trigger(OTHER)
    assert fake.calls.count(("GET", PAUSED)) == 1
    clock.now += 31.0
    client.trigger(REQUEST)
    assert fake.calls.count(("GET", PAUSED)) == 2


def test_auto_detection_lands_on_experimental_after_two_404s() -> None:
    fake = FakeAirflow(version="experimental")
    client = experimental_client(fake, api_version="auto")
    assert client.api_version() == "experimental"
    assert fake.calls == [
        ("GET", "/api/v2/version"),
        ("GET", "/api/v1/version"),
        ("GET", "/api/experimental/test"),
    ]
    assert client.server_version().startswith("1.10")
    assert client.check_access() == "/api/experimental/test answered OK"
    assert len(fake.calls) == 4


@pytest.mark.parametrize(
    ("at_proxy", "refusal", "detected"),
    [
        (False, None, "experimental"),
        (False, 403, "experimental"),  # deny_all: Airflow's own refusal still proves the API
        (True, None, "experimental"),
        (True, 403, ForbiddenError),  # the proxy's refusal proves nothing
    ],
)
def test_detection_probe(at_proxy: bool, refusal: int | None, detected: str | type[Exception]) -> None:
    fake = FakeAirflow(version="experimental")
    client = experimental_client(fake, api_version="auto")
    if at_proxy:
        client.transport = HttpTransport(BASE_URL, ProxyCredentials(), client.transport.session)  # type: ignore[attr-defined]
    headers: list[str | None] = []

    def record(request: requests.PreparedRequest) -> requests.Response | None:
        headers.append(request.headers.get("Authorization"))
        # The v2 and v1 probes reach the fake (404); /api/experimental/test is refused when the row says so.
        return response(refusal, None) if refusal and len(headers) == 3 else None

    fake.faults.extend([record] * 3)
    if isinstance(detected, str):
        assert client.api_version() == detected
    else:
        with pytest.raises(detected):
            client.api_version()
    assert headers == ["Bearer proxy-token" if at_proxy else None] * 3


def test_no_api_at_all_names_the_experimental_probe_too() -> None:
    fake = FakeAirflow(version="none-of-them")
    with pytest.raises(AirflowError, match="/api/experimental/test are 404"):
        experimental_client(fake, api_version="auto").api_version()
