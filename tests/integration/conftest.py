"""Real Airflow 3 and Airflow 2 standalones for the whole session, started side by side.

Both are installed by ``scripts/local_airflow.py`` (``make test`` installs them first) and always
stopped, by process group, when the session ends or a test fails.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scripts.local_airflow import DEFAULT_DAGS_FOLDER, LocalAirflow
from shared.config import Config, from_mapping

DEMO_DAG = "dag_trigger_demo"
PAUSED_DAG = "dag_trigger_demo_paused"


@dataclass
class Target:
    """One running Airflow and how our config reaches it."""

    airflow: LocalAirflow
    password_env: str

    @property
    def major(self) -> str:
        return self.airflow.major

    def config(self, routes: list[dict[str, Any]] | None = None, **airflow: Any) -> Config:
        """A validated config pointing at this Airflow; routes default to the demo DAG."""
        settings = {
            "url": self.airflow.url,
            "auth": "jwt" if self.major == "3" else "basic",
            "username": self.airflow.username,
            "password_env": self.password_env,
            "deadline": 60,
            **airflow,
        }
        return from_mapping({"airflow": settings, "routes": routes or [{"dag_id": DEMO_DAG}]}, "test")

    def write_config(self, path: Path, routes: list[dict[str, Any]] | None = None, **airflow: Any) -> Path:
        """The same config as a JSON file, for the CLI and the function edges."""
        config = self.config(routes, **airflow)
        settings = {k: v for k, v in vars(config.airflow).items() if v is not None}
        path.write_text(json.dumps({"airflow": settings, "routes": routes or [{"dag_id": DEMO_DAG}]}))
        return path

    def run_ids(self, dag_id: str) -> list[str]:
        """Every run id of ``dag_id`` in Airflow, page by page."""
        ids: list[str] = []
        while True:
            path = f"{self.airflow.api_prefix}/dags/{dag_id}/dagRuns?limit=100&offset={len(ids)}&order_by=id"
            status, body = self.airflow.request("GET", path)
            assert status == 200, body
            ids.extend(run["dag_run_id"] for run in body["dag_runs"])
            if not body["dag_runs"] or len(ids) >= body["total_entries"]:
                return ids

    def runs_with_id(self, dag_id: str, dag_run_id: str) -> int:
        """How many runs of ``dag_id`` carry ``dag_run_id`` (0 or 1; Airflow enforces the rest)."""
        return self.run_ids(dag_id).count(dag_run_id)


def _start(major: str) -> LocalAirflow:
    airflow = LocalAirflow(major, DEFAULT_DAGS_FOLDER)
    airflow.start()
    try:
        airflow.wait_for_dag(DEMO_DAG)
        airflow.wait_for_dag(PAUSED_DAG)
    except BaseException:
        airflow.stop()
        raise
    return airflow


@pytest.fixture(scope="session")
def airflows() -> Iterator[dict[str, Target]]:
    """Airflow 3 and 2, started in parallel (each takes ~20 s); stopped at the end of the session."""
    # A CI timeout or `kill` sends SIGTERM, which would skip every finalizer: make it an interrupt,
    # which pytest answers by tearing the session down (and so stopping both Airflows).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {major: pool.submit(_start, major) for major in ("3", "2")}
    started: dict[str, Target] = {}
    errors = []
    for major, future in futures.items():
        try:
            airflow = future.result()
        except Exception as exc:  # keep going so the other one is stopped too
            errors.append(f"Airflow {major}: {exc}")
            continue
        env_name = f"DAG_TRIGGER_TEST_AIRFLOW{major}_PASSWORD"
        os.environ[env_name] = airflow.password
        started[major] = Target(airflow, env_name)
    try:
        if errors:
            pytest.fail("could not start Airflow: " + "; ".join(errors))
        yield started
    finally:
        for target in started.values():
            target.airflow.stop()
            os.environ.pop(target.password_env, None)


@pytest.fixture(params=["3", "2"], ids=["airflow3", "airflow2"])
def target(request: pytest.FixtureRequest, airflows: dict[str, Target]) -> Target:
    """Each test that takes this runs once against Airflow 3 and once against Airflow 2."""
    return airflows[request.param]


@pytest.fixture
def unique() -> str:
    """A fresh value to make an event (and so its run id) new."""
    return uuid.uuid4().hex[:12]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration is an integration test."""
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
