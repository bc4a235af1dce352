"""Log lines Cloud Logging can search: one JSON line per trigger outcome, carrying the event's fields."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shared.airflow_client import AirflowClient
from shared.config import AirflowSettings, Config, Route
from shared.credentials import BasicCredentials
from shared.dispatch import Dispatcher, Report, plan_payload
from shared.logs import JsonFormatter, RedactingFilter, configure_json_logging
from shared.retry import Backoff
from shared.transport import HttpTransport
from tests.fake_airflow import BASE_URL, FakeAirflow, session_for
from tests.support import load_event

Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def json_lines() -> Iterator[Lines]:
    """The project's log lines as the function writes them, parsed."""
    logger = logging.getLogger("dag_trigger")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)
    logger.setLevel(level)


def dispatcher(fake: FakeAirflow) -> Dispatcher:
    settings = AirflowSettings(url=BASE_URL, api_version="v1", auth="basic")
    client = AirflowClient(
        settings,
        HttpTransport(BASE_URL, BasicCredentials("admin", "secret"), session_for(fake)),
        backoff=Backoff(base=1000.0, cap=1000.0, random=lambda: 1.0),
    )
    return Dispatcher(Config(settings, (Route(dag_id="load_orders", name="landing"),), "test.toml"), client)


def trigger(fake: FakeAirflow, sample: str) -> Report:
    active = dispatcher(fake)
    return active.run(plan_payload(load_event(sample), active.config))


def outcome_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # The client logs its own outcome too (logger dag_trigger.airflow), without the event's fields.
    return [line for line in lines if line["logger"] == "dag_trigger" and "outcome" in line]


def test_created_run_is_one_json_line_with_the_object_and_the_run(json_lines: Lines) -> None:
    report = trigger(FakeAirflow(version="v1"), "gcs_finalized.cloudevent.json")

    (line,) = outcome_lines(json_lines())
    assert line == {
        "severity": "INFO",
        "message": (
            f"dag run created: dag=load_orders run_id={report.results[0].dag_run_id} "
            "for gs://acme-landing/incoming/2026/11/23/orders.csv (created)"
        ),
        "logger": "dag_trigger",
        "source": "gcs",
        "event_id": "9876543210123456",
        "bucket": "acme-landing",
        "key": "incoming/2026/11/23/orders.csv",
        "event_type": "created",
        "route": "landing",
        "dag_id": "load_orders",
        "dag_run_id": report.results[0].dag_run_id,
        "outcome": "created",
        "state": "queued",
    }


def test_failed_trigger_is_one_json_line_with_the_object_the_run_and_the_error(json_lines: Lines) -> None:
    report = trigger(FakeAirflow(version="v1", dags={}), "gcs_finalized.cloudevent.json")  # an unknown DAG

    (line,) = outcome_lines(json_lines())
    assert line["severity"] == "ERROR"
    assert line["message"].startswith("failed to trigger dag=load_orders")
    assert {
        "source": "gcs",
        "event_id": "9876543210123456",
        "bucket": "acme-landing",
        "key": "incoming/2026/11/23/orders.csv",
        "event_type": "created",
        "route": "landing",
        "dag_id": "load_orders",
        "dag_run_id": report.failures[0].request.dag_run_id,
        "outcome": "failed",
        "error": "DagNotFoundError",
        "retryable": False,
    }.items() <= line.items()


def test_message_outcome_carries_the_message_id_and_topic(json_lines: Lines) -> None:
    trigger(FakeAirflow(version="v1"), "pubsub_message.cloudevent.json")

    (line,) = outcome_lines(json_lines())
    assert {
        "source": "pubsub",
        "message_id": "11223344556677",
        "topic": "projects/acme-prod/topics/dag-requests",
        "dag_id": "load_orders",
        "outcome": "created",
    }.items() <= line.items()
    assert "bucket" not in line


@contextlib.contextmanager
def bare_logging() -> Iterator[None]:
    """Logging as a fresh process has it: no handler on the root logger nor on ours; restored afterwards."""
    root, ours = logging.getLogger(), logging.getLogger("dag_trigger")
    saved = root.handlers[:], ours.handlers[:], ours.level, ours.propagate
    root.handlers.clear()
    ours.handlers.clear()
    try:
        yield
    finally:
        root.handlers[:], ours.handlers[:] = saved[0], saved[1]
        ours.setLevel(saved[2])
        ours.propagate = saved[3]


def test_other_libraries_warnings_are_json_lines_too(capsys: pytest.CaptureFixture[str]) -> None:
    with bare_logging():
        configure_json_logging()
        logging.getLogger("urllib3.connectionpool").warning("Connection pool is full, discarding connection")
        logging.getLogger("urllib3.connectionpool").info("below the root logger's level: not written")
        logging.getLogger("dag_trigger").info("ours, at INFO")

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["logger"], line["severity"], line["message"]) for line in lines] == [
        ("urllib3.connectionpool", "WARNING", "Connection pool is full, discarding connection"),
        ("dag_trigger", "INFO", "ours, at INFO"),
    ]


def test_a_host_that_set_up_logging_keeps_its_root_handlers() -> None:
    host = logging.NullHandler()
    with bare_logging():
        logging.getLogger().addHandler(host)
        configure_json_logging()
        assert logging.getLogger().handlers == [host]
