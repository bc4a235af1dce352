"""The Airflow REST client: trigger requests in, outcomes out.

Every call goes through a transport (:mod:`shared.transport`: HTTP with a credential provider, or MWAA),
with explicit connect and read timeouts, and every retry bounded by the caller's deadline. Speaks Airflow 3
(``/api/v2``), Airflow 2 (``/api/v1``) and Airflow 1.10's experimental API (``/api/experimental``, Cloud
Composer 1), detected once from the server or taken from config. What differs between them (paths, bodies,
how a duplicate looks, how a run is read back) is one small class per API; retries, deadlines, the paused
policy and confirming a duplicate as our run are written once, in :class:`AirflowClient`, whatever carries
the calls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any, TypeVar
from urllib.parse import quote

from shared.config import AirflowSettings
from shared.errors import (
    AirflowError,
    DagNotFoundError,
    DagPausedError,
    ForbiddenError,
    InvalidRequestError,
    RetryableAirflowError,
    UnauthorizedError,
)
from shared.events import event_time
from shared.retry import Backoff, Deadline, retry_after_seconds
from shared.transport import ApiCall, ApiResponse, Retryable, Transport
from shared.triggers import TriggerRequest

log = logging.getLogger("dag_trigger.airflow")
T = TypeVar("T")

CREATED = "created"
ALREADY_TRIGGERED = "already_triggered"
#: How long a DAG's paused flag is trusted before it is read again; saves a request per event.
DAG_INFO_TTL = 30.0
#: A server that asks for a longer Retry-After than this is treated as down for now.
MAX_RETRY_AFTER = 60.0
#: Runs read per page when a run must be found in its DAG's run list.
_RUN_PAGE = 100


@dataclass(frozen=True)
class TriggerResult:
    """What became of one trigger request."""

    dag_id: str
    dag_run_id: str
    outcome: str
    state: str | None
    attempts: int
    warnings: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        """The result as a JSON-able dict (CLI output, logs)."""
        return {
            "dag_id": self.dag_id,
            "dag_run_id": self.dag_run_id,
            "outcome": self.outcome,
            "state": self.state,
            "attempts": self.attempts,
            "warnings": list(self.warnings),
        }


def _dag_path(dag_id: str) -> str:
    return f"/dags/{quote(dag_id, safe='')}"


class _StableApi:
    """Airflow 3 (``/api/v2``) and Airflow 2 (``/api/v1``): DAGs and runs are resources; a duplicate is a 409."""

    #: Answers 200 (or Airflow's own 401) on every server that speaks this API.
    probe = "/version"
    permission_hint = (
        "The user needs permission to read the DAG and create DAG runs (Airflow's 'User' role, or can_read on DAGs "
        "and can_create on DAG Runs)"
    )

    def __init__(self, version: str) -> None:
        self.version = version

    def trigger(self, request: TriggerRequest) -> tuple[str, dict[str, Any]]:
        """The path and body that create ``request``'s run."""
        body: dict[str, Any] = {"dag_run_id": request.dag_run_id, "conf": dict(request.conf), "note": request.note}
        if self.version == "v2":
            # Airflow 3 requires the field; null means "no logical date", so runs never clash on it.
            body["logical_date"] = None
        return f"{_dag_path(request.dag_id)}/dagRuns", body

    def is_duplicate(self, response: ApiResponse) -> bool:
        """Whether Airflow refused the run because one of its unique keys is taken (perhaps by our run id)."""
        return response.status == 409

    def read_run(self, client: AirflowClient, request: TriggerRequest, deadline: Deadline) -> dict[str, Any] | None:
        """The run with the request's id, or ``None``."""
        path = f"{_dag_path(request.dag_id)}/dagRuns/{quote(request.dag_run_id, safe='')}"
        limit = client.transport.max_path
        if limit is not None and len(path) > limit:
            return self._find_run(client, request, deadline)
        response = client._call(ApiCall("GET", path), deadline)
        if response.status == 404:
            return None
        client._raise_for_status(response, f"reading run {request.dag_run_id!r} of DAG {request.dag_id!r}")
        return client._json(response)

    def _find_run(self, client: AirflowClient, request: TriggerRequest, deadline: Deadline) -> dict[str, Any] | None:
        """The run, found in the DAG's run list (its own URL is longer than the transport carries).

        Our run was created after the event happened, so only runs from then on are read, newest first;
        Airflow 3 also narrows them by run id (a substring match, so the id is compared exactly here).
        """
        since = event_time(request.event).astimezone(UTC).isoformat()
        if self.version == "v2":
            query = {"run_id_pattern": request.dag_run_id, "run_after_gte": since, "order_by": "-run_after"}
        else:
            query = {"execution_date_gte": since, "order_by": "-execution_date"}
        offset = 0
        while True:
            page = {**query, "limit": str(_RUN_PAGE), "offset": str(offset)}
            response = client._call(ApiCall("GET", f"{_dag_path(request.dag_id)}/dagRuns", page), deadline)
            client._raise_for_status(response, f"listing runs of DAG {request.dag_id!r}")
            runs = client._json(response).get("dag_runs") or []
            found = next((run for run in runs if run.get("dag_run_id") == request.dag_run_id), None)
            if found is not None or len(runs) < _RUN_PAGE:
                return found
            offset += len(runs)

    def read_dag(self, client: AirflowClient, dag_id: str, deadline: Deadline) -> dict[str, Any]:
        """The DAG's details, ``is_paused`` among them."""
        response = client._call(ApiCall("GET", _dag_path(dag_id)), deadline)
        if response.status == 404:
            raise client._dag_not_found(dag_id)
        client._raise_for_status(response, f"reading DAG {dag_id!r}")
        return client._json(response)

    def unpause(self, dag_id: str) -> ApiCall:
        """The call that unpauses the DAG."""
        return ApiCall("PATCH", _dag_path(dag_id), {"update_mask": "is_paused"}, {"is_paused": False})

    def check_access(self, client: AirflowClient, deadline: Deadline) -> str:
        """An authenticated call, and what it says about the user."""
        response = client._call(ApiCall("GET", "/dags", {"limit": "1"}), deadline)
        client._raise_for_status(response, "listing DAGs")
        return f"user sees {client._json(response).get('total_entries', '?')} DAG(s)"

    def server_version(self, client: AirflowClient, deadline: Deadline) -> str:
        """Airflow's version string."""
        # Airflow 2 may require a login for /version; a proxy in front of Airflow (Composer, IAP) always does.
        auth = self.version == "v1" or client.transport.probe_with_auth
        body = client._json(client._call(ApiCall("GET", "/version", auth=auth), deadline))
        return str(body.get("version", "unknown"))


class _ExperimentalApi:
    """Airflow 1.10's experimental API (Cloud Composer 1), as the 1.10.15 source has it.

    Errors are ``{"error": "..."}``; a duplicate run id is a 400; no endpoint reads a run by its id or
    reports Airflow's version.
    """

    version = "experimental"
    #: Exists only to check authentication: 200 ``{"status": "OK"}``.
    probe = "/test"
    permission_hint = (
        "Airflow 1.10 also answers 403 to every experimental API call while [api] auth_backend is "
        "airflow.api.auth.backend.deny_all, its default since 1.10.11"
    )

    def trigger(self, request: TriggerRequest) -> tuple[str, dict[str, Any]]:
        """The path and body that create ``request``'s run."""
        # Left out, Airflow truncates the execution date to the second and a second event in that second fails
        # on the (dag_id, execution_date) unique key. A string: Airflow calls .lower() on it.
        body = {"run_id": request.dag_run_id, "conf": dict(request.conf), "replace_microseconds": "false"}
        return f"{_dag_path(request.dag_id)}/dag_runs", body

    def is_duplicate(self, response: ApiResponse) -> bool:
        """Whether Airflow refused the run because its id is taken."""
        # DagRunAlreadyExists is an AirflowBadRequest: a 400 like any malformed request, told apart by its text
        # ("Run id X already exists for dag id Y").
        return response.status == 400 and "already exists" in response.detail

    def read_run(self, client: AirflowClient, request: TriggerRequest, deadline: Deadline) -> dict[str, Any] | None:
        """The run with the request's id, or ``None``."""
        # A single run can only be read by its execution date, which we do not know: look for our id in the list.
        runs = self._runs(client, request.dag_id, deadline)
        return next((run for run in runs if run.get("run_id") == request.dag_run_id), None)

    def read_dag(self, client: AirflowClient, dag_id: str, deadline: Deadline) -> dict[str, Any]:
        """Whether the DAG is paused, in the shape the stable API reads a DAG."""
        response = client._call(ApiCall("GET", f"{_dag_path(dag_id)}/paused"), deadline)
        if response.status == 500:
            # /paused answers 500 for an unknown DAG (it dereferences the missing DagModel). The run list says
            # "not found" plainly; if the DAG does exist, the 500 is a real failure and raised below.
            self._runs(client, dag_id, deadline)
        client._raise_for_status(response, f"reading whether DAG {dag_id!r} is paused")
        return {"dag_id": dag_id, "is_paused": bool(client._json(response).get("is_paused"))}

    def unpause(self, dag_id: str) -> ApiCall:
        """The call that unpauses the DAG (a GET, in this API)."""
        return ApiCall("GET", f"{_dag_path(dag_id)}/paused/false")

    def check_access(self, client: AirflowClient, deadline: Deadline) -> str:
        """An authenticated call (there is no DAG list to count), and what it says."""
        response = client._call(ApiCall("GET", "/test"), deadline)
        client._raise_for_status(response, "calling /api/experimental/test")
        return f"/api/experimental/test answered {client._json(response).get('status', '?')}"

    def server_version(self, client: AirflowClient, deadline: Deadline) -> str:
        """No endpoint reports it; the stable API's absence says the server is older than Airflow 2."""
        return "1.10 or older (the experimental API does not report its version)"

    def _runs(self, client: AirflowClient, dag_id: str, deadline: Deadline) -> list[dict[str, Any]]:
        response = client._call(ApiCall("GET", f"{_dag_path(dag_id)}/dag_runs"), deadline)
        # This endpoint answers every failure with 400, an unknown DAG ("Dag id X not found in DagModel") included.
        if response.status == 400 and "not found" in response.detail:
            raise client._dag_not_found(dag_id)
        client._raise_for_status(response, f"listing the runs of DAG {dag_id!r}")
        runs = _json_body(response)
        if not isinstance(runs, list):
            raise _unexpected_json(response)
        return [run for run in runs if isinstance(run, dict)]


_Api = _StableApi | _ExperimentalApi
#: Every API the client speaks, in the order auto-detection tries them: the newest first.
_APIS: dict[str, _Api] = {
    "v2": _StableApi("v2"),
    "v1": _StableApi("v1"),
    "experimental": _ExperimentalApi(),
}


class AirflowClient:
    """Creates DAG runs, exactly once per trigger request, on Airflow 3, 2 or 1.10."""

    def __init__(
        self,
        settings: AirflowSettings,
        transport: Transport,
        *,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.backoff = backoff or Backoff()
        self._sleep = sleep
        self._clock = clock
        self._api_version: str | None = None if settings.api_version == "auto" else settings.api_version
        # Threads sharing the client (an SQS batch) wait for one probe rather than each sending their own.
        self._version_lock = threading.Lock()
        self._dag_cache: dict[str, tuple[float, dict[str, Any]]] = {}

    # --- public API ---------------------------------------------------------------------------

    def api_version(self, deadline: Deadline | None = None) -> str:
        """``v2`` (Airflow 3), ``v1`` (Airflow 2) or ``experimental`` (Airflow 1.10), asked of the server once."""
        if self._api_version is None:
            with self._version_lock:
                if self._api_version is None:
                    deadline = deadline or self._deadline()
                    self._api_version = self._with_retries(lambda: self._detect_version(deadline), deadline)[0]
        return self._api_version

    def server_version(self, deadline: Deadline | None = None) -> str:
        """Airflow's own version string (``GET /api/vN/version``; the experimental API has none)."""
        deadline = deadline or self._deadline()
        return self._api(deadline).server_version(self, deadline)

    def trigger(self, request: TriggerRequest, deadline: Deadline | None = None) -> TriggerResult:
        """Create the run ``request`` describes, or confirm it already exists.

        Retries what may pass (5xx, 429, timeouts, a duplicate that is not our run) until ``deadline``;
        raises a :class:`~shared.errors.TriggerError` for everything else.
        """
        deadline = deadline or self._deadline()
        result, attempts = self._with_retries(lambda: self._trigger_once(request, deadline), deadline)
        outcome, state, warnings = result
        log.debug(
            "dag run %s: dag=%s run_id=%s state=%s attempts=%d",
            outcome,
            request.dag_id,
            request.dag_run_id,
            state,
            attempts,
            extra={
                "dag_id": request.dag_id,
                "dag_run_id": request.dag_run_id,
                "outcome": outcome,
                "attempts": attempts,
            },
        )
        return TriggerResult(request.dag_id, request.dag_run_id, outcome, state, attempts, warnings)

    def check_access(self, deadline: Deadline | None = None) -> str:
        """An authenticated call that proves the credentials work; says what the server told it."""
        deadline = deadline or self._deadline()
        return self._api(deadline).check_access(self, deadline)

    def get_dag(self, dag_id: str, deadline: Deadline | None = None) -> dict[str, Any]:
        """The DAG's details, ``is_paused`` among them.

        Raises :class:`~shared.errors.DagNotFoundError` if Airflow does not know the DAG.
        """
        deadline = deadline or self._deadline()
        return self._api(deadline).read_dag(self, dag_id, deadline)

    def unpause(self, dag_id: str, deadline: Deadline | None = None) -> None:
        """Unpause a DAG (the ``paused = "unpause"`` policy)."""
        deadline = deadline or self._deadline()
        response = self._call(self._api(deadline).unpause(dag_id), deadline)
        self._raise_for_status(response, f"unpausing DAG {dag_id!r}")
        self._dag_cache.pop(dag_id, None)

    def close(self) -> None:
        """Close the transport's connections."""
        self.transport.close()

    # --- one attempt --------------------------------------------------------------------------

    def _trigger_once(self, request: TriggerRequest, deadline: Deadline) -> tuple[str, str | None, tuple[str, ...]]:
        warnings = self._check_paused(request.dag_id, deadline)
        api = self._api(deadline)
        path, body = api.trigger(request)
        response = self._call(ApiCall("POST", path, body=body), deadline)
        if response.status in (200, 201):
            return CREATED, self._json(response).get("state"), warnings
        if api.is_duplicate(response):
            return self._confirm_duplicate(request, response.status, deadline, warnings)
        if response.status == 404:
            raise self._dag_not_found(request.dag_id)
        self._raise_for_status(response, f"triggering DAG {request.dag_id!r}")
        raise AirflowError(f"unexpected status {response.status} triggering DAG {request.dag_id!r}")

    def _confirm_duplicate(
        self, request: TriggerRequest, status: int, deadline: Deadline, warnings: tuple[str, ...]
    ) -> tuple[str, str | None, tuple[str, ...]]:
        # A duplicate only says *some* unique key clashed (on Airflow 2 another run may hold the same
        # logical date). Only a run with our id proves the event was already turned into a run.
        existing = self._api(deadline).read_run(self, request, deadline)
        if existing is None:
            raise Retryable(
                f"Airflow answered {status} (already exists) for DAG {request.dag_id!r} but run "
                f"{request.dag_run_id!r} does not exist (another unique key clashed, such as the logical date); "
                "retrying",
                status=status,
            )
        return ALREADY_TRIGGERED, existing.get("state"), warnings

    def _check_paused(self, dag_id: str, deadline: Deadline) -> tuple[str, ...]:
        now = self._clock()
        cached = self._dag_cache.get(dag_id)
        if cached is None or now - cached[0] > DAG_INFO_TTL:
            cached = (now, self.get_dag(dag_id, deadline))
            self._dag_cache[dag_id] = cached
        if not cached[1].get("is_paused"):
            return ()
        policy = self.settings.paused
        if policy == "fail":
            raise DagPausedError(
                f"DAG {dag_id!r} is paused and paused = 'fail'; unpause it in Airflow, or set paused = 'warn' "
                "to queue runs while it is paused",
                status=None,
            )
        if policy == "unpause":
            self.unpause(dag_id, deadline)
            log.warning("unpaused DAG %s (paused = 'unpause')", dag_id, extra={"dag_id": dag_id})
            return (f"DAG {dag_id!r} was paused and has been unpaused",)
        message = f"DAG {dag_id!r} is paused: the run is queued and starts when someone unpauses the DAG"
        log.warning(message, extra={"dag_id": dag_id})
        return (message,)

    def _dag_not_found(self, dag_id: str) -> DagNotFoundError:
        return DagNotFoundError(
            f"DAG {dag_id!r} does not exist in Airflow at {self.transport.where} (or is not visible to this user); "
            "check the dag_id in your route and that the DAG file parsed without errors",
            status=404,
        )

    # --- transport ----------------------------------------------------------------------------

    def _deadline(self) -> Deadline:
        return Deadline(self.settings.deadline, self._clock)

    def _api(self, deadline: Deadline) -> _Api:
        return _APIS[self.api_version(deadline)]

    def _detect_version(self, deadline: Deadline) -> str:
        known = self.transport.known_version(self._timeout(deadline))
        if known is not None:
            return known
        # A proxy in front of Airflow (Composer, IAP) refuses every request without its credentials.
        at_proxy = self.transport.probe_with_auth
        for version, api in _APIS.items():
            response = self._send(version, ApiCall("GET", api.probe, auth=at_proxy), deadline)
            # Airflow 2 may require a login even for /version (Airflow 1.10 for /test); Airflow's own 401
            # still proves the API exists.
            if response.status == 200 or (response.status in (401, 403) and not at_proxy):
                log.info("Airflow at %s speaks API %s", self.transport.where, version)
                return version
            if response.status != 404:
                self._raise_for_status(response, "detecting the Airflow API version")
        raise AirflowError(
            f"no Airflow REST API at {self.transport.where} (/api/v2/version, /api/v1/version and "
            "/api/experimental/test are 404); check [airflow].url: it is the web server's base URL, without /api"
        )

    def _call(self, call: ApiCall, deadline: Deadline) -> ApiResponse:
        """One API call, in the version the server speaks."""
        return self._send(self.api_version(deadline), call, deadline)

    def _send(self, version: str, call: ApiCall, deadline: Deadline) -> ApiResponse:
        return self.transport.send(version, call, self._timeout(deadline))

    def _timeout(self, deadline: Deadline) -> tuple[float, float]:
        """The (connect, read) timeouts, clipped to what is left of the deadline."""
        remaining = deadline.remaining()
        if remaining <= 0:
            raise Retryable(f"deadline reached before calling Airflow at {self.transport.where}")
        return (min(self.settings.connect_timeout, remaining), min(self.settings.read_timeout, remaining))

    def _raise_for_status(self, response: ApiResponse, doing: str) -> None:
        status = response.status
        if status < 400:
            return
        detail = response.detail
        if status in (400, 422):
            raise InvalidRequestError(f"Airflow refused {doing} as invalid ({status}): {detail}", status=status)
        if response.is_token_rejection:
            raise UnauthorizedError(
                f"Airflow rejected our credentials {doing} ({status}): {detail}. "
                f"{self.transport.unauthorized_hint}Check [airflow].auth and the credentials",
                status=status,
            )
        if status == 403:
            # Unknown while the version is being detected, when a 403 can only come from a proxy.
            api = _APIS.get(self._api_version or "")
            raise ForbiddenError(
                f"Airflow denied {doing} (403): {detail}. {self.transport.forbidden_hint}"
                f"{api.permission_hint if api else ''}",
                status=status,
            )
        if status == 404:
            raise DagNotFoundError(f"not found {doing} (404): {detail}", status=status)
        if status == 429 or status >= 500:
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            raise Retryable(f"Airflow answered {status} {doing}: {detail}", status=status, retry_after=retry_after)
        raise AirflowError(f"Airflow answered {status} {doing}: {detail}", status=status)

    @staticmethod
    def _json(response: ApiResponse) -> dict[str, Any]:
        body = _json_body(response)
        if not isinstance(body, dict):
            raise _unexpected_json(response)
        return body

    # --- retries ------------------------------------------------------------------------------

    def _with_retries(self, attempt: Callable[[], T], deadline: Deadline) -> tuple[T, int]:
        """Run ``attempt`` until it succeeds, fails for good, or the next wait would pass the deadline."""
        attempts = 0
        while True:
            attempts += 1
            try:
                return attempt(), attempts
            except Retryable as exc:
                delay = self.backoff.delay(attempts - 1)
                if exc.retry_after is not None:
                    delay = max(delay, exc.retry_after)
                if delay > MAX_RETRY_AFTER or delay >= deadline.remaining():
                    raise RetryableAirflowError(
                        f"gave up after {attempts} attempt(s) within the deadline: {exc}", status=exc.status
                    ) from None
                log.warning("attempt %d failed, retrying in %.2fs: %s", attempts, delay, exc)
                self._sleep(delay)


def _json_body(response: ApiResponse) -> Any:
    try:
        return response.json()
    except ValueError:
        raise AirflowError(
            f"Airflow answered {response.status} with a body that is not JSON", status=response.status
        ) from None


def _unexpected_json(response: ApiResponse) -> AirflowError:
    return AirflowError(f"Airflow answered {response.status} with unexpected JSON", status=response.status)
