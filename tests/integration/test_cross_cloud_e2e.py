"""Across clouds with no static key: an S3 event through the Lambda handler into Composer-style and IAP-fronted
Airflow (workload identity federation), and a GCS CloudEvent through the Cloud Function into MWAA (a Google ID
token for AWS STS AssumeRoleWithWebIdentity). Both end at the real local Airflow 3.

AWS -> Google: the AWS credentials come only from a container credentials endpoint on loopback (as on ECS and
MWAA), google-auth's real ``aws`` credentials sign the GetCallerIdentity request with them, FakeGoogle plays
Google STS and IAM Credentials and checks that signature. Google -> AWS: FakeGoogle's metadata server mints the
ID token, moto's STS exchanges it, FakeMwaa checks every call's SigV4 signature before calling Airflow.
Every way counts its token exchanges: one per token lifetime, however many events.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from scripts.demo import LambdaContext
from shared.config import from_mapping
from shared.dispatch import DeliveryFailed, plan_payload
from shared.runtime import dispatcher
from shared.workload_identity import AWS_SUBJECT_TOKEN_TYPE
from tests.auth_proxy import ComposerProxy, IapProxy
from tests.fake_aws_container import SHADOWING_AWS_VARIABLES, FakeContainerCredentials
from tests.fake_google import FakeGoogle
from tests.fake_mwaa import FakeMwaa
from tests.function_process import FunctionProcess
from tests.integration.aws_local import moto_server
from tests.integration.conftest import DEMO_DAG, Target
from tests.support import load_event

REGION = "eu-west-1"
PROJECT_NUMBER = "123456789012"
PROVIDER = f"projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/aws-lambdas/providers/analytics"
AUDIENCE = f"//iam.googleapis.com/{PROVIDER}"
SERVICE_ACCOUNT = "composer-trigger@analytics.iam.gserviceaccount.com"
CLIENT_ID = "1234-iapclient.apps.googleusercontent.com"
ROLE = "dag-trigger-task"


@dataclass(frozen=True)
class Way:
    """One way from AWS into a Google-fronted Airflow: the auth, the proxy, and the IAM Credentials calls it costs."""

    name: str
    airflow: dict[str, Any]
    proxy: str
    calls: dict[str, int]
    gcloud_file: bool = True
    proxy_options: dict[str, Any] = field(default_factory=dict)


WAYS = [
    Way("composer-gcloud-file", {"auth": "composer"}, "composer", {"generateAccessToken": 1}),
    Way("composer-provider-keys", {"auth": "composer"}, "composer", {"generateAccessToken": 1}, gcloud_file=False),
    Way(
        "iap-id-token",
        {"auth": "iap", "iap_client_id": CLIENT_ID},
        "iap",
        {"generateAccessToken": 1, "generateIdToken": 1},
    ),
    Way(
        "iap-jwt",
        {"auth": "iap_jwt"},
        "iap",
        {"generateAccessToken": 1, "signJwt": 1},
        proxy_options={"accept_id_tokens": False},
    ),
]


def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, extra: dict[str, str]) -> None:
    """Leave botocore's credential chain nothing in this process (and its children) but what ``extra`` adds."""
    isolated = dict(os.environ)
    FakeContainerCredentials.isolate_env(isolated)
    for name in SHADOWING_AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in {**isolated, **extra}.items():
        if os.environ.get(name) != value:
            monkeypatch.setenv(name, value)


@pytest.fixture
def container(google: FakeGoogle, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeContainerCredentials]:
    """The only AWS credentials in this process: a container credentials endpoint, trusted by Google's STS."""
    with FakeContainerCredentials(role=ROLE) as endpoint:
        no_aws_credentials(monkeypatch, {**endpoint.env(), "AWS_REGION": REGION})
        provider = google.add_aws_provider(AUDIENCE, allowed_roles=[ROLE])
        google.trust_aws_credentials(*endpoint.key)
        google.allow_impersonation(google.aws_role_principal_set(provider, endpoint.session_arn), SERVICE_ACCOUNT)
        google.allow_signing(SERVICE_ACCOUNT, by=SERVICE_ACCOUNT)
        google.reset_counts()
        yield endpoint


@pytest.fixture
def lambda_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Point the Lambda handlers' process-wide dispatcher at a config file, fresh for this test."""

    def use(path: Path) -> None:
        monkeypatch.setenv("DAG_TRIGGER_CONFIG", str(path))
        dispatcher.cache_clear()

    yield use
    dispatcher.cache_clear()


def gcloud_credential_configuration(path: Path, google: FakeGoogle) -> Path:
    """The file ``gcloud iam workload-identity-pools create-cred-config --aws`` writes, its Google endpoints the
    fake's: ``credential_source`` still points at EC2's instance metadata, which a container does not have."""
    path.write_text(
        json.dumps(
            {
                "universe_domain": "googleapis.com",
                "type": "external_account",
                "audience": AUDIENCE,
                "subject_token_type": AWS_SUBJECT_TOKEN_TYPE,
                "token_url": f"{google.url}/v1/token",
                "service_account_impersonation_url": (
                    f"{google.url}/v1/projects/-/serviceAccounts/{SERVICE_ACCOUNT}:generateAccessToken"
                ),
                "credential_source": {
                    "environment_id": "aws1",
                    "region_url": "http://169.254.169.254/latest/meta-data/placement/availability-zone",
                    "url": "http://169.254.169.254/latest/meta-data/iam/security-credentials",
                    "regional_cred_verification_url": (
                        "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"
                    ),
                },
            }
        )
    )
    return path


def s3_notifications(unique: str) -> list[dict[str, Any]]:
    """Three uploads to one bucket, as S3 notifies a Lambda."""
    events = []
    for index in range(3):
        event = load_event("s3_put.json")
        event["Records"][0]["s3"]["bucket"]["name"] = f"landing-{unique}"
        event["Records"][0]["s3"]["bucket"]["arn"] = f"arn:aws:s3:::landing-{unique}"
        event["Records"][0]["s3"]["object"]["key"] = f"incoming/{unique}/part-{index}.csv"
        event["Records"][0]["s3"]["object"]["sequencer"] = f"0A1B2C3D4E5F6{index:03d}"
        events.append(event)
    return events


@pytest.mark.parametrize("way", WAYS, ids=[way.name for way in WAYS])
def test_s3_events_reach_a_google_fronted_airflow_through_workload_identity_federation(
    way: Way,
    airflows: dict[str, Target],
    google: FakeGoogle,
    container: FakeContainerCredentials,
    lambda_config: Any,
    unique: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from lambda_trigger.handler import handler

    target = airflows["3"]
    proxy_class = ComposerProxy if way.proxy == "composer" else IapProxy
    options = {"client_id": CLIENT_ID, **way.proxy_options} if way.proxy == "iap" else {}
    with proxy_class(target.airflow, google, allowed={SERVICE_ACCOUNT}, **options) as proxy:
        federation: dict[str, Any] = (
            {"google_credential_config": str(gcloud_credential_configuration(tmp_path / "wif.json", google))}
            if way.gcloud_file
            else {"workload_identity_provider": PROVIDER, "service_account": SERVICE_ACCOUNT}
        )
        raw = {
            "airflow": {"url": proxy.url, "deadline": 30, **federation, **way.airflow},
            "routes": [{"dag_id": DEMO_DAG, "bucket": f"landing-{unique}"}],
        }
        config_path = tmp_path / "config.json"
        config_path.write_text(json.dumps(raw))
        lambda_config(config_path)
        events = s3_notifications(unique)

        reports = [handler(copy.deepcopy(event), LambdaContext(timeout_seconds=30)) for event in events + events]

    outcomes = [run["outcome"] for report in reports for run in report["runs"]]
    assert outcomes == ["created"] * 3 + ["already_triggered"] * 3, reports
    config = from_mapping({**raw, "airflow": {"url": "http://127.0.0.1:9"}}, "test")
    run_ids = [request.dag_run_id for event in events for request in plan_payload(event, config).requests]
    assert [target.runs_with_id(DEMO_DAG, run_id) for run_id in run_ids] == [1, 1, 1]
    # Six events, one token of each kind: one STS exchange, signed with the container's key.
    (exchange,) = google.sts_exchanges
    assert (exchange.access_key_id, exchange.region, exchange.audience) == (
        container.key.access_key_id,
        REGION,
        AUDIENCE,
    )
    assert exchange.error is None
    assert {name: count for name, count in google.calls.items() if count} == {"sts.token": 1, **way.calls}
    assert container.fetches == 1
    output = capsys.readouterr()
    logged = output.out + output.err
    assert container.key.secret_access_key not in logged
    assert container.key.session_token not in logged
    assert "Bearer" not in logged


def test_an_identity_google_does_not_trust_is_a_clear_failure_not_a_retry_storm(
    airflows: dict[str, Target],
    google: FakeGoogle,
    container: FakeContainerCredentials,
    lambda_config: Any,
    unique: str,
    tmp_path: Path,
) -> None:
    from lambda_trigger.handler import handler

    # The provider's condition admits another role only: Google STS refuses this one.
    google.add_aws_provider(AUDIENCE, allowed_roles=["some-other-role"])
    with ComposerProxy(airflows["3"].airflow, google, allowed={SERVICE_ACCOUNT}) as proxy:
        raw = {
            "airflow": {
                "url": proxy.url,
                "auth": "composer",
                "deadline": 10,
                "workload_identity_provider": PROVIDER,
                "service_account": SERVICE_ACCOUNT,
            },
            "routes": [{"dag_id": DEMO_DAG, "bucket": f"landing-{unique}"}],
        }
        config_path = tmp_path / "config.json"
        config_path.write_text(json.dumps(raw))
        lambda_config(config_path)
        with pytest.raises(DeliveryFailed) as failure:
            handler(s3_notifications(unique)[0], LambdaContext(timeout_seconds=10))

    (refused,) = failure.value.report.failures
    assert not refused.error.retryable
    message = str(refused.error)
    assert "Google refused an access token" in message
    assert "unauthorized_client" in message
    assert len(google.sts_exchanges) == 1


# Google -> AWS ------------------------------------------------------------------------------------------------

MWAA_ACCOUNT = "210987654321"
MWAA_ENVIRONMENT = "analytics-from-google"
WEB_IDENTITY_ROLE = f"arn:aws:iam::{MWAA_ACCOUNT}:role/dag-trigger-from-google"


@pytest.fixture(scope="module")
def mwaa_services(airflows: dict[str, Target]) -> Iterator[tuple[str, FakeMwaa]]:
    with moto_server() as moto_url, FakeMwaa(region=REGION, account=MWAA_ACCOUNT) as mwaa:
        mwaa.add_environment(MWAA_ENVIRONMENT, airflows["3"].airflow)
        mwaa.trust_moto(moto_url)
        yield moto_url, mwaa


def gcs_uploads(unique: str) -> list[dict[str, Any]]:
    """Three Cloud Storage uploads, as Eventarc delivers them to the function."""
    events = []
    for index in range(3):
        event = load_event("gcs_finalized.cloudevent.json")
        event["id"] = f"upload-{unique}-{index}"
        event["data"] |= {"bucket": f"landing-{unique}", "name": f"incoming/{unique}/part-{index}.csv"}
        event["subject"] = f"objects/{event['data']['name']}"
        events.append(event)
    return events


def test_gcs_events_reach_mwaa_with_the_functions_google_identity(
    airflows: dict[str, Target],
    google: FakeGoogle,
    mwaa_services: tuple[str, FakeMwaa],
    unique: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    moto_url, mwaa = mwaa_services
    # A Cloud Run function has no AWS credentials at all.
    no_aws_credentials(monkeypatch, {})
    mwaa.reset_counts()
    target = airflows["3"]
    raw = {
        "airflow": {
            "mwaa_environment": MWAA_ENVIRONMENT,
            "aws_region": REGION,
            "web_identity_role_arn": WEB_IDENTITY_ROLE,
            "web_identity_audience": "dag-trigger-mwaa",
            "deadline": 30,
        },
        "routes": [{"dag_id": DEMO_DAG, "bucket": f"landing-{unique}"}],
    }
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(raw))
    env = {
        **google.env(),
        "CLOUDSDK_CONFIG": os.environ["CLOUDSDK_CONFIG"],
        "DAG_TRIGGER_CONFIG": str(config_path),
        **mwaa.env(),
        "AWS_ENDPOINT_URL_STS": moto_url,
    }
    events = gcs_uploads(unique)
    google.reset_counts()
    with FunctionProcess("trigger_dag", "cloudevent", env, tmp_path / "function.log") as function:
        answers = [function.post_binary(event) for event in events + events]
        assert [answer.status_code for answer in answers] == [200] * 6, function.log_text()[-3000:]
        outcomes = [line["outcome"] for line in function.log_lines() if "outcome" in line]
        log_text = function.log_text()

    assert sorted(outcomes) == ["already_triggered"] * 3 + ["created"] * 3
    config = from_mapping({**raw, "airflow": {"url": "http://127.0.0.1:9"}}, "test")
    run_ids = [request.dag_run_id for event in events for request in plan_payload(event, config).requests]
    assert [target.runs_with_id(DEMO_DAG, run_id) for run_id in run_ids] == [1, 1, 1]
    # One ID token minted, so one AssumeRoleWithWebIdentity; every MWAA call signed by the one key it gave.
    assert google.mints["id_token"] == 1
    (key,) = set(mwaa.signed_with)
    assert key.startswith("ASIA")
    assert "eyJ" not in log_text  # no JWT (the ID token) in the logs
