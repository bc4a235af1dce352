"""Credential providers: one contract for every kind of token, plugged into ``requests`` as ``auth``.

Every provider keeps a cached ``token`` and ``expiry``; the client calls :meth:`Credentials.before_request`
(refreshes when missing or near expiry) before each call and :meth:`Credentials.invalidate` after a 401,
then retries once. The client never needs to know where a token came from. Providers for Google,
IAP, AWS and MWAA follow the same contract.
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
from typing import Any

import requests
from requests.auth import AuthBase

from shared.config import GOOGLE_AUTH_MODES, AirflowSettings
from shared.errors import CredentialError

log = logging.getLogger("dag_trigger.credentials")

#: Refresh this long before a token's expiry: a request in flight, and a server clock a little ahead
#: of ours, must not see an expired token.
EXPIRY_MARGIN = timedelta(seconds=60)


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

    def invalidate(self) -> None:
        """Forget the cached token, so the next request fetches a new one (after a 401)."""
        with self._lock:
            self.token = None
            self.expiry = None

    def apply(self, headers: Any) -> None:
        """Set the Authorization header."""
        headers["Authorization"] = f"Bearer {self.token}"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
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


class BasicCredentials(StaticCredentials):
    """HTTP basic auth (Airflow 2 with the basic_auth backend)."""

    forbidden_hint = (
        "Airflow 2 also answers 403 for a wrong username or password with basic auth, so check those first. "
    )

    def __init__(self, username: str, password: str) -> None:
        super().__init__()
        self.username = username
        self._password = password

    def apply(self, headers: Any) -> None:
        pair = f"{self.username}:{self._password}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")

    def __repr__(self) -> str:
        return f"BasicCredentials(username={self.username!r}, password=***)"


class AirflowJwtCredentials(Credentials):
    """Airflow 3: a JWT from ``POST /auth/token``, cached until near its ``exp`` claim."""

    def __init__(self, base_url: str, username: str, password: str, *, verify: bool = True) -> None:
        super().__init__()
        self.token_url = f"{base_url.rstrip('/')}/auth/token"
        self.username = username
        self._password = password
        self._verify = verify

    def refresh(self, session: requests.Session, timeout: tuple[float, float]) -> None:
        try:
            response = session.post(
                self.token_url,
                json={"username": self.username, "password": self._password},
                timeout=timeout,
                verify=self._verify,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise CredentialError(
                f"cannot reach {self.token_url} for a token: {type(exc).__name__}", retryable=True
            ) from None
        if response.status_code in (401, 403):
            raise CredentialError(
                f"Airflow refused username {self.username!r} at {self.token_url} ({response.status_code}): "
                "check the username and the password in the environment variable named by password_env"
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

    def __repr__(self) -> str:
        return f"AirflowJwtCredentials(username={self.username!r}, token={'***' if self.token else None})"


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

    def invalidate(self) -> None:
        with self._lock:
            self.token, self.expiry, self._stamp = None, None, None


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

        access = google_access if isinstance(google_access, google.GoogleAccessToken) else google.GoogleAccessToken()
        if settings.auth == "composer":
            return access
        if settings.auth == "iap":
            return google.IapIdToken(settings.url, settings.iap_client_id)
        return google.IapServiceAccountJwt(
            settings.url,
            access,
            audience=settings.iap_jwt_audience,
            service_account=settings.service_account,
        )
    password = env.get(settings.password_env)
    if not password:
        raise CredentialError(
            f"auth = {settings.auth!r} needs a password in the environment variable "
            f"{settings.password_env}, which is not set (on Cloud Run functions, fill it from Secret Manager "
            "with the function's secret environment variables)"
        )
    username = settings.username or ""
    if settings.auth == "basic":
        return BasicCredentials(username, password)
    return AirflowJwtCredentials(settings.url, username, password, verify=settings.verify_tls)
