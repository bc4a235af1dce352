"""Routing rules: which routes take an event, and why the others do not."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared import events as ev
from shared.config import Route
from shared.events import Event, MessageEvent, ObjectEvent
from shared.parsing import parse_payload
from shared.routing import matching_routes, mismatch
from tests.support import load_event

WHEN = datetime(2026, 11, 23, 8, 13, 20, tzinfo=UTC)


def obj(**changes: Any) -> ObjectEvent:
    fields: dict[str, Any] = {
        "source": "gcs",
        "bucket": "acme-landing",
        "key": "incoming/2026/11/23/orders.csv",
        "event_type": ev.CREATED,
        "event_name": "google.cloud.storage.object.v1.finalized",
        "event_time": WHEN,
        "event_id": "1",
        "size": 52811,
        "version": "1763900000123456",
        "sequencer": "1",
    }
    fields.update(changes)
    return ObjectEvent(**fields)


def msg(**changes: Any) -> MessageEvent:
    fields: dict[str, Any] = {
        "source": "pubsub",
        "message_id": "11223344556677",
        "body": {"table": "orders"},
        "attributes": {"dag_id": "load_orders", "env": "prod"},
        "time": WHEN,
        "topic": "projects/acme-prod/topics/dag-requests",
    }
    fields.update(changes)
    return MessageEvent(**fields)


def asked(dag_id: str = "load_orders") -> MessageEvent:
    """A trigger requested over HTTP for ``dag_id``."""
    return msg(source="http", message_id="daily-2026-11-23", attributes={"dag_id": dag_id}, topic=None)


def route(**fields: Any) -> Route:
    fields.setdefault("dag_id", "ingest")
    fields.setdefault("name", "r")
    return Route(**fields)


CASES = [
    # a route with no filters takes every created object and every message
    pytest.param(route(), obj(), None, id="bare-route-object"),
    pytest.param(route(), msg(), None, id="bare-route-message"),
    # bucket: a case-sensitive glob
    pytest.param(route(bucket="acme-landing"), obj(), None, id="bucket-exact"),
    pytest.param(route(bucket="acme-*"), obj(), None, id="bucket-glob-star"),
    pytest.param(route(bucket="acme-?anding"), obj(), None, id="bucket-glob-question"),
    pytest.param(route(bucket="acme-[lr]*"), obj(), None, id="bucket-glob-class"),
    pytest.param(
        route(bucket="acme-*"),
        obj(bucket="other-landing"),
        "bucket 'other-landing' does not match 'acme-*'",
        id="bucket-glob-no-match",
    ),
    pytest.param(
        route(bucket="ACME-landing"),
        obj(),
        "bucket 'acme-landing' does not match 'ACME-landing'",
        id="bucket-case-sensitive",
    ),
    pytest.param(
        route(bucket="acme"), obj(), "bucket 'acme-landing' does not match 'acme'", id="bucket-is-not-a-prefix"
    ),
    # prefix and suffix: plain strings, not globs
    pytest.param(route(prefix="incoming/"), obj(), None, id="prefix"),
    pytest.param(route(prefix=""), obj(), None, id="empty-prefix"),
    pytest.param(route(prefix="Incoming/"), obj(), "key does not start with 'Incoming/'", id="prefix-case-sensitive"),
    pytest.param(route(prefix="incoming/*"), obj(), "key does not start with 'incoming/*'", id="prefix-is-not-a-glob"),
    pytest.param(
        route(prefix="incoming/"),
        obj(key="archive/incoming/orders.csv"),
        "key does not start with 'incoming/'",
        id="prefix-in-the-middle",
    ),
    pytest.param(route(suffix=".csv"), obj(), None, id="suffix"),
    pytest.param(
        route(suffix=".csv"), obj(key="incoming/orders.csv.tmp"), "key does not end with '.csv'", id="suffix-in-middle"
    ),
    pytest.param(route(suffix=".CSV"), obj(), "key does not end with '.CSV'", id="suffix-case-sensitive"),
    pytest.param(
        route(prefix="incoming/", suffix=".parquet"), obj(), "key does not end with '.parquet'", id="prefix-and-suffix"
    ),
    # glob: fnmatch, where * also matches /
    pytest.param(route(glob="incoming/*.csv"), obj(), None, id="glob-star-crosses-slash"),
    pytest.param(route(glob="incoming/2026/*/23/*.csv"), obj(), None, id="glob-segments"),
    pytest.param(route(glob="*.parquet"), obj(), "key does not match '*.parquet'", id="glob-no-match"),
    pytest.param(route(glob="incoming/*.CSV"), obj(), "key does not match 'incoming/*.CSV'", id="glob-case-sensitive"),
    # exclude: any matching pattern rejects
    pytest.param(route(exclude=("*.tmp", "*/_SUCCESS")), obj(), None, id="exclude-no-hit"),
    pytest.param(
        route(exclude=("*.tmp", "*/_SUCCESS")),
        obj(key="incoming/2026/11/23/_SUCCESS"),
        "key is excluded by '*/_SUCCESS'",
        id="exclude-hit",
    ),
    pytest.param(
        route(prefix="incoming/", exclude=("incoming/2026/*",)),
        obj(),
        "key is excluded by 'incoming/2026/*'",
        id="exclude-wins-over-prefix",
    ),
    # event types: only "created" unless configured
    pytest.param(route(), obj(event_type=ev.CREATED), None, id="event-type-default-created"),
    pytest.param(
        route(), obj(event_type=ev.DELETED), "event type 'deleted' is not one of ['created']", id="default-not-deleted"
    ),
    pytest.param(
        route(), obj(event_type=ev.METADATA_UPDATED), "event type 'metadata_updated'", id="default-not-metadata"
    ),
    pytest.param(route(), obj(event_type=ev.ARCHIVED), "event type 'archived'", id="default-not-archived"),
    pytest.param(route(event_types=(ev.CREATED, ev.DELETED)), obj(event_type=ev.DELETED), None, id="deleted-opt-in"),
    pytest.param(
        route(event_types=(ev.DELETED,)),
        obj(),
        "event type 'created' is not one of ['deleted']",
        id="deleted-only-route-skips-created",
    ),
    # min_size: inclusive, and an unknown size never passes
    pytest.param(route(min_size=1000), obj(size=52811), None, id="min-size-above"),
    pytest.param(route(min_size=52811), obj(size=52811), None, id="min-size-equal"),
    pytest.param(route(min_size=52812), obj(size=52811), "size 52811 is below min_size 52812", id="min-size-below"),
    pytest.param(
        route(min_size=1),
        obj(size=None),
        "the event carries no object size, so min_size 1 cannot match it",
        id="min-size-unknown-size",
    ),
    pytest.param(
        route(min_size=0),
        obj(size=None),
        "the event carries no object size, so min_size 0 cannot match it",
        id="min-size-zero-unknown",
    ),
    pytest.param(route(min_size=0), obj(size=0), None, id="min-size-zero-empty-object"),
    pytest.param(route(), obj(size=None), None, id="no-min-size-unknown-size"),
    # sources
    pytest.param(route(sources=("gcs", "s3")), obj(), None, id="sources-object"),
    pytest.param(route(sources=("s3",)), obj(), "source 'gcs' is not one of ['s3']", id="sources-object-mismatch"),
    pytest.param(route(sources=("pubsub",)), msg(), None, id="sources-message"),
    pytest.param(
        route(sources=("pubsub",)),
        obj(),
        "source 'gcs' is not one of ['pubsub'] (a Cloud Storage notification is source 'gcs' whether it comes as an "
        "Eventarc event or through Pub/Sub; add 'gcs' to sources)",
        id="sources-gcs-notification-is-not-pubsub",
    ),
    pytest.param(
        route(sources=("pubsub",)), msg(source="sns"), "source 'sns' is not one of ['pubsub']", id="sources-sns"
    ),
    pytest.param(
        route(sources=("sqs",), attributes={"dag_id": "x"}),
        obj(),
        "source 'gcs' is not one of ['sqs']",
        id="sources-checked-first",
    ),
    # attributes: globs on message attributes, all must match
    pytest.param(route(attributes={"dag_id": "load_orders"}), msg(), None, id="attribute-exact"),
    pytest.param(route(attributes={"dag_id": "load_*", "env": "prod"}), msg(), None, id="attributes-glob-all"),
    pytest.param(
        route(attributes={"dag_id": "load_*", "env": "dev"}),
        msg(),
        "attribute 'env'='prod' does not match 'dev'",
        id="attributes-one-mismatch",
    ),
    pytest.param(
        route(attributes={"team": "*"}), msg(), "attribute 'team' is missing", id="attribute-missing-even-for-star"
    ),
    pytest.param(
        route(attributes={"dag_id": "LOAD_*"}),
        msg(),
        "attribute 'dag_id'='load_orders' does not match 'LOAD_*'",
        id="attribute-case-sensitive",
    ),
    pytest.param(route(attributes={"dag_id": "*"}), msg(attributes={"dag_id": ""}), None, id="attribute-star-empty"),
    # object routes never take messages ...
    pytest.param(route(bucket="acme-landing"), msg(), "route matches objects, not messages", id="bucket-vs-message"),
    pytest.param(route(prefix="incoming/"), msg(), "route matches objects, not messages", id="prefix-vs-message"),
    pytest.param(route(suffix=".csv"), msg(), "route matches objects, not messages", id="suffix-vs-message"),
    pytest.param(route(glob="*"), msg(), "route matches objects, not messages", id="glob-vs-message"),
    pytest.param(route(exclude=("*.tmp",)), msg(), "route matches objects, not messages", id="exclude-vs-message"),
    pytest.param(route(min_size=0), msg(), "route matches objects, not messages", id="min-size-vs-message"),
    # ... and message routes never take objects
    pytest.param(
        route(attributes={"dag_id": "*"}),
        obj(),
        "route matches messages (attributes), not objects",
        id="attributes-vs-object",
    ),
    # HTTP requests: only a route that lists "http" takes them, and only for its own DAG
    pytest.param(route(dag_id="load_orders", sources=("http",)), asked(), None, id="http-listed"),
    pytest.param(route(dag_id="load_orders", sources=("pubsub", "http")), asked(), None, id="http-among-sources"),
    pytest.param(
        route(dag_id="load_orders"),
        asked(),
        "HTTP triggers need 'http' listed in the route's sources",
        id="http-not-implied-by-empty-sources",
    ),
    pytest.param(
        route(dag_id="load_orders", attributes={"dag_id": "load_orders"}),
        asked(),
        "HTTP triggers need 'http' listed",
        id="http-not-implied-by-matching-attributes",
    ),
    pytest.param(
        route(dag_id="load_orders", sources=("pubsub",)), asked(), "HTTP triggers need 'http'", id="http-not-listed"
    ),
    pytest.param(
        route(dag_id="other", sources=("http",)),
        asked(),
        "the request is for DAG 'load_orders', not this route's",
        id="http-for-another-dag",
    ),
    pytest.param(
        route(dag_id="load_orders", sources=("http",), attributes={"dag_id": "load_*"}),
        asked(),
        None,
        id="http-attributes-still-apply",
    ),
    pytest.param(
        route(dag_id="load_orders", sources=("http", "gcs"), prefix="incoming/"),
        asked(),
        "route matches objects, not messages",
        id="http-vs-object-route",
    ),
    pytest.param(
        route(dag_id="load_orders", sources=("http",)), msg(), "source 'pubsub' is not one of ['http']", id="http-only"
    ),
]


@pytest.mark.parametrize(("rule", "event", "reason"), CASES)
def test_mismatch(rule: Route, event: Event, reason: str | None) -> None:
    got = mismatch(rule, event)
    if reason is None:
        assert got is None
    else:
        assert got is not None
        assert reason in got


def test_object_route_flag() -> None:
    assert not route().is_object_route
    assert not route(sources=("s3",), event_types=(ev.DELETED,)).is_object_route
    assert not route(attributes={"a": "b"}).is_object_route
    for filters in ({"bucket": "b"}, {"prefix": "p"}, {"suffix": "s"}, {"glob": "g"}, {"min_size": 0}):
        assert route(**filters).is_object_route, filters
    assert route(exclude=("x",)).is_object_route


def test_matching_routes_fans_out_in_file_order() -> None:
    routes = (
        route(name="csv", dag_id="ingest_csv", suffix=".csv"),
        route(name="parquet", dag_id="ingest_parquet", suffix=".parquet"),
        route(name="audit", dag_id="audit", bucket="acme-*"),
        route(name="messages", dag_id="load", attributes={"dag_id": "*"}),
        route(name="landing", dag_id="landing", prefix="incoming/"),
    )
    matched, reasons = matching_routes(routes, obj())
    assert [r.name for r in matched] == ["csv", "audit", "landing"]
    assert reasons == [
        "route parquet: key does not end with '.parquet'",
        "route messages: route matches messages (attributes), not objects",
    ]

    matched, _ = matching_routes(tuple(reversed(routes)), obj())
    assert [r.name for r in matched] == ["landing", "audit", "csv"]


def test_matching_routes_for_a_message() -> None:
    routes = (
        route(name="objects", bucket="acme-*"),
        route(name="orders", dag_id="load_orders", attributes={"dag_id": "load_orders"}),
        route(name="sns-only", sources=("sns",)),
        route(name="any-message", dag_id="log_message"),
    )
    matched, reasons = matching_routes(routes, msg())
    assert [r.name for r in matched] == ["orders", "any-message"]
    assert reasons == [
        "route objects: route matches objects, not messages",
        "route sns-only: source 'pubsub' is not one of ['sns']",
    ]


def test_matching_routes_with_nothing_matching() -> None:
    matched, reasons = matching_routes((route(name="a", prefix="archive/"),), obj())
    assert matched == []
    assert reasons == ["route a: key does not start with 'archive/'"]


def test_matching_routes_without_routes() -> None:
    assert matching_routes((), obj()) == ([], [])


def test_directory_placeholder_is_never_routed() -> None:
    raw = load_event("s3_put.json")
    raw["Records"][0]["s3"]["object"]["key"] = "incoming/2026/"
    raw["Records"][0]["s3"]["object"]["size"] = 0
    [event] = parse_payload(raw).events
    assert mismatch(Route(dag_id="d"), event) == "key ends with '/': a directory placeholder, never routed"
