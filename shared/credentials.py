"""Credential providers: one contract for every kind of token, plugged into ``requests`` as ``auth``.

Every provider keeps a cached ``token`` and ``expiry``; the client calls :meth:`Credentials.before_request`
(refreshes when missing or near expiry) before each call and :meth:`Credentials.invalidate` after a 401,
then retries once. The client never needs to know where a token came from. Providers for Google,
IAP, AWS and MWAA follow the same contract.

A password is read from a :class:`PasswordSource`: an environment variable (fixed for the process's life)
or an AWS Secrets Manager secret (cached, and read afresh once when Airflow refuses it, so a rotation is
picked up at the first refusal).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import requests
from requests.auth import AuthBase

from shared.config import GOOGLE_AUTH_MODES, AirflowSettings
from shared.errors import CredentialError

if TYPE_CHECKING:
    from shared.transport import ApiResponse

log = logging.getLogger("dag_trigger.credentials")

#: Refresh this long before a token's expiry: a request in flight, and a server clock a little ahead
#: of ours, must not see an expired token.
EXPIRY_MARGIN = timedelta(seconds=60)
#: Seconds a password read from Secrets Manager is reused. A refused password is read again at once
#: whatever its age, so this only bounds how often token refreshes ask Secrets Manager.
SECRET_MAX_AGE = 300


def utcnow() -> datetime:
    """The current time; tests patch this one function."""
    return datetime.now(UTC)


def jwt_claims(token: str) -> dict[str, Any]:
    """A JWT's claims, read without verifying them (the server verifies; we only schedule and report)."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


def jwt_expiry(token: str) -> datetime | None:
    """The ``exp`` claim of a JWT, unverified."""
    try:
        return datetime.fromtimestamp(int(jwt_claims(token)["exp"]), tz=UTC)
    except (ValueError, KeyError, TypeError, OverflowError):
        return None


class Credentials(AuthBase):
    """Base of every provider: ``token``, ``expiry``, ``refresh(session)``, ``invalidate()``, ``apply(headers)``."""

    #: Whether :meth:`refresh` can produce a different token than the one that was refused.
    can_refresh = True
    #: What a 403 may mean besides a missing permission, for this kind of credential.
    forbidden_hint = ""
    #: What to check when the server still refuses a freshly refreshed token.
    unauthorized_hint = ""
    #: Checked by a proxy in front of Airflow (Composer, IAP), so every path needs it, ``/version`` included.
    at_proxy = False

    def __init__(self) -> None:
        self.token: str | None = None
        self.expiry: datetime | None = None
        self._lock = threading.Lock()
        # The token each thread last sent: threads share the provider, and a refusal is about the sender's token.
        self._sent = threading.local()

    @property
    def valid(self) -> bool:
        """A token is cached and not within :data:`EXPIRY_MARGIN` of its expiry."""
        return self.token is not None and (self.expiry is None or utcnow() < self.expiry - EXPIRY_MARGIN)

    def refresh(self, session: requests.Session, timeout: tuple[float, float]) -> None:
        """Obtain a new token (and expiry) within ``timeout``; raise :class:`CredentialError` when that fails."""
        raise NotImplementedError

    def before_request(self, session: requests.Session, timeout: tuple[float, float]) -> None:
        """Refresh if needed; one thread refreshes while the others wait for its token.

        ``timeout`` is the (connect, read) budget the caller has left, so a refresh never outlives
        the caller's deadline.
        """
        if self.valid:
            return
        with self._lock:
            if not self.valid:
                self.refresh(session, timeout)

    def describe(self) -> str:
        """What ``dag-trigger doctor`` says of these credentials once they have a token."""
        return f"{type(self).__name__}, token {'fetched' if self.token else 'not needed'}"

    def refused(self, response: ApiResponse) -> bool:
        """Whether ``response`` refuses these credentials (so a refresh may help), rather than a permission."""
        return response.is_token_rejection

    def invalidate(self) -> None:
        """Forget the cached token, so the next request fetches a new one (after a 401).

        Only while it is still the token this thread sent: when several threads are refused at once, the
        first fetches a new token and the others must not throw that one away.
        """
        with self._lock:
            if getattr(self._sent, "token", self.token) == self.token:
                self._forget()

    def _forget(self) -> None:
        """Drop the cached token; called with the lock held."""
        self.token = None
        self.expiry = None

    def apply(self, headers: Any) -> None:
        """Set the Authorization header."""
        headers["Authorization"] = f"Bearer {self.token}"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        self._sent.token = self.token
        self.apply(request.headers)
        return request

    def __repr__(self) -> str:
        return f"{type(self).__name__}(token={'***' if self.token else None}, expiry={self.expiry})"


class StaticCredentials(Credentials):
    """Credentials that never change: nothing to refresh, and a 401 cannot be cured by refreshing."""

    can_refresh = False

    @property
    def valid(self) -> bool:
        return True

    def refresh(self, session: requests.Session, timeout: tuple[float, float]) -> None:
        return None


class NoCredentials(StaticCredentials):
    """For an Airflow that needs no login (a local one, or one behind a trusted network proxy)."""

    def apply(self, headers: Any) -> None:
        return None


class PasswordSource(Protocol):
    """Where a password comes from: ``read()`` it, ``read(fresh=True)`` past any cache after a refusal."""

    #: Names the source in messages, never the password: "the environment variable AIRFLOW_PASSWORD".
    where: str
    #: Whether reading again may give another password (a rotated secret); if not, a refusal is final.
    can_change: bool

    def read(self, *, fresh: bool = False) -> str:
        """The password; ``fresh`` skips any cache, because the server refused the one read last."""
        ...


class FixedPassword:
    """A password that stays the same for the process's life (an environment variable's value)."""

    can_change = False

    def __init__(self, value: str, where: str = "the password given") -> None:
        self._value = value
        self.where = where

    def read(self, *, fresh: bool = False) -> str:
        """The password."""
        return self._value

    def __repr__(self) -> str:
        return f"FixedPassword(where={self.where!r}, value=***)"


class _WithoutSecretValues(logging.Filter):
    """Drops botocore's DEBUG line of a response body that holds a secret's value (GetSecretValue's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every other line."""
        message = record.getMessage()
        return "SecretString" not in message and "SecretBinary" not in message


_WITHOUT_SECRET_VALUES = _WithoutSecretValues()


class SecretsManagerPassword:
    """A password in AWS Secrets Manager, read through Powertools' Parameters utility.

    Cached for :data:`SECRET_MAX_AGE` seconds; ``read(fresh=True)`` asks Secrets Manager again. The secret
    holds the password, or JSON with a ``password`` field (the shape Secrets Manager's rotation functions
    keep). A name is looked up in the SDK's region (``AWS_REGION`` on Lambda), an ARN in its own region.
    Failing to read it is retryable: a missing permission or secret is fixed in the deployment, and the
    event is not at fault.
    """

    can_change = True

    def __init__(self, secret_id: str, *, client: Any = None) -> None:
        self.secret_id = secret_id
        self.where = f"Secrets Manager secret {secret_id}"
        self._client = client
        self._provider: Any = None
        # botocore logs every response body at DEBUG, the password included, for whoever turns DEBUG on
        # (Lambda's log level, a root logger at DEBUG): a filter on its logger drops that line before any
        # handler sees it. Adding the same filter again is a no-op.
        logging.getLogger("botocore.parsers").addFilter(_WITHOUT_SECRET_VALUES)

    @property
    def region(self) -> str | None:
        """The region of a secret named by ARN (``arn:aws:secretsmanager:REGION:...``), else ``None``."""
        parts = self.secret_id.split(":")
        return (parts[3] or None) if len(parts) > 3 and parts[0] == "arn" else None

    def read(self, *, fresh: bool = False) -> str:
        """The password, from Powertools' cache unless ``fresh`` or older than :data:`SECRET_MAX_AGE`."""
        # Powertools' Parameters imports boto3: only a process that reads a secret pays for it.
        from aws_lambda_powertools.utilities.parameters import SecretsProvider
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
        from botocore.config import Config

        if self._provider is None:
            self._provider = SecretsProvider(boto_config=Config(region_name=self.region), boto3_client=self._client)
        try:
            value = self._provider.get(self.secret_id, max_age=SECRET_MAX_AGE, force_fetch=fresh)
        except GetParameterError as exc:
            raise CredentialError(
                f"cannot read the Airflow password from {self.where}: {exc}. The function's role needs "
                "secretsmanager:GetSecretValue on the secret (and kms:Decrypt on its key, if it is a customer "
                "managed one)",
                retryable=True,
            ) from None
        return _password_in(value, self.where)

    def __repr__(self) -> str:
        return f"SecretsManagerPassword(secret_id={self.secret_id!r})"


def _password_in(value: str | bytes, where: str) -> str:
    text = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("password"), str):
        text = document["password"]
    if not text:
        raise CredentialError(f"{where} holds an empty password", retryable=True)
    return text


class _Login(Credentials):
    """Credentials made from a username and a password source (Airflow's own users)."""

    def __init__(self, username: str, password: PasswordSource | str) -> None:
        super().__init__()
        self.username = username
        self._password = FixedPassword(password) if isinstance(password, str) else password

    def describe(self) -> str:
        """The credential kind, the user and where the password comes from."""
        return f"{super().describe()}, user {self.username!r}, password from {self._password.where}"

    def __repr__(self) -> str:
        token = "***" if self.token else None
        return f"{type(self).__name__}(username={self.username!r}, password=***, token={token})"


class BasicCredentials(_Login):
    """HTTP basic auth (Airflow 2 with the basic_auth backend).

    The password is read on first use and kept; when Airflow refuses it and its source can change (a
    rotated secret), it is read afresh once.
    """

    forbidden_hint = (
        "Airflow 2 also answers 403 for a wrong username or password with basic auth, so check those first. "
    )

    def __init__(self, username: str, password: PasswordSource | str) -> None:
        super().__init__(username, password)
        self.can_refresh = self._password.can_change
        self._stale = False

    def refresh(self, session: requests.Session, timeout: tuple[float, float]) -> None:
        """Read the password (afresh after a refusal) and encode the header value."""
        pair = f"{self.username}:{self._password.read(fresh=self._stale)}".encode()
        self.token = base64.b64encode(pair).decode("ascii")
        self._stale = False

    def refused(self, response: ApiResponse) -> bool:
        """A 401, or a 403: Airflow 2 answers a wrong password as it answers a missing permission."""
        # Only reading the password again tells the two apart.
        return response.status in (401, 403)

    def _forget(self) -> None:
        super()._forget()
        self._stale = True

    def apply(self, headers: Any) -> None:
        """Set the Authorization header."""
        headers["Authorization"] = f"Basic {self.token}"


class AirflowJwtCredentials(_Login):
    """Airflow 3: a JWT from ``POST /auth/token``, cached until near its ``exp`` claim.

    When Airflow refuses the password and its source can change (a rotated secret), the password is read
    afresh and the token asked for once more.
    """

    def __init__(self, base_url: str, username: str, password: PasswordSource | str, *, verify: bool = True) -> None:
        super().__init__(username, password)
        self.token_url = f"{base_url.rstrip('/')}/auth/token"
        self._verify = verify

    def refresh(self, session: requests.Session, timeout: tuple[float, float]) -> None:
        """Ask Airflow for a token; if it refuses the password, once more with the password read afresh."""
        password = self._password.read()
        response = self._ask(session, password, timeout)
        if response.status_code in (401, 403) and self._password.can_change:
            fresh = self._password.read(fresh=True)
            if fresh != password:
                log.info("Airflow refused the password; asking again with the one now in %s", self._password.where)
                response = self._ask(session, fresh, timeout)
        if response.status_code in (401, 403):
            raise CredentialError(
                f"Airflow refused username {self.username!r} at {self.token_url} ({response.status_code}): "
                f"check the username and the password in {self._password.where}"
            )
        if response.status_code >= 500 or response.status_code == 429:
            raise CredentialError(f"{self.token_url} answered {response.status_code}", retryable=True)
        try:
            token = response.json()["access_token"]
        except (ValueError, KeyError, TypeError):
            raise CredentialError(
                f"{self.token_url} answered {response.status_code} without an access_token; "
                "is this Airflow 3 with the simple or FAB auth manager?"
            ) from None
        self.token = token
        self.expiry = jwt_expiry(token)
        log.info("fetched Airflow API token", extra={"token_url": self.token_url, "expires": str(self.expiry)})

    def _ask(self, session: requests.Session, password: str, timeout: tuple[float, float]) -> requests.Response:
        try:
            return session.post(
                self.token_url,
                json={"username": self.username, "password": password},
                timeout=timeout,
                verify=self._verify,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise CredentialError(
                f"cannot reach {self.token_url} for a token: {type(exc).__name__}", retryable=True
            ) from None


class TokenFileCredentials(Credentials):
    """A bearer token in a file that something else rotates (a sidecar, a mounted secret).

    Re-read when the file changes and after a 401; a JWT's ``exp`` is honoured.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None

    @property
    def valid(self) -> bool:
        return super().valid and self._file_stamp() == self._stamp

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def refresh(self, session: requests.Session, timeout: tuple[float, float]) -> None:
        try:
            stamp = self._file_stamp()
            token = self.path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CredentialError(f"cannot read token file {self.path}: {exc.strerror}", retryable=True) from None
        if not token:
            raise CredentialError(f"token file {self.path} is empty", retryable=True)
        self.token, self.expiry, self._stamp = token, jwt_expiry(token), stamp

    def _forget(self) -> None:
        super()._forget()
        self._stamp = None


def credentials_for(
    settings: AirflowSettings, env: Mapping[str, str] | None = None, *, google_access: Credentials | None = None
) -> Credentials:
    """The provider that ``settings.auth`` names, with its secret read from the environment.

    ``google_access`` is a :class:`~shared.google_credentials.GoogleAccessToken` already in use (it read the
    Composer environment), so the process mints one access token per lifetime, not one per use.
    """
    env = os.environ if env is None else env
    if settings.auth == "none":
        return NoCredentials()
    if settings.auth == "token_file":
        return TokenFileCredentials(settings.token_file or "")
    if settings.auth in GOOGLE_AUTH_MODES:
        from shared import google_credentials as google

        if isinstance(google_access, google.GoogleAccessToken):
            access = google_access
        else:
            access = google.access_token_for(settings)
        if settings.auth == "composer":
            return access
        if settings.auth == "iap":
            if google.is_federated(settings):
                return google.IapImpersonatedIdToken(settings.url, access, settings.iap_client_id)
            return google.IapIdToken(settings.url, settings.iap_client_id)
        return google.IapServiceAccountJwt(
            settings.url,
            access,
            audience=settings.iap_jwt_audience,
            service_account=settings.service_account,
        )
    password = password_source(settings, env)
    username = settings.username or ""
    if settings.auth == "basic":
        return BasicCredentials(username, password)
    return AirflowJwtCredentials(settings.url, username, password, verify=settings.verify_tls)


def password_source(settings: AirflowSettings, env: Mapping[str, str]) -> PasswordSource:
    """The Secrets Manager secret ``password_secret`` names, else the variable ``password_env`` names."""
    if settings.password_secret:
        return SecretsManagerPassword(settings.password_secret)
    password = env.get(settings.password_env)
    if not password:
        raise CredentialError(
            f"auth = {settings.auth!r} needs a password in the environment variable "
            f"{settings.password_env}, which is not set (on Cloud Run functions, fill it from Secret Manager "
            "with the function's secret environment variables; on AWS, name a Secrets Manager secret in "
            "password_secret)"
        )
    return FixedPassword(password, f"the environment variable {settings.password_env}")
