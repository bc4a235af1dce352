"""Awkward but real inputs: each has one defined outcome, and no parser ever raises anything but EventError."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.config import from_mapping
from shared.errors import ConfTooLargeError, EventError
from shared.events import ObjectEvent
from shared.parsing import (
    ParseResult,
    parse_cloudevent,
    parse_eventbridge,
    parse_payload,
    parse_s3_notification,
    parse_s3_record,
    parse_sns_record,
    parse_sqs_record,
)
from shared.triggers import is_valid_run_id, plan
from tests.support import load_event

CONFIG = from_mapping({"airflow": {"url": "http://127.0.0.1:8080"}, "routes": [{"dag_id": "ingest"}]}, "test")


def s3_with(key: str, size: int = 10, event_name: str = "ObjectCreated:Put") -> dict[str, Any]:
    """The sample S3 notification with another (already URL-encoded) key, size and event name."""
    raw = copy.deepcopy(load_event("s3_put.json"))
    record = raw["Records"][0]
    record["eventName"] = event_name
    record["s3"]["object"].update(key=key, size=size)
    return raw


def outcome(payload: Any) -> tuple[str, Any]:
    """("run", conf) when one run is planned, ("skip", reason) when none."""
    [event] = parse_payload(payload).events
    requests, reasons = plan(event, CONFIG)
    if requests:
        [request] = requests
        assert is_valid_run_id(request.dag_run_id)
        return "run", request.conf
    return "skip", " ".join(reasons)


@pytest.mark.parametrize(
    ("key", "decoded"),
    [
        ("r%C3%A9sum%C3%A9+%E2%9C%93.csv", "résumé ✓.csv"),
        ("with+spaces+and%2Bplus.csv", "with spaces and+plus.csv"),
        ("percent%2520literal.csv", "percent%20literal.csv"),
        ("%7B%7B+ds+%7D%7D%2F%24%7BHOME%7D.csv", "{{ ds }}/${HOME}.csv"),
        ("a" * 1024, "a" * 1024),
    ],
    ids=["unicode", "spaces-and-plus", "percent-literal", "template-syntax-stays-literal", "1024-char-key"],
)
def test_unusual_keys_make_one_run_with_the_decoded_key(key: str, decoded: str) -> None:
    kind, conf = outcome(s3_with(key))
    assert kind == "run"
    assert conf["key"] == decoded


def test_zero_byte_object_is_routed_unless_min_size_says_otherwise() -> None:
    assert outcome(s3_with("incoming/_SUCCESS", size=0))[0] == "run"
    strict = from_mapping(
        {"airflow": {"url": "http://127.0.0.1:8080"}, "routes": [{"dag_id": "ingest", "min_size": 1}]}, "test"
    )
    [event] = parse_payload(s3_with("incoming/_SUCCESS", size=0)).events
    assert plan(event, strict)[0] == []


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (s3_with("incoming/folder/", size=0), "directory placeholder"),
        (s3_with("incoming/x.csv", event_name="ObjectRemoved:Delete"), "event type 'deleted'"),
        (s3_with("incoming/x.csv", event_name="ObjectTagging:Put"), "event type 'other'"),
    ],
    ids=["directory-placeholder", "delete", "unknown-event-type"],
)
def test_events_that_are_skipped_by_default_say_why(payload: Any, reason: str) -> None:
    kind, why = outcome(payload)
    assert kind == "skip"
    assert reason in why


def test_oversized_conf_is_an_error_not_a_truncated_run() -> None:
    raw = load_event("sns_message.json")
    raw["Records"][0]["Sns"]["Message"] = json.dumps({"blob": "x" * 70_000})
    [event] = parse_payload(raw).events
    with pytest.raises(ConfTooLargeError, match="over max_conf_bytes=65536"):
        plan(event, CONFIG)


def test_s3_test_event_is_skipped_not_an_error() -> None:
    result = parse_payload(load_event("s3_test_event.json"))
    assert result.events == ()
    assert "s3:TestEvent" in result.skipped[0]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)
PARSERS: list[Callable[[Any], object]] = [
    parse_payload,
    parse_cloudevent,
    parse_s3_notification,
    parse_s3_record,
    parse_eventbridge,
    parse_sns_record,
    parse_sqs_record,
]


@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.__name__)
@settings(max_examples=200, deadline=1000)
@given(value=JSON)
def test_every_parser_returns_or_raises_event_error(parser: Callable[[Any], object], value: Any) -> None:
    try:
        result = parser(value)
    except EventError:
        return
    assert isinstance(result, ParseResult | ObjectEvent)
