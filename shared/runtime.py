"""What the function edges call: a per-process dispatcher, built on first use and reused while warm."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from shared.airflow_client import AirflowClient
from shared.config import Config, from_environment
from shared.credentials import credentials_for
from shared.dispatch import Dispatcher, Report
from shared.errors import ConfigError
from shared.parsing import ParseResult

log = logging.getLogger("dag_trigger")


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
    """:meth:`Dispatcher.deliver` on the process-wide dispatcher; a config error is logged, then raised."""
    try:
        active = dispatcher()
    except ConfigError as exc:
        log.error("configuration error, every event fails until it is fixed: %s", exc)
        raise
    return active.deliver(parse, remaining=remaining)
