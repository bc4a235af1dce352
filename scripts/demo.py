"""``make demo``: a real local Airflow 3, a GCS event through the Cloud Function, an S3 event through the Lambda.

1. Starts Airflow 3 standalone (installed on first use) with the example DAG.
2. Serves ``gcf_trigger.main.trigger_dag`` with functions-framework over HTTP and POSTs the sample
   GCS ``finalized`` CloudEvent to it, then the same event again (a redelivery).
3. Invokes ``lambda_trigger.handler.handler`` with the sample S3 ``ObjectCreated:Put`` notification.
4. Waits for both DAG runs to finish and shows what the task received. Stops everything it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scripts.local_airflow import DEFAULT_DAGS_FOLDER, REPO_ROOT, LocalAirflow, free_port

DAG_ID = "dag_trigger_demo"
EVENTS = REPO_ROOT / "tests" / "events"
PASSWORD_ENV = "DEMO_AIRFLOW_PASSWORD"  # noqa: S105 - a variable name

BOLD, DIM, GREEN, RED, CYAN, RESET = (
    ("\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[36m", "\033[0m") if sys.stdout.isatty() else ("",) * 6
)


def say(text: str = "") -> None:
    """Print a line of the story, immediately."""
    print(text, flush=True)


def write_config(airflow: LocalAirflow, directory: Path) -> Path:
    """The config a user would write: one route, Airflow 3 JWT auth, the password from the environment."""
    path = directory / "dag-trigger.toml"
    path.write_text(
        f"""[airflow]
url = "{airflow.url}"
auth = "jwt"
username = "{airflow.username}"
password_env = "{PASSWORD_ENV}"

[[routes]]
name = "landing-zone"
dag_id = "{DAG_ID}"
prefix = "incoming/"
conf = {{ pipeline = "demo" }}
""",
        encoding="utf-8",
    )
    return path


@contextlib.contextmanager
def cloud_function(env: dict[str, str]) -> Iterator[str]:
    """The Cloud Function served by functions-framework, as ``gcloud functions deploy`` would run it."""
    port = free_port()
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "functions-framework"),
            "--source",
            str(REPO_ROOT / "gcf_trigger" / "main.py"),
            "--target",
            "trigger_dag",
            "--signature-type",
            "cloudevent",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=REPO_ROOT,
        env={**env, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(150):
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                raise RuntimeError(f"functions-framework exited:\n{output}")
            try:
                with urllib.request.urlopen(url, timeout=1):
                    break
            except urllib.error.HTTPError:
                break  # it answers (a GET without a CloudEvent is refused): it is up
            except OSError:
                time.sleep(0.2)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        output, _ = process.communicate(timeout=10)
        for line in output.decode(errors="replace").splitlines():
            with contextlib.suppress(ValueError, TypeError, KeyError):
                message = str(json.loads(line)["message"])
                if message.startswith("dag run"):
                    say(f"   {DIM}function log: {message}{RESET}")


def post_cloudevent(url: str, event: dict[str, Any]) -> int:
    """Deliver a CloudEvent the way Eventarc does (structured content mode)."""
    request = urllib.request.Request(  # noqa: S310 - loopback
        url,
        data=json.dumps(event).encode(),
        headers={"Content-Type": "application/cloudevents+json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code


class LambdaContext:
    """What the Lambda runtime passes as ``context``, enough for Powertools and our deadline."""

    function_name = "dag-trigger-demo"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:dag-trigger-demo"
    memory_limit_in_mb = 256
    aws_request_id = "demo-request-1"
    log_group_name = "/aws/lambda/dag-trigger-demo"
    log_stream_name = "demo"

    def __init__(self, timeout_seconds: float = 30.0) -> None:
        self._end = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left in this invocation."""
        return int((self._end - time.monotonic()) * 1000)


def show_run(airflow: LocalAirflow, title: str, run_id: str, outcome: str) -> bool:
    """Wait for a run, then print its state and the conf its task received."""
    say(f"   {DIM}waiting for run {run_id} ...{RESET}")
    started = time.monotonic()
    state = airflow.wait_for_run_state(DAG_ID, run_id, timeout=180)
    colour = GREEN if state == "success" else RED
    say(f"{BOLD}{title}{RESET}")
    say(f"   DAG      {DAG_ID}")
    say(f"   run id   {CYAN}{run_id}{RESET}  ({outcome})")
    say(f"   state    {colour}{state}{RESET} after {time.monotonic() - started:.1f}s")
    conf = airflow.received_conf(run_id) or {}
    say("   the task received conf:")
    for key in ("source", "bucket", "key", "size", "version", "event_type", "event_time", "pipeline"):
        say(f"      {key:11} {conf.get(key)!r}")
    say()
    return state == "success"


def main() -> int:
    """Run the demo; exit 0 when both runs succeeded."""
    # Ctrl-C and a plain `kill` both unwind through the context managers, which stop Airflow.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    say(f"{BOLD}dag-trigger demo{RESET}: cloud events in, Airflow DAG runs out\n")
    with LocalAirflow("3", DEFAULT_DAGS_FOLDER) as airflow, tempfile.TemporaryDirectory() as tmp:
        airflow.wait_for_dag(DAG_ID)
        say(f"Airflow 3 is up at {airflow.url} (user {airflow.username}, password {airflow.password})\n")
        config = write_config(airflow, Path(tmp))
        env = {**os.environ, "DAG_TRIGGER_CONFIG": str(config), PASSWORD_ENV: airflow.password}

        gcs_event = json.loads((EVENTS / "gcs_finalized.cloudevent.json").read_text())
        say(f"{BOLD}1. GCS{RESET} gs://{gcs_event['data']['bucket']}/{gcs_event['data']['name']} finalized")
        say("   -> Cloud Function trigger_dag (functions-framework, CloudEvent over HTTP)")
        with cloud_function(env) as url:
            first = post_cloudevent(url, gcs_event)
            say(f"   delivered: HTTP {first}")
            again = post_cloudevent(url, gcs_event)
            say(f"   redelivered the same event: HTTP {again} (Eventarc delivers at least once)")

        s3_event = json.loads((EVENTS / "s3_put.json").read_text())
        record = s3_event["Records"][0]
        say(f"\n{BOLD}2. S3{RESET} s3://{record['s3']['bucket']['name']}/{record['s3']['object']['key']} put")
        say("   -> Lambda handler (Powertools), invoked in-process")
        os.environ.update({"DAG_TRIGGER_CONFIG": str(config), PASSWORD_ENV: airflow.password})
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
        from lambda_trigger.handler import handler

        lambda_report = handler(s3_event, LambdaContext())
        [s3_run] = lambda_report["runs"]
        say(f"   handler returned: {s3_run['outcome']}\n")

        from shared.config import load_file
        from shared.dispatch import plan_payload

        [gcs_request] = plan_payload(gcs_event, load_file(config)).requests
        runs = airflow.request("GET", f"{airflow.api_prefix}/dags/{DAG_ID}/dagRuns")[1]["dag_runs"]
        gcs_runs = [r for r in runs if r["dag_run_id"] == gcs_request.dag_run_id]
        say(f"{BOLD}Results{RESET} ({len(runs)} runs in Airflow for 3 deliveries of 2 events)\n")
        ok = show_run(airflow, "GCS event -> Cloud Function", gcs_request.dag_run_id, f"{len(gcs_runs)} run")
        ok = show_run(airflow, "S3 event -> Lambda", s3_run["dag_run_id"], s3_run["outcome"]) and ok
        say(f"{GREEN if ok else RED}{'Both DAG runs succeeded.' if ok else 'A DAG run did not succeed.'}{RESET}")
        say("Stopping Airflow ...")
    return 0 if ok and len(runs) == 2 else 1


if __name__ == "__main__":
    sys.exit(main())
