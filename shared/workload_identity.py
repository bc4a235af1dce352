"""Google credentials for code that runs on AWS, through Workload Identity Federation: no Google key anywhere.

google-auth's ``aws`` external-account credentials sign an AWS STS ``GetCallerIdentity`` request with the
function's AWS credentials, exchange it at Google STS for a federated token, and impersonate a Google service
account (IAM Credentials ``generateAccessToken``); the result is used like the runtime service account's token.

Where the AWS credentials come from is the part that differs between AWS compute. The credential configuration
``gcloud iam workload-identity-pools create-cred-config --aws`` writes points google-auth at environment variables
(Lambda) or the EC2 instance metadata service (169.254.169.254). ECS tasks and MWAA workers have neither: their
credentials come from the container credentials endpoint (``AWS_CONTAINER_CREDENTIALS_FULL_URI`` or
``..._RELATIVE_URI``), which google-auth does not read, so the file fails there and people patch it by hand.
:class:`BotocoreCredentialsSupplier` gives google-auth botocore's own credential chain and region instead
(environment, web identity, profiles and SSO, assumed roles, container endpoint, instance metadata), so one
configuration works on Lambda, ECS, MWAA and EC2, and the file's ``url`` and ``region_url`` are not needed.

Imported only when the configuration asks for federation: it loads google-auth and botocore.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import botocore.session
from botocore.exceptions import BotoCoreError
from google.auth import aws, exceptions

from shared.config import AirflowSettings
from shared.errors import ConfigError
from shared.google_credentials import google_api_base, iam_credentials_url
from shared.mwaa import aws_region

log = logging.getLogger("dag_trigger.credentials")

AWS_SUBJECT_TOKEN_TYPE = "urn:ietf:params:aws:token-type:aws4_request"  # noqa: S105 - a type name
_IMPERSONATION = "generateAccessToken"


class BotocoreCredentialsSupplier(aws.AwsSecurityCredentialsSupplier):
    """AWS credentials and region for google-auth, from botocore's credential chain.

    google-auth asks on every token exchange and caches nothing; botocore's credentials object is resolved once
    and refreshes temporary credentials itself shortly before they expire, so each exchange costs no AWS call
    unless the credentials are due.
    """

    def __init__(self, region: str | None = None, session: Any = None) -> None:
        self._session = session or botocore.session.get_session()
        self._region = region
        self._credentials: Any = None

    def get_aws_security_credentials(self, context: Any, request: Any) -> aws.AwsSecurityCredentials:
        """The current credentials of botocore's chain; a failure to get them may pass on a retry."""
        try:
            if self._credentials is None:
                self._credentials = self._session.get_credentials()
                if self._credentials is None:
                    raise exceptions.RefreshError(  # type: ignore[no-untyped-call]
                        "botocore found no AWS credentials (environment, web identity, profile, container endpoint, "
                        "instance metadata) to sign the workload identity federation request with"
                    )
                log.info(
                    "signing the workload identity federation request with AWS credentials from botocore",
                    extra={"aws_credentials_method": self._credentials.method},
                )
            frozen = self._credentials.get_frozen_credentials()
        except BotoCoreError as exc:
            raise exceptions.RefreshError(  # type: ignore[no-untyped-call]
                f"cannot get AWS credentials from botocore: {exc}", retryable=True
            ) from None
        return aws.AwsSecurityCredentials(frozen.access_key, frozen.secret_key, frozen.token)

    def get_aws_region(self, context: Any, request: Any) -> str:
        """The configured region, else the runtime's (``AWS_REGION``, ``AWS_DEFAULT_REGION``, the profile)."""
        region = self._region or aws_region(self._session)
        if not region:
            raise exceptions.RefreshError(  # type: ignore[no-untyped-call]
                "no AWS region for the signed GetCallerIdentity request: set [airflow].aws_region or AWS_REGION"
            )
        return str(region)


def credential_info(settings: AirflowSettings) -> dict[str, Any]:
    """The external-account credential configuration: the file ``google_credential_config`` names, or one built
    from ``workload_identity_provider`` and ``service_account`` with Google's STS and IAM Credentials endpoints
    (``CLOUDSDK_API_ENDPOINT_OVERRIDES_STS`` and ``..._IAMCREDENTIALS`` honoured)."""
    if settings.google_credential_config:
        info = _read(settings.google_credential_config)
    else:
        info = {
            "type": "external_account",
            "audience": f"//iam.googleapis.com/{settings.workload_identity_provider}",
            "subject_token_type": AWS_SUBJECT_TOKEN_TYPE,
            "token_url": f"{google_api_base('sts')}v1/token",
        }
    impersonation = info.get("service_account_impersonation_url")
    named = _impersonated(impersonation) if isinstance(impersonation, str) else None
    if settings.service_account and named and named != settings.service_account:
        raise ConfigError(
            f"{settings.google_credential_config}: the credential configuration impersonates {named}, but "
            f"[airflow].service_account is {settings.service_account}; make them the same"
        )
    if settings.service_account and not named:
        info["service_account_impersonation_url"] = iam_credentials_url(settings.service_account, _IMPERSONATION)
    return info


def federated_credentials(settings: AirflowSettings, scopes: tuple[str, ...]) -> Any:
    """google-auth credentials for ``settings``' workload identity federation; nothing is fetched yet.

    An AWS configuration gets :class:`BotocoreCredentialsSupplier` in place of its ``credential_source``; any
    other external account (OIDC, a file or URL token) is left to google-auth as it is.
    """
    info = credential_info(settings)
    origin = settings.google_credential_config or "[airflow].workload_identity_provider"
    try:
        if info.get("subject_token_type") != AWS_SUBJECT_TOKEN_TYPE:
            import google.auth

            credentials, _ = google.auth.load_credentials_from_dict(info, scopes=list(scopes))  # type: ignore[no-untyped-call]
            return credentials
        fields = {key: value for key, value in info.items() if key != "credential_source"}
        supplier = BotocoreCredentialsSupplier(settings.aws_region)
        return aws.Credentials.from_info(  # type: ignore[no-untyped-call]
            fields, aws_security_credentials_supplier=supplier, scopes=list(scopes)
        )
    except (ValueError, exceptions.GoogleAuthError) as exc:
        raise ConfigError(f"{origin}: not a usable external-account credential configuration: {exc}") from None


def _read(path: str) -> dict[str, Any]:
    try:
        info = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the credential configuration ({exc.strerror})") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: the credential configuration is not JSON: {exc}") from None
    if isinstance(info, Mapping) and info.get("type") == "external_account":
        missing = [key for key in ("audience", "subject_token_type", "token_url") if not isinstance(info.get(key), str)]
        if missing:
            raise ConfigError(f"{path}: the credential configuration has no {', '.join(missing)}")
    if not isinstance(info, Mapping) or info.get("type") != "external_account":
        raise ConfigError(
            f"{path}: not an external-account credential configuration (type {info.get('type')!r} where "
            "'external_account' was expected); a service account key is not what this setting takes"
            if isinstance(info, Mapping)
            else f"{path}: expected a JSON object"
        )
    return dict(info)


def _impersonated(url: str) -> str | None:
    """The service account an impersonation URL names (``.../serviceAccounts/EMAIL:generateAccessToken``)."""
    tail = url.rsplit("/serviceAccounts/", 1)[-1]
    return tail.removesuffix(f":{_IMPERSONATION}") if tail.endswith(f":{_IMPERSONATION}") else None
