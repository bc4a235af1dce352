"""Amazon MWAA end to end: a real S3 upload (moto) through the Lambda handlers, MWAA's InvokeRestApi (the
local fake, reached through ``AWS_ENDPOINT_URL_MWAA``) and the real local Airflow 3 and 2, with the Lambda's
own credentials or a role assumed through moto's STS.
"""

from __future__ import annotations

import copy
import io
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from scripts.demo import LambdaContext
from shared.cli import main as cli_main
from shared.config import from_mapping
from shared.dispatch import plan_payload
from shared.errors import ForbiddenError, InvalidRequestError
from shared.runtime import build_dispatcher, dispatcher
from tests.fake_mwaa import FakeMwaa
from tests.integration.aws_local import moto_server, use_lambda_environment
from tests.integration.conftest import DEMO_DAG, PAUSED_DAG, Target

REGION = "us-east-1"
ACCOUNT = "123456789012"
ACCESS_KEY, SECRET_KEY = "AKIALAMBDAEXAMPLE001", "lambda-role-secret"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/airflow-trigger"
ENVIRONMENTS = {"3": "analytics-airflow3", "2": "analytics-airflow2"}


@dataclass
class Aws:
    """moto (S3, SQS, STS) and the MWAA fake, both on loopback."""

    moto_url: str
    mwaa: FakeMwaa


@pytest.fixture(scope="module")
def aws_services(airflows: dict[str, Target]) -> Iterator[Aws]:
    with moto_server() as moto_url, FakeMwaa(region=REGION, account=ACCOUNT) as mwaa:
        for major, name in ENVIRONMENTS.items():
            mwaa.add_environment(name, airflows[major].airflow)
        mwaa.add_credentials(ACCESS_KEY, SECRET_KEY, arn=f"arn:aws:iam::{ACCOUNT}:role/lambda-execution")
        mwaa.trust_moto(moto_url)
        yield Aws(moto_url, mwaa)


@pytest.fixture
def aws(aws_services: Aws, monkeypatch: pytest.MonkeyPatch) -> Aws:
    """The Lambda's environment: its own credentials, and every AWS endpoint on loopback."""
    use_lambda_environment(
        monkeypatch,
        endpoint=aws_services.moto_url,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        region=REGION,
        extra=aws_services.mwaa.env(),
    )
    aws_services.mwaa.reset_counts()
    return aws_services


def uploaded(unique: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Upload an object to a moto bucket that notifies an SQS queue; the SQS record and the S3 notification."""
    bucket, queue = f"landing-{unique}", f"landing-{unique}"
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    s3.put_object(Bucket=bucket, Key=f"incoming/{unique}/daily orders.csv", Body=b"id,amount\n1,2\n")
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    (message,) = [m for m in messages if "s3:TestEvent" not in m["Body"]]
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1763885600000"},
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }
    return record, json.loads(message["Body"])


def mwaa_config(tmp_path: Path, major: str, unique: str, **airflow: Any) -> Path:
    raw = {
        "airflow": {"mwaa_environment": ENVIRONMENTS[major], "aws_region": REGION, "deadline": 30, **airflow},
        "routes": [{"dag_id": DEMO_DAG, "bucket": f"landing-{unique}"}],
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    return path


@pytest.fixture
def lambda_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Point the handlers' process-wide dispatcher at a config file, fresh for this test."""

    def use(path: Path) -> None:
        monkeypatch.setenv("DAG_TRIGGER_CONFIG", str(path))
        dispatcher.cache_clear()

    yield use
    dispatcher.cache_clear()


@pytest.mark.parametrize("assumed", [False, True], ids=["lambda-role", "assumed-role"])
@pytest.mark.parametrize("major", ["3", "2"], ids=["airflow3", "airflow2"])
def test_an_s3_upload_becomes_one_run_through_invoke_rest_api(
    major: str, assumed: bool, aws: Aws, airflows: dict[str, Target], lambda_config: Any, tmp_path: Path
) -> None:
    from lambda_trigger.handler import handler, sqs_handler

    unique = uuid.uuid4().hex[:10]
    record, notification = uploaded(unique)
    role = {"assume_role_arn": ROLE_ARN, "assume_role_external_id": "dag-trigger-test"} if assumed else {}
    config = mwaa_config(tmp_path, major, unique, **role)
    lambda_config(config)

    direct = handler(copy.deepcopy(notification), LambdaContext(timeout_seconds=30))
    queued = sqs_handler({"Records": [record]}, LambdaContext(timeout_seconds=30))
    again = handler(copy.deepcopy(notification), LambdaContext(timeout_seconds=30))

    assert [run["outcome"] for run in direct["runs"] + again["runs"]] == ["created", "already_triggered"]
    assert queued == {"batchItemFailures": []}
    (request,) = plan_payload(notification, from_mapping(json.loads(config.read_text()), "test")).requests
    assert direct["runs"][0]["dag_run_id"] == request.dag_run_id
    assert airflows[major].runs_with_id(DEMO_DAG, request.dag_run_id) == 1
    keys = set(aws.mwaa.signed_with)
    # Every MWAA call was signed by one identity: the assumed role's temporary key, fetched once, or the Lambda's.
    assert len(keys) == 1
    assert keys.pop().startswith("ASIA") if assumed else keys == {ACCESS_KEY}


def test_a_run_of_a_dag_whose_run_url_is_too_long_is_confirmed_from_the_run_list(
    aws: Aws, airflows: dict[str, Target], tmp_path: Path, unique: str
) -> None:
    for major in ("3", "2"):
        config = from_mapping(json.loads(mwaa_config(tmp_path, major, unique).read_text()), "test")
        event = s3_event(unique, major)
        active = build_dispatcher(config)
        first = active.run(plan_payload(event, config))
        again = active.run(plan_payload(event, config))
        assert [r.outcome for r in first.results + again.results] == ["created", "already_triggered"], major
        run_id = first.results[0].dag_run_id
        assert len(f"/dags/{DEMO_DAG}/dagRuns/{run_id}".replace(":", "%3A")) > 64
        assert any("/dagRuns?" in path for path in aws.mwaa.paths), aws.mwaa.paths


def s3_event(unique: str, tag: str) -> dict[str, Any]:
    """A direct S3 notification for an object new to Airflow."""
    from tests.support import load_event

    event = load_event("s3_put.json")
    record = event["Records"][0]
    record["s3"]["bucket"]["name"] = f"landing-{unique}"
    record["s3"]["object"]["key"] = f"incoming/{tag}/{unique}.csv"
    record["s3"]["object"]["sequencer"] = uuid.uuid4().hex[:16].upper()
    return event


def test_a_denied_caller_is_told_which_permission_on_which_resource(
    aws: Aws, airflows: dict[str, Target], tmp_path: Path, unique: str
) -> None:
    locked = f"locked-{unique}"
    aws.mwaa.add_environment(locked, airflows["3"].airflow)
    aws.mwaa.allow(f"arn:aws:iam::{ACCOUNT}:role/someone-else", locked)
    raw = json.loads(mwaa_config(tmp_path, "3", unique).read_text())
    raw["airflow"]["mwaa_environment"] = locked
    config = from_mapping(raw, "test")
    report = build_dispatcher(config).run(plan_payload(s3_event(unique, "denied"), config))
    (failure,) = report.failures
    assert isinstance(failure.error, ForbiddenError)
    assert f"airflow:InvokeRestApi on arn:aws:airflow:{REGION}:ACCOUNT:role/{locked}/" in str(failure.error)
    assert not failure.error.retryable


def test_a_dag_id_too_long_for_invoke_rest_api_is_refused_with_the_way_out(
    aws: Aws, tmp_path: Path, unique: str
) -> None:
    long_dag = "d" * 60
    raw = json.loads(mwaa_config(tmp_path, "3", unique).read_text())
    raw["routes"][0]["dag_id"] = long_dag
    config = from_mapping(raw, "test")
    report = build_dispatcher(config).run(plan_payload(s3_event(unique, "long"), config))
    (failure,) = report.failures
    assert isinstance(failure.error, InvalidRequestError)
    assert "over InvokeRestApi's 64" in str(failure.error)
    assert "CLI token" in str(failure.error)


def test_doctor_shows_the_assumed_identity_the_environment_and_the_dag(aws: Aws, tmp_path: Path, unique: str) -> None:
    config = mwaa_config(tmp_path, "3", unique, assume_role_arn=ROLE_ARN)
    config.write_text(json.dumps({**json.loads(config.read_text()), "routes": [{"dag_id": DEMO_DAG}]}))
    out = io.StringIO()
    assert cli_main(["doctor", "--config", str(config)], out=out) == 0
    table = re.sub(" +", " ", out.getvalue())
    assert (
        f"ok aws identity arn:aws:sts::{ACCOUNT}:assumed-role/airflow-trigger/dag-trigger in account {ACCOUNT}" in table
    )
    assert f"ok mwaa {ENVIRONMENTS['3']}: AVAILABLE, Airflow 3." in table
    assert f"ok reachable MWAA environment {ENVIRONMENTS['3']} ({REGION}) speaks API v2" in table
    assert f"ok dag {DEMO_DAG} exists, not paused" in table


def sqs_message(message_id: str, pipeline: str) -> dict[str, Any]:
    """An SQS application message routed by its ``pipeline`` attribute."""
    from tests.support import load_event

    record: dict[str, Any] = load_event("sqs_plain_message.json")["Records"][0]
    record["messageId"] = message_id
    record["messageAttributes"] = {"pipeline": {"stringValue": pipeline, "dataType": "String"}}
    return record


@pytest.mark.parametrize(
    ("assumed", "transport"),
    [
        pytest.param(False, "invoke_rest_api", id="lambda-role-invoke_rest_api"),
        pytest.param(True, "invoke_rest_api", id="assumed-role-invoke_rest_api"),
        pytest.param(False, "cli_token", id="lambda-role-cli_token"),
        # Whose credentials sign and which transport carries are independent (one botocore session serves both),
        # and this pair is the slowest test of all (a minute of Airflow CLI runs): `make soak` runs it.
        pytest.param(True, "cli_token", id="assumed-role-cli_token", marks=pytest.mark.soak),
    ],
)
def test_every_shape_through_mwaa(
    transport: str, assumed: bool, aws: Aws, airflows: dict[str, Target], lambda_config: Any, tmp_path: Path
) -> None:
    """An SNS message, an EventBridge event and an SQS batch (one poison record, one to retry) through MWAA."""
    from lambda_trigger.handler import handler, sqs_handler
    from tests.support import load_event

    unique = uuid.uuid4().hex[:10]
    role = {"assume_role_arn": ROLE_ARN} if assumed else {}
    config = mwaa_config(tmp_path, "3", unique, mwaa_transport=transport, paused="fail", **role)
    raw = json.loads(config.read_text())
    raw["routes"] = [
        {"name": "objects", "dag_id": DEMO_DAG, "bucket": f"landing-{unique}"},
        {"name": "fine", "dag_id": DEMO_DAG, "attributes": {"pipeline": f"fine-{unique}"}},
        {"name": "poison", "dag_id": "no_such_dag", "attributes": {"pipeline": f"poison-{unique}"}},
        {"name": "paused", "dag_id": PAUSED_DAG, "attributes": {"pipeline": f"paused-{unique}"}},
    ]
    config.write_text(json.dumps(raw))
    lambda_config(config)
    target = airflows["3"]

    sns = load_event("sns_message.json")
    sns["Records"][0]["Sns"]["MessageId"] = f"sns-{unique}"
    sns["Records"][0]["Sns"]["MessageAttributes"] = {"pipeline": {"Type": "String", "Value": f"fine-{unique}"}}
    eventbridge = load_event("eventbridge_s3_object_created.json")
    eventbridge["id"] = f"eb-{unique}"
    eventbridge["detail"]["bucket"]["name"] = f"landing-{unique}"
    eventbridge["detail"]["object"]["key"] = f"incoming/{unique}.parquet"
    batch = {
        "Records": [
            sqs_message(f"fine-{unique}", f"fine-{unique}"),
            sqs_message(f"poison-{unique}", f"poison-{unique}"),
            sqs_message(f"paused-{unique}", f"paused-{unique}"),
        ]
    }

    for event in (sns, eventbridge):
        first = handler(copy.deepcopy(event), LambdaContext(timeout_seconds=30))
        again = handler(copy.deepcopy(event), LambdaContext(timeout_seconds=30))
        assert [run["outcome"] for run in first["runs"] + again["runs"]] == ["created", "already_triggered"]
        assert target.runs_with_id(DEMO_DAG, first["runs"][0]["dag_run_id"]) == 1
    answer = sqs_handler(copy.deepcopy(batch), LambdaContext(timeout_seconds=30))
    assert answer == {"batchItemFailures": [{"itemIdentifier": f"paused-{unique}"}]}
    parsed = from_mapping(raw, "test")
    (fine,) = plan_payload({"Records": batch["Records"][:1]}, parsed).requests
    assert target.runs_with_id(DEMO_DAG, fine.dag_run_id) == 1
    assert len(set(aws.mwaa.signed_with)) == 1
