"""What the benchmark's sections share: event builders, a Lambda context, summaries, and running a worker process.

Measurements that import an entry point run in worker processes (``python -m bench.<section> ...``): each
entry point then loads alone, as it does when deployed (the Lambda edge sets a process-wide transport wrapper
and logging that the Cloud Function's must not inherit), and the orchestrator never imports either.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
BUCKET = "bench-bucket"
#: The DAG the stub and the fakes answer for (any id works there).
STUB_DAG = "bench_dag"
#: The example DAG that is paused, so runs stay queued and no task competes with the API for the database.
AIRFLOW_DAG = "dag_trigger_demo_paused"
PASSWORD_ENV = "BENCH_AIRFLOW_PASSWORD"
#: Run ids on Airflow must be unique across runs of the benchmark, not just within one.
RUN_TAG = uuid.uuid4().hex[:8]


class LambdaContext:
    """What the Lambda runtime passes as ``context``: enough for Powertools and the handler's deadline."""

    function_name = "dag-trigger-bench"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:dag-trigger-bench"
    memory_limit_in_mb = 256
    log_group_name = "/aws/lambda/dag-trigger-bench"
    log_stream_name = "bench"

    def __init__(self, timeout_seconds: float = 60.0) -> None:
        self.aws_request_id = uuid.uuid4().hex
        self._end = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left in this invocation."""
        return int((self._end - time.monotonic()) * 1000)


def object_key(client: str, index: int) -> str:
    """A fresh object key per event (so a fresh run id), naming the client and the benchmark run."""
    return f"incoming/{RUN_TAG}/{client}/{index:06d}/orders.csv"


def gcs_cloudevent_parts(key: str, generation: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The attributes and data of a ``google.cloud.storage.object.v1.finalized`` CloudEvent for ``key``."""
    attributes = {
        "specversion": "1.0",
        "id": str(generation),
        "source": f"//storage.googleapis.com/projects/_/buckets/{BUCKET}",
        "type": "google.cloud.storage.object.v1.finalized",
        "datacontenttype": "application/json",
        "subject": f"objects/{key}",
        "time": "2026-11-23T08:13:20.123456Z",
    }
    data = {
        "kind": "storage#object",
        "id": f"{BUCKET}/{key}/{generation}",
        "name": key,
        "bucket": BUCKET,
        "generation": str(generation),
        "metageneration": "1",
        "contentType": "text/csv",
        "timeCreated": "2026-11-23T08:13:20.123Z",
        "updated": "2026-11-23T08:13:20.123Z",
        "storageClass": "STANDARD",
        "size": "52811",
        "md5Hash": "kP3zq8bYb4rl3gMzc6S6pQ==",
        "crc32c": "yZRlqg==",
        "etag": "CMDyzPvxkJEDEAE=",
    }
    return attributes, data


def s3_record(key: str, sequencer: int) -> dict[str, Any]:
    """One S3 ``ObjectCreated:Put`` notification record for ``key``."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-23T08:13:20.412Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "203.0.113.10"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZ"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "dag-trigger",
            "bucket": {
                "name": BUCKET,
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": f"arn:aws:s3:::{BUCKET}",
            },
            "object": {
                "key": key,
                "size": 52811,
                "eTag": "0123456789abcdef0123456789abcdef",
                "versionId": f"v{sequencer:020d}",
                "sequencer": f"{sequencer:018X}",
            },
        },
    }


def s3_event(key: str, sequencer: int) -> dict[str, Any]:
    """An S3 notification invoking a Lambda directly, for one object."""
    return {"Records": [s3_record(key, sequencer)]}


def sqs_batch(keys: Sequence[str], first_sequencer: int) -> dict[str, Any]:
    """An SQS batch whose records each carry an S3 notification (S3 -> SQS), one key per record."""
    records = []
    for offset, key in enumerate(keys):
        records.append(
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
                "body": json.dumps({"Records": [s3_record(key, first_sequencer + offset)]}),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1763885600512",
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1763885600530",
                },
                "messageAttributes": {},
                "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:dag-trigger-queue",
                "awsRegion": "us-east-1",
            }
        )
    return {"Records": records}


def sample_conf(key: str, generation: int) -> dict[str, Any]:
    """A conf of the size and shape the project sends, for the clients that build their own request."""
    return {
        "source": "gcs",
        "bucket": BUCKET,
        "key": key,
        "uri": f"gs://{BUCKET}/{key}",
        "size": 52811,
        "version": str(generation),
        "event_type": "created",
        "event_time": "2026-11-23T08:13:20.123456+00:00",
        "content_type": "text/csv",
    }


def write_config(directory: Path, name: str, airflow: Mapping[str, Any], dag_id: str) -> Path:
    """A TOML config file with ``airflow`` as its ``[airflow]`` table and one route for the bench bucket."""
    lines = ["[airflow]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in airflow.items()]
    lines += ["", "[[routes]]", f"dag_id = {json.dumps(dag_id)}", f"bucket = {json.dumps(BUCKET)}", ""]
    path = directory / f"{name}.toml"
    path.write_text("\n".join(lines))
    return path


def summarize(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p99, mean (milliseconds) and sequential events per second of per-event latencies."""
    if not seconds:
        return {"n": 0, "p50_ms": math.nan, "p99_ms": math.nan, "mean_ms": math.nan, "events_per_s": math.nan}
    ordered = sorted(seconds)
    p99 = statistics.quantiles(ordered, n=100, method="inclusive")[98] if len(ordered) > 1 else ordered[0]
    return {
        "n": len(ordered),
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": p99 * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
        "events_per_s": len(ordered) / sum(ordered),
    }


def worker_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a worker, with the repository importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.update(extra or {})
    return env


def run_worker(module: str, args: Sequence[str], env: Mapping[str, str], *, timeout: float = 900) -> dict[str, Any]:
    """Run ``python -m <module> ARGS --result FILE`` and return the JSON it wrote there.

    The worker's stdout (where the entry points write their JSON log lines, as on the platforms) goes to
    /dev/null; of its stderr, only its ``[bench]`` progress lines are shown, unless it fails.
    """
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as directory:
        result = Path(directory) / "result.json"
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args, "--result", str(result)],
            cwd=REPO_ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _, stderr = process.communicate(timeout=timeout)
        except BaseException:
            # Interrupted or timed out: the worker must not outlive us.
            process.kill()
            process.communicate()
            raise
        if process.returncode != 0 or not result.exists():
            raise RuntimeError(f"{module} {' '.join(args)} failed (exit {process.returncode}):\n{stderr[-4000:]}")
        # Only the worker's own progress lines: libraries' warnings repeat once per event.
        for line in stderr.splitlines():
            if line.startswith("[bench]"):
                print(line, file=sys.stderr)
        return dict(json.loads(result.read_text()))


def progress(message: str) -> None:
    """A progress line on stderr (stdout is the report)."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)
