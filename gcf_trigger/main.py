"""Cloud Functions gen2 entrypoint: a CloudEvent from Eventarc in, DAG runs out.

Handles Cloud Storage object events (``google.cloud.storage.object.v1.*``) and Pub/Sub messages,
including Cloud Storage's Pub/Sub notifications. Deploy with ``--entry-point trigger_dag``; run
locally with ``functions-framework --source gcf_trigger/main.py --target trigger_dag``.
"""

from __future__ import annotations

from typing import Any

import functions_framework
from cloudevents.http.event import CloudEvent

from shared.logs import configure_json_logging
from shared.parsing import parse_cloudevent
from shared.runtime import deliver

configure_json_logging()


@functions_framework.cloud_event
def trigger_dag(cloud_event: CloudEvent) -> dict[str, Any]:
    """Turn one CloudEvent into DAG runs; raising makes Eventarc redeliver it (when retries are on)."""
    payload = {**cloud_event.get_attributes(), "data": cloud_event.get_data()}
    return deliver(lambda: parse_cloudevent(payload)).describe()
