"""What the function edges call: a per-process dispatcher, built on first use and reused while warm."""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests

from shared.airflow_client import AirflowClient
from shared.config import AirflowSettings, Config, from_environment
from shared.credentials import Credentials, credentials_for
from shared.dispatch import Dispatcher, Report
from shared.errors import ConfigError, TriggerError
from shared.parsing import ParseResult
from shared.transport import HttpTransport, Transport

if TYPE_CHECKING:
    from shared.composer import ComposerEnvironment

log = logging.getLogger("dag_trigger")

#: Set by a function edge at import: what the process-wide dispatcher's transport is wrapped in (the
#: Lambda edge records each Airflow call as an X-Ray subsegment).
transport_wrapper: Callable[[Transport], Transport] | None = None


@dataclass(frozen=True)
class Setup:
    """The Airflow settings with everything read at start-up filled in, and the credentials they name."""

    settings: AirflowSettings
    credentials: Credentials
    environment: ComposerEnvironment | None = None

    def transport(self, session: requests.Session) -> Transport:
        """What carries the client's calls: for an MWAA environment, MWAA's InvokeRestApi or (``mwaa_transport =
        "cli_token"``) its web server's CLI; else HTTP to the URL."""
        if self.settings.mwaa_environment:
            if self.settings.mwaa_transport == "cli_token":
                from shared.mwaa_cli import CliTokenTransport

                return CliTokenTransport(self.settings, http=session)
            from shared.mwaa import InvokeRestApiTransport

            return InvokeRestApiTransport(self.settings)
        return HttpTransport(self.settings.url, self.credentials, session, verify=self.settings.verify_tls)


def resolve(settings: AirflowSettings, session: requests.Session) -> Setup:
    """Read the Composer environment (if one is named) for its URL and auth mode, then build the credentials.

    The access token that read the environment is the one the credentials use, so it is minted once.
    """
    if not settings.composer_environment:
        return Setup(settings, credentials_for(settings))
    # Only a Composer setup needs these: the other modes' cold start does not load them.
    from shared.composer import read_environment
    from shared.google_credentials import access_token_for

    access = access_token_for(settings)
    timeout = (settings.connect_timeout, min(settings.read_timeout, settings.deadline))
    environment = read_environment(settings.composer_environment, session, access, timeout)
    resolved = environment.apply(settings)
    return Setup(resolved, credentials_for(resolved, google_access=access), environment)


def build_dispatcher(config: Config, *, wrap: Callable[[Transport], Transport] | None = None) -> Dispatcher:
    """A dispatcher with the credentials and client that ``config`` describes; ``wrap`` wraps its transport."""
    session = requests.Session()
    setup = resolve(config.airflow, session)
    transport = setup.transport(session)
    client = AirflowClient(setup.settings, wrap(transport) if wrap else transport)
    return Dispatcher(dataclasses.replace(config, airflow=setup.settings), client)


@functools.cache
def dispatcher() -> Dispatcher:
    """The process-wide dispatcher from the environment (``DAG_TRIGGER_CONFIG`` or ``AIRFLOW_URL``/``DAG_ID``).

    Built on the first event, not at import, so a cold start that only loads the module stays fast;
    a configuration error is not cached, so every event reports it until it is fixed.
    """
    config = from_environment()
    where = config.airflow.url or config.airflow.composer_environment or config.airflow.mwaa_environment
    log.info("loaded config from %s: %d route(s), Airflow %s", config.origin, len(config.routes), where)
    return build_dispatcher(config, wrap=transport_wrapper)


def active() -> Dispatcher:
    """The process-wide dispatcher; a setup failure is logged (with whether it can pass), then raised."""
    try:
        return dispatcher()
    except ConfigError as exc:
        log.error("configuration error, every event fails until it is fixed: %s", exc)
        raise
    except TriggerError as exc:
        # Reading the Composer environment failed for now; the event is redelivered and we try again.
        log.error("cannot set up the Airflow client, the event will be redelivered: %s", exc)
        raise


def deliver(parse: Callable[[], ParseResult], *, remaining: Callable[[], float] | None = None) -> Report:
    """:meth:`Dispatcher.deliver` on the process-wide dispatcher."""
    return active().deliver(parse, remaining=remaining)
