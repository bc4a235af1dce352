"""SQS batches through ``lambda_trigger.handler.sqs_handler``: sequential against bounded-concurrent.

A worker process (``python -m bench.sqs_batches``) warms the handler up, then for each batch size sends
batches of S3-in-SQS records (a fresh key per record, so a fresh run each) with
``DAG_TRIGGER_SQS_CONCURRENCY=1`` and with the default (8), alternating which goes first, and times the
whole invocation with ``time.perf_counter``. Every record must succeed (no ``batchItemFailures``).
Against the real local Airflow, whose API server and database (on the same few cores) decide how much
concurrency can give. Each batch also records the worker's CPU time and how busy the whole machine was
(``/proc/stat``), which tell a client-bound batch from a server-bound one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import PASSWORD_ENV, LambdaContext, object_key, progress, sqs_batch, write_config

CONCURRENCY_ENV = "DAG_TRIGGER_SQS_CONCURRENCY"


def machine_cpu() -> tuple[int, int] | None:
    """(busy, total) jiffies of all cores since boot, from /proc/stat; None where there is none."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def worker(
    url: str, username: str, password: str, dag_id: str, sizes: list[int], repeats: int, directory: Path
) -> dict[str, Any]:
    """Time every batch; return the times and failures per size and mode."""
    config = write_config(
        directory, "sqs", {"url": url, "auth": "jwt", "username": username, "password_env": PASSWORD_ENV}, dag_id
    )
    os.environ["DAG_TRIGGER_CONFIG"] = str(config)
    os.environ[PASSWORD_ENV] = password
    from lambda_trigger import sqs
    from lambda_trigger.handler import sqs_handler

    sequencer = 10_000_000
    batch_number = 0

    def send(size: int, concurrency: str | None) -> tuple[float, int, float, float | None]:
        """Wall seconds, failed records, this process's CPU seconds, and how busy the whole machine was (0-1)."""
        nonlocal sequencer, batch_number
        batch_number += 1
        keys = [object_key(f"sqs-{batch_number}", i) for i in range(size)]
        event = sqs_batch(keys, sequencer)
        sequencer += size
        if concurrency is None:
            os.environ.pop(CONCURRENCY_ENV, None)
        else:
            os.environ[CONCURRENCY_ENV] = concurrency
        cpu_before, machine_before = time.process_time(), machine_cpu()
        started = time.perf_counter()
        response = sqs_handler(event, LambdaContext(timeout_seconds=600))
        elapsed = time.perf_counter() - started
        cpu, machine_after = time.process_time() - cpu_before, machine_cpu()
        busy = None
        if machine_before and machine_after and machine_after[1] > machine_before[1]:
            busy = (machine_after[0] - machine_before[0]) / (machine_after[1] - machine_before[1])
        return elapsed, len(response.get("batchItemFailures") or []), cpu, busy

    send(2, None)  # warm-up: the dispatcher, the token, the API version, the DAG's paused flag
    default = sqs.concurrency()
    results: dict[str, Any] = {"default_concurrency": default, "repeats": repeats, "sizes": {}}
    for size in sizes:
        times: dict[str, list[float]] = {"sequential": [], "concurrent": []}
        cpu: dict[str, list[float]] = {"sequential": [], "concurrent": []}
        busy: dict[str, list[float]] = {"sequential": [], "concurrent": []}
        failures = {"sequential": 0, "concurrent": 0}
        for repeat in range(repeats):
            order = ["sequential", "concurrent"] if repeat % 2 == 0 else ["concurrent", "sequential"]
            for mode in order:
                progress(f"sqs: batch of {size}, {mode}, repeat {repeat + 1}/{repeats}")
                elapsed, failed, seconds, machine = send(size, "1" if mode == "sequential" else None)
                times[mode].append(elapsed)
                cpu[mode].append(seconds)
                if machine is not None:
                    busy[mode].append(machine)
                failures[mode] += failed
        sequential, concurrent = statistics.median(times["sequential"]), statistics.median(times["concurrent"])
        results["sizes"][str(size)] = {
            "sequential_s": sequential,
            "concurrent_s": concurrent,
            "speedup": sequential / concurrent,
            "times": times,
            "failures": failures,
            # Why concurrency gives what it gives: the client's own CPU per record, and whether the machine
            # (client, server, database, and whatever else runs here) had cores to spare.
            "client_cpu_ms_per_record": {mode: statistics.median(v) * 1000 / size for mode, v in cpu.items()},
            "machine_busy": {mode: statistics.median(v) if v else None for mode, v in busy.items()},
        }
    return results


def main(argv: list[str] | None = None) -> int:
    """The worker: batches against the Airflow at ``--url``."""
    parser = argparse.ArgumentParser(prog="python -m bench.sqs_batches")
    parser.add_argument("--url", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--password-env", required=True, help="the variable holding the password")
    parser.add_argument("--dag", required=True)
    parser.add_argument("--sizes", default="10,100")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--result", type=Path, required=True)
    args = parser.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-sqs-") as directory:
        result = worker(
            args.url,
            args.username,
            os.environ[args.password_env],
            args.dag,
            [int(size) for size in args.sizes.split(",")],
            args.repeats,
            Path(directory),
        )
    args.result.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
