"""The whole flow for one payload: parse -> route -> plan -> trigger, with a report of every step."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.airflow_client import AirflowClient, TriggerResult
from shared.config import Config
from shared.errors import ConfTooLargeError, EventError, TriggerError
from shared.events import Event, MessageEvent, ObjectEvent
from shared.parsing import ParseResult, RequestError, parse_payload
from shared.retry import Deadline
from shared.triggers import TriggerRequest, plan

log = logging.getLogger("dag_trigger")


@dataclass(frozen=True)
class Failure:
    """A trigger request that did not become a run."""

    request: TriggerRequest
    error: TriggerError

    def describe(self) -> dict[str, Any]:
        """The failure as a JSON-able dict."""
        return {
            "dag_id": self.request.dag_id,
            "dag_run_id": self.request.dag_run_id,
            "outcome": "failed",
            "error": type(self.error).__name__,
            "retryable": self.error.retryable,
            "message": str(self.error),
        }


@dataclass
class Report:
    """Everything one payload caused: results, failures, and why anything was skipped."""

    results: list[TriggerResult] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    #: Seconds each trigger request took, whatever became of it, in the order they were sent.
    latencies: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every planned run exists in Airflow."""
        return not self.failures

    @property
    def retryable(self) -> bool:
        """True when redelivering the payload may turn a failure into a run."""
        return any(f.error.retryable for f in self.failures)

    def describe(self) -> dict[str, Any]:
        """The report as a JSON-able dict (a function's return value, the CLI)."""
        return {
            "runs": [r.describe() for r in self.results],
            "failed": [f.describe() for f in self.failures],
            "skipped": list(self.skipped),
        }


def describe_event(event: Event) -> str:
    """A short human name for an event, for logs: ``gs://bucket/key (created)`` or ``pubsub message 123``."""
    if isinstance(event, ObjectEvent):
        return f"{event.uri} ({event.event_type})"
    return f"{event.source} message {event.message_id}"


@dataclass
class Plan:
    """The trigger requests for a payload, before anything is sent."""

    requests: list[TriggerRequest] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def plan_payload(payload: Any, config: Config) -> Plan:
    """Parse and route a payload without calling Airflow (what ``dag-trigger explain`` shows)."""
    return plan_events(parse_payload(payload), config)


def plan_events(parsed: ParseResult, config: Config) -> Plan:
    """Route already-parsed events."""
    result = Plan(skipped=list(parsed.skipped))
    for event in parsed.events:
        requests, reasons = plan(event, config)
        if not requests:
            result.skipped.append(f"{describe_event(event)}: no route matched ({'; '.join(reasons) or 'no routes'})")
        result.requests.extend(requests)
    return result


@dataclass(frozen=True)
class Answer:
    """What the caller of an HTTP trigger is told: a status code and a JSON body."""

    status: int
    body: dict[str, Any]


class DeliveryFailed(TriggerError):
    """At least one run for this event is not in Airflow; the platform should redeliver the event.

    ``report`` holds what did happen, the runs that were created included.
    """

    def __init__(self, message: str, report: Report, *, retryable: bool) -> None:
        super().__init__(message, retryable=retryable)
        self.report = report


class Dispatcher:
    """Turns payloads into DAG runs with one configuration and one Airflow client."""

    def __init__(self, config: Config, client: AirflowClient) -> None:
        self.config = config
        self.client = client

    def run(self, planned: Plan, *, remaining: Callable[[], float] | None = None) -> Report:
        """Send planned requests; every request gets an outcome in the report."""
        report = Report(skipped=list(planned.skipped))
        for reason in planned.skipped:
            log.info("skipped: %s", reason)
        seconds = self.config.airflow.deadline if remaining is None else min(self.config.airflow.deadline, remaining())
        deadline = Deadline(seconds)
        for request in planned.requests:
            started = time.monotonic()
            try:
                result = self.client.trigger(request, deadline)
            except TriggerError as exc:
                log.error(
                    "failed to trigger dag=%s run_id=%s for %s: %s",
                    request.dag_id,
                    request.dag_run_id,
                    describe_event(request.event),
                    exc,
                    extra={
                        **request.log_fields,
                        "outcome": "failed",
                        "error": type(exc).__name__,
                        "retryable": exc.retryable,
                    },
                )
                report.failures.append(Failure(request, exc))
                continue
            finally:
                report.latencies.append(time.monotonic() - started)
            log.info(
                "dag run %s: dag=%s run_id=%s for %s",
                result.outcome,
                request.dag_id,
                request.dag_run_id,
                describe_event(request.event),
                extra={**request.log_fields, "outcome": result.outcome, "state": result.state},
            )
            report.results.append(result)
        return report

    def deliver(self, parse: Callable[[], ParseResult], *, remaining: Callable[[], float] | None = None) -> Report:
        """The delivery policy both clouds share; ``parse`` turns the platform's payload into events.

        An event that can never become a run (unparseable, conf over the cap) is logged and
        acknowledged: redelivering it cannot help. If any planned run is not in Airflow afterwards,
        raises :class:`DeliveryFailed`, so the platform redelivers the event (or dead-letters it) and
        the deterministic run ids make the runs that did succeed no-ops.
        """
        try:
            planned = plan_events(parse(), self.config)
        except (EventError, ConfTooLargeError) as exc:
            log.error("rejected event, not retrying: %s", exc, extra={"error": type(exc).__name__})
            return Report(skipped=[str(exc)])
        report = self.run(planned, remaining=remaining)
        if not report.ok:
            first = report.failures[0].error
            raise DeliveryFailed(
                f"{len(report.failures)} of {len(planned.requests)} run(s) not created ({first}); "
                "the event will be redelivered",
                report,
                retryable=report.retryable,
            )
        return report

    def answer(self, parse: Callable[[], MessageEvent]) -> Answer:
        """The request policy: someone asked for one run of one DAG, and is told what became of it.

        ``parse`` reads the request (:func:`~shared.parsing.parse_http_trigger`). The answer is 400
        (``error`` and ``field``) for a request to correct, conf over the cap included; 403 when no route
        lets requests trigger that DAG; 200 when the run exists (``created`` or ``already_triggered``);
        503 when a retry with the same key may succeed (it asks for the same run id); 502 when Airflow
        refused for good (unknown DAG, no permission).
        """
        try:
            event = parse()
        except RequestError as exc:
            return _refused(400, str(exc), exc.field)
        dag_id = event.attributes["dag_id"]
        try:
            planned = plan_events(ParseResult(events=(event,)), self.config)
        except ConfTooLargeError as exc:
            return _refused(400, str(exc), "conf", event.log_fields())
        if not planned.requests:
            # The reasons name other routes; they are for the operator's log, not for the caller.
            return _refused(
                403,
                f'DAG {dag_id!r} is not configured for HTTP triggers: add "http" to the sources of its route',
                "dag_id",
                {**event.log_fields(), "dag_id": dag_id, "reasons": planned.skipped},
            )
        report = self.run(planned)
        if report.failures:
            failure = report.failures[0]
            return Answer(503 if failure.error.retryable else 502, failure.describe())
        return Answer(200, report.results[0].describe())


def _refused(status: int, error: str, field: str | None, fields: dict[str, Any] | None = None) -> Answer:
    log.warning("refused trigger request (%d): %s", status, error, extra={**(fields or {}), "field": field})
    return Answer(status, {"error": error, "field": field})
