"""Amazon MWAA's CLI token path: Airflow's REST calls carried as Airflow CLI commands.

InvokeRestApi carries a path of at most 64 characters, so a DAG whose id is longer than about 50 cannot be
reached through it. MWAA's other way in is its web server's CLI endpoint: ``mwaa:CreateCliToken`` mints a
token that lives 60 s, and ``POST https://{WebServerHostname}/aws_mwaa/cli`` runs one command of MWAA's
allowlist with it, answering 200 with the command's stdout and stderr (base64) whatever the command did. The
Lambda's role (or the role it assumes) needs ``airflow:CreateCliToken`` on
``arn:aws:airflow:REGION:ACCOUNT:environment/ENVIRONMENT``.

:class:`CliTokenTransport` turns the few calls :class:`~shared.airflow_client.AirflowClient` makes into
commands, and the commands' output back into the answer the REST API would have given, so the client's
semantics (a duplicate confirmed as our run, an unknown DAG, the paused policy, retries) apply unchanged.
Every command but ``version`` asks for ``-o json``; where Airflow 2 and 3 differ, Airflow 2's form comes first:

* ``GET /version``: ``version``.
* ``GET /dags?limit=N`` (doctor's access check): ``dags list --columns dag_id,is_paused``.
* ``GET /dags/{dag}``: the same list, the DAG picked from it; 404 when it is not there.
* ``PATCH /dags/{dag}`` ``{"is_paused": false}``: ``dags unpause {dag}`` (``true``: ``dags pause``).
* ``POST /dags/{dag}/dagRuns``: ``dags trigger -r {run} -c {conf} --no-replace-microseconds {dag}``.
* ``GET /dags/{dag}/dagRuns/{run}``: ``dags list-runs -d {dag}`` / ``dags list-runs {dag}``, the run picked
  and shaped as the REST API's (``dag_run_id``, ``state``); 404 when it is not there.
* ``GET /dags/{dag}/dagRuns?...``: the same list, filtered by ``run_id_pattern`` and paged.

A trigger counts as created only when its output holds our run (a JSON row with our DAG and run id);
``DagRunAlreadyExists`` is a 409; an unknown DAG (``DagNotFound``, "does not exist in 'dag' table") a 404;
a command that Airflow's argument parser or run-id check refuses a 400; anything else, an answer not
understood, a 502, which the client retries within the deadline. ``dags trigger -o json`` needs Airflow
2.6 or later. The run's note is not set: the CLI has no option for it.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import requests

from shared import credentials as core
from shared.config import AirflowSettings, is_loopback
from shared.credentials import Credentials
from shared.errors import AirflowError, ForbiddenError
from shared.mwaa import TokenBucket, api_version_of_environment, aws_errors, aws_session, mwaa_client
from shared.retry import retry_after_seconds
from shared.transport import ApiCall, ApiResponse, Retryable, no_auth, send

log = logging.getLogger("dag_trigger.mwaa")

#: How long a CreateCliToken token is valid (MWAA's documentation).
CLI_TOKEN_LIFETIME = timedelta(seconds=60)
#: A token is replaced this long before it lapses: a command may wait for the rate limit and its connection
#: before the web server checks the token, and must not arrive with one that has just run out.
CLI_TOKEN_MARGIN = timedelta(seconds=15)
CLI_PATH = "/aws_mwaa/cli"
#: What the Airflow CLI prints when it did not do what was asked, as the REST API's status for it.
_DAG_NOT_FOUND = re.compile(r"\bDagNotFound\b|\bDag id \S+ not found|\bDAG: \S+ does not exist in 'dag' table", re.I)
_DUPLICATE = re.compile(r"\bDagRunAlreadyExists\b|\balready exists\b")
_REFUSED = re.compile(r"airflow command error: |\brun.?id\b.*(?:does not match|is invalid)", re.I)
#: ``dags pause``/``unpause`` change only DAGs not already in that state, and say so when none is left.
_ALREADY_SO = re.compile(r"No (?:un)?paused DAGs were found")
_VERSION = re.compile(r"\d+\.\d+\S*")
#: The CLI colours its output when it believes it writes to a terminal.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_DAG_PATH = re.compile(r"/dags/(?P<dag>[^/]+)")
_RUNS_PATH = re.compile(r"/dags/(?P<dag>[^/]+)/dagRuns")
_RUN_PATH = re.compile(r"/dags/(?P<dag>[^/]+)/dagRuns/(?P<run>[^/]+)")
_LIST_DAGS = "dags list -o json --columns dag_id,is_paused"


@dataclass(frozen=True)
class CliOutput:
    """What one command printed, decoded."""

    stdout: str
    stderr: str

    @property
    def last_line(self) -> str:
        """The last line printed to stderr (else stdout): a traceback's exception, or the CLI's own message."""
        for text in (self.stderr, self.stdout):
            lines = [line.strip() for line in _ANSI.sub("", text).splitlines() if line.strip()]
            if lines:
                return lines[-1][:500]
        return "the command printed nothing"


@dataclass(frozen=True)
class CliCommand:
    """A CLI command, and how its output reads as the REST API's answer."""

    text: str
    read: Callable[[CliOutput], ApiResponse]


def translate(call: ApiCall, version: str) -> CliCommand:
    """The command that does what ``call`` asks of API ``version`` (``v1``: Airflow 2, ``v2``: Airflow 3)."""
    if version not in ("v1", "v2"):
        raise AirflowError(f"MWAA's CLI token path speaks to Airflow 2 and 3, not API {version!r}")
    method, path = call.method, call.path
    if (method, path) == ("GET", "/version"):
        return CliCommand("version", _read_version)
    if (method, path) == ("GET", "/dags"):
        # Costs what `version` does (the CLI's start-up is most of any command's time), and says more.
        limit = int(call.query.get("limit", "100"))
        return CliCommand(_LIST_DAGS, lambda out: _read_dags(out, limit))
    if match := _DAG_PATH.fullmatch(path):
        dag_id = unquote(match["dag"])
        if method == "GET":
            # `dags details` is not on MWAA's allowlist; `dags list` shows every DAG with its paused flag.
            return CliCommand(_LIST_DAGS, lambda out: _read_dag(out, dag_id))
        if method == "PATCH" and isinstance(call.body, dict) and "is_paused" in call.body:
            paused = bool(call.body["is_paused"])
            verb = "pause" if paused else "unpause"
            return CliCommand(
                shlex.join(["dags", verb, "-o", "json", dag_id]), lambda out: _read_pause(out, dag_id, paused)
            )
    elif match := _RUNS_PATH.fullmatch(path):
        dag_id = unquote(match["dag"])
        if method == "POST":
            return _trigger(dag_id, call.body)
        if method == "GET":
            query = dict(call.query)
            return CliCommand(_list_runs(dag_id, version), lambda out: _read_run_list(out, query))
    elif (match := _RUN_PATH.fullmatch(path)) and method == "GET":
        dag_id, run_id = unquote(match["dag"]), unquote(match["run"])
        return CliCommand(_list_runs(dag_id, version), lambda out: _read_run(out, dag_id, run_id))
    raise AirflowError(f"MWAA's CLI token path cannot carry {method} {path}")


def _trigger(dag_id: str, body: Any) -> CliCommand:
    if not isinstance(body, dict) or not isinstance(body.get("dag_run_id"), str):
        raise AirflowError(f"MWAA's CLI token path triggers only with a run id (DAG {dag_id!r})")
    run_id = body["dag_run_id"]
    conf = json.dumps(body.get("conf") or {}, separators=(",", ":"))
    # Without --no-replace-microseconds Airflow 2 truncates the logical date to the second, and two events in
    # that second clash on it. Airflow 3 sets no logical date at all when none is given (as the REST body's null).
    text = shlex.join(["dags", "trigger", "-o", "json", "-r", run_id, "-c", conf, "--no-replace-microseconds", dag_id])
    return CliCommand(text, lambda out: _read_trigger(out, dag_id, run_id))


def _list_runs(dag_id: str, version: str) -> str:
    # Airflow 2 names the DAG with -d; Airflow 3 takes it as a positional argument. No -s: Airflow 3 filters
    # it on the logical date, which our runs do not have.
    return shlex.join(["dags", "list-runs", "-o", "json", *(["-d"] if version == "v1" else []), dag_id])


# --- reading the output ---------------------------------------------------------------------------


def _answer(status: int, body: Any) -> ApiResponse:
    return ApiResponse(status, json.dumps(body))


def _rows(stdout: str) -> list[dict[str, Any]] | None:
    """The JSON list ``-o json`` printed, or ``None`` when stdout holds none.

    Airflow 2 also logs to stdout, in lines that start with ``[`` too (``[2026-11-26T01:47:28.368+0000]
    {plugins.py:37} INFO - ...``): the last line that parses as a list of objects is the answer.
    """
    for line in reversed(_ANSI.sub("", stdout).splitlines()):
        line = line.strip()
        if not line.startswith("["):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, list) and all(isinstance(row, dict) for row in value):
            return value
    return None


def _failure(out: CliOutput) -> ApiResponse:
    """A command that did not do what was asked, as the status the REST API would have given."""
    text = f"{out.stderr}\n{out.stdout}"
    if _DAG_NOT_FOUND.search(text):
        status = 404
    elif _REFUSED.search(text):
        status = 400
    else:
        # Not understood, so it may pass next time (a database hiccup, a web server restarting); the client
        # retries a 5xx only within the deadline.
        status = 502
    return _answer(status, {"detail": out.last_line})


def _flag(value: Any) -> bool:
    # The CLI prints Python's "True"/"False" as strings.
    return value is True or str(value).lower() == "true"


def _read_version(out: CliOutput) -> ApiResponse:
    lines = [line.strip() for line in _ANSI.sub("", out.stdout).splitlines() if line.strip()]
    if lines and _VERSION.fullmatch(lines[-1]):
        return _answer(200, {"version": lines[-1]})
    return _failure(out)


def _read_dags(out: CliOutput, limit: int) -> ApiResponse:
    rows = _rows(out.stdout)
    if rows is None:
        return _failure(out)
    dags = [{"dag_id": row.get("dag_id"), "is_paused": _flag(row.get("is_paused"))} for row in rows]
    return _answer(200, {"dags": dags[:limit], "total_entries": len(dags)})


def _read_dag(out: CliOutput, dag_id: str) -> ApiResponse:
    rows = _rows(out.stdout)
    if rows is None:
        return _failure(out)
    dag = next((row for row in rows if row.get("dag_id") == dag_id), None)
    if dag is None:
        return _answer(404, {"detail": f"DAG {dag_id} is not among the {len(rows)} DAG(s) `dags list` shows"})
    return _answer(200, {"dag_id": dag_id, "is_paused": _flag(dag.get("is_paused"))})


def _read_pause(out: CliOutput, dag_id: str, paused: bool) -> ApiResponse:
    rows = _rows(out.stdout) or []
    # "None found" also answers an unknown DAG; the client only unpauses a DAG it has just read.
    if any(row.get("dag_id") == dag_id for row in rows) or _ALREADY_SO.search(out.stdout):
        return _answer(200, {"dag_id": dag_id, "is_paused": paused})
    return _failure(out)


def _read_trigger(out: CliOutput, dag_id: str, run_id: str) -> ApiResponse:
    rows = _rows(out.stdout) or []
    run = next((row for row in rows if row.get("dag_id") == dag_id and row.get("dag_run_id") == run_id), None)
    if run is not None:
        return _answer(200, run)
    # Like the REST API's 409, this only says some unique key clashed (on Airflow 2 the logical date may be
    # another run's); the client confirms our run id before calling it ours.
    if _DUPLICATE.search(f"{out.stderr}\n{out.stdout}"):
        return _answer(409, {"detail": out.last_line})
    return _failure(out)


def _runs(out: CliOutput) -> list[dict[str, Any]] | None:
    """``dags list-runs`` rows in the REST API's shape: ``run_id`` is ``dag_run_id``, a missing date ``null``."""
    rows = _rows(out.stdout)
    if rows is None:
        return None
    return [
        {
            **{key: value if value != "" else None for key, value in row.items() if key != "run_id"},
            "dag_run_id": row.get("run_id"),
        }
        for row in rows
    ]


def _read_run(out: CliOutput, dag_id: str, run_id: str) -> ApiResponse:
    runs = _runs(out)
    if runs is None:
        return _failure(out)
    run = next((run for run in runs if run["dag_run_id"] == run_id), None)
    if run is None:
        return _answer(404, {"detail": f"DAG run {run_id} of DAG {dag_id} not found"})
    return _answer(200, run)


def _read_run_list(out: CliOutput, query: Mapping[str, str]) -> ApiResponse:
    runs = _runs(out)
    if runs is None:
        return _failure(out)
    # Only the run id narrows here: the date filters only save the client reading runs it compares by id anyway.
    pattern = query.get("run_id_pattern")
    if pattern:
        runs = [run for run in runs if pattern in str(run["dag_run_id"])]
    offset, limit = int(query.get("offset", "0")), int(query.get("limit", "100"))
    return _answer(200, {"dag_runs": runs[offset : offset + limit], "total_entries": len(runs)})


# --- moving the commands ---------------------------------------------------------------------------


class CliToken(Credentials):
    """A CreateCliToken token and the web server it is for; minted again shortly before its 60 s run out."""

    def __init__(self, client: Any, environment: str, region: str, where: str) -> None:
        super().__init__()
        self.host: str | None = None
        self._client = client
        self._environment = environment
        self._region = region
        self._where = where

    @property
    def valid(self) -> bool:
        """A token is cached and not within :data:`CLI_TOKEN_MARGIN` of its end (the base's margin is 60 s)."""
        return self.token is not None and self.expiry is not None and core.utcnow() < self.expiry - CLI_TOKEN_MARGIN

    def refresh(self, session: requests.Session, timeout: tuple[float, float]) -> None:
        """``mwaa:CreateCliToken``, with the botocore client's own timeouts."""
        permission = f"airflow:CreateCliToken on arn:aws:airflow:{self._region}:ACCOUNT:environment/{self._environment}"
        minted_at = core.utcnow()
        with aws_errors(
            f"CreateCliToken on {self._where}",
            environment=self._environment,
            region=self._region,
            permission=permission,
        ):
            answer = self._client.create_cli_token(Name=self._environment)
        self.token, self.host = answer["CliToken"], answer["WebServerHostname"]
        # Timed from before the call: the token's life began somewhere in it.
        self.expiry = minted_at + CLI_TOKEN_LIFETIME
        log.debug("minted a CLI token for %s, web server %s", self._where, self.host)


def cli_url(host: str) -> str:
    """The web server's CLI endpoint; plain http only on loopback (a local fake), where no network sees the token."""
    scheme = "http" if is_loopback(urlsplit(f"//{host}").hostname or "") else "https"
    return f"{scheme}://{host}{CLI_PATH}"


class CliTokenTransport:
    """Each Airflow API call as one command on the environment's web server CLI, with a cached CLI token.

    The token is minted once and shared by every call (and thread) until shortly before it lapses, and minted
    again once if the web server refuses it. Calls per second are limited by the same :class:`TokenBucket` as
    InvokeRestApi's. Which CLI dialect to speak follows the API version the client passes, learned once from
    ``version`` (:meth:`known_version`).
    """

    max_path: int | None = None
    probe_with_auth = True
    unauthorized_hint = ""
    forbidden_hint = ""

    def __init__(
        self,
        settings: AirflowSettings,
        session: Any | None = None,
        http: requests.Session | None = None,
        bucket: TokenBucket | None = None,
    ) -> None:
        self.environment = settings.mwaa_environment or ""
        aws = session or aws_session(settings)
        self.region = settings.aws_region or aws.region_name
        self.where = f"MWAA environment {self.environment} ({self.region})"
        self.token = CliToken(mwaa_client(aws, self.region, settings), self.environment, self.region, self.where)
        self._http = http or requests.Session()
        # The token is the only credential: a session-level auth that adds nothing keeps requests from
        # reading ~/.netrc (as HttpTransport does).
        self._http.auth = no_auth
        self._bucket = bucket or TokenBucket(settings.rate_limit)

    def known_version(self, timeout: tuple[float, float]) -> str | None:
        """Asked of the CLI (``version``), which answers the same on Airflow 2 and 3."""
        return api_version_of_environment(self, timeout)

    def send(self, version: str, call: ApiCall, timeout: tuple[float, float]) -> ApiResponse:
        """Run the command for ``call`` and read its output as the REST API's answer."""
        command = translate(call, version)
        out = self._run(command.text, timeout)
        response = command.read(out)
        log.debug("%s: %r answered as %d", self.where, command.text, response.status)
        return response

    def _run(self, text: str, timeout: tuple[float, float]) -> CliOutput:
        # The command's words, not its arguments: a conf has no place in an error message.
        doing = f"CLI {text.split(' -', 1)[0]!r} on {self.where}"
        response = self._post(text, timeout)
        if response.status_code in (401, 403):
            log.info(
                "%s: the web server refused the CLI token (%d); minting a new one once", doing, response.status_code
            )
            self.token.invalidate()
            response = self._post(text, timeout)
        return self._output(response, doing)

    def _post(self, text: str, timeout: tuple[float, float]) -> requests.Response:
        self._bucket.acquire(max(timeout))
        self.token.before_request(self._http, timeout)
        url = cli_url(self.token.host or "")
        return send(
            self._http,
            "POST",
            url,
            timeout,
            data=text.encode(),
            headers={"Content-Type": "text/plain"},
            auth=self.token,
        )

    def _output(self, response: requests.Response, doing: str) -> CliOutput:
        status = response.status_code
        if status == 200:
            try:
                body = response.json()
                return CliOutput(_decode(body["stdout"]), _decode(body["stderr"]))
            except (ValueError, KeyError, TypeError, binascii.Error):
                raise AirflowError(
                    f"{doing}: the web server answered 200 without the CLI's stdout and stderr; is "
                    f"{self.token.host} the environment's web server?",
                    status=status,
                ) from None
        detail = response.text[:200].strip()
        if response.is_redirect:
            raise AirflowError(
                f"{doing} was redirected to {response.headers.get('Location', '?').split('?')[0]}; the CLI token is "
                "never sent across redirects",
                status=status,
            )
        if status in (401, 403):
            raise ForbiddenError(
                f"{doing}: the web server refused a freshly minted CLI token ({status}): {detail}", status=status
            )
        if status == 429 or status >= 500:
            raise Retryable(
                f"{doing}: the web server answered {status}: {detail} (MWAA also answers 500 to a command off its "
                "CLI allowlist)",
                status=status,
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )
        raise AirflowError(f"{doing}: the web server answered {status}: {detail}", status=status)

    def close(self) -> None:
        """Close pooled connections."""
        self._http.close()


def _decode(value: Any) -> str:
    return base64.b64decode(value, validate=True).decode("utf-8", errors="replace")
