"""The project's exceptions: one root, each kind a one-liner that says whether a retry can help.

Edges decide what to do from ``retryable`` alone: a retryable failure is raised so the platform
redelivers the event; a non-retryable one is logged with its fix.
"""

from __future__ import annotations


class TriggerError(Exception):
    """Root of every error this project raises on purpose."""

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


class EventError(TriggerError):
    """The payload is not an event we understand; redelivering it will not help."""


class ConfigError(TriggerError):
    """The configuration is invalid; the message names the file and the key."""


class CredentialError(TriggerError):
    """Credentials could not be obtained or were refused."""


class AirflowError(TriggerError):
    """Airflow answered with something other than a created or confirmed run."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool | None = None) -> None:
        super().__init__(message, retryable=retryable)
        self.status = status


class DagNotFoundError(AirflowError):
    """The DAG does not exist in Airflow (or is not visible to our user)."""


class DagPausedError(AirflowError):
    """The DAG is paused and the configured policy is ``fail``."""


class UnauthorizedError(AirflowError):
    """Airflow rejected our credentials even after one refresh."""


class ForbiddenError(AirflowError):
    """Our credentials are valid but lack the permission to trigger this DAG."""


class InvalidRequestError(AirflowError):
    """Airflow refused the request as malformed (400/422); retrying the same request cannot help."""


class ConfTooLargeError(TriggerError):
    """The conf built for a DAG run is larger than the configured cap."""


class RetryableAirflowError(AirflowError):
    """Airflow was unreachable or overloaded and our deadline ran out before it recovered."""

    retryable = True
