"""AWS Lambda handlers, on Powertools' Logger, event data classes and batch processing.

``handler``: S3 event notifications invoked directly (asynchronously). Raising makes Lambda retry
the invocation and then send it to the on-failure destination, so no event is dropped silently.

``sqs_handler``: an SQS queue fed by S3 or by S3 -> SNS. Each message succeeds or fails on its own
(partial batch response): only the failed messages return to the queue, and after the queue's
maxReceiveCount they move to its dead-letter queue. Enable ``ReportBatchItemFailures`` on the
event source mapping. Redeliveries meet the same run ids, so a message never makes two runs.
"""

from __future__ import annotations

import logging
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.logs import RedactingFilter
from shared.parsing import parse_s3_notification, parse_sqs_record
from shared.runtime import deliver

logger = Logger(service="dag-trigger")
# The core logs through the standard "dag_trigger" logger; give it Powertools' JSON format.
copy_config_to_registered_loggers(source_logger=logger, include={"dag_trigger"})
for _handler in {*logging.getLogger("dag_trigger").handlers, *logging.getLogger(logger.name).handlers}:
    _handler.addFilter(RedactingFilter())

#: Seconds kept back from the invocation's remaining time, to report before Lambda cuts us off.
REPORT_MARGIN = 1.0

# Every failed record is reported by id, even when all of them failed, rather than failing the batch.
_sqs_processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _remaining(context: LambdaContext) -> float:
    return context.get_remaining_time_in_millis() / 1000 - REPORT_MARGIN


@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=S3Event)
def handler(event: S3Event, context: LambdaContext) -> dict[str, Any]:
    """Trigger the routed DAGs for every record of an S3 notification (``s3:TestEvent`` is skipped)."""
    if "Records" in event.raw_event:
        logger.append_keys(bucket=event.bucket_name, records=len(event.raw_event["Records"]))
    report = deliver(lambda: parse_s3_notification(event.raw_event, "event"), remaining=lambda: _remaining(context))
    return report.describe()


@logger.inject_lambda_context(clear_state=True)
def sqs_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Trigger for each SQS message on its own; the failed ones come back as ``batchItemFailures``."""

    def record_handler(record: SQSRecord) -> dict[str, Any]:
        logger.append_keys(message_id=record.message_id)
        where = f"message {record.message_id}"
        return deliver(
            lambda: parse_sqs_record(record.raw_event, where), remaining=lambda: _remaining(context)
        ).describe()

    return dict(process_partial_response(event, record_handler, _sqs_processor, context))
