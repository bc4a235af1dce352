"""MWAA's CLI token path end to end: a real S3 upload (moto) through the Lambda handlers, CreateCliToken and the
web server's ``/aws_mwaa/cli`` (the local fake), which runs the real ``airflow`` CLI of Airflow 3 and 2.

The AWS side (moto, the fake, the Lambda's credentials, the config file) is test_mwaa_e2e.py's.
"""

from __future__ import annotations

import copy
import json
import shlex
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from scripts.demo import LambdaContext
from shared import mwaa_cli
from shared.config import Config, from_mapping
from shared.dispatch import plan_payload
from shared.errors import DagNotFoundError, DagPausedError
from shared.runtime import build_dispatcher
from tests.integration import test_mwaa_e2e as e2e
from tests.integration.conftest import DEMO_DAG, PAUSED_DAG, Target

# The same fixtures, in this module's namespace so pytest finds them (a module of its own, so its own moto and fake).
aws_services = e2e.aws_services
aws = e2e.aws
lambda_config = e2e.lambda_config

#: In the demo DAG file for this: InvokeRestApi cannot even read it (``/dags/<id>`` is over 64 characters).
LONG_DAG = "dag_trigger_demo_with_a_dag_id_too_long_for_invoke_rest_api"
#: A CLI command takes seconds (the airflow CLI starts afresh each time); several run per event.
DEADLINE = 150


def invocation() -> LambdaContext:
    """A fresh invocation's context (its time runs from now), longer than any event's commands, so only the
    config's deadline bounds them."""
    return LambdaContext(timeout_seconds=300)


def cli_config(tmp_path: Path, major: str, unique: str, **airflow: Any) -> Path:
    """test_mwaa_e2e's config, with calls through the CLI token path."""
    path = e2e.mwaa_config(tmp_path, major, unique, mwaa_transport="cli_token", deadline=DEADLINE, **airflow)
    return path


def config_for(tmp_path: Path, major: str, unique: str, dag_id: str, **airflow: Any) -> Config:
    raw = json.loads(cli_config(tmp_path, major, unique, **airflow).read_text())
    raw["routes"][0]["dag_id"] = dag_id
    return from_mapping(raw, "test")


def commands(mwaa: Any, verb: str) -> list[list[str]]:
    """The CLI commands of one verb (``trigger``, ``list-runs``) the web server ran, as argument lists."""
    return [args for args in map(shlex.split, mwaa.cli_commands) if args[:2] == ["dags", verb]]


@pytest.mark.parametrize("major", ["3", "2"], ids=["airflow3", "airflow2"])
def test_an_s3_upload_becomes_one_run_through_the_cli_and_one_token_serves_every_event(
    major: str,
    aws: e2e.Aws,
    airflows: dict[str, Target],
    lambda_config: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lambda_trigger.handler import handler, sqs_handler

    # Four events take about a minute here (every command starts the airflow CLI afresh), longer than a token
    # lives: tokens get ten minutes, so the count says whether one is reused, not how long the events took.
    monkeypatch.setattr(aws.mwaa, "cli_token_lifetime", 600.0)
    monkeypatch.setattr(mwaa_cli, "CLI_TOKEN_LIFETIME", timedelta(minutes=10))
    unique = uuid.uuid4().hex[:10]
    record, notification = e2e.uploaded(unique)
    config = cli_config(tmp_path, major, unique)
    lambda_config(config)
    other = e2e.s3_event(unique, "second")

    direct = handler(copy.deepcopy(notification), invocation())
    queued = sqs_handler({"Records": [record]}, invocation())
    again = handler(copy.deepcopy(notification), invocation())
    second = handler(other, invocation())

    outcomes = [run["outcome"] for run in direct["runs"] + again["runs"] + second["runs"]]
    assert outcomes == ["created", "already_triggered", "created"]
    assert queued == {"batchItemFailures": []}
    parsed = from_mapping(json.loads(config.read_text()), "test")
    (request,) = plan_payload(notification, parsed).requests
    assert direct["runs"][0]["dag_run_id"] == request.dag_run_id
    assert airflows[major].runs_with_id(DEMO_DAG, request.dag_run_id) == 1
    assert airflows[major].runs_with_id(DEMO_DAG, second["runs"][0]["dag_run_id"]) == 1
    # Four events, one token; nothing went through InvokeRestApi.
    assert aws.mwaa.calls["CreateCliToken"] == 1
    assert aws.mwaa.calls["InvokeRestApi"] == 0
    triggers = commands(aws.mwaa, "trigger")
    assert len(triggers) == 4
    assert all("--no-replace-microseconds" in args for args in triggers)
    # The two redeliveries were confirmed as our run from the run list, in this Airflow's dialect.
    (dialect,) = {tuple(args[:-1]) for args in commands(aws.mwaa, "list-runs")}
    assert ("-d" in dialect) is (major == "2")


def test_a_token_the_web_server_no_longer_accepts_is_replaced(
    aws: e2e.Aws, airflows: dict[str, Target], tmp_path: Path, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fake's tokens lapse long before the minute the transport counts on, so every command after the
    # first arrives with a token the web server refuses (403), and is sent once more with a new one.
    monkeypatch.setattr(aws.mwaa, "cli_token_lifetime", 1.0)
    config = config_for(tmp_path, "3", unique, DEMO_DAG)

    (result,) = build_dispatcher(config).run(plan_payload(e2e.s3_event(unique, "refused"), config)).results

    assert result.outcome == "created"
    assert airflows["3"].runs_with_id(DEMO_DAG, result.dag_run_id) == 1
    ran = len(aws.mwaa.cli_commands)
    assert ran == 3  # version, dags list, dags trigger
    assert aws.mwaa.calls["CreateCliToken"] == ran
    assert aws.mwaa.calls["cli"] == 2 * ran - 1


@pytest.mark.parametrize("major", ["3", "2"], ids=["airflow3", "airflow2"])
def test_the_conf_reaches_airflow_intact(major: str, aws: e2e.Aws, airflows: dict[str, Target], tmp_path: Path) -> None:
    unique = uuid.uuid4().hex[:10]
    event = e2e.s3_event(unique, 'it\'s a "quoted" $HOME file')
    config = config_for(tmp_path, major, unique, DEMO_DAG)
    plan = plan_payload(event, config)

    (result,) = build_dispatcher(config).run(plan).results

    assert result.outcome == "created"
    target = airflows[major].airflow
    status, run = target.request("GET", f"{target.api_prefix}/dags/{DEMO_DAG}/dagRuns/{result.dag_run_id}")
    assert (status, run["conf"]) == (200, dict(plan.requests[0].conf))


@pytest.mark.parametrize("major", ["3", "2"], ids=["airflow3", "airflow2"])
def test_an_unknown_dag_is_dag_not_found_and_nothing_is_triggered(
    major: str, aws: e2e.Aws, tmp_path: Path, unique: str
) -> None:
    config = config_for(tmp_path, major, unique, f"no_such_dag_{unique}")

    report = build_dispatcher(config).run(plan_payload(e2e.s3_event(unique, "unknown"), config))

    (failure,) = report.failures
    assert isinstance(failure.error, DagNotFoundError), failure.error
    assert not failure.error.retryable
    assert commands(aws.mwaa, "trigger") == []


@pytest.mark.parametrize("major", ["3", "2"], ids=["airflow3", "airflow2"])
def test_a_dag_id_too_long_for_invoke_rest_api_is_triggered_once_through_the_cli(
    major: str, aws: e2e.Aws, airflows: dict[str, Target], tmp_path: Path, unique: str
) -> None:
    target = airflows[major]
    target.airflow.wait_for_dag(LONG_DAG)
    config = config_for(tmp_path, major, unique, LONG_DAG)
    event = e2e.s3_event(unique, f"long-{major}")
    active = build_dispatcher(config)

    first = active.run(plan_payload(event, config))
    again = active.run(plan_payload(event, config))

    assert [r.outcome for r in first.results + again.results] == ["created", "already_triggered"], first.failures
    assert target.runs_with_id(LONG_DAG, first.results[0].dag_run_id) == 1
    assert len(f"/dags/{LONG_DAG}") > 64
    assert aws.mwaa.calls["InvokeRestApi"] == 0


@pytest.mark.parametrize("major", ["3", "2"], ids=["airflow3", "airflow2"])
def test_a_paused_dag_is_read_as_paused(major: str, aws: e2e.Aws, tmp_path: Path, unique: str) -> None:
    config = config_for(tmp_path, major, unique, PAUSED_DAG, paused="fail")

    report = build_dispatcher(config).run(plan_payload(e2e.s3_event(unique, "paused"), config))

    (failure,) = report.failures
    assert isinstance(failure.error, DagPausedError), failure.error
    assert commands(aws.mwaa, "trigger") == []
