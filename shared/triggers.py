"""Matched routes -> trigger requests: the DAG, a deterministic run id, and the conf."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from shared.config import Config
from shared.errors import ConfTooLargeError
from shared.events import HTTP, Event, ObjectEvent, event_time
from shared.routing import matching_routes

# Airflow's rule for run ids (airflow.models.dagrun) and the prefixes it reserves for its own runs.
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.~:+-]+$")
RUN_ID_MAX_LENGTH = 250
RESERVED_PREFIXES = ("scheduled__", "backfill__", "manual__", "asset_triggered__", "dataset_triggered__")
# 64 bits of SHA-256: a collision needs ~4 billion events for one DAG in the same second.
_HASH_CHARS = 16


@dataclass(frozen=True)
class TriggerRequest:
    """One DAG run to create for one event."""

    dag_id: str
    dag_run_id: str
    conf: Mapping[str, Any]
    route: str
    event: Event

    @property
    def note(self) -> str:
        """What the Airflow UI shows beside the run: which event made it (Airflow caps notes at 1000 chars)."""
        origin = self.event.uri if isinstance(self.event, ObjectEvent) else f"{self.event.source} message"
        ident = self.event.event_id if isinstance(self.event, ObjectEvent) else self.event.message_id
        return f"dag-trigger: {origin} ({ident}), route {self.route}"[:1000]

    @property
    def log_fields(self) -> dict[str, Any]:
        """The fields every log line about this request carries: the event's, the route, the DAG and the run id."""
        return {**self.event.log_fields(), "route": self.route, "dag_id": self.dag_id, "dag_run_id": self.dag_run_id}

    def describe(self) -> dict[str, Any]:
        """The request as ``dag-trigger explain`` prints it."""
        return {"dag_id": self.dag_id, "dag_run_id": self.dag_run_id, "conf": dict(self.conf)}


def derive_run_id(event: Event, dag_id: str) -> str:
    """A run id that is the same for every redelivery of ``event`` to ``dag_id`` and new otherwise.

    ``<source>__<event time, UTC>__<hash of identity>``, e.g. ``gcs__2026-11-23T08:13:20Z__5f0c…``:
    a person sees where and when it came from; the object key stays in the conf because keys may
    hold characters Airflow forbids in run ids.

    A trigger requested over HTTP is ``http__<hash of idempotency key and DAG>``: its time is when the
    request arrived, and a retry arrives later, so only the caller's key may decide the id. The key
    itself stays in the conf and the note, since callers may put any character in it.
    """
    identity = {**event.identity(), "dag_id": dag_id}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    if event.source == HTTP:
        return f"{event.source}__{digest[:_HASH_CHARS]}"
    stamp = event_time(event).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{event.source}__{stamp}__{digest[:_HASH_CHARS]}"


def is_valid_run_id(run_id: str) -> bool:
    """Whether Airflow would accept ``run_id`` for a run triggered through its API."""
    return (
        bool(RUN_ID_PATTERN.fullmatch(run_id))
        and ".." not in run_id
        and len(run_id) <= RUN_ID_MAX_LENGTH
        and not run_id.startswith(RESERVED_PREFIXES)
    )


def conf_size(conf: Mapping[str, Any]) -> int:
    """Bytes of the conf as it travels in the request body."""
    return len(json.dumps(conf, separators=(",", ":"), ensure_ascii=False).encode())


def plan(event: Event, config: Config) -> tuple[list[TriggerRequest], list[str]]:
    """The trigger requests ``event`` causes under ``config``, and why routes that did not match didn't.

    Two routes that send the same event to the same DAG make one request (the first route's): they
    would share the run id, and a second run of the same DAG for the same event is never wanted.
    Raises :class:`~shared.errors.ConfTooLargeError` rather than truncating a conf.
    """
    routes, reasons = matching_routes(config.routes, event)
    requests: list[TriggerRequest] = []
    seen: set[str] = set()
    for route in routes:
        if route.dag_id in seen:
            reasons.append(f"route {route.name}: DAG {route.dag_id!r} already triggered by an earlier route")
            continue
        seen.add(route.dag_id)
        conf = {**event.conf(), **route.conf}
        size = conf_size(conf)
        if size > config.airflow.max_conf_bytes:
            raise ConfTooLargeError(
                f"conf for DAG {route.dag_id!r} is {size} bytes, over max_conf_bytes={config.airflow.max_conf_bytes}; "
                "send a reference (bucket/key) instead of the content, or raise the cap"
            )
        requests.append(TriggerRequest(route.dag_id, derive_run_id(event, route.dag_id), conf, route.name, event))
    return requests, reasons
