"""The HTTP trigger: request parsing, the routing rule, run ids, and every answer the entrypoint gives."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import functions_framework
import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from scripts.local_airflow import free_port
from shared import runtime
from shared.airflow_client import AirflowClient
from shared.config import AirflowSettings, Config, Route
from shared.credentials import BasicCredentials
from shared.dispatch import Dispatcher
from shared.errors import ConfigError
from shared.events import MessageEvent
from shared.parsing import HTTP_TRIGGER_FIELDS, RequestError, parse_http_trigger
from shared.retry import Backoff
from shared.transport import HttpTransport
from shared.triggers import derive_run_id, is_valid_run_id
from tests.fake_airflow import BASE_URL, FakeAirflow, response, session_for
from tests.function_process import FunctionProcess

SOURCE = Path(__file__).resolve().parents[2] / "gcf_trigger" / "main.py"
RECEIVED = datetime(2026, 11, 23, 8, 13, 20, tzinfo=UTC)
ROUTES = (
    Route(dag_id="load_orders", name="orders-on-request", sources=("http",), conf={"team": "finance"}),
    Route(dag_id="load_orders", name="orders-by-message", attributes={"dag_id": "load_orders"}),
    Route(dag_id="pubsub_only", name="pubsub-only", sources=("pubsub",)),
    Route(dag_id="any_source", name="any-source"),
    Route(dag_id="ghost", name="not-in-airflow", sources=("http",)),
)
MAX_CONF_BYTES = 1024


def request_body(**fields: Any) -> dict[str, Any]:
    return {"dag_id": "load_orders", "idempotency_key": "daily-2026-11-23", **fields}


# --- parse_http_trigger --------------------------------------------------------------------------


def test_request_becomes_a_message_event() -> None:
    body = request_body(conf={"date": "2026-11-23"})
    event = parse_http_trigger(json.dumps(body).encode(), RECEIVED)
    assert event == MessageEvent(
        source="http",
        message_id="daily-2026-11-23",
        body={"date": "2026-11-23"},
        attributes={"dag_id": "load_orders"},
        time=RECEIVED,
    )


@pytest.mark.parametrize("conf", [{}, None], ids=["empty", "null"])
def test_request_conf_defaults_to_an_empty_object(conf: Any) -> None:
    body = request_body() if conf == {} else request_body(conf=conf)
    assert parse_http_trigger(json.dumps(body).encode(), RECEIVED).body == {}


BAD_REQUESTS = [
    pytest.param(b"{not json", None, "not JSON", id="not-json"),
    pytest.param(b"\x80\x81", None, "not JSON", id="not-utf8"),
    pytest.param(b"", None, "not JSON", id="empty-body"),
    pytest.param(b'{"dag_id": "d", "idempotency_key": "k", "conf": {"x": NaN}}', None, "not JSON", id="nan"),
    pytest.param(b'["load_orders"]', None, "must be a JSON object, got list", id="not-an-object"),
    pytest.param(b'"load_orders"', None, "must be a JSON object, got str", id="a-string"),
    pytest.param(request_body(dag_id=None), "dag_id", "request.dag_id is missing", id="dag-id-null"),
    pytest.param({"idempotency_key": "k"}, "dag_id", "request.dag_id is missing", id="dag-id-missing"),
    pytest.param(request_body(dag_id=""), "dag_id", "request.dag_id is empty", id="dag-id-empty"),
    pytest.param(request_body(dag_id=7), "dag_id", "request.dag_id: expected str, got int", id="dag-id-number"),
    pytest.param(request_body(dag_id=["a"]), "dag_id", "expected str, got list", id="dag-id-list"),
    pytest.param({"dag_id": "d"}, "idempotency_key", "request.idempotency_key is missing", id="key-missing"),
    pytest.param(request_body(idempotency_key=""), "idempotency_key", "is empty", id="key-empty"),
    pytest.param(request_body(idempotency_key=1), "idempotency_key", "expected str, got int", id="key-number"),
    pytest.param(request_body(idempotency_key=True), "idempotency_key", "expected str, got bool", id="key-bool"),
    pytest.param(request_body(conf=[1]), "conf", "request.conf: expected dict, got list", id="conf-list"),
    pytest.param(request_body(conf="{}"), "conf", "request.conf: expected dict, got str", id="conf-string"),
    pytest.param(request_body(confs={}), "confs", "confs is not a known field", id="unknown-field"),
    pytest.param(request_body(run_id="x"), "run_id", "run_id is not a known field", id="run-id-not-accepted"),
]


def encoded(body: Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def scheduled(client: Any, schedule_time: str) -> tuple[int, dict[str, Any]]:
    headers = {
        "Content-Type": "application/octet-stream",  # Cloud Scheduler's default
        "X-CloudScheduler": "true",
        "X-CloudScheduler-JobName": "nightly-orders",
        "X-CloudScheduler-ScheduleTime": schedule_time,
    }
    answer = client.post("/", data=json.dumps({"dag_id": "load_orders"}), headers=headers)
    return int(answer.status_code), answer.get_json()


def test_cloud_scheduler_gets_one_run_per_schedule_time_without_a_key(client: Any, airflow: FakeAirflow) -> None:
    first = scheduled(client, "2026-11-23T02:00:00.000Z")
    retried = scheduled(client, "2026-11-23T02:00:00.000Z")
    next_night = scheduled(client, "2026-11-24T02:00:00.000Z")
    assert [first[0], retried[0], next_night[0]] == [200, 200, 200]
    assert [first[1]["outcome"], retried[1]["outcome"], next_night[1]["outcome"]] == [
        "created",
        "already_triggered",
        "created",
    ]
    assert first[1]["dag_run_id"] == retried[1]["dag_run_id"] != next_night[1]["dag_run_id"]
    conf = airflow.runs[("load_orders", first[1]["dag_run_id"])]["conf"]
    assert conf["message_id"] == "nightly-orders@2026-11-23T02:00:00.000Z"


def test_without_scheduler_headers_the_key_is_still_required(client: Any) -> None:
    status, body = post(client, {"dag_id": "load_orders"})
    assert (status, body["field"]) == (400, "idempotency_key")


@pytest.mark.parametrize(("body", "field", "error"), BAD_REQUESTS)
def test_bad_request_names_the_field(body: Any, field: str | None, error: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_http_trigger(encoded(body), RECEIVED)
    assert caught.value.field == field
    assert error in str(caught.value)


FIELD_VALUES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=5)
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)
REQUEST_LIKE = st.dictionaries(st.sampled_from([*HTTP_TRIGGER_FIELDS, "other"]), FIELD_VALUES)


@given(body=st.binary(max_size=64) | REQUEST_LIKE.map(lambda fields: json.dumps(fields).encode()))
def test_any_body_parses_or_raises_request_error(body: bytes) -> None:
    try:
        event = parse_http_trigger(body, RECEIVED)
    except RequestError:
        return
    assert event.source == "http"
    assert event.message_id
    assert event.attributes["dag_id"]


# --- run ids ---------------------------------------------------------------------------------------


def http_event(
    key: str = "daily-2026-11-23", dag_id: str = "load_orders", received: datetime = RECEIVED
) -> MessageEvent:
    return parse_http_trigger(json.dumps(request_body(dag_id=dag_id, idempotency_key=key)).encode(), received)


def test_run_id_is_the_same_for_a_retry_at_another_time() -> None:
    later = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    first = derive_run_id(http_event(), "load_orders")
    assert derive_run_id(http_event(received=later), "load_orders") == first
    assert derive_run_id(http_event(key="daily-2026-11-24"), "load_orders") != first
    assert derive_run_id(http_event(), "other_dag") != first


def test_run_id_of_an_http_trigger_is_not_a_pubsub_message_id() -> None:
    event = http_event(key="11223344556677")
    message = MessageEvent("pubsub", "11223344556677", {}, {"dag_id": "load_orders"}, RECEIVED)
    assert derive_run_id(event, "load_orders") != derive_run_id(message, "load_orders")


@given(key=st.text(min_size=1, max_size=2048))
def test_run_id_is_valid_for_any_idempotency_key(key: str) -> None:
    run_id = derive_run_id(http_event(key=key), "load_orders")
    assert is_valid_run_id(run_id)
    assert run_id.startswith("http__")
    assert len(run_id) == len("http__") + 16


# --- the entrypoint, in process, with a fake Airflow -----------------------------------------------


@pytest.fixture
def airflow() -> FakeAirflow:
    return FakeAirflow(version="v1", dags={"load_orders": False, "pubsub_only": False, "any_source": False})


@pytest.fixture
def client(airflow: FakeAirflow, monkeypatch: pytest.MonkeyPatch) -> Any:
    settings = AirflowSettings(url=BASE_URL, api_version="v1", auth="basic", max_conf_bytes=MAX_CONF_BYTES)
    airflow_client = AirflowClient(
        settings,
        HttpTransport(BASE_URL, BasicCredentials("admin", "secret"), session_for(airflow)),
        # The first retry would wait longer than any deadline: a retryable failure is reported at once.
        backoff=Backoff(base=1000.0, cap=1000.0, random=lambda: 1.0),
    )
    active = Dispatcher(Config(settings, ROUTES, "test.toml"), airflow_client)
    monkeypatch.setattr(runtime, "dispatcher", lambda: active)
    app = functions_framework.create_app(target="trigger_http", source=str(SOURCE), signature_type="http")
    return app.test_client()


def post(client: Any, body: Any) -> tuple[int, dict[str, Any]]:
    answer = client.post("/", data=encoded(body), headers={"Content-Type": "application/json"})
    assert answer.mimetype == "application/json"
    return int(answer.status_code), answer.get_json()


def runs(airflow: FakeAirflow) -> list[tuple[str, str]]:
    return sorted(airflow.runs)


def test_created_then_a_retry_with_the_same_key_is_already_triggered(client: Any, airflow: FakeAirflow) -> None:
    status, created = post(client, request_body(conf={"date": "2026-11-23"}))
    assert status == 200
    assert created["outcome"] == "created"
    assert created["dag_id"] == "load_orders"
    assert created["dag_run_id"].startswith("http__")

    status, again = post(client, request_body(conf={"date": "2026-11-23"}))
    assert status == 200
    assert again["outcome"] == "already_triggered"
    assert again["dag_run_id"] == created["dag_run_id"]

    assert runs(airflow) == [("load_orders", created["dag_run_id"])]
    conf = airflow.runs[("load_orders", created["dag_run_id"])]["conf"]
    assert conf["source"] == "http"
    assert conf["message_id"] == "daily-2026-11-23"
    assert conf["body"] == {"date": "2026-11-23"}
    assert conf["team"] == "finance"  # the route's static conf, merged over the request's


def test_another_key_is_another_run(client: Any, airflow: FakeAirflow) -> None:
    assert post(client, request_body())[0] == 200
    assert post(client, request_body(idempotency_key="daily-2026-11-24"))[0] == 200
    assert len(runs(airflow)) == 2


@pytest.mark.parametrize(("body", "field", "error"), BAD_REQUESTS)
def test_bad_request_is_400_naming_the_field(
    client: Any, airflow: FakeAirflow, body: Any, field: str | None, error: str
) -> None:
    status, answer = post(client, body)
    assert status == 400
    assert answer["field"] == field
    assert error in answer["error"]
    assert airflow.calls == []


def test_conf_over_the_cap_is_400(client: Any, airflow: FakeAirflow) -> None:
    status, answer = post(client, request_body(conf={"blob": "x" * MAX_CONF_BYTES}))
    assert status == 400
    assert answer["field"] == "conf"
    assert f"over max_conf_bytes={MAX_CONF_BYTES}" in answer["error"]
    assert airflow.calls == []


@pytest.mark.parametrize(
    "dag_id",
    [
        pytest.param("pubsub_only", id="route-for-other-sources"),
        pytest.param("any_source", id="route-without-sources"),
        pytest.param("unknown_dag", id="no-route"),
    ],
)
def test_dag_not_configured_for_http_is_403(client: Any, airflow: FakeAirflow, dag_id: str) -> None:
    status, answer = post(client, request_body(dag_id=dag_id))
    assert status == 403
    assert answer == {
        "error": f'DAG {dag_id!r} is not configured for HTTP triggers: add "http" to the sources of its route',
        "field": "dag_id",
    }
    assert airflow.calls == []


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_only_post_is_allowed(client: Any, airflow: FakeAirflow, method: str) -> None:
    answer = client.open("/", method=method, data=json.dumps(request_body()))
    assert answer.status_code == 405
    assert answer.headers["Allow"] == "POST"
    assert "POST" in answer.get_json()["error"]
    assert airflow.calls == []


def test_airflow_unavailable_is_503_so_the_caller_retries(client: Any, airflow: FakeAirflow) -> None:
    airflow.faults.append(lambda request: response(503, {"detail": "database is locked"}))
    status, answer = post(client, request_body())
    assert status == 503
    assert answer["outcome"] == "failed"
    assert answer["retryable"] is True
    assert answer["error"] == "RetryableAirflowError"
    assert "Traceback" not in json.dumps(answer)

    status, retried = post(client, request_body())  # Airflow is back; the same key makes the run
    assert (status, retried["outcome"], retried["dag_run_id"]) == (200, "created", answer["dag_run_id"])


def test_dag_unknown_to_airflow_is_502(client: Any, airflow: FakeAirflow) -> None:
    status, answer = post(client, request_body(dag_id="ghost"))
    assert status == 502
    assert answer["retryable"] is False
    assert answer["error"] == "DagNotFoundError"


def test_forbidden_by_airflow_is_502(client: Any, airflow: FakeAirflow) -> None:
    airflow.faults.append(lambda request: response(403, {"detail": "Forbidden"}))
    status, answer = post(client, request_body())
    assert status == 502
    assert answer["error"] == "ForbiddenError"


def test_configuration_error_is_500_without_details(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> Dispatcher:
        raise ConfigError("config.toml: routes[0].sources[0] must be one of ...")

    monkeypatch.setattr(runtime, "dispatcher", broken)
    status, answer = post(client, request_body())
    assert status == 500
    assert "config.toml" not in answer["error"]


# --- through a real functions-framework process ----------------------------------------------------


def test_http_function_served_by_functions_framework(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[airflow]\nurl = "http://127.0.0.1:{free_port()}"\napi_version = "v2"\ndeadline = 0.1\n'
        '[[routes]]\ndag_id = "load_orders"\nsources = ["http"]\n'
    )
    env = {"DAG_TRIGGER_CONFIG": str(config)}
    with FunctionProcess("trigger_http", "http", env, tmp_path / "fn.log") as function:
        unavailable = function.post_json(request_body())
        refused = function.post_json(request_body(dag_id="other"))
        bad = function.post_json(request_body(conf=[]))
        get = requests.get(function.url, timeout=10)
        lines = function.log_lines()

    assert (unavailable.status_code, unavailable.json()["retryable"]) == (503, True)
    assert (refused.status_code, refused.json()["field"]) == (403, "dag_id")
    assert (bad.status_code, bad.json()["field"]) == (400, "conf")
    assert get.status_code == 405
    failed = [line for line in lines if line.get("outcome") == "failed"]
    assert len(failed) == 1
    assert {"source": "http", "message_id": "daily-2026-11-23", "dag_id": "load_orders"}.items() <= failed[0].items()
