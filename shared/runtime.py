"""What the function edges call: a per-process dispatcher, and one delivery policy for both clouds.

The policy: an event that can never become a run (unparseable, conf over the cap) is logged and
acknowledged, since redelivering it cannot help; any planned run that does not exist in Airflow
afterwards makes :func:`deliver` raise, so the platform redelivers the event (or dead-letters it)
and the deterministic run ids turn the runs that did succeed into no-ops.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from shared.airflow_client import AirflowClient
from shared.config import Config, from_environment
from shared.credentials import credentials_for
from shared.dispatch import Dispatcher, Report, plan_events
from shared.errors import ConfigError, ConfTooLargeError, EventError, TriggerError
from shared.parsing import ParseResult

log = logging.getLogger("dag_trigger")


class DeliveryFailed(TriggerError):
    """At least one run for this event is not in Airflow; the platform should redeliver the event."""


def build_dispatcher(config: Config) -> Dispatcher:
    """A dispatcher with the credentials and client that ``config`` describes."""
    client = AirflowClient(config.airflow, credentials_for(config.airflow))
    return Dispatcher(config, client)


@functools.cache
def dispatcher() -> Dispatcher:
    """The process-wide dispatcher from the environment (``DAG_TRIGGER_CONFIG`` or ``AIRFLOW_URL``/``DAG_ID``).

    Built on the first event, not at import, so a cold start that only loads the module stays fast;
    a configuration error is not cached, so every event reports it until it is fixed.
    """
    config = from_environment()
    log.info("loaded config from %s: %d route(s), Airflow %s", config.origin, len(config.routes), config.airflow.url)
    return build_dispatcher(config)


def deliver(parse: Callable[[], ParseResult], *, remaining: Callable[[], float] | None = None) -> Report:
    """Parse with ``parse``, then route and trigger; ``remaining`` gives the seconds the platform still allows.

    Returns the report when every planned run exists (or nothing was to be done); raises
    :class:`DeliveryFailed` otherwise, and re-raises a :class:`~shared.errors.ConfigError`.
    """
    try:
        active = dispatcher()
    except ConfigError as exc:
        log.error("configuration error, every event fails until it is fixed: %s", exc)
        raise
    try:
        planned = plan_events(parse(), active.config)
    except (EventError, ConfTooLargeError) as exc:
        log.error("rejected event, not retrying: %s", exc, extra={"error": type(exc).__name__})
        return Report(skipped=[str(exc)])
    report = active.run(planned, remaining=remaining)
    if not report.ok:
        first = report.failures[0].error
        raise DeliveryFailed(
            f"{len(report.failures)} of {len(planned.requests)} run(s) not created ({first}); "
            "the event will be redelivered",
            retryable=report.retryable,
        )
    return report
