"""Every CloudEvent shape, in binary and structured content mode, through a real functions-framework process.

No Airflow: the config points at a closed loopback port. A routed event therefore fails retryably and
the function answers 500 (Eventarc redelivers it); an event no route takes is acknowledged with 200
and the reason logged. Each case uses its own object key or message id to find its log lines.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from scripts.local_airflow import free_port
from tests.function_process import FunctionProcess
from tests.support import load_event

MODES = ("binary", "structured")
OBJECT_SAMPLES = [
    ("gcs_finalized.cloudevent.json", "created"),
    ("gcs_deleted.cloudevent.json", "deleted"),
    ("gcs_archived.cloudevent.json", "archived"),
    ("gcs_metadata_updated.cloudevent.json", "metadata_updated"),
]
UNICODE_KEY = "incoming/ünïcode dir/a+b%20c.csv"
ORDERS_TOPIC = "projects/acme-prod/topics/dag-requests"

# One object route per event type, told apart by bucket, so each type can be sent where it fires and
# where it does not.
CONFIG = """
[airflow]
url = "http://127.0.0.1:{port}"
api_version = "v2"
deadline = 0.1
{object_routes}
[[routes]]
name = "unicode"
dag_id = "on_unicode"
prefix = "incoming/ünïcode dir/"

[[routes]]
name = "orders"
dag_id = "load_orders"
sources = ["pubsub"]
attributes = {{ dag_id = "load_orders" }}
"""
OBJECT_ROUTE = """
[[routes]]
name = "{event_type}"
dag_id = "on_{event_type}"
bucket = "{bucket}"
event_types = ["{event_type}"]
"""


def bucket_for(event_type: str) -> str:
    return f"{event_type.replace('_', '-')}-bucket"


@pytest.fixture(scope="module")
def function(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionProcess]:
    home = tmp_path_factory.mktemp("gcf")
    routes = "".join(OBJECT_ROUTE.format(event_type=t, bucket=bucket_for(t)) for _, t in OBJECT_SAMPLES)
    config = home / "config.toml"
    config.write_text(CONFIG.format(port=free_port(), object_routes=routes), encoding="utf-8")
    with FunctionProcess("trigger_dag", "cloudevent", {"DAG_TRIGGER_CONFIG": str(config)}, home / "fn.log") as fn:
        yield fn


def post(function: FunctionProcess, mode: str, event: dict[str, Any]) -> int:
    response = function.post_binary(event) if mode == "binary" else function.post_structured(event)
    return response.status_code


def the_line(function: FunctionProcess, **fields: Any) -> dict[str, Any]:
    """The one log line carrying ``fields``; every line the process wrote must be JSON."""
    lines = [line for line in function.log_lines() if fields.items() <= line.items()]
    assert len(lines) == 1, lines
    return lines[0]


def the_skip(function: FunctionProcess, text: str) -> str:
    """The one 'skipped' line mentioning ``text``."""
    lines = [
        line for line in function.log_lines() if line["message"].startswith("skipped: ") and text in line["message"]
    ]
    assert len(lines) == 1, lines
    assert lines[0]["severity"] == "INFO"
    return str(lines[0]["message"])


def object_event(sample: str, bucket: str, key: str) -> dict[str, Any]:
    event = load_event(sample)
    event["source"] = f"//storage.googleapis.com/projects/_/buckets/{bucket}"
    event["subject"] = f"objects/{key}"
    event["data"].update(bucket=bucket, name=key)
    return event


def notification(sample: str, bucket: str, key: str, event_type: str, message_id: str) -> dict[str, Any]:
    event = load_event(sample)
    event["id"] = message_id
    message = event["data"]["message"]
    message["messageId"] = message["message_id"] = message_id
    message["attributes"].update(bucketId=bucket, objectId=key, eventType=event_type)
    if "data" in message:  # JSON_API_V1: the object resource is the body
        resource = json.loads(base64.b64decode(message["data"]))
        resource.update(bucket=bucket, name=key)
        message["data"] = base64.b64encode(json.dumps(resource).encode()).decode()
    return event


def pubsub_message(dag_id: str, message_id: str) -> dict[str, Any]:
    event = load_event("pubsub_message.cloudevent.json")
    event["id"] = message_id
    message = event["data"]["message"]
    message["messageId"] = message["message_id"] = message_id
    message["attributes"]["dag_id"] = dag_id
    return event


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("sample", "event_type"), OBJECT_SAMPLES)
def test_object_event_fires_the_route_for_its_type(
    function: FunctionProcess, mode: str, sample: str, event_type: str
) -> None:
    key = f"incoming/{mode}/{event_type}/orders.csv"
    event = object_event(sample, bucket_for(event_type), key)

    assert post(function, mode, event) == 500  # routed; Airflow is down, so Eventarc must redeliver

    line = the_line(function, key=key)
    assert {
        "severity": "ERROR",
        "source": "gcs",
        "event_id": event["id"],
        "bucket": bucket_for(event_type),
        "event_type": event_type,
        "route": event_type,
        "dag_id": f"on_{event_type}",
        "outcome": "failed",
        "retryable": True,
    }.items() <= line.items()
    assert line["dag_run_id"].startswith("gcs__")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("sample", "event_type"), OBJECT_SAMPLES)
def test_object_event_of_a_type_the_route_does_not_take_is_acknowledged(
    function: FunctionProcess, mode: str, sample: str, event_type: str
) -> None:
    other = "deleted" if event_type == "created" else "created"
    key = f"incoming/{mode}/{event_type}-to-{other}/orders.csv"

    assert post(function, mode, object_event(sample, bucket_for(other), key)) == 200

    reason = the_skip(function, key)
    assert f"route {other}: event type '{event_type}' is not one of ['{other}']" in reason


@pytest.mark.parametrize("mode", MODES)
def test_pubsub_message_fires_the_route_its_attributes_match(function: FunctionProcess, mode: str) -> None:
    message_id = f"routed-{mode}"

    assert post(function, mode, pubsub_message("load_orders", message_id)) == 500

    line = the_line(function, message_id=message_id)
    assert {
        "severity": "ERROR",
        "source": "pubsub",
        "topic": ORDERS_TOPIC,
        "dag_id": "load_orders",
        "outcome": "failed",
    }.items() <= line.items()


@pytest.mark.parametrize("mode", MODES)
def test_pubsub_message_no_route_matches_is_acknowledged(function: FunctionProcess, mode: str) -> None:
    message_id = f"unrouted-{mode}"

    assert post(function, mode, pubsub_message("some_other_dag", message_id)) == 200

    reason = the_skip(function, f"pubsub message {message_id}")
    assert "route orders: attribute 'dag_id'='some_other_dag' does not match 'load_orders'" in reason


@pytest.mark.parametrize("mode", MODES)
def test_storage_notification_fires_the_object_route(function: FunctionProcess, mode: str) -> None:
    key = f"incoming/{mode}/notified/orders.csv"
    event = notification(
        "pubsub_gcs_notification.cloudevent.json", bucket_for("created"), key, "OBJECT_FINALIZE", f"n-{mode}"
    )

    assert post(function, mode, event) == 500

    line = the_line(function, key=key)
    assert {
        "source": "gcs",
        "event_id": f"n-{mode}",
        "bucket": bucket_for("created"),
        "event_type": "created",
        "dag_id": "on_created",
        "outcome": "failed",
    }.items() <= line.items()


@pytest.mark.parametrize("mode", MODES)
def test_storage_notification_without_payload_of_another_type_is_acknowledged(
    function: FunctionProcess, mode: str
) -> None:
    key = f"incoming/{mode}/notified-delete/orders.csv"
    event = notification(
        "pubsub_gcs_notification_none.cloudevent.json", bucket_for("created"), key, "OBJECT_DELETE", f"nd-{mode}"
    )

    assert post(function, mode, event) == 200

    assert "route created: event type 'deleted' is not one of ['created']" in the_skip(function, key)


def test_object_name_comes_from_data_not_from_the_percent_encoded_subject(function: FunctionProcess) -> None:
    # The CloudEvents HTTP binding percent-encodes ce-* header values and the SDK hands them over
    # undecoded, so in binary mode the subject is not the object name; data.name always is.
    event = object_event("gcs_finalized.cloudevent.json", "acme-landing", UNICODE_KEY)

    binary = function.post_binary(event)
    structured = function.post_structured(event)

    assert binary.request.headers["ce-subject"] == "objects/incoming/%C3%BCn%C3%AFcode%20dir/a+b%2520c.csv"
    assert (binary.status_code, structured.status_code) == (500, 500)
    lines = [line for line in function.log_lines() if line.get("dag_id") == "on_unicode"]
    assert [line["key"] for line in lines] == [UNICODE_KEY, UNICODE_KEY]
    assert lines[0]["dag_run_id"] == lines[1]["dag_run_id"]  # one event, whichever the content mode


@pytest.mark.parametrize("mode", MODES)
def test_unparseable_event_is_acknowledged_and_every_line_is_json(function: FunctionProcess, mode: str) -> None:
    event = object_event("gcs_finalized.cloudevent.json", "acme-landing", f"incoming/{mode}/broken.csv")
    del event["data"]["bucket"]

    assert post(function, mode, event) == 200  # redelivering it cannot help

    # log_lines() fails on any line that is not a JSON object, whichever test made the process write it.
    lines = function.log_lines()
    assert all({"severity", "message", "logger"} <= line.keys() for line in lines)
    assert any(line["message"] == "rejected event, not retrying: cloudevent.data.bucket is missing" for line in lines)
