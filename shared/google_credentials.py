"""Google credentials for Cloud Composer and for Airflow behind Identity-Aware Proxy.

google-auth finds and mints the tokens (the metadata server on Cloud Run, a key file or gcloud's
application default credentials elsewhere); these providers put them under the project's
:class:`~shared.credentials.Credentials` contract:

* ``composer``: the runtime service account's OAuth access token (Composer 2 and 3).
* ``iap``: an OIDC ID token whose audience is IAP's OAuth client id (configured, or discovered once
  from IAP's login redirect).
* ``iap_jwt``: a JWT for the service account, signed by IAM Credentials ``signJwt``; the only way in
  when IAP uses a Google-managed OAuth client.

google-auth does not lock its own refresh (eight concurrent first events on one fresh credential make
eight mints) and re-mints in a token's last 225 s; the base class's lock wraps every refresh here, and
refreshes happen only within :data:`~shared.credentials.EXPIRY_MARGIN` of expiry. google-auth is
imported on the first refresh, never at import, so a cold start that handles no event pays nothing.
Every call google-auth makes goes through the client's session with timeouts clipped to the caller's
budget, so a missing metadata server fails within the deadline rather than after google-auth's retries.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import requests

from shared import credentials as core
from shared.config import AirflowSettings
from shared.credentials import Credentials, jwt_claims
from shared.errors import CredentialError

log = logging.getLogger("dag_trigger.credentials")

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
#: IAP refuses a self-signed JWT that lives longer than an hour.
IAP_JWT_LIFETIME = timedelta(hours=1)

_IAP_FORBIDDEN = (
    "Behind Identity-Aware Proxy the service account needs roles/iap.httpsResourceAccessor on the IAP-protected "
    "resource (the backend service or App Engine app), and Airflow must let that identity create DAG runs. "
)
_IAP_REFUSED_ID_ADVICE = (
    "IAP refused the ID token. Check that iap_client_id is the OAuth client id of this IAP resource. If IAP uses "
    "a Google-managed OAuth client, ID tokens minted for other clients are refused unless their client is on IAP's "
    "programmatic_clients allowlist: use auth = 'iap_jwt' (a service-account JWT signed through IAM Credentials) "
    "instead. "
)


def google_api_base(service: str, env: Mapping[str, str] | None = None) -> str:
    """Base URL of a Google API, ending in ``/``.

    Honours gcloud's ``CLOUDSDK_API_ENDPOINT_OVERRIDES_<SERVICE>`` (for a private endpoint, or a local
    fake in tests), so no Google address is fixed in code paths a user cannot redirect.
    """
    env = os.environ if env is None else env
    override = env.get(f"CLOUDSDK_API_ENDPOINT_OVERRIDES_{service.upper()}")
    base = override or f"https://{service}.googleapis.com/"
    return base if base.endswith("/") else base + "/"


class _ClippedRequest:
    """google-auth's requests transport on our session, within one time budget for all its calls.

    google-auth retries its metadata ping and token calls with a 3 s timeout each; off Google Cloud
    (no metadata server) that alone could outlive an event's deadline or keep ``doctor`` waiting.
    """

    def __init__(self, session: requests.Session, timeout: tuple[float, float]) -> None:
        from google.auth.transport.requests import Request

        self._inner = Request(session)
        self._end = time.monotonic() + max(timeout)

    def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None, **kwargs: Any) -> Any:
        from google.auth.exceptions import TransportError

        remaining = self._end - time.monotonic()
        if remaining <= 0:
            raise TransportError(f"out of time before {method} {url.split('?')[0]}")  # type: ignore[no-untyped-call]
        timeout = kwargs.pop("timeout", None)
        kwargs["timeout"] = remaining if timeout is None else min(float(timeout), remaining)
        return self._inner(url, method=method, body=body, headers=headers, **kwargs)


@contextlib.contextmanager
def _google_errors(doing: str) -> Iterator[None]:
    """Translate google-auth's exceptions into :class:`CredentialError`, keeping whether a retry may help."""
    from google.auth import exceptions

    try:
        yield
    except exceptions.DefaultCredentialsError as exc:
        raise CredentialError(
            f"no Google credentials for {doing}: {exc}. On Cloud Run functions the runtime service account is used; "
            "elsewhere set GOOGLE_APPLICATION_CREDENTIALS or run 'gcloud auth application-default login'"
        ) from None
    except exceptions.TransportError as exc:
        raise CredentialError(f"cannot reach Google for {doing}: {exc}", retryable=True) from None
    except exceptions.RefreshError as exc:
        retryable = bool(getattr(exc, "retryable", False))
        raise CredentialError(f"Google refused {doing}: {exc}", retryable=retryable) from None
    except exceptions.GoogleAuthError as exc:
        # OAuthError: Google STS refused a workload identity federation exchange (an untrusted identity, a
        # provider condition it fails); a retry gets the same answer.
        raise CredentialError(f"Google refused {doing}: {exc}") from None


def _aware(expiry: datetime | None) -> datetime | None:
    # google-auth keeps expiries as naive UTC datetimes.
    return expiry.replace(tzinfo=UTC) if expiry is not None and expiry.tzinfo is None else expiry


class GoogleAccessToken(Credentials):
    """``auth = "composer"``: the runtime service account's OAuth access token, sent as a bearer token.

    Composer 2 and 3 accept it on Airflow's REST API (``/api/v1`` on Airflow 2, ``/api/v2`` on
    Airflow 3); the same token reads the Composer API and calls IAM Credentials.
    """

    at_proxy = True
    forbidden_hint = (
        "On Cloud Composer the function's service account needs roles/composer.user, and its Airflow user a role "
        "that may create DAG runs (Composer registers new users with Op unless the environment's "
        "composer_auth_user_registration_role says otherwise; Viewer cannot trigger). "
    )

    def __init__(self, scopes: tuple[str, ...] = (CLOUD_PLATFORM_SCOPE,), *, source: Any = None) -> None:
        """``source``: google-auth credentials to mint with (federated ones from AWS); default: whatever
        ``google.auth.default()`` finds on the first refresh."""
        super().__init__()
        self.scopes = scopes
        self._source: Any = source

    def refresh(self, session: requests.Session, timeout: tuple[float, float]) -> None:
        """Find the credentials google-auth would use (once), then mint an access token."""
        request = _ClippedRequest(session, timeout)
        with _google_errors("an access token"):
            if self._source is None:
                import google.auth

                # Any callable with google-auth's transport signature will do; ours clips timeouts.
                self._source, _ = google.auth.default(scopes=list(self.scopes), request=request)  # type: ignore[arg-type]
            self._source.refresh(request)
        self.token, self.expiry = self._source.token, _aware(self._source.expiry)
        log.info(
            "fetched Google access token",
            extra={"identity": self.identity, "kind": self.kind, "expires": str(self.expiry)},
        )

    @property
    def identity(self) -> str | None:
        """The service account the token belongs to, when google-auth knows it (after the first refresh)."""
        email = getattr(self._source, "service_account_email", None)
        return email if isinstance(email, str) and email != "default" else None

    def describe(self) -> str:
        """For ``dag-trigger doctor``: which credential google-auth found, for whom, with which scopes."""
        return (
            f"{self.kind} for {self.identity or 'an account google-auth does not name'}; access token for scopes "
            f"{', '.join(self.scopes)}, valid until {self.expiry}"
        )

    @property
    def kind(self) -> str:
        """Which kind of credential google-auth found (``compute_engine.Credentials``, a key file's ...)."""
        if self._source is None:
            return "not loaded yet"
        return f"{type(self._source).__module__.removeprefix('google.')}.{type(self._source).__name__}"


def is_federated(settings: AirflowSettings) -> bool:
    """True when Google credentials come from AWS through workload identity federation."""
    return bool(settings.google_credential_config or settings.workload_identity_provider)


def access_token_for(settings: AirflowSettings) -> GoogleAccessToken:
    """The access token the settings call for: the runtime's own credentials, or federated ones from AWS.

    Federated credentials are built here, when the dispatcher is, so a bad credential configuration is a
    configuration error at once rather than a failed request later.
    """
    if not is_federated(settings):
        return GoogleAccessToken()
    from shared.workload_identity import federated_credentials

    return GoogleAccessToken(source=federated_credentials(settings, (CLOUD_PLATFORM_SCOPE,)))


def discover_iap_client_id(session: requests.Session, url: str, timeout: tuple[float, float]) -> str:
    """IAP's OAuth client id, from the login redirect it answers an unauthenticated request with."""
    try:
        response = session.get(url, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        reason = type(exc).__name__
        raise CredentialError(f"cannot reach {url} to discover IAP's client id: {reason}", retryable=True) from None
    location = response.headers.get("Location", "") if response.is_redirect else ""
    client_ids = parse_qs(urlsplit(location).query).get("client_id", [])
    if not client_ids:
        raise CredentialError(
            f"{url} answered {response.status_code} without a redirect to Google sign-in carrying a client_id, "
            "so IAP's OAuth client id cannot be discovered: is this URL behind Identity-Aware Proxy? "
            "Set [airflow].iap_client_id (IAP's OAuth client id) to skip discovery"
        )
    log.info("discovered IAP OAuth client id", extra={"url": url, "client_id": client_ids[0]})
    return client_ids[0]


class GoogleIdToken(Credentials):
    """The runtime service account's OIDC ID token for ``audience``, from the metadata server through google-auth.

    On its own it is the web identity token a Cloud Run function presents to AWS STS
    (``AssumeRoleWithWebIdentity``); :class:`IapIdToken` adds what Identity-Aware Proxy needs.
    """

    def __init__(self, audience: str | None) -> None:
        super().__init__()
        self.audience = audience
        self._source: Any = None

    @property
    def claims(self) -> dict[str, Any]:
        """The current token's claims (not verified: for messages), empty before the first refresh."""
        return jwt_claims(self.token or "")

    def describe(self) -> str:
        """For ``dag-trigger doctor``: whose ID token, for which audience."""
        return (
            f"ID token for {self.claims.get('email', 'an unnamed account')} ({type(self._source).__name__}), "
            f"audience {self.audience}, valid until {self.expiry}"
        )

    def refresh(self, session: requests.Session, timeout: tuple[float, float]) -> None:
        """Build google-auth's ID token credentials (once), then mint a token."""
        request = _ClippedRequest(session, timeout)
        with _google_errors(f"an ID token for audience {self.audience}"):
            if self._source is None:
                from google.oauth2 import id_token

                self._source = id_token.fetch_id_token_credentials(  # type: ignore[no-untyped-call]
                    self.audience, request=request
                )
            self._source.refresh(request)
        self.token, self.expiry = self._source.token, _aware(self._source.expiry)
        log.info("fetched Google ID token", extra={"audience": self.audience, "expires": str(self.expiry)})


class IapIdToken(GoogleIdToken):
    """``auth = "iap"``: an OIDC ID token of the runtime service account, audience the IAP OAuth client id."""

    at_proxy = True
    forbidden_hint = _IAP_FORBIDDEN
    unauthorized_hint = _IAP_REFUSED_ID_ADVICE

    def __init__(self, url: str, client_id: str | None = None) -> None:
        super().__init__(client_id)
        self.url = url
        self._client_id_origin = "configured" if client_id else "discovered from IAP's sign-in redirect"

    @property
    def client_id(self) -> str | None:
        """IAP's OAuth client id: the token's audience."""
        return self.audience

    def describe(self) -> str:
        """For ``dag-trigger doctor``: whose ID token, for which audience, and where the audience came from."""
        return f"{super().describe()} ({self._client_id_origin})"

    def refresh(self, session: requests.Session, timeout: tuple[float, float]) -> None:
        """Discover the audience (once), then mint a token."""
        if self.audience is None:
            self.audience = discover_iap_client_id(session, self.url, timeout)
        super().refresh(session, timeout)


class IapServiceAccountJwt(Credentials):
    """``auth = "iap_jwt"``: a JWT for the service account (``iss`` = ``sub`` = its email, ``aud`` = the URL),
    signed by IAM Credentials ``signJwt`` with the runtime service account's access token.

    The signer needs ``iam.serviceAccounts.signJwt`` on the service account (roles/iam.serviceAccountTokenCreator,
    on itself when it signs for itself).
    """

    at_proxy = True
    forbidden_hint = _IAP_FORBIDDEN

    def __init__(
        self,
        url: str,
        access: GoogleAccessToken,
        *,
        audience: str | None = None,
        service_account: str | None = None,
    ) -> None:
        super().__init__()
        parts = urlsplit(url)
        self.audience = audience or f"{parts.scheme}://{parts.netloc}/*"
        self.service_account = service_account
        self._access = access
        self.unauthorized_hint = (
            f"IAP refused the service-account JWT for audience {self.audience!r}: the audience must be the protected "
            "URL (https://HOST/* or the exact URL); set [airflow].iap_jwt_audience if it differs. "
        )

    def describe(self) -> str:
        """For ``dag-trigger doctor``: who signed the JWT, for whom, and its audience."""
        claims = jwt_claims(self.token or "")
        return (
            f"JWT for {claims.get('sub', '?')} signed through IAM Credentials with {self._access.describe()}; "
            f"audience {self.audience}, valid until {self.expiry}"
        )

    def refresh(self, session: requests.Session, timeout: tuple[float, float]) -> None:
        """Sign a one-hour JWT through IAM Credentials, authorized by the (cached) access token."""
        self._access.before_request(session, timeout)
        email = self.service_account or self._access.identity
        if not email:
            raise CredentialError(
                f"auth = 'iap_jwt' needs a service account to sign for, and google-auth's {self._access.kind} names "
                "none: set [airflow].service_account"
            )
        now = core.utcnow().replace(microsecond=0)
        expiry = now + IAP_JWT_LIFETIME
        claims = {
            "iss": email,
            "sub": email,
            "aud": self.audience,
            "iat": int(now.timestamp()),
            "exp": int(expiry.timestamp()),
        }
        answer = iam_credentials(session, self._access, email, "signJwt", {"payload": json.dumps(claims)}, timeout)
        token = answer.get("signedJwt")
        if not isinstance(token, str):
            raise CredentialError("IAM Credentials signJwt answered 200 without a signedJwt", retryable=True)
        self.token, self.expiry = token, expiry
        log.info("signed IAP JWT", extra={"service_account": email, "audience": self.audience})


class IapImpersonatedIdToken(Credentials):
    """``auth = "iap"`` from outside Google Cloud (workload identity federation): an ID token for the IAP client
    id, minted by IAM Credentials ``generateIdToken`` for the impersonated service account.

    There is no metadata server to ask off Google Cloud; the federated access token already belongs to the service
    account, which needs ``iam.serviceAccounts.getOpenIdToken`` on itself (roles/iam.serviceAccountOpenIdTokenCreator).
    """

    at_proxy = True
    forbidden_hint = _IAP_FORBIDDEN
    unauthorized_hint = _IAP_REFUSED_ID_ADVICE

    def __init__(self, url: str, access: GoogleAccessToken, client_id: str | None = None) -> None:
        super().__init__()
        self.url = url
        self.client_id = client_id
        self._access = access

    def describe(self) -> str:
        """For ``dag-trigger doctor``: whose ID token, for which audience, minted how."""
        claims = jwt_claims(self.token or "")
        return (
            f"ID token for {claims.get('email', '?')} from IAM Credentials generateIdToken with "
            f"{self._access.describe()}; audience {self.client_id}, valid until {self.expiry}"
        )

    def refresh(self, session: requests.Session, timeout: tuple[float, float]) -> None:
        """Discover the audience (once), then mint an ID token through IAM Credentials."""
        if self.client_id is None:
            self.client_id = discover_iap_client_id(session, self.url, timeout)
        self._access.before_request(session, timeout)
        email = self._access.identity
        if not email:
            raise CredentialError(
                "auth = 'iap' through workload identity federation needs a service account to impersonate: set "
                "[airflow].service_account (or the credential configuration's service_account_impersonation_url)"
            )
        body = {"audience": self.client_id, "includeEmail": True}
        answer = iam_credentials(session, self._access, email, "generateIdToken", body, timeout)
        token = answer.get("token")
        if not isinstance(token, str):
            raise CredentialError("IAM Credentials generateIdToken answered 200 without a token", retryable=True)
        self.token, self.expiry = token, core.jwt_expiry(token)
        log.info("fetched Google ID token through IAM Credentials", extra={"audience": self.client_id})


#: What each IAM Credentials method needs of the caller, for the 403 message.
_IAM_PERMISSIONS = {
    "signJwt": ("iam.serviceAccounts.signJwt", "roles/iam.serviceAccountTokenCreator"),
    "generateIdToken": ("iam.serviceAccounts.getOpenIdToken", "roles/iam.serviceAccountOpenIdTokenCreator"),
}


def iam_credentials(
    session: requests.Session,
    access: GoogleAccessToken,
    email: str,
    method: str,
    body: dict[str, Any],
    timeout: tuple[float, float],
) -> dict[str, Any]:
    """Call IAM Credentials ``method`` for service account ``email`` with ``access``; its JSON answer.

    A 401 (the access token revoked or expired early) gets one fresh token and one more try; a 403 names the
    permission and role the caller lacks; 429 and 5xx may pass on a retry.
    """
    url = iam_credentials_url(email, method)
    response = _post_authorized(session, url, access, body, timeout)
    if response.status_code == 401:
        access.invalidate()
        access.before_request(session, timeout)
        response = _post_authorized(session, url, access, body, timeout)
    if response.status_code == 403:
        permission, role = _IAM_PERMISSIONS.get(method, (f"the permission {method} needs", "a role that grants it"))
        raise CredentialError(
            f"IAM Credentials refused {method} for {email} (403): {access.identity or 'the caller'} needs {role} on "
            f"{email} (permission {permission}): {_google_error(response)}"
        )
    if response.status_code != 200:
        raise CredentialError(
            f"IAM Credentials {method} for {email} answered {response.status_code}: {_google_error(response)}",
            retryable=response.status_code == 429 or response.status_code >= 500,
        )
    try:
        answer = response.json()
    except ValueError:
        raise CredentialError(f"IAM Credentials {method} answered 200 with no JSON", retryable=True) from None
    return answer if isinstance(answer, dict) else {}


def iam_credentials_url(email: str, method: str) -> str:
    """IAM Credentials' URL for ``method`` (``signJwt``, ``generateAccessToken``, ...) on service account ``email``."""
    return f"{google_api_base('iamcredentials')}v1/projects/-/serviceAccounts/{quote(email, safe='@')}:{method}"


def _post_authorized(
    session: requests.Session, url: str, access: GoogleAccessToken, body: dict[str, Any], timeout: tuple[float, float]
) -> requests.Response:
    try:
        return session.post(url, json=body, auth=access, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        reason = type(exc).__name__
        raise CredentialError(f"cannot reach IAM Credentials at {url}: {reason}", retryable=True) from None


def _google_error(response: requests.Response) -> str:
    """The message of a Google API error body (``{"error": {"message": ...}}``), short."""
    try:
        return str(response.json()["error"]["message"])[:300]
    except (ValueError, KeyError, TypeError):
        return response.text[:300].strip()
