"""Routing rules: which routes an event matches, and why the others did not. Pure functions."""

from __future__ import annotations

from fnmatch import fnmatchcase

from shared.config import Route
from shared.events import GCS, HTTP, PUBSUB, Event, MessageEvent, ObjectEvent


def mismatch(route: Route, event: Event) -> str | None:
    """Why ``route`` does not take ``event``, or ``None`` when it does.

    Globs are :func:`fnmatch.fnmatchcase` patterns: case-sensitive, and ``*`` also matches ``/``.
    A trigger requested over HTTP matches only a route that lists ``"http"`` in its sources and has the
    requested ``dag_id``: the routes stay the allowlist of DAGs, whoever asks.
    """
    if event.source == HTTP and HTTP not in route.sources:
        # An HTTP request names its DAG itself, so "no sources = any source" must not let it in: only a
        # route that lists "http" opts its DAG in to triggers on request.
        return "HTTP triggers need 'http' listed in the route's sources"
    if route.sources and event.source not in route.sources:
        if event.source == GCS and PUBSUB in route.sources:
            return (
                f"source 'gcs' is not one of {list(route.sources)} (a Cloud Storage notification is source 'gcs' "
                "whether it comes as an Eventarc event or through Pub/Sub; add 'gcs' to sources)"
            )
        return f"source {event.source!r} is not one of {list(route.sources)}"
    if isinstance(event, ObjectEvent):
        return _object_mismatch(route, event)
    return _message_mismatch(route, event)


def _object_mismatch(route: Route, event: ObjectEvent) -> str | None:
    if route.attributes:
        return "route matches messages (attributes), not objects"
    if event.key.endswith("/"):
        # Consoles and sync tools create "folder/" objects; no pipeline wants a run for those.
        return "key ends with '/': a directory placeholder, never routed"
    if event.event_type not in route.event_types:
        return f"event type {event.event_type!r} is not one of {list(route.event_types)}"
    key = event.key
    if route.bucket is not None and not fnmatchcase(event.bucket, route.bucket):
        return f"bucket {event.bucket!r} does not match {route.bucket!r}"
    if route.prefix is not None and not key.startswith(route.prefix):
        return f"key does not start with {route.prefix!r}"
    if route.suffix is not None and not key.endswith(route.suffix):
        return f"key does not end with {route.suffix!r}"
    if route.glob is not None and not fnmatchcase(key, route.glob):
        return f"key does not match {route.glob!r}"
    for pattern in route.exclude:
        if fnmatchcase(key, pattern):
            return f"key is excluded by {pattern!r}"
    if route.min_size is not None and event.size is None:
        return f"the event carries no object size, so min_size {route.min_size} cannot match it"
    if route.min_size is not None and event.size is not None and event.size < route.min_size:
        return f"size {event.size} is below min_size {route.min_size}"
    return None


def _message_mismatch(route: Route, event: MessageEvent) -> str | None:
    if route.is_object_route:
        return "route matches objects, not messages"
    if event.source == HTTP and event.attributes.get("dag_id") != route.dag_id:
        return f"the request is for DAG {event.attributes.get('dag_id')!r}, not this route's"
    for name, pattern in route.attributes.items():
        value = event.attributes.get(name)
        if value is None:
            return f"attribute {name!r} is missing"
        if not fnmatchcase(value, pattern):
            return f"attribute {name!r}={value!r} does not match {pattern!r}"
    return None


def matching_routes(routes: tuple[Route, ...], event: Event) -> tuple[list[Route], list[str]]:
    """Every route that takes the event, in file order (fan-out), and for the rest why not."""
    matched: list[Route] = []
    reasons: list[str] = []
    for route in routes:
        reason = mismatch(route, event)
        if reason is None:
            matched.append(route)
        else:
            reasons.append(f"route {route.name}: {reason}")
    return matched, reasons
