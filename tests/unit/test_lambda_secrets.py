"""The Airflow password in AWS Secrets Manager (moto in-process): read once, re-read after a refusal, never logged."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws

from shared.airflow_client import AirflowClient
from shared.config import AirflowSettings
from shared.credentials import (
    AirflowJwtCredentials,
    BasicCredentials,
    Credentials,
    SecretsManagerPassword,
    credentials_for,
)
from shared.errors import CredentialError, RetryableAirflowError
from shared.retry import Backoff, Deadline
from shared.transport import HttpTransport
from shared.triggers import TriggerRequest
from tests.fake_airflow import BASE_URL, FakeAirflow, response, session_for
from tests.unit.test_airflow_client import REQUEST

REGION = "eu-west-1"
SECRET = "airflow/prod/password"


@dataclass
class Secrets:
    """Secrets Manager (moto) and how many GetSecretValue calls our client made."""

    client: Any
    reads: int = 0

    def count(self, **_: Any) -> None:
        self.reads += 1

    def put(self, value: str) -> None:
        """Rotate the secret to ``value``."""
        self.client.put_secret_value(SecretId=SECRET, SecretString=value)


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[Secrets]:
    """A secret holding the fake Airflow's password; the count covers the client handed to our password source."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        store = Secrets(boto3.client("secretsmanager", region_name=REGION))
        store.client.create_secret(Name=SECRET, SecretString="secret")
        store.client.meta.events.register("before-call.secrets-manager.GetSecretValue", store.count)
        yield store


@dataclass
class Airflow2(FakeAirflow):
    """Airflow 2 checking the basic-auth password; a wrong one is a 403, as Airflow 2 answers it."""

    version: str = "v1"

    def _auth_failure(self, request: requests.PreparedRequest) -> requests.Response | None:
        expected = "Basic " + base64.b64encode(f"admin:{self.password}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return response(403, {"title": "Forbidden", "status": 403})
        return None


def client_for(fake: FakeAirflow, credentials: Credentials) -> AirflowClient:
    settings = AirflowSettings(url=BASE_URL, auth="basic", username="admin", deadline=1.0)
    transport = HttpTransport(BASE_URL, credentials, session_for(fake))
    return AirflowClient(settings, transport, backoff=Backoff(base=0.01, cap=0.02))


def event(n: int) -> TriggerRequest:
    return TriggerRequest(REQUEST.dag_id, f"s3__run-{n}", {}, "r", REQUEST.event)


def test_credentials_for_reads_the_password_from_the_named_secret() -> None:
    settings = AirflowSettings(url=BASE_URL, auth="jwt", username="admin", password_secret=SECRET)
    credentials = credentials_for(settings, {})
    assert isinstance(credentials, AirflowJwtCredentials)
    assert f"password from Secrets Manager secret {SECRET}" in credentials.describe()


def test_basic_auth_reads_the_secret_once_then_again_when_airflow_2_refuses_it(secrets: Secrets) -> None:
    fake = Airflow2()
    client = client_for(fake, BasicCredentials("admin", SecretsManagerPassword(SECRET, client=secrets.client)))
    assert [client.trigger(event(n)).outcome for n in range(5)] == ["created"] * 5
    assert secrets.reads == 1

    secrets.put("rotated")
    fake.password = "rotated"
    assert client.trigger(event(5)).outcome == "created"
    assert secrets.reads == 2  # the 403 made it read again at once, not after the cache's five minutes


def test_airflow_3_asks_for_a_token_again_with_the_rotated_password(secrets: Secrets) -> None:
    fake = FakeAirflow()
    credentials = AirflowJwtCredentials(BASE_URL, "admin", SecretsManagerPassword(SECRET, client=secrets.client))
    client = client_for(fake, credentials)
    assert [client.trigger(event(n)).outcome for n in range(3)] == ["created"] * 3
    assert (secrets.reads, fake.token_requests) == (1, 1)

    secrets.put("rotated")
    fake.password = "rotated"
    credentials.expiry = datetime(2000, 1, 1, tzinfo=UTC)  # the token is due: refresh with the cached password
    assert client.trigger(event(3)).outcome == "created"
    assert (secrets.reads, fake.token_requests) == (2, 3)


def test_a_refused_password_that_did_not_change_is_not_sent_twice(secrets: Secrets) -> None:
    fake = FakeAirflow(password="something else")
    credentials = AirflowJwtCredentials(BASE_URL, "admin", SecretsManagerPassword(SECRET, client=secrets.client))
    with pytest.raises(CredentialError, match=f"password in Secrets Manager secret {SECRET}") as refused:
        client_for(fake, credentials).trigger(event(0))
    assert not refused.value.retryable
    assert (secrets.reads, fake.token_requests) == (2, 1)


@pytest.mark.parametrize(
    ("stored", "password"),
    [
        ({"SecretString": "plain pass"}, "plain pass"),
        ({"SecretString": '{"username": "admin", "password": "from-json"}'}, "from-json"),
        ({"SecretString": '{"user": "admin"}'}, '{"user": "admin"}'),
        ({"SecretString": "12345"}, "12345"),
        ({"SecretBinary": b"bin-pass"}, "bin-pass"),
    ],
    ids=["string", "rotation-json", "json-without-password", "json-number", "binary"],
)
def test_the_secret_holds_the_password_or_json_with_one(
    secrets: Secrets, stored: dict[str, Any], password: str
) -> None:
    secrets.client.create_secret(Name="other", **stored)
    assert SecretsManagerPassword("other", client=secrets.client).read() == password


def test_a_secret_named_by_arn_is_read_in_its_own_region(secrets: Secrets) -> None:
    elsewhere = boto3.client("secretsmanager", region_name="ap-south-1")
    arn = elsewhere.create_secret(Name="airflow/mumbai", SecretString="namaste")["ARN"]
    source = SecretsManagerPassword(arn)
    assert (source.region, source.read()) == ("ap-south-1", "namaste")


@pytest.mark.parametrize(
    ("secret_id", "region"),
    [
        ("airflow/prod", None),
        ("arn:aws:secretsmanager:us-east-2:123456789012:secret:airflow-AbCdEf", "us-east-2"),
        ("arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:airflow-AbCdEf", "cn-north-1"),
        ("name:with:colons", None),
    ],
)
def test_region_of_a_secret_id(secret_id: str, region: str | None) -> None:
    assert SecretsManagerPassword(secret_id).region == region


def test_an_unreadable_secret_is_a_retryable_error_naming_the_permission(secrets: Secrets) -> None:
    source = SecretsManagerPassword("no/such/secret", client=secrets.client)
    with pytest.raises(CredentialError, match="secretsmanager:GetSecretValue") as failed:
        source.read()
    assert failed.value.retryable
    assert "Secrets Manager secret no/such/secret" in str(failed.value)
    # Through the client: the event is not at fault, so it is retried and then redelivered.
    client = client_for(Airflow2(), BasicCredentials("admin", source))
    with pytest.raises(RetryableAirflowError):
        client.trigger(event(0), Deadline(0.05))


def test_the_secret_value_never_reaches_a_log_line_or_a_repr(
    secrets: Secrets, caplog: pytest.LogCaptureFixture
) -> None:
    fake = Airflow2(password="s3cr3t-value-1")
    secrets.put(fake.password)
    credentials = BasicCredentials("admin", SecretsManagerPassword(SECRET, client=secrets.client))
    client = client_for(fake, credentials)
    # Every logger at DEBUG, botocore's response bodies included, while our code reads the secret.
    with caplog.at_level(logging.DEBUG):
        client.trigger(event(0))
    fake.password = "s3cr3t-value-2"  # rotated: the next trigger is refused, then reads it again
    secrets.put(fake.password)
    with caplog.at_level(logging.DEBUG):
        client.trigger(event(1))
    assert secrets.reads == 2
    seen = "\n".join([caplog.text, repr(credentials), credentials.describe()])
    assert "GetSecretValue" in seen  # botocore did log the calls...
    assert "s3cr3t-value" not in seen  # ...but not what they answered
