"""Cross-cloud settings: Google credentials from AWS (workload identity federation), an AWS role from Google."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError
from google.auth import aws, exceptions

from shared.config import from_environment, from_mapping
from shared.errors import ConfigError, CredentialError
from shared.mwaa import _web_identity_refusal
from shared.transport import Retryable
from shared.workload_identity import (
    AWS_SUBJECT_TOKEN_TYPE,
    BotocoreCredentialsSupplier,
    credential_info,
    federated_credentials,
)

PROVIDER = "projects/123456789/locations/global/workloadIdentityPools/aws-pool/providers/aws-lambda"
SA = "dag-trigger@analytics.iam.gserviceaccount.com"
ROLE = "arn:aws:iam::123456789012:role/dag-trigger-from-google"
ENVIRONMENT = "projects/analytics/locations/europe-west1/environments/prod"


def settings(**airflow: Any) -> Any:
    return from_mapping({"airflow": airflow, "routes": [{"dag_id": "d"}]}, "test").airflow


def federated(**extra: Any) -> Any:
    return settings(composer_environment=ENVIRONMENT, workload_identity_provider=PROVIDER, service_account=SA, **extra)


@pytest.mark.parametrize(
    ("airflow", "message"),
    [
        ({"composer_environment": ENVIRONMENT, "workload_identity_provider": PROVIDER}, "needs service_account"),
        (
            {"composer_environment": ENVIRONMENT, "workload_identity_provider": "pools/aws", "service_account": SA},
            "must be projects/PROJECT_NUMBER",
        ),
        (
            {
                "composer_environment": ENVIRONMENT,
                "workload_identity_provider": PROVIDER,
                "google_credential_config": "/x.json",
                "service_account": SA,
            },
            "keep one",
        ),
        (
            {"url": "https://airflow.example.com", "workload_identity_provider": PROVIDER, "service_account": SA},
            "not 'none'",
        ),
        ({"url": "https://airflow.example.com", "web_identity_role_arn": ROLE}, "set mwaa_environment too"),
        ({"mwaa_environment": "prod", "web_identity_role_arn": "role/x"}, "must be an IAM role ARN"),
        (
            {"mwaa_environment": "prod", "web_identity_role_arn": ROLE, "assume_role_arn": ROLE},
            "both web_identity_role_arn and assume_role_arn",
        ),
        (
            {"mwaa_environment": "prod", "web_identity_role_arn": ROLE, "web_identity_audience": " "},
            "must not be empty",
        ),
    ],
)
def test_inconsistent_cross_cloud_settings_are_config_errors(airflow: dict[str, Any], message: str):
    with pytest.raises(ConfigError, match=message):
        settings(**airflow)


def test_environment_variables_configure_both_directions():
    to_google = from_environment(
        {
            "COMPOSER_ENVIRONMENT": ENVIRONMENT,
            "GOOGLE_WORKLOAD_IDENTITY_PROVIDER": PROVIDER,
            "GOOGLE_SERVICE_ACCOUNT": SA,
            "DAG_ID": "d",
        }
    ).airflow
    assert (to_google.workload_identity_provider, to_google.service_account) == (PROVIDER, SA)
    to_aws = from_environment(
        {"MWAA_ENVIRONMENT": "prod", "WEB_IDENTITY_ROLE_ARN": ROLE, "WEB_IDENTITY_AUDIENCE": "aws-mwaa", "DAG_ID": "d"}
    ).airflow
    assert (to_aws.web_identity_role_arn, to_aws.web_identity_audience) == (ROLE, "aws-mwaa")
    assert settings(mwaa_environment="prod", web_identity_role_arn=ROLE).web_identity_audience == "sts.amazonaws.com"


def test_two_variables_naming_two_service_accounts_are_refused():
    env = {
        "COMPOSER_ENVIRONMENT": ENVIRONMENT,
        "IAP_SERVICE_ACCOUNT": SA,
        "GOOGLE_SERVICE_ACCOUNT": "x@y",
        "DAG_ID": "d",
    }
    with pytest.raises(ConfigError, match="different values"):
        from_environment(env)
    same = {**env, "GOOGLE_SERVICE_ACCOUNT": SA}
    assert from_environment(same).airflow.service_account == SA


def test_a_provider_builds_the_configuration_gcloud_would_write(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_STS", raising=False)
    monkeypatch.delenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS", raising=False)
    info = credential_info(federated())
    assert info == {
        "type": "external_account",
        "audience": f"//iam.googleapis.com/{PROVIDER}",
        "subject_token_type": AWS_SUBJECT_TOKEN_TYPE,
        "token_url": "https://sts.googleapis.com/v1/token",
        "service_account_impersonation_url": (
            f"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{SA}:generateAccessToken"
        ),
    }


def test_endpoint_overrides_reach_sts_and_iam_credentials(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_STS", "http://127.0.0.1:9/sts/")
    monkeypatch.setenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS", "http://127.0.0.1:9/iam")
    info = credential_info(federated())
    assert info["token_url"] == "http://127.0.0.1:9/sts/v1/token"
    assert info["service_account_impersonation_url"].startswith("http://127.0.0.1:9/iam/v1/projects/-/")


def gcloud_file(tmp_path: Path, **changes: Any) -> Path:
    """A credential configuration as ``gcloud iam workload-identity-pools create-cred-config --aws`` writes it."""
    info = {
        "universe_domain": "googleapis.com",
        "type": "external_account",
        "audience": f"//iam.googleapis.com/{PROVIDER}",
        "subject_token_type": AWS_SUBJECT_TOKEN_TYPE,
        "token_url": "https://sts.googleapis.com/v1/token",
        "service_account_impersonation_url": (
            f"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{SA}:generateAccessToken"
        ),
        "credential_source": {
            "environment_id": "aws1",
            "region_url": "http://169.254.169.254/latest/meta-data/placement/availability-zone",
            "url": "http://169.254.169.254/latest/meta-data/iam/security-credentials",
            "regional_cred_verification_url": "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
        },
    } | changes
    path = tmp_path / "clientLibraryConfig-aws.json"
    path.write_text(json.dumps({k: v for k, v in info.items() if v is not None}))
    return path


def test_the_gcloud_file_gets_botocore_in_place_of_the_metadata_urls(tmp_path: Path):
    config = settings(composer_environment=ENVIRONMENT, google_credential_config=str(gcloud_file(tmp_path)))
    credentials = federated_credentials(config, ("https://www.googleapis.com/auth/cloud-platform",))

    assert isinstance(credentials, aws.Credentials)
    # No credential_source left: google-auth would otherwise read the EC2 metadata URLs it names.
    assert credentials._credential_source is None
    assert isinstance(credentials._aws_security_credentials_supplier, BotocoreCredentialsSupplier)
    assert credentials.service_account_email == SA


def test_a_service_account_other_than_the_files_is_refused(tmp_path: Path):
    config = settings(
        composer_environment=ENVIRONMENT, google_credential_config=str(gcloud_file(tmp_path)), service_account="x@y.z"
    )
    with pytest.raises(ConfigError, match="impersonates dag-trigger@"):
        credential_info(config)


def test_a_file_without_impersonation_takes_the_configured_service_account(tmp_path: Path):
    path = gcloud_file(tmp_path, service_account_impersonation_url=None)
    config = settings(composer_environment=ENVIRONMENT, google_credential_config=str(path), service_account=SA)
    assert credential_info(config)["service_account_impersonation_url"].endswith(f"/{SA}:generateAccessToken")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the credential configuration"),
        ("{not json", "is not JSON"),
        (json.dumps({"type": "service_account", "private_key": "x"}), "a service account key is not what"),
        (json.dumps([1]), "expected a JSON object"),
        (
            json.dumps({"type": "external_account", "subject_token_type": AWS_SUBJECT_TOKEN_TYPE}),
            "has no audience, token_url",
        ),
    ],
)
def test_bad_credential_configurations_are_config_errors(tmp_path: Path, content: str | None, message: str):
    path = tmp_path / "config.json"
    if content is not None:
        path.write_text(content)
    config = settings(composer_environment=ENVIRONMENT, google_credential_config=str(path))
    with pytest.raises(ConfigError, match=message):
        federated_credentials(config, ())


@pytest.fixture
def bare_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No AWS credentials or region anywhere botocore looks, and no instance metadata to wait for."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


def test_the_supplier_hands_google_auth_what_botocore_finds(bare_aws: pytest.MonkeyPatch):
    bare_aws.setenv("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE")
    bare_aws.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    bare_aws.setenv("AWS_SESSION_TOKEN", "session-token")
    bare_aws.setenv("AWS_REGION", "eu-west-1")
    supplier = BotocoreCredentialsSupplier(session=botocore.session.get_session())

    assert supplier.get_aws_security_credentials(None, None) == aws.AwsSecurityCredentials(
        "ASIAEXAMPLE", "secret", "session-token"
    )
    assert supplier.get_aws_region(None, None) == "eu-west-1"
    assert BotocoreCredentialsSupplier("us-east-2", botocore.session.get_session()).get_aws_region(None, None) == (
        "us-east-2"
    )


def test_the_supplier_says_what_is_missing(bare_aws: pytest.MonkeyPatch):
    supplier = BotocoreCredentialsSupplier(session=botocore.session.get_session())
    with pytest.raises(exceptions.RefreshError, match="botocore found no AWS credentials"):
        supplier.get_aws_security_credentials(None, None)
    with pytest.raises(exceptions.RefreshError, match=r"set \[airflow\].aws_region or AWS_REGION"):
        supplier.get_aws_region(None, None)


def sts_error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "AssumeRoleWithWebIdentity")


def test_a_trust_policy_mismatch_says_which_conditions_the_token_meets():
    claims = {"sub": "1234567890", "azp": "1234567890", "email": SA, "aud": "aws-mwaa"}
    error = _web_identity_refusal(
        sts_error("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity"), ROLE, claims, "aws-mwaa"
    )

    assert isinstance(error, CredentialError)
    text = str(error)
    for expected in (
        ROLE,
        "accounts.google.com:aud = 1234567890",
        "accounts.google.com:sub = 1234567890",
        "accounts.google.com:oaud = aws-mwaa",
        SA,
    ):
        assert expected in text


def test_a_passing_sts_failure_is_retryable():
    assert isinstance(_web_identity_refusal(sts_error("IDPCommunicationError", "x"), ROLE, {}, "a"), Retryable)


def test_an_aws_profile_that_does_not_exist_is_a_config_error(bare_aws: pytest.MonkeyPatch):
    from shared.mwaa import aws_session

    bare_aws.setenv("AWS_PROFILE", "no-such-profile")
    with pytest.raises(ConfigError, match="cannot set up the AWS SDK: The config profile \\(no-such-profile\\)"):
        aws_session(settings(mwaa_environment="prod", aws_region="eu-west-1", web_identity_role_arn=ROLE))


def test_botocore_refresh_failures_are_logged_without_a_traceback(
    bare_aws: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    import logging

    from shared.mwaa import aws_session

    aws_session(settings(mwaa_environment="prod", aws_region="eu-west-1", web_identity_role_arn=ROLE))
    try:
        raise RuntimeError("STS said no")
    except RuntimeError:
        logging.getLogger("botocore.credentials").warning("Refreshing temporary credentials failed", exc_info=True)

    (record,) = [r for r in caplog.records if r.name == "botocore.credentials"]
    assert record.exc_info is None
    assert "Traceback" not in caplog.text


def test_the_web_identity_exchange_goes_to_the_regions_sts_endpoint(bare_aws: pytest.MonkeyPatch):
    from shared.mwaa import aws_session

    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_STS_REGIONAL_ENDPOINTS"):
        bare_aws.delenv(name, raising=False)
    session = aws_session(settings(mwaa_environment="prod", aws_region="eu-west-1", web_identity_role_arn=ROLE))
    # The fetcher creates its STS client the same way, from the same botocore session.
    assert session._session.create_client("sts").meta.endpoint_url == "https://sts.eu-west-1.amazonaws.com"


def test_web_identity_without_a_region_is_a_config_error(bare_aws: pytest.MonkeyPatch):
    from shared.mwaa import aws_session

    with pytest.raises(ConfigError, match="needs an AWS region"):
        aws_session(settings(mwaa_environment="prod", web_identity_role_arn=ROLE))
