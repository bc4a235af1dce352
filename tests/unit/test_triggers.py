"""Matched routes -> trigger requests: run ids and confs."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import events as ev
from shared.config import AirflowSettings, Config, Route
from shared.errors import ConfTooLargeError
from shared.events import Event, MessageEvent, ObjectEvent
from shared.parsing import parse_payload
from shared.triggers import conf_size, derive_run_id, is_valid_run_id, plan
from tests.support import EVENTS_DIR, load_event

HASH = r"[0-9a-f]{16}"


def parsed(name: str) -> list[Event]:
    return list(parse_payload(load_event(name)).events)


def first(name: str) -> Event:
    return parsed(name)[0]


def first_object(name: str) -> ObjectEvent:
    event = first(name)
    assert isinstance(event, ObjectEvent)
    return event


def config(*routes: Route, **airflow: Any) -> Config:
    return Config(
        airflow=AirflowSettings(url="https://airflow.example.com", **airflow), routes=routes, origin="test.toml"
    )


# --- derive_run_id ---------------------------------------------------------------------------


def test_run_id_is_deterministic_for_the_same_event() -> None:
    assert derive_run_id(first("s3_put.json"), "ingest") == derive_run_id(first("s3_put.json"), "ingest")


def test_run_id_is_the_same_for_every_delivery_path() -> None:
    direct = derive_run_id(first("s3_put.json"), "ingest")
    assert derive_run_id(first("sns_s3_notification.json"), "ingest") == direct
    assert derive_run_id(first("sqs_batch_s3.json"), "ingest") == direct
    assert derive_run_id(first("pubsub_gcs_notification.cloudevent.json"), "ingest") == derive_run_id(
        first("gcs_finalized.cloudevent.json"), "ingest"
    )


def test_run_id_shape() -> None:
    assert re.fullmatch(rf"s3__2026-11-23T08:13:20Z__{HASH}", derive_run_id(first("s3_put.json"), "ingest"))
    assert re.fullmatch(
        rf"gcs__2026-11-23T08:13:20Z__{HASH}", derive_run_id(first("gcs_finalized.cloudevent.json"), "ingest")
    )
    assert re.fullmatch(
        rf"pubsub__2026-11-23T08:15:00Z__{HASH}", derive_run_id(first("pubsub_message.cloudevent.json"), "ingest")
    )
    assert re.fullmatch(rf"sns__2026-11-23T08:15:00Z__{HASH}", derive_run_id(first("sns_message.json"), "ingest"))
    assert re.fullmatch(rf"sqs__2026-11-23T08:15:00Z__{HASH}", derive_run_id(first("sqs_plain_message.json"), "ingest"))


def test_run_id_stamp_is_utc() -> None:
    event = first_object("s3_put.json")
    shifted = replace(event, event_time=datetime.fromisoformat("2026-11-23T10:13:20.412+02:00"))
    assert derive_run_id(shifted, "ingest") == derive_run_id(event, "ingest")


def test_run_id_changes_with_a_new_s3_version() -> None:
    raw = load_event("s3_put.json")
    before = derive_run_id(parse_payload(raw).events[0], "ingest")
    raw["Records"][0]["s3"]["object"]["versionId"] = "Ym9ndXMtdmVyc2lvbi1pZC0wMDAwMDAwMQ"
    assert derive_run_id(parse_payload(raw).events[0], "ingest") != before


def test_run_id_changes_with_a_new_s3_sequencer() -> None:
    raw = load_event("s3_object_removed.json")
    before = derive_run_id(parse_payload(raw).events[0], "ingest")
    raw["Records"][0]["s3"]["object"]["sequencer"] = "0065A1B2C3D4E5F6B0"
    assert derive_run_id(parse_payload(raw).events[0], "ingest") != before


def test_run_id_changes_with_a_new_gcs_generation() -> None:
    raw = load_event("gcs_finalized.cloudevent.json")
    before = derive_run_id(parse_payload(raw).events[0], "ingest")
    raw["data"]["generation"] = "1763900000999999"
    assert derive_run_id(parse_payload(raw).events[0], "ingest") != before


def test_run_id_changes_with_the_event_type() -> None:
    created = derive_run_id(first("gcs_finalized.cloudevent.json"), "ingest")
    deleted = derive_run_id(first("gcs_deleted.cloudevent.json"), "ingest")
    assert created != deleted


def test_run_id_differs_per_dag() -> None:
    event = first("s3_put.json")
    ids = {derive_run_id(event, dag_id) for dag_id in ("ingest", "ingest_v2", "audit")}
    assert len(ids) == 3


def test_run_id_ignores_event_id_when_versioned() -> None:
    # A redelivery through another path has another event id; the run must be the same.
    event = first_object("s3_put.json")
    assert derive_run_id(replace(event, event_id="another-request-id"), "ingest") == derive_run_id(event, "ingest")


def test_run_id_for_messages_follows_the_message_id() -> None:
    event = first("sns_message.json")
    assert isinstance(event, MessageEvent)
    again = replace(event, body={"different": "body"})
    other = replace(event, message_id="c0ffee00-0000-4000-8000-000000000000")
    assert derive_run_id(again, "load") == derive_run_id(event, "load")
    assert derive_run_id(other, "load") != derive_run_id(event, "load")


@pytest.mark.parametrize("name", sorted(p.name for p in EVENTS_DIR.glob("*.json")))
def test_run_id_is_valid_for_every_sample(name: str) -> None:
    for event in parsed(name):
        run_id = derive_run_id(event, "ingest")
        assert is_valid_run_id(run_id), run_id
        assert run_id.startswith(f"{event.source}__")
        if isinstance(event, ObjectEvent):
            assert event.key not in run_id
            assert event.key.rsplit("/", 1)[-1] not in run_id


def test_run_id_never_contains_the_key() -> None:
    event = first_object("s3_special_keys.json")
    run_id = derive_run_id(event, "ingest")
    for part in ("exports", "c++", "notes", "résumé", "draft", "v2.txt"):
        assert part not in run_id


@settings(max_examples=100, deadline=None, database=None)
@given(key=st.text(min_size=1, max_size=1024), dag_id=st.text(min_size=1, max_size=250))
def test_run_id_is_valid_for_any_key_and_dag(key: str, dag_id: str) -> None:
    event = ObjectEvent(
        source="s3",
        bucket="acme-landing",
        key=f"k/{key}",
        event_type=ev.CREATED,
        event_name="ObjectCreated:Put",
        event_time=datetime(2026, 11, 23, 8, 13, 20, tzinfo=UTC),
        event_id="C3D13FE58DE4C810",
    )
    run_id = derive_run_id(event, dag_id)
    assert is_valid_run_id(run_id)
    assert re.fullmatch(rf"s3__2026-11-23T08:13:20Z__{HASH}", run_id)
    assert event.key not in run_id


# --- is_valid_run_id -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("run_id", "valid"),
    [
        ("s3__2026-11-23T08:13:20Z__0123456789abcdef", True),
        ("my_run.v1~2:+-", True),
        ("A" * 250, True),
        ("A" * 251, False),
        ("", False),
        ("manual_single_underscore", True),
        ("scheduled__2026-11-23T00:00:00+00:00", False),
        ("backfill__2026-11-23", False),
        ("manual__2026-11-23", False),
        ("asset_triggered__x", False),
        ("dataset_triggered__x", False),
        ("not_scheduled__x", True),
        ("a..b", False),
        ("..", False),
        ("a.b.c", True),
        ("has space", False),
        ("slash/inside", False),
        ("back\\slash", False),
        ("semi;colon", False),
        ("question?", False),
        ("percent%20", False),
        ("unicodé", False),
        ("new\nline", False),
        ("tab\t", False),
    ],
)
def test_is_valid_run_id(run_id: str, valid: bool) -> None:
    assert is_valid_run_id(run_id) is valid


# --- plan ------------------------------------------------------------------------------------


def test_plan_merges_static_conf_over_the_event_conf() -> None:
    event = first_object("s3_put.json")
    rule = Route(dag_id="ingest", name="csv", conf={"pipeline": "csv", "bucket": "override", "region": None})
    requests, reasons = plan(event, config(rule))

    assert reasons == []
    assert len(requests) == 1
    request = requests[0]
    assert request.dag_id == "ingest"
    assert request.route == "csv"
    assert request.event is event
    assert request.dag_run_id == derive_run_id(event, "ingest")
    assert request.conf["pipeline"] == "csv"
    assert request.conf["bucket"] == "override"
    assert request.conf["region"] is None
    assert request.conf["key"] == "incoming/2026/11/23/daily orders.csv"
    assert request.conf["uri"] == "s3://acme-landing/incoming/2026/11/23/daily orders.csv"
    assert request.conf["size"] == 52811
    assert request.conf["version"] == "096fKKXTRTtl3on89fVO.nfljtsv6qko"
    assert request.conf["event_type"] == "created"
    assert request.conf["event_time"] == "2026-11-23T08:13:20.412000+00:00"
    assert set(request.conf) == set(event.conf()) | {"pipeline"}
    assert request.describe() == {"dag_id": "ingest", "dag_run_id": request.dag_run_id, "conf": dict(request.conf)}


def test_plan_for_a_message() -> None:
    event = first("pubsub_message.cloudevent.json")
    requests, _ = plan(event, config(Route(dag_id="load_orders", name="orders", attributes={"dag_id": "load_*"})))
    assert [r.dag_id for r in requests] == ["load_orders"]
    assert requests[0].conf == {
        "source": "pubsub",
        "message_id": "11223344556677",
        "topic": "projects/acme-prod/topics/dag-requests",
        "attributes": {"dag_id": "load_orders"},
        "body": {"table": "orders", "run_date": "2026-11-23"},
        "event_time": "2026-11-23T08:15:00.500000+00:00",
    }


def test_plan_fans_out_to_different_dags_in_route_order() -> None:
    event = first("gcs_finalized.cloudevent.json")
    requests, reasons = plan(
        event,
        config(
            Route(dag_id="ingest", name="first", suffix=".csv"),
            Route(dag_id="audit", name="second", bucket="acme-*"),
        ),
    )
    assert reasons == []
    assert [(r.dag_id, r.route) for r in requests] == [("ingest", "first"), ("audit", "second")]
    assert requests[0].dag_run_id != requests[1].dag_run_id


def test_plan_two_routes_to_the_same_dag_make_one_request() -> None:
    event = first("gcs_finalized.cloudevent.json")
    requests, reasons = plan(
        event,
        config(
            Route(dag_id="ingest", name="by-suffix", suffix=".csv", conf={"via": "suffix"}),
            Route(dag_id="ingest", name="by-prefix", prefix="incoming/", conf={"via": "prefix"}),
        ),
    )
    assert len(requests) == 1
    assert requests[0].route == "by-suffix"
    assert requests[0].conf["via"] == "suffix"
    assert reasons == ["route by-prefix: DAG 'ingest' already triggered by an earlier route"]


def test_plan_reports_why_routes_did_not_match() -> None:
    event = first("s3_put.json")
    requests, reasons = plan(
        event,
        config(
            Route(dag_id="parquet", name="parquet", suffix=".parquet"),
            Route(dag_id="ingest", name="csv", suffix=".csv"),
            Route(dag_id="gcs", name="gcs-only", sources=("gcs",)),
        ),
    )
    assert [r.dag_id for r in requests] == ["ingest"]
    assert reasons == [
        "route parquet: key does not end with '.parquet'",
        "route gcs-only: source 's3' is not one of ['gcs']",
    ]


def test_plan_with_no_matching_route() -> None:
    event = first("s3_object_removed.json")
    requests, reasons = plan(event, config(Route(dag_id="ingest", name="csv")))
    assert requests == []
    assert reasons == ["route csv: event type 'deleted' is not one of ['created']"]


def test_conf_size_counts_utf8_bytes_of_compact_json() -> None:
    assert conf_size({}) == 2
    assert conf_size({"k": "v"}) == len(b'{"k":"v"}') == 9
    # "é" is two bytes in UTF-8 and is not escaped.
    assert conf_size({"k": "é"}) == 10


def test_plan_conf_at_the_cap_is_accepted_and_over_it_rejected() -> None:
    event = first_object("s3_put.json")
    rule = Route(dag_id="ingest", name="csv", conf={"payload": "x" * 500})
    size = conf_size({**event.conf(), "payload": "x" * 500})
    assert size > 500

    requests, _ = plan(event, config(rule, max_conf_bytes=size))
    assert len(requests) == 1

    with pytest.raises(ConfTooLargeError) as caught:
        plan(event, config(rule, max_conf_bytes=size - 1))
    message = str(caught.value)
    assert "'ingest'" in message
    assert f"{size} bytes" in message
    assert f"max_conf_bytes={size - 1}" in message
    assert caught.value.retryable is False


def test_plan_large_message_body_is_rejected_not_truncated() -> None:
    event = first("sqs_plain_message.json")
    assert isinstance(event, MessageEvent)
    big = replace(event, body="z" * 70_000)
    with pytest.raises(ConfTooLargeError, match="queue"):
        plan(big, config(Route(dag_id="queue", name="q")))
