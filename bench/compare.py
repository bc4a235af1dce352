"""Where an event's time goes, measured side by side in one run, written into bench/RESULTS.md.

    python -m bench.compare                       # everything (~10 minutes on 2 cores)
    python -m bench.compare --only warm,requests --events 50
    python -m bench.compare --only mints,cold --no-write

Sections (``--only``, comma-separated; default all):

* ``warm``: per-event latency of (a) the cloud samples' way, (b) this project's entry points warm, (c) a bare
  keep-alive Session, on the stub, the stub behind a TLS proxy adding round trips, and the real local Airflow 3
  (:mod:`bench.warm`); also fills ``requests``.
* ``requests``: requests the stub receives per warm event, per client (untimed). Alone, it runs the warm
  workers against the stub and the TLS proxy only (no Airflow).
* ``mints``: token mints per ``--events`` events (default 1,000) in every auth mode (:mod:`bench.mints`).
* ``cold``: each entry point's own import cost, cold import, first event, peak RSS; the deployed Lambda with
  and without byte-compiled files (:mod:`bench.coldstart`; builds the zips).
* ``package``: the zips' sizes (:mod:`bench.package_size`).
* ``sqs``: SQS batches of 10 and 100 records, sequential against concurrent, on the real Airflow
  (:mod:`bench.sqs_batches`).

Sections that need no Airflow run first, so its scheduler's CPU use does not land on their figures; the
Airflow is started once, for the warm ``airflow`` target and the SQS batches, and stopped at the end. Every
process and server started here is stopped on the way out, on errors and Ctrl-C too.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shlex
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import requests

from bench import report
from bench.common import AIRFLOW_DAG, PASSWORD_ENV, REPO_ROOT, STUB_DAG, progress, run_worker, worker_env

RESULTS = REPO_ROOT / "bench" / "RESULTS.md"
DEFAULT_WARM_EVENTS = 200
DEFAULT_MINT_EVENTS = 1000


class Resources:
    """What the sections share, started on first use and stopped by the exit stack."""

    def __init__(self, stack: contextlib.ExitStack, args: argparse.Namespace) -> None:
        self.stack = stack
        self.args = args
        self._stub: Any = None
        self._airflow: Any = None
        self.airflow_version: str | None = None
        self._packages: dict[str, Any] | None = None
        self._build_dir: Path | None = None

    def stub(self) -> Any:
        """The stub and its TLS proxy, in their own process."""
        if self._stub is None:
            from bench.stub import StubProcess

            self._stub = self.stack.enter_context(
                StubProcess(rtt=self.args.rtt, handshake_rtts=self.args.handshake_rtts)
            )
        return self._stub

    def airflow(self) -> Any:
        """The local Airflow 3 (started on first use), with the paused demo DAG parsed."""
        if self._airflow is None:
            from scripts.local_airflow import DEFAULT_DAGS_FOLDER, LocalAirflow

            progress("starting the local Airflow 3 (a minute or two)")
            airflow = LocalAirflow("3", DEFAULT_DAGS_FOLDER)
            self.stack.callback(airflow.stop)
            airflow.start()
            airflow.wait_for_dag(AIRFLOW_DAG)
            self._airflow = airflow
            with contextlib.suppress(requests.RequestException, ValueError):
                answer = requests.get(f"{airflow.url}/api/v2/version", headers=airflow.auth_headers(), timeout=10)
                self.airflow_version = str(answer.json().get("version"))
        return self._airflow

    def packages(self) -> dict[str, Any]:
        """The zips, built once into a temporary directory."""
        if self._packages is None:
            from bench import package_size

            self._build_dir = Path(self.stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-package-")))
            self._packages = package_size.build(self._build_dir)
        return self._packages


def provenance(argv: list[str]) -> dict[str, Any]:
    """The command, the date (UTC) and the machine, for the report."""
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return {
        "command": shlex.join(["python", "-m", "bench.compare", *argv]),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load": load,
    }


def _stub_targets(stub: Any) -> list[dict[str, Any]]:
    from bench.stub import PASSWORD, USERNAME

    common = {"username": USERNAME, "password": PASSWORD, "dag_id": STUB_DAG, "control": stub.url}
    return [{"name": "stub", "url": stub.url, **common}, {"name": "tls", "url": stub.tls_url, **common}]


def _warm_runs(resources: Resources, targets: list[dict[str, Any]], events: int) -> dict[str, Any]:
    """Run the warm worker of each entry point against ``targets``."""
    stub = resources.stub()
    env = worker_env({"REQUESTS_CA_BUNDLE": stub.bundle_file})
    runs = {}
    with tempfile.TemporaryDirectory(prefix="bench-targets-") as directory:
        targets_file = Path(directory) / "targets.json"
        targets_file.write_text(json.dumps(targets))
        targets_file.chmod(0o600)
        for entry in ("gcf", "lambda"):
            runs[entry] = run_worker(
                "bench.warm",
                ["--entry", entry, "--events", str(events), "--block", str(resources.args.block),
                 "--warmup", str(resources.args.warmup), "--targets-file", str(targets_file)],
                env,
            )  # fmt: skip
    return runs


def _merge_runs(into: dict[str, Any], runs: dict[str, Any]) -> None:
    for entry, run in runs.items():
        into.setdefault(entry, {"targets": {}})["targets"].update(run["targets"])


def section_warm(resources: Resources, only: set[str]) -> dict[str, Any]:
    """Sections 1 and 2: the stub targets first, then (for ``warm``) the Airflow target."""
    args = resources.args
    events = args.events or DEFAULT_WARM_EVENTS
    runs: dict[str, Any] = {}
    _merge_runs(runs, _warm_runs(resources, _stub_targets(resources.stub()), events))
    results: dict[str, Any] = {}
    counted = {
        entry: {name: target.pop("requests") for name, target in run["targets"].items() if "requests" in target}
        for entry, run in runs.items()
    }
    if "requests" in only:
        from bench.warm import COUNT_EVENTS

        results["requests"] = {"events": min(events, COUNT_EVENTS), "runs": counted}
    if "warm" in only:
        airflow = resources.airflow()
        target = {
            "name": "airflow",
            "url": airflow.url,
            "username": airflow.username,
            "password": airflow.password,
            "dag_id": AIRFLOW_DAG,
            "control": None,
        }
        _merge_runs(runs, _warm_runs(resources, [target], events))
        results["warm"] = {
            "events": events,
            "warmup": args.warmup,
            "block": args.block,
            "rtt": args.rtt,
            "handshake_rtts": args.handshake_rtts,
            "airflow_version": resources.airflow_version,
            "airflow_dag": AIRFLOW_DAG,
            "target_order": ["stub", "tls", "airflow"],
            "runs": runs,
        }
    return results


def section_mints(resources: Resources) -> dict[str, Any]:
    """Section 3."""
    from bench import mints

    return mints.run(resources.args.events or DEFAULT_MINT_EVENTS, short=not resources.args.no_short_lifetimes)


def section_cold(resources: Resources) -> dict[str, Any]:
    """Section 4 (with the deployed Lambda unless ``--no-deployed``)."""
    from bench import coldstart

    packages = None
    if not resources.args.no_deployed:
        paths = resources.packages()["paths"]
        packages = {"lambda": Path(paths["lambda"]), "layer": Path(paths["layer"])}
    return coldstart.run(resources.stub().url, resources.args.interpreters, packages)


def section_sqs(resources: Resources) -> dict[str, Any]:
    """Section 6: on the real Airflow, and (to tell the client's concurrency from the server's) on the stub
    behind the TLS proxy, whose round trips are sleeps that any number of requests can share."""
    from bench.stub import PASSWORD, USERNAME

    stub = resources.stub()
    airflow = resources.airflow()
    targets = {
        "airflow": (airflow.url, airflow.username, airflow.password, AIRFLOW_DAG),
        "tls": (stub.tls_url, USERNAME, PASSWORD, STUB_DAG),
    }
    results: dict[str, Any] = {"airflow_version": resources.airflow_version, "rtt": resources.args.rtt, "targets": {}}
    for name, (url, username, password, dag_id) in targets.items():
        env = worker_env({PASSWORD_ENV: password, "REQUESTS_CA_BUNDLE": stub.bundle_file})
        results["targets"][name] = run_worker(
            "bench.sqs_batches",
            ["--url", url, "--username", username, "--password-env", PASSWORD_ENV, "--dag", dag_id,
             "--sizes", "10,100", "--repeats", str(resources.args.repeats)],
            env,
        )  # fmt: skip
    return results


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.compare",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument("--only", default=",".join(report.SECTIONS), help=f"sections: {', '.join(report.SECTIONS)}")
    parser.add_argument(
        "--events",
        type=int,
        default=None,
        help=f"events per client and target (warm, default {DEFAULT_WARM_EVENTS}) and per auth mode "
        f"(mints, default {DEFAULT_MINT_EVENTS})",
    )
    parser.add_argument("--interpreters", type=int, default=15, help="fresh interpreters per cold-start figure")
    parser.add_argument("--repeats", type=int, default=3, help="batches per SQS cell")
    parser.add_argument("--rtt", type=float, default=0.020, help="seconds the TLS proxy adds per exchange")
    parser.add_argument("--handshake-rtts", type=int, default=2, help="round trips the proxy adds per new connection")
    parser.add_argument("--block", type=int, default=10, help="events per client turn in the warm section")
    parser.add_argument("--warmup", type=int, default=3, help="untimed events per client before timing")
    parser.add_argument("--no-short-lifetimes", action="store_true", help="mints: skip the 62 s token runs")
    parser.add_argument("--no-deployed", action="store_true", help="cold: skip the deployed Lambda (no zips built)")
    parser.add_argument("--no-write", action="store_true", help="print the markdown, leave RESULTS.md alone")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the markdown file to update")
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(report.SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(report.SECTIONS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the sections asked for, print the markdown, and write it into RESULTS.md."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    only = set(args.only.split(","))
    # A SIGTERM unwinds like Ctrl-C, so the exit stack still stops Airflow and every server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stamp = provenance(argv)
    data: dict[str, Any] = {}
    failed: list[str] = []

    def attempt(name: str, run: Any) -> None:
        started = time.perf_counter()
        try:
            produced = run()
        except Exception:  # noqa: BLE001 - a failed section is reported; the others still run
            failed.append(name)
            progress(f"section {name} failed:\n{traceback.format_exc()}")
            return
        progress(f"section {name} took {time.perf_counter() - started:.0f} s")
        data.update(produced)

    with contextlib.ExitStack() as stack:
        resources = Resources(stack, args)
        # Without Airflow first (its scheduler would add CPU noise), then the sections that need it.
        if "package" in only:
            # The zips' paths are temporary: the report keeps the figures only.
            attempt("package", lambda: {"package": {k: v for k, v in resources.packages().items() if k != "paths"}})
        if "cold" in only:
            attempt("cold", lambda: {"cold": section_cold(resources)})
        if "mints" in only:
            attempt("mints", lambda: {"mints": section_mints(resources)})
        if only & {"warm", "requests"}:
            attempt("warm", lambda: section_warm(resources, only))
        if "sqs" in only:
            attempt("sqs", lambda: {"sqs": section_sqs(resources)})
    sections = {name: {"provenance": stamp, "data": value} for name, value in data.items()}
    if args.no_write:
        print(
            report.render(
                {**report.read_sections(args.results.read_text() if args.results.exists() else ""), **sections}
            )
        )
    else:
        print(report.write(args.results, sections))
        progress(f"updated {args.results}")
    if failed:
        progress(f"failed sections: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
