"""Cloud payloads -> normalized events.

Each sample test reads the raw payload and compares every normalized property with the value at its
path in the payload (and, where the normalization does something, with a literal as well), so the
tests say which raw field each property comes from.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import events as ev
from shared.errors import EventError
from shared.events import Event, MessageEvent, ObjectEvent
from shared.parsing import (
    PUBSUB_TYPE,
    ParseResult,
    decode_s3_key,
    parse_cloudevent,
    parse_eventbridge,
    parse_payload,
    parse_s3_notification,
    parse_s3_record,
    parse_sns_record,
    parse_sqs_record,
    parse_time,
)
from tests.support import EVENTS_DIR, load_event


def only_event(result: ParseResult) -> Event:
    assert result.skipped == ()
    assert len(result.events) == 1, result.events
    return result.events[0]


def only_object(payload: Any) -> ObjectEvent:
    event = only_event(parse_payload(payload))
    assert isinstance(event, ObjectEvent)
    return event


def only_message(payload: Any) -> MessageEvent:
    event = only_event(parse_payload(payload))
    assert isinstance(event, MessageEvent)
    return event


def assert_utc(moment: datetime) -> None:
    assert moment.tzinfo is not None
    assert moment.utcoffset() == timedelta(0)


def b64json(value: Any) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


# --- every sample, field by field ------------------------------------------------------------


def test_gcs_finalized_cloudevent() -> None:
    raw = load_event("gcs_finalized.cloudevent.json")
    data = raw["data"]
    event = only_object(raw)

    assert event.source == "gcs"
    assert event.bucket == data["bucket"] == "acme-landing"
    assert event.key == data["name"] == "incoming/2026/11/23/orders.csv"
    assert event.uri == "gs://acme-landing/incoming/2026/11/23/orders.csv"
    # GCS sends sizes and generations as strings.
    assert isinstance(data["size"], str)
    assert event.size == int(data["size"]) == 52811
    assert isinstance(event.size, int)
    assert event.version == data["generation"] == "1763900000123456"
    # The metageneration only tells metadata updates apart; a finalize carries none.
    assert event.sequencer is None
    assert event.etag == data["etag"]
    assert event.md5 == data["md5Hash"]
    assert event.content_type == data["contentType"] == "text/csv"
    assert event.region is None
    assert event.event_type == ev.CREATED
    assert event.event_name == raw["type"]
    assert event.event_id == raw["id"]
    assert event.event_time == datetime(2026, 11, 23, 8, 13, 20, 123456, tzinfo=UTC)
    assert_utc(event.event_time)
    assert event.raw == data


def test_gcs_deleted_cloudevent() -> None:
    raw = load_event("gcs_deleted.cloudevent.json")
    data = raw["data"]
    event = only_object(raw)

    assert raw["type"] == "google.cloud.storage.object.v1.deleted"
    assert event.event_type == ev.DELETED
    assert event.event_name == raw["type"]
    assert event.bucket == data["bucket"]
    assert event.key == data["name"]
    assert event.version == data["generation"]
    assert event.size == int(data["size"])
    assert event.event_id == raw["id"]
    # The CloudEvent time wins over the object's own timestamps.
    assert event.event_time == datetime(2026, 11, 23, 9, 30, 0, 250731, tzinfo=UTC)


def test_gcs_cloudevent_without_time_falls_back_to_updated() -> None:
    raw = load_event("gcs_finalized.cloudevent.json")
    del raw["time"]
    raw["data"]["updated"] = "2026-11-23T09:00:00.5Z"
    assert only_object(raw).event_time == datetime(2026, 11, 23, 9, 0, 0, 500000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ce_type", "event_type"),
    [
        ("google.cloud.storage.object.v1.finalized", ev.CREATED),
        ("google.cloud.storage.object.v1.deleted", ev.DELETED),
        ("google.cloud.storage.object.v1.archived", ev.ARCHIVED),
        ("google.cloud.storage.object.v1.metadataUpdated", ev.METADATA_UPDATED),
        ("google.cloud.storage.object.v1.somethingNew", ev.OTHER),
    ],
)
def test_gcs_cloudevent_types_are_normalized(ce_type: str, event_type: str) -> None:
    raw = load_event("gcs_finalized.cloudevent.json")
    raw["type"] = ce_type
    event = only_object(raw)
    assert event.event_type == event_type
    assert event.event_name == ce_type


def test_pubsub_gcs_notification_json_api_v1() -> None:
    raw = load_event("pubsub_gcs_notification.cloudevent.json")
    message = raw["data"]["message"]
    attributes = message["attributes"]
    resource = json.loads(base64.b64decode(message["data"]))
    event = only_object(raw)

    assert attributes["payloadFormat"] == "JSON_API_V1"
    assert event.source == "gcs"
    assert event.bucket == resource["bucket"] == attributes["bucketId"]
    assert event.key == resource["name"] == attributes["objectId"]
    assert event.size == int(resource["size"]) == 52811
    assert event.version == resource["generation"] == attributes["objectGeneration"]
    assert event.sequencer is None  # metageneration counts only for metadata updates
    assert event.etag == resource["etag"]
    assert event.md5 == resource["md5Hash"]
    assert event.content_type == resource["contentType"]
    assert event.event_type == ev.CREATED
    assert event.event_name == attributes["eventType"] == "OBJECT_FINALIZE"
    assert event.event_id == message["messageId"]
    # eventTime (when the object changed), not publishTime (when the message was published).
    assert event.event_time == datetime(2026, 11, 23, 8, 13, 20, 123456, tzinfo=UTC)
    assert_utc(event.event_time)
    assert event.raw == resource


def test_pubsub_gcs_notification_payload_format_none() -> None:
    raw = load_event("pubsub_gcs_notification_none.cloudevent.json")
    message = raw["data"]["message"]
    attributes = message["attributes"]
    event = only_object(raw)

    assert attributes["payloadFormat"] == "NONE"
    assert "data" not in message
    assert event.source == "gcs"
    assert event.bucket == attributes["bucketId"]
    assert event.key == attributes["objectId"]
    assert event.version == attributes["objectGeneration"]
    assert event.size is None
    assert event.etag is None
    assert event.md5 is None
    assert event.event_type == ev.CREATED
    assert event.event_name == "OBJECT_FINALIZE"
    assert event.event_id == message["messageId"]
    assert event.event_time == datetime(2026, 11, 23, 8, 13, 20, 123456, tzinfo=UTC)


def test_pubsub_gcs_notification_without_event_time_uses_publish_time() -> None:
    raw = load_event("pubsub_gcs_notification_none.cloudevent.json")
    del raw["data"]["message"]["attributes"]["eventTime"]
    assert only_object(raw).event_time == datetime(2026, 11, 23, 8, 13, 21, 207000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("notification_type", "event_type"),
    [
        ("OBJECT_FINALIZE", ev.CREATED),
        ("OBJECT_DELETE", ev.DELETED),
        ("OBJECT_ARCHIVE", ev.ARCHIVED),
        ("OBJECT_METADATA_UPDATE", ev.METADATA_UPDATED),
        ("OBJECT_SOMETHING_NEW", ev.OTHER),
    ],
)
def test_pubsub_gcs_notification_types_are_normalized(notification_type: str, event_type: str) -> None:
    raw = load_event("pubsub_gcs_notification_none.cloudevent.json")
    raw["data"]["message"]["attributes"]["eventType"] = notification_type
    event = only_object(raw)
    assert event.event_type == event_type
    assert event.event_name == notification_type


def test_pubsub_message() -> None:
    raw = load_event("pubsub_message.cloudevent.json")
    message = raw["data"]["message"]
    event = only_message(raw)

    assert event.source == "pubsub"
    assert event.message_id == message["messageId"] == "11223344556677"
    assert event.body == json.loads(base64.b64decode(message["data"]))
    assert event.body == {"table": "orders", "run_date": "2026-11-23"}
    assert event.attributes == message["attributes"] == {"dag_id": "load_orders"}
    assert raw["source"] == "//pubsub.googleapis.com/projects/acme-prod/topics/dag-requests"
    assert event.topic == "projects/acme-prod/topics/dag-requests"
    # publishTime "…08:15:00.5Z": one fractional digit.
    assert event.time == datetime(2026, 11, 23, 8, 15, 0, 500000, tzinfo=UTC)
    assert_utc(event.time)


def test_pubsub_message_with_text_body_and_no_attributes() -> None:
    raw = load_event("pubsub_message.cloudevent.json")
    message = raw["data"]["message"]
    message["data"] = base64.b64encode(b"plain text, not JSON").decode()
    del message["attributes"]
    event = only_message(raw)
    assert event.body == "plain text, not JSON"
    assert event.attributes == {}


def test_pubsub_message_with_snake_case_fields_only() -> None:
    raw = load_event("pubsub_message.cloudevent.json")
    message = raw["data"]["message"]
    del message["messageId"], message["publishTime"]
    message["publish_time"] = "2026-11-23T08:16:00Z"
    event = only_message(raw)
    assert event.message_id == message["message_id"]
    assert event.time == datetime(2026, 11, 23, 8, 16, tzinfo=UTC)


def test_s3_put() -> None:
    raw = load_event("s3_put.json")
    record = raw["Records"][0]
    obj = record["s3"]["object"]
    event = only_object(raw)

    assert event.source == "s3"
    assert event.bucket == record["s3"]["bucket"]["name"] == "acme-landing"
    assert event.key == unquote_plus(obj["key"]) == "incoming/2026/11/23/daily orders.csv"
    assert event.uri == "s3://acme-landing/incoming/2026/11/23/daily orders.csv"
    assert event.size == obj["size"] == 52811
    assert event.etag == obj["eTag"]
    assert event.md5 is None
    assert event.version == obj["versionId"]
    assert event.sequencer == obj["sequencer"]
    assert event.content_type is None
    assert event.region == record["awsRegion"] == "eu-west-1"
    assert event.event_type == ev.CREATED
    assert event.event_name == record["eventName"] == "ObjectCreated:Put"
    assert event.event_id == record["responseElements"]["x-amz-request-id"]
    assert event.event_time == datetime(2026, 11, 23, 8, 13, 20, 412000, tzinfo=UTC)
    assert_utc(event.event_time)
    assert event.raw == record


def test_s3_object_removed() -> None:
    raw = load_event("s3_object_removed.json")
    record = raw["Records"][0]
    obj = record["s3"]["object"]
    event = only_object(raw)

    assert event.event_type == ev.DELETED
    assert event.event_name == record["eventName"] == "ObjectRemoved:Delete"
    assert event.key == unquote_plus(obj["key"]) == "incoming/2026/11/23/stale orders.csv"
    # Deletions carry neither size nor eTag, and this bucket is not versioned.
    assert event.size is None
    assert event.etag is None
    assert event.version is None
    assert event.sequencer == obj["sequencer"]
    assert event.event_id == record["responseElements"]["x-amz-request-id"]
    assert event.event_time == datetime(2026, 11, 23, 9, 2, 11, 77000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("event_name", "event_type"),
    [
        ("ObjectCreated:Put", ev.CREATED),
        ("ObjectCreated:CompleteMultipartUpload", ev.CREATED),
        ("s3:ObjectCreated:Copy", ev.CREATED),
        ("ObjectRemoved:Delete", ev.DELETED),
        ("ObjectRemoved:DeleteMarkerCreated", ev.DELETED),
        ("LifecycleExpiration:Delete", ev.DELETED),
        ("ObjectRestore:Completed", ev.RESTORED),
        ("LifecycleTransition", ev.ARCHIVED),
        ("IntelligentTiering", ev.ARCHIVED),
        ("ObjectTagging:Put", ev.OTHER),
        ("ReducedRedundancyLostObject", ev.OTHER),
    ],
)
def test_s3_event_names_are_normalized(event_name: str, event_type: str) -> None:
    raw = load_event("s3_put.json")
    raw["Records"][0]["eventName"] = event_name
    event = only_object(raw)
    assert event.event_type == event_type
    assert event.event_name == event_name


def test_s3_empty_version_id_is_no_version() -> None:
    raw = load_event("s3_put.json")
    raw["Records"][0]["s3"]["object"]["versionId"] = ""
    assert only_object(raw).version is None


def test_eventbridge_s3_object_created() -> None:
    raw = load_event("eventbridge_s3_object_created.json")
    detail = raw["detail"]
    obj = detail["object"]
    event = only_object(raw)

    assert event.source == "s3"
    assert event.bucket == detail["bucket"]["name"]
    assert event.key == obj["key"] == "incoming/2026/11/23/orders.parquet"
    assert event.size == obj["size"] == 918211
    assert event.etag == obj["etag"]
    assert event.version == obj["version-id"]
    assert event.sequencer == obj["sequencer"]
    assert event.region == raw["region"]
    assert event.event_type == ev.CREATED
    assert event.event_name == raw["detail-type"] == "Object Created"
    assert event.event_id == raw["id"]
    assert event.event_time == datetime(2026, 11, 23, 8, 13, 20, tzinfo=UTC)
    assert_utc(event.event_time)


@pytest.mark.parametrize(
    ("detail_type", "event_type"),
    [
        ("Object Created", ev.CREATED),
        ("Object Deleted", ev.DELETED),
        ("Object Restore Completed", ev.RESTORED),
        ("Object Storage Class Changed", ev.ARCHIVED),
        ("Object Tags Added", ev.OTHER),
    ],
)
def test_eventbridge_detail_types_are_normalized(detail_type: str, event_type: str) -> None:
    raw = load_event("eventbridge_s3_object_created.json")
    raw["detail-type"] = detail_type
    assert only_object(raw).event_type == event_type


def test_sns_message() -> None:
    raw = load_event("sns_message.json")
    sns = raw["Records"][0]["Sns"]
    event = only_message(raw)

    assert event.source == "sns"
    assert event.message_id == sns["MessageId"]
    assert event.body == json.loads(sns["Message"]) == {"table": "orders", "run_date": "2026-11-23"}
    assert event.attributes == {name: value["Value"] for name, value in sns["MessageAttributes"].items()}
    assert event.attributes == {"dag_id": "load_orders"}
    assert event.topic == sns["TopicArn"]
    assert event.time == datetime(2026, 11, 23, 8, 15, tzinfo=UTC)
    assert_utc(event.time)


def test_sns_message_with_text_body() -> None:
    raw = load_event("sns_message.json")
    raw["Records"][0]["Sns"]["Message"] = "orders are ready"
    assert only_message(raw).body == "orders are ready"


def test_sns_s3_notification() -> None:
    raw = load_event("sns_s3_notification.json")
    record = json.loads(raw["Records"][0]["Sns"]["Message"])["Records"][0]
    obj = record["s3"]["object"]
    event = only_object(raw)

    assert event.source == "s3"
    assert event.bucket == record["s3"]["bucket"]["name"]
    assert event.key == unquote_plus(obj["key"]) == "incoming/2026/11/23/daily orders.csv"
    assert event.size == obj["size"]
    assert event.version == obj["versionId"]
    assert event.sequencer == obj["sequencer"]
    assert event.event_name == record["eventName"]
    # The S3 event time, not the SNS Timestamp (08:13:20.512Z).
    assert event.event_time == datetime(2026, 11, 23, 8, 13, 20, 412000, tzinfo=UTC)


def test_sqs_batch_with_two_records() -> None:
    raw = load_event("sqs_batch_s3.json")
    direct = json.loads(raw["Records"][0]["body"])["Records"][0]
    envelope = json.loads(raw["Records"][1]["body"])
    via_sns = json.loads(envelope["Message"])["Records"][0]
    result = parse_payload(raw)

    assert result.skipped == ()
    assert len(result.events) == 2
    first, second = result.events
    assert isinstance(first, ObjectEvent)
    assert isinstance(second, ObjectEvent)
    assert envelope["Type"] == "Notification"

    assert first.key == unquote_plus(direct["s3"]["object"]["key"]) == "incoming/2026/11/23/daily orders.csv"
    assert first.version == direct["s3"]["object"]["versionId"]
    assert first.sequencer == direct["s3"]["object"]["sequencer"]

    assert second.key == unquote_plus(via_sns["s3"]["object"]["key"]) == "incoming/2026/11/23/returns.csv"
    # Only keys are URL-decoded: a version id keeps its "+".
    assert second.version == via_sns["s3"]["object"]["versionId"] == "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"
    assert second.sequencer == via_sns["s3"]["object"]["sequencer"]
    assert first.identity() != second.identity()


def test_sqs_plain_message() -> None:
    raw = load_event("sqs_plain_message.json")
    record = raw["Records"][0]
    event = only_message(raw)

    assert event.source == "sqs"
    assert event.message_id == record["messageId"]
    # Not JSON, so the body stays text.
    assert event.body == record["body"] == "rebuild orders for 2026-11-23"
    # String attributes only; the binary one is dropped.
    assert event.attributes == {"dag_id": record["messageAttributes"]["dag_id"]["stringValue"]}
    assert event.topic == record["eventSourceARN"]
    # SentTimestamp is epoch milliseconds: 1795421700250.
    assert event.time == datetime(2026, 11, 23, 8, 15, 0, 250000, tzinfo=UTC)
    assert_utc(event.time)


def test_sqs_json_body_is_parsed() -> None:
    raw = load_event("sqs_plain_message.json")
    raw["Records"][0]["body"] = '{"table": "returns", "rows": 12}'
    assert only_message(raw).body == {"table": "returns", "rows": 12}


def test_sqs_raw_sns_delivery_of_an_s3_notification() -> None:
    # SNS -> SQS with raw message delivery: the body is the S3 notification itself.
    raw = load_event("sqs_plain_message.json")
    raw["Records"][0]["body"] = raw_body = json.dumps(load_event("s3_put.json"))
    event = only_object(raw)
    assert event.source == "s3"
    assert event.key == unquote_plus(json.loads(raw_body)["Records"][0]["s3"]["object"]["key"])


# --- object keys -----------------------------------------------------------------------------


def test_s3_key_plus_is_space() -> None:
    raw = load_event("s3_put.json")
    assert raw["Records"][0]["s3"]["object"]["key"] == "incoming/2026/11/23/daily+orders.csv"
    assert only_object(raw).key == "incoming/2026/11/23/daily orders.csv"


def test_s3_key_percent_encoded_plus_stays_plus() -> None:
    raw = load_event("s3_special_keys.json")
    assert "c%2B%2B+notes" in raw["Records"][0]["s3"]["object"]["key"]
    key = only_object(raw).key
    assert key.startswith("exports/2026/c++ notes/")


def test_s3_key_percent_encoded_space_and_unicode_are_decoded() -> None:
    raw = load_event("s3_special_keys.json")
    event = only_object(raw)
    assert event.key == "exports/2026/c++ notes/résumé draft v2.txt"
    assert event.uri == "s3://acme-landing/exports/2026/c++ notes/résumé draft v2.txt"


@pytest.mark.parametrize(
    ("raw_key", "key"),
    [
        ("daily+orders.csv", "daily orders.csv"),
        ("c%2B%2B.txt", "c++.txt"),
        ("a%20b", "a b"),
        ("r%C3%A9sum%C3%A9.pdf", "résumé.pdf"),
        ("dt%3D2026-11-23/_SUCCESS", "dt=2026-11-23/_SUCCESS"),
        ("plain/key.csv", "plain/key.csv"),
        ("100%25+done", "100% done"),
    ],
)
def test_decode_s3_key(raw_key: str, key: str) -> None:
    assert decode_s3_key(raw_key) == key


def test_s3_record_key_via_sns_and_sqs_is_decoded_once() -> None:
    # "%252B" is an encoded "%2B": decoding twice would wrongly give "+".
    raw = load_event("sqs_batch_s3.json")
    body = json.loads(raw["Records"][0]["body"])
    body["Records"][0]["s3"]["object"]["key"] = "a%252Bb.csv"
    raw["Records"][0]["body"] = json.dumps(body)
    del raw["Records"][1]
    assert only_object(raw).key == "a%2Bb.csv"


# --- s3:TestEvent ----------------------------------------------------------------------------


def _assert_test_event_skipped(result: ParseResult) -> None:
    assert result.events == ()
    assert len(result.skipped) == 1
    assert "s3:TestEvent" in result.skipped[0]
    assert "acme-landing" in result.skipped[0]


def test_s3_test_event_is_skipped_not_an_error() -> None:
    _assert_test_event_skipped(parse_payload(load_event("s3_test_event.json")))


def test_s3_test_event_inside_sqs_is_skipped() -> None:
    raw = load_event("sqs_s3_test_event.json")
    assert json.loads(raw["Records"][0]["body"])["Event"] == "s3:TestEvent"
    _assert_test_event_skipped(parse_payload(raw))


def test_s3_test_event_inside_sns_is_skipped() -> None:
    raw = load_event("sns_s3_notification.json")
    raw["Records"][0]["Sns"]["Message"] = json.dumps(load_event("s3_test_event.json"))
    _assert_test_event_skipped(parse_payload(raw))


def test_s3_test_event_inside_sns_inside_sqs_is_skipped() -> None:
    raw = load_event("sqs_batch_s3.json")
    envelope = json.loads(raw["Records"][1]["body"])
    envelope["Message"] = json.dumps(load_event("s3_test_event.json"))
    raw["Records"][1]["body"] = json.dumps(envelope)
    result = parse_payload(raw)
    # The first record is a real event; the test event next to it is only skipped.
    assert len(result.events) == 1
    assert isinstance(result.events[0], ObjectEvent)
    assert result.events[0].key == "incoming/2026/11/23/daily orders.csv"
    assert len(result.skipped) == 1
    assert "s3:TestEvent" in result.skipped[0]


def test_s3_test_event_through_parse_s3_notification() -> None:
    _assert_test_event_skipped(parse_s3_notification(load_event("s3_test_event.json")))


# --- identity across delivery paths ----------------------------------------------------------


def test_gcs_cloudevent_and_pubsub_notification_give_equal_identity() -> None:
    direct = only_object(load_event("gcs_finalized.cloudevent.json"))
    notified = only_object(load_event("pubsub_gcs_notification.cloudevent.json"))
    assert direct.event_id != notified.event_id
    assert direct.identity() == notified.identity()
    assert direct.identity() == {
        "source": "gcs",
        "bucket": "acme-landing",
        "key": "incoming/2026/11/23/orders.csv",
        "event_type": "created",
        "version": "1763900000123456",
        "sequencer": None,
        "event_id": None,
    }


def test_gcs_cloudevent_and_payload_format_none_notification_give_equal_identity() -> None:
    direct = only_object(load_event("gcs_finalized.cloudevent.json"))
    notified = only_object(load_event("pubsub_gcs_notification_none.cloudevent.json"))
    assert direct.identity() == notified.identity()


def test_s3_direct_sns_and_sqs_give_equal_events() -> None:
    direct = only_object(load_event("s3_put.json"))
    via_sns = only_object(load_event("sns_s3_notification.json"))
    via_sqs = parse_payload(load_event("sqs_batch_s3.json")).events[0]
    assert direct.identity() == via_sns.identity() == via_sqs.identity()
    # Every normalized field is equal too (raw is excluded from comparison).
    assert direct == via_sns == via_sqs
    assert direct.conf() == via_sns.conf() == via_sqs.conf()


def test_eventbridge_and_s3_notification_of_same_object_give_equal_identity() -> None:
    bridge = load_event("eventbridge_s3_object_created.json")
    notification = load_event("s3_put.json")
    obj = notification["Records"][0]["s3"]["object"]
    obj["key"] = bridge["detail"]["object"]["key"]
    obj["versionId"] = bridge["detail"]["object"]["version-id"]
    obj["sequencer"] = bridge["detail"]["object"]["sequencer"]
    assert only_object(bridge).identity() == only_object(notification).identity()


def test_identity_changes_with_a_new_gcs_generation() -> None:
    raw = load_event("gcs_finalized.cloudevent.json")
    first = only_object(raw)
    raw["data"]["generation"] = "1763900000999999"
    second = only_object(raw)
    assert first.identity() != second.identity()
    assert second.identity()["version"] == "1763900000999999"


def test_identity_of_created_and_deleted_differ_for_the_same_generation() -> None:
    created = only_object(load_event("gcs_finalized.cloudevent.json"))
    deleted = only_object(load_event("gcs_deleted.cloudevent.json"))
    assert created.version == deleted.version
    assert created.identity() != deleted.identity()


def test_identity_uses_event_id_only_without_version_and_sequencer() -> None:
    raw = load_event("s3_put.json")
    obj = raw["Records"][0]["s3"]["object"]
    del obj["versionId"], obj["sequencer"]
    event = only_object(raw)
    assert event.identity()["event_id"] == "C3D13FE58DE4C810"
    with_version = only_object(load_event("s3_put.json"))
    assert with_version.identity()["event_id"] is None


def test_message_identity() -> None:
    event = only_message(load_event("sns_message.json"))
    assert event.identity() == {
        "source": "sns",
        "topic": "arn:aws:sns:eu-west-1:123456789012:dag-requests",
        "message_id": "b7e0d5a4-3f8c-5a0e-8d1a-6c2f4e9b0a77",
    }


# --- timestamps ------------------------------------------------------------------------------


def test_nanosecond_timestamps_in_cloudevent_and_pubsub() -> None:
    raw = load_event("gcs_finalized.cloudevent.json")
    raw["time"] = "2026-11-23T08:13:20.123456789Z"
    assert only_object(raw).event_time == datetime(2026, 11, 23, 8, 13, 20, 123456, tzinfo=UTC)

    raw = load_event("pubsub_message.cloudevent.json")
    raw["data"]["message"]["publishTime"] = "2026-11-23T08:15:00.987654321Z"
    assert only_message(raw).time == datetime(2026, 11, 23, 8, 15, 0, 987654, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-11-23T08:13:20Z", datetime(2026, 11, 23, 8, 13, 20, tzinfo=UTC)),
        ("2026-11-23T08:13:20.5Z", datetime(2026, 11, 23, 8, 13, 20, 500000, tzinfo=UTC)),
        ("2026-11-23T08:13:20.123456789Z", datetime(2026, 11, 23, 8, 13, 20, 123456, tzinfo=UTC)),
        ("2026-11-23T08:13:20.123456789+00:00", datetime(2026, 11, 23, 8, 13, 20, 123456, tzinfo=UTC)),
        ("2026-11-23T10:13:20+02:00", datetime(2026, 11, 23, 8, 13, 20, tzinfo=UTC)),
        ("2026-11-23T00:30:00-05:00", datetime(2026, 11, 23, 5, 30, tzinfo=UTC)),
        ("2026-11-23T08:13:20", datetime(2026, 11, 23, 8, 13, 20, tzinfo=UTC)),
        (" 2026-11-23T08:13:20Z\n", datetime(2026, 11, 23, 8, 13, 20, tzinfo=UTC)),
    ],
)
def test_parse_time_returns_aware_utc(text: str, moment: datetime) -> None:
    parsed = parse_time(text, "where")
    assert parsed == moment
    assert_utc(parsed)
    assert parsed.tzinfo == UTC


# --- shape-specific entry points -------------------------------------------------------------


def test_per_shape_functions_agree_with_parse_payload() -> None:
    s3 = load_event("s3_put.json")
    assert parse_s3_record(s3["Records"][0]) == only_object(s3)

    sqs = load_event("sqs_batch_s3.json")
    assert parse_sqs_record(sqs["Records"][1]).events == parse_payload(sqs).events[1:]

    sns = load_event("sns_message.json")
    assert parse_sns_record(sns["Records"][0]).events == parse_payload(sns).events

    bridge = load_event("eventbridge_s3_object_created.json")
    assert parse_eventbridge(bridge) == only_object(bridge)

    gcs = load_event("gcs_finalized.cloudevent.json")
    assert parse_cloudevent(gcs).events == parse_payload(gcs).events


def test_a_list_of_payloads_is_parsed_in_order() -> None:
    result = parse_payload(
        [load_event("s3_test_event.json"), load_event("gcs_finalized.cloudevent.json"), load_event("sns_message.json")]
    )
    assert [e.source for e in result.events] == ["gcs", "sns"]
    assert len(result.skipped) == 1


def test_every_sample_parses() -> None:
    names = sorted(p.name for p in EVENTS_DIR.glob("*.json"))
    assert len(names) >= 9
    for name in names:
        result = parse_payload(load_event(name))
        assert result.events or result.skipped, name


# --- malformed payloads ----------------------------------------------------------------------


def mutated(name: str, change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    payload = copy.deepcopy(load_event(name))
    change(payload)
    return payload


def _s3_obj(payload: dict[str, Any]) -> dict[str, Any]:
    obj: dict[str, Any] = payload["Records"][0]["s3"]["object"]
    return obj


def _pubsub_message(payload: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = payload["data"]["message"]
    return message


def _sqs_body_without_key(payload: dict[str, Any]) -> None:
    body = json.loads(payload["Records"][0]["body"])
    del body["Records"][0]["s3"]["object"]["key"]
    payload["Records"][0]["body"] = json.dumps(body)


def _sns_message_without_event_time(payload: dict[str, Any]) -> None:
    message = json.loads(payload["Records"][0]["Sns"]["Message"])
    del message["Records"][0]["eventTime"]
    payload["Records"][0]["Sns"]["Message"] = json.dumps(message)


MALFORMED = [
    # missing keys
    pytest.param(
        mutated("s3_put.json", lambda p: p["Records"][0]["s3"]["bucket"].pop("name")),
        "Records[0].s3.bucket.name is missing",
        id="missing-key-s3-bucket-name",
    ),
    pytest.param(
        mutated("s3_put.json", lambda p: p["Records"][0]["s3"].pop("object")),
        "Records[0].s3.object is missing",
        id="missing-key-s3-object",
    ),
    pytest.param(
        mutated("gcs_finalized.cloudevent.json", lambda p: p["data"].pop("name")),
        "cloudevent.data.name is missing",
        id="missing-key-gcs-name",
    ),
    pytest.param(
        mutated("gcs_finalized.cloudevent.json", lambda p: p.pop("id")),
        "cloudevent.id is missing",
        id="missing-key-cloudevent-id",
    ),
    pytest.param(
        mutated("sqs_batch_s3.json", _sqs_body_without_key),
        "Records[0].body.Records[0].s3.object.key is missing",
        id="missing-key-inside-sqs-body",
    ),
    pytest.param(
        mutated("sns_s3_notification.json", _sns_message_without_event_time),
        "Records[0].Sns.Message.Records[0].eventTime is missing",
        id="missing-key-inside-sns-message",
    ),
    pytest.param(
        mutated("eventbridge_s3_object_created.json", lambda p: p["detail"]["object"].pop("key")),
        "eventbridge.detail.object.key is missing",
        id="missing-key-eventbridge",
    ),
    pytest.param(
        mutated("sns_message.json", lambda p: p["Records"][0]["Sns"].pop("MessageId")),
        "Records[0].Sns.MessageId is missing",
        id="missing-key-sns-message-id",
    ),
    pytest.param(
        mutated("sqs_plain_message.json", lambda p: p["Records"][0]["attributes"].pop("SentTimestamp")),
        "Records[0].attributes.SentTimestamp: expected epoch milliseconds",
        id="missing-key-sqs-sent-timestamp",
    ),
    pytest.param(
        mutated("pubsub_message.cloudevent.json", lambda p: p["data"].pop("message")),
        "cloudevent.data.message is missing",
        id="missing-key-pubsub-message",
    ),
    # null counts as missing
    pytest.param(
        mutated("s3_put.json", lambda p: p["Records"][0].update(eventName=None)),
        "Records[0].eventName is missing",
        id="null-is-missing",
    ),
    # empty strings
    pytest.param(
        mutated("gcs_finalized.cloudevent.json", lambda p: p["data"].update(bucket="")),
        "cloudevent.data.bucket is empty",
        id="empty-bucket",
    ),
    # wrong types
    pytest.param(
        mutated("s3_put.json", lambda p: p["Records"][0].update(eventName=42)),
        "Records[0].eventName: expected str, got int",
        id="wrong-type-event-name",
    ),
    pytest.param(
        mutated("s3_put.json", lambda p: p.update(Records={"0": {}})),
        "event.Records: expected list, got dict",
        id="wrong-type-records",
    ),
    pytest.param(
        mutated("sqs_plain_message.json", lambda p: p["Records"][0].update(body={"a": 1})),
        "Records[0].body: expected str, got dict",
        id="wrong-type-sqs-body",
    ),
    pytest.param(
        mutated("pubsub_message.cloudevent.json", lambda p: _pubsub_message(p).update(attributes={"dag_id": 5})),
        "cloudevent.data.message.attributes.dag_id: expected str, got int",
        id="wrong-type-pubsub-attribute",
    ),
    pytest.param(
        mutated("sns_message.json", lambda p: p["Records"][0]["Sns"]["MessageAttributes"]["dag_id"].update(Value=7)),
        "Records[0].Sns.MessageAttributes.dag_id: expected str, got int",
        id="wrong-type-sns-attribute",
    ),
    pytest.param(
        mutated("gcs_finalized.cloudevent.json", lambda p: p["data"].update(generation=["1"])),
        "cloudevent.data.generation: expected a string, got list",
        id="wrong-type-generation",
    ),
    pytest.param(
        mutated("gcs_finalized.cloudevent.json", lambda p: p["data"].update(etag=123)),
        "cloudevent.data.etag: expected str, got int",
        id="wrong-type-etag",
    ),
    pytest.param(
        mutated("sns_message.json", lambda p: p["Records"][0]["Sns"].update(Message={"a": 1})),
        "Records[0].Sns.Message: expected str, got dict",
        id="wrong-type-sns-message",
    ),
    # bad base64
    pytest.param(
        mutated("pubsub_message.cloudevent.json", lambda p: _pubsub_message(p).update(data="not base64!")),
        "cloudevent.data.message.data: not valid base64",
        id="bad-base64",
    ),
    pytest.param(
        mutated("pubsub_message.cloudevent.json", lambda p: _pubsub_message(p).update(data="é9k=")),
        "cloudevent.data.message.data: not valid base64",
        id="bad-base64-non-ascii",
    ),
    pytest.param(
        mutated(
            "pubsub_gcs_notification.cloudevent.json",
            lambda p: _pubsub_message(p).update(data=base64.b64encode(b"<xml/>").decode()),
        ),
        "cloudevent.data.message.data: JSON_API_V1 notification body is not JSON",
        id="notification-body-not-json",
    ),
    # not an object
    pytest.param(42, "event: expected a JSON object or list, got int", id="not-an-object-int"),
    pytest.param("Records", "event: expected a JSON object or list, got str", id="not-an-object-str"),
    pytest.param(None, "event: expected a JSON object or list, got null", id="not-an-object-null"),
    pytest.param(
        mutated("s3_put.json", lambda p: p["Records"].__setitem__(0, "record")),
        "Records[0]: expected a JSON object, got str",
        id="not-an-object-record",
    ),
    pytest.param(
        mutated("s3_put.json", lambda p: p["Records"][0]["s3"].update(bucket="acme-landing")),
        "Records[0].s3.bucket: expected dict, got str",
        id="not-an-object-s3-bucket",
    ),
    pytest.param(
        mutated("gcs_finalized.cloudevent.json", lambda p: p.update(data="payload")),
        "cloudevent.data: expected dict, got str",
        id="not-an-object-cloudevent-data",
    ),
    pytest.param(
        mutated(
            "pubsub_gcs_notification.cloudevent.json",
            lambda p: _pubsub_message(p).update(data=b64json(["not", "an", "object"])),
        ),
        "cloudevent.data.message.data: expected a JSON object, got list",
        id="not-an-object-notification-body",
    ),
    # unknown CloudEvent type
    pytest.param(
        mutated("gcs_finalized.cloudevent.json", lambda p: p.update(type="google.cloud.firestore.document.v1.written")),
        "cloudevent.type 'google.cloud.firestore.document.v1.written' is not supported",
        id="unknown-cloudevent-type",
    ),
    pytest.param(
        mutated("gcs_finalized.cloudevent.json", lambda p: p.pop("type")),
        "cloudevent.type is missing",
        id="cloudevent-without-type",
    ),
    # unknown top-level shapes
    pytest.param({"hello": "world"}, "event: unrecognized payload (top-level keys: hello)", id="unknown-shape"),
    pytest.param({}, "event: unrecognized payload (top-level keys: none)", id="unknown-shape-empty"),
    pytest.param(
        mutated("s3_put.json", lambda p: p["Records"][0].update(eventSource="aws:kinesis")),
        "Records[0].eventSource 'aws:kinesis' is not supported",
        id="unknown-record-source",
    ),
    pytest.param(
        mutated("eventbridge_s3_object_created.json", lambda p: p.update(source="aws.ec2")),
        "event: unrecognized payload",
        id="eventbridge-not-s3",
    ),
    # bool where a size is expected, and other bad sizes
    pytest.param(
        mutated("gcs_finalized.cloudevent.json", lambda p: p["data"].update(size=True)),
        "cloudevent.data.size: expected a size, got bool",
        id="bool-size-gcs",
    ),
    pytest.param(
        mutated("s3_put.json", lambda p: _s3_obj(p).update(size=False)),
        "Records[0].s3.object.size: expected a size, got bool",
        id="bool-size-s3",
    ),
    pytest.param(
        mutated("eventbridge_s3_object_created.json", lambda p: p["detail"]["object"].update(size=1.5)),
        "eventbridge.detail.object.size: expected a size, got float",
        id="float-size",
    ),
    pytest.param(
        mutated("gcs_finalized.cloudevent.json", lambda p: p["data"].update(size="big")),
        "cloudevent.data.size: expected a size, got 'big'",
        id="text-size",
    ),
    pytest.param(
        mutated("s3_put.json", lambda p: _s3_obj(p).update(size=-1)),
        "Records[0].s3.object.size: negative size -1",
        id="negative-size",
    ),
    # bad timestamps
    pytest.param(
        mutated("s3_put.json", lambda p: p["Records"][0].update(eventTime="yesterday")),
        "Records[0].eventTime: not an RFC 3339 timestamp: 'yesterday'",
        id="bad-timestamp-s3",
    ),
    pytest.param(
        mutated("gcs_finalized.cloudevent.json", lambda p: p.update(time="2026-13-45T08:13:20Z")),
        "cloudevent.time: not an RFC 3339 timestamp",
        id="bad-timestamp-cloudevent",
    ),
    pytest.param(
        mutated("eventbridge_s3_object_created.json", lambda p: p.update(time="")),
        "eventbridge.time is empty",
        id="empty-timestamp-eventbridge",
    ),
    pytest.param(
        mutated("sns_message.json", lambda p: p["Records"][0]["Sns"].update(Timestamp="23/11/2026 08:15")),
        "Records[0].Sns.Timestamp: not an RFC 3339 timestamp",
        id="bad-timestamp-sns",
    ),
    pytest.param(
        mutated(
            "pubsub_gcs_notification.cloudevent.json",
            lambda p: _pubsub_message(p)["attributes"].update(eventTime="now"),
        ),
        "cloudevent.data.message.attributes.eventTime: not an RFC 3339 timestamp",
        id="bad-timestamp-notification",
    ),
    pytest.param(
        mutated("sqs_plain_message.json", lambda p: p["Records"][0]["attributes"].update(SentTimestamp="soon")),
        "Records[0].attributes.SentTimestamp: expected epoch milliseconds, got 'soon'",
        id="bad-timestamp-sqs",
    ),
    pytest.param(
        mutated("s3_put.json", lambda p: p["Records"][0].update(eventTime="0001-01-01T00:00:00+01:00")),
        "Records[0].eventTime",
        id="bad-timestamp-out-of-range",
    ),
]


@pytest.mark.parametrize(("payload", "message"), MALFORMED)
def test_malformed_payload_raises_event_error_naming_the_path(payload: Any, message: str) -> None:
    with pytest.raises(EventError) as caught:
        parse_payload(payload)
    assert message in str(caught.value)
    assert caught.value.retryable is False


def test_deeply_nested_message_body_does_not_escape_as_recursion_error() -> None:
    raw = load_event("pubsub_message.cloudevent.json")
    _pubsub_message(raw)["data"] = base64.b64encode(b"[" * 100_000).decode()
    with contextlib.suppress(EventError):
        parse_payload(raw)


def test_message_conf_is_strict_json() -> None:
    raw = load_event("sqs_plain_message.json")
    raw["Records"][0]["body"] = '{"threshold": NaN}'
    try:
        event = only_message(raw)
    except EventError:
        return
    json.dumps(event.conf(), allow_nan=False)


# --- property: any JSON value parses or raises EventError ------------------------------------

# Keys and strings the parser looks for, so generated values reach past the top-level checks.
_KEYS = st.sampled_from(
    [
        "specversion",
        "type",
        "id",
        "time",
        "source",
        "data",
        "message",
        "attributes",
        "messageId",
        "publishTime",
        "Records",
        "eventSource",
        "EventSource",
        "eventName",
        "eventTime",
        "s3",
        "bucket",
        "object",
        "name",
        "key",
        "size",
        "generation",
        "Sns",
        "Message",
        "MessageId",
        "Timestamp",
        "body",
        "Event",
        "Type",
        "detail-type",
        "detail",
        "bucketId",
        "objectId",
        "eventType",
        "payloadFormat",
        "SentTimestamp",
    ]
)
_STRINGS = st.sampled_from(
    [
        "aws:s3",
        "aws:sns",
        "aws:sqs",
        "aws.s3",
        "s3:TestEvent",
        "Notification",
        "Object Created",
        "ObjectCreated:Put",
        "google.cloud.storage.object.v1.finalized",
        PUBSUB_TYPE,
        "OBJECT_FINALIZE",
        "JSON_API_V1",
        "2026-11-23T08:13:20Z",
        "1795421700250",
        "eyJhIjogMX0=",
        "e30=",
        "",
    ]
)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _STRINGS
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(_KEYS | st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=30,
)


_SAMPLES = [load_event(path.name) for path in sorted(EVENTS_DIR.glob("*.json"))]


def _node_paths(value: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    paths = [prefix]
    if isinstance(value, dict):
        for name, item in value.items():
            paths += _node_paths(item, (*prefix, name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += _node_paths(item, (*prefix, index))
    return paths


@st.composite
def _mutated_samples(draw: st.DrawFn) -> Any:
    """A real sample with one field deleted or replaced by any JSON value: reaches every parser."""
    sample = copy.deepcopy(draw(st.sampled_from(_SAMPLES)))
    path = draw(st.sampled_from(_node_paths(sample)[1:]))
    parent: Any = sample
    for step in path[:-1]:
        parent = parent[step]
    if draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(_JSON)
    return sample


@settings(max_examples=300, deadline=None, database=None)
@given(_JSON | _mutated_samples())
def test_any_json_value_parses_or_raises_event_error(value: Any) -> None:
    try:
        result = parse_payload(value)
    except EventError:
        return
    assert isinstance(result, ParseResult)


def test_gcs_metadata_update_uses_metageneration_as_sequencer() -> None:
    raw = load_event("gcs_finalized.cloudevent.json")
    raw["type"] = "google.cloud.storage.object.v1.metadataUpdated"
    raw["data"]["metageneration"] = "3"
    event = only_object(raw)
    assert (event.event_type, event.sequencer) == ("metadata_updated", "3")
    raw["data"]["metageneration"] = "4"
    assert only_object(raw).identity() != event.identity()


def test_eventbridge_key_plus_stays_plus_and_percent_is_decoded() -> None:
    raw = load_event("eventbridge_s3_object_created.json")
    raw["detail"]["object"]["key"] = "video+data%20final.mp4"
    assert only_object(raw).key == "video+data final.mp4"
