"""Google's front doors for Airflow, on loopback: Cloud Composer's web server and Identity-Aware Proxy.

Each proxy checks the caller's Google credentials against a :class:`~tests.fake_google.FakeGoogle`,
then forwards the request to a real local Airflow with Airflow's own admin ``Authorization`` in place
of the caller's (as Composer and IAP map a Google identity to an Airflow user), adding IAP's
``X-Goog-Authenticated-User-Email``.

* :class:`ComposerProxy` wants a bearer access token the fake minted: 401 without one, 403 for an
  identity not allowed (the caller lacks roles/composer.user, i.e. composer.environments.get).
* :class:`IapProxy` sends a caller without credentials to Google's sign-in page (302, the URL naming
  the IAP OAuth client id), and takes a bearer ID token for that client id or a service account's
  self-signed JWT for this URL: 401 ``Invalid IAP credentials: <why>``, 403 for an identity not allowed.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
from collections import Counter
from email.message import Message
from typing import Any
from urllib.parse import urlencode

from google.auth import crypt, jwt

from scripts.local_airflow import LocalAirflow
from tests.fake_google import FakeGoogle, google_error, unauthenticated
from tests.loopback import LoopbackProxy, ProxyHandler, Reply

GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
#: IAP refuses a self-signed JWT meant to live longer than an hour.
MAX_JWT_LIFETIME = 3600
_SERVICE_ACCOUNT = re.compile(r"[^@\s]+@[^@\s]+\.gserviceaccount\.com")
_HTML = {"Content-Type": "text/html; charset=UTF-8"}
_IAP_FORBIDDEN_PAGE = (
    "<!DOCTYPE html><html lang=en><title>Error 403 (Forbidden)</title>"
    "<p><b>403.</b> You don't have access. <ins>That's an error.</ins>"
    "<p>Access denied. You don't have permission to access this resource.</p></html>"
)


class _AuthHandler(ProxyHandler):
    owner: _AuthProxy

    def respond(self, body: bytes) -> None:
        email = self.owner._authenticate(self.path, self.headers)
        replace = self.owner._airflow_auth | {"X-Goog-Authenticated-User-Email": f"accounts.google.com:{email}"}
        self.send(*self.forward(body, replace))


class _AuthProxy(LoopbackProxy):
    """Authenticates each request (in :meth:`_authenticate`), then forwards it to Airflow as its admin."""

    handler = _AuthHandler

    def __init__(self, airflow: LocalAirflow, google: FakeGoogle, *, allowed: set[str] | None = None) -> None:
        super().__init__(airflow.url)
        self.airflow = airflow
        self.google = google
        #: Identities let through; ``None``: every authenticated one.
        self.allowed = allowed
        self._airflow_auth: dict[str, str] = {}

    def start(self) -> None:
        """Listen; Airflow's admin credentials are fetched once, here (they last the whole session)."""
        self._airflow_auth = self.airflow.auth_headers()
        super().start()

    def _authenticate(self, path: str, headers: Message) -> str:
        """The caller's email, or :class:`~tests.loopback.Reply`."""
        raise NotImplementedError

    def _forbidden(self, email: str) -> Reply:
        """The answer to an authenticated identity that is not allowed."""
        raise NotImplementedError

    def _admit(self, email: str) -> str:
        if self.allowed is not None and email not in self.allowed:
            raise self._forbidden(email)
        return email


def _bearer(headers: Message) -> str | None:
    scheme, _, token = (headers.get("Authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class ComposerProxy(_AuthProxy):
    """Composer's Airflow web server: a bearer access token from ``google``, and an allowed identity."""

    def _authenticate(self, path: str, headers: Message) -> str:
        token = _bearer(headers)
        email = self.google.access_token_email(token) if token else None
        if email is None:
            raise unauthenticated()
        return self._admit(email)

    def _forbidden(self, email: str) -> Reply:
        message = (
            f"The caller {email} does not have permission composer.environments.get on this environment's "
            "project, which the Airflow web server and REST API require."
        )
        return Reply(403, google_error(403, "PERMISSION_DENIED", message))


class IapProxy(_AuthProxy):
    """Identity-Aware Proxy in front of Airflow, for the OAuth client ``client_id``.

    ``accept_id_tokens=False`` plays IAP with a Google-managed OAuth client whose programmatic-clients
    allowlist lacks ours: ID tokens are refused (401), self-signed service account JWTs still work.
    :attr:`accepted` counts what was let in, by kind (``id_token``, ``jwt``).
    """

    def __init__(
        self,
        airflow: LocalAirflow,
        google: FakeGoogle,
        *,
        client_id: str = "1234-iapclient.apps.googleusercontent.com",
        allowed: set[str] | None = None,
        accept_id_tokens: bool = True,
    ) -> None:
        super().__init__(airflow, google, allowed=allowed)
        self.client_id = client_id
        self.accept_id_tokens = accept_id_tokens
        self.accepted: Counter[str] = Counter()
        self._lock = threading.Lock()

    @property
    def sign_in_url(self) -> str:
        """Where IAP sends a caller without credentials: Google's sign-in for this OAuth client."""
        query = {
            "client_id": self.client_id,
            "response_type": "code",
            "scope": "openid email",
            "redirect_uri": f"https://iap.googleapis.com/v1/oauth/clientIds/{self.client_id}:handleRedirect",
            "state": "fake-iap-state",
        }
        return "https://accounts.google.com/o/oauth2/v2/auth?" + urlencode(query)

    def _forbidden(self, email: str) -> Reply:
        return Reply(403, _IAP_FORBIDDEN_PAGE, _HTML)

    def _authenticate(self, path: str, headers: Message) -> str:
        if headers.get("Authorization") is None:
            raise Reply(302, "", {"Location": self.sign_in_url})
        token = _bearer(headers)
        if token is None:
            raise _invalid("Authorization header is not a Bearer token")
        claims = self._verified_claims(token)
        if claims.get("iss") in GOOGLE_ISSUERS:
            kind, email = "id_token", self._id_token_email(claims)
        else:
            kind, email = "jwt", self._jwt_email(claims, path)
        self._admit(email)
        with self._lock:
            self.accepted[kind] += 1
        return email

    def _verified_claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.decode_header(token)
            claims: dict[str, Any] = jwt.decode(token, verify=False)
            signed, _, encoded = token.encode().rpartition(b".")
            signature = base64.urlsafe_b64decode(encoded + b"=" * (-len(encoded) % 4))
        except (ValueError, binascii.Error):
            raise _invalid("Unable to parse JWT") from None
        verifier = crypt.RSAVerifier.from_string(self.google.public_key_pem)
        if header.get("alg") != "RS256" or not verifier.verify(signed, signature):
            raise _invalid("JWT signature is invalid")
        now = time.time()
        if not isinstance(claims.get("exp"), int | float) or not isinstance(claims.get("iat"), int | float):
            raise _invalid("JWT is missing the 'iat' or 'exp' claim")
        if claims["exp"] < now:
            raise _invalid("Expired JWT")
        if claims["iat"] > now:
            raise _invalid("JWT issued in the future")
        return claims

    def _id_token_email(self, claims: dict[str, Any]) -> str:
        if not self.accept_id_tokens:
            raise _invalid("ID tokens are not accepted for this OAuth client (programmatic client not allowlisted)")
        if claims.get("aud") != self.client_id:
            raise _wrong_audience(claims.get("aud"), self.client_id)
        if not claims.get("email") or claims.get("email_verified") is not True:
            raise _invalid("ID token has no verified email")
        return str(claims["email"])

    def _jwt_email(self, claims: dict[str, Any], path: str) -> str:
        issuer = claims.get("iss")
        if not isinstance(issuer, str) or not _SERVICE_ACCOUNT.fullmatch(issuer) or claims.get("sub") != issuer:
            raise _invalid("JWT issuer and subject must be the same service account")
        audience = claims.get("aud")
        expected = f"{self.url}/*"
        exact = f"{self.url}{path.split('?', 1)[0]}"
        if audience not in (expected, exact):
            raise _wrong_audience(audience, expected)
        if claims["exp"] - claims["iat"] > MAX_JWT_LIFETIME:
            raise _invalid(f"JWT lifetime exceeds {MAX_JWT_LIFETIME} seconds")
        return issuer


def _invalid(why: str) -> Reply:
    return Reply(401, f"Invalid IAP credentials: {why}", _HTML)


def _wrong_audience(audience: object, expected: str) -> Reply:
    why = f"('aud' claim ({audience}) doesn't match expected value ({expected}))"
    return _invalid(f"JWT audience doesn't match this application {why}")
