"""An SQS batch triggered at once: every record in a bounded thread pool, each one's outcome kept apart.

Records are independent events, and a trigger spends nearly all its time waiting for Airflow, so a
batch of ten takes about as long as its slowest record rather than the sum of all ten. The pool is
never larger than the batch, nor than ``DAG_TRIGGER_SQS_CONCURRENCY`` (default 8). The Airflow client is
shared by the threads: one thread probes the API version and refreshes a token while the others wait.
"""

from __future__ import annotations

import contextvars
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools import Logger

from shared.dispatch import DeliveryFailed, Dispatcher, Report
from shared.errors import ConfigError, DagNotFoundError, InvalidRequestError
from shared.parsing import parse_sqs_record

log = logging.getLogger("dag_trigger.sqs")

CONCURRENCY_ENV = "DAG_TRIGGER_SQS_CONCURRENCY"
#: Eight requests in flight stay within one ``requests`` connection pool (ten connections per host).
DEFAULT_CONCURRENCY = 8


def concurrency(env: Mapping[str, str] | None = None) -> int:
    """How many records are triggered at once: ``DAG_TRIGGER_SQS_CONCURRENCY``, else 8."""
    raw = (os.environ if env is None else env).get(CONCURRENCY_ENV, "").strip()
    if not raw:
        return DEFAULT_CONCURRENCY
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"environment: {CONCURRENCY_ENV} must be a positive whole number (got {raw!r})")
    return int(raw)


#: Failures that belong to the record itself: the same record meets them on every delivery.
POISON = (DagNotFoundError, InvalidRequestError)


def trigger_records(
    dispatch: Dispatcher,
    records: Sequence[Mapping[str, Any]],
    *,
    remaining: Callable[[], float],
    workers: int,
    logger: Logger,
) -> dict[str, Future[Report]]:
    """Deliver every record, ``workers`` at a time; returns when all are done, each message id's outcome.

    A future raises :class:`~shared.dispatch.DeliveryFailed` only when redelivering the record may turn it
    into runs (Airflow down, overloaded, too slow), or when the failure is the deployment's rather than the
    record's (credentials refused, a permission missing, a DAG paused with ``paused = "fail"``): those records
    go back to the queue and, past maxReceiveCount, to its dead-letter queue, to be redriven once the setup is
    fixed. A poison record, one no redelivery can help (unparseable, conf over the cap, unknown DAG, a request
    Airflow refuses as invalid), is logged at ERROR with its message id and its future holds its report: it is
    acknowledged rather than received again and again until maxReceiveCount. Every log line of a
    record carries its ``sqs_message_id``.
    """

    def trigger(record: Mapping[str, Any]) -> Report:
        message_id = str(record.get("messageId"))
        # Each task runs in a copy of the caller's context, so the key stays with this record's lines.
        logger.thread_safe_append_keys(sqs_message_id=message_id)
        try:
            return dispatch.deliver(lambda: parse_sqs_record(record, f"message {message_id}"), remaining=remaining)
        except DeliveryFailed as exc:
            if exc.retryable or not all(isinstance(f.error, POISON) for f in exc.report.failures):
                raise
            cause = exc.report.failures[0].error
            log.error(
                "message %s is not retried, redelivering it cannot help (%s): %s",
                message_id,
                type(cause).__name__,
                cause,
                extra={"error": type(cause).__name__, "retryable": False},
            )
            return exc.report

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(records))), thread_name_prefix="sqs") as pool:
        return {
            str(record.get("messageId")): pool.submit(contextvars.copy_context().run, trigger, record)
            for record in records
        }


def reports(outcomes: Mapping[str, Future[Report]]) -> Iterator[Report]:
    """The report of every delivery, failed ones included; an unexpected error is logged instead."""
    for message_id, future in outcomes.items():
        error = future.exception()
        if error is None:
            yield future.result()
        elif isinstance(error, DeliveryFailed):
            yield error.report
        else:
            log.error("message %s failed unexpectedly; it will be redelivered", message_id, exc_info=error)
