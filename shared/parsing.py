"""Cloud payloads -> normalized events.

Each supported payload is read through a thin view (:class:`_View`) that turns a missing or
mistyped field into an :class:`~shared.errors.EventError` naming the path, then normalized once.
:func:`parse_payload` detects which payload it was given; the per-shape functions are public so an
edge that already knows the shape (one SQS record, one S3 record) can call them directly.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import unquote, unquote_plus

from shared import events as ev
from shared.errors import EventError
from shared.events import Event, MessageEvent, ObjectEvent

T = TypeVar("T")

GCS_TYPE_PREFIX = "google.cloud.storage.object.v1."
PUBSUB_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"

_GCS_CLOUDEVENT_TYPES = {
    "finalized": ev.CREATED,
    "deleted": ev.DELETED,
    "archived": ev.ARCHIVED,
    "metadataUpdated": ev.METADATA_UPDATED,
}
_GCS_NOTIFICATION_TYPES = {
    "OBJECT_FINALIZE": ev.CREATED,
    "OBJECT_DELETE": ev.DELETED,
    "OBJECT_ARCHIVE": ev.ARCHIVED,
    "OBJECT_METADATA_UPDATE": ev.METADATA_UPDATED,
}
# S3 event names are "Family:Detail"; the family decides the normalized type.
_S3_EVENT_FAMILIES = {
    "ObjectCreated": ev.CREATED,
    "ObjectRemoved": ev.DELETED,
    "LifecycleExpiration": ev.DELETED,
    "ObjectRestore": ev.RESTORED,
    "LifecycleTransition": ev.ARCHIVED,
    "IntelligentTiering": ev.ARCHIVED,
}
_EVENTBRIDGE_TYPES = {
    "Object Created": ev.CREATED,
    "Object Deleted": ev.DELETED,
    "Object Restore Completed": ev.RESTORED,
    "Object Storage Class Changed": ev.ARCHIVED,
}
_S3_TEST_EVENT = "s3:TestEvent"


@dataclass(frozen=True)
class ParseResult:
    """The events found in one payload, and why any part of it was skipped."""

    events: tuple[Event, ...] = ()
    skipped: tuple[str, ...] = ()

    def __add__(self, other: ParseResult) -> ParseResult:
        return ParseResult(self.events + other.events, self.skipped + other.skipped)


class _View:
    """A read-only view of one JSON object that knows where it sits in the payload."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise EventError(f"{where}: expected a JSON object, got {_kind(data)}")
        self.data: Mapping[str, Any] = data
        self.where = where

    def req(self, key: str, kind: type[T]) -> T:
        """A required field of the given JSON kind."""
        if key not in self.data or self.data[key] is None:
            raise EventError(f"{self.where}.{key} is missing")
        return self._typed(key, kind)

    def opt(self, key: str, kind: type[T]) -> T | None:
        """An optional field: ``None`` when absent or null, an error when of the wrong kind."""
        if self.data.get(key) is None:
            return None
        return self._typed(key, kind)

    def view(self, key: str) -> _View:
        """A required nested object."""
        return _View(self.req(key, dict), f"{self.where}.{key}")

    def text(self, key: str) -> str:
        """A required non-empty string."""
        value = self.req(key, str)
        if not value:
            raise EventError(f"{self.where}.{key} is empty")
        return value

    def _typed(self, key: str, kind: type[T]) -> T:
        value = self.data[key]
        # bool is an int in Python but never a valid number in these payloads.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise EventError(f"{self.where}.{key}: expected {kind.__name__}, got {_kind(value)}")
        return value


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def parse_time(value: str, where: str) -> datetime:
    """An RFC 3339 timestamp as an aware UTC datetime (fractions past microseconds are dropped)."""
    # Some producers send nanoseconds; datetime keeps six digits.
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", value.strip())
    try:
        parsed = datetime.fromisoformat(trimmed)
    except ValueError:
        raise EventError(f"{where}: not an RFC 3339 timestamp: {value[:64]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise EventError(f"{where}: timestamp out of range: {value[:64]!r}") from None


def _size(value: Any, where: str) -> int | None:
    # GCS sends sizes as decimal strings, S3 as numbers.
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise EventError(f"{where}: expected a size, got {_kind(value)}")
    try:
        size = int(value)
    except ValueError:
        raise EventError(f"{where}: expected a size, got {str(value)[:32]!r}") from None
    if size < 0:
        raise EventError(f"{where}: negative size {size}")
    return size


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_body(text: str) -> Any:
    """A message body as JSON where it is strict JSON, else as text.

    NaN and Infinity (which Python writes by default) are not JSON: such a body stays text, so the
    conf built from it is always valid JSON. Nesting deep enough to exhaust the parser stays text too.
    """
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return text


# --- Google Cloud -----------------------------------------------------------------------------


def parse_cloudevent(payload: Mapping[str, Any]) -> ParseResult:
    """A CloudEvent as Eventarc delivers it (structured: attributes and ``data`` in one object)."""
    root = _View(payload, "cloudevent")
    ce_type = root.text("type")
    if ce_type.startswith(GCS_TYPE_PREFIX):
        return ParseResult(events=(_gcs_cloudevent(root, ce_type),))
    if ce_type == PUBSUB_TYPE:
        return ParseResult(events=(_pubsub_cloudevent(root),))
    raise EventError(f"cloudevent.type {ce_type!r} is not supported (expected {GCS_TYPE_PREFIX}* or {PUBSUB_TYPE})")


def _gcs_cloudevent(root: _View, ce_type: str) -> ObjectEvent:
    action = ce_type.removeprefix(GCS_TYPE_PREFIX)
    data = root.view("data")
    time = root.opt("time", str) or data.opt("updated", str) or data.text("timeCreated")
    return _gcs_object(
        data,
        event_type=_GCS_CLOUDEVENT_TYPES.get(action, ev.OTHER),
        event_name=ce_type,
        event_id=root.text("id"),
        event_time=parse_time(time, f"{root.where}.time"),
    )


def _gcs_object(data: _View, *, event_type: str, event_name: str, event_id: str, event_time: datetime) -> ObjectEvent:
    return ObjectEvent(
        source=ev.GCS,
        bucket=data.text("bucket"),
        key=data.text("name"),
        event_type=event_type,
        event_name=event_name,
        event_time=event_time,
        event_id=event_id,
        size=_size(data.data.get("size"), f"{data.where}.size"),
        etag=data.opt("etag", str),
        md5=data.opt("md5Hash", str),
        version=_opt_text(data, "generation"),
        # The metageneration tells metadata updates of one generation apart; for every other event it
        # is noise that some delivery paths (payloadFormat NONE) do not carry.
        sequencer=_opt_text(data, "metageneration") if event_type == ev.METADATA_UPDATED else None,
        content_type=data.opt("contentType", str),
        raw=data.data,
    )


def _opt_text(view: _View, key: str) -> str | None:
    # Generations are int64 and arrive as strings or numbers depending on the producer.
    value = view.data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise EventError(f"{view.where}.{key}: expected a string, got {_kind(value)}")
    return str(value)


def _pubsub_cloudevent(root: _View) -> Event:
    message = root.view("data").view("message")
    message_id = message.opt("messageId", str) or message.text("message_id")
    attributes = _string_map(message.opt("attributes", dict) or {}, f"{message.where}.attributes")
    body_bytes = _b64(message.opt("data", str) or "", f"{message.where}.data")
    publish_time = message.opt("publishTime", str) or message.opt("publish_time", str) or root.text("time")
    time = parse_time(publish_time, f"{message.where}.publishTime")
    if "bucketId" in attributes and "objectId" in attributes and "eventType" in attributes:
        return _gcs_notification(attributes, body_bytes, message_id, time, message.where)
    text = body_bytes.decode("utf-8", errors="replace")
    return MessageEvent(
        source=ev.PUBSUB,
        message_id=message_id,
        body=_json_body(text),
        attributes=attributes,
        time=time,
        topic=_topic_from_source(root.opt("source", str)),
        raw=root.data,
    )


def _gcs_notification(
    attributes: Mapping[str, str], body: bytes, message_id: str, publish_time: datetime, where: str
) -> ObjectEvent:
    """Cloud Storage's Pub/Sub notification: the object resource in the body (JSON_API_V1) or none."""
    event_name = attributes["eventType"]
    event_time = (
        parse_time(attributes["eventTime"], f"{where}.attributes.eventTime")
        if "eventTime" in attributes
        else publish_time
    )
    if attributes.get("payloadFormat") == "JSON_API_V1":
        try:
            resource = json.loads(body)
        except (ValueError, RecursionError):
            raise EventError(f"{where}.data: JSON_API_V1 notification body is not JSON") from None
        data = _View(resource, f"{where}.data")
    else:
        # payloadFormat NONE: the attributes are all there is.
        data = _View(
            {
                "bucket": attributes["bucketId"],
                "name": attributes["objectId"],
                "generation": attributes.get("objectGeneration"),
                "metageneration": attributes.get("objectMetageneration"),
            },
            f"{where}.attributes",
        )
    return _gcs_object(
        data,
        event_type=_GCS_NOTIFICATION_TYPES.get(event_name, ev.OTHER),
        event_name=event_name,
        event_id=message_id,
        event_time=event_time,
    )


def _topic_from_source(source: str | None) -> str | None:
    # "//pubsub.googleapis.com/projects/P/topics/T" -> "projects/P/topics/T"
    return source.removeprefix("//pubsub.googleapis.com/") if source else None


def _b64(value: str, where: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise EventError(f"{where}: not valid base64") from None


def _string_map(value: Mapping[str, Any], where: str) -> dict[str, str]:
    for key, item in value.items():
        if not isinstance(item, str):
            raise EventError(f"{where}.{key}: expected str, got {_kind(item)}")
    return dict(value)


# --- AWS --------------------------------------------------------------------------------------


def decode_s3_key(raw_key: str) -> str:
    """S3 notifications form-encode object keys (a space arrives as ``+``); this is their one decoder."""
    return unquote_plus(raw_key)


def parse_s3_record(record: Mapping[str, Any], where: str = "record") -> ObjectEvent:
    """One record of an S3 event notification (``Records[i]`` with ``eventSource`` ``aws:s3``)."""
    rec = _View(record, where)
    s3 = rec.view("s3")
    obj = s3.view("object")
    event_name = rec.text("eventName")
    return ObjectEvent(
        source="s3",
        bucket=s3.view("bucket").text("name"),
        key=decode_s3_key(obj.text("key")),
        event_type=_s3_event_type(event_name),
        event_name=event_name,
        event_time=parse_time(rec.text("eventTime"), f"{where}.eventTime"),
        event_id=_s3_request_id(rec) or obj.opt("sequencer", str) or "",
        size=_size(obj.data.get("size"), f"{obj.where}.size"),
        etag=obj.opt("eTag", str),
        version=obj.opt("versionId", str) or None,
        sequencer=obj.opt("sequencer", str),
        region=rec.opt("awsRegion", str),
        raw=record,
    )


def _s3_request_id(rec: _View) -> str | None:
    elements = rec.opt("responseElements", dict) or {}
    request_id = elements.get("x-amz-request-id")
    return request_id if isinstance(request_id, str) else None


def _s3_event_type(event_name: str) -> str:
    family = event_name.removeprefix("s3:").split(":", 1)[0]
    return _S3_EVENT_FAMILIES.get(family, ev.OTHER)


def parse_s3_notification(payload: Mapping[str, Any], where: str = "s3") -> ParseResult:
    """A whole S3 notification document: ``{"Records": [...]}`` or the ``s3:TestEvent`` S3 sends on setup."""
    root = _View(payload, where)
    if root.data.get("Event") == _S3_TEST_EVENT:
        bucket = root.data.get("Bucket")
        return ParseResult(
            skipped=(f"{where}: s3:TestEvent for bucket {bucket!r} (sent when a notification is configured)",)
        )
    records = root.req("Records", list)
    return ParseResult(events=tuple(parse_s3_record(r, f"{where}.Records[{i}]") for i, r in enumerate(records)))


def parse_eventbridge(payload: Mapping[str, Any], where: str = "eventbridge") -> ObjectEvent:
    """An S3 event routed through EventBridge (``source`` ``aws.s3``)."""
    root = _View(payload, where)
    detail_type = root.text("detail-type")
    detail = root.view("detail")
    obj = detail.view("object")
    return ObjectEvent(
        source="s3",
        bucket=detail.view("bucket").text("name"),
        # EventBridge percent-encodes keys but leaves "+" as it is, unlike S3 notifications.
        key=unquote(obj.text("key")),
        event_type=_EVENTBRIDGE_TYPES.get(detail_type, ev.OTHER),
        event_name=detail_type,
        event_time=parse_time(root.text("time"), f"{where}.time"),
        event_id=root.text("id"),
        size=_size(obj.data.get("size"), f"{obj.where}.size"),
        etag=obj.opt("etag", str),
        version=obj.opt("version-id", str) or None,
        sequencer=obj.opt("sequencer", str),
        region=root.opt("region", str),
        raw=payload,
    )


def parse_sns_record(record: Mapping[str, Any], where: str = "record") -> ParseResult:
    """One SNS record delivered to Lambda: an S3 notification inside, or an application message."""
    return _sns_envelope(_View(record, where).view("Sns"))


def _sns_envelope(sns: _View) -> ParseResult:
    """The SNS notification itself (also what SQS receives from SNS without raw delivery)."""
    message = sns.req("Message", str)
    inner = _json_body(message)
    if _is_s3_notification(inner):
        return parse_s3_notification(inner, f"{sns.where}.Message")
    attributes = {
        name: value.get("Value") if isinstance(value, Mapping) else value
        for name, value in (sns.opt("MessageAttributes", dict) or {}).items()
    }
    return ParseResult(
        events=(
            MessageEvent(
                source="sns",
                message_id=sns.text("MessageId"),
                body=inner,
                attributes=_string_map(attributes, f"{sns.where}.MessageAttributes"),
                time=parse_time(sns.text("Timestamp"), f"{sns.where}.Timestamp"),
                topic=sns.opt("TopicArn", str),
                raw=sns.data,
            ),
        )
    )


def parse_sqs_record(record: Mapping[str, Any], where: str = "record") -> ParseResult:
    """One SQS record: S3 -> SQS, S3 -> SNS -> SQS (not raw delivery), or a plain message."""
    rec = _View(record, where)
    body_text = rec.req("body", str)
    body = _json_body(body_text)
    if _is_s3_notification(body):
        return parse_s3_notification(body, f"{where}.body")
    if isinstance(body, Mapping) and body.get("Type") == "Notification" and "Message" in body:
        return _sns_envelope(_View(body, f"{where}.body"))
    attributes = {
        name: value.get("stringValue") if isinstance(value, Mapping) else value
        for name, value in (rec.opt("messageAttributes", dict) or {}).items()
    }
    sent = (rec.opt("attributes", dict) or {}).get("SentTimestamp")
    return ParseResult(
        events=(
            MessageEvent(
                source="sqs",
                message_id=rec.text("messageId"),
                body=body,
                attributes={k: v for k, v in attributes.items() if isinstance(v, str)},
                time=_epoch_ms(sent, f"{where}.attributes.SentTimestamp"),
                topic=rec.opt("eventSourceARN", str),
                raw=record,
            ),
        )
    )


def _epoch_ms(value: Any, where: str) -> datetime:
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise EventError(f"{where}: expected epoch milliseconds, got {str(value)[:32]!r}") from None


def _is_s3_notification(body: Any) -> bool:
    if not isinstance(body, Mapping):
        return False
    if body.get("Event") == _S3_TEST_EVENT:
        return True
    records = body.get("Records")
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, Mapping) and r.get("eventSource") == "aws:s3" for r in records)
    )


def _parse_lambda_records(payload: Mapping[str, Any]) -> ParseResult:
    records = _View(payload, "event").req("Records", list)
    result = ParseResult()
    for i, record in enumerate(records):
        where = f"Records[{i}]"
        rec = _View(record, where)
        source = rec.opt("eventSource", str) or rec.opt("EventSource", str)
        if source == "aws:s3":
            result += ParseResult(events=(parse_s3_record(record, where),))
        elif source == "aws:sns":
            result += parse_sns_record(record, where)
        elif source == "aws:sqs":
            result += parse_sqs_record(record, where)
        else:
            raise EventError(f"{where}.eventSource {source!r} is not supported (expected aws:s3, aws:sns or aws:sqs)")
    return result


# --- HTTP trigger requests --------------------------------------------------------------------

#: The fields of a trigger request; anything else is refused, so a misspelt ``conf`` is never dropped silently.
HTTP_TRIGGER_FIELDS = ("dag_id", "idempotency_key", "conf")


class RequestError(EventError):
    """A trigger request its caller has to correct; ``field`` names the field at fault (``None``: the body)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def parse_http_trigger(body: bytes, received: datetime, default_key: str | None = None) -> MessageEvent:
    """A trigger request: a JSON object ``{"dag_id": str, "idempotency_key": str, "conf": object}``.

    The caller's idempotency key is the message id, so a retry with the same key is the same event and
    asks Airflow for the same run; ``conf`` (optional) becomes the message body. Any content type is
    read as JSON: Cloud Scheduler sends ``application/octet-stream`` unless told otherwise.
    ``default_key`` stands in for a missing ``idempotency_key`` (Cloud Scheduler's job and schedule
    time: its body is the same every day, its retries keep the schedule time).
    Raises :class:`RequestError` naming the field at fault.
    """
    try:
        payload = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise RequestError("the request body is not JSON") from None
    if not isinstance(payload, Mapping):
        raise RequestError(f"the request body must be a JSON object, got {_kind(payload)}")
    unknown = sorted(set(payload) - set(HTTP_TRIGGER_FIELDS))
    if unknown:
        raise RequestError(f"{unknown[0]} is not a known field (known: {', '.join(HTTP_TRIGGER_FIELDS)})", unknown[0])
    request = _View(payload, "request")
    dag_id = _request_field("dag_id", request.text)
    key = (
        default_key
        if default_key is not None and "idempotency_key" not in payload
        else _request_field("idempotency_key", request.text)
    )
    conf = _request_field("conf", lambda name: request.opt(name, dict))
    return MessageEvent(
        source=ev.HTTP,
        message_id=key,
        body={} if conf is None else conf,
        attributes={"dag_id": dag_id},
        time=received,
        raw=payload,
    )


def scheduler_key(headers: Mapping[str, str]) -> str | None:
    """``<job>@<schedule time>`` from Cloud Scheduler's request headers, ``None`` for any other caller."""
    job, scheduled = headers.get("X-CloudScheduler-JobName"), headers.get("X-CloudScheduler-ScheduleTime")
    return f"{job}@{scheduled}" if job and scheduled else None


def _request_field(field: str, read: Callable[[str], T]) -> T:
    try:
        return read(field)
    except EventError as exc:
        raise RequestError(str(exc), field) from None


# --- Detection --------------------------------------------------------------------------------


def parse_payload(payload: Any) -> ParseResult:
    """Any supported payload, or a JSON list of them, detected by shape.

    Raises :class:`~shared.errors.EventError` for anything else, with what was wrong and where.
    """
    if isinstance(payload, list):
        result = ParseResult()
        for item in payload:
            result += parse_payload(item)
        return result
    if not isinstance(payload, Mapping):
        raise EventError(f"event: expected a JSON object or list, got {_kind(payload)}")
    if "specversion" in payload or str(payload.get("type", "")).startswith("google."):
        return parse_cloudevent(payload)
    if payload.get("Event") == _S3_TEST_EVENT:
        return parse_s3_notification(payload, "event")
    if "Records" in payload:
        return _parse_lambda_records(payload)
    if payload.get("source") == "aws.s3" and "detail-type" in payload:
        return ParseResult(events=(parse_eventbridge(payload),))
    keys = ", ".join(sorted(str(k) for k in payload)[:8]) or "none"
    raise EventError(
        f"event: unrecognized payload (top-level keys: {keys}); expected a CloudEvent, "
        "an S3/SNS/SQS Lambda event or an EventBridge S3 event"
    )
