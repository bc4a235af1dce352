"""The Lambda handlers as Lambda invokes them: every payload shape, SQS batches in a bounded pool, EMF metrics.

The process-wide dispatcher is replaced by one on the in-process fake Airflow, its transport wrapped the way
the edge wraps it (:class:`TracedTransport`, with tracing disabled as it is outside Lambda). Logs and metrics
are read as CloudWatch would get them: the JSON lines the function prints.
"""

from __future__ import annotations

import copy
import io
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from lambda_trigger import sqs
from lambda_trigger.handler import handler, logger, sqs_handler, tracer
from lambda_trigger.tracing import TracedTransport
from scripts.demo import LambdaContext
from shared import runtime
from shared.airflow_client import AirflowClient
from shared.config import from_mapping
from shared.credentials import AirflowJwtCredentials
from shared.dispatch import DeliveryFailed, Dispatcher
from shared.errors import ConfigError
from shared.retry import Backoff
from shared.transport import HttpTransport
from tests.fake_airflow import BASE_URL, FakeAirflow, response, session_for
from tests.support import load_event

ROUTES = [
    {"name": "landing", "dag_id": "load_orders", "sources": ["s3"], "bucket": "acme-landing"},
    {"name": "requests", "dag_id": "load_orders", "sources": ["sns", "sqs"], "attributes": {"dag_id": "load_orders"}},
    {"name": "queue", "dag_id": "queue_consumer", "sources": ["sqs"], "attributes": {"dag_id": "queue_consumer"}},
    # Messages naming these DAGs: one Airflow does not know, one it answers 503 for, one it refuses us (403).
    {"name": "unknown", "dag_id": "no_such_dag", "sources": ["sqs"], "attributes": {"dag_id": "no_such_dag"}},
    {"name": "flaky", "dag_id": "flaky", "sources": ["sqs"], "attributes": {"dag_id": "flaky"}},
    {"name": "locked", "dag_id": "locked", "sources": ["sqs"], "attributes": {"dag_id": "locked"}},
]


@dataclass
class Airflow(FakeAirflow):
    """The fake Airflow, counting trigger POSTs in flight at once; DAGs in ``down`` answer 503."""

    down: set[str] = field(default_factory=set)
    #: DAGs whose every call Airflow refuses (403): the deployment lacks a permission.
    forbidden: set[str] = field(default_factory=set)
    #: When set, every trigger POST waits here until this many are in flight together.
    gate: threading.Barrier | None = None
    in_flight: int = 0
    most_in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Answer like the fake, holding each trigger POST a moment so overlaps show."""
        url = request.url or ""
        if any(f"/dags/{dag_id}" in url for dag_id in self.down):
            return response(503, {"detail": "Service Unavailable"})
        if any(f"/dags/{dag_id}" in url for dag_id in self.forbidden):
            return response(403, {"detail": "Forbidden"})
        if request.method != "POST" or not url.endswith("/dagRuns"):
            return super().send(request, **kwargs)
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                self.gate.wait()
            else:
                time.sleep(0.02)
            return super().send(request, **kwargs)
        finally:
            with self._lock:
                self.in_flight -= 1


@pytest.fixture
def airflow(monkeypatch: pytest.MonkeyPatch) -> Airflow:
    """A fake Airflow 3 that the handlers' process-wide dispatcher triggers, with :data:`ROUTES`."""
    fake = Airflow(
        dags={"load_orders": False, "queue_consumer": False, "flaky": False, "locked": False},
        down={"flaky"},
        forbidden={"locked"},
    )
    config = from_mapping(
        {
            "airflow": {
                "url": BASE_URL,
                "allow_insecure_http": True,
                "auth": "jwt",
                "username": "admin",
                "deadline": 0.5,
            },
            "routes": ROUTES,
        },
        "test",
    )
    transport = HttpTransport(BASE_URL, AirflowJwtCredentials(BASE_URL, "admin", "secret"), session_for(fake))
    client = AirflowClient(config.airflow, TracedTransport(transport, tracer), backoff=Backoff(base=0.01, cap=0.05))
    dispatch = Dispatcher(config, client)
    monkeypatch.setattr(runtime, "dispatcher", lambda: dispatch)
    return fake


Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def printed(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Lines:
    """Every JSON line the function prints from now on (log records and EMF metrics), parsed.

    Powertools' log handler was made at import, around the stdout of that moment: it writes here instead.
    """
    logs = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", logs)

    def lines() -> list[dict[str, Any]]:
        text = logs.getvalue() + capsys.readouterr().out
        logs.seek(0)
        logs.truncate()
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    return lines


def runs(fake: FakeAirflow) -> dict[str, tuple[str, Any]]:
    """What each run in Airflow was triggered by, by run id: its conf's source, and its object key or body."""
    return {
        run_id: (run["conf"]["source"], run["conf"]["key"] if "key" in run["conf"] else run["conf"]["body"])
        for (_, run_id), run in fake.runs.items()
    }


def message(message_id: str, dag_id: str) -> dict[str, Any]:
    """An SQS application message whose ``dag_id`` attribute routes it to ``dag_id``."""
    record: dict[str, Any] = copy.deepcopy(load_event("sqs_plain_message.json")["Records"][0])
    record["messageId"] = message_id
    record["messageAttributes"]["dag_id"]["stringValue"] = dag_id
    return record


def s3_records(*names: str) -> list[dict[str, Any]]:
    """The records of several S3 notification samples, as one notification's."""
    return [record for name in names for record in load_event(name)["Records"]]


def emf(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The one EMF document among the printed lines."""
    [document] = [line for line in lines if "_aws" in line]
    return document


def values(document: dict[str, Any], name: str) -> list[float]:
    """A metric's values (a list in EMF; a number is allowed too)."""
    value = document.get(name, [])
    return value if isinstance(value, list) else [value]


def counts(document: dict[str, Any]) -> tuple[float, float, float]:
    """``Triggered``, ``AlreadyTriggered`` and ``Failed``: one value each per invocation."""
    [triggered], [already], [failed] = (values(document, n) for n in ("Triggered", "AlreadyTriggered", "Failed"))
    return triggered, already, failed


# --- direct invocations -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        pytest.param(
            {"Records": s3_records("s3_put.json", "s3_special_keys.json")},
            [
                ("s3", "incoming/2026/11/23/daily orders.csv"),
                ("s3", "exports/2026/c++ notes/résumé draft v2.txt"),
            ],
            id="s3-several-records-keys-decoded",
        ),
        pytest.param(
            load_event("sns_s3_notification.json"), [("s3", "incoming/2026/11/23/daily orders.csv")], id="s3-in-sns"
        ),
        pytest.param(
            load_event("sns_message.json"), [("sns", {"table": "orders", "run_date": "2026-11-23"})], id="sns-message"
        ),
        pytest.param(
            load_event("eventbridge_s3_object_created.json"),
            [("s3", "incoming/2026/11/23/orders.parquet")],
            id="eventbridge-object-created",
        ),
    ],
)
def test_handler_creates_one_run_per_routed_event_of_each_shape(
    airflow: Airflow, event: dict[str, Any], expected: list[tuple[str, Any]]
) -> None:
    answer = handler(copy.deepcopy(event), LambdaContext())
    assert [run["outcome"] for run in answer["runs"]] == ["created"] * len(expected)
    assert [runs(airflow)[run["dag_run_id"]] for run in answer["runs"]] == expected


def test_an_sns_message_is_routed_by_its_message_attributes(airflow: Airflow) -> None:
    answer = handler(load_event("sns_message.json"), LambdaContext())
    [run] = answer["runs"]
    assert run["dag_id"] == "load_orders"
    assert airflow.runs[("load_orders", run["dag_run_id"])]["conf"]["attributes"] == {"dag_id": "load_orders"}


def test_the_s3_test_event_is_skipped_without_calling_airflow(airflow: Airflow) -> None:
    answer = handler(load_event("s3_test_event.json"), LambdaContext())
    assert answer["runs"] == []
    assert "s3:TestEvent for bucket 'acme-landing'" in answer["skipped"][0]
    assert airflow.calls == []


def test_a_failed_direct_invocation_raises_so_lambda_retries_it(airflow: Airflow) -> None:
    event = load_event("s3_put.json")
    airflow.down.add("load_orders")
    with pytest.raises(DeliveryFailed) as failed:
        handler(copy.deepcopy(event), LambdaContext())
    assert failed.value.retryable
    airflow.down.clear()
    assert [run["outcome"] for run in handler(event, LambdaContext())["runs"]] == ["created"]


def test_the_same_object_through_s3_sns_sqs_and_its_redelivery_is_one_run(airflow: Airflow) -> None:
    first = handler(load_event("s3_put.json"), LambdaContext())
    through_sns = handler(load_event("sns_s3_notification.json"), LambdaContext())
    through_sqs = handler({"Records": load_event("sqs_batch_s3.json")["Records"][:1]}, LambdaContext())
    assert [r["outcome"] for r in first["runs"] + through_sns["runs"]] == ["created", "already_triggered"]
    assert through_sqs == {"batchItemFailures": []}
    assert len(airflow.runs) == 1


# --- SQS batches ------------------------------------------------------------------------------


@pytest.mark.parametrize("entry_point", [sqs_handler, handler], ids=["sqs_handler", "handler"])
def test_every_sqs_record_shape_becomes_its_run(airflow: Airflow, entry_point: Callable[..., Any]) -> None:
    # S3 -> SQS and S3 -> SNS -> SQS; S3 -> SNS -> SQS and an application message with raw delivery; an SNS
    # application message without it; a plain SQS message.
    samples = ("sqs_batch_s3.json", "sqs_sns_raw.json", "sqs_sns_message.json", "sqs_plain_message.json")
    batch = {"Records": [record for name in samples for record in load_event(name)["Records"]]}
    assert entry_point(batch, LambdaContext()) == {"batchItemFailures": []}
    assert sorted(runs(airflow).values(), key=str) == [
        ("s3", "incoming/2026/11/23/daily orders.csv"),
        ("s3", "incoming/2026/11/23/refunds (2).csv"),
        ("s3", "incoming/2026/11/23/returns.csv"),
        ("sns", {"table": "returns", "run_date": "2026-11-23"}),
        ("sqs", "rebuild orders for 2026-11-23"),
        ("sqs", {"table": "orders", "run_date": "2026-11-23"}),
    ]


def test_only_records_worth_retrying_are_reported_and_poison_is_logged(airflow: Airflow, printed: Lines) -> None:
    unparseable = copy.deepcopy(load_event("sqs_batch_s3.json")["Records"][0])
    unparseable["messageId"] = "unparseable"
    unparseable["body"] = unparseable["body"].replace('"key": ', '"name": ')
    batch = {
        "Records": [
            message("fine", "queue_consumer"),
            unparseable,
            message("unknown-dag", "no_such_dag"),
            message("airflow-503", "flaky"),
            message("no-permission", "locked"),
        ]
    }
    # A missing permission is the deployment's fault, not the record's: back to the queue (and its DLQ).
    assert sqs_handler(batch, LambdaContext()) == {
        "batchItemFailures": [{"itemIdentifier": "airflow-503"}, {"itemIdentifier": "no-permission"}]
    }
    assert [run["dag_id"] for run in airflow.runs.values()] == ["queue_consumer"]
    errors = {line["sqs_message_id"]: line["message"] for line in printed() if line.get("level") == "ERROR"}
    assert errors["unparseable"].startswith(
        "rejected event, not retrying: message unparseable.body.Records[0].s3.object.key is missing"
    )
    assert errors["unknown-dag"].startswith(
        "message unknown-dag is not retried, redelivering it cannot help (DagNotFoundError): DAG 'no_such_dag'"
    )
    assert "is not retried" not in errors["airflow-503"]  # failed, logged, and back to the queue


def test_records_are_triggered_at_once(airflow: Airflow) -> None:
    # Each trigger waits until all four are in flight: one at a time, the first would wait forever.
    airflow.gate = threading.Barrier(4, timeout=5)
    batch = {"Records": [message(f"m{i}", "queue_consumer") for i in range(4)]}
    assert sqs_handler(batch, LambdaContext()) == {"batchItemFailures": []}
    assert (len(airflow.runs), airflow.most_in_flight) == (4, 4)


def test_the_pool_is_bounded_by_the_environment(airflow: Airflow, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sqs.CONCURRENCY_ENV, "2")
    batch = {"Records": [message(f"m{i}", "queue_consumer") for i in range(6)]}
    assert sqs_handler(batch, LambdaContext()) == {"batchItemFailures": []}
    assert (len(airflow.runs), airflow.most_in_flight) == (6, 2)


@pytest.mark.parametrize(
    ("value", "workers"),
    [(None, 8), ("", 8), ("1", 1), (" 16 ", 16), ("0", None), ("-2", None), ("eight", None), ("2.5", None)],
)
def test_concurrency_setting(value: str | None, workers: int | None) -> None:
    env = {} if value is None else {sqs.CONCURRENCY_ENV: value}
    if workers is None:
        with pytest.raises(ConfigError, match=sqs.CONCURRENCY_ENV):
            sqs.concurrency(env)
    else:
        assert sqs.concurrency(env) == workers


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_a_setup_failure_fails_the_whole_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> Dispatcher:
        raise ConfigError("config.toml: routes[0].dag_id is required")

    monkeypatch.setattr(runtime, "dispatcher", broken)
    # Not one record is at fault, so none may be acknowledged as poison: the whole batch goes back.
    with pytest.raises(ConfigError):
        sqs_handler(load_event("sqs_batch_s3.json"), LambdaContext())


# --- metrics ----------------------------------------------------------------------------------


def test_each_invocation_flushes_its_trigger_counts_and_latencies(airflow: Airflow, printed: Lines) -> None:
    event = {"Records": s3_records("s3_put.json", "s3_special_keys.json")}
    handler(copy.deepcopy(event), LambdaContext())
    first = emf(printed())
    handler(copy.deepcopy(event), LambdaContext())
    again = emf(printed())

    [directive] = first["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "DagTrigger"
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        "Triggered": "Count",
        "AlreadyTriggered": "Count",
        "Failed": "Count",
        "TriggerLatency": "Milliseconds",
    }
    assert [counts(first), counts(again)] == [(2, 0, 0), (0, 2, 0)]
    # One latency per trigger; each includes the fake's 20 ms hold on the POST.
    assert len(values(first, "TriggerLatency")) == 2
    assert all(20 <= ms < 5000 for ms in values(first, "TriggerLatency"))


def test_metrics_are_flushed_when_an_invocation_fails(airflow: Airflow, printed: Lines) -> None:
    airflow.down.add("load_orders")
    with pytest.raises(DeliveryFailed):
        handler(load_event("s3_put.json"), LambdaContext())
    document = emf(printed())
    assert (counts(document), len(values(document, "TriggerLatency"))) == ((0, 0, 1), 1)


def test_a_batch_counts_every_record_once(airflow: Airflow, printed: Lines) -> None:
    batch = {"Records": [message("a", "queue_consumer"), message("b", "flaky"), message("c", "no_such_dag")]}
    sqs_handler(batch, LambdaContext())
    document = emf(printed())
    assert counts(document) == (1, 0, 2)
    assert len(values(document, "TriggerLatency")) == 3
