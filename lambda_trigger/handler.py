"""AWS Lambda handler for S3 event notifications, on Powertools' Logger and event data classes.

Raising makes Lambda retry the (asynchronous) invocation and then send it to the on-failure
destination, so no event is dropped silently; redeliveries meet the same run ids.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.parsing import parse_s3_notification
from shared.runtime import deliver

logger = Logger(service="dag-trigger")
# The core logs through the standard "dag_trigger" logger; give it Powertools' JSON format.
copy_config_to_registered_loggers(source_logger=logger, include={"dag_trigger"})

#: Seconds kept back from the invocation's remaining time, to report before Lambda cuts us off.
REPORT_MARGIN = 1.0


@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=S3Event)
def handler(event: S3Event, context: LambdaContext) -> dict[str, Any]:
    """Trigger the routed DAGs for every record of an S3 notification (``s3:TestEvent`` is skipped)."""
    if "Records" in event.raw_event:
        logger.append_keys(bucket=event.bucket_name, records=len(event.raw_event["Records"]))
    report = deliver(
        lambda: parse_s3_notification(event.raw_event, "event"),
        remaining=lambda: context.get_remaining_time_in_millis() / 1000 - REPORT_MARGIN,
    )
    return report.describe()
