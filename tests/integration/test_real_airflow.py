"""Triggering through the real REST API of Airflow 3 and Airflow 2, from events to finished runs."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest

from shared.cli import main as cli_main
from shared.dispatch import Plan, Report, plan_payload
from shared.errors import CredentialError, DagNotFoundError, ForbiddenError
from shared.runtime import build_dispatcher
from tests.integration.conftest import DEMO_DAG, PAUSED_DAG, Target
from tests.support import load_event


def gcs_event(generation: str) -> dict[str, Any]:
    """The sample GCS CloudEvent for a new generation of the object (so a new run id)."""
    event = copy.deepcopy(load_event("gcs_finalized.cloudevent.json"))
    event["data"]["generation"] = generation
    event["id"] = f"evt-{generation}"
    return event


def s3_event(version: str) -> dict[str, Any]:
    """The sample S3 notification for a new object version."""
    event = copy.deepcopy(load_event("s3_put.json"))
    event["Records"][0]["s3"]["object"]["versionId"] = version
    return event


def deliver(
    target: Target, payload: Any, routes: list[dict[str, Any]] | None = None, **airflow: Any
) -> tuple[Plan, Report]:
    """Plan and send ``payload`` with a fresh dispatcher for ``target``."""
    config = target.config(routes, **airflow)
    planned = plan_payload(payload, config)
    return planned, build_dispatcher(config).run(planned)


def test_event_creates_a_run_that_succeeds_with_the_conf(target: Target, unique: str) -> None:
    planned, report = deliver(target, gcs_event(unique))
    assert report.ok, report.describe()
    [result] = report.results
    assert (result.outcome, result.dag_id) == ("created", DEMO_DAG)
    assert target.airflow.wait_for_run_state(DEMO_DAG, result.dag_run_id) == "success"
    received = target.airflow.received_conf(result.dag_run_id)
    assert received == planned.requests[0].conf
    assert received["key"] == "incoming/2026/11/23/orders.csv"
    assert received["version"] == unique
    status, run = target.airflow.request(
        "GET", f"{target.airflow.api_prefix}/dags/{DEMO_DAG}/dagRuns/{result.dag_run_id}"
    )
    assert status == 200
    assert (
        run["note"]
        == f"dag-trigger: gs://acme-landing/incoming/2026/11/23/orders.csv (evt-{unique}), route {DEMO_DAG}#0"
    )


def test_redelivered_event_makes_exactly_one_run(target: Target, unique: str) -> None:
    event = s3_event(unique)
    _, first = deliver(target, event)
    _, second = deliver(target, event)
    assert [r.outcome for r in first.results] == ["created"]
    assert [r.outcome for r in second.results] == ["already_triggered"]
    run_id = first.results[0].dag_run_id
    assert second.results[0].dag_run_id == run_id
    assert target.runs_with_id(DEMO_DAG, run_id) == 1


def test_unknown_dag_is_a_clear_error_and_creates_nothing(target: Target, unique: str) -> None:
    _, report = deliver(target, gcs_event(unique), routes=[{"dag_id": "no_such_dag"}])
    [failure] = report.failures
    assert isinstance(failure.error, DagNotFoundError)
    assert "'no_such_dag' does not exist" in str(failure.error)
    assert not failure.error.retryable


def test_wrong_password_is_a_clear_error(target: Target, unique: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WRONG_PASSWORD", "not-the-password")
    planned, report = deliver(target, gcs_event(unique), password_env="WRONG_PASSWORD")
    [failure] = report.failures
    if target.major == "3":
        assert isinstance(failure.error, CredentialError)
        assert "refused username 'admin'" in str(failure.error)
    else:
        # Airflow 2's basic auth answers a wrong password with 403, not 401.
        assert isinstance(failure.error, ForbiddenError)
        assert "wrong username or password" in str(failure.error)
    assert "not-the-password" not in str(failure.error)
    assert target.runs_with_id(DEMO_DAG, planned.requests[0].dag_run_id) == 0


def test_paused_dag_gets_a_queued_run_and_a_warning(target: Target, unique: str) -> None:
    _, report = deliver(target, gcs_event(unique), routes=[{"dag_id": PAUSED_DAG}])
    [result] = report.results
    assert (result.outcome, result.state) == ("created", "queued")
    assert any("paused" in w for w in result.warnings)


def test_sqs_batch_fans_out_to_one_run_per_object(target: Target, unique: str) -> None:
    batch = load_event("sqs_batch_s3.json")
    for record in batch["Records"]:
        record["body"] = record["body"].replace("0065A1B2C3D4E5F60", f"{unique}-")
    _, report = deliver(target, batch)
    assert [r.outcome for r in report.results] == ["created", "created"]
    assert len({r.dag_run_id for r in report.results}) == 2


def test_cli_fire_and_doctor(target: Target, unique: str, tmp_path: Path) -> None:
    config = target.write_config(tmp_path / "config.json")
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(s3_event(unique)))
    out = io.StringIO()
    assert cli_main(["fire", "--config", str(config), str(event_file)], out=out) == 0
    [line] = out.getvalue().splitlines()
    assert json.loads(line)["outcome"] == "created"

    out = io.StringIO()
    assert cli_main(["doctor", "--config", str(config)], out=out) == 0
    table = out.getvalue()
    assert f"speaks API {'v2' if target.major == '3' else 'v1'}" in table
    assert f"ok    dag {DEMO_DAG}" in table

    broken = target.write_config(tmp_path / "broken.json", routes=[{"dag_id": "no_such_dag"}])
    out = io.StringIO()
    assert cli_main(["doctor", "--config", str(broken)], out=out) == 1
    assert "FAIL  dag no_such_dag" in out.getvalue()
    assert "fix: deploy the DAG file" in out.getvalue()
