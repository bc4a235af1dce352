"""Warm per-event cost of three clients, interleaved on the same targets in one process; and requests per event.

Run by :mod:`bench.compare` as a worker, once per entry point (``--entry gcf`` or ``--entry lambda``):

* ``a`` the samples' way (Google's and AWS's): per event, ``requests.post`` to ``/auth/token`` for a JWT, then
  ``requests.post`` of the trigger; no Session, so a new connection (and over TLS a new handshake) for each.
* ``b`` this project's warm path: the real entry point (``gcf_trigger.main.trigger_dag`` with a CloudEvent, or
  ``lambda_trigger.handler.handler`` with an S3 notification) called in-process, config pointing at the target
  with ``auth = "jwt"``, after warm-up events; each event a fresh object key, so a fresh run id.
* ``c`` the floor: one keep-alive ``requests.Session`` POSTing bodies serialized beforehand with a fixed token.

Events are built before the clock starts (the platform builds them, not the function). The clients take turns
in blocks of ``--block`` events, the order rotating each round, so the machine's noise falls on all three alike.
Then, untimed, each client sends up to 50 more events against the stub alone while the stub counts what it
receives (and the TLS proxy counts new connections): requests per warm event.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import requests

from bench.common import (
    PASSWORD_ENV,
    LambdaContext,
    gcs_cloudevent_parts,
    object_key,
    progress,
    s3_event,
    sample_conf,
    summarize,
    write_config,
)

TIMEOUT = 60.0
#: Events per client in the untimed counting pass: counts do not vary, and the sample client is slow over TLS.
COUNT_EVENTS = 50


@dataclass(frozen=True)
class Target:
    """Where the clients send: the base URL, the Airflow user, the DAG; ``control`` is the stub's plain URL."""

    name: str
    url: str
    username: str
    password: str
    dag_id: str
    control: str | None = None


class SampleClient:
    """(a) A new token and a new connection per event, as the cloud samples do."""

    label = "a"

    def __init__(self, target: Target) -> None:
        self.target = target
        self._bodies: list[dict[str, Any]] = []
        self._next = 0

    def prepare(self, count: int) -> None:
        """Build the next ``count`` request bodies."""
        start = len(self._bodies)
        for index in range(start, start + count):
            key = object_key(f"{self.target.name}-{self.label}", index)
            run_id = f"bench_{self.label}_{key.replace('/', '_')}"
            self._bodies.append({"dag_run_id": run_id, "logical_date": None, "conf": sample_conf(key, index)})

    def event(self) -> None:
        """Mint a token, then trigger, each on a new connection."""
        target = self.target
        body = self._bodies[self._next]
        self._next += 1
        token = requests.post(
            f"{target.url}/auth/token",
            json={"username": target.username, "password": target.password},
            timeout=TIMEOUT,
        )
        token.raise_for_status()
        response = requests.post(
            f"{target.url}/api/v2/dags/{target.dag_id}/dagRuns",
            json=body,
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=TIMEOUT,
        )
        response.raise_for_status()

    def close(self) -> None:
        """Nothing is kept open."""


class FloorClient:
    """(c) A keep-alive Session posting prepared bodies with a token minted once."""

    label = "c"

    def __init__(self, target: Target) -> None:
        self.target = target
        self.session = requests.Session()
        token = self.session.post(
            f"{target.url}/auth/token",
            json={"username": target.username, "password": target.password},
            timeout=TIMEOUT,
        )
        token.raise_for_status()
        self.headers = {"Authorization": f"Bearer {token.json()['access_token']}", "Content-Type": "application/json"}
        self.url = f"{target.url}/api/v2/dags/{target.dag_id}/dagRuns"
        self._bodies: list[bytes] = []
        self._next = 0

    def prepare(self, count: int) -> None:
        """Serialize the next ``count`` bodies."""
        start = len(self._bodies)
        for index in range(start, start + count):
            key = object_key(f"{self.target.name}-{self.label}", index)
            body = {
                "dag_run_id": f"bench_c_{key.replace('/', '_')}",
                "logical_date": None,
                "conf": sample_conf(key, index),
            }
            self._bodies.append(json.dumps(body).encode())

    def event(self) -> None:
        """One POST on the kept connection."""
        body = self._bodies[self._next]
        self._next += 1
        self.session.post(self.url, data=body, headers=self.headers, timeout=TIMEOUT).raise_for_status()

    def close(self) -> None:
        """Close the connection."""
        self.session.close()


class ProjectClient:
    """(b) The real entry point, in-process, with the config pointing at the target.

    The process-wide dispatcher is rebuilt for each target (``runtime.dispatcher.cache_clear()``), as a new
    instance would build it; within a target it stays warm, as on the platform.
    """

    label = "b"

    def __init__(self, entry: str, target: Target, config_dir: Path) -> None:
        from shared import runtime

        self.entry = entry
        self.target_name = target.name
        self.runtime = runtime
        config = write_config(
            config_dir,
            f"{entry}-{target.name}",
            {"url": target.url, "auth": "jwt", "username": target.username, "password_env": PASSWORD_ENV},
            target.dag_id,
        )
        os.environ["DAG_TRIGGER_CONFIG"] = str(config)
        os.environ[PASSWORD_ENV] = target.password
        runtime.dispatcher.cache_clear()
        self._invoke = self._gcf() if entry == "gcf" else self._lambda()
        self._events: list[Any] = []
        self._next = 0

    def _gcf(self) -> Callable[[Any], dict[str, Any]]:
        from gcf_trigger.main import trigger_dag

        # functions-framework types the decorated function as returning None; it returns the report.
        return lambda event: cast("dict[str, Any]", trigger_dag(event))

    def _lambda(self) -> Callable[[Any], dict[str, Any]]:
        from lambda_trigger.handler import handler

        return lambda event: handler(event, LambdaContext())

    def prepare(self, count: int) -> None:
        """Build the next ``count`` events: CloudEvents for the Cloud Function, S3 notifications for the Lambda."""
        from cloudevents.http.event import CloudEvent

        start = len(self._events)
        for index in range(start, start + count):
            key = object_key(f"{self.target_name}-b-{self.entry}", index)
            generation = 1_763_900_000_000_000 + index
            if self.entry == "gcf":
                attributes, data = gcs_cloudevent_parts(key, generation)
                self._events.append(CloudEvent(attributes, data))
            else:
                self._events.append(s3_event(key, generation))

    def event(self) -> None:
        """Deliver one event through the entry point; it must create its run."""
        event = self._events[self._next]
        self._next += 1
        report = self._invoke(event)
        runs = report.get("runs") or []
        if len(runs) != 1 or runs[0].get("outcome") != "created":
            raise RuntimeError(f"the {self.entry} entry point did not create a run: {report}")

    def close(self) -> None:
        """Close the dispatcher's connections and forget it."""
        if self.runtime.dispatcher.cache_info().currsize:
            self.runtime.dispatcher().client.close()
        self.runtime.dispatcher.cache_clear()


Client = SampleClient | FloorClient | ProjectClient


def interleaved(clients: list[Client], events: int, block: int) -> dict[str, list[float]]:
    """Per-event latencies of each client, taking turns in blocks, the order rotating every round."""
    latencies: dict[str, list[float]] = {client.label: [] for client in clients}
    for client in clients:
        client.prepare(events)
    done = 0
    round_number = 0
    while done < events:
        size = min(block, events - done)
        shift = round_number % len(clients)
        for client in clients[shift:] + clients[:shift]:
            times = latencies[client.label]
            for _ in range(size):
                started = time.perf_counter()
                client.event()
                times.append(time.perf_counter() - started)
        done += size
        round_number += 1
    return latencies


def count_requests(clients: list[Client], target: Target, events: int) -> dict[str, Any]:
    """Untimed: what the stub (and proxy) saw while each client alone sent ``events`` warm events."""
    assert target.control is not None
    control = requests.Session()
    result: dict[str, Any] = {}
    try:
        for client in clients:
            client.prepare(events)
            control.post(f"{target.control}/__bench/reset", timeout=10).raise_for_status()
            for _ in range(events):
                client.event()
            seen = control.get(f"{target.control}/__bench/counts", timeout=10).json()
            entry: dict[str, Any] = {
                "events": events,
                "requests_per_event": seen["total"] / events,
                "by_path": {path: count / events for path, count in sorted(seen["counts"].items())},
                "duplicates": seen["duplicates"],
            }
            if "proxy" in seen and target.name == "tls":
                entry["connections_per_event"] = seen["proxy"]["connections"] / events
            result[client.label] = entry
    finally:
        control.close()
    return result


def measure_target(
    entry: str, target: Target, events: int, block: int, warmup: int, config_dir: Path
) -> dict[str, Any]:
    """Warm up, time the interleaved clients, then (stub targets) count requests per warm event."""
    clients: list[Client] = [SampleClient(target), ProjectClient(entry, target, config_dir), FloorClient(target)]
    try:
        for client in clients:
            client.prepare(warmup)
            for _ in range(warmup):
                client.event()
        progress(f"warm {entry} {target.name}: {events} events x {len(clients)} clients")
        latencies = interleaved(clients, events, block)
        result: dict[str, Any] = {"clients": {label: summarize(times) for label, times in latencies.items()}}
        if target.control is not None:
            result["requests"] = count_requests(clients, target, min(events, COUNT_EVENTS))
        return result
    finally:
        for client in clients:
            client.close()


def main(argv: list[str] | None = None) -> int:
    """The worker: measure one entry point against the given targets and write JSON to ``--result``."""
    parser = argparse.ArgumentParser(prog="python -m bench.warm")
    parser.add_argument("--entry", choices=("gcf", "lambda"), required=True)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--block", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    # A file, not an argument: the Airflow password must not show in the process list.
    parser.add_argument("--targets-file", type=Path, required=True, help="JSON list of Target fields")
    parser.add_argument("--result", type=Path, required=True)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"entry": args.entry, "events": args.events, "block": args.block, "targets": {}}
    with tempfile.TemporaryDirectory(prefix="bench-warm-") as directory:
        for fields in json.loads(args.targets_file.read_text()):
            target = Target(**fields)
            results["targets"][target.name] = measure_target(
                args.entry, target, args.events, args.block, args.warmup, Path(directory)
            )
    args.result.write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
