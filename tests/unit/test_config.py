"""Configuration files and environment: what loads, and what every mistake reports."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from shared.config import AirflowSettings, Route, from_environment, from_mapping, load_file
from shared.errors import ConfigError

FULL_TOML = """\
[airflow]
url = "https://airflow.example.com/"
api_version = "v2"
auth = "jwt"
username = "dag-trigger"
password_env = "DAG_TRIGGER_PASSWORD"
connect_timeout = 2
read_timeout = 12.5
deadline = 45
paused = "fail"
max_conf_bytes = 4096
verify_tls = false

[[routes]]
name = "landing-csv"
dag_id = "ingest_csv"
sources = ["gcs", "s3"]
bucket = "acme-*"
prefix = "incoming/"
suffix = ".csv"
exclude = ["*.tmp", "*/_SUCCESS"]
event_types = ["created", "deleted"]
min_size = 1
conf = { pipeline = "csv", retries = 2, tags = ["a", "b"] }

[[routes]]
dag_id = "load_orders"
sources = ["pubsub"]
attributes = { dag_id = "load_*" }
"""

FULL_JSON = {
    "airflow": {
        "url": "https://airflow.example.com/",
        "api_version": "v2",
        "auth": "jwt",
        "username": "dag-trigger",
        "password_env": "DAG_TRIGGER_PASSWORD",
        "connect_timeout": 2,
        "read_timeout": 12.5,
        "deadline": 45,
        "paused": "fail",
        "max_conf_bytes": 4096,
        "verify_tls": False,
    },
    "routes": [
        {
            "name": "landing-csv",
            "dag_id": "ingest_csv",
            "sources": ["gcs", "s3"],
            "bucket": "acme-*",
            "prefix": "incoming/",
            "suffix": ".csv",
            "exclude": ["*.tmp", "*/_SUCCESS"],
            "event_types": ["created", "deleted"],
            "min_size": 1,
            "conf": {"pipeline": "csv", "retries": 2, "tags": ["a", "b"]},
        },
        {"dag_id": "load_orders", "sources": ["pubsub"], "attributes": {"dag_id": "load_*"}},
    ],
}

MINIMAL = """\
[airflow]
url = "https://airflow.example.com"

[[routes]]
dag_id = "ingest"
"""


def write(tmp_path: Path, text: str, name: str = "dag-trigger.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# --- files that load -------------------------------------------------------------------------


def test_full_toml_file_loads(tmp_path: Path) -> None:
    path = write(tmp_path, FULL_TOML)
    config = load_file(path)

    assert config.origin == str(path)
    assert config.airflow == AirflowSettings(
        url="https://airflow.example.com",
        api_version="v2",
        auth="jwt",
        username="dag-trigger",
        password_env="DAG_TRIGGER_PASSWORD",
        token_file=None,
        connect_timeout=2,
        read_timeout=12.5,
        deadline=45,
        paused="fail",
        max_conf_bytes=4096,
        verify_tls=False,
        allow_insecure_http=False,
    )
    csv, orders = config.routes
    assert csv == Route(
        dag_id="ingest_csv",
        name="landing-csv",
        sources=("gcs", "s3"),
        bucket="acme-*",
        prefix="incoming/",
        suffix=".csv",
        glob=None,
        exclude=("*.tmp", "*/_SUCCESS"),
        event_types=("created", "deleted"),
        min_size=1,
        attributes={},
        conf={"pipeline": "csv", "retries": 2, "tags": ["a", "b"]},
    )
    assert orders.dag_id == "load_orders"
    assert orders.name == "load_orders#1"
    assert orders.attributes == {"dag_id": "load_*"}
    assert orders.event_types == ("created",)
    assert not orders.is_object_route


def test_json_file_loads_the_same_config(tmp_path: Path) -> None:
    toml_config = load_file(write(tmp_path, FULL_TOML))
    json_path = tmp_path / "dag-trigger.json"
    json_path.write_text(json.dumps(FULL_JSON), encoding="utf-8")
    json_config = load_file(json_path)

    assert json_config.origin == str(json_path)
    assert json_config.airflow == toml_config.airflow
    assert json_config.routes == toml_config.routes


def test_minimal_file_gets_defaults(tmp_path: Path) -> None:
    config = load_file(write(tmp_path, MINIMAL))
    assert config.airflow == AirflowSettings(url="https://airflow.example.com")
    assert config.airflow.auth == "none"
    assert config.airflow.api_version == "auto"
    assert config.airflow.paused == "warn"
    assert config.airflow.max_conf_bytes == 65536
    assert config.airflow.verify_tls is True
    (only,) = config.routes
    assert only == Route(dag_id="ingest", name="ingest#0")
    assert only.event_types == ("created",)
    assert only.sources == ()


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8080",
        "http://LOCALHOST:8080",
        "http://127.0.0.1:8080",
        "http://127.10.0.1",
        "http://[::1]:8080",
        "https://airflow.example.com/base/path",
    ],
)
def test_loopback_http_and_https_urls_are_accepted(tmp_path: Path, url: str) -> None:
    config = load_file(write(tmp_path, MINIMAL.replace("https://airflow.example.com", url)))
    assert config.airflow.url == url


def test_insecure_http_is_accepted_when_allowed(tmp_path: Path) -> None:
    text = MINIMAL.replace("https://airflow.example.com", "http://airflow.internal:8080/")
    text = text.replace("[[routes]]", "allow_insecure_http = true\n\n[[routes]]")
    config = load_file(write(tmp_path, text))
    assert config.airflow.url == "http://airflow.internal:8080"
    assert config.airflow.allow_insecure_http is True


def test_token_file_auth(tmp_path: Path) -> None:
    text = MINIMAL.replace("[[routes]]", 'auth = "token_file"\ntoken_file = "/var/run/airflow/token"\n\n[[routes]]')
    config = load_file(write(tmp_path, text))
    assert config.airflow.auth == "token_file"
    assert config.airflow.token_file == "/var/run/airflow/token"


# --- every mistake is a ConfigError naming the file and the key ------------------------------


def airflow_with(extra: str, url: str = "https://airflow.example.com") -> str:
    return f'[airflow]\nurl = "{url}"\n{extra}\n\n[[routes]]\ndag_id = "ingest"\n'


def route_with(extra: str) -> str:
    return f'[airflow]\nurl = "https://airflow.example.com"\n\n[[routes]]\ndag_id = "ingest"\n{extra}\n'


ERRORS = [
    # unknown keys
    pytest.param(airflow_with("timout = 5"), "[airflow].timout is not a known key", id="unknown-airflow-key"),
    pytest.param(
        route_with('bucket_name = "acme"'), "routes[0].bucket_name is not a known key", id="unknown-route-key"
    ),
    pytest.param(MINIMAL + '\n[[routes]]\ndag_id = "b"\nprefx = "x"\n', "routes[1].prefx", id="unknown-key-2nd-route"),
    pytest.param(MINIMAL + "\n[logging]\nlevel = 1\n", "logging is not a known top-level key", id="unknown-top-level"),
    # wrong types
    pytest.param(
        airflow_with('connect_timeout = "5"'),
        "[airflow].connect_timeout must be int or float, got str",
        id="string-timeout",
    ),
    pytest.param(
        airflow_with("read_timeout = true"), "[airflow].read_timeout must be int or float, got bool", id="bool-timeout"
    ),
    pytest.param(
        airflow_with("max_conf_bytes = true"), "[airflow].max_conf_bytes must be int, got bool", id="bool-for-int"
    ),
    pytest.param(
        airflow_with("max_conf_bytes = 1.5"), "[airflow].max_conf_bytes must be int, got float", id="float-for-int"
    ),
    pytest.param(route_with("min_size = true"), "routes[0].min_size must be int, got bool", id="bool-min-size"),
    pytest.param(airflow_with('verify_tls = "no"'), "[airflow].verify_tls must be bool, got str", id="string-bool"),
    pytest.param(airflow_with("verify_tls = 0"), "[airflow].verify_tls must be bool, got int", id="int-for-bool"),
    pytest.param(route_with('exclude = "*.tmp"'), "routes[0].exclude must be list, got str", id="string-for-list"),
    pytest.param(route_with('exclude = ["*.tmp", 3]'), "routes[0].exclude[1] must be str, got int", id="list-item"),
    pytest.param(route_with("sources = [true]"), "routes[0].sources[0] must be str, got bool", id="list-item-bool"),
    pytest.param(route_with("conf = 1"), "routes[0].conf must be dict, got int", id="conf-not-table"),
    pytest.param(
        route_with("attributes = { dag_id = 1 }"), "routes[0].attributes.dag_id must be str, got int", id="attr-value"
    ),
    pytest.param(
        route_with("dag_id = 7").replace('dag_id = "ingest"\n', ""),
        "routes[0].dag_id must be str, got int",
        id="int-dag-id",
    ),
    # choices
    pytest.param(
        route_with('sources = ["azure"]'),
        "routes[0].sources[0] must be one of gcs, s3, pubsub, sns, sqs, http (got 'azure')",
        id="bad-source",
    ),
    pytest.param(
        route_with('event_types = ["created", "create"]'),
        "routes[0].event_types[1] must be one of created, deleted, archived, restored, metadata_updated, other",
        id="bad-event-type",
    ),
    pytest.param(
        airflow_with('auth = "kerberos"'),
        "[airflow].auth must be one of auto, none, basic, jwt, token_file, composer, iap, iap_jwt (got 'kerberos')",
        id="bad-auth",
    ),
    pytest.param(
        airflow_with('paused = "ignore"'),
        "[airflow].paused must be one of warn, fail, unpause (got 'ignore')",
        id="bad-paused",
    ),
    pytest.param(
        airflow_with('api_version = "v3"'),
        "[airflow].api_version must be one of auto, v1, v2, experimental (got 'v3')",
        id="bad-api-version",
    ),
    # auth needs its companions
    pytest.param(
        airflow_with('auth = "jwt"'), "[airflow].username is required when auth = 'jwt'", id="jwt-without-username"
    ),
    pytest.param(
        airflow_with('auth = "basic"\nusername = ""'),
        "[airflow].username is required when auth = 'basic'",
        id="basic-with-empty-username",
    ),
    pytest.param(
        airflow_with('auth = "token_file"'),
        "[airflow].token_file is required when auth = 'token_file'",
        id="token-file-without-path",
    ),
    # required keys
    pytest.param(
        route_with("").replace('dag_id = "ingest"\n', 'name = "x"\n'),
        "routes[0].dag_id is required",
        id="missing-dag-id",
    ),
    pytest.param(route_with("").replace('"ingest"', '"  "'), "routes[0].dag_id must not be empty", id="blank-dag-id"),
    pytest.param(
        '[airflow]\napi_version = "v2"\n\n[[routes]]\ndag_id = "x"\n', "[airflow].url is required", id="missing-url"
    ),
    pytest.param('[[routes]]\ndag_id = "x"\n', "the [airflow] table is required", id="missing-airflow"),
    pytest.param('airflow = "https://x"\n[[routes]]\ndag_id = "x"\n', "[airflow] must be a table", id="airflow-str"),
    # urls
    pytest.param(
        airflow_with("", url="airflow.example.com"),
        "[airflow].url must be an http(s) URL with a host",
        id="url-without-scheme",
    ),
    pytest.param(
        airflow_with("", url="localhost:8080"),
        "[airflow].url must be an http(s) URL with a host",
        id="url-host-port-without-scheme",
    ),
    pytest.param(
        airflow_with("", url="ftp://airflow.example.com"),
        "[airflow].url must be an http(s) URL with a host",
        id="url-ftp",
    ),
    pytest.param(airflow_with("", url="https://"), "[airflow].url must be an http(s) URL with a host", id="no-host"),
    pytest.param(
        airflow_with("", url="https://admin:s3cr3t@airflow.example.com"),
        "[airflow].url must not carry credentials",
        id="url-with-credentials",
    ),
    pytest.param(
        airflow_with("", url="https://airflow.example.com/?token=abc"),
        "[airflow].url must not carry credentials or a query string",
        id="url-with-query",
    ),
    pytest.param(
        airflow_with("", url="http://airflow.internal:8080"),
        "[airflow].url uses plain http to a non-loopback host",
        id="http-non-loopback",
    ),
    pytest.param(
        airflow_with("", url="http://10.0.0.5:8080"),
        "[airflow].url uses plain http to a non-loopback host",
        id="http-private-ip",
    ),
    pytest.param(
        airflow_with("allow_insecure_http = false", url="http://airflow.internal"),
        "[airflow].url uses plain http",
        id="http-explicitly-not-allowed",
    ),
    # numbers that must be positive
    pytest.param(airflow_with("deadline = 0"), "[airflow].deadline must be positive (got 0)", id="zero-deadline"),
    pytest.param(airflow_with("connect_timeout = -1.5"), "[airflow].connect_timeout must be positive", id="neg-time"),
    pytest.param(airflow_with("max_conf_bytes = 0"), "[airflow].max_conf_bytes must be positive", id="zero-conf-cap"),
    pytest.param(route_with("min_size = -1"), "routes[0].min_size must not be negative", id="negative-min-size"),
    # routes
    pytest.param(route_with('bucket = "acme"\nattributes = { a = "b" }'), "routes[0] mixes object filters", id="mix"),
    pytest.param('[airflow]\nurl = "https://x.example.com"\nroutes = []\n', "at least one [[routes]]", id="empty"),
    pytest.param('[airflow]\nurl = "https://x.example.com"\n', "at least one [[routes]]", id="no-routes"),
    pytest.param(
        'routes = ["ingest"]\n[airflow]\nurl = "https://x.example.com"\n', "routes[0] must be a table", id="route-str"
    ),
    pytest.param(
        'routes = { dag_id = "x" }\n[airflow]\nurl = "https://x.example.com"\n',
        "at least one [[routes]]",
        id="routes-table-not-array",
    ),
    pytest.param(
        '[airflow]\nurl = "https://x.example.com"\n[[routes]]\ndag_id = "a"\nname = "orders"\n'
        '[[routes]]\ndag_id = "b"\nname = "orders"\n',
        "routes[1].name 'orders' is already the name of routes[0]; route names must be unique",
        id="duplicate-route-name",
    ),
    # syntax
    pytest.param('[airflow\nurl = "https://x.example.com"\n', "not valid TOML", id="bad-toml"),
    pytest.param('[airflow]\nurl = "https://x.example.com"\nurl = "https://y"\n', "not valid TOML", id="dup-key"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_config_errors_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_file(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)
    assert caught.value.retryable is False


def test_url_with_credentials_does_not_echo_the_password(tmp_path: Path) -> None:
    path = write(tmp_path, airflow_with("", url="https://admin:s3cr3t@airflow.example.com"))
    with pytest.raises(ConfigError) as caught:
        load_file(path)
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ('["airflow"]', "expected a table at the top level"),
        ('{"airflow": {"url": "https://x.example.com"}, "routes": [{"dag_id": 1}]}', "routes[0].dag_id must be str"),
        ('{"airflow": {"url": "https://x.example.com", "deadline": null}, "routes": [{"dag_id": "x"}]}', "deadline"),
    ],
)
def test_json_config_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "dag-trigger.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_file(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError, match="cannot read config file") as caught:
        load_file(path)
    assert str(path) in str(caught.value)


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"# caf\xe9 settings\n" + MINIMAL.encode())
    with pytest.raises(ConfigError) as caught:
        load_file(path)
    assert str(path) in str(caught.value)


def test_nan_timeout_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, airflow_with("connect_timeout = nan"))
    with pytest.raises(ConfigError, match="connect_timeout"):
        load_file(path)


def test_non_json_value_in_route_conf_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, route_with("conf = { start = 2026-11-23 }"))
    with pytest.raises(ConfigError, match=r"routes\[0\]\.conf"):
        load_file(path)


def test_from_mapping_names_the_given_origin() -> None:
    raw: dict[str, Any] = {"airflow": {"url": "https://x.example.com"}, "routes": [{"dag_id": "x", "glob": 1}]}
    with pytest.raises(ConfigError, match=r"^inline: routes\[0\]\.glob must be str, got int$"):
        from_mapping(raw, "inline")


# --- environment -----------------------------------------------------------------------------


def test_environment_only_config() -> None:
    config = from_environment({"AIRFLOW_URL": "https://airflow.example.com/", "DAG_ID": "ingest"})
    assert config.origin == "environment"
    assert config.airflow == AirflowSettings(url="https://airflow.example.com")
    assert config.routes == (Route(dag_id="ingest", name="ingest#0"),)


def test_environment_with_every_variable() -> None:
    config = from_environment(
        {
            "AIRFLOW_URL": "https://airflow.example.com",
            "AIRFLOW_API_VERSION": "v1",
            "AIRFLOW_AUTH": "basic",
            "AIRFLOW_USERNAME": "dag-trigger",
            "AIRFLOW_PAUSED_POLICY": "unpause",
            "AIRFLOW_DEADLINE_SECONDS": "12.5",
            "DAG_ID": "ingest",
            "TRIGGER_BUCKET": "acme-landing",
            "TRIGGER_PREFIX": "incoming/",
            "TRIGGER_SUFFIX": ".csv",
            "UNRELATED": "ignored",
        }
    )
    assert config.airflow.api_version == "v1"
    assert config.airflow.auth == "basic"
    assert config.airflow.username == "dag-trigger"
    assert config.airflow.paused == "unpause"
    assert config.airflow.deadline == 12.5
    (only,) = config.routes
    assert (only.dag_id, only.bucket, only.prefix, only.suffix) == ("ingest", "acme-landing", "incoming/", ".csv")


def test_environment_empty_values_are_unset() -> None:
    config = from_environment(
        {"AIRFLOW_URL": "https://airflow.example.com", "DAG_ID": "ingest", "AIRFLOW_AUTH": "", "TRIGGER_PREFIX": ""}
    )
    assert config.airflow.auth == "none"
    assert config.routes[0].prefix is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AIRFLOW_URL": "https://airflow.example.com"}, "DAG_ID"),
        ({"DAG_ID": "ingest"}, "AIRFLOW_URL"),
        ({}, "DAG_TRIGGER_CONFIG"),
        (
            {"AIRFLOW_URL": "https://airflow.example.com", "DAG_ID": "ingest", "AIRFLOW_DEADLINE_SECONDS": "soon"},
            "AIRFLOW_DEADLINE_SECONDS must be a number",
        ),
        (
            {"AIRFLOW_URL": "https://airflow.example.com", "DAG_ID": "ingest", "AIRFLOW_AUTH": "jwt"},
            "[airflow].username is required when auth = 'jwt'",
        ),
        ({"AIRFLOW_URL": "airflow.example.com", "DAG_ID": "ingest"}, "[airflow].url must be an http(s) URL"),
        ({"AIRFLOW_URL": "https://airflow.example.com", "DAG_ID": " "}, "routes[0].dag_id must not be empty"),
    ],
)
def test_environment_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_environment(env)
    assert str(caught.value).startswith("environment: ")
    assert message in str(caught.value)


def test_dag_trigger_config_points_at_a_file(tmp_path: Path) -> None:
    path = write(tmp_path, FULL_TOML)
    config = from_environment(
        {"DAG_TRIGGER_CONFIG": str(path), "AIRFLOW_URL": "https://other.example.com", "DAG_ID": "ignored"}
    )
    assert config.origin == str(path)
    assert config.airflow.url == "https://airflow.example.com"
    assert [r.dag_id for r in config.routes] == ["ingest_csv", "load_orders"]


def test_dag_trigger_config_pointing_nowhere(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    with pytest.raises(ConfigError, match="cannot read config file") as caught:
        from_environment({"DAG_TRIGGER_CONFIG": str(path)})
    assert str(path) in str(caught.value)


def test_dag_trigger_config_errors_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, airflow_with('auth = "nope"'))
    with pytest.raises(ConfigError) as caught:
        from_environment({"DAG_TRIGGER_CONFIG": str(path)})
    assert str(caught.value).startswith(f"{path}: [airflow].auth must be one of")


def test_from_environment_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAG_TRIGGER_CONFIG", raising=False)
    monkeypatch.setenv("AIRFLOW_URL", "http://localhost:8080")
    monkeypatch.setenv("DAG_ID", "from_os_environ")
    config = from_environment()
    assert config.airflow.url == "http://localhost:8080"
    assert config.routes[0].dag_id == "from_os_environ"
