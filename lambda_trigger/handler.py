"""AWS Lambda handlers, on Powertools' Logger, Tracer, Metrics and batch processing.

``handler``: whatever Lambda is invoked with directly. S3 event notifications (every record; keys
decoded; ``s3:TestEvent`` skipped), SNS (an S3 notification inside, or an application message that
routes match by its message attributes), EventBridge S3 events (``Object Created`` and the others), and
an SQS batch, which gets ``sqs_handler``'s batch logic. These invocations are asynchronous: raising makes
Lambda retry twice and then send the event to the on-failure destination, so none is dropped silently.

``sqs_handler``: an SQS queue fed by S3, by S3 -> SNS (raw message delivery or not) or by applications.
The records are triggered at once in a bounded pool (:mod:`lambda_trigger.sqs`) and each succeeds or
fails on its own (partial batch response: enable ``ReportBatchItemFailures`` on the event source mapping).
A record that failed for a reason that may pass returns to the queue, and after maxReceiveCount moves to
its dead-letter queue; a poison record is logged at ERROR and acknowledged. A setup failure (a bad
config) fails the whole batch, since it is no record's fault. Redeliveries meet the same run ids, so a
message never makes two runs.

Each invocation flushes EMF metrics in the namespace ``DagTrigger``: ``Triggered``, ``AlreadyTriggered``
and ``Failed`` (triggers, zeros included) and ``TriggerLatency`` (milliseconds, one value per trigger).
Each Airflow call is an X-Ray subsegment (:mod:`lambda_trigger.tracing`).
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambda_trigger import sqs
from lambda_trigger.tracing import TracedTransport
from shared import runtime
from shared.airflow_client import ALREADY_TRIGGERED, CREATED
from shared.dispatch import DeliveryFailed, Report
from shared.logs import RedactingFilter
from shared.parsing import parse_payload

SERVICE = "dag-trigger"
NAMESPACE = "DagTrigger"

logger = Logger(service=SERVICE)
# The core logs through the standard "dag_trigger" logger; give it Powertools' JSON format.
copy_config_to_registered_loggers(source_logger=logger, include={"dag_trigger"})
for _handler in {*logging.getLogger("dag_trigger").handlers, *logging.getLogger(logger.name).handlers}:
    _handler.addFilter(RedactingFilter())
# Only botocore is patched (Secrets Manager, MWAA): TracedTransport already makes one subsegment per
# Airflow call, and patching requests as well would record each of them twice.
tracer = Tracer(service=SERVICE, patch_modules=["botocore"])
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
runtime.transport_wrapper = functools.partial(TracedTransport, tracer=tracer)

#: Seconds kept back from the invocation's remaining time, to report before Lambda cuts us off.
REPORT_MARGIN = 1.0

# Every failed record is reported by id, even when all of them failed, rather than failing the batch.
_sqs_processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _remaining(context: LambdaContext) -> float:
    return context.get_remaining_time_in_millis() / 1000 - REPORT_MARGIN


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Trigger the routed DAGs for an S3, SNS or EventBridge invocation; an SQS batch is handled as a batch."""
    if _is_sqs_batch(event):
        return _sqs_batch(event, context)
    try:
        report = runtime.deliver(lambda: parse_payload(event), remaining=lambda: _remaining(context))
    except DeliveryFailed as exc:
        _count([exc.report])
        raise
    _count([report])
    return report.describe()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def sqs_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Trigger every SQS record at once; the ones worth retrying come back as ``batchItemFailures``."""
    return _sqs_batch(event, context)


def _sqs_batch(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The triggers run in the pool first; BatchProcessor then only reports each record's outcome, so the
    # response keeps Powertools' shape while the records do not wait for one another.
    outcomes = sqs.trigger_records(
        runtime.active(),
        event.get("Records") or [],
        remaining=lambda: _remaining(context),
        workers=sqs.concurrency(),
        logger=logger,
    )
    _count(sqs.reports(outcomes))

    def outcome(record: SQSRecord) -> Report:
        return outcomes[record.message_id].result()

    return dict(process_partial_response(event, outcome, _sqs_processor, context))


def _is_sqs_batch(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, Mapping) else None
    first = records[0] if isinstance(records, list) and records else None
    return isinstance(first, Mapping) and first.get("eventSource") == "aws:sqs"


def _count(reports: Iterable[Report]) -> None:
    """Add the invocation's trigger outcomes to the metrics flushed when it ends."""
    outcomes: Counter[str] = Counter()
    for report in reports:
        outcomes.update(result.outcome for result in report.results)
        outcomes["failed"] += len(report.failures)
        for seconds in report.latencies:
            metrics.add_metric(name="TriggerLatency", unit=MetricUnit.Milliseconds, value=seconds * 1000)
    # Zeros too: an alarm on Failed, or a failure rate, needs a data point for every invocation.
    for name, outcome in (("Triggered", CREATED), ("AlreadyTriggered", ALREADY_TRIGGERED), ("Failed", "failed")):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=outcomes[outcome])
