"""Configuration: a TOML or JSON file, or for a one-DAG setup environment variables alone.

Both sources produce the same raw dict and pass through the same validation, so a mistake in
either is reported the same way: one :class:`~shared.errors.ConfigError` naming the file (or
``environment``) and the key. Secrets never live here: the password is read from the environment
variable that ``password_env`` names, when credentials are built.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from shared import events as ev
from shared.errors import ConfigError

CONFIG_ENV = "DAG_TRIGGER_CONFIG"
API_VERSIONS = ("auto", "v1", "v2", "experimental")
#: ``auto`` is ``none``, or with ``composer_environment`` what the environment's image version calls for.
AUTH_MODES = ("auto", "none", "basic", "jwt", "token_file", "composer", "iap", "iap_jwt")
#: Modes whose credentials come from google-auth (the runtime service account), never from a password.
GOOGLE_AUTH_MODES = ("composer", "iap", "iap_jwt")
PAUSED_POLICIES = ("warn", "fail", "unpause")
EVENT_TYPES = (ev.CREATED, ev.DELETED, ev.ARCHIVED, ev.RESTORED, ev.METADATA_UPDATED, ev.OTHER)
SOURCES = ("gcs", "s3", "pubsub", "sns", "sqs", "http")
MWAA_TRANSPORTS = ("invoke_rest_api", "cli_token")
ROLE_ARN_PATTERN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")
COMPOSER_ENVIRONMENT_PATTERN = re.compile(r"projects/[^/]+/locations/[^/]+/environments/[^/]+")
WORKLOAD_IDENTITY_PROVIDER_PATTERN = re.compile(
    r"projects/\d+/locations/global/workloadIdentityPools/[a-z0-9-]+/providers/[a-z0-9-]+"
)
_REQUIRED = object()


@dataclass(frozen=True)
class AirflowSettings:
    """How to reach Airflow and how patient to be with it."""

    url: str
    api_version: str = "auto"
    auth: str = "none"
    username: str | None = None
    password_env: str = "AIRFLOW_PASSWORD"  # noqa: S105 - the name of a variable, not a password
    token_file: str | None = None
    #: ``projects/P/locations/L/environments/E``: read the URL (and with auth = "auto", the auth mode) from it.
    composer_environment: str | None = None
    #: The IAP OAuth client id (an ID token's audience); discovered from IAP's login redirect when unset.
    iap_client_id: str | None = None
    #: A self-signed JWT's ``aud``; defaults to ``<scheme>://<host>/*``.
    iap_jwt_audience: str | None = None
    #: The Google service account the function acts as: the one that signs IAP JWTs (default: the runtime
    #: service account), or with workload identity federation the one impersonated.
    service_account: str | None = None
    #: AWS -> Google: a Workload Identity Federation credential configuration file (what ``gcloud iam
    #: workload-identity-pools create-cred-config --aws`` writes); its AWS credentials come from botocore.
    google_credential_config: str | None = None
    #: AWS -> Google without a file: ``projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/P``.
    workload_identity_provider: str | None = None
    #: A Secrets Manager secret (name or ARN) holding the password, read through Powertools Parameters.
    password_secret: str | None = None
    #: An Amazon MWAA environment's name: calls go through the MWAA API instead of HTTP to ``url``.
    mwaa_environment: str | None = None
    #: How calls reach MWAA: ``invoke_rest_api`` (MWAA's InvokeRestApi), or ``cli_token`` (Airflow CLI commands
    #: on the web server, with a CreateCliToken token: for a dag_id too long for InvokeRestApi's 64-character path).
    mwaa_transport: str = "invoke_rest_api"
    #: The AWS region of the MWAA environment (and of STS); default: the SDK's (``AWS_REGION``).
    aws_region: str | None = None
    #: A role to assume before calling MWAA (another account's), with its external id and session name.
    assume_role_arn: str | None = None
    assume_role_external_id: str | None = None
    assume_role_session_name: str = "dag-trigger"
    assume_role_duration: int = 3600
    #: Google -> AWS: a role to assume with the function's Google-signed ID token (AssumeRoleWithWebIdentity).
    web_identity_role_arn: str | None = None
    #: The audience of that ID token; the role's trust policy checks it as ``accounts.google.com:oaud``.
    web_identity_audience: str = "sts.amazonaws.com"
    #: Calls per second to one MWAA environment, from this process (a token bucket).
    rate_limit: float = 10.0
    connect_timeout: float = 5.0
    # Airflow on SQLite can hold a write for 5 s while tasks run; leave room for that.
    read_timeout: float = 30.0
    deadline: float = 60.0
    paused: str = "warn"
    max_conf_bytes: int = 64 * 1024
    verify_tls: bool = True
    allow_insecure_http: bool = False


@dataclass(frozen=True)
class Route:
    """Which events trigger which DAG; every filter that is set must match."""

    dag_id: str
    name: str = ""
    sources: tuple[str, ...] = ()
    bucket: str | None = None
    prefix: str | None = None
    suffix: str | None = None
    glob: str | None = None
    exclude: tuple[str, ...] = ()
    event_types: tuple[str, ...] = (ev.CREATED,)
    min_size: int | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    conf: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_object_route(self) -> bool:
        """True when the route filters on object fields, so it can never match a message."""
        return any(v is not None for v in (self.bucket, self.prefix, self.suffix, self.glob, self.min_size)) or bool(
            self.exclude
        )


@dataclass(frozen=True)
class Config:
    """The whole configuration, and where it came from (for messages)."""

    airflow: AirflowSettings
    routes: tuple[Route, ...]
    origin: str


# Each key: (accepted JSON types, default or _REQUIRED).
_AIRFLOW_SCHEMA: dict[str, tuple[tuple[type, ...], Any]] = {
    "url": ((str,), None),
    "api_version": ((str,), "auto"),
    "auth": ((str,), "auto"),
    "username": ((str,), None),
    "password_env": ((str,), "AIRFLOW_PASSWORD"),
    "token_file": ((str,), None),
    "composer_environment": ((str,), None),
    "iap_client_id": ((str,), None),
    "iap_jwt_audience": ((str,), None),
    "service_account": ((str,), None),
    "google_credential_config": ((str,), None),
    "workload_identity_provider": ((str,), None),
    "password_secret": ((str,), None),
    "mwaa_environment": ((str,), None),
    "mwaa_transport": ((str,), "invoke_rest_api"),
    "aws_region": ((str,), None),
    "assume_role_arn": ((str,), None),
    "assume_role_external_id": ((str,), None),
    "assume_role_session_name": ((str,), "dag-trigger"),
    "assume_role_duration": ((int,), 3600),
    "web_identity_role_arn": ((str,), None),
    "web_identity_audience": ((str,), "sts.amazonaws.com"),
    "rate_limit": ((int, float), 10.0),
    "connect_timeout": ((int, float), 5.0),
    "read_timeout": ((int, float), 30.0),
    "deadline": ((int, float), 60.0),
    "paused": ((str,), "warn"),
    "max_conf_bytes": ((int,), 64 * 1024),
    "verify_tls": ((bool,), True),
    "allow_insecure_http": ((bool,), False),
}
_ROUTE_SCHEMA: dict[str, tuple[tuple[type, ...], Any]] = {
    "dag_id": ((str,), _REQUIRED),
    "name": ((str,), ""),
    "sources": ((list,), []),
    "bucket": ((str,), None),
    "prefix": ((str,), None),
    "suffix": ((str,), None),
    "glob": ((str,), None),
    "exclude": ((list,), []),
    "event_types": ((list,), [ev.CREATED]),
    "min_size": ((int,), None),
    "attributes": ((dict,), {}),
    "conf": ((dict,), {}),
}


def _table(raw: Any, schema: dict[str, tuple[tuple[type, ...], Any]], where: str, origin: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{origin}: {where} must be a table")
    unknown = sorted(set(raw) - set(schema))
    if unknown:
        raise ConfigError(f"{origin}: {where}.{unknown[0]} is not a known key (known: {', '.join(schema)})")
    values: dict[str, Any] = {}
    for key, (types, default) in schema.items():
        if key not in raw:
            if default is _REQUIRED:
                raise ConfigError(f"{origin}: {where}.{key} is required")
            values[key] = default
            continue
        value = raw[key]
        # TOML and JSON booleans are ints to Python; never accept one where a number is meant.
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            names = " or ".join(t.__name__ for t in types)
            raise ConfigError(f"{origin}: {where}.{key} must be {names}, got {type(value).__name__}")
        values[key] = value
    return values


def _choice(value: str, choices: tuple[str, ...], where: str, origin: str) -> str:
    if value not in choices:
        raise ConfigError(f"{origin}: {where} must be one of {', '.join(choices)} (got {value!r})")
    return value


def _strings(values: list[Any], where: str, origin: str, choices: tuple[str, ...] | None = None) -> tuple[str, ...]:
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise ConfigError(f"{origin}: {where}[{i}] must be str, got {type(value).__name__}")
        if choices is not None:
            _choice(value, choices, f"{where}[{i}]", origin)
    return tuple(values)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (where plain http carries nothing across a network)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _airflow_url(raw: str, allow_insecure_http: bool, origin: str) -> str:
    url = raw.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{origin}: [airflow].url must be an http(s) URL with a host, "
            f"e.g. https://airflow.example.com (got {url!r})"
        )
    if parts.username or parts.password or parts.query:
        raise ConfigError(f"{origin}: [airflow].url must not carry credentials or a query string; use auth settings")
    if parts.scheme == "http" and not is_loopback(parts.hostname) and not allow_insecure_http:
        raise ConfigError(
            f"{origin}: [airflow].url uses plain http to a non-loopback host; credentials would cross the network "
            "unencrypted. Use https, or set allow_insecure_http = true if you accept that."
        )
    return url


def _airflow(raw: Any, origin: str) -> AirflowSettings:
    values = _table(raw, _AIRFLOW_SCHEMA, "[airflow]", origin)
    environment = values["composer_environment"]
    if environment is not None and not COMPOSER_ENVIRONMENT_PATTERN.fullmatch(environment):
        raise ConfigError(
            f"{origin}: [airflow].composer_environment must be projects/PROJECT/locations/REGION/environments/NAME "
            f"(got {environment!r})"
        )
    if values["url"] is None:
        if values["mwaa_environment"] is not None:
            values["url"] = ""
        elif environment is None:
            raise ConfigError(
                f"{origin}: [airflow].url is required (or composer_environment, to read it from Composer, or "
                "mwaa_environment)"
            )
        # Read from the environment when the dispatcher is built (shared.composer).
        values["url"] = ""
    else:
        values["url"] = _airflow_url(values["url"], values["allow_insecure_http"], origin)
    _choice(values["api_version"], API_VERSIONS, "[airflow].api_version", origin)
    _choice(values["auth"], AUTH_MODES, "[airflow].auth", origin)
    if values["auth"] == "auto" and environment is None:
        values["auth"] = "none"
    _choice(values["paused"], PAUSED_POLICIES, "[airflow].paused", origin)
    _choice(values["mwaa_transport"], MWAA_TRANSPORTS, "[airflow].mwaa_transport", origin)
    if values["assume_role_arn"] is not None and not ROLE_ARN_PATTERN.fullmatch(values["assume_role_arn"]):
        raise ConfigError(
            f"{origin}: [airflow].assume_role_arn must be an IAM role ARN, arn:aws:iam::ACCOUNT:role/NAME "
            f"(got {values['assume_role_arn']!r})"
        )
    _federation(values, origin)
    if not 900 <= values["assume_role_duration"] <= 43200:
        raise ConfigError(f"{origin}: [airflow].assume_role_duration must be 900 to 43200 seconds (STS's range)")
    if values["auth"] in ("basic", "jwt") and not values["username"]:
        raise ConfigError(f"{origin}: [airflow].username is required when auth = {values['auth']!r}")
    if values["auth"] == "token_file" and not values["token_file"]:
        raise ConfigError(f"{origin}: [airflow].token_file is required when auth = 'token_file'")
    for key in ("connect_timeout", "read_timeout", "deadline", "max_conf_bytes", "rate_limit"):
        if not math.isfinite(values[key]) or values[key] <= 0:
            raise ConfigError(f"{origin}: [airflow].{key} must be positive (got {values[key]})")
    return AirflowSettings(**values)


def _federation(values: dict[str, Any], origin: str) -> None:
    """Check the cross-cloud keys: Google credentials from AWS, or an AWS role from a Google identity."""
    provider, config_file = values["workload_identity_provider"], values["google_credential_config"]
    if provider is not None and config_file is not None:
        raise ConfigError(
            f"{origin}: [airflow] sets both workload_identity_provider and google_credential_config; the file already "
            "names its provider: keep one"
        )
    if provider is not None:
        if not WORKLOAD_IDENTITY_PROVIDER_PATTERN.fullmatch(provider):
            raise ConfigError(
                f"{origin}: [airflow].workload_identity_provider must be projects/PROJECT_NUMBER/locations/global/"
                f"workloadIdentityPools/POOL/providers/PROVIDER (got {provider!r})"
            )
        if not values["service_account"]:
            raise ConfigError(
                f"{origin}: [airflow].workload_identity_provider needs service_account, the Google service account "
                "to impersonate (its email)"
            )
    federated = provider is not None or config_file is not None
    if federated and values["auth"] not in (*GOOGLE_AUTH_MODES, "auto"):
        raise ConfigError(
            f"{origin}: Google credentials from AWS (workload_identity_provider or google_credential_config) serve "
            f"auth = 'composer', 'iap' or 'iap_jwt', not {values['auth']!r}"
        )
    role = values["web_identity_role_arn"]
    if role is not None:
        if not ROLE_ARN_PATTERN.fullmatch(role):
            raise ConfigError(
                f"{origin}: [airflow].web_identity_role_arn must be an IAM role ARN, arn:aws:iam::ACCOUNT:role/NAME "
                f"(got {role!r})"
            )
        if values["mwaa_environment"] is None:
            raise ConfigError(f"{origin}: [airflow].web_identity_role_arn is for MWAA: set mwaa_environment too")
        if values["assume_role_arn"] is not None:
            raise ConfigError(
                f"{origin}: [airflow] sets both web_identity_role_arn and assume_role_arn: the role assumed with the "
                "Google identity must be the one allowed to call MWAA"
            )
    if not values["web_identity_audience"].strip():
        raise ConfigError(f"{origin}: [airflow].web_identity_audience must not be empty")


def _route(raw: Any, index: int, origin: str) -> Route:
    where = f"routes[{index}]"
    values = _table(raw, _ROUTE_SCHEMA, where, origin)
    if not values["dag_id"].strip():
        raise ConfigError(f"{origin}: {where}.dag_id must not be empty")
    values["name"] = values["name"] or f"{values['dag_id']}#{index}"
    values["sources"] = _strings(values["sources"], f"{where}.sources", origin, SOURCES)
    values["exclude"] = _strings(values["exclude"], f"{where}.exclude", origin)
    values["event_types"] = _strings(values["event_types"], f"{where}.event_types", origin, EVENT_TYPES)
    if values["min_size"] is not None and values["min_size"] < 0:
        raise ConfigError(f"{origin}: {where}.min_size must not be negative")
    for name, value in values["attributes"].items():
        if not isinstance(value, str):
            raise ConfigError(f"{origin}: {where}.attributes.{name} must be str, got {type(value).__name__}")
    try:
        json.dumps(values["conf"], allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{origin}: {where}.conf must hold only JSON values (strings, numbers, booleans, lists, tables): {exc}"
        ) from None
    route = Route(**values)
    if route.attributes and route.is_object_route:
        raise ConfigError(
            f"{origin}: {where} mixes object filters with attributes; a route matches objects or messages"
        )
    if "http" in route.sources and route.is_object_route:
        raise ConfigError(
            f"{origin}: {where} takes HTTP trigger requests (sources has 'http') but also filters objects "
            "(bucket, prefix, suffix, glob, exclude, min_size), which a request never has; split it in two routes"
        )
    return route


def from_mapping(raw: Mapping[str, Any], origin: str) -> Config:
    """Validate a parsed config document; every error names ``origin`` and the key."""
    unknown = sorted(set(raw) - {"airflow", "routes"})
    if unknown:
        raise ConfigError(f"{origin}: {unknown[0]} is not a known top-level key (known: airflow, routes)")
    if "airflow" not in raw:
        raise ConfigError(f"{origin}: the [airflow] table is required")
    routes_raw = raw.get("routes", [])
    if not isinstance(routes_raw, list) or not routes_raw:
        raise ConfigError(f"{origin}: at least one [[routes]] entry with a dag_id is required")
    routes = tuple(_route(r, i, origin) for i, r in enumerate(routes_raw))
    seen: dict[str, int] = {}
    for index, route in enumerate(routes):
        # Names are how logs and `explain` tell routes apart; two alike would blame the wrong one.
        if route.name in seen:
            raise ConfigError(
                f"{origin}: routes[{index}].name {route.name!r} is already the name of routes[{seen[route.name]}]; "
                "route names must be unique"
            )
        seen[route.name] = index
    return Config(airflow=_airflow(raw["airflow"], origin), routes=routes, origin=origin)


def load_file(path: str | os.PathLike[str]) -> Config:
    """Read and validate a ``.toml`` or ``.json`` config file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read config file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not UTF-8 text (byte {exc.start})") from None
    try:
        raw = json.loads(text) if file.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{file}: not valid {'JSON' if file.suffix == '.json' else 'TOML'}: {exc}") from None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{file}: expected a table at the top level")
    return from_mapping(raw, str(file))


# Environment variable -> [airflow] key, for a configuration without a file.
_ENV_AIRFLOW = {
    "AIRFLOW_URL": "url",
    "AIRFLOW_API_VERSION": "api_version",
    "AIRFLOW_AUTH": "auth",
    "AIRFLOW_USERNAME": "username",
    "AIRFLOW_TOKEN_FILE": "token_file",
    "AIRFLOW_PAUSED_POLICY": "paused",
    "COMPOSER_ENVIRONMENT": "composer_environment",
    "IAP_CLIENT_ID": "iap_client_id",
    "IAP_JWT_AUDIENCE": "iap_jwt_audience",
    "IAP_SERVICE_ACCOUNT": "service_account",
    "GOOGLE_SERVICE_ACCOUNT": "service_account",
    "GOOGLE_CREDENTIAL_CONFIG": "google_credential_config",
    "GOOGLE_WORKLOAD_IDENTITY_PROVIDER": "workload_identity_provider",
    "WEB_IDENTITY_ROLE_ARN": "web_identity_role_arn",
    "WEB_IDENTITY_AUDIENCE": "web_identity_audience",
    "AIRFLOW_PASSWORD_SECRET": "password_secret",
    "MWAA_ENVIRONMENT": "mwaa_environment",
    "MWAA_TRANSPORT": "mwaa_transport",
    "ASSUME_ROLE_ARN": "assume_role_arn",
    "ASSUME_ROLE_EXTERNAL_ID": "assume_role_external_id",
}
_ENV_ROUTE = {"DAG_ID": "dag_id", "TRIGGER_BUCKET": "bucket", "TRIGGER_PREFIX": "prefix", "TRIGGER_SUFFIX": "suffix"}
_ENV_DEADLINE = "AIRFLOW_DEADLINE_SECONDS"
#: Every environment variable that configures the core (deployments may set only these, and the password's).
ENVIRONMENT_VARIABLES = frozenset({CONFIG_ENV, _ENV_DEADLINE, *_ENV_AIRFLOW, *_ENV_ROUTE})


def from_environment(env: Mapping[str, str] | None = None) -> Config:
    """``DAG_TRIGGER_CONFIG`` names a file; without it ``AIRFLOW_URL`` (or ``COMPOSER_ENVIRONMENT``) and
    ``DAG_ID`` make a one-route config."""
    env = os.environ if env is None else env
    if env.get(CONFIG_ENV):
        return load_file(env[CONFIG_ENV])
    if not any(name in env for name in ("AIRFLOW_URL", "COMPOSER_ENVIRONMENT", "MWAA_ENVIRONMENT")) or (
        "DAG_ID" not in env
    ):
        raise ConfigError(
            f"environment: set {CONFIG_ENV} to a config file, or AIRFLOW_URL (or COMPOSER_ENVIRONMENT, or "
            "MWAA_ENVIRONMENT) and DAG_ID for a single-DAG setup"
        )
    airflow: dict[str, Any] = {}
    for name, key in _ENV_AIRFLOW.items():
        if env.get(name):
            if airflow.get(key, env[name]) != env[name]:
                # IAP_SERVICE_ACCOUNT predates GOOGLE_SERVICE_ACCOUNT; both may be set, but not to two accounts.
                raise ConfigError(f"environment: {name} and another variable set [airflow].{key} to different values")
            airflow[key] = env[name]
    if env.get(_ENV_DEADLINE):
        try:
            airflow["deadline"] = float(env[_ENV_DEADLINE])
        except ValueError:
            raise ConfigError(f"environment: {_ENV_DEADLINE} must be a number") from None
    route: dict[str, Any] = {key: env[name] for name, key in _ENV_ROUTE.items() if env.get(name)}
    return from_mapping({"airflow": airflow, "routes": [route]}, "environment")
