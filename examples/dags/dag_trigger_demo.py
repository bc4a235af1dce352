"""Example DAGs that record the ``conf`` they were triggered with.

``dag_trigger_demo`` is the target used by the demo and the integration tests:
its single task logs the run's ``conf``, writes it to
``$AIRFLOW_HOME/received/<dag_run_id>.json`` and returns it (so it also shows
up as the task's XCom).  ``dag_trigger_demo_paused`` is identical but starts
paused, so tests can exercise triggering a paused DAG.

Works on Airflow 3 (``airflow.sdk``) and Airflow 2.11 (``airflow.decorators``).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

try:
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2.x has no Task SDK
    from airflow.decorators import dag, task

log = logging.getLogger(__name__)


def _received_dir() -> Path:
    # The task runs in a process spawned by the scheduler/executor, which
    # inherits AIRFLOW_HOME from `airflow standalone`; the test harness reads
    # the same directory back.
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    return Path(home) / "received"


@task
def record_conf(**context: Any) -> dict[str, Any]:
    """Log the triggering conf, persist it as JSON and return it."""
    dag_run = context["dag_run"]
    run_id: str = dag_run.run_id
    conf: dict[str, Any] = dict(dag_run.conf or {})
    log.info("dag_run_id=%s received conf: %s", run_id, json.dumps(conf, sort_keys=True))

    out_dir = _received_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    # Run ids cannot normally contain "/", but never let one escape the directory.
    target = out_dir / f"{run_id.replace('/', '_')}.json"
    # Write-then-rename so a poller never reads a half-written file.
    fd, tmp_name = tempfile.mkstemp(dir=out_dir, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"dag_run_id": run_id, "conf": conf}, fh, sort_keys=True)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    log.info("wrote %s", target)
    return conf


def _build(dag_id: str, *, paused: bool) -> Any:
    """Create one copy of the demo DAG; only the id and initial pause state differ."""

    @dag(
        dag_id=dag_id,
        schedule=None,
        # timezone.utc rather than datetime.UTC: this file may be copied into
        # an Airflow running on Python < 3.11.
        start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),  # noqa: UP017
        catchup=False,
        is_paused_upon_creation=paused,
        tags=["example", "dag-trigger"],
        doc_md=__doc__,
    )
    def _demo() -> None:
        record_conf()

    return _demo()


# Module-level names so both Airflow 2 and 3 discover the DAGs when parsing.
dag_trigger_demo = _build("dag_trigger_demo", paused=False)
dag_trigger_demo_paused = _build("dag_trigger_demo_paused", paused=True)
# An id too long for MWAA's InvokeRestApi (its paths are at most 64 characters): the tests trigger it through
# MWAA's CLI-token path.
dag_trigger_demo_with_a_dag_id_too_long_for_invoke_rest_api = _build(
    "dag_trigger_demo_with_a_dag_id_too_long_for_invoke_rest_api", paused=False
)
