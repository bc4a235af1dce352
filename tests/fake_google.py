"""FakeGoogle: the GCE metadata server, IAM Credentials and the Cloud Composer API on one loopback port.

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
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

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
DEFAULT_LOCATION = "us-central1"

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
_SIGN_JWT_PATH = re.compile(r"/v1/projects/-/serviceAccounts/(?P<email>[^/:]+):signJwt")
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


@dataclass(frozen=True)
class _AccessToken:
    email: str
    scopes: tuple[str, ...]
    expires_at: float


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
        elif match := _SIGN_JWT_PATH.fullmatch(path):
            self._sign_jwt(match["email"], body)
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

    def _sign_jwt(self, email: str, body: bytes) -> None:
        if self.command != "POST":
            raise Reply(405, google_error(405, "METHOD_NOT_ALLOWED", "signJwt takes POST."))
        caller = self._caller((CLOUD_PLATFORM, IAM_SCOPE))
        if email not in self.owner.signable:
            raise Reply(
                403,
                google_error(
                    403,
                    "PERMISSION_DENIED",
                    f"Permission 'iam.serviceAccounts.signJwt' denied on resource (or it may not exist): {caller} "
                    f"needs roles/iam.serviceAccountTokenCreator on projects/-/serviceAccounts/{email}.",
                ),
            )
        try:
            claims = json.loads(json.loads(body)["payload"])
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
        self.reply_json(200, {"keyId": self.owner.key_id, "signedJwt": self.owner._sign(claims, "sign_jwt")})

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
        self._tokens: dict[str, _AccessToken] = {}
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
        """The variables pointing google-auth (metadata server) and our code (IAM, Composer) here.

        google-auth reads GCE_METADATA_HOST when ``google.auth.compute_engine._metadata`` is first
        imported (GCE_METADATA_IP at each ping), so set them before that, e.g. in a subprocess.
        """
        return {
            "GCE_METADATA_HOST": self.host,
            "GCE_METADATA_IP": self.host,
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS": f"{self.url}/",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPOSER": f"{self.url}/",
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

    def allow_signing(self, email: str) -> None:
        """Let signJwt sign for ``email`` (as if the caller held Token Creator on it)."""
        with self._lock:
            self.signable.add(email)

    def reset_counts(self) -> None:
        """Zero :attr:`mints` and :attr:`paths`; empty :attr:`outbound`."""
        with self._lock:
            self.mints.clear()
            self.paths.clear()
            self.outbound.clear()

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
        token = "ya29.fake-" + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = _AccessToken(self.service_account, scopes, time.time() + self.access_token_lifetime)
        self._count(self.mints, "access_token")
        return {"access_token": token, "expires_in": self.access_token_lifetime, "token_type": "Bearer"}

    def _mint_id_token(self, audience: str, *, full: bool) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": audience,
            "azp": self.unique_id,
            "exp": now + self.id_token_lifetime,
            "iat": now,
            "iss": GOOGLE_ISSUER,
            "sub": self.unique_id,
        }
        if full:  # the metadata server adds the email only for format=full
            claims |= {"email": self.service_account, "email_verified": True}
        return self._sign(claims, "id_token")

    def _sign(self, claims: dict[str, Any], kind: str) -> str:
        token = jwt.encode(self._signer, claims).decode()
        self._count(self.mints, kind)
        return token

    def _count(self, counter: Counter[str], key: str) -> None:
        with self._lock:
            counter[key] += 1

    def _outbound(self, target: str) -> None:
        with self._lock:
            self.outbound.append(target)
