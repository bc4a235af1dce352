"""X-Ray subsegments for Airflow calls: a real X-Ray recorder (no daemon) around the fake Airflow."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from aws_xray_sdk import global_sdk_config
from aws_xray_sdk.core.recorder import AWSXRayRecorder

from lambda_trigger import handler as lambda_handler
from lambda_trigger.tracing import TracedTransport
from shared import runtime
from shared.airflow_client import AirflowClient
from shared.config import AirflowSettings, from_environment
from shared.credentials import AirflowJwtCredentials
from shared.errors import RetryableAirflowError
from shared.retry import Backoff, Deadline
from shared.transport import ApiCall, ApiResponse, HttpTransport, Transport
from shared.triggers import TriggerRequest
from tests.fake_airflow import BASE_URL, FakeAirflow, session_for
from tests.unit.test_airflow_client import REQUEST

SETTINGS = AirflowSettings(url=BASE_URL, auth="jwt", username="admin", deadline=1.0)


@pytest.fixture
def recorder() -> Iterator[AWSXRayRecorder]:
    """A recorder with an open segment, as Lambda's facade segment would be; nothing is sent anywhere.

    The handler's Tracer disabled the SDK (outside Lambda); it is enabled for this test only.
    """
    enabled = global_sdk_config.sdk_enabled()
    global_sdk_config.set_sdk_enabled(True)
    xray = AWSXRayRecorder()
    xray.configure(sampling=False, context_missing="RUNTIME_ERROR")
    xray.begin_segment("dag-trigger")
    yield xray
    xray.clear_trace_entities()
    global_sdk_config.set_sdk_enabled(enabled)


def traced_client(fake: FakeAirflow, recorder: AWSXRayRecorder) -> AirflowClient:
    inner = HttpTransport(BASE_URL, AirflowJwtCredentials(BASE_URL, "admin", "secret"), session_for(fake))
    tracer: Any = SimpleNamespace(provider=recorder)
    return AirflowClient(SETTINGS, TracedTransport(inner, tracer), backoff=Backoff(base=0.01, cap=0.02))


def subsegments(recorder: AWSXRayRecorder) -> list[dict[str, Any]]:
    """The subsegments recorded under the open segment, as X-Ray receives them."""
    return [sub.to_dict() for sub in recorder.current_segment().subsegments]


def test_each_airflow_call_is_a_remote_subsegment_annotated_with_method_path_and_status(
    recorder: AWSXRayRecorder,
) -> None:
    fake = FakeAirflow()
    traced_client(fake, recorder).trigger(REQUEST)
    recorded = subsegments(recorder)
    assert [(s["name"], s["namespace"], s["annotations"]) for s in recorded] == [
        ("Airflow GET", "remote", {"airflow_method": "GET", "airflow_path": "/version", "airflow_status": 200}),
        (
            "Airflow GET",
            "remote",
            {"airflow_method": "GET", "airflow_path": "/dags/load_orders", "airflow_status": 200},
        ),
        (
            "Airflow POST",
            "remote",
            {"airflow_method": "POST", "airflow_path": "/dags/load_orders/dagRuns", "airflow_status": 200},
        ),
    ]


def test_a_call_that_raises_is_recorded_as_a_fault_and_raised_unchanged(recorder: AWSXRayRecorder) -> None:
    fake = FakeAirflow()
    fake.faults.extend([lambda r: requests.ConnectionError("refused")] * 100)
    client = traced_client(fake, recorder)
    with pytest.raises(RetryableAirflowError, match="cannot connect"):
        client.trigger(REQUEST, Deadline(0.05))
    first = subsegments(recorder)[0]
    assert first["fault"] is True
    assert first["cause"]["exceptions"][0]["type"] == "Retryable"
    assert "airflow_status" not in first["annotations"]


class _Mwaaish:
    """A transport that knows the API version and carries only short paths, like MWAA's."""

    where = "MWAA environment prod (eu-west-1)"
    max_path: int | None = 64
    probe_with_auth = True
    unauthorized_hint = "u-hint "
    forbidden_hint = "f-hint "

    def __init__(self) -> None:
        self.closed = False

    def known_version(self, timeout: tuple[float, float]) -> str | None:
        return "v2"

    def send(self, version: str, call: ApiCall, timeout: tuple[float, float]) -> ApiResponse:
        raise NotImplementedError

    def close(self) -> None:
        self.closed = True


def test_the_wrapper_keeps_what_the_client_asks_of_the_transport() -> None:
    inner = _Mwaaish()
    traced = TracedTransport(inner, lambda_handler.tracer)
    kept = ("where", "max_path", "probe_with_auth", "unauthorized_hint", "forbidden_hint")
    assert {name: getattr(traced, name) for name in kept} == {name: getattr(inner, name) for name in kept}
    assert traced.known_version((1.0, 1.0)) == "v2"
    traced.close()
    assert inner.closed


def test_the_lambda_edge_wraps_the_process_wide_dispatchers_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAG_TRIGGER_CONFIG", raising=False)
    monkeypatch.setenv("AIRFLOW_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("DAG_ID", "load_orders")
    runtime.dispatcher.cache_clear()
    try:
        transport: Transport = runtime.dispatcher().client.transport
    finally:
        runtime.dispatcher.cache_clear()
    assert isinstance(transport, TracedTransport)
    assert isinstance(transport.inner, HttpTransport)
    assert transport.tracer is lambda_handler.tracer
    # Only the process-wide dispatcher: one built for a command or a test keeps its bare transport.
    assert isinstance(runtime.build_dispatcher(from_environment()).client.transport, HttpTransport)


def test_a_disabled_tracer_passes_calls_through() -> None:
    assert lambda_handler.tracer.disabled
    fake = FakeAirflow()
    inner = HttpTransport(BASE_URL, AirflowJwtCredentials(BASE_URL, "admin", "secret"), session_for(fake))
    client = AirflowClient(SETTINGS, TracedTransport(inner, lambda_handler.tracer))
    request = TriggerRequest(REQUEST.dag_id, "gcs__untraced", {}, "r", REQUEST.event)
    assert client.trigger(request).outcome == "created"
