"""How fast the local Airflow 3 (PostgreSQL, LocalExecutor) creates DAG runs, alone and under concurrent writers.

Run with ``make bench``; results go to bench/RESULTS.md by hand, with the date and the command.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests

from scripts.local_airflow import DEFAULT_DAGS_FOLDER, LocalAirflow

DAG_ID = "dag_trigger_demo_paused"  # paused: runs stay queued, so no task competes for the database
RUNS = 40


def main() -> None:
    """Trigger RUNS runs with 1, 2, 4, 8 and 16 concurrent writers and print latency figures."""
    with LocalAirflow("3", DEFAULT_DAGS_FOLDER) as airflow:
        airflow.wait_for_dag(DAG_ID)
        headers = airflow.auth_headers()
        session = requests.Session()

        def trigger(i: int) -> tuple[float, int]:
            started = time.monotonic()
            response = session.post(
                f"{airflow.url}/api/v2/dags/{DAG_ID}/dagRuns",
                json={"dag_run_id": f"bench_{uuid.uuid4().hex}", "logical_date": None, "conf": {"i": i}},
                headers=headers,
                timeout=120,
            )
            return time.monotonic() - started, response.status_code

        for workers in (1, 2, 4, 8, 16):
            started = time.monotonic()
            with ThreadPoolExecutor(workers) as pool:
                results = list(pool.map(trigger, range(RUNS)))
            latencies = [seconds for seconds, _ in results]
            codes = Counter(code for _, code in results)
            print(
                f"workers={workers} runs={RUNS} total={time.monotonic() - started:.1f}s "
                f"median={statistics.median(latencies):.3f}s max={max(latencies):.2f}s status={dict(codes)}",
                flush=True,
            )


if __name__ == "__main__":
    main()
