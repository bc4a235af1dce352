"""Cloud Functions gen2 entrypoints: CloudEvents from Eventarc, and trigger requests over HTTP.

``trigger_dag`` handles Cloud Storage object events (``google.cloud.storage.object.v1.*``) and Pub/Sub
messages, including Cloud Storage's Pub/Sub notifications, in binary and structured content mode.
Deploy with ``--entry-point trigger_dag`` and turn on retries for the Eventarc trigger.

``trigger_http`` creates one run of one configured DAG on request, for a person or Cloud Scheduler:
``POST {"dag_id": "...", "idempotency_key": "...", "conf": {...}}``; from Cloud Scheduler the key may be
left out, and the job's name and schedule time stand in for it (one run per scheduled time, however
often Scheduler retries). Deploy it with
``--entry-point trigger_http --trigger-http --no-allow-unauthenticated`` and grant
``roles/run.invoker`` to the callers (Cloud Scheduler's service account, with an OIDC token): the
platform then refuses everyone else before the function runs. Only a route that lists ``"http"`` in its
``sources`` lets a request trigger its DAG.

Run locally with ``functions-framework --source gcf_trigger/main.py --target trigger_dag`` (or
``--target trigger_http --signature-type http``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import flask
import functions_framework
from cloudevents.http.event import CloudEvent

from shared import runtime
from shared.errors import TriggerError
from shared.logs import configure_json_logging
from shared.parsing import parse_cloudevent, parse_http_trigger, scheduler_key

configure_json_logging()


@functions_framework.cloud_event
def trigger_dag(cloud_event: CloudEvent) -> dict[str, Any]:
    """Turn one CloudEvent into DAG runs; a failure answers 500, so Eventarc redelivers it (when retries are on)."""
    payload = {**cloud_event.get_attributes(), "data": cloud_event.get_data()}
    try:
        return runtime.deliver(lambda: parse_cloudevent(payload)).describe()
    except TriggerError:
        # Already logged, with its reason, where it happened. Aborting rather than raising answers the same
        # 500 without Flask logging it again as an unhandled exception with a traceback.
        flask.abort(500, description="the event was not turned into DAG runs; see the function's logs")


@functions_framework.http
def trigger_http(request: flask.Request) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Create the run a trigger request asks for and answer with its outcome (see the module docstring).

    400 ``{"error", "field"}``: correct the request. 403: the DAG is not configured for HTTP triggers.
    405: not a POST. 200: the run exists (``created`` or ``already_triggered``, ``dag_run_id``).
    503: retry with the same key. 502: Airflow refused for good. 500: the function is misconfigured.
    """
    if request.method != "POST":
        error = f"{request.method} is not allowed; POST a JSON trigger request"
        return {"error": error, "field": None}, 405, {"Allow": "POST"}
    try:
        active = runtime.active()
    except TriggerError as exc:
        status = 503 if exc.retryable else 500
        return {"error": "the function cannot set up its Airflow client; see its logs", "field": None}, status, {}
    received = datetime.now(UTC)
    default_key = scheduler_key(request.headers)
    answer = active.answer(lambda: parse_http_trigger(request.get_data(), received, default_key))
    return answer.body, answer.status, {}
