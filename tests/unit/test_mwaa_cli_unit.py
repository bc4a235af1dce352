"""MWAA's CLI token transport without AWS or Airflow: the translation table, the output read back as REST answers
(with what Airflow 3.1 and 2.11 really print), the token cache, and the client's semantics on top of it.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from shared import credentials as core
from shared.airflow_client import ALREADY_TRIGGERED, CREATED, AirflowClient
from shared.config import AirflowSettings, from_mapping
from shared.errors import AirflowError, DagNotFoundError, DagPausedError, ForbiddenError, InvalidRequestError
from shared.mwaa import InvokeRestApiTransport
from shared.mwaa_cli import CLI_TOKEN_LIFETIME, CLI_TOKEN_MARGIN, CliOutput, CliTokenTransport, cli_url, translate
from shared.retry import Backoff
from shared.runtime import Setup
from shared.transport import ApiCall, Retryable
from shared.triggers import TriggerRequest
from tests.unit.test_airflow_client import EVENT, REQUEST

HOST = "0123abcd-vpce.c5.eu-west-1.airflow.amazonaws.com"
RUN = REQUEST.dag_run_id
#: Every run id our code derives is this shape: two colons, which the REST paths percent-encode.
RUN_PATH = f"/dags/load_orders/dagRuns/{RUN.replace(':', '%3A')}"

# What the CLI printed through the fake MWAA's /aws_mwaa/cli (Airflow 3.1.8 and 2.11.2), shortened.
A2_LOG = (
    "[2026-11-26T01:48:25.647+0000] {plugins.py:37} INFO - setup plugin alembic.autogenerate.schemas\n"
    "[2026-11-26T01:48:26.714+0000] {__init__.py:43} INFO - Loaded API auth backend: "
    "airflow.api.auth.backend.basic_auth\n"
)
A3_WARNINGS = (
    "/venv/lib/python3.11/site-packages/airflow/cli/commands/dag_command.py:49 UserWarning: Could not import "
    "graphviz. Rendering graph to the graphical format will not be possible. \n"
    "Run `pip install graphviz` to attempt to install it.\n"
)
A3_CREATED = json.dumps(
    [
        {
            "conf": {"key": "incoming/orders.csv"},
            "dag_id": "load_orders",
            "dag_run_id": RUN,
            "data_interval_start": None,
            "logical_date": None,
            "run_type": "manual",
            "state": "queued",
            "triggering_user_name": "root",
        }
    ]
)
A2_CREATED = A2_LOG + json.dumps(
    [
        {
            "conf": {"key": "incoming/orders.csv"},
            "dag_id": "load_orders",
            "dag_run_id": RUN,
            "external_trigger": "True",
            "logical_date": "2026-11-26 01:48:27.054350+00:00",
            "run_type": "manual",
            "state": "queued",
        }
    ]
)
TRACEBACK = (
    'Traceback (most recent call last):\n  File "/venv/bin/airflow", line 8, in <module>\n    sys.exit(main())\n'
)
A3_DUPLICATE = (
    f"{A3_WARNINGS}{TRACEBACK}airflow.exceptions.DagRunAlreadyExists: A DAG Run already exists for DAG load_orders "
    f"with run id {RUN}\n"
)
A2_DUPLICATE = (
    f"{TRACEBACK}airflow.exceptions.DagRunAlreadyExists: A DAG Run already exists for DAG load_orders at "
    f"2026-11-26 01:48:37.503435+00:00 with run id {RUN}\n"
)
NOT_IN_DAG_MODEL = f"{TRACEBACK}airflow.exceptions.DagNotFound: Dag id load_orders not found in DagModel\n"
NOT_IN_DAG_TABLE = "DAG: load_orders does not exist in 'dag' table\n"
A3_BAD_RUN_ID = (
    f"{TRACEBACK}ValueError: The run_id provided 'a b' does not match regex pattern '^[A-Za-z0-9_.~:+-]+$' or "
    "'^(?:manual|scheduled|asset_triggered)__(?:\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\+00:00)$'\n"
)
A2_BAD_RUN_ID = (
    f"{TRACEBACK}airflow.exceptions.AirflowException: The provided run ID 'a b' is invalid. It does not match "
    "either the configured pattern: '^[A-Za-z0-9_.~:+-]+$' or the built-in pattern: '...'\n"
)
USAGE_ERROR = (
    "  -h, --help         show this help message and exit\n\n"
    "airflow command error: unrecognized arguments: -o json, see help above.\n"
)
DAGS = json.dumps(
    [{"dag_id": "load_orders", "is_paused": "False"}, {"dag_id": "load_orders_paused", "is_paused": "True"}]
)
A3_RUNS = json.dumps(
    [
        {
            "dag_id": "load_orders",
            "run_id": RUN,
            "state": "success",
            "run_after": "2026-11-26T01:48:06.758042+00:00",
            "logical_date": "",
            "start_date": "2026-11-26T01:48:07.911248+00:00",
            "end_date": "2026-11-26T01:48:09.688338+00:00",
        },
        {"dag_id": "load_orders", "run_id": "manual__other", "state": "queued", "logical_date": ""},
    ]
)
A2_RUNS = A2_LOG + json.dumps(
    [{"dag_id": "load_orders", "run_id": RUN, "state": "running", "execution_date": "2026-11-26T01:48:27.054350+00:00"}]
)

TRIGGER = ApiCall("POST", "/dags/load_orders/dagRuns", body={"dag_run_id": RUN, "conf": {"key": "k"}, "note": "n"})
READ_DAG = ApiCall("GET", "/dags/load_orders")
READ_RUN = ApiCall("GET", RUN_PATH)
UNPAUSE = ApiCall("PATCH", "/dags/load_orders", {"update_mask": "is_paused"}, {"is_paused": False})


# --- the translation table ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "version", "argv"),
    [
        (ApiCall("GET", "/version", auth=False), "v2", ["version"]),
        (
            ApiCall("GET", "/dags", {"limit": "1"}),
            "v1",
            ["dags", "list", "-o", "json", "--columns", "dag_id,is_paused"],
        ),
        (READ_DAG, "v2", ["dags", "list", "-o", "json", "--columns", "dag_id,is_paused"]),
        (UNPAUSE, "v1", ["dags", "unpause", "-o", "json", "load_orders"]),
        (
            ApiCall("PATCH", "/dags/load_orders", {"update_mask": "is_paused"}, {"is_paused": True}),
            "v2",
            ["dags", "pause", "-o", "json", "load_orders"],
        ),
        (
            TRIGGER,
            "v2",
            [
                "dags",
                "trigger",
                "-o",
                "json",
                "-r",
                RUN,
                "-c",
                '{"key":"k"}',
                "--no-replace-microseconds",
                "load_orders",
            ],
        ),
        (READ_RUN, "v1", ["dags", "list-runs", "-o", "json", "-d", "load_orders"]),
        (READ_RUN, "v2", ["dags", "list-runs", "-o", "json", "load_orders"]),
        (
            ApiCall("GET", "/dags/load_orders/dagRuns", {"run_id_pattern": RUN, "limit": "100", "offset": "0"}),
            "v2",
            ["dags", "list-runs", "-o", "json", "load_orders"],
        ),
    ],
    ids=["version", "dags", "dag", "unpause", "pause", "trigger", "run-airflow2", "run-airflow3", "run-list"],
)
def test_each_call_becomes_one_cli_command(call: ApiCall, version: str, argv: list[str]) -> None:
    assert shlex.split(translate(call, version).text) == argv


def test_conf_and_ids_reach_the_cli_intact_whatever_they_hold() -> None:
    conf = {"key": 'it\'s a "quoted" $HOME `file`;.csv', "n": 1}
    dag_id = "d" * 60
    call = ApiCall("POST", f"/dags/{dag_id}/dagRuns", body={"dag_run_id": "s3__x:y+z", "conf": conf})

    argv = shlex.split(translate(call, "v1").text)

    assert json.loads(argv[argv.index("-c") + 1]) == conf
    assert argv[argv.index("-r") + 1] == "s3__x:y+z"
    assert argv[-1] == dag_id


@pytest.mark.parametrize(
    ("call", "version"),
    [
        (ApiCall("DELETE", "/dags/load_orders"), "v2"),
        (READ_DAG, "experimental"),
        (ApiCall("POST", "/dags/x/dagRuns"), "v2"),
    ],
    ids=["unknown-call", "airflow-1.10", "trigger-without-run-id"],
)
def test_what_the_cli_cannot_carry_is_a_clear_error(call: ApiCall, version: str) -> None:
    with pytest.raises(AirflowError, match="CLI token path") as raised:
        translate(call, version)
    assert not raised.value.retryable


# --- the output read back as the REST API's answer ---------------------------------------------


@pytest.mark.parametrize(
    ("call", "version", "stdout", "stderr", "status", "expected"),
    [
        (TRIGGER, "v2", A3_CREATED, A3_WARNINGS, 200, {"dag_run_id": RUN, "state": "queued"}),
        (TRIGGER, "v1", A2_CREATED, "", 200, {"dag_run_id": RUN, "state": "queued"}),
        (TRIGGER, "v2", "", A3_DUPLICATE, 409, {}),
        (TRIGGER, "v1", A2_LOG, A2_DUPLICATE, 409, {}),
        (TRIGGER, "v2", "", NOT_IN_DAG_MODEL, 404, {}),
        (TRIGGER, "v2", "", A3_BAD_RUN_ID, 400, {}),
        (TRIGGER, "v1", A2_LOG, A2_BAD_RUN_ID, 400, {}),
        (TRIGGER, "v1", "", USAGE_ERROR, 400, {}),
        # A run is created only when the output shows it: silence, another run, or a table is not proof.
        (TRIGGER, "v2", "", "", 502, {}),
        (TRIGGER, "v2", A3_CREATED.replace(RUN, "manual__other"), "", 502, {}),
        (TRIGGER, "v1", f"Created <DagRun load_orders @ 2026-11-26: {RUN}, state:queued>", "", 502, {}),
        (TRIGGER, "v2", "", f"{TRACEBACK}sqlalchemy.exc.OperationalError: database is locked\n", 502, {}),
        (READ_DAG, "v2", DAGS, A3_WARNINGS, 200, {"dag_id": "load_orders", "is_paused": False}),
        (
            ApiCall("GET", "/dags/load_orders_paused"),
            "v1",
            A2_LOG + DAGS,
            "",
            200,
            {"dag_id": "load_orders_paused", "is_paused": True},
        ),
        (ApiCall("GET", "/dags/load_orders_2"), "v2", DAGS, "", 404, {}),
        (READ_DAG, "v2", "", f"{TRACEBACK}OperationalError\n", 502, {}),
        (ApiCall("GET", "/dags", {"limit": "1"}), "v2", DAGS, "", 200, {"total_entries": 2}),
        (UNPAUSE, "v2", '[{"dag_id": "load_orders", "is_paused": "True"}]', "", 200, {"is_paused": False}),
        (UNPAUSE, "v1", A2_LOG + "No paused DAGs were found\n", "", 200, {"is_paused": False}),
        (UNPAUSE, "v2", "", f"{TRACEBACK}OperationalError\n", 502, {}),
        (READ_RUN, "v2", A3_RUNS, A3_WARNINGS, 200, {"dag_run_id": RUN, "state": "success", "logical_date": None}),
        (READ_RUN, "v1", A2_RUNS, "", 200, {"dag_run_id": RUN, "state": "running"}),
        (READ_RUN, "v2", "[]", "", 404, {}),
        (READ_RUN, "v1", A2_LOG, NOT_IN_DAG_TABLE, 404, {}),
        (READ_RUN, "v2", "", "", 502, {}),
        (ApiCall("GET", "/version"), "v2", "3.1.8\n", A3_WARNINGS, 200, {"version": "3.1.8"}),
        (ApiCall("GET", "/version"), "v1", A2_LOG + "2.11.2\n", "", 200, {"version": "2.11.2"}),
        (ApiCall("GET", "/version"), "v1", A2_LOG, "", 502, {}),
    ],
    ids=[
        "trigger-created-airflow3",
        "trigger-created-airflow2-after-log-lines",
        "trigger-duplicate-airflow3",
        "trigger-duplicate-airflow2",
        "trigger-unknown-dag",
        "trigger-bad-run-id-airflow3",
        "trigger-bad-run-id-airflow2",
        "trigger-usage-error",
        "trigger-silence",
        "trigger-another-run",
        "trigger-table-not-json",
        "trigger-database-error",
        "dag-not-paused",
        "dag-paused-airflow2",
        "dag-not-listed",
        "dag-list-failed",
        "dags-count",
        "unpause",
        "unpause-already",
        "unpause-failed",
        "run-airflow3",
        "run-airflow2",
        "run-absent",
        "run-dag-absent",
        "run-list-failed",
        "version-airflow3",
        "version-airflow2",
        "version-unreadable",
    ],
)
def test_what_the_cli_printed_is_read_as_the_rest_apis_answer(
    call: ApiCall, version: str, stdout: str, stderr: str, status: int, expected: dict[str, Any]
) -> None:
    response = translate(call, version).read(CliOutput(stdout, stderr))

    assert response.status == status, response.text
    assert expected.items() <= response.json().items()


def test_a_failure_names_what_airflow_said_last() -> None:
    response = translate(TRIGGER, "v2").read(CliOutput("", NOT_IN_DAG_MODEL))
    assert response.detail == "airflow.exceptions.DagNotFound: Dag id load_orders not found in DagModel"


def test_the_run_list_is_filtered_by_run_id_and_paged() -> None:
    rows = [{"dag_id": "d", "run_id": f"s3__{n}", "state": "success"} for n in range(5)]
    rows.append({"dag_id": "d", "run_id": "manual__1", "state": "queued"})
    call = ApiCall("GET", "/dags/d/dagRuns", {"run_id_pattern": "s3__", "limit": "2", "offset": "2"})

    body = translate(call, "v2").read(CliOutput(json.dumps(rows), "")).json()

    assert [run["dag_run_id"] for run in body["dag_runs"]] == ["s3__2", "s3__3"]
    assert body["total_entries"] == 5


# --- the transport: token, web server, rate limit ----------------------------------------------


def reply(request: requests.PreparedRequest, status: int, body: bytes, headers: dict[str, str] | None = None) -> Any:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers = CaseInsensitiveDict(headers or {})
    response.url = request.url or ""
    response.request = request
    return response


class WebServer(BaseAdapter):
    """The web server's /aws_mwaa/cli: ``cli(command)`` gives (stdout, stderr); queued ``replies`` go first."""

    def __init__(self, cli: Callable[[str], tuple[str, str]] | None = None) -> None:
        super().__init__()
        self.cli = cli or (lambda command: ("3.1.8\n", ""))
        self.requests: list[requests.PreparedRequest] = []
        self.replies: list[tuple[int, bytes, dict[str, str]] | Exception] = []

    @property
    def commands(self) -> list[str]:
        return [bytes(request.body or b"").decode() for request in self.requests]

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        self.requests.append(request)
        if self.replies:
            queued = self.replies.pop(0)
            if isinstance(queued, Exception):
                raise queued
            return reply(request, *queued)
        stdout, stderr = self.cli(bytes(request.body or b"").decode())
        body = {
            "stdout": base64.b64encode(stdout.encode()).decode(),
            "stderr": base64.b64encode(stderr.encode()).decode(),
        }
        return reply(request, 200, json.dumps(body).encode())

    def close(self) -> None:
        return None


class MwaaApi:
    """boto3's MWAA client, as far as CreateCliToken goes; ``errors`` are raised first, one per call."""

    def __init__(self, host: str = HOST) -> None:
        self.host = host
        self.minted = 0
        self.errors: list[Exception] = []

    def create_cli_token(self, Name: str) -> dict[str, str]:
        if self.errors:
            raise self.errors.pop(0)
        self.minted += 1
        return {"CliToken": f"token-{self.minted}", "WebServerHostname": self.host}


class AwsSession:
    """A boto3 session that hands out the fake MWAA client and keeps the config it was asked for."""

    region_name = "eu-west-1"

    def __init__(self, api: MwaaApi) -> None:
        self.api = api
        self.clients: list[tuple[str, str, Any]] = []

    def client(self, service: str, region_name: str, config: Any) -> MwaaApi:
        self.clients.append((service, region_name, config))
        return self.api


class Bucket:
    """A rate limiter that only counts."""

    def __init__(self) -> None:
        self.taken = 0

    def acquire(self, budget: float) -> None:
        self.taken += 1


def settings(**values: Any) -> AirflowSettings:
    return AirflowSettings(
        **{"url": "", "mwaa_environment": "analytics", "mwaa_transport": "cli_token", "deadline": 60.0, **values}
    )


def make_transport(
    web: WebServer, api: MwaaApi | None = None, bucket: Bucket | None = None, **values: Any
) -> tuple[CliTokenTransport, MwaaApi, AwsSession]:
    api = api or MwaaApi()
    aws = AwsSession(api)
    http = requests.Session()
    http.mount("https://", web)
    http.mount("http://", web)
    transport = CliTokenTransport(settings(**values), session=aws, http=http, bucket=bucket or Bucket())  # type: ignore[arg-type]
    return transport, api, aws


TIMEOUT = (5.0, 30.0)


def test_one_token_serves_every_call_and_goes_with_each_command_as_a_bearer() -> None:
    web = WebServer()
    bucket = Bucket()
    transport, api, aws = make_transport(web, bucket=bucket, read_timeout=30.0, connect_timeout=4.0)

    for _ in range(3):
        transport.send("v2", ApiCall("GET", "/version"), TIMEOUT)

    assert api.minted == 1
    assert bucket.taken == 3
    for request in web.requests:
        assert request.url == f"https://{HOST}/aws_mwaa/cli"
        assert request.method == "POST"
        assert request.headers["Authorization"] == "Bearer token-1"
        assert request.headers["Content-Type"] == "text/plain"
    assert web.commands == ["version"] * 3
    ((service, region, config),) = aws.clients
    # The same botocore policy as InvokeRestApi: our timeouts, MWAA's 10 s in view, one attempt.
    assert (service, region) == ("mwaa", "eu-west-1")
    assert (config.connect_timeout, config.read_timeout, config.retries) == (4.0, 12.0, {"total_max_attempts": 1})


def test_a_token_is_minted_again_shortly_before_its_minute_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    monkeypatch.setattr(core, "utcnow", lambda: now)
    transport, api, _ = make_transport(WebServer())

    transport.send("v2", ApiCall("GET", "/version"), TIMEOUT)
    now += CLI_TOKEN_LIFETIME - CLI_TOKEN_MARGIN - timedelta(seconds=1)
    transport.send("v2", ApiCall("GET", "/version"), TIMEOUT)
    minted_while_fresh = api.minted
    now += timedelta(seconds=2)
    transport.send("v2", ApiCall("GET", "/version"), TIMEOUT)

    assert (minted_while_fresh, api.minted) == (1, 2)


def test_a_refused_token_is_replaced_once_and_the_command_sent_again() -> None:
    web = WebServer()
    web.replies.append((403, b"Forbidden", {}))
    transport, api, _ = make_transport(web)

    response = transport.send("v2", ApiCall("GET", "/version"), TIMEOUT)

    assert response.json() == {"version": "3.1.8"}
    assert api.minted == 2
    assert [r.headers["Authorization"] for r in web.requests] == ["Bearer token-1", "Bearer token-2"]


def test_a_fresh_token_refused_too_is_forbidden_without_more_tokens() -> None:
    web = WebServer()
    web.replies += [(403, b"Forbidden", {}), (403, b"Forbidden", {})]
    transport, api, _ = make_transport(web)

    with pytest.raises(ForbiddenError, match="refused a freshly minted CLI token"):
        transport.send("v2", ApiCall("GET", "/version"), TIMEOUT)
    assert api.minted == 2


@pytest.mark.parametrize(
    ("queued", "error", "retryable"),
    [
        ((500, b"Internal Server Error", {}), Retryable, True),
        ((504, b"Gateway Timeout", {}), Retryable, True),
        ((429, b"Slow down", {"Retry-After": "3"}), Retryable, True),
        ((404, b"Not Found", {}), AirflowError, False),
        ((302, b"", {"Location": "https://login.example.com/?next=x"}), AirflowError, False),
        ((200, b"<html>login</html>", {}), AirflowError, False),
        ((200, b'{"stdout": "not base64!"}', {}), AirflowError, False),
        (requests.ReadTimeout("read timed out"), Retryable, True),
        (requests.ConnectionError("refused"), Retryable, True),
    ],
    ids=["500", "504", "429", "404", "redirect", "not-json", "not-base64", "timeout", "cannot-connect"],
)
def test_what_the_web_server_answers_besides_the_cli_output(
    queued: tuple[int, bytes, dict[str, str]] | Exception, error: type[AirflowError], retryable: bool
) -> None:
    web = WebServer()
    web.replies.append(queued)
    transport, _, _ = make_transport(web)

    with pytest.raises(error) as raised:
        transport.send("v2", TRIGGER, TIMEOUT)

    assert raised.value.retryable is retryable
    assert '{"key"' not in str(raised.value), "the conf stays out of messages"
    if isinstance(queued, tuple) and queued[0] == 429:
        assert raised.value.retry_after == 3.0  # type: ignore[attr-defined]


def client_error(code: str, message: str = "no") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "CreateCliToken")


@pytest.mark.parametrize(
    ("code", "error", "match"),
    [
        (
            "AccessDeniedException",
            ForbiddenError,
            "needs airflow:CreateCliToken on arn:aws:airflow:eu-west-1:ACCOUNT:environment/analytics",
        ),
        ("ResourceNotFoundException", AirflowError, "no MWAA environment named 'analytics' in eu-west-1"),
        ("ThrottlingException", Retryable, "CreateCliToken on MWAA environment analytics"),
    ],
)
def test_create_cli_token_failures_say_what_is_missing(code: str, error: type[AirflowError], match: str) -> None:
    api = MwaaApi()
    api.errors.append(client_error(code))
    transport, _, _ = make_transport(WebServer(), api)

    with pytest.raises(error, match=match):
        transport.send("v2", ApiCall("GET", "/version"), TIMEOUT)


@pytest.mark.parametrize(
    ("host", "url"),
    [
        (HOST, f"https://{HOST}/aws_mwaa/cli"),
        ("127.0.0.1:8080", "http://127.0.0.1:8080/aws_mwaa/cli"),
        ("localhost:8080", "http://localhost:8080/aws_mwaa/cli"),
        ("[::1]:8080", "http://[::1]:8080/aws_mwaa/cli"),
        ("127.0.0.1.nip.io", "https://127.0.0.1.nip.io/aws_mwaa/cli"),
        ("10.0.0.5", "https://10.0.0.5/aws_mwaa/cli"),
    ],
)
def test_plain_http_only_to_loopback(host: str, url: str) -> None:
    assert cli_url(host) == url


def test_known_version_asks_the_cli_once() -> None:
    web = WebServer(lambda command: (A2_LOG + "2.11.2\n", ""))
    transport, _, _ = make_transport(web)
    assert transport.known_version(TIMEOUT) == "v1"
    assert web.commands == ["version"]


# --- the client's semantics over the CLI -------------------------------------------------------


class CliAirflow:
    """An Airflow CLI that keeps DAGs and runs, and prints what Airflow 3.1 (or 2.11) prints."""

    def __init__(self, major: str = "3", paused: bool = False, dag_id: str = "load_orders") -> None:
        self.major = major
        self.dags = {dag_id: paused}
        self.runs: dict[str, str] = {}
        #: Airflow 2's (dag_id, logical date) key taken by another event's run, for the next trigger only.
        self.clash_once = False

    def __call__(self, command: str) -> tuple[str, str]:
        args = shlex.split(command)
        log = A2_LOG if self.major == "2" else ""
        if args == ["version"]:
            return ("3.1.8\n" if self.major == "3" else "2.11.2\n"), ""
        if args[:2] == ["dags", "list"]:
            rows = [{"dag_id": d, "is_paused": str(p)} for d, p in self.dags.items()]
            return log + json.dumps(rows), ""
        dag_id = args[-1]
        if dag_id not in self.dags:
            return log, NOT_IN_DAG_MODEL.replace("load_orders", dag_id)
        if args[:2] == ["dags", "unpause"]:
            self.dags[dag_id] = False
            return json.dumps([{"dag_id": dag_id, "is_paused": "True"}]), ""
        if args[:2] == ["dags", "list-runs"]:
            assert ("-d" in args) is (self.major == "2"), args
            rows = [{"dag_id": dag_id, "run_id": r, "state": s, "logical_date": ""} for r, s in self.runs.items()]
            return log + json.dumps(rows), ""
        assert args[:2] == ["dags", "trigger"], args
        run_id = args[args.index("-r") + 1]
        if run_id in self.runs or self.clash_once:
            self.clash_once = False
            return log, f"{TRACEBACK}airflow.exceptions.DagRunAlreadyExists: A DAG Run already exists for DAG x"
        self.runs[run_id] = "queued"
        row = {
            "dag_id": dag_id,
            "dag_run_id": run_id,
            "state": "queued",
            "conf": json.loads(args[args.index("-c") + 1]),
        }
        return log + json.dumps([row]), ""


def make_client(cli: CliAirflow, **values: Any) -> tuple[AirflowClient, WebServer, MwaaApi]:
    web = WebServer(cli)
    transport, api, _ = make_transport(web, **values)
    client = AirflowClient(
        settings(**values), transport, backoff=Backoff(base=0.01, cap=0.01, random=lambda: 1.0), sleep=lambda _: None
    )
    return client, web, api


@pytest.mark.parametrize("major", ["3", "2"])
def test_a_redelivered_event_is_already_triggered_once_our_run_id_is_read_back(major: str) -> None:
    cli = CliAirflow(major)
    client, web, api = make_client(cli)

    first = client.trigger(REQUEST)
    again = client.trigger(REQUEST)

    assert (first.outcome, first.state, again.outcome, again.state) == (CREATED, "queued", ALREADY_TRIGGERED, "queued")
    assert list(cli.runs) == [REQUEST.dag_run_id]
    verbs = [shlex.split(command)[:2] for command in web.commands]
    assert verbs == [["version"], ["dags", "list"], ["dags", "trigger"], ["dags", "trigger"], ["dags", "list-runs"]]
    assert api.minted == 1


def test_a_clash_on_another_key_is_retried_until_our_run_is_created() -> None:
    cli = CliAirflow("2")
    cli.clash_once = True
    client, _, _ = make_client(cli)

    result = client.trigger(REQUEST)

    assert (result.outcome, result.attempts) == (CREATED, 2)


def test_an_unknown_dag_is_dag_not_found() -> None:
    client, web, _ = make_client(CliAirflow(dag_id="another_dag"))
    with pytest.raises(DagNotFoundError, match="'load_orders' does not exist in Airflow at MWAA environment analytics"):
        client.trigger(REQUEST)
    assert not any("trigger" in command for command in web.commands)


def test_a_paused_dag_follows_the_paused_policy() -> None:
    paused = CliAirflow(paused=True)
    client, web, _ = make_client(paused, paused="unpause")
    result = client.trigger(REQUEST)
    assert result.outcome == CREATED
    assert "dags unpause -o json load_orders" in web.commands
    assert paused.dags == {"load_orders": False}

    strict, _, _ = make_client(CliAirflow(paused=True), paused="fail")
    with pytest.raises(DagPausedError):
        strict.trigger(REQUEST)


def test_a_dag_id_too_long_for_invoke_rest_api_is_triggered() -> None:
    long_dag = "ingest_" + "x" * 60
    request = TriggerRequest(long_dag, REQUEST.dag_run_id, {}, "r", EVENT)
    cli = CliAirflow(dag_id=long_dag)
    client, _, _ = make_client(cli)

    assert client.trigger(request).outcome == CREATED
    assert client.trigger(request).outcome == ALREADY_TRIGGERED


# --- wiring ------------------------------------------------------------------------------------


def test_cli_token_is_a_valid_mwaa_transport_and_selects_this_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    # Keys in the environment, as a Lambda has them; a developer's own AWS profile must not matter.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    airflow = {"mwaa_environment": "analytics", "aws_region": "eu-west-1"}
    raw = {"airflow": {**airflow, "mwaa_transport": "cli_token"}, "routes": [{"dag_id": "d"}]}
    config = from_mapping(raw, "test")
    default = from_mapping({**raw, "airflow": airflow}, "test")

    chosen = Setup(config.airflow, core.NoCredentials()).transport(requests.Session())
    other = Setup(default.airflow, core.NoCredentials()).transport(requests.Session())

    assert isinstance(chosen, CliTokenTransport)
    assert chosen.max_path is None
    assert isinstance(other, InvokeRestApiTransport)


def test_invoke_rest_api_names_the_cli_token_setting_for_a_long_dag_id() -> None:
    transport = InvokeRestApiTransport(settings(mwaa_transport="invoke_rest_api"), session=AwsSession(MwaaApi()))
    with pytest.raises(InvalidRequestError, match="mwaa_transport = 'cli_token'"):
        transport.send("v2", ApiCall("GET", f"/dags/{'d' * 60}"), TIMEOUT)


def test_importing_the_transport_does_not_import_boto3() -> None:
    code = "import sys, shared.mwaa_cli; sys.exit(bool({'boto3', 'botocore'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
