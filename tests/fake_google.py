"""FakeGoogle: the GCE metadata server, Google STS, IAM Credentials and the Cloud Composer API on one loopback port.

The real google-auth code runs against it, pointed here by the official override variables
(:meth:`FakeGoogle.env`), with nothing on the machine shadowing it (:meth:`FakeGoogle.isolate_env`).
It answers what google-auth 2.62 asks of the metadata server on a plain Cloud Run function:

* ``GET /`` (the ping that ``google.auth.default()`` and ``fetch_id_token_credentials`` use to detect
  Google Cloud; it goes to ``GCE_METADATA_IP``, every other call to ``GCE_METADATA_HOST``),
* ``project/project-id``, ``universe/universe-domain``,
* ``instance/service-accounts/{default|email}/?recursive=true`` and its ``email``, ``scopes``,
  ``token[?scopes=]`` and ``identity?audience=&format=full`` leaves.

Every metadata request needs ``Metadata-Flavor: Google`` and must not carry ``X-Forwarded-For``
(403 otherwise, as the real server). google-auth POSTs to ``token``/``identity`` only for a
certificate-bound token, when it finds an Agent Identity certificate; a plain Cloud Run function has
none, so those POSTs get 404 here. mTLS to the metadata server is only ever tried against the
default hosts, never an overridden one.

IAM Credentials ``signJwt`` and Composer ``environments.get`` want a bearer access token minted by
this fake and not expired. Tokens, ID tokens and signed JWTs are RS256 under one test key
(:attr:`FakeGoogle.public_key_pem`).

Workload Identity Federation from AWS, as google-auth's ``aws.Credentials`` drive it:

* Google STS ``POST /v1/token`` (RFC 8693, form-encoded) takes the URL-quoted JSON of a signed AWS STS
  ``GetCallerIdentity`` request as the subject token for a provider registered with
  :meth:`FakeGoogle.add_aws_provider`. Where Google would forward that request to AWS, this fake recomputes
  its SigV4 signature with botocore's signer from the secret of a key registered with
  :meth:`FakeGoogle.trust_aws_credentials`, and compares the session token. It answers a federated access
  token for ``principal://iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/POOL/subject/<arn>``
  (member, too, of the pool's, the AWS role's and the AWS account's principal sets). Refusals are STS's
  OAuth errors: 400 ``{"error", "error_description"}``.
* IAM Credentials ``generateAccessToken`` and ``generateIdToken`` (beside ``signJwt``), for a federated token
  or a service account access token of this fake: a federated principal needs
  :meth:`FakeGoogle.allow_impersonation` (roles/iam.workloadIdentityUser), a service account either that or
  :meth:`FakeGoogle.allow_signing` (roles/iam.serviceAccountTokenCreator). The access tokens minted are the
  service account's like any other here (Composer, signJwt, the auth proxies take them); a federated token
  is good for IAM Credentials only, as it is for the Google APIs that do not accept federated tokens.
  Delegation chains (``delegates``) are not played: a non-empty list is refused.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotocoreCredentials
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt, jwt

from tests.loopback import Handler, LoopbackServer, Reply

DEFAULT_SERVICE_ACCOUNT = "dag-trigger@test-project.iam.gserviceaccount.com"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
IAM_SCOPE = "https://www.googleapis.com/auth/iam"
GOOGLE_ISSUER = "https://accounts.google.com"
#: What IAM signJwt accepts as ``exp``: at most 12 hours ahead.
MAX_SIGNED_JWT_LIFETIME = 12 * 3600
#: The longest generateAccessToken grants without the org policy that extends it to 12 hours.
MAX_GENERATED_TOKEN_LIFETIME = 3600
DEFAULT_LOCATION = "us-central1"

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
AWS_SUBJECT_TOKEN_TYPE = "urn:ietf:params:aws:token-type:aws4_request"
DEFAULT_AWS_ARN = "arn:aws:sts::111122223333:assumed-role/ROLE/SESSION"
#: How far a SigV4 timestamp may be from now (AWS allows 5 minutes of clock skew).
MAX_AWS_CLOCK_SKEW = timedelta(minutes=5)

#: Variables that make google.auth.default() or fetch_id_token_credentials() pick something other
#: than the metadata server, skip it, or try a certificate-bound or mTLS path a Cloud Run function
#: would not take.
SHADOWING_VARIABLES = (
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
    "GCLOUD_PROJECT",
    "GOOGLE_CLOUD_QUOTA_PROJECT",
    "CLOUDSDK_CORE_PROJECT",
    "APPENGINE_RUNTIME",
    "NO_GCE_CHECK",
    "GCE_METADATA_ROOT",
    "GCE_METADATA_TIMEOUT",
    "GCE_METADATA_DETECT_RETRIES",
    "GCE_METADATA_MTLS_MODE",
    "GOOGLE_API_CERTIFICATE_CONFIG",
    "CLOUDSDK_CONTEXT_AWARE_CERTIFICATE_CONFIG_FILE_PATH",
    "GOOGLE_API_USE_CLIENT_CERTIFICATE",
    "CLOUDSDK_CONTEXT_AWARE_USE_CLIENT_CERTIFICATE",
    "GOOGLE_API_USE_MTLS_ENDPOINT",
)
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")
_NO_PROXY = "127.0.0.1,localhost"

_METADATA_ROOT = "/computeMetadata/v1/"
_SERVICE_ACCOUNT_PATH = re.compile(r"instance/service-accounts/(?P<account>[^/]+)/(?P<leaf>[^/]*)")
_IAM_PATH = re.compile(
    r"/v1/projects/-/serviceAccounts/(?P<email>[^/:]+):(?P<method>signJwt|generateAccessToken|generateIdToken)"
)
_STS_PATH = "/v1/token"
_WORKLOAD_PROVIDER = re.compile(
    r"//iam\.googleapis\.com/projects/(?P<number>\d+)/locations/global/workloadIdentityPools/(?P<pool>[^/]+)"
    r"/providers/(?P<provider>[^/]+)"
)
_AWS_STS_URL = re.compile(
    r"https://sts\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com\?Action=GetCallerIdentity&Version=2011-06-15"
)
_AWS_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/(?P<service>[^/,\s]+)"
    r"/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*Signature=(?P<signature>[0-9a-f]{64})"
)
_AWS_ARN = re.compile(r"arn:aws:(?:sts|iam)::(?P<account>\d{12}):(?P<kind>assumed-role|user|role)/(?P<rest>.+)")
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_RFC3339 = "%Y-%m-%dT%H:%M:%SZ"
_LIFETIME = re.compile(r"(?P<seconds>\d+)(?:\.\d{1,9})?s")
_ENVIRONMENT_PATH = re.compile(r"/v1/(?P<name>projects/[^/]+/locations/[^/]+/environments/[^/]+)")


@functools.cache
def _private_key() -> rsa.RSAPrivateKey:
    """One RSA key per process: generating one is slow, and every fake may share it."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _unique_id(email: str) -> str:
    """A stable 21-digit number starting with 1, the shape of a service account's unique id."""
    return str(10**20 + int(hashlib.sha256(email.encode()).hexdigest(), 16) % 10**20)


def google_error(code: int, status: str, message: str) -> dict[str, Any]:
    """A Google API error body: ``{"error": {"code", "message", "status"}}``."""
    return {"error": {"code": code, "message": message, "status": status}}


def unauthenticated() -> Reply:
    """Google's answer to a missing, unknown or expired access token."""
    message = (
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
        "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
    )
    return Reply(
        401,
        google_error(401, "UNAUTHENTICATED", message),
        {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
    )


_INSUFFICIENT_SCOPES = google_error(403, "PERMISSION_DENIED", "Request had insufficient authentication scopes.")


def permission_denied(permission: str, caller: str, role: str, email: str) -> Reply:
    """IAM's 403 for ``permission`` on a service account, naming the role ``caller`` lacks on it."""
    body = google_error(
        403,
        "PERMISSION_DENIED",
        f"Permission '{permission}' denied on resource (or it may not exist): {caller} needs {role} on "
        f"projects/-/serviceAccounts/{email}.",
    )
    body["error"]["details"] = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "IAM_PERMISSION_DENIED",
            "domain": "iam.googleapis.com",
            "metadata": {"permission": permission},
        }
    ]
    return Reply(403, body)


def sts_error(error: str, description: str, status: int = 400) -> Reply:
    """Google STS's refusal: an OAuth 2.0 error, ``{"error", "error_description"}``."""
    return Reply(status, {"error": error, "error_description": description})


def _aws_refusal(code: str, message: str) -> Reply:
    # What Google STS says when AWS refused the GetCallerIdentity request it forwarded.
    return sts_error("invalid_grant", f"Received invalid AWS response of type {code} with error message: {message}")


_AWS_INVALID_TOKEN = ("InvalidClientTokenId", "The security token included in the request is invalid.")
_AWS_SIGNATURE_MISMATCH = (
    "SignatureDoesNotMatch",
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details.",
)
_AWS_BAD_FORMAT = sts_error("invalid_grant", "AWS request has invalid format.")


@dataclass(frozen=True)
class _AccessToken:
    email: str
    scopes: tuple[str, ...]
    expires_at: float


@dataclass(frozen=True)
class _FederatedToken:
    principal: str
    principal_sets: frozenset[str]
    scopes: tuple[str, ...]
    expires_at: float


@dataclass(frozen=True)
class _Caller:
    """Who a bearer token stands for: a service account or a federated principal, and what grants may name."""

    name: str
    members: frozenset[str]
    federated: bool


@dataclass(frozen=True)
class AwsProvider:
    """A workload identity pool's AWS provider, as :meth:`FakeGoogle.add_aws_provider` registered it."""

    audience: str
    project_number: str
    pool: str
    provider: str
    account: str | None
    allowed_roles: frozenset[str] | None

    @property
    def pool_name(self) -> str:
        """``projects/N/locations/global/workloadIdentityPools/POOL``."""
        return f"projects/{self.project_number}/locations/global/workloadIdentityPools/{self.pool}"


@dataclass(frozen=True)
class _AwsKey:
    access_key_id: str
    secret_access_key: str
    session_token: str | None
    arn: str


@dataclass(frozen=True)
class StsExchange:
    """One call of Google STS's token endpoint: what it carried, and what it came to.

    ``access_key_id`` and ``region`` are those of the signed request's credential scope (``None`` if the
    subject token had none); ``principal`` is set when a federated token was issued, ``error`` (the OAuth
    error code) when not. ``api_client`` is google-auth's ``x-goog-api-client`` header.
    """

    audience: str | None
    access_key_id: str | None
    region: str | None
    arn: str | None
    principal: str | None
    error: str | None
    scopes: tuple[str, ...]
    api_client: str | None


@dataclass(frozen=True)
class IamCall:
    """One IAM Credentials call: the method, the service account it named, its caller and the answer's status."""

    method: str
    email: str
    caller: str | None
    status: int


class _GoogleHandler(Handler):
    owner: FakeGoogle

    def do_CONNECT(self) -> None:
        self._refuse_outbound()

    def respond(self, body: bytes) -> None:
        if not self.path.startswith("/"):  # an absolute URI: someone used us as an HTTP proxy
            self._refuse_outbound()
            return
        url = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        path = unquote(url.path)
        self.owner._count(self.owner.paths, url.path)
        if path == "/" or path.startswith(_METADATA_ROOT):
            self._metadata(path.removeprefix(_METADATA_ROOT), query)
        elif path == _STS_PATH:
            self._sts_token(body)
        elif match := _IAM_PATH.fullmatch(path):
            self._iam(match["method"], match["email"], body)
        elif match := _ENVIRONMENT_PATH.fullmatch(path):
            self._environment(match["name"])
        else:
            raise Reply(404, google_error(404, "NOT_FOUND", f"The requested URL {url.path} was not found."))

    # -- metadata server ------------------------------------------------------------------

    def _metadata(self, path: str, query: dict[str, str]) -> None:
        flavor = {"Metadata-Flavor": "Google"}
        if self.headers.get("Metadata-Flavor") != "Google":
            raise Reply(403, "Missing Metadata-Flavor:Google header.\n", flavor | {"Content-Type": "text/html"})
        if "X-Forwarded-For" in self.headers:
            raise Reply(403, "Request rejected: X-Forwarded-For header present.\n", flavor)
        not_found = Reply(404, "Not Found\n", flavor | {"Content-Type": "text/html"})
        if self.command != "GET":
            raise not_found
        answer = self._metadata_value(path, query)
        if answer is None:
            raise not_found
        if isinstance(answer, str):
            self.send(200, [*flavor.items(), ("Content-Type", "application/text")], answer.encode())
        else:
            self.reply_json(200, answer, flavor)

    def _metadata_value(self, path: str, query: dict[str, str]) -> str | dict[str, Any] | None:
        google = self.owner
        if path == "/":
            return "computeMetadata/\n"
        if path == "project/project-id":
            return google.project
        if path == "universe/universe-domain":
            return "googleapis.com"
        if path == "instance/service-accounts/":
            return f"default/\n{google.service_account}/\n"
        match = _SERVICE_ACCOUNT_PATH.fullmatch(path)
        if not match or match["account"] not in ("default", google.service_account):
            return None
        leaf = match["leaf"]
        if leaf == "" and query.get("recursive") == "true":
            return {"aliases": ["default"], "email": google.service_account, "scopes": [CLOUD_PLATFORM]}
        if leaf == "":
            return "aliases\nemail\nidentity\nscopes\ntoken\n"
        if leaf == "email":
            return google.service_account
        if leaf == "scopes":
            return CLOUD_PLATFORM + "\n"
        if leaf == "token":
            scopes = tuple(s for s in query.get("scopes", CLOUD_PLATFORM).split(",") if s)
            return google._mint_access_token(scopes)
        if leaf == "identity":
            if not query.get("audience"):
                raise Reply(400, "non-empty audience parameter required\n", {"Metadata-Flavor": "Google"})
            return google._mint_id_token(query["audience"], full=query.get("format") == "full")
        return None

    # -- IAM Credentials and Composer -----------------------------------------------------

    def _caller(self, scopes: Iterable[str]) -> str:
        """The email behind the bearer access token, if it carries one of ``scopes``."""
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        record = self.owner._access_token(token) if scheme.lower() == "bearer" else None
        if record is None:
            raise unauthenticated()
        if not set(scopes) & set(record.scopes):
            raise Reply(403, _INSUFFICIENT_SCOPES)
        return record.email

    def _iam_caller(self) -> _Caller:
        """The service account or federated principal behind the bearer token; it must carry an IAM scope."""
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            raise unauthenticated()
        google = self.owner
        if record := google._access_token(token):
            scopes, caller = record.scopes, google._service_account_caller(record.email)
        elif federated := google._federated_token(token):
            scopes = federated.scopes
            caller = _Caller(federated.principal, frozenset({federated.principal, *federated.principal_sets}), True)
        else:
            raise unauthenticated()
        if not {CLOUD_PLATFORM, IAM_SCOPE} & set(scopes):
            raise Reply(403, _INSUFFICIENT_SCOPES)
        return caller

    def _iam(self, method: str, email: str, body: bytes) -> None:
        google = self.owner
        google._count(google.calls, method)
        caller: _Caller | None = None
        status = 200
        try:
            if self.command != "POST":
                raise Reply(405, google_error(405, "METHOD_NOT_ALLOWED", f"{method} takes POST."))
            caller = self._iam_caller()
            request = _json_object(body)
            if request.get("delegates"):
                raise Reply(400, google_error(400, "INVALID_ARGUMENT", "FakeGoogle does not play delegation chains."))
            if method == "signJwt":
                answer = self._sign_jwt(caller, email, request)
            elif method == "generateAccessToken":
                answer = self._generate_access_token(caller, email, request)
            else:
                answer = self._generate_id_token(caller, email, request)
        except Reply as reply:
            status = reply.status
            raise
        finally:
            # Recorded before the answer goes out: a client that has its answer finds its call in the list.
            google._record(google.iam_calls, IamCall(method, email, caller.name if caller else None, status))
        self.reply_json(200, answer)

    def _generate_access_token(self, caller: _Caller, email: str, request: dict[str, Any]) -> dict[str, Any]:
        google = self.owner
        if not google._may_impersonate(caller, email):
            raise self._impersonation_denied("iam.serviceAccounts.getAccessToken", caller, email)
        scopes = request.get("scope")
        if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) and s for s in scopes):
            raise Reply(400, google_error(400, "INVALID_ARGUMENT", "Scope required."))
        lifetime = _lifetime(request.get("lifetime", f"{MAX_GENERATED_TOKEN_LIFETIME}s"))
        token, expires_at = google._new_access_token(email, tuple(scopes), lifetime, "generated_access_token")
        expire_time = time.strftime(_RFC3339, time.gmtime(expires_at))
        return {"accessToken": token, "expireTime": expire_time}

    def _generate_id_token(self, caller: _Caller, email: str, request: dict[str, Any]) -> dict[str, Any]:
        google = self.owner
        if not google._may_impersonate(caller, email):
            raise self._impersonation_denied("iam.serviceAccounts.getOpenIdToken", caller, email)
        audience = request.get("audience")
        if not isinstance(audience, str) or not audience:
            raise Reply(400, google_error(400, "INVALID_ARGUMENT", "Audience required."))
        include_email = request.get("includeEmail") is True
        token = google._mint_id_token(audience, full=include_email, email=email, kind="generated_id_token")
        return {"token": token}

    def _impersonation_denied(self, permission: str, caller: _Caller, email: str) -> Reply:
        role = "roles/iam.workloadIdentityUser" if caller.federated else "roles/iam.serviceAccountTokenCreator"
        return permission_denied(permission, caller.name, role, email)

    def _sign_jwt(self, caller: _Caller, email: str, request: dict[str, Any]) -> dict[str, Any]:
        if not self.owner._may_sign(caller, email):
            raise permission_denied(
                "iam.serviceAccounts.signJwt", caller.name, "roles/iam.serviceAccountTokenCreator", email
            )
        try:
            claims = json.loads(request["payload"])
        except (ValueError, KeyError, TypeError):
            claims = None
        if not isinstance(claims, dict):
            raise Reply(400, google_error(400, "INVALID_ARGUMENT", "Payload must be a JSON object."))
        now = int(time.time())
        claims.setdefault("exp", now + 3600)  # as IAM: a JWT without exp gets one an hour ahead
        if not isinstance(claims["exp"], int) or claims["exp"] > now + MAX_SIGNED_JWT_LIFETIME:
            raise Reply(
                400, google_error(400, "INVALID_ARGUMENT", "JWT exp claim must be at most 12 hours in the future.")
            )
        return {"keyId": self.owner.key_id, "signedJwt": self.owner._sign(claims, "sign_jwt")}

    # -- Google STS ------------------------------------------------------------------------

    def _sts_token(self, body: bytes) -> None:
        google = self.owner
        google._count(google.calls, "sts.token")
        seen: dict[str, Any] = {"api_client": self.headers.get("x-goog-api-client")}
        try:
            if self.command != "POST":
                raise Reply(405, google_error(405, "METHOD_NOT_ALLOWED", "token takes POST."))
            federated = self._exchange(self._sts_form(body), seen)
            token, lifetime = google._mint_federated_token(federated, seen["scopes"])
            seen["principal"] = federated.principal
        except Reply as reply:
            error = reply.body.get("error") if isinstance(reply.body, dict) else None
            seen["error"] = error if isinstance(error, str) else f"http_{reply.status}"
            raise
        finally:
            google._record(google.sts_exchanges, _exchange_record(seen))
        self.reply_json(
            200,
            {
                "access_token": token,
                "issued_token_type": ACCESS_TOKEN_TYPE,
                "token_type": "Bearer",
                "expires_in": lifetime,
            },
        )

    def _sts_form(self, body: bytes) -> dict[str, str]:
        """The request's fields: form-encoded (google-auth) or JSON (STS takes both, JSON in camelCase too)."""
        content_type = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type == "application/json":
            try:
                data = json.loads(body)
            except ValueError:
                data = None
            if not isinstance(data, dict):
                raise sts_error("invalid_request", "Invalid JSON payload received.")
            return {_snake(str(key)): str(value) for key, value in data.items()}
        fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        return {key: values[-1] for key, values in fields.items()}

    def _exchange(self, form: dict[str, str], seen: dict[str, Any]) -> _FederatedToken:
        """Check an RFC 8693 exchange of an AWS-signed GetCallerIdentity request; who it federates."""
        google = self.owner
        seen["audience"] = audience = form.get("audience")
        seen["scopes"] = tuple(form.get("scope", "").split())
        if form.get("grant_type") != TOKEN_EXCHANGE_GRANT:
            raise sts_error("unsupported_grant_type", f"Unsupported grant_type: {form.get('grant_type')!r}.")
        if form.get("requested_token_type") != ACCESS_TOKEN_TYPE:
            raise sts_error("invalid_request", 'Invalid value for "requested_token_type".')
        if not form.get("subject_token"):
            raise sts_error("invalid_request", 'Missing required parameter: "subject_token".')
        if form.get("subject_token_type") != AWS_SUBJECT_TOKEN_TYPE:
            raise sts_error("invalid_request", 'Invalid value for "subject_token_type".')
        if not seen["scopes"]:
            raise sts_error("invalid_scope", 'Missing required parameter: "scope".')
        provider = google._aws_provider(audience or "")
        if provider is None:
            raise sts_error(
                "invalid_target",
                'The target service indicated by the "audience" parameters is invalid. This might either be '
                "because the pool or provider is disabled or deleted or because it doesn't exist.",
            )
        key = self._verify_aws_request(form["subject_token"], provider, seen)
        return google._federate(provider, key.arn)

    def _verify_aws_request(self, subject_token: str, provider: AwsProvider, seen: dict[str, Any]) -> _AwsKey:
        """The key that signed the subject token's GetCallerIdentity request, its signature recomputed."""
        try:
            request = json.loads(unquote(subject_token))
            url, method = request["url"], request["method"]
            headers = {str(h["key"]).lower(): str(h["value"]) for h in request["headers"]}
        except (ValueError, KeyError, TypeError):
            raise _AWS_BAD_FORMAT from None
        target = _AWS_STS_URL.fullmatch(url) if isinstance(url, str) else None
        if target is None or method != "POST":
            raise _AWS_BAD_FORMAT
        # The header that binds the signed request to this provider: google-auth sends it unsigned (it adds it
        # after signing), so its value is all that can be checked, as STS does.
        resource = headers.get("x-goog-cloud-target-resource", "").removeprefix("https:")
        if resource != provider.audience:
            raise sts_error(
                "invalid_grant",
                "The audience in the x-goog-cloud-target-resource header of the AWS request does not match the "
                "audience of the token exchange.",
            )
        match = _AWS_AUTHORIZATION.fullmatch(headers.get("authorization", "").strip())
        if match is None:
            raise _AWS_BAD_FORMAT
        seen["access_key_id"], seen["region"] = match["key"], match["region"]
        region = target["region"]
        if (
            match["region"] != region
            or match["service"] != "sts"
            or headers.get("host") != f"sts.{region}.amazonaws.com"
        ):
            raise _aws_refusal(*_AWS_SIGNATURE_MISMATCH)
        amz_date = headers.get("x-amz-date", "")
        try:
            signed_at = datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=UTC)
        except ValueError:
            raise _AWS_BAD_FORMAT from None
        if match["date"] != amz_date[:8] or abs(datetime.now(UTC) - signed_at) > MAX_AWS_CLOCK_SKEW:
            raise _aws_refusal("SignatureDoesNotMatch", f"Signature expired: {amz_date} is outside the 5 minutes.")
        signed = match["signed"].split(";")
        if "host" not in signed or "x-amz-date" not in signed or any(name not in headers for name in signed):
            raise _aws_refusal(*_AWS_SIGNATURE_MISMATCH)
        key = self.owner._aws_key(match["key"])
        if key is None or key.session_token != headers.get("x-amz-security-token"):
            raise _aws_refusal(*_AWS_INVALID_TOKEN)
        seen["arn"] = key.arn
        signer = SigV4Auth(
            BotocoreCredentials(key.access_key_id, key.secret_access_key, key.session_token), "sts", region
        )
        # The request as AWS would see it: the headers it names as signed, this URL, an empty body.
        aws_request = AWSRequest(method=method, url=url, headers={name: headers[name] for name in signed}, data=b"")
        aws_request.context["timestamp"] = amz_date
        expected = signer.signature(
            signer.string_to_sign(aws_request, signer.canonical_request(aws_request)), aws_request
        )
        if not hmac.compare_digest(expected, match["signature"]):
            raise _aws_refusal(*_AWS_SIGNATURE_MISMATCH)
        if not provider_admits(provider, key.arn):
            raise sts_error("unauthorized_client", "The given credential is rejected by the attribute condition.")
        return key

    def _environment(self, name: str) -> None:
        if self.command != "GET":
            raise Reply(405, google_error(405, "METHOD_NOT_ALLOWED", "Only environments.get is faked."))
        self._caller((CLOUD_PLATFORM,))
        environment = self.owner.environments.get(name)
        if environment is None:
            raise Reply(404, google_error(404, "NOT_FOUND", f"Environment {name} does not exist."))
        self.reply_json(200, environment)

    def _refuse_outbound(self) -> None:
        self.owner._outbound(self.path)
        self.close_connection = True
        self.send(403, [("Content-Type", "text/plain")], b"FakeGoogle: tests never reach outside loopback\n")


class FakeGoogle(LoopbackServer):
    """The GCE metadata server, IAM Credentials (signJwt) and the Composer API (environments.get) on loopback.

    ``service_account`` is the function's identity; ``project`` the metadata server's project.
    Lifetimes are in seconds (google-auth refreshes any token within 3 min 45 s of expiry, so shorter
    lifetimes make it fetch a new one for every request).
    """

    handler = _GoogleHandler

    def __init__(
        self,
        *,
        port: int = 0,
        service_account: str = DEFAULT_SERVICE_ACCOUNT,
        project: str = "test-project",
        access_token_lifetime: int = 3600,
        id_token_lifetime: int = 3600,
        signable: Iterable[str] | None = None,
    ) -> None:
        super().__init__(port=port)
        self.service_account = service_account
        self.project = project
        self.access_token_lifetime = access_token_lifetime
        self.id_token_lifetime = id_token_lifetime
        #: Service accounts signJwt may sign for (the caller holds Token Creator on them); default: its own.
        self.signable: set[str] = {service_account} if signable is None else set(signable)
        self.unique_id = _unique_id(service_account)
        self.public_key_pem: bytes = (
            _private_key()
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        self.key_id = hashlib.sha1(self.public_key_pem).hexdigest()
        self._signer = crypt.RSASigner(_private_key(), key_id=self.key_id)
        #: Tokens minted: ``access_token``, ``id_token``, ``sign_jwt``.
        self.mints: Counter[str] = Counter()
        #: Requests per path (without the query), e.g. to see what google-auth asked for.
        self.paths: Counter[str] = Counter()
        #: Every request that tried to leave loopback through the proxy :meth:`isolate_env` set.
        self.outbound: list[str] = []
        #: Composer environments by resource name, as ``environments.get`` returns them.
        self.environments: dict[str, dict[str, Any]] = {}
        #: Calls per STS and IAM Credentials method, granted or not: ``sts.token``, ``generateAccessToken``,
        #: ``generateIdToken``, ``signJwt``.
        self.calls: Counter[str] = Counter()
        #: Every call of Google STS's token endpoint, in order.
        self.sts_exchanges: list[StsExchange] = []
        #: Every IAM Credentials call, in order.
        self.iam_calls: list[IamCall] = []
        self._tokens: dict[str, _AccessToken] = {}
        self._federated: dict[str, _FederatedToken] = {}
        self._aws_providers: dict[str, AwsProvider] = {}
        self._aws_keys: dict[str, _AwsKey] = {}
        #: Members (principals, principal sets, service accounts) per service account they may impersonate.
        self._impersonators: dict[str, set[str]] = {}
        #: Members granted Token Creator per service account (beyond :attr:`signable`'s any-caller grant).
        self._signers: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self._config_dir: str | None = None

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``, as GCE_METADATA_HOST wants it."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen, and make the empty gcloud config directory :meth:`isolate_env` points to."""
        super().start()
        self._config_dir = self._config_dir or tempfile.mkdtemp(prefix="fake-gcloud-")

    def stop(self) -> None:
        """Stop listening and remove the gcloud config directory. Idempotent."""
        super().stop()
        if self._config_dir:
            shutil.rmtree(self._config_dir, ignore_errors=True)
            self._config_dir = None

    def env(self) -> dict[str, str]:
        """The variables pointing google-auth (metadata server) and our code (STS, IAM, Composer) here.

        google-auth reads GCE_METADATA_HOST when ``google.auth.compute_engine._metadata`` is first
        imported (GCE_METADATA_IP at each ping), so set them before that, e.g. in a subprocess.
        """
        return {
            "GCE_METADATA_HOST": self.host,
            "GCE_METADATA_IP": self.host,
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS": f"{self.url}/",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPOSER": f"{self.url}/",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_STS": f"{self.url}/",
        }

    def isolate_env(self, env: MutableMapping[str, str]) -> None:
        """Make ``env`` (a copy of ``os.environ`` for a subprocess) see only this fake as Google.

        Removes :data:`SHADOWING_VARIABLES`, points CLOUDSDK_CONFIG at an empty directory (no gcloud
        ADC file, no certificate_config.json), and sends every proxied request to this fake, which
        refuses it and records it in :attr:`outbound`: a request that would have left loopback (such as
        google-auth's background Regional Access Boundary lookup at iamcredentials.googleapis.com,
        which has no override) fails locally instead of reaching Google. Loopback is not proxied.
        Call after :meth:`start`; apply :meth:`env` as well.
        """
        if self._config_dir is None:
            raise RuntimeError("FakeGoogle.isolate_env() needs a started fake")
        for name in SHADOWING_VARIABLES:
            env.pop(name, None)
        env["CLOUDSDK_CONFIG"] = self._config_dir
        for name in PROXY_VARIABLES:
            env[name] = self.url
        env["NO_PROXY"] = env["no_proxy"] = _NO_PROXY

    # -- tokens -------------------------------------------------------------------------

    def is_valid_access_token(self, token: str) -> bool:
        """Whether this fake minted ``token`` and it has not expired."""
        return self._access_token(token) is not None

    def access_token_email(self, token: str) -> str | None:
        """The service account a valid access token stands for; ``None`` if unknown or expired."""
        record = self._access_token(token)
        return record.email if record else None

    def allow_signing(self, email: str, *, by: str | None = None) -> None:
        """Grant Token Creator on ``email``: signJwt, generateAccessToken and generateIdToken for it.

        Without ``by``, to every service account caller (as this fake always has: :attr:`signable`); with it,
        to that member only: a service account email or a federated principal or principal set.
        """
        with self._lock:
            if by is None:
                self.signable.add(email)
            else:
                self._signers.setdefault(email, set()).add(by)

    def allow_impersonation(self, member: str, email: str) -> None:
        """Grant roles/iam.workloadIdentityUser on service account ``email`` to ``member``.

        ``member`` is a federated ``principal://...`` or ``principalSet://...`` (see :meth:`aws_principal`,
        :meth:`aws_role_principal_set`), or a service account's email; it may then call generateAccessToken
        and generateIdToken for ``email`` (not signJwt: that takes Token Creator, :meth:`allow_signing`).
        """
        with self._lock:
            self._impersonators.setdefault(email, set()).add(member)

    def add_aws_provider(
        self, audience: str, *, account: str | None = None, allowed_roles: Iterable[str] | None = None
    ) -> AwsProvider:
        """Register a workload identity pool's AWS provider; STS exchanges for ``audience`` are refused until then.

        ``audience`` is ``//iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/
        providers/PROVIDER``. ``account`` (the provider's AWS account id) and ``allowed_roles`` (role names or
        role ARNs, as an attribute condition on ``attribute.aws_role`` would) limit who is let in.
        """
        match = _WORKLOAD_PROVIDER.fullmatch(audience)
        if match is None:
            raise ValueError(f"not a workload identity pool provider's audience: {audience}")
        provider = AwsProvider(
            audience,
            match["number"],
            match["pool"],
            match["provider"],
            account,
            None if allowed_roles is None else frozenset(allowed_roles),
        )
        with self._lock:
            self._aws_providers[audience] = provider
        return provider

    def trust_aws_credentials(
        self,
        access_key_id: str,
        secret_access_key: str,
        session_token: str | None = None,
        arn: str = DEFAULT_AWS_ARN,
    ) -> None:
        """Let STS accept GetCallerIdentity requests signed with this key, as the identity ``arn``.

        Temporary credentials (``session_token``) must carry their token in ``x-amz-security-token``, and
        long-term ones none, as AWS checks.
        """
        if _AWS_ARN.fullmatch(arn) is None:
            raise ValueError(f"not an AWS user, role or assumed-role ARN: {arn}")
        with self._lock:
            self._aws_keys[access_key_id] = _AwsKey(access_key_id, secret_access_key, session_token, arn)

    @staticmethod
    def aws_principal(provider: AwsProvider, arn: str) -> str:
        """The federated principal STS makes of AWS identity ``arn`` (``google.subject = assertion.arn``)."""
        return f"principal://iam.googleapis.com/{provider.pool_name}/subject/{arn}"

    @staticmethod
    def aws_role_principal_set(provider: AwsProvider, arn: str) -> str:
        """The principal set of every session of ``arn``'s role (``attribute.aws_role``, the default mapping)."""
        return f"principalSet://iam.googleapis.com/{provider.pool_name}/attribute.aws_role/{aws_role(arn)}"

    @staticmethod
    def unique_id_of(email: str) -> str:
        """Service account ``email``'s unique id: the ``sub`` and ``azp`` of the ID tokens minted for it."""
        return _unique_id(email)

    def federated_principal(self, token: str) -> str | None:
        """The principal a valid federated token (from STS) stands for; ``None`` if unknown or expired."""
        record = self._federated_token(token)
        return record.principal if record else None

    def reset_counts(self) -> None:
        """Zero :attr:`mints`, :attr:`paths` and :attr:`calls`; empty :attr:`outbound`, :attr:`sts_exchanges`
        and :attr:`iam_calls`. Registrations (providers, keys, grants) stay."""
        with self._lock:
            self.mints.clear()
            self.paths.clear()
            self.outbound.clear()
            self.calls.clear()
            self.sts_exchanges.clear()
            self.iam_calls.clear()

    def add_environment(
        self, name: str, airflow_uri: str, image_version: str, *, state: str = "RUNNING", private: bool = False
    ) -> dict[str, Any]:
        """Register a Composer environment; return the resource ``environments.get`` will answer.

        ``name`` is ``projects/P/locations/L/environments/E``, or just ``E`` (in this fake's project,
        in us-central1). ``image_version`` reads like ``composer-3-airflow-2.10.5-build.3``,
        ``composer-2.9.7-airflow-2.9.3`` or ``composer-1.20.12-airflow-1.10.15``.
        """
        if "/" not in name:
            name = f"projects/{self.project}/locations/{DEFAULT_LOCATION}/environments/{name}"
        bucket = f"{DEFAULT_LOCATION}-{name.rsplit('/', 1)[-1]}-bucket"
        environment = {
            "name": name,
            "uuid": hashlib.md5(name.encode()).hexdigest(),
            "state": state,
            "createTime": "2026-01-05T09:00:00.000000Z",
            "updateTime": "2026-01-05T09:20:00.000000Z",
            "config": {
                "dagGcsPrefix": f"gs://{bucket}/dags",
                "airflowUri": airflow_uri,
                "softwareConfig": {"imageVersion": image_version},
                "privateEnvironmentConfig": {"enablePrivateEnvironment": private},
            },
            "storageConfig": {"bucket": bucket},
        }
        with self._lock:
            self.environments[name] = environment
        return environment

    def _access_token(self, token: str) -> _AccessToken | None:
        with self._lock:
            record = self._tokens.get(token)
        return record if record and record.expires_at > time.time() else None

    def _mint_access_token(self, scopes: tuple[str, ...]) -> dict[str, Any]:
        token, _ = self._new_access_token(self.service_account, scopes, self.access_token_lifetime, "access_token")
        return {"access_token": token, "expires_in": self.access_token_lifetime, "token_type": "Bearer"}

    def _new_access_token(self, email: str, scopes: tuple[str, ...], lifetime: int, kind: str) -> tuple[str, float]:
        token = "ya29.fake-" + secrets.token_urlsafe(32)
        expires_at = time.time() + lifetime
        with self._lock:
            self._tokens[token] = _AccessToken(email, scopes, expires_at)
        self._count(self.mints, kind)
        return token, expires_at

    def _mint_id_token(self, audience: str, *, full: bool, email: str | None = None, kind: str = "id_token") -> str:
        email = email or self.service_account
        unique_id = _unique_id(email)
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": audience,
            "azp": unique_id,
            "exp": now + self.id_token_lifetime,
            "iat": now,
            "iss": GOOGLE_ISSUER,
            "sub": unique_id,
        }
        if full:  # the metadata server adds the email only for format=full, generateIdToken for includeEmail
            claims |= {"email": email, "email_verified": True}
        return self._sign(claims, kind)

    def _mint_federated_token(self, federated: _FederatedToken, scopes: tuple[str, ...]) -> tuple[str, int]:
        token = "ya29.d.fake-" + secrets.token_urlsafe(32)
        lifetime = self.access_token_lifetime
        record = _FederatedToken(federated.principal, federated.principal_sets, scopes, time.time() + lifetime)
        with self._lock:
            self._federated[token] = record
        self._count(self.mints, "federated_token")
        return token, lifetime

    def _federated_token(self, token: str) -> _FederatedToken | None:
        with self._lock:
            record = self._federated.get(token)
        return record if record and record.expires_at > time.time() else None

    def _federate(self, provider: AwsProvider, arn: str) -> _FederatedToken:
        """The principal and principal sets of AWS identity ``arn`` in ``provider``'s pool (scopes, expiry later)."""
        base = f"principalSet://iam.googleapis.com/{provider.pool_name}"
        account = _AWS_ARN.fullmatch(arn)
        sets = {f"{base}/*", self.aws_role_principal_set(provider, arn)}
        if account:
            sets.add(f"{base}/attribute.aws_account/{account['account']}")
        return _FederatedToken(self.aws_principal(provider, arn), frozenset(sets), (), 0.0)

    def _aws_provider(self, audience: str) -> AwsProvider | None:
        with self._lock:
            return self._aws_providers.get(audience.removeprefix("https:"))

    def _aws_key(self, access_key_id: str) -> _AwsKey | None:
        with self._lock:
            return self._aws_keys.get(access_key_id)

    def _service_account_caller(self, email: str) -> _Caller:
        return _Caller(email, frozenset({email, f"serviceAccount:{email}"}), False)

    def _may_impersonate(self, caller: _Caller, email: str) -> bool:
        """generateAccessToken/generateIdToken: Workload Identity User, or Token Creator, on ``email``."""
        with self._lock:
            granted = self._impersonators.get(email, set()) | self._signers.get(email, set())
            any_service_account = email in self.signable
        return bool(caller.members & granted) or (any_service_account and not caller.federated)

    def _may_sign(self, caller: _Caller, email: str) -> bool:
        """signJwt: Token Creator on ``email``."""
        with self._lock:
            granted = self._signers.get(email, set())
            any_service_account = email in self.signable
        return bool(caller.members & granted) or (any_service_account and not caller.federated)

    def _sign(self, claims: dict[str, Any], kind: str) -> str:
        token = jwt.encode(self._signer, claims).decode()
        self._count(self.mints, kind)
        return token

    def _count(self, counter: Counter[str], key: str) -> None:
        with self._lock:
            counter[key] += 1

    def _record(self, records: list[Any], record: object) -> None:
        with self._lock:
            records.append(record)

    def _outbound(self, target: str) -> None:
        with self._lock:
            self.outbound.append(target)


def aws_role(arn: str) -> str:
    """The default mapping's ``attribute.aws_role``: an assumed role's session ARN without the session name."""
    match = _AWS_ARN.fullmatch(arn)
    if match and match["kind"] == "assumed-role":
        return f"arn:aws:sts::{match['account']}:assumed-role/{match['rest'].split('/', 1)[0]}"
    return arn


def provider_admits(provider: AwsProvider, arn: str) -> bool:
    """Whether ``provider``'s account and role limits (its attribute condition) let AWS identity ``arn`` in."""
    match = _AWS_ARN.fullmatch(arn)
    if match is None:
        return False
    if provider.account is not None and match["account"] != provider.account:
        return False
    if provider.allowed_roles is None:
        return True
    role = aws_role(arn)
    return role in provider.allowed_roles or role.rsplit("/", 1)[-1] in provider.allowed_roles


def _json_object(body: bytes) -> dict[str, Any]:
    """An IAM Credentials request body: a JSON object (an empty body is an empty one)."""
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise Reply(400, google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."))
    return data


def _lifetime(value: object) -> int:
    """generateAccessToken's ``lifetime`` (a Duration such as ``"3600s"``), in whole seconds."""
    match = _LIFETIME.fullmatch(value) if isinstance(value, str) else None
    seconds = int(match["seconds"]) if match else 0
    if not 0 < seconds <= MAX_GENERATED_TOKEN_LIFETIME:
        raise Reply(
            400,
            google_error(
                400,
                "INVALID_ARGUMENT",
                f"The lifetime must be between 1s and {MAX_GENERATED_TOKEN_LIFETIME}s (got {value!r}).",
            ),
        )
    return seconds


def _snake(name: str) -> str:
    """``subjectTokenType`` -> ``subject_token_type`` (STS's JSON form takes either)."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _exchange_record(seen: Mapping[str, Any]) -> StsExchange:
    return StsExchange(
        audience=seen.get("audience"),
        access_key_id=seen.get("access_key_id"),
        region=seen.get("region"),
        arn=seen.get("arn"),
        principal=seen.get("principal"),
        error=seen.get("error"),
        scopes=seen.get("scopes", ()),
        api_client=seen.get("api_client"),
    )
