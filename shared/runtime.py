"""The per-process dispatcher the function edges share: built on first use, reused while warm."""

from __future__ import annotations

import functools
import logging

from shared.airflow_client import AirflowClient
from shared.config import Config, from_environment
from shared.credentials import credentials_for
from shared.dispatch import Dispatcher

log = logging.getLogger("dag_trigger")


def build_dispatcher(config: Config) -> Dispatcher:
    """A dispatcher with the credentials and client that ``config`` describes."""
    client = AirflowClient(config.airflow, credentials_for(config.airflow))
    return Dispatcher(config, client)


@functools.cache
def dispatcher() -> Dispatcher:
    """The process-wide dispatcher from the environment (``DAG_TRIGGER_CONFIG`` or ``AIRFLOW_URL``/``DAG_ID``).

    A configuration error surfaces on the first event with one message naming the key; it is not
    cached, so a fixed environment is picked up by the next cold start.
    """
    config = from_environment()
    log.info("loaded config from %s: %d route(s), Airflow %s", config.origin, len(config.routes), config.airflow.url)
    return build_dispatcher(config)
