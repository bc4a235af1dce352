"""The Lambda handlers against real Airflow 3 and 2, with AWS played by moto's server on loopback.

An S3 bucket notifies an SNS topic that fans out to two SQS queues, one with raw message delivery and one
without: both batches go through the handlers (records triggered at once), and every object becomes exactly
one run whichever queue delivers it. And the password in Secrets Manager: refused, corrected in the secret,
then used at the next event without waiting for the cache to expire.
"""

from __future__ import annotations

import copy
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from scripts.demo import LambdaContext
from shared.config import load_file
from shared.dispatch import DeliveryFailed, plan_payload
from shared.runtime import dispatcher
from tests.integration.aws_local import moto_server, use_lambda_environment
from tests.integration.conftest import DEMO_DAG, PAUSED_DAG, Target
from tests.support import load_event

REGION = "eu-west-1"
OBJECTS = 12


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """moto's server (S3, SNS, SQS, Secrets Manager) on a loopback port, for this module."""
    with moto_server() as url:
        yield url


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Lambda's environment: test credentials, and every AWS endpoint on loopback."""
    use_lambda_environment(
        monkeypatch,
        endpoint=moto_url,
        access_key="AKIAEXAMPLELAMBDA001",
        secret_key="lambda-role-secret",
        region=REGION,
    )


@pytest.fixture
def use_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], None]]:
    """Point the handlers' process-wide dispatcher at a config file, fresh for this test."""

    def use(path: Path) -> None:
        monkeypatch.setenv("DAG_TRIGGER_CONFIG", str(path))
        dispatcher.cache_clear()

    yield use
    dispatcher.cache_clear()


def fan_out(unique: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Upload :data:`OBJECTS` objects to a bucket notifying SNS -> SQS; the batches without, then with raw delivery."""
    sqs, sns, s3 = boto3.client("sqs"), boto3.client("sns"), boto3.client("s3")
    topic = sns.create_topic(Name=f"landing-{unique}")["TopicArn"]
    queues = {}
    for raw in (False, True):
        url = sqs.create_queue(QueueName=f"landing-{unique}-{'raw' if raw else 'enveloped'}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": str(raw).lower()})
        queues[raw] = (url, arn)
    bucket = f"landing-{unique}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={"TopicConfigurations": [{"TopicArn": topic, "Events": ["s3:ObjectCreated:*"]}]},
    )
    for n in range(OBJECTS):
        s3.put_object(Bucket=bucket, Key=f"incoming/{unique}/part-{n:02d}.csv", Body=b"id\n1\n")
    return tuple(batch(sqs, *queues[raw]) for raw in (False, True))  # type: ignore[return-value]


def batch(sqs: Any, url: str, arn: str) -> dict[str, Any]:
    """Every message in the queue (the s3:TestEvent sent on configuration included), as a Lambda SQS event."""
    records: list[dict[str, Any]] = []
    while len(records) < OBJECTS + 1:
        got = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        assert got, f"{len(records)} of {OBJECTS + 1} messages arrived"
        records += [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m["Attributes"],
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": REGION,
            }
            for m in got
        ]
    return {"Records": records}


def counts(printed: str) -> tuple[float, float, float]:
    """``Triggered``, ``AlreadyTriggered``, ``Failed`` from the invocation's EMF line."""
    [document] = [json.loads(line) for line in printed.splitlines() if line.startswith('{"_aws"')]
    return tuple(document[name][0] for name in ("Triggered", "AlreadyTriggered", "Failed"))  # type: ignore[return-value]


def test_sns_fan_out_to_sqs_with_and_without_raw_delivery_makes_one_run_per_object(
    target: Target,
    aws: None,
    use_config: Callable[[Path], None],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from lambda_trigger.handler import handler, sqs_handler

    unique = uuid.uuid4().hex[:10]
    routes = [{"dag_id": DEMO_DAG, "bucket": f"landing-{unique}"}]
    config = target.write_config(tmp_path / "config.json", routes=routes, deadline=60)
    use_config(config)
    enveloped, raw = fan_out(unique)

    capsys.readouterr()
    assert sqs_handler(copy.deepcopy(enveloped), LambdaContext(timeout_seconds=120)) == {"batchItemFailures": []}
    assert counts(capsys.readouterr().out) == (OBJECTS, 0, 0)
    assert handler(copy.deepcopy(raw), LambdaContext(timeout_seconds=120)) == {"batchItemFailures": []}
    assert counts(capsys.readouterr().out) == (0, OBJECTS, 0)

    planned = {kind: plan_payload(event, load_file(config)).requests for kind, event in (("e", enveloped), ("r", raw))}
    run_ids = {request.dag_run_id for request in planned["e"]}
    assert len(run_ids) == OBJECTS
    assert {request.dag_run_id for request in planned["r"]} == run_ids
    in_airflow = target.run_ids(DEMO_DAG)
    assert {run_id: in_airflow.count(run_id) for run_id in run_ids} == dict.fromkeys(run_ids, 1)


def s3_event(unique: str) -> dict[str, Any]:
    """A direct S3 notification for an object new to Airflow."""
    event = load_event("s3_put.json")
    record = event["Records"][0]
    record["s3"]["object"]["key"] = f"incoming/{unique}.csv"
    record["s3"]["object"]["sequencer"] = uuid.uuid4().hex[:16].upper()
    return event


def test_a_password_corrected_in_secrets_manager_is_used_at_the_next_event(
    target: Target,
    aws: None,
    use_config: Callable[[Path], None],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from lambda_trigger.handler import handler

    unique = uuid.uuid4().hex[:10]
    secret, wrong = f"airflow/{unique}", f"wrong-{uuid.uuid4().hex}"
    secrets = boto3.client("secretsmanager")
    secrets.create_secret(Name=secret, SecretString=wrong)
    use_config(target.write_config(tmp_path / "config.json", password_secret=secret))

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        # Every logger at DEBUG (botocore's and urllib3's included) while the function runs.
        with caplog.at_level(logging.DEBUG):
            return handler(copy.deepcopy(event), LambdaContext(timeout_seconds=30))

    refused = s3_event(unique)
    with pytest.raises(DeliveryFailed) as failed:
        invoke(refused)
    assert not failed.value.retryable
    # Corrected (or rotated) well within the cache's five minutes: the next refusal reads the secret again.
    secrets.put_secret_value(SecretId=secret, SecretString=json.dumps({"password": target.airflow.password}))
    again, fresh = invoke(refused), invoke(s3_event(f"{unique}-2"))
    assert [run["outcome"] for run in again["runs"] + fresh["runs"]] == ["created", "created"]

    logged = caplog.text + "".join(record.getMessage() for record in caplog.records)
    leaked = [name for name, value in (("password", target.airflow.password), ("wrong", wrong)) if value in logged]
    assert leaked == []


def test_each_direct_shape_becomes_one_run_on_a_self_managed_airflow(
    target: Target, aws: None, use_config: Callable[[Path], None], tmp_path: Path
) -> None:
    """S3, SNS and EventBridge invocations, the password read from Secrets Manager; a redelivery adds no run."""
    from lambda_trigger.handler import handler

    unique = uuid.uuid4().hex[:10]
    secret = f"airflow/{unique}"
    boto3.client("secretsmanager").create_secret(Name=secret, SecretString=target.airflow.password)
    routes = [
        {"dag_id": DEMO_DAG, "bucket": f"landing-{unique}"},
        {"dag_id": DEMO_DAG, "attributes": {"pipeline": unique}},
    ]
    use_config(target.write_config(tmp_path / "config.json", routes=routes, password_secret=secret))
    s3 = s3_event(unique)
    s3["Records"][0]["s3"]["bucket"]["name"] = f"landing-{unique}"
    sns = load_event("sns_message.json")
    sns["Records"][0]["Sns"]["MessageId"] = f"sns-{unique}"
    sns["Records"][0]["Sns"]["MessageAttributes"] = {"pipeline": {"Type": "String", "Value": unique}}
    eventbridge = load_event("eventbridge_s3_object_created.json")
    eventbridge["detail"]["bucket"]["name"] = f"landing-{unique}"
    eventbridge["detail"]["object"]["key"] = f"incoming/{unique}.parquet"

    for event in (s3, sns, eventbridge):
        first = handler(copy.deepcopy(event), LambdaContext(timeout_seconds=30))
        again = handler(copy.deepcopy(event), LambdaContext(timeout_seconds=30))
        assert [run["outcome"] for run in first["runs"] + again["runs"]] == ["created", "already_triggered"]
        assert target.runs_with_id(DEMO_DAG, first["runs"][0]["dag_run_id"]) == 1


def test_an_sqs_batch_reports_only_the_record_worth_retrying_on_a_self_managed_airflow(
    target: Target, aws: None, use_config: Callable[[Path], None], tmp_path: Path
) -> None:
    """One record makes its run, one is poison (an unknown DAG), one waits for its DAG to be unpaused."""
    from lambda_trigger.handler import sqs_handler

    unique = uuid.uuid4().hex[:10]
    routes = [
        {"dag_id": DEMO_DAG, "attributes": {"pipeline": f"fine-{unique}"}},
        {"dag_id": "no_such_dag", "attributes": {"pipeline": f"poison-{unique}"}},
        {"dag_id": PAUSED_DAG, "attributes": {"pipeline": f"paused-{unique}"}},
    ]
    config = target.write_config(tmp_path / "config.json", routes=routes, paused="fail")
    use_config(config)
    records = []
    for kind in ("fine", "poison", "paused"):
        record = copy.deepcopy(load_event("sqs_plain_message.json")["Records"][0])
        record["messageId"] = f"{kind}-{unique}"
        record["messageAttributes"] = {"pipeline": {"stringValue": f"{kind}-{unique}", "dataType": "String"}}
        records.append(record)

    answer = sqs_handler({"Records": records}, LambdaContext(timeout_seconds=30))

    assert answer == {"batchItemFailures": [{"itemIdentifier": f"paused-{unique}"}]}
    (fine,) = plan_payload({"Records": records[:1]}, load_file(config)).requests
    assert target.runs_with_id(DEMO_DAG, fine.dag_run_id) == 1
