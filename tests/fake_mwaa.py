"""FakeMwaa: the Amazon MWAA API and an environment web server's CLI endpoint, on loopback, before real Airflows.

moto has no MWAA, so this plays the service as botocore 1.44 calls it (rest-json, model ``mwaa/2020-07-01``),
reached through the standard endpoint override (:meth:`FakeMwaa.env`):

* ``InvokeRestApi`` (``POST /restapi/{Name}``) checks the SigV4 signature (recomputed with botocore's own
  signer from the secret of the access key it names), the caller's permission and ``Path`` (at most 64
  characters), then calls the environment's real local Airflow as its admin: ``/api/v1`` + Path on Airflow 2,
  ``/api/v2`` + Path on Airflow 3, ``QueryParameters`` as the query string, ``Body`` as JSON. Airflow's 2xx
  is HTTP 200 ``{"RestApiStatusCode", "RestApiResponse"}``; its 4xx is ``RestApiClientException`` and its
  5xx ``RestApiServerException``, both HTTP 400 carrying the same two fields and no message (as AWS sends
  them: botocore puts the fields beside ``Error`` in ``e.response``).
* ``CreateCliToken`` (``POST /clitoken/{Name}``): a token that lives 60 s, with this fake as the web server.
* ``GetEnvironment`` (``GET /environments/{Name}``).
* The web server's ``POST /aws_mwaa/cli``: ``Authorization: Bearer <cli token>``, the command as text. A
  command on MWAA's documented allowlist runs through the environment's real ``airflow`` CLI; the answer is
  200 ``{"stdout", "stderr"}`` (base64) whatever its exit code. A bad or expired token is a 403; a command
  off the allowlist a 500 (what users report MWAA answering).

Errors travel as AWS rest-json errors do: the code in ``x-amzn-ErrorType``, the rest in a JSON body. The
modeled ones raise ``client.exceptions.X`` (ValidationException 400, AccessDeniedException 403,
ResourceNotFoundException 404, InternalServerException 500, the two RestApi exceptions 400); signature
failures (InvalidSignatureException, UnrecognizedClientException, MissingAuthenticationTokenException,
IncompleteSignatureException, all 403) are not in MWAA's model and reach a caller as a plain ``ClientError``.

Credentials: keys registered with :meth:`FakeMwaa.add_credentials`, and those moto's STS issued
(:meth:`FakeMwaa.trust_moto`, read from moto's ``/moto-api/data.json``). With ``require_known_keys=False`` an
unknown key is let in with its signature's form checked but not its value (there is no secret to check it
with). Every accepted call's key id is kept in :attr:`FakeMwaa.signed_with`.

Not played: IAM policies (one grant list per environment, :meth:`FakeMwaa.allow`), the Airflow role a grant
names (every forwarded call runs as Airflow's admin), the 6 MB response cap, private web servers.
"""

from __future__ import annotations

import base64
import hmac
import http.client
import json
import re
import secrets
import shlex
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from scripts.local_airflow import LocalAirflow
from tests.loopback import Handler, LoopbackServer, Reply

SERVICE = "airflow"
#: The ``Path`` limit of InvokeRestApi (the model's ``RestApiPath`` max, which botocore does not check).
MAX_PATH = 64
#: InvokeRestApi gives up on Airflow after this long (MWAA's documented timeout).
REST_API_TIMEOUT = 10.0
#: CreateCliToken's tokens are valid this long (MWAA's documentation says 60 seconds).
CLI_TOKEN_LIFETIME = 60.0
#: How far a SigV4 timestamp may be from now (AWS allows 5 minutes of clock skew).
MAX_CLOCK_SKEW = timedelta(minutes=5)
#: The Airflow role a grant names unless told otherwise, and the one a denial names.
DEFAULT_AIRFLOW_ROLE = "Admin"
DEFAULT_AIRFLOW_VERSIONS = {"2": "2.10.3", "3": "3.0.6"}
REST_API_METHODS = ("GET", "PUT", "POST", "PATCH", "DELETE")

#: The CLI commands MWAA's web server runs, per Airflow major (MWAA's "Apache Airflow CLI command reference").
_COMMON_CLI = frozenset(
    {
        "cheat-sheet",
        "connections add",
        "connections delete",
        "dags delete",
        "dags list",
        "dags list-jobs",
        "dags list-import-errors",
        "dags list-runs",
        "dags next-execution",
        "dags pause",
        "dags report",
        "dags reserialize",
        "dags show",
        "dags state",
        "dags test",
        "dags trigger",
        "dags unpause",
        "db clean",
        "providers behaviours",
        "providers get",
        "providers hooks",
        "providers links",
        "providers list",
        "providers notifications",
        "providers secrets",
        "providers triggerer",
        "providers widgets",
        "roles add-perms",
        "roles del-perms",
        "roles create",
        "roles list",
        "tasks clear",
        "tasks failed-deps",
        "tasks list",
        "tasks render",
        "tasks state",
        "tasks states-for-dag-run",
        "tasks test",
        "variables delete",
        "variables get",
        "variables set",
        "variables list",
        "version",
    }
)
SUPPORTED_CLI_COMMANDS = {
    "2": _COMMON_CLI | {"dags backfill", "tasks run"},
    "3": _COMMON_CLI | {"assets details", "assets list", "assets materialize", "backfill create"},
}
_ONE_WORD_COMMANDS = frozenset({"cheat-sheet", "version"})

_OPERATIONS = (
    ("InvokeRestApi", "POST", re.compile(r"/restapi/(?P<name>[^/]+)")),
    ("CreateCliToken", "POST", re.compile(r"/clitoken/(?P<name>[^/]+)")),
    ("GetEnvironment", "GET", re.compile(r"/environments/(?P<name>[^/]+)")),
)
_CLI_PATH = "/aws_mwaa/cli"
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/(?P<service>[^/,\s]+)"
    r"/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*Signature=(?P<signature>[0-9a-f]{64})"
)
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def aws_error(status: int, code: str, **body: Any) -> Reply:
    """An AWS rest-json error: ``code`` in ``x-amzn-ErrorType``, ``body`` (e.g. ``message=...``) as JSON."""
    return Reply(status, body, {"x-amzn-ErrorType": code, "x-amzn-RequestId": str(uuid.uuid4())})


def _invalid_signature(message: str) -> Reply:
    return aws_error(403, "InvalidSignatureException", message=message)


def _unrecognized_client() -> Reply:
    return aws_error(
        403, "UnrecognizedClientException", message="The security token included in the request is invalid."
    )


def _validation(value: object, member: str, constraint: str) -> Reply:
    # The wording of AWS's generated input validation.
    message = f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
    return aws_error(400, "ValidationException", message=message)


@dataclass(frozen=True)
class _Credentials:
    access_key: str
    secret_key: str | None  # None: an unknown key let in unverified (require_known_keys=False)
    session_token: str | None
    arn: str


@dataclass(frozen=True)
class _Environment:
    name: str
    airflow: LocalAirflow
    airflow_version: str
    upstream: str
    created_at: float

    @property
    def major(self) -> str:
        return self.airflow_version.split(".", 1)[0]


@dataclass(frozen=True)
class _CliToken:
    environment: str
    expires_at: float


class _MwaaHandler(Handler):
    owner: FakeMwaa

    def respond(self, body: bytes) -> None:
        path = urlsplit(self.path).path
        if path == _CLI_PATH:
            self._cli(body)
            return
        operation, name = _route(self.command, path)
        mwaa = self.owner
        mwaa._record(mwaa.calls, operation)
        caller = mwaa._authenticate(self, body)
        environment = mwaa._environment(name)
        if operation == "InvokeRestApi":
            self._invoke_rest_api(caller, environment, body)
        elif operation == "CreateCliToken":
            self._answer({"CliToken": mwaa._mint_cli_token(environment.name), "WebServerHostname": mwaa.host})
        else:
            self._answer({"Environment": mwaa.describe(environment.name)})

    def _answer(self, body: Any) -> None:
        self.reply_json(200, body, {"x-amzn-RequestId": str(uuid.uuid4())})

    def _invoke_rest_api(self, caller: _Credentials, environment: _Environment, body: bytes) -> None:
        mwaa = self.owner
        mwaa._authorize(caller, environment)
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            raise aws_error(400, "SerializationException") from None
        path, method = request.get("Path"), request.get("Method")
        if not isinstance(path, str) or not path:
            raise _validation(path, "path", "Member must not be null")
        if len(path) > MAX_PATH:
            raise _validation(path, "path", f"Member must have length less than or equal to {MAX_PATH}")
        if method not in REST_API_METHODS:
            raise _validation(method, "method", f"Member must satisfy enum value set: [{', '.join(REST_API_METHODS)}]")
        query = request.get("QueryParameters")
        if query is not None and not isinstance(query, dict):
            raise _validation(query, "queryParameters", "Member must be a JSON object")
        target = environment.airflow.api_prefix + ("" if path.startswith("/") else "/") + path
        if query:
            target += "?" + _query_string(query)
        status, answer = mwaa._call_airflow(environment, method, target, request.get("Body"))
        fields = {"RestApiStatusCode": status, "RestApiResponse": answer}
        if status >= 500:
            raise aws_error(400, "RestApiServerException", **fields)
        if status >= 400:
            raise aws_error(400, "RestApiClientException", **fields)
        self._answer(fields)

    def _cli(self, body: bytes) -> None:
        mwaa = self.owner
        mwaa._record(mwaa.calls, "cli")
        if self.command != "POST":
            raise Reply(405, "Method Not Allowed\n")
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        environment = mwaa._cli_token_environment(token.strip()) if scheme.lower() == "bearer" else None
        if environment is None:
            raise Reply(403, "Forbidden: the CLI token is missing, unknown or expired\n")
        text = body.decode("utf-8", errors="replace")
        try:
            args = shlex.split(text)
        except ValueError:
            args = []
        command = args[0] if args and args[0] in _ONE_WORD_COMMANDS else " ".join(args[:2])
        if command not in SUPPORTED_CLI_COMMANDS[environment.major]:
            raise Reply(500, f"Internal Server Error: {command or text!r} is not a supported Airflow CLI command\n")
        mwaa._record_list(mwaa.cli_commands, text)
        try:
            result = environment.airflow.run_cli(args, timeout=mwaa.cli_timeout)
        except subprocess.TimeoutExpired:
            raise Reply(504, "Gateway Timeout\n") from None
        self.reply_json(
            200,
            {"stdout": base64.b64encode(result.stdout).decode(), "stderr": base64.b64encode(result.stderr).decode()},
        )


def _route(method: str, path: str) -> tuple[str, str]:
    """The operation a request calls and the environment name in its URI, or UnknownOperationException."""
    for operation, operation_method, pattern in _OPERATIONS:
        match = pattern.fullmatch(path)
        if match and method == operation_method:
            return operation, unquote(match["name"])
    raise aws_error(404, "UnknownOperationException")


def _query_string(query: Mapping[str, Any]) -> str:
    """``QueryParameters`` as a query string: lists repeat their key, booleans are JSON's ``true``/``false``."""
    pairs = []
    for key, value in query.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((key, item if isinstance(item, str) else json.dumps(item)))
    return urlencode(pairs)


class FakeMwaa(LoopbackServer):
    """The MWAA API (InvokeRestApi, CreateCliToken, GetEnvironment) and the web server's CLI, on loopback.

    ``require_known_keys=False`` also lets in an unknown access key, once its signature is well formed and
    scoped to this region and ``airflow``: without the secret, the signature's value cannot be checked.
    """

    handler = _MwaaHandler

    def __init__(
        self,
        *,
        region: str = "us-east-1",
        account: str = "123456789012",
        require_known_keys: bool = True,
        port: int = 0,
    ) -> None:
        super().__init__(port=port)
        self.region = region
        self.account = account
        self.require_known_keys = require_known_keys
        #: Seconds InvokeRestApi waits for Airflow; MWAA's is 10.
        self.rest_api_timeout = REST_API_TIMEOUT
        #: Lifetime of the tokens CreateCliToken mints, read when one is minted.
        self.cli_token_lifetime = CLI_TOKEN_LIFETIME
        #: Seconds a CLI command may run.
        self.cli_timeout = 120.0
        #: Requests per operation: ``InvokeRestApi``, ``CreateCliToken``, ``GetEnvironment``, ``cli``.
        self.calls: Counter[str] = Counter()
        #: What InvokeRestApi asked of Airflow, in order: method, path with its /api prefix and query.
        self.paths: list[str] = []
        #: The access key id of every request whose signature was accepted, in order.
        self.signed_with: list[str] = []
        #: The text of every CLI command that was run.
        self.cli_commands: list[str] = []
        self._environments: dict[str, _Environment] = {}
        self._credentials: dict[str, _Credentials] = {}
        self._grants: dict[str, dict[str, str]] = {}
        self._cli_tokens: dict[str, _CliToken] = {}
        self._moto_urls: list[str] = []
        self._lock = threading.Lock()

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``: the web server host name CreateCliToken and GetEnvironment report."""
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The variables that send ``boto3.client("mwaa")`` here.

        botocore puts ``env.``/``api.`` before the host of every MWAA call, an overridden endpoint's too;
        ``AWS_DISABLE_HOST_PREFIX_INJECTION`` (botocore 1.37.5 and later) stops that.
        """
        return {"AWS_ENDPOINT_URL_MWAA": self.url, "AWS_DISABLE_HOST_PREFIX_INJECTION": "true"}

    # -- configuration ------------------------------------------------------------------

    def add_environment(
        self, name: str, airflow: LocalAirflow, *, airflow_version: str | None = None, upstream: str | None = None
    ) -> dict[str, Any]:
        """Serve ``airflow`` as environment ``name``; return what GetEnvironment will answer for it.

        ``airflow_version`` defaults to an MWAA version of the Airflow's major (2.10.3, 3.0.6). ``upstream``
        (default: the Airflow's own URL) is where InvokeRestApi sends its calls, e.g. a fault proxy in front.
        """
        version = airflow_version or DEFAULT_AIRFLOW_VERSIONS[airflow.major]
        environment = _Environment(name, airflow, version, upstream or airflow.url, time.time())
        with self._lock:
            self._environments[name] = environment
        return self.describe(name)

    def add_credentials(
        self, access_key: str, secret_key: str, session_token: str | None = None, *, arn: str | None = None
    ) -> None:
        """Accept requests signed with this key; ``arn`` is the identity (default: an IAM user of the key's name)."""
        arn = arn or f"arn:aws:iam::{self.account}:user/{access_key}"
        with self._lock:
            self._credentials[access_key] = _Credentials(access_key, secret_key, session_token, arn)

    def trust_moto(self, moto_url: str) -> None:
        """Also accept the credentials moto's STS (a moto server on loopback) has issued, or will issue.

        An unknown key is looked up in moto's ``/moto-api/data.json`` when it arrives, so a role assumed
        after this call is known too; its ARN is the assumed role's (``arn:aws:sts::ACCOUNT:assumed-role/R/S``).
        """
        if urlsplit(moto_url).hostname not in _LOOPBACK_HOSTS:
            raise ValueError(f"moto must run on loopback, not {moto_url}")
        with self._lock:
            self._moto_urls.append(moto_url.rstrip("/"))

    def allow(self, principal: str, environment: str, airflow_role: str = DEFAULT_AIRFLOW_ROLE) -> None:
        """Grant ``airflow:InvokeRestApi`` on ``environment`` to ``principal`` (an ARN or an access key id).

        Until an environment has a grant, every caller may invoke it; from its first grant on, only those
        granted may.
        """
        with self._lock:
            self._grants.setdefault(environment, {})[principal] = airflow_role

    def describe(self, name: str) -> dict[str, Any]:
        """The environment as GetEnvironment answers it (the ``Environment`` member)."""
        environment = self._environment(name)
        prefix = f"arn:aws:airflow:{self.region}:{self.account}"
        bucket = f"airflow-{name.lower()}-bucket"
        return {
            "Name": name,
            "Arn": f"{prefix}:environment/{name}",
            "Status": "AVAILABLE",
            "CreatedAt": environment.created_at,
            "WebserverUrl": self.host,
            "ExecutionRoleArn": f"arn:aws:iam::{self.account}:role/service-role/AmazonMWAA-{name}-execution",
            "ServiceRoleArn": f"arn:aws:iam::{self.account}:role/aws-service-role/airflow.amazonaws.com/"
            "AWSServiceRoleForAmazonMWAA",
            "AirflowVersion": environment.airflow_version,
            "SourceBucketArn": f"arn:aws:s3:::{bucket}",
            "DagS3Path": "dags",
            "EnvironmentClass": "mw1.small",
            "MaxWorkers": 10,
            "MinWorkers": 1,
            "Schedulers": 2,
            "MaxWebservers": 2,
            "MinWebservers": 2,
            "WebserverAccessMode": "PUBLIC_ONLY",
            "EndpointManagement": "SERVICE",
            "WeeklyMaintenanceWindowStart": "SUN:03:30",
            "AirflowConfigurationOptions": {},
            "NetworkConfiguration": {
                "SubnetIds": ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"],
                "SecurityGroupIds": ["sg-0aaaaaaaaaaaaaaa1"],
            },
            "LastUpdate": {"Status": "SUCCESS", "CreatedAt": environment.created_at, "Source": "SERVICE"},
        }

    def reset_counts(self) -> None:
        """Empty :attr:`calls`, :attr:`paths`, :attr:`signed_with` and :attr:`cli_commands`."""
        with self._lock:
            self.calls.clear()
            self.paths.clear()
            self.signed_with.clear()
            self.cli_commands.clear()

    # -- the service ---------------------------------------------------------------------

    def _environment(self, name: str) -> _Environment:
        with self._lock:
            environment = self._environments.get(name)
        if environment is None:
            raise aws_error(404, "ResourceNotFoundException", message=f"Environment {name} not found.")
        return environment

    def _authenticate(self, request: Handler, body: bytes) -> _Credentials:
        """Who signed ``request``, its SigV4 signature recomputed with botocore's signer; or an AWS error."""
        header = request.headers.get("Authorization")
        if not header:
            raise aws_error(403, "MissingAuthenticationTokenException", message="Missing Authentication Token")
        match = _AUTHORIZATION.fullmatch(header.strip())
        if not match:
            raise aws_error(
                403,
                "IncompleteSignatureException",
                message="Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.",
            )
        if match["region"] != self.region:
            raise _invalid_signature("Credential should be scoped to a valid region. ")
        if match["service"] != SERVICE:
            raise _invalid_signature(f"Credential should be scoped to correct service: '{SERVICE}'. ")
        amz_date = request.headers.get("X-Amz-Date", "")
        try:
            signed_at = datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=UTC)
        except ValueError:
            raise aws_error(403, "IncompleteSignatureException", message="Missing or malformed X-Amz-Date.") from None
        if match["date"] != amz_date[:8]:
            raise _invalid_signature(f"Date in Credential scope does not match YYYYMMDD from ISO-8601 date {amz_date}.")
        now = datetime.now(UTC)
        if abs(now - signed_at) > MAX_CLOCK_SKEW:
            raise _invalid_signature(
                f"Signature expired: {amz_date} is now earlier than {(now - MAX_CLOCK_SKEW).strftime(_AMZ_DATE)}"
            )
        signed = match["signed"].split(";")
        if "host" not in signed or "x-amz-date" not in signed or any(name not in request.headers for name in signed):
            raise _invalid_signature(_SIGNATURE_MISMATCH)
        credentials = self._credentials_for(match["key"])
        if credentials.secret_key is not None:
            if credentials.session_token != request.headers.get("X-Amz-Security-Token"):
                raise _unrecognized_client()
            signer = SigV4Auth(
                Credentials(credentials.access_key, credentials.secret_key, credentials.session_token),
                SERVICE,
                self.region,
            )
            # The request as the client signed it: the headers it named, this URL, these bytes.
            aws_request = AWSRequest(
                method=request.command,
                url=f"http://{request.headers['Host']}{request.path}",
                headers={name: request.headers[name] for name in signed},
                data=body,
            )
            aws_request.context["timestamp"] = amz_date
            canonical = signer.canonical_request(aws_request)
            expected = signer.signature(signer.string_to_sign(aws_request, canonical), aws_request)
            if not hmac.compare_digest(expected, match["signature"]):
                raise _invalid_signature(_SIGNATURE_MISMATCH)
        self._record_list(self.signed_with, credentials.access_key)
        return credentials

    def _credentials_for(self, access_key: str) -> _Credentials:
        with self._lock:
            known = self._credentials.get(access_key)
            moto_urls = list(self._moto_urls)
        if known is None and moto_urls:
            for url in moto_urls:
                self._load_moto_credentials(url)
            with self._lock:
                known = self._credentials.get(access_key)
        if known is not None:
            return known
        if self.require_known_keys:
            raise _unrecognized_client()
        # Without a secret neither the signature nor a session token can be checked.
        return _Credentials(access_key, None, None, f"arn:aws:iam::{self.account}:user/{access_key}")

    def _load_moto_credentials(self, moto_url: str) -> None:
        parts = urlsplit(moto_url)
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=10)
        try:
            connection.request("GET", "/moto-api/data.json")
            data = json.loads(connection.getresponse().read())
        except (OSError, http.client.HTTPException, ValueError) as exc:
            # The test set this up wrong (moto stopped too early?): say so rather than drop the connection.
            raise aws_error(
                500, "InternalServerException", message=f"FakeMwaa could not read moto's credentials: {exc!r}"
            ) from None
        finally:
            connection.close()
        for role in data.get("sts", {}).get("AssumedRole", []):
            self.add_credentials(
                role["access_key_id"], role["secret_access_key"], role["session_token"], arn=role["arn"]
            )

    def _authorize(self, caller: _Credentials, environment: _Environment) -> None:
        """Raise AccessDeniedException unless ``caller`` may invoke ``environment``."""
        with self._lock:
            grants = self._grants.get(environment.name)
        if grants is not None and caller.arn not in grants and caller.access_key not in grants:
            resource = f"arn:aws:airflow:{self.region}:{self.account}:role/{environment.name}/{DEFAULT_AIRFLOW_ROLE}"
            message = (
                f"User: {caller.arn} is not authorized to perform: airflow:InvokeRestApi on resource: {resource} "
                "because no identity-based policy allows the airflow:InvokeRestApi action"
            )
            raise aws_error(403, "AccessDeniedException", Message=message)

    def _call_airflow(self, environment: _Environment, method: str, target: str, body: Any) -> tuple[int, Any]:
        """Airflow's status and parsed JSON answer (``{}`` for none, the text if not JSON)."""
        self._record_list(self.paths, f"{method} {target}")
        headers = {"Accept": "application/json", **environment.airflow.auth_headers()}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        parts = urlsplit(environment.upstream)
        connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port or 80, timeout=self.rest_api_timeout
        )
        try:
            connection.request(method, target, body=payload, headers=headers)
            response = connection.getresponse()
            status, raw = response.status, response.read()
        except (OSError, http.client.HTTPException) as exc:
            # What MWAA answers when its web server does not is undocumented; a 500 is the closest fit.
            raise aws_error(
                500, "InternalServerException", message=f"The Airflow web server did not answer: {exc!r}"
            ) from None
        finally:
            connection.close()
        text = raw.decode("utf-8", errors="replace")
        try:
            return status, json.loads(text) if text else {}
        except ValueError:
            return status, text

    def _mint_cli_token(self, environment: str) -> str:
        token = secrets.token_urlsafe(48)
        with self._lock:
            self._cli_tokens[token] = _CliToken(environment, time.monotonic() + self.cli_token_lifetime)
        return token

    def _cli_token_environment(self, token: str) -> _Environment | None:
        with self._lock:
            record = self._cli_tokens.get(token)
        if record is None or record.expires_at <= time.monotonic():
            return None
        return self._environment(record.environment)

    def _record(self, counter: Counter[str], key: str) -> None:
        with self._lock:
            counter[key] += 1

    def _record_list(self, values: list[str], value: str) -> None:
        with self._lock:
            values.append(value)
