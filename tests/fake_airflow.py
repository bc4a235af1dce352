"""An in-process Airflow REST API, mounted on a ``requests.Session`` as a transport adapter.

It keeps DAGs and runs like Airflow does (unique run ids), checks credentials the way each version does,
and lets a test queue faults in front of any request. Unit tests use it; the integration tests use a real
Airflow. ``version="experimental"`` plays Airflow 1.10's experimental API as its 1.10.15 source has it
(``airflow/www/api/experimental/endpoints.py``): Airflow 1.10 does not install on this Python, so that mode
follows the source, not a measurement.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
from requests.adapters import BaseAdapter

BASE_URL = "http://airflow.test"
GOOD_TOKEN = "header.eyJleHAiOiA0MTAyNDQ0ODAwfQ.sig"  # exp = 2100-01-01
#: When the experimental API's runs start; each new run is one microsecond later, so all fall in one second.
EXPERIMENTAL_NOW = datetime(2026, 11, 23, 8, 13, 20, 500000, tzinfo=UTC)

Fault = Callable[[requests.PreparedRequest], "requests.Response | Exception | None"]


def response(status: int, body: Any = None, headers: dict[str, str] | None = None) -> requests.Response:
    """A ``requests.Response`` with a JSON body."""
    resp = requests.Response()
    resp.status_code = status
    resp._content = b"" if body is None else json.dumps(body).encode()
    resp.headers.update({"Content-Type": "application/json", **(headers or {})})
    resp.encoding = "utf-8"
    return resp


def traceback_page() -> requests.Response:
    """Airflow 1.10's answer to an exception its endpoint does not catch: an HTML 500 page."""
    resp = response(500, None, {"Content-Type": "text/html; charset=utf-8"})
    resp._content = b"<h1>Ooops!</h1><pre>Something bad has happened.</pre>"
    return resp


@dataclass
class FakeAirflow(BaseAdapter):
    """Airflow 3 (``version="v2"``), Airflow 2 (``"v1"``) or 1.10 (``"experimental"``) with a handful of DAGs."""

    version: str = "v2"
    dags: dict[str, bool] = field(default_factory=lambda: {"load_orders": False})  # dag_id -> is_paused
    runs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    valid_tokens: set[str] = field(default_factory=lambda: {GOOD_TOKEN})
    token_requests: int = 0
    password: str = "secret"

    def __post_init__(self) -> None:
        super().__init__()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Answer one request (the adapter interface)."""
        parts = urlsplit(request.url or "")
        self.calls.append((request.method or "", unquote(parts.path) + (f"?{parts.query}" if parts.query else "")))
        if self.faults:
            outcome = self.faults.pop(0)(request)
            if isinstance(outcome, Exception):
                raise outcome
            if outcome is not None:
                outcome.request = request
                return outcome
        resp = self._route(request, parts.path)
        resp.request = request
        return resp

    def close(self) -> None:
        """Nothing to release."""

    # --- behaviour ----------------------------------------------------------------------------

    def _route(self, request: requests.PreparedRequest, path: str) -> requests.Response:
        body = json.loads(request.body) if request.body else None
        if path == "/auth/token" and self.version == "v2":
            self.token_requests += 1
            if body == {"username": "admin", "password": self.password}:
                return response(201, {"access_token": GOOD_TOKEN})
            return response(401, {"detail": "Invalid credentials"})
        prefix = f"/api/{self.version}"
        if not path.startswith(prefix):
            return response(404, {"detail": "Not Found"})
        path = path.removeprefix(prefix)
        if path == "/version" and self.version != "experimental":
            return response(200, {"version": "3.1.8" if self.version == "v2" else "2.11.0"})
        denied = self._auth_failure(request)
        if denied is not None:
            return denied
        segments = [unquote(s) for s in path.strip("/").split("/")]
        if self.version == "experimental":
            return self._experimental_route(request.method or "GET", segments, body)
        if segments == ["dags"]:
            return response(200, {"dags": [], "total_entries": len(self.dags)})
        if len(segments) >= 2 and segments[0] == "dags":
            return self._dag_route(request.method or "GET", segments[1], segments[2:], body)
        return response(404, {"detail": "Not Found"})

    def _auth_failure(self, request: requests.PreparedRequest) -> requests.Response | None:
        header = request.headers.get("Authorization", "")
        if self.version == "experimental":
            # Played with auth_backend = airflow.api.auth.backend.default, which lets every request in: what Airflow's
            # docs suggest when a proxy in front (IAP) does the authenticating.
            return None
        if self.version == "v1":
            return None if header.startswith("Basic ") else response(401, {"title": "Unauthorized"})
        if not header.startswith("Bearer "):
            return response(401, {"detail": "Not authenticated"})
        if header.removeprefix("Bearer ") not in self.valid_tokens:
            return response(403, {"detail": "Invalid JWT token"})
        return None

    def _dag_route(self, method: str, dag_id: str, rest: list[str], body: Any) -> requests.Response:
        if dag_id not in self.dags:
            return response(404, {"detail": f"The Dag with ID: `{dag_id}` was not found"})
        if not rest:
            if method == "PATCH":
                self.dags[dag_id] = bool(body["is_paused"])
            return response(200, {"dag_id": dag_id, "is_paused": self.dags[dag_id]})
        if rest == ["dagRuns"] and method == "POST":
            return self._create_run(dag_id, body)
        if len(rest) == 2 and rest[0] == "dagRuns":
            run = self.runs.get((dag_id, rest[1]))
            return response(200, run) if run else response(404, {"detail": "DagRun not found"})
        return response(404, {"detail": "Not Found"})

    def _create_run(self, dag_id: str, body: dict[str, Any]) -> requests.Response:
        if self.version == "v2":
            allowed = {
                "dag_run_id",
                "logical_date",
                "conf",
                "note",
                "data_interval_start",
                "data_interval_end",
                "run_after",
            }
            unknown = set(body) - allowed
            if unknown or "logical_date" not in body:
                return response(422, {"detail": [{"type": "extra_forbidden", "loc": ["body", *sorted(unknown)]}]})
        elif "logical_date" in body and body["logical_date"] is None:
            return response(400, {"title": "Bad Request", "detail": "None is not of type 'string'"})
        run_id = body["dag_run_id"]
        if (dag_id, run_id) in self.runs:
            return response(409, {"detail": "Unique constraint violation"})
        return response(200, self._add_run(dag_id, run_id, body.get("conf", {}), "queued"))

    def _add_run(self, dag_id: str, run_id: str, conf: Any, state: str, **extra: Any) -> dict[str, Any]:
        run = {"dag_id": dag_id, "dag_run_id": run_id, "conf": conf, "state": state, **extra}
        self.runs[(dag_id, run_id)] = run
        return run

    # --- Airflow 1.10's experimental API ------------------------------------------------------

    def _experimental_route(self, method: str, segments: list[str], body: Any) -> requests.Response:
        if segments == ["test"]:
            return response(200, {"status": "OK"})
        if len(segments) < 3 or segments[0] != "dags":
            return response(404, {"detail": "Not Found"})
        dag_id, rest = segments[1], segments[2:]
        if rest == ["dag_runs"] and method == "POST":
            return self._experimental_trigger(dag_id, body)
        if rest == ["dag_runs"]:
            if dag_id not in self.dags:
                # This endpoint turns every AirflowException into a 400.
                return response(400, {"error": f"Dag id {dag_id} not found in DagModel"})
            return response(200, self._experimental_runs(dag_id))
        if rest[0] == "paused" and len(rest) <= 2:
            if dag_id not in self.dags:
                return traceback_page()  # DagModel.get_dagmodel(dag_id) is None; .is_paused raises
            if len(rest) == 2:
                self.dags[dag_id] = rest[1] == "true"
                return response(200, {"response": "ok"})
            return response(200, {"is_paused": self.dags[dag_id]})
        return response(404, {"detail": "Not Found"})

    def _experimental_trigger(self, dag_id: str, body: dict[str, Any]) -> requests.Response:
        # In the order 1.10.15 checks: the endpoint reads the body, then trigger_dag looks the DAG and run id up.
        replace_microseconds = body.get("replace_microseconds", "true")
        if not isinstance(replace_microseconds, str):
            return traceback_page()  # to_boolean() calls .lower() on it
        if dag_id not in self.dags:
            return response(404, {"error": f"Dag id {dag_id} not found in DagModel"})
        execution_date = EXPERIMENTAL_NOW + timedelta(microseconds=len(self.runs))
        if replace_microseconds.lower() in ("true", "t", "y", "yes", "1"):
            execution_date = execution_date.replace(microsecond=0)
        stamp = execution_date.isoformat()
        run_id = body.get("run_id") or f"manual__{stamp}"
        if (dag_id, run_id) in self.runs:
            return response(400, {"error": f"Run id {run_id} already exists for dag id {dag_id}"})
        if any(run["dag_id"] == dag_id and run.get("execution_date") == stamp for run in self.runs.values()):
            return traceback_page()  # the (dag_id, execution_date) unique key: an IntegrityError nobody catches
        self._add_run(dag_id, run_id, body.get("conf") or {}, "running", execution_date=stamp)
        message = f"Created <DagRun {dag_id} @ {stamp}: {run_id}, externally triggered: True>"
        return response(200, {"message": message, "execution_date": stamp, "run_id": run_id})

    def _experimental_runs(self, dag_id: str) -> list[dict[str, Any]]:
        """``GET /api/experimental/dags/<dag_id>/dag_runs`` (get_dag_runs in 1.10.15)."""
        runs = [run for (dag, _), run in self.runs.items() if dag == dag_id]
        return [
            {
                "id": number,
                "run_id": run["dag_run_id"],
                "state": run["state"],
                "dag_id": dag_id,
                "execution_date": run["execution_date"],
                "start_date": "",  # trigger_dag creates runs without one
                "dag_run_url": f"/admin/airflow/graph?dag_id={dag_id}&execution_date={run['execution_date']}",
            }
            for number, run in enumerate(runs, start=1)
        ]


def session_for(fake: FakeAirflow) -> requests.Session:
    """A session whose every request goes to ``fake``."""
    session = requests.Session()
    session.mount(BASE_URL, fake)
    return session
