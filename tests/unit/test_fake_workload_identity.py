"""Workload Identity Federation from AWS, with the real google-auth and botocore against the local fakes.

An ECS task or MWAA worker has only the container credentials endpoint (:class:`FakeContainerCredentials`);
botocore's credential chain reads it, google-auth's ``aws.Credentials`` signs a GetCallerIdentity request with
it, exchanges that at Google STS and impersonates a service account through IAM Credentials (both
:class:`FakeGoogle`). These tests show the fakes let through what Google would, and refuse, as Google does,
what it would not: so a test of the project's own federation code that passes means something.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from email.message import Message
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, unquote

import botocore.session
import pytest
import requests
from google.auth import aws, exceptions, jwt
from google.auth.transport.requests import Request

from shared.google_credentials import google_api_base
from tests.auth_proxy import ComposerProxy
from tests.fake_aws_container import DEFAULT_ACCOUNT, DEFAULT_ROLE, FakeContainerCredentials
from tests.fake_google import AWS_SUBJECT_TOKEN_TYPE, CLOUD_PLATFORM, IAM_SCOPE, AwsProvider, FakeGoogle
from tests.loopback import Reply

POOL = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/aws-pool"
AUDIENCE = f"{POOL}/providers/aws"
OTHER_AUDIENCE = f"{POOL}/providers/other-aws"
TARGET = "airflow-caller@test-project.iam.gserviceaccount.com"
OTHER = "someone-else@test-project.iam.gserviceaccount.com"
REGION = "eu-west-1"
ID_TOKEN_AUDIENCE = "https://airflow.example.com"
TIMEOUT = 5

Edit = Callable[[dict[str, str]], None]


class ChainSupplier(aws.AwsSecurityCredentialsSupplier):
    """AWS credentials from botocore's default chain (resolved once: botocore refreshes them itself), a fixed region.

    ``alter`` changes the credentials before google-auth signs with them, to play a caller with a wrong secret.
    """

    def __init__(self, alter: Callable[[aws.AwsSecurityCredentials], aws.AwsSecurityCredentials] | None = None) -> None:
        self._credentials: Any = None
        self._alter = alter

    def get_aws_security_credentials(self, context: Any, request: Any) -> aws.AwsSecurityCredentials:
        """The chain's current credentials (the container endpoint's, here)."""
        if self._credentials is None:
            self._credentials = botocore.session.get_session().get_credentials()
        frozen = self._credentials.get_frozen_credentials()
        credentials = aws.AwsSecurityCredentials(frozen.access_key, frozen.secret_key, frozen.token)
        return self._alter(credentials) if self._alter else credentials

    def get_aws_region(self, context: Any, request: Any) -> str:
        """Always :data:`REGION`."""
        return REGION


def rewriting(edit: Edit) -> type[aws.Credentials]:
    """``aws.Credentials`` whose signed GetCallerIdentity request has its headers edited after google-auth signed it.

    google-auth builds the unimpersonated source credentials from ``self.__class__``, so the edit reaches STS.
    """

    class Rewritten(aws.Credentials):
        def retrieve_subject_token(self, request: Any) -> str:
            signed = json.loads(unquote(super().retrieve_subject_token(request)))
            headers = {header["key"]: header["value"] for header in signed["headers"]}
            edit(headers)
            signed["headers"] = [{"key": key, "value": value} for key, value in headers.items()]
            return quote(json.dumps(signed, separators=(",", ":"), sort_keys=True))

    return Rewritten


def federated(
    google: FakeGoogle,
    *,
    audience: str = AUDIENCE,
    service_account: str | None = TARGET,
    supplier: aws.AwsSecurityCredentialsSupplier | None = None,
    cls: type[aws.Credentials] = aws.Credentials,
) -> aws.Credentials:
    """google-auth's AWS external-account credentials aimed at ``google``, impersonating ``service_account``
    (``None``: none, the federated token is the credential)."""
    impersonation = f"{google.url}/v1/projects/-/serviceAccounts/{service_account}:generateAccessToken"
    return cls(
        audience=audience,
        subject_token_type=AWS_SUBJECT_TOKEN_TYPE,
        token_url=f"{google.url}/v1/token",
        service_account_impersonation_url=impersonation if service_account else None,
        aws_security_credentials_supplier=supplier or ChainSupplier(),
        scopes=[CLOUD_PLATFORM],
    )


def apply_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """Make ``os.environ`` exactly ``env`` for this test."""
    for name in list(os.environ):
        if name not in env:
            monkeypatch.delenv(name)
    for name, value in env.items():
        if os.environ.get(name) != value:
            monkeypatch.setenv(name, value)


@pytest.fixture
def fake() -> Iterator[FakeGoogle]:
    """A FakeGoogle of this test's own: its registrations stay out of the session's."""
    with FakeGoogle() as google:
        yield google


@pytest.fixture(scope="module")
def container_endpoint() -> Iterator[FakeContainerCredentials]:
    """One endpoint for the module: stopping a server takes half a second (its poll interval)."""
    with FakeContainerCredentials(authorization_token="ecs-agent-token") as endpoint:
        yield endpoint


@pytest.fixture
def container(
    container_endpoint: FakeContainerCredentials, fake: FakeGoogle, monkeypatch: pytest.MonkeyPatch
) -> FakeContainerCredentials:
    """The container endpoint as the only AWS credential source; every non-loopback request goes to ``fake``."""
    container_endpoint.reset_counts()
    env = dict(os.environ)
    container_endpoint.isolate_env(env)
    fake.isolate_env(env)
    env |= container_endpoint.env()
    apply_env(monkeypatch, env)
    return container_endpoint


@pytest.fixture
def provider(fake: FakeGoogle, container: FakeContainerCredentials) -> AwsProvider:
    """The pool's AWS provider for the task role's account and role, whose sessions may impersonate TARGET."""
    registered = fake.add_aws_provider(AUDIENCE, account=DEFAULT_ACCOUNT, allowed_roles=[DEFAULT_ROLE])
    fake.add_aws_provider(OTHER_AUDIENCE)
    fake.trust_aws_credentials(*container.key)
    fake.allow_impersonation(fake.aws_role_principal_set(registered, container.session_arn), TARGET)
    return registered


def service_account_token(fake: FakeGoogle) -> str:
    """A TARGET access token, the way the project gets one: the whole federation flow."""
    credentials = federated(fake)
    credentials.refresh(Request())
    assert credentials.token
    return str(credentials.token)


def iam(fake: FakeGoogle, token: str, email: str, method: str, body: dict[str, Any]) -> requests.Response:
    """POST an IAM Credentials method for ``email`` with bearer ``token``."""
    url = f"{fake.url}/v1/projects/-/serviceAccounts/{email}:{method}"
    return requests.post(url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)


def composer_check(fake: FakeGoogle, token: str) -> str:
    """The identity tests/auth_proxy.py's Composer web server admits for ``token`` (no Airflow needed to ask)."""
    proxy = ComposerProxy(SimpleNamespace(url="http://127.0.0.1:9"), fake)  # type: ignore[arg-type]
    headers = Message()
    headers["Authorization"] = f"Bearer {token}"
    return proxy._authenticate("/api/v2/dags", headers)


def test_container_credentials_become_a_service_account_token(
    fake: FakeGoogle, container: FakeContainerCredentials, provider: AwsProvider
) -> None:
    credentials = federated(fake)
    credentials.refresh(Request())

    assert fake.is_valid_access_token(credentials.token)
    assert fake.access_token_email(credentials.token) == TARGET
    assert composer_check(fake, credentials.token) == TARGET
    [exchange] = fake.sts_exchanges
    assert (exchange.access_key_id, exchange.region, exchange.audience) == (
        container.key.access_key_id,
        REGION,
        AUDIENCE,
    )
    assert exchange.principal == fake.aws_principal(provider, container.session_arn)
    assert exchange.error is None
    # google-auth rescopes the STS token to the IAM scope when it impersonates, whatever scopes it was given.
    assert exchange.scopes == (IAM_SCOPE,)
    assert "google-byoid-sdk" in (exchange.api_client or "")
    assert (fake.calls["sts.token"], fake.calls["generateAccessToken"], container.fetches) == (1, 1, 1)
    assert (fake.mints["federated_token"], fake.mints["generated_access_token"]) == (1, 1)
    assert [(call.email, call.caller, call.status) for call in fake.iam_calls] == [(TARGET, exchange.principal, 200)]
    # A second refresh impersonates again with the federated token it holds: no new exchange, no AWS call.
    credentials.refresh(Request())
    assert (fake.calls["sts.token"], fake.calls["generateAccessToken"], container.fetches) == (1, 2, 1)
    assert fake.outbound == []


def test_the_federated_token_is_good_for_iam_credentials_only(
    fake: FakeGoogle, container: FakeContainerCredentials, provider: AwsProvider
) -> None:
    plain = federated(fake, service_account=None)
    plain.refresh(Request())
    token = plain.token
    assert fake.federated_principal(token) == fake.aws_principal(provider, container.session_arn)
    assert fake.access_token_email(token) is None
    with pytest.raises(Reply) as caught:
        composer_check(fake, token)
    assert caught.value.status == 401
    fake.add_environment("orders", "https://airflow.example.com", "composer-3-airflow-2.10.5-build.3")
    environment = f"{fake.url}/v1/projects/{fake.project}/locations/us-central1/environments/orders"
    answer = requests.get(environment, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
    assert answer.status_code == 401
    # Workload Identity User covers getOpenIdToken too, not signJwt (that takes Token Creator).
    assert iam(fake, token, TARGET, "generateIdToken", {"audience": ID_TOKEN_AUDIENCE}).status_code == 200
    denied = iam(fake, token, TARGET, "signJwt", {"payload": json.dumps({"sub": "x"})})
    assert denied.status_code == 403
    assert "roles/iam.serviceAccountTokenCreator" in denied.json()["error"]["message"]


def test_an_untrusted_key_is_refused_as_invalid_grant(fake: FakeGoogle, container: FakeContainerCredentials) -> None:
    fake.add_aws_provider(AUDIENCE)
    fake.allow_impersonation(f"{POOL.replace('//', 'principalSet://', 1)}/*", TARGET)
    with pytest.raises(exceptions.OAuthError) as caught:
        federated(fake).refresh(Request())
    # STS errors reach the caller as google-auth's OAuthError, which is not a RefreshError.
    assert not isinstance(caught.value, exceptions.RefreshError)
    assert "invalid_grant" in str(caught.value)
    assert "InvalidClientTokenId" in str(caught.value)
    [exchange] = fake.sts_exchanges
    assert (exchange.access_key_id, exchange.error, exchange.principal) == (
        container.key.access_key_id,
        "invalid_grant",
        None,
    )
    assert (fake.calls["sts.token"], fake.calls["generateAccessToken"], fake.mints["federated_token"]) == (1, 0, 0)


def _flip_signature(headers: dict[str, str]) -> None:
    headers["Authorization"] = re.sub(
        r"Signature=([0-9a-f])", lambda m: "Signature=" + ("1" if m[1] == "0" else "0"), headers["Authorization"]
    )


def _other_target(headers: dict[str, str]) -> None:
    headers["x-goog-cloud-target-resource"] = OTHER_AUDIENCE


def _wrong_secret(key: aws.AwsSecurityCredentials) -> aws.AwsSecurityCredentials:
    return dataclasses.replace(key, secret_access_key="x" * 40)


def _wrong_session_token(key: aws.AwsSecurityCredentials) -> aws.AwsSecurityCredentials:
    return dataclasses.replace(key, session_token="IQoJb3JpZ2luX2VjEnot-the-one-issued")


@pytest.mark.parametrize(
    ("audience", "edit", "alter", "error", "why"),
    [
        (f"{POOL}/providers/unknown", None, None, "invalid_target", "audience"),
        (AUDIENCE, _other_target, None, "invalid_grant", "x-goog-cloud-target-resource"),
        (AUDIENCE, _flip_signature, None, "invalid_grant", "SignatureDoesNotMatch"),
        (AUDIENCE, None, _wrong_secret, "invalid_grant", "SignatureDoesNotMatch"),
        (AUDIENCE, None, _wrong_session_token, "invalid_grant", "InvalidClientTokenId"),
    ],
    ids=["unknown-audience", "other-target-resource", "tampered-signature", "wrong-secret", "wrong-session-token"],
)
def test_a_request_not_signed_for_this_provider_is_refused(
    fake: FakeGoogle,
    container: FakeContainerCredentials,
    provider: AwsProvider,
    audience: str,
    edit: Edit | None,
    alter: Callable[[aws.AwsSecurityCredentials], aws.AwsSecurityCredentials] | None,
    error: str,
    why: str,
) -> None:
    cls = rewriting(edit) if edit else aws.Credentials
    credentials = federated(fake, audience=audience, supplier=ChainSupplier(alter), cls=cls)
    with pytest.raises(exceptions.OAuthError) as caught:
        credentials.refresh(Request())
    assert f"Error code {error}" in str(caught.value)
    assert why in str(caught.value)
    assert [exchange.error for exchange in fake.sts_exchanges] == [error]
    assert (fake.calls["generateAccessToken"], fake.mints["federated_token"]) == (0, 0)


def test_a_role_outside_the_attribute_condition_is_refused(
    fake: FakeGoogle, container: FakeContainerCredentials
) -> None:
    fake.add_aws_provider(AUDIENCE, allowed_roles=["some-other-role"])
    fake.trust_aws_credentials(*container.key)
    with pytest.raises(exceptions.OAuthError, match=r"unauthorized_client.*attribute condition"):
        federated(fake).refresh(Request())


def test_impersonation_without_workload_identity_user_is_permission_denied(
    fake: FakeGoogle, container: FakeContainerCredentials, provider: AwsProvider
) -> None:
    with pytest.raises(exceptions.RefreshError) as caught:
        federated(fake, service_account=OTHER).refresh(Request())
    assert "PERMISSION_DENIED" in str(caught.value)
    assert "roles/iam.workloadIdentityUser" in str(caught.value)
    assert (fake.calls["sts.token"], fake.calls["generateAccessToken"]) == (1, 1)
    assert [(call.email, call.status) for call in fake.iam_calls] == [(OTHER, 403)]
    assert fake.mints["generated_access_token"] == 0


def test_generate_id_token_claims(fake: FakeGoogle, container: FakeContainerCredentials, provider: AwsProvider) -> None:
    token = service_account_token(fake)
    # A service account may mint ID tokens for itself only when granted Token Creator on itself.
    refused = iam(fake, token, TARGET, "generateIdToken", {"audience": ID_TOKEN_AUDIENCE})
    assert refused.status_code == 403
    assert refused.json()["error"]["status"] == "PERMISSION_DENIED"
    fake.allow_signing(TARGET, by=TARGET)

    answer = iam(fake, token, TARGET, "generateIdToken", {"audience": ID_TOKEN_AUDIENCE, "includeEmail": True})
    assert answer.status_code == 200
    claims = jwt.decode(answer.json()["token"], certs=fake.public_key_pem, audience=ID_TOKEN_AUDIENCE)
    unique_id = fake.unique_id_of(TARGET)
    assert claims["iss"] == "https://accounts.google.com"
    assert (claims["sub"], claims["azp"]) == (unique_id, unique_id)
    assert (claims["email"], claims["email_verified"]) == (TARGET, True)
    assert claims["exp"] - claims["iat"] == 3600
    assert abs(claims["iat"] - time.time()) < 60
    header = jwt.decode_header(answer.json()["token"])
    assert (header["alg"], header["kid"]) == ("RS256", fake.key_id)

    without_email = iam(fake, token, TARGET, "generateIdToken", {"audience": ID_TOKEN_AUDIENCE})
    assert "email" not in jwt.decode(without_email.json()["token"], certs=fake.public_key_pem)
    signed = iam(fake, token, TARGET, "signJwt", {"payload": json.dumps({"iss": TARGET, "sub": TARGET})})
    assert signed.status_code == 200
    assert (fake.calls["generateIdToken"], fake.mints["generated_id_token"], fake.mints["sign_jwt"]) == (3, 2, 1)


def test_id_tokens_and_signatures_for_another_service_account_are_refused(
    fake: FakeGoogle, container: FakeContainerCredentials, provider: AwsProvider
) -> None:
    token = service_account_token(fake)
    fake.allow_signing(TARGET, by=TARGET)
    for method, body in (
        ("generateIdToken", {"audience": ID_TOKEN_AUDIENCE}),
        ("signJwt", {"payload": json.dumps({"iss": OTHER})}),
        ("generateAccessToken", {"scope": [CLOUD_PLATFORM]}),
    ):
        denied = iam(fake, token, OTHER, method, body)
        assert denied.status_code == 403, method
        assert denied.json()["error"]["status"] == "PERMISSION_DENIED"
        assert f"{TARGET} needs roles/iam.serviceAccountTokenCreator" in denied.json()["error"]["message"]
    assert [call.status for call in fake.iam_calls[1:]] == [403, 403, 403]
    assert iam(fake, "ya29.not-minted-here", TARGET, "generateIdToken", {"audience": "a"}).status_code == 401


def test_generate_access_token_checks_its_request(
    fake: FakeGoogle, container: FakeContainerCredentials, provider: AwsProvider
) -> None:
    token = service_account_token(fake)
    fake.allow_signing(TARGET, by=TARGET)
    assert iam(fake, token, TARGET, "generateAccessToken", {"scope": []}).status_code == 400
    too_long = iam(fake, token, TARGET, "generateAccessToken", {"scope": [CLOUD_PLATFORM], "lifetime": "7200s"})
    assert too_long.status_code == 400
    short = iam(fake, token, TARGET, "generateAccessToken", {"scope": [CLOUD_PLATFORM], "lifetime": "600s"}).json()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", short["expireTime"])
    assert fake.access_token_email(short["accessToken"]) == TARGET


def test_the_container_endpoint_wants_its_authorization_token(container: FakeContainerCredentials) -> None:
    assert os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == container.full_uri
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"
    assert "AWS_ACCESS_KEY_ID" not in os.environ
    assert requests.get(container.full_uri, timeout=TIMEOUT).status_code == 401
    wrong = requests.get(container.full_uri, headers={"Authorization": "nope"}, timeout=TIMEOUT)
    assert wrong.status_code == 401
    assert requests.get(f"{container.url}/v2/credentials/other", timeout=TIMEOUT).status_code == 404
    assert (container.fetches, container.refusals) == (0, 3)

    frozen = botocore.session.get_session().get_credentials().get_frozen_credentials()
    assert (frozen.access_key, frozen.secret_key, frozen.token) == tuple(container.key)[:3]
    assert container.fetches == 1
    assert container.key.access_key_id.startswith("ASIA")
    assert container.rotate().access_key_id != frozen.access_key


def test_env_points_sts_and_iam_credentials_at_the_fake(fake: FakeGoogle) -> None:
    env = fake.env()
    assert google_api_base("sts", env) == google_api_base("iamcredentials", env) == f"{fake.url}/"


class StaticSupplier(aws.AwsSecurityCredentialsSupplier):
    """A long-term key (no session token), as Lambda's environment never has but an IAM user's would."""

    def __init__(self, key: aws.AwsSecurityCredentials) -> None:
        self._key = key

    def get_aws_security_credentials(self, context: Any, request: Any) -> aws.AwsSecurityCredentials:
        """The key."""
        return self._key

    def get_aws_region(self, context: Any, request: Any) -> str:
        """Another region than the container tests', to see it in the record."""
        return "us-east-2"


def test_a_long_term_key_is_verified_without_a_session_token(fake: FakeGoogle) -> None:
    arn = "arn:aws:iam::444455556666:user/deployer"
    provider = fake.add_aws_provider(AUDIENCE, account="444455556666")
    fake.trust_aws_credentials("AKIAEXAMPLEDEPLOYER1", "s" * 40, arn=arn)
    fake.allow_impersonation(fake.aws_principal(provider, arn), TARGET)
    credentials = federated(fake, supplier=StaticSupplier(aws.AwsSecurityCredentials("AKIAEXAMPLEDEPLOYER1", "s" * 40)))
    credentials.refresh(Request())
    assert fake.access_token_email(credentials.token) == TARGET
    assert [(e.access_key_id, e.region, e.arn) for e in fake.sts_exchanges] == [
        ("AKIAEXAMPLEDEPLOYER1", "us-east-2", arn)
    ]
