"""The markdown ``bench.compare`` writes into bench/RESULTS.md, rendered from each section's data.

The block between ``<!-- bench.compare:start -->`` and ``<!-- bench.compare:end -->`` is re-rendered whole
on every run. Each section keeps its data (and the command, date and machine that produced it) in an HTML
comment, so a run of some sections (``--only``) replaces those and keeps the others, and the targets table
always reads the latest figure of each.
"""

from __future__ import annotations

import base64
import json
import math
import re
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

START = "<!-- bench.compare:start -->"
END = "<!-- bench.compare:end -->"
_DATA = re.compile(r"<!-- bench\.compare:data:(?P<name>[a-z]+) (?P<blob>[A-Za-z0-9+/=]+) -->")
#: Sections in report order.
SECTIONS = ("warm", "requests", "mints", "cold", "package", "sqs")
CLIENT_NAMES = {
    "a": "a: sample (new token + new connection per event)",
    "b": "b: this project, warm",
    "c": "c: floor (keep-alive Session, fixed token)",
}
ENTRY_NAMES = {"gcf": "`gcf_trigger.main.trigger_dag`", "lambda": "`lambda_trigger.handler.handler`"}


def _encode(value: Any) -> str:
    # base64 of zlib'd JSON: an HTML comment must never contain "--", which JSON text might.
    return base64.b64encode(zlib.compress(json.dumps(value, sort_keys=True).encode(), 9)).decode("ascii")


def _decode(blob: str) -> Any:
    return json.loads(zlib.decompress(base64.b64decode(blob)))


def read_sections(text: str) -> dict[str, Any]:
    """The section data stored in an existing block (empty if there is none)."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        return {}
    return {match["name"]: _decode(match["blob"]) for match in _DATA.finditer(text[start:end])}


def write(path: Path, new: Mapping[str, Any]) -> str:
    """Merge ``new`` section data over what ``path`` holds, re-render the block, write it; return the block."""
    text = path.read_text() if path.exists() else ""
    sections = {**read_sections(text), **new}
    block = render(sections)
    start, end = text.find(START), text.find(END)
    if start >= 0 and end > start:
        text = text[:start] + block + text[end + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)
    return block


# -- formatting ------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def _x(value: float) -> str:
    return f"{value:.2f}x"


def _yes(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "not run"}[met]


def _provenance(section: Mapping[str, Any]) -> str:
    p = section["provenance"]
    return (
        f"_`{p['command']}`, {p['date']}; {p['machine']}, {p['cores']} cores, Python {p['python']}, "
        f"load average {p['load']} at the start._"
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} MiB"


def _kib(size: int) -> str:
    return f"{size / 1024:,.1f} KiB" if size < 1024 * 1024 else f"{size / 1024 / 1024:,.2f} MiB"


# -- sections --------------------------------------------------------------------------------------


def _ratio(run: Mapping[str, Any], target: str, over: str) -> float:
    clients = run["targets"][target]["clients"]
    return float(clients["b"]["p50_ms"] / clients[over]["p50_ms"])


def render_warm(section: Mapping[str, Any]) -> list[str]:
    data = section["data"]
    lines = [
        "### 1. Warm per-event cost",
        "",
        _provenance(section),
        "",
        f"{data['events']} timed events per client and target after {data['warmup']} warm-up events, the three clients "
        f"taking turns in blocks of {data['block']} (order rotating), in one worker process per entry point; a and c "
        "therefore ran twice, once beside each b. Latency is one event's wall time in the client "
        "(`time.perf_counter`); events/s is sequential (1 / mean). Ratios are of medians: b/a below 1 means the "
        "project is faster than the sample, b/c is its overhead over the bare floor.",
        "",
        "Targets: **stub**, the loopback stub (`bench/stub.py`, threaded, one `sendall` per response, in its own "
        f"process); **tls**, the stub behind a loopback TLS proxy adding {data['rtt'] * 1000:.0f} ms per "
        f"request/response exchange and {data['handshake_rtts']} round trips per new connection (TCP's and TLS 1.3's "
        "handshakes), clients verifying its certificate through `REQUESTS_CA_BUNDLE` (certifi's bundle plus the "
        f"proxy's CA); **airflow**, the real local Airflow {data.get('airflow_version') or '3'} (`LocalAirflow('3')`, "
        "its database whatever `scripts/local_airflow.py` sets up; DAG "
        f"`{data.get('airflow_dag', 'dag_trigger_demo_paused')}`, paused so no task competes).",
        "",
        "| target | entry point of b | client | p50 | p99 | events/s | b/a | b/c |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for target in data["target_order"]:
        for entry, run in data["runs"].items():
            if target not in run["targets"]:
                continue
            clients = run["targets"][target]["clients"]
            for label in ("a", "b", "c"):
                stats = clients[label]
                ratios = ["", ""]
                if label == "b":
                    ratios = [_x(_ratio(run, target, "a")), _x(_ratio(run, target, "c"))]
                lines.append(
                    f"| {target} | {ENTRY_NAMES[entry]} | {CLIENT_NAMES[label]} | {_ms(stats['p50_ms'])} | "
                    f"{_ms(stats['p99_ms'])} | {stats['events_per_s']:.0f} | {ratios[0]} | {ratios[1]} |"
                )
    lines += [
        "",
        f"p99 of {data['events']} events is about their {max(1, round(data['events'] / 100))} slowest: noise-prone.",
    ]
    return lines


def render_requests(section: Mapping[str, Any]) -> list[str]:
    data = section["data"]
    lines = [
        "### 2. Network requests per warm event",
        "",
        _provenance(section),
        "",
        f"Not timed: after the timed events, each client alone sent {data['events']} more warm events while the stub "
        "counted every request it received (by method and path) and the TLS proxy every new connection. "
        "Requests and connections per event:",
        "",
        "| target | entry point of b | client | requests/event | by path (per event) | new TLS connections/event |",
        "|---|---|---|---|---|---|",
    ]
    for entry, run in data["runs"].items():
        for target, counted in run.items():
            for label in ("a", "b", "c"):
                entry_counts = counted[label]
                paths = ", ".join(f"`{path}` {count:g}" for path, count in entry_counts["by_path"].items())
                connections = entry_counts.get("connections_per_event")
                per_event = entry_counts["requests_per_event"]
                lines.append(
                    f"| {target} | {ENTRY_NAMES[entry]} | {CLIENT_NAMES[label]} | {per_event:.3f} | "
                    f"{paths} | {'-' if connections is None else f'{connections:.3f}'} |"
                )
    lines += [
        "",
        "The project's client re-reads a DAG's paused flag after `DAG_INFO_TTL` (30 s), so a long-running warm "
        "instance adds one `GET /dags/{id}` per DAG per 30 s on top of these (none fell inside this short pass "
        "unless listed).",
    ]
    return lines


def render_mints(section: Mapping[str, Any]) -> list[str]:
    data = section["data"]
    lines = [
        "### 3. Token mints",
        "",
        _provenance(section),
        "",
        f"{data['events']} fresh events per auth mode through the real entry point (the Cloud Function's for "
        "the self-managed and Google modes and for MWAA from Google, the Lambda's for MWAA and for Google from "
        "AWS), each mode in a fresh worker process, against "
        "the stub directly or through `tests/fake_google.py` (metadata server, IAM signJwt: the real google-auth "
        "talks to it) and `tests/fake_mwaa.py` (SigV4 checked; its CLI endpoint answers with canned Airflow CLI "
        "output here) and moto's STS. *Server mints* are counted by the server that mints; *client refreshes* "
        'by wrapping each credential provider\'s `refresh()` in the worker. Rows marked "tokens live 62 s" ran '
        "at least 8 s with tokens that the 60 s refresh margin leaves good for about 2 s: mints must follow the "
        "clock (one per lifetime), not the events. *Expected* is the range that is still one per lifetime for "
        "the run's length.",
        "",
        "| mode | what is minted | events | run | lifetime (replaced before expiry) | server mints | client refreshes "
        "| expected | met? |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in data["modes"]:
        lifetime = "-" if row["lifetime_s"] is None else f"{row['lifetime_s']:.0f} s ({row['margin_s']:.0f} s early)"
        server = "-" if row["server_mints"] is None else str(row["server_mints"])
        refreshes = ", ".join(f"{name} {count}" for name, count in sorted(row["client_refreshes"].items())) or "0"
        low, high = row["expected"]
        expected = str(low) if low == high else f"{low}-{high}"
        lines.append(
            f"| {row['mode']} | {row['what']} | {row['events']} | {row['elapsed_s']:.1f} s | {lifetime} | {server} | "
            f"{refreshes} | {expected} | {_yes(row['met'])} |"
        )
    lines += [
        "",
        "Lifetimes: the stub's JWT lives 3600 s here (Airflow 3's default `jwt_expiration_time` is 86400 s); the fake "
        "metadata server's access and ID tokens 3600 s (as Google's); the IAP JWT is the project's own one hour; "
        "MWAA's CLI token 60 s (replaced 15 s early); assumed-role credentials `assume_role_duration` (3600 s), "
        "refreshed by botocore 15 min early. Per mode, requests to the stub per event:",
        "",
        ", ".join(f"{row['mode']} {row['stub_requests_per_event']:.3f}" for row in data["modes"]) + ".",
    ]
    crossing = [row for row in data["modes"] if "from AWS" in row["mode"] or "from Google" in row["mode"]]
    if crossing:
        lines += [
            "",
            "Across clouds, every call the fake Google answered in the run (`calls`: Google STS token exchanges, "
            "IAM Credentials) and what it minted, besides the server mints above: "
            + "; ".join(
                f"{row['mode']}: "
                + ", ".join(f"{name} {count}" for name, count in sorted(row.get("google_calls", {}).items()))
                + (" / minted " if row.get("google_calls") else "minted ")
                + ", ".join(f"{kind} {count}" for kind, count in sorted(row.get("google_mints", {}).items()))
                for row in crossing
            )
            + ". From AWS the AWS credentials come only from a container credentials endpoint "
            "(`tests/fake_aws_container.py`), as on ECS and MWAA.",
        ]
    return lines


def render_cold(section: Mapping[str, Any]) -> list[str]:
    data = section["data"]
    entries = data["entries"]
    names = list(entries)
    header = "| | " + " | ".join(f"`{entries[name]['module']}`" for name in names) + " |"
    lines = [
        "### 4. Cold start",
        "",
        _provenance(section),
        "",
        "Each figure is the median of fresh interpreters (count in the table), the entry point's config pointing at "
        "the stub, byte-code cached for every module (in a `PYTHONPYCACHEPREFIX` of the benchmark's own) unless "
        "the row says otherwise. *Own import cost*: every non-project module the entry point loads (found once "
        "with `-X importtime`, imported by full name) is imported first, then `import M` is timed; the row "
        "below it does the same with no byte-code for the project's modules (`PYTHONDONTWRITEBYTECODE`, as a "
        "zip without .pyc on a read-only file system). *Cold import*: "
        "`import M` with nothing preloaded. *First event*: that import plus one event (config read, JWT minted, "
        "API version probed, DAG read, run created: four requests to the stub); *from spawn* adds the "
        "interpreter's start-up, timed from the parent. *Peak RSS*: `VmHWM` of the child's own process image; "
        "`ru_maxrss` (in brackets) is what was asked for, but on Linux it keeps the parent's RSS at fork across "
        "`exec`, so every child of this ~80 MiB orchestrator reports about the orchestrator's figure.",
        "",
        header,
        "|---" * (len(names) + 1) + "|",
    ]

    def row(title: str, render: Callable[[Mapping[str, Any]], str]) -> None:
        lines.append(f"| {title} | " + " | ".join(render(entries[name]) for name in names) + " |")

    row("interpreters", lambda e: str(e["interpreters"]))
    row("own import cost (median; fastest)", lambda e: f"**{_ms(e['own_import_ms'])}**; {_ms(e['own_import_ms_min'])}")
    row(
        "of which generating dataclass methods (classes)",
        lambda e: (
            f"{_ms(e['own_import_dataclass_ms'])} ({e['own_import_dataclasses']})"
            if "own_import_dataclass_ms" in e
            else "-"
        ),
    )
    row("own import cost, project compiled at import (no .pyc)", lambda e: _ms(e.get("own_import_compiling_ms")))
    row(
        "non-project modules preloaded (third-party)",
        lambda e: f"{e['preloaded_modules']} ({e['third_party_modules']})",
    )
    row("non-project modules still loaded by the timed import", lambda e: ", ".join(e["late_imports"]) or "none")
    row("total cold import", lambda e: _ms(e["cold_import_ms"]))
    row("import + first event", lambda e: _ms(e["first_event_ms"]))
    row("first event from spawn", lambda e: _ms(e["first_event_from_spawn_ms"]))
    row(
        "peak RSS after the first event: VmHWM (ru_maxrss)",
        lambda e: f"{_mib(e.get('vmhwm_mib'))} ({e['maxrss_mib']:.1f} MiB)",
    )
    row(
        "the other cloud's SDK loaded (import; after the event)",
        lambda e: f"{', '.join(e['foreign_after_import']) or 'none'}; {', '.join(e['foreign_after_event']) or 'none'}",
    )
    row(
        "`-X importtime` self time: project modules / all",
        lambda e: f"{_ms(e['importtime_project_total_ms'])} / {_ms(e['importtime_total_ms'])}",
    )
    lines += [
        "",
        "Project modules with the most self time under `-X importtime` (one run, inflated by its own bookkeeping):",
        "",
    ]
    for name in names:
        top = ", ".join(f"`{m['module']}` {m['self_ms']:.1f} ms" for m in entries[name]["top_project_modules"])
        lines.append(f"* `{entries[name]['module']}`: {top}")
    lines += ["", "Where the rest of the cold import goes: self time summed per top-level package (same run):", ""]
    for name in names:
        top = ", ".join(f"`{p['package']}` {p['self_ms']:.0f} ms" for p in entries[name].get("top_packages", []))
        lines.append(f"* `{entries[name]['module']}`: {top}")
    lines += [
        "",
        "Neither entry point may load the other cloud's SDK: boto3/botocore for the Cloud Function, google.auth "
        "for the Lambda (botocore there is the Lambda runtime's own, loaded by Powertools' Tracer).",
    ]
    deployed = data.get("deployed_lambda")
    if deployed:
        lines += [
            "",
            "The Lambda as deployed (code zip unpacked as the task root, the layer as `/opt/python`, this venv's "
            "boto3 and botocore standing in for the runtime's, `PYTHONDONTWRITEBYTECODE=1` as on Lambda's read-only "
            f"file system), median of {deployed['interpreters']} interpreters:",
            "",
            "| | cold import | import + first event | from spawn | peak RSS (VmHWM) |",
            "|---|---|---|---|---|",
        ]
        for variant in ("as packaged (no .pyc)", "byte-compiled"):
            v = deployed[variant]
            lines.append(
                f"| {variant} | {_ms(v['cold_import_ms'])} | {_ms(v['first_event_ms'])} | "
                f"{_ms(v['first_event_from_spawn_ms'])} | {_mib(v.get('vmhwm_mib'))} |"
            )
    return lines


def render_package(section: Mapping[str, Any]) -> list[str]:
    data = section["data"]
    largest = ", ".join(f"{item['package']} {_kib(item['compressed_bytes'])}" for item in data["layer_largest"])
    return [
        "### 5. Package size",
        "",
        _provenance(section),
        "",
        "`scripts.package.build_all(out, host=True)` (what `make package` builds; the layer for this machine, "
        "which differs from the arm64 build only in compiled wheels):",
        "",
        "| zip | size | unpacked | files |",
        "|---|---|---|---|",
        f"| Lambda code (`dag-trigger-lambda.zip`) | {_kib(data['lambda_bytes'])} ({data['lambda_bytes']:,} bytes) "
        f"| {_kib(data.get('lambda_unpacked_bytes', 0))} | {data['lambda_files']} |",
        f"| Lambda layer (`dag-trigger-lambda-layer.zip`) | {_kib(data['layer_bytes'])} "
        f"| {_kib(data.get('layer_unpacked_bytes', 0))} | {data['layer_files']} |",
        f"| Cloud Function source (`dag-trigger-function.zip`) | {_kib(data['function_bytes'])} "
        f"| {_kib(data.get('function_unpacked_bytes', 0))} | {data['function_files']} |",
        "",
        f"The code zip holds {', '.join(f'`{t}`' for t in data['lambda_top_level'])}; runtime-provided packages "
        f"(boto3, botocore, ...) in it: {', '.join(data['runtime_packages_in_lambda']) or 'none'}; in the layer: "
        f"{', '.join(data['runtime_packages_in_layer']) or 'none'}. Largest in the layer (compressed): {largest}.",
    ]


def render_sqs(section: Mapping[str, Any]) -> list[str]:
    data = section["data"]
    airflow = data["targets"]["airflow"]
    lines = [
        "### 6. SQS batches",
        "",
        _provenance(section),
        "",
        "`lambda_trigger.handler.sqs_handler` with S3-in-SQS records (a fresh key each); whole-invocation wall "
        f"time, median of {airflow['repeats']} batches per cell, sequential (`DAG_TRIGGER_SQS_CONCURRENCY=1`) and "
        f"concurrent (the default, {airflow['default_concurrency']}), alternating which goes first. **airflow**: "
        f"the real local Airflow {data.get('airflow_version') or '3'} (`dag_trigger_demo_paused`), the target that "
        f"counts. **tls**: the stub behind the TLS proxy ({data['rtt'] * 1000:.0f} ms per exchange), whose waits "
        "are sleeps any number of requests can share: what the client's own concurrency gives when the server "
        "is not the limit.",
        "",
        "| target | records | sequential | concurrent | speedup | per record, sequential | client CPU per record "
        "(seq / conc) | machine busy (seq / conc) | failed (seq / conc) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for target, result in data["targets"].items():
        for size, row in result["sizes"].items():
            sequential, concurrent = row["sequential_s"] * 1000, row["concurrent_s"] * 1000
            failures = row["failures"]
            cpu = row.get("client_cpu_ms_per_record", {})
            busy = row.get("machine_busy", {})
            lines.append(
                f"| {target} | {size} | {sequential:.0f} ms | {concurrent:.0f} ms | {_x(row['speedup'])} | "
                f"{sequential / int(size):.1f} ms | {_ms(cpu.get('sequential'))} / {_ms(cpu.get('concurrent'))} | "
                f"{_pct(busy.get('sequential'))} / {_pct(busy.get('concurrent'))} | "
                f"{failures['sequential']} / {failures['concurrent']} |"
            )
    lines += [
        "",
        "*Client CPU per record* is the worker process's CPU time over the batch; *machine busy* the share of all "
        "cores in use during the batch, whoever used them (`/proc/stat`): near 100% the batch was short of CPU, "
        "not of concurrency. The Airflow's database is whatever `scripts/local_airflow.py` gives it.",
    ]
    return lines


RENDERERS: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "warm": render_warm,
    "requests": render_requests,
    "mints": render_mints,
    "cold": render_cold,
    "package": render_package,
    "sqs": render_sqs,
}


# -- targets -----------------------------------------------------------------------------------------


def targets(sections: Mapping[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for each of the project's targets, from the latest data of each section."""
    rows: list[tuple[str, str, bool | None]] = []
    requests = sections.get("requests", {}).get("data")
    if requests:
        per = {
            entry: run["stub"]["b"]["requests_per_event"] for entry, run in requests["runs"].items() if "stub" in run
        }
        rows.append(
            (
                "1 network request per warm event",
                ", ".join(f"{entry}: {value:.3f}" for entry, value in per.items()),
                all(value <= 1.0 for value in per.values()),
            )
        )
    else:
        rows.append(("1 network request per warm event", "-", None))
    warm = sections.get("warm", {}).get("data")
    floor_ratio = {e: _ratio(r, "stub", "c") for e, r in warm["runs"].items() if "stub" in r["targets"]} if warm else {}
    rows.append(
        (
            "b within 1.15x of c on the stub (p50)",
            ", ".join(f"{e}: {v:.2f}x" for e, v in floor_ratio.items()) or "-",
            all(v <= 1.15 for v in floor_ratio.values()) if floor_ratio else None,
        )
    )
    speedup = {e: 1 / _ratio(r, "tls", "a") for e, r in warm["runs"].items() if "tls" in r["targets"]} if warm else {}
    rtt = f" ({warm['rtt'] * 1000:.0f} ms)" if warm else ""
    rows.append(
        (
            f"b at least 3x faster than a behind the TLS proxy{rtt} (p50)",
            ", ".join(f"{e}: {v:.1f}x" for e, v in speedup.items()) or "-",
            all(v >= 3 for v in speedup.values()) if speedup else None,
        )
    )
    mints = sections.get("mints", {}).get("data")
    if mints:
        missed = [row["mode"] for row in mints["modes"] if not row["met"]]
        rows.append(
            (
                "one token mint per lifetime in every mode",
                f"{len(mints['modes']) - len(missed)} of {len(mints['modes'])} runs"
                + (f"; missed: {', '.join(missed)}" if missed else ""),
                not missed,
            )
        )
    else:
        rows.append(("one token mint per lifetime in every mode", "-", None))
    cold = sections.get("cold", {}).get("data")
    if cold:
        own = {e: v["own_import_ms"] for e, v in cold["entries"].items()}
        rows.append(
            (
                "own import cost < 10 ms per entry point (median)",
                ", ".join(f"{e}: {v:.1f} ms" for e, v in own.items()),
                all(v < 10 for v in own.values()),
            )
        )
    else:
        rows.append(("own import cost < 10 ms per entry point (median)", "-", None))
    package = sections.get("package", {}).get("data")
    if package:
        inside = ", ".join(package["runtime_packages_in_lambda"]) or "none"
        rows.append(
            (
                "Lambda zip < 1 MB without boto3",
                f"{package['lambda_bytes']:,} bytes; runtime packages inside: {inside}",
                package["lambda_bytes"] < 1_000_000 and not package["runtime_packages_in_lambda"],
            )
        )
    else:
        rows.append(("Lambda zip < 1 MB without boto3", "-", None))
    sqs = sections.get("sqs", {}).get("data")
    hundred = sqs["targets"]["airflow"]["sizes"].get("100") if sqs else None
    rows.append(
        (
            "SQS batch of 100 at least 4x faster concurrent than sequential (real Airflow)",
            f"{hundred['speedup']:.2f}x ({hundred['sequential_s']:.2f} s vs {hundred['concurrent_s']:.2f} s)"
            if hundred
            else "-",
            hundred["speedup"] >= 4 if hundred else None,
        )
    )
    return rows


def misses(sections: Mapping[str, Any]) -> list[str]:
    """For each missed target, the figures from the same run that say where the time went."""
    notes: list[str] = []
    warm = sections.get("warm", {}).get("data")
    if warm:
        for entry, run in warm["runs"].items():
            stub, tls = run["targets"].get("stub"), run["targets"].get("tls")
            if stub and _ratio(run, "stub", "c") > 1.15:
                gap = stub["clients"]["b"]["p50_ms"] - stub["clients"]["c"]["p50_ms"]
                tls_ratio = f"; behind the TLS proxy the same b is {_ratio(run, 'tls', 'c'):.2f}x c" if tls else ""
                notes.append(
                    f"b/c on the stub ({entry}): b spends {gap:.2f} ms more than c per event at p50 on a "
                    f"{stub['clients']['c']['p50_ms']:.2f} ms floor: in-process work (parse, route, run id, conf, "
                    f"the JSON log line{', Powertools decorators and metrics flush' if entry == 'lambda' else ''}), "
                    f"not requests{tls_ratio}."
                )
    cold = sections.get("cold", {}).get("data")
    if cold:
        for entry in cold["entries"].values():
            if entry["own_import_ms"] >= 10:
                top = ", ".join(f"`{m['module']}`" for m in entry["top_project_modules"][:3])
                late = entry["late_imports"]
                what = (
                    "none was left to load, so this is the project's own module bodies"
                    if not late
                    else f"yet {len(late)} still loaded during it ({', '.join(late[:5])}), counted here too"
                )
                generated = ""
                if "own_import_dataclass_ms" in entry:
                    generated = (
                        f" Of it, {entry['own_import_dataclass_ms']:.1f} ms is the standard library generating the "
                        f"methods of {entry['own_import_dataclasses']} dataclasses (`dataclasses` compiles each "
                        "class's `__init__`, `__eq__`, `__repr__`, ... with `exec`): under the target only without "
                        "the typed boundary types the project is built on, or with fewer of them at import."
                    )
                notes.append(
                    f"own import of `{entry['module']}`: {entry['own_import_ms']:.1f} ms with every non-project module "
                    f"preloaded; {what}.{generated} The largest under `-X importtime`: {top}. The whole cold import is "
                    f"{entry['cold_import_ms']:.0f} ms (the packages' share is in section 4)."
                )
    sqs = sections.get("sqs", {}).get("data")
    if sqs:
        hundred = sqs["targets"]["airflow"]["sizes"].get("100")
        tls = sqs["targets"].get("tls", {}).get("sizes", {}).get("100")
        if hundred and hundred["speedup"] < 4:
            busy = hundred.get("machine_busy", {}).get("concurrent")
            note = f"SQS 100 on the real Airflow: {hundred['speedup']:.2f}x"
            if busy is not None:
                note += f", the machine {busy * 100:.0f}% busy during the concurrent batches"
            if tls:
                note += f"; the same handler gets {tls['speedup']:.2f}x from the stub behind the TLS proxy"
                if tls["speedup"] >= 4:
                    note += ", so the client's threads do overlap: the local Airflow (its API server and database "
                    note += "on the same cores) is what does not absorb them"
            notes.append(note + ".")
    return notes


def render(sections: Mapping[str, Any]) -> str:
    """The whole block, markers included."""
    lines = [
        START,
        "## Where an event's time goes: warm path, requests, tokens, cold start, package, SQS batches",
        "",
        "Written by `python -m bench.compare` (bench/compare.py); each part names the run that produced it, and a run "
        "of some parts (`--only`) replaces only those. Noisy shared machine: read orders of magnitude and ratios "
        "measured side by side, not absolute milliseconds.",
        "",
        "### Targets",
        "",
        "| target | measured | met? |",
        "|---|---|---|",
    ]
    # Figures stored by an older version of this module may lack a key: say so rather than fail the report.
    stale = (KeyError, TypeError, IndexError, ZeroDivisionError)
    try:
        rows = targets(sections)
    except stale:
        rows = [("(stored figures of another bench.compare version: rerun every section)", "-", None)]
    lines += [f"| {name} | {measured} | {_yes(met)} |" for name, measured, met in rows]
    try:
        notes = misses(sections)
    except stale:
        notes = []
    if notes:
        lines += [
            "",
            "Misses, with the figures of the same run that explain them:",
            "",
            *(f"* {note}" for note in notes),
        ]
    for name in SECTIONS:
        if name not in sections:
            continue
        try:
            rendered = RENDERERS[name](sections[name])
        except stale:
            rendered = [
                f"### {name}",
                "",
                f"_Stored figures predate this version of bench.compare: rerun `--only {name}`._",
            ]
        lines += ["", *rendered, "", f"<!-- bench.compare:data:{name} {_encode(sections[name])} -->"]
    lines.append(END)
    return "\n".join(lines)
