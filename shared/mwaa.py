"""Amazon MWAA: Airflow's REST API carried by MWAA's InvokeRestApi, signed with AWS IAM.

No password and no Airflow login: the Lambda's role (or a role it assumes, perhaps in another account)
needs ``airflow:InvokeRestApi`` on ``arn:aws:airflow:REGION:ACCOUNT:role/ENVIRONMENT/AIRFLOW_ROLE``, and
MWAA calls Airflow as a user with that Airflow role. boto3 is imported when the transport is built,
never at import. Every AWS endpoint comes from the SDK, so its standard overrides (``AWS_ENDPOINT_URL_MWAA``,
``AWS_ENDPOINT_URL_STS``, ``AWS_ENDPOINT_URL``) redirect it, to a private endpoint or a local fake.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import requests

from shared.config import AirflowSettings
from shared.errors import AirflowError, ConfigError, CredentialError, ForbiddenError, InvalidRequestError
from shared.transport import ApiCall, ApiResponse, Retryable, Transport

log = logging.getLogger("dag_trigger.mwaa")

#: InvokeRestApi refuses a longer ``Path`` (query parameters travel apart, in ``QueryParameters``).
MAX_PATH = 64
#: MWAA gives up on the Airflow call after 10 s; a read timeout a little longer sees its answer.
READ_TIMEOUT = 12.0
_RETRYABLE_CODES = ("ThrottlingException", "InternalServerException", "ServiceUnavailable", "RequestTimeout")
#: The errors InvokeRestApi wraps Airflow's own 4xx and 5xx in.
_AIRFLOW_ANSWERS = ("RestApiClientException", "RestApiServerException")


class TokenBucket:
    """At most ``rate`` calls per second on average, bursts up to ``max(rate, 1)``; thread-safe.

    MWAA throttles InvokeRestApi per environment; a burst of SQS records must queue here rather than
    collect throttling errors there.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.capacity = max(rate, 1.0)
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self, budget: float) -> None:
        """Take one token, waiting for it at most ``budget`` seconds; :class:`Retryable` if that is too long."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            wait = (1.0 - self._tokens) / self.rate if self._tokens < 1.0 else 0.0
            if wait > budget:
                raise Retryable(f"rate limit of {self.rate:g} calls/s to MWAA leaves no room within the deadline")
            # Reserve the token now, so threads waiting in turn do not all take the same one.
            self._tokens -= 1.0
        if wait > 0:
            self._sleep(wait)


def aws_session(settings: AirflowSettings) -> Any:
    """A boto3 session in the configured region, with the assumed role's credentials when one is configured.

    The assumed role's credentials are botocore's own refreshable credentials: fetched on first use,
    cached, and fetched again shortly before they expire, from the STS endpoint of the region. What botocore
    refuses while setting up (a profile that does not exist, an unreadable config file) is a configuration error.
    """
    from botocore.exceptions import BotoCoreError

    refresh_log = logging.getLogger("botocore.credentials")
    if _without_traceback not in refresh_log.filters:
        refresh_log.addFilter(_without_traceback)
    try:
        return _aws_session(settings)
    except BotoCoreError as exc:
        raise ConfigError(f"cannot set up the AWS SDK: {exc}") from None


def _without_traceback(record: logging.LogRecord) -> bool:
    """Keep botocore's one-line warning that a credential refresh failed, not its traceback: the failure reaches
    the caller as an error of ours that says what to fix, and logs at 3 a.m. should not hold stack traces."""
    record.exc_info = None
    record.exc_text = None
    return True


def _aws_session(settings: AirflowSettings) -> Any:
    import boto3
    import botocore.session
    from botocore.credentials import AssumeRoleCredentialFetcher, CredentialProvider, DeferredRefreshableCredentials

    def new_session() -> Any:
        session = botocore.session.get_session()
        region = settings.aws_region or aws_region(session)
        if region:
            session.set_config_variable("region", region)
        return session

    core = new_session()
    if settings.assume_role_arn:
        # A session of its own: the first get_credentials() fixes a session's credentials for good.
        base = new_session()
        source = base.get_credentials()
        if source is None:
            raise ConfigError("no AWS credentials to assume [airflow].assume_role_arn with")
        extra: dict[str, Any] = {
            "RoleSessionName": settings.assume_role_session_name,
            "DurationSeconds": settings.assume_role_duration,
        }
        if settings.assume_role_external_id:
            extra["ExternalId"] = settings.assume_role_external_id
        fetcher = AssumeRoleCredentialFetcher(core.create_client, source, settings.assume_role_arn, extra_args=extra)

        class AssumedRole(CredentialProvider):  # type: ignore[misc]
            METHOD = "assume-role"

            def load(self) -> Any:
                return DeferredRefreshableCredentials(fetcher.fetch_credentials, self.METHOD)

        core.get_component("credential_provider").insert_before("env", AssumedRole())
    if settings.web_identity_role_arn:
        fetch = _web_identity_fetcher(core, settings)

        class AssumedRoleWithWebIdentity(CredentialProvider):  # type: ignore[misc]
            METHOD = "assume-role-with-web-identity"

            def load(self) -> Any:
                return DeferredRefreshableCredentials(fetch, self.METHOD)

        core.get_component("credential_provider").insert_before("env", AssumedRoleWithWebIdentity())
    return boto3.Session(botocore_session=core)


def aws_region(session: Any) -> str | None:
    """The runtime's AWS region: ``AWS_REGION`` (what Lambda sets and other SDKs read; botocore reads only
    ``AWS_DEFAULT_REGION``), else botocore's (``AWS_DEFAULT_REGION``, the profile)."""
    return os.environ.get("AWS_REGION") or session.get_config_variable("region")


def _web_identity_fetcher(core: Any, settings: AirflowSettings) -> Callable[[], dict[str, Any]]:
    """Google -> AWS: fetch the role's credentials with the function's Google-signed ID token.

    botocore's web identity fetcher calls STS ``AssumeRoleWithWebIdentity`` (unsigned: a Cloud Run function has
    no AWS credentials) at the region's endpoint; the refreshable credentials around it call it again shortly
    before they expire, and only then is an ID token minted, so both happen once per credential lifetime.
    """
    from botocore.credentials import AssumeRoleWithWebIdentityCredentialFetcher
    from botocore.exceptions import ClientError

    from shared.google_credentials import GoogleIdToken

    role = settings.web_identity_role_arn or ""
    if not core.get_config_variable("region"):
        raise ConfigError(
            "[airflow].web_identity_role_arn needs an AWS region for STS and MWAA: set aws_region (or AWS_REGION)"
        )
    id_token = GoogleIdToken(settings.web_identity_audience)
    http = requests.Session()
    timeout = (settings.connect_timeout, settings.read_timeout)

    def token() -> str:
        id_token.before_request(http, timeout)
        return id_token.token or ""

    fetcher = AssumeRoleWithWebIdentityCredentialFetcher(
        core.create_client,
        token,
        role,
        extra_args={
            "RoleSessionName": settings.assume_role_session_name,
            "DurationSeconds": settings.assume_role_duration,
        },
    )

    def fetch() -> dict[str, Any]:
        try:
            return dict(fetcher.fetch_credentials())
        except ClientError as exc:
            raise _web_identity_refusal(exc, role, id_token.claims, settings.web_identity_audience) from None

    return fetch


def _web_identity_refusal(exc: Any, role: str, claims: Mapping[str, Any], audience: str) -> Exception:
    """STS's refusal of AssumeRoleWithWebIdentity, with what the role's trust policy must say to accept the token."""
    error = exc.response.get("Error", {})
    code, message = error.get("Code", ""), error.get("Message", "")
    doing = f"sts:AssumeRoleWithWebIdentity for {role}"
    if code in ("IDPCommunicationError", "Throttling", "ServiceUnavailable", "InternalFailure"):
        return Retryable(f"{doing}: {code}: {message}")
    subject = claims.get("sub", "?")
    return CredentialError(
        f"{doing} was refused ({code}: {message}). The role's trust policy must let the federated principal "
        f"accounts.google.com call sts:AssumeRoleWithWebIdentity with the conditions this token meets: "
        f"accounts.google.com:aud = {claims.get('azp', subject)} (the service account's unique id), "
        f"accounts.google.com:sub = {subject}, accounts.google.com:oaud = {audience} (the token's audience, "
        f"[airflow].web_identity_audience); the token is for {claims.get('email', 'the runtime service account')}"
    )


def _quick_client(session: Any, service: str, settings: AirflowSettings) -> Any:
    """A client for a one-off check: the configured timeouts, one attempt (a person is waiting)."""
    from botocore.config import Config

    config = Config(
        connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout, retries={"total_max_attempts": 1}
    )
    return session.client(service, region_name=settings.aws_region or session.region_name, config=config)


def caller_identity(settings: AirflowSettings, session: Any | None = None) -> str:
    """Who calls MWAA (``sts:GetCallerIdentity``), after assuming the configured role: for ``dag-trigger doctor``."""
    from botocore.exceptions import BotoCoreError, ClientError

    session = session or aws_session(settings)
    try:
        identity = _quick_client(session, "sts", settings).get_caller_identity()
    except (BotoCoreError, ClientError) as exc:
        assumed = settings.assume_role_arn or settings.web_identity_role_arn
        role = f" assuming {assumed}" if assumed else ""
        raise ConfigError(f"cannot tell the AWS identity{role}: {exc}") from None
    how = " (assumed from the Lambda's own credentials)" if settings.assume_role_arn else ""
    return f"{identity['Arn']} in account {identity['Account']}{how}"


def environment_status(settings: AirflowSettings, session: Any | None = None) -> tuple[bool, str]:
    """``mwaa:GetEnvironment``: whether the environment is AVAILABLE, and its status and Airflow version."""
    from botocore.exceptions import BotoCoreError, ClientError

    session = session or aws_session(settings)
    name = settings.mwaa_environment
    try:
        environment = _quick_client(session, "mwaa", settings).get_environment(Name=name)["Environment"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise ConfigError(
            f"mwaa:GetEnvironment {name}: {code}: {exc.response.get('Error', {}).get('Message', '')}"
        ) from None
    except BotoCoreError as exc:
        raise ConfigError(f"mwaa:GetEnvironment {name}: {exc}") from None
    status = environment.get("Status", "UNKNOWN")
    return status == "AVAILABLE", (
        f"{name}: {status}, Airflow {environment.get('AirflowVersion', '?')}, web server "
        f"{environment.get('WebserverUrl', '?')}"
    )


def mwaa_client(session: Any, region: str, settings: AirflowSettings) -> Any:
    """An MWAA client for calls within an event's deadline: the configured timeouts, one attempt.

    Our own retries, within the event's deadline, replace botocore's; one attempt never outlives MWAA's own
    10 s limit by much.
    """
    from botocore.config import Config

    config = Config(
        connect_timeout=settings.connect_timeout,
        read_timeout=min(settings.read_timeout, READ_TIMEOUT),
        retries={"total_max_attempts": 1},
    )
    return session.client("mwaa", region_name=region, config=config)


@contextlib.contextmanager
def aws_errors(doing: str, *, environment: str, region: str, permission: str) -> Iterator[None]:
    """botocore's exceptions raised inside, as ours: retryable when trying again may help.

    ``permission`` is what a denied caller lacks (``airflow:InvokeRestApi on arn:...``), for the message.
    """
    from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        message = error.get("Message") or error.get("message") or str(exc)
        raise _refusal(code, message, doing, environment=environment, region=region, permission=permission) from None
    except (ConnectionError, HTTPClientError) as exc:
        raise Retryable(f"{doing}: {type(exc).__name__}") from None
    except BotoCoreError as exc:
        raise AirflowError(f"{doing}: {exc}") from None


def _refusal(code: str, message: str, doing: str, *, environment: str, region: str, permission: str) -> AirflowError:
    if code == "AccessDeniedException":
        return ForbiddenError(
            f"{doing} was denied: {message}. The Lambda's role (or the role it assumes) needs {permission}",
            status=403,
        )
    if code == "ResourceNotFoundException":
        return AirflowError(
            f"{doing}: no MWAA environment named {environment!r} in {region}; "
            "check [airflow].mwaa_environment and aws_region",
            status=404,
        )
    if code == "ValidationException":
        return InvalidRequestError(f"{doing} was refused as invalid: {message}", status=400)
    if code in _RETRYABLE_CODES:
        return Retryable(f"{doing}: {code}: {message}")
    return AirflowError(f"{doing}: {code}: {message}")


def api_version_of_environment(transport: Transport, timeout: tuple[float, float]) -> str:
    """The REST API version of the environment's Airflow, from ``GET /version`` sent through ``transport``.

    Either MWAA transport can answer it before the API version is known: each reaches the environment's own
    Airflow whatever version it runs.
    """
    response = transport.send("v2", ApiCall("GET", "/version"), timeout)
    if response.status != 200:
        raise AirflowError(
            f"{transport.where}: GET /version answered {response.status}: {response.detail}", status=response.status
        )
    version = str(response.json().get("version", ""))
    log.info("%s runs Airflow %s", transport.where, version)
    return _version_of(version)


def _version_of(airflow_version: str) -> str:
    """The REST API version Airflow ``airflow_version`` speaks (``3.0.6`` -> ``v2``, ``2.10.3`` -> ``v1``)."""
    major = airflow_version.split(".")[0]
    if not major.isdigit():
        raise AirflowError(f"cannot tell the REST API of Airflow version {airflow_version!r}")
    return "v2" if int(major) >= 3 else "v1"


class InvokeRestApiTransport:
    """Each Airflow API call as one ``mwaa:InvokeRestApi`` call to the environment.

    Airflow's answer comes back whatever it was: MWAA wraps a 4xx in ``RestApiClientException`` and a 5xx in
    ``RestApiServerException`` (both HTTP 400), and both become the same :class:`ApiResponse` a direct call
    would have given, so a 409 is confirmed as our run, a 404 is an unknown DAG, a 5xx is retried.
    """

    max_path: int | None = MAX_PATH
    probe_with_auth = True
    unauthorized_hint = ""

    def __init__(
        self, settings: AirflowSettings, session: Any | None = None, bucket: TokenBucket | None = None
    ) -> None:
        self.environment = settings.mwaa_environment or ""
        self._session = session or aws_session(settings)
        self.region = settings.aws_region or self._session.region_name
        self.where = f"MWAA environment {self.environment} ({self.region})"
        self._client = mwaa_client(self._session, self.region, settings)
        self._bucket = bucket or TokenBucket(settings.rate_limit)
        self.forbidden_hint = (
            "With MWAA, the Airflow role in the IAM policy's resource (arn:aws:airflow:REGION:ACCOUNT:role/"
            f"{self.environment}/ROLE) decides what Airflow allows: triggering needs User or Op (or Admin). "
        )

    def known_version(self, timeout: tuple[float, float]) -> str | None:
        """Asked of Airflow through InvokeRestApi (``GET /version``): MWAA picks the API root itself."""
        return api_version_of_environment(self, timeout)

    def send(self, version: str, call: ApiCall, timeout: tuple[float, float]) -> ApiResponse:
        """One InvokeRestApi call; ``version`` is MWAA's to choose, from the environment's Airflow."""
        if len(call.path) > MAX_PATH:
            raise InvalidRequestError(
                f"{call.method} {call.path} is {len(call.path)} characters, over InvokeRestApi's {MAX_PATH}: a "
                "dag_id longer than about 50 characters cannot be reached this way; set [airflow].mwaa_transport = "
                "'cli_token' to go through MWAA's CLI token path (the web server's /aws_mwaa/cli) instead"
            )
        self._bucket.acquire(max(timeout))
        arguments: dict[str, Any] = {"Name": self.environment, "Path": call.path, "Method": call.method}
        if call.query:
            arguments["QueryParameters"] = dict(call.query)
        if call.body is not None:
            arguments["Body"] = call.body
        answer = self._invoke(arguments, call)
        return ApiResponse(int(answer["RestApiStatusCode"]), json.dumps(answer.get("RestApiResponse")))

    def _invoke(self, arguments: dict[str, Any], call: ApiCall) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        doing = f"InvokeRestApi {call.method} {call.path} on {self.where}"
        permission = (
            f"airflow:InvokeRestApi on arn:aws:airflow:{self.region}:ACCOUNT:role/{self.environment}/AIRFLOW_ROLE"
        )
        with aws_errors(doing, environment=self.environment, region=self.region, permission=permission):
            try:
                answer: dict[str, Any] = self._client.invoke_rest_api(**arguments)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in _AIRFLOW_ANSWERS:
                    # Airflow answered; MWAA only wrapped it.
                    wrapped: dict[str, Any] = exc.response
                    return wrapped
                raise
        return answer

    def close(self) -> None:
        """Nothing to release: botocore pools its own connections."""
