"""Cold start of each entry point, in fresh interpreters.

For ``gcf_trigger.main`` and ``lambda_trigger.handler``:

* **own import cost**: ``python -X importtime -c "import M"`` once lists every module M loads; a fresh
  interpreter imports every non-project module of that list first (stdlib and third-party, by full name,
  so ``aws_lambda_powertools.utilities.batch`` as well as ``aws_lambda_powertools``), then times ``import M``
  with ``time.perf_counter``: what is left is the project's own modules and what they run at import (the
  Lambda edge builds Powertools' Logger, Tracer, Metrics and batch processor there). Median of N interpreters.
  The child also lists any non-project module that still loaded during the timed import (should be none).
* **total cold import**: ``import M`` in a fresh interpreter with nothing preloaded, median of N;
* **first event**: in that same interpreter, import plus one event against the stub (config read, token
  minted, API version probed, DAG read, run created); also from the parent's spawn (Linux's
  ``perf_counter`` is CLOCK_MONOTONIC, shared by processes), which adds the interpreter's own start-up;
* **peak RSS** after the first event: ``VmHWM`` from ``/proc/self/status``, and ``ru_maxrss``, which on Linux is
  no smaller than the parent's RSS when it forked the child (the high-water mark survives ``exec``), so a child of
  a large parent reports the parent's figure;
* the project modules with the most self time under ``-X importtime`` (one run: indicative only);
* whether the entry point loaded the other cloud's SDK (boto3/botocore for the Cloud Function,
  google.auth for the Lambda), after import and after the first event.

Optionally (``deployed``), the Lambda as deployed: the code zip unpacked as the task root and the layer as
``/opt/python``, boto3 and botocore from this venv standing in for the runtime's, ``PYTHONDONTWRITEBYTECODE``
set as on Lambda's read-only file system: the zips hold no ``.pyc``, so every cold start compiles; then the
same with the unpacked trees byte-compiled first (``compileall``), to show what that costs.
"""

from __future__ import annotations

import compileall
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.common import PASSWORD_ENV, REPO_ROOT, STUB_DAG, progress, worker_env, write_config

ENTRIES = {"gcf": "gcf_trigger.main", "lambda": "lambda_trigger.handler"}
PROJECT = ("shared", "gcf_trigger", "lambda_trigger")
#: The other cloud's SDK, which an entry point must not load.
FOREIGN = {"gcf": ("boto3", "botocore"), "lambda": ("google.auth", "google.oauth2")}
_IMPORTTIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")

_OWN_IMPORT = """
import importlib, json, sys, time
result, names_file, module = sys.argv[1], sys.argv[2], sys.argv[3]
failed = []
for name in json.load(open(names_file)):
    try:
        importlib.import_module(name)
    except BaseException:
        failed.append(name)
# Time the standard library's generation of each dataclass's methods (it compiles them with exec), to tell
# that share of the module bodies apart; two clock reads per class.
import dataclasses
generate, spent = dataclasses._process_class, []
def timed(cls, *args, **kwargs):
    begin = time.perf_counter()
    try:
        return generate(cls, *args, **kwargs)
    finally:
        spent.append(time.perf_counter() - begin)
dataclasses._process_class = timed
before = set(sys.modules)
started = time.perf_counter()
importlib.import_module(module)
seconds = time.perf_counter() - started
project = ("shared", "gcf_trigger", "lambda_trigger")
late = sorted(m for m in set(sys.modules) - before if m.split(".")[0] not in project)
json.dump(
    {"seconds": seconds, "failed": failed, "late": late, "dataclass_seconds": sum(spent), "dataclasses": len(spent)},
    open(result, "w"),
)
"""

_FIRST_EVENT = r"""
import time
started = time.perf_counter()
import importlib, json, sys
result, entry, module, key = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
foreign = tuple(json.loads(sys.argv[5]))
imported = importlib.import_module(module)
import_seconds = time.perf_counter() - started

def loaded_foreign():
    return sorted(m for m in sys.modules if any(m == f or m.startswith(f + ".") for f in foreign))

after_import = loaded_foreign()
if entry == "gcf":
    from cloudevents.http.event import CloudEvent
    attributes = {"specversion": "1.0", "id": "1", "source": "//storage.googleapis.com/projects/_/buckets/bench-bucket",
                  "type": "google.cloud.storage.object.v1.finalized", "time": "2026-11-23T08:13:20Z"}
    data = {"bucket": "bench-bucket", "name": key, "generation": "1", "metageneration": "1", "size": "10",
            "timeCreated": "2026-11-23T08:13:20Z", "updated": "2026-11-23T08:13:20Z"}
    report = imported.trigger_dag(CloudEvent(attributes, data))
else:
    class Context:
        function_name = "dag-trigger-bench"
        function_version = "$LATEST"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:dag-trigger-bench"
        memory_limit_in_mb = 256
        aws_request_id = "cold"
        log_group_name = "/aws/lambda/dag-trigger-bench"
        log_stream_name = "cold"
        def get_remaining_time_in_millis(self):
            return 30000
    record = {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
              "eventTime": "2026-11-23T08:13:20.412Z", "eventName": "ObjectCreated:Put",
              "s3": {"bucket": {"name": "bench-bucket"},
                     "object": {"key": key, "size": 10, "sequencer": "0065A1B2C3D4E5F601"}}}
    report = imported.handler({"Records": [record]}, Context())
finished = time.perf_counter()
import re, resource
created = [run for run in report.get("runs", []) if run.get("outcome") == "created"]
try:
    # This process image's own peak: ru_maxrss also counts the parent's RSS at fork, which Linux keeps across exec.
    vmhwm = int(re.search(r"VmHWM:\s+(\d+) kB", open("/proc/self/status").read())[1])
except (OSError, TypeError):
    vmhwm = None
json.dump({
    "import_seconds": import_seconds,
    "first_event_seconds": finished - started,
    "finished_at": finished,
    "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "vmhwm_kib": vmhwm,
    "created": len(created),
    "foreign_after_import": after_import,
    "foreign_after_event": loaded_foreign(),
    "origin": getattr(imported, "__file__", None),
}, open(result, "w"))
"""


def importtime(module: str, env: Mapping[str, str], cwd: Path = REPO_ROOT) -> list[tuple[str, int, int]]:
    """``(module, self µs, cumulative µs)`` of every import ``python -X importtime -c "import M"`` reports."""
    process = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in process.stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            rows.append((match[4], int(match[1]), int(match[2])))
    return rows


def _is_project(name: str) -> bool:
    return name.split(".")[0] in PROJECT


def _run_child(code: str, args: Sequence[str], env: Mapping[str, str], cwd: Path = REPO_ROOT) -> dict[str, Any]:
    """Run ``python -c code RESULT ARGS`` in a fresh interpreter; its JSON result, with the spawn time."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        result = Path(handle.name)
    try:
        spawned = time.perf_counter()
        process = subprocess.run(
            [sys.executable, "-c", code, str(result), *args],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # the entry points' log lines
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            timeout=120,
        )
        if process.returncode != 0:
            raise RuntimeError(f"cold-start child failed (exit {process.returncode}):\n{process.stderr[-3000:]}")
        data = dict(json.loads(result.read_text()))
        data["spawned_at"] = spawned
        return data
    finally:
        result.unlink(missing_ok=True)


def _median_ms(values: Sequence[float]) -> float:
    return statistics.median(values) * 1000


def _median_mib(kib: Sequence[int | None]) -> float | None:
    known = [value for value in kib if value is not None]
    return statistics.median(known) / 1024 if known else None


def _by_package(rows: Sequence[tuple[str, int, int]]) -> list[dict[str, Any]]:
    """Self time under ``-X importtime`` summed per top-level package, most first."""
    totals: dict[str, int] = {}
    for name, self_us, _ in rows:
        top = name.split(".")[0]
        totals[top] = totals.get(top, 0) + self_us
    ordered = sorted(totals.items(), key=lambda item: -item[1])
    return [{"package": name, "self_ms": micros / 1000} for name, micros in ordered[:8]]


def measure_entry(
    entry: str, interpreters: int, env: Mapping[str, str], compiling_env: Mapping[str, str], directory: Path
) -> dict[str, Any]:
    """Every cold-start figure of one entry point.

    ``env`` finds (or writes) byte-code for every module; ``compiling_env`` has none for the project's own
    modules (``PYTHONDONTWRITEBYTECODE`` and no caches), so they are compiled at every import.
    """
    module = ENTRIES[entry]
    rows = importtime(module, env)
    preload = [name for name, _, _ in rows if not _is_project(name)]
    names_file = directory / f"{entry}-preload.json"
    names_file.write_text(json.dumps(preload))
    project_rows = sorted((row for row in rows if _is_project(row[0])), key=lambda row: -row[1])
    progress(f"cold start {entry}: own import cost, {interpreters} + {interpreters} interpreters")
    own = [_run_child(_OWN_IMPORT, [str(names_file), module], env) for _ in range(interpreters)]
    compiling = [_run_child(_OWN_IMPORT, [str(names_file), module], compiling_env) for _ in range(interpreters)]
    progress(f"cold start {entry}: cold import and first event, {interpreters} interpreters")
    # One untimed run first: it caches the byte-code of what only the first event imports.
    _run_child(_FIRST_EVENT, [entry, module, f"cold/{entry}/prime-{time.time_ns()}.csv", "[]"], env)
    first = [
        _run_child(
            _FIRST_EVENT, [entry, module, f"cold/{entry}/{i}-{time.time_ns()}.csv", json.dumps(FOREIGN[entry])], env
        )
        for i in range(interpreters)
    ]
    if any(run["created"] != 1 for run in first):
        raise RuntimeError(f"{entry}: a first event did not create its run")
    third_party = [
        row for row in rows if not _is_project(row[0]) and row[0].split(".")[0] not in sys.stdlib_module_names
    ]
    return {
        "module": module,
        "interpreters": interpreters,
        "third_party_modules": len(third_party),
        "preloaded_modules": len(preload),
        "preload_failed": sorted({name for run in own for name in run["failed"]}),
        "late_imports": sorted({name for run in own for name in run["late"]}),
        "own_import_ms": _median_ms([run["seconds"] for run in own]),
        "own_import_ms_min": min(run["seconds"] for run in own) * 1000,
        "own_import_dataclass_ms": _median_ms([run["dataclass_seconds"] for run in own]),
        "own_import_dataclasses": max(run["dataclasses"] for run in own),
        "own_import_compiling_ms": _median_ms([run["seconds"] for run in compiling]),
        "cold_import_ms": _median_ms([run["import_seconds"] for run in first]),
        "first_event_ms": _median_ms([run["first_event_seconds"] for run in first]),
        "first_event_from_spawn_ms": _median_ms([run["finished_at"] - run["spawned_at"] for run in first]),
        "maxrss_mib": statistics.median(run["maxrss_kib"] for run in first) / 1024,
        "vmhwm_mib": _median_mib([run["vmhwm_kib"] for run in first]),
        "foreign_after_import": sorted({m for run in first for m in run["foreign_after_import"]}),
        "foreign_after_event": sorted({m for run in first for m in run["foreign_after_event"]}),
        "importtime_project_total_ms": sum(row[1] for row in project_rows) / 1000,
        "importtime_total_ms": sum(row[1] for row in rows) / 1000,
        "top_project_modules": [
            {"module": n, "self_ms": s / 1000, "cumulative_ms": c / 1000} for n, s, c in project_rows[:8]
        ],
        "top_packages": _by_package([row for row in rows if not _is_project(row[0])]),
    }


def measure_deployed(
    packages: Mapping[str, Path], interpreters: int, env: Mapping[str, str], directory: Path
) -> dict[str, Any]:
    """The Lambda's cold import and first event from the unpacked zips, without and with byte-compiled files."""
    root = directory / "deployed"
    task, opt = root / "task", root / "opt"
    for archive, into in ((packages["lambda"], task), (packages["layer"], opt)):
        with zipfile.ZipFile(archive) as handle:
            handle.extractall(into)
    # The task root first, then the layer, as Lambda's sys.path has them; this venv's site-packages (after
    # PYTHONPATH) stands in for the runtime's boto3 and botocore.
    deployed_env = {**env, "PYTHONPATH": f"{task}{os.pathsep}{opt / 'python'}", "PYTHONDONTWRITEBYTECODE": "1"}
    result: dict[str, Any] = {"interpreters": interpreters}
    for variant in ("as packaged (no .pyc)", "byte-compiled"):
        if variant == "byte-compiled":
            for tree in (task, opt):
                compileall.compile_dir(str(tree), quiet=1, workers=1)
        progress(f"cold start lambda, deployed zips, {variant}: {interpreters} interpreters")
        runs = [
            _run_child(
                _FIRST_EVENT,
                ["lambda", ENTRIES["lambda"], f"cold/deployed/{i}-{time.time_ns()}.csv", json.dumps(FOREIGN["lambda"])],
                deployed_env,
                cwd=task,
            )
            for i in range(interpreters)
        ]
        origins = {run["origin"] for run in runs}
        if not all(str(origin).startswith(str(task)) for origin in origins):
            raise RuntimeError(f"the deployed handler was imported from {origins}, not from {task}")
        result[variant] = {
            "cold_import_ms": _median_ms([run["import_seconds"] for run in runs]),
            "first_event_ms": _median_ms([run["first_event_seconds"] for run in runs]),
            "first_event_from_spawn_ms": _median_ms([run["finished_at"] - run["spawned_at"] for run in runs]),
            "maxrss_mib": statistics.median(run["maxrss_kib"] for run in runs) / 1024,
            "vmhwm_mib": _median_mib([run["vmhwm_kib"] for run in runs]),
        }
    return result


def run(stub_url: str, interpreters: int, packages: Mapping[str, Path] | None = None) -> dict[str, Any]:
    """Cold-start figures of both entry points against the stub at ``stub_url`` (and of the deployed Lambda)."""
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as name:
        directory = Path(name)
        config = write_config(
            directory,
            "cold",
            {"url": stub_url, "auth": "jwt", "username": "bench", "password_env": PASSWORD_ENV},
            STUB_DAG,
        )
        base = worker_env({"DAG_TRIGGER_CONFIG": str(config), PASSWORD_ENV: "bench-password"})
        # Byte-code for everything, in a cache of our own (this machine may set PYTHONDONTWRITEBYTECODE, and the
        # checkout is not ours to fill with __pycache__): the steady state of a platform that keeps byte-code.
        env = {k: v for k, v in base.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(directory / "pycache")
        compiling_env = {k: v for k, v in base.items() if k != "PYTHONPYCACHEPREFIX"}
        compiling_env["PYTHONDONTWRITEBYTECODE"] = "1"
        progress("cold start: filling the byte-code cache")
        subprocess.run(
            [sys.executable, "-c", "import gcf_trigger.main, lambda_trigger.handler, cloudevents.http.event"],
            cwd=REPO_ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        results: dict[str, Any] = {
            "entries": {entry: measure_entry(entry, interpreters, env, compiling_env, directory) for entry in ENTRIES}
        }
        if packages is not None:
            plain = {key: value for key, value in compiling_env.items() if key != "PYTHONPATH"}
            results["deployed_lambda"] = measure_deployed(packages, interpreters, plain, directory)
        return results
