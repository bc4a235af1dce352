"""Token mints per 1,000 events in every auth mode, counted by the servers that mint them.

The orchestrator (:func:`run`) hosts the minting services and one worker process per mode sends the events
through the real entry point (``python -m bench.mints --mode M ...``), so google-auth is first imported
in a process whose ``GCE_METADATA_HOST`` already points at the fake (it reads the variable at import):

* ``jwt``: Airflow 3's ``POST /auth/token``, counted by the stub (:mod:`bench.stub`);
* ``composer`` (access token), ``iap`` (ID token), ``iap_jwt`` (IAM Credentials ``signJwt``): counted by
  ``tests.fake_google.FakeGoogle``, the metadata server and IAM the real google-auth talks to;
* MWAA through ``InvokeRestApi``: SigV4-signed with the Lambda's keys, no token; with ``assume_role_arn``, STS
  ``AssumeRole`` calls, counted by moto's STS; ``cli_token``: ``CreateCliToken`` calls, counted by
  ``tests.fake_mwaa.FakeMwaa`` (its CLI endpoint answers from canned output here, not a real Airflow CLI);
* ``basic``, ``token_file``, ``none``: nothing is minted; the worker counts the provider's refreshes;
* across clouds: from the Lambda with Google credentials through workload identity federation (its AWS
  credentials from ``tests.fake_aws_container`` only; Google STS exchanges and IAM Credentials
  ``generateAccessToken`` counted by FakeGoogle), and from the Cloud Function to MWAA with a role assumed with
  its Google ID token (``AssumeRoleWithWebIdentity`` counted by moto's STS, the ID tokens by FakeGoogle).

Each worker also counts, client-side, every ``refresh()`` of the project's credential providers.
With ``short`` lifetimes (jwt, composer, iap: the server picks the lifetime) tokens live 62 s, so after the
60 s refresh margin they are good for about 2 s: mints should then follow the clock, not the events.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    PASSWORD_ENV,
    STUB_DAG,
    LambdaContext,
    gcs_cloudevent_parts,
    object_key,
    progress,
    run_worker,
    s3_event,
    worker_env,
    write_config,
)

REGION = "us-east-1"
ACCOUNT = "123456789012"
ACCESS_KEY = "AKIDBENCHSTATIC00001"
SECRET_KEY = "bench-secret-key"
ENVIRONMENT = "bench"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/bench-trigger"
WEB_IDENTITY_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/bench-trigger-from-google"
WIF_PROVIDER = "projects/123456789012/locations/global/workloadIdentityPools/bench/providers/aws"
WIF_SERVICE_ACCOUNT = "bench-federated@bench-project.iam.gserviceaccount.com"
CONTAINER_ROLE = "bench-task"
SHORT_LIFETIME = 62.0
#: A short-lifetime run lasts at least this long (more events if need be), so several lifetimes pass.
SHORT_MIN_SECONDS = 8.0
#: The project's refresh margins (shared.credentials.EXPIRY_MARGIN, shared.mwaa_cli.CLI_TOKEN_MARGIN), and
#: botocore's advisory refresh for assumed-role credentials.
MARGIN = 60.0
CLI_MARGIN = 15.0
BOTOCORE_ADVISORY = 15 * 60.0


@dataclass(frozen=True)
class Mode:
    """One auth mode: its entry point, its ``[airflow]`` table, and how long what it mints lives."""

    name: str
    entry: str
    airflow: Mapping[str, Any]
    #: Seconds a minted token lives, or None when nothing expires.
    lifetime: float | None
    #: Seconds before expiry that the client replaces it.
    margin: float
    what: str
    #: Whether the lifetime is the server's to choose (so the short-lifetime variant can run).
    server_lifetime: bool = False
    google: bool = False
    aws: bool = False
    #: AWS credentials only from the container credentials endpoint (none in the environment).
    container: bool = False
    #: No AWS credentials at all (a Cloud Run function).
    keyless: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


def modes(stub_url: str, token_file: Path) -> list[Mode]:
    """Every auth mode the project has, pointed at the stub (directly, or through the fakes)."""
    http = {"url": stub_url}
    mwaa = {"mwaa_environment": ENVIRONMENT, "aws_region": REGION, "rate_limit": 1_000_000}
    return [
        Mode("none", "gcf", {**http, "auth": "none"}, None, 0, "nothing"),
        Mode(
            "basic",
            "gcf",
            {**http, "auth": "basic", "username": "bench", "password_env": PASSWORD_ENV},
            None,
            0,
            "the Basic header, from the password read once",
        ),
        Mode(
            "token_file",
            "gcf",
            {**http, "auth": "token_file", "token_file": str(token_file)},
            None,
            0,
            "a read of the token file (again only when it changes)",
        ),
        Mode(
            "jwt",
            "gcf",
            {**http, "auth": "jwt", "username": "bench", "password_env": PASSWORD_ENV},
            3600,
            MARGIN,
            "Airflow JWT (POST /auth/token)",
            server_lifetime=True,
        ),
        Mode(
            "composer",
            "gcf",
            {**http, "auth": "composer"},
            3600,
            MARGIN,
            "Google access token (metadata server)",
            server_lifetime=True,
            google=True,
        ),
        Mode(
            "iap",
            "gcf",
            {**http, "auth": "iap", "iap_client_id": "bench-iap.apps.googleusercontent.com"},
            3600,
            MARGIN,
            "Google ID token (metadata server identity)",
            server_lifetime=True,
            google=True,
        ),
        Mode(
            "iap_jwt",
            "gcf",
            {**http, "auth": "iap_jwt"},
            3600,
            MARGIN,
            "service-account JWT (IAM Credentials signJwt)",
            google=True,
        ),
        Mode(
            "mwaa invoke_rest_api",
            "lambda",
            mwaa,
            None,
            0,
            "nothing: each call is SigV4-signed with the role's keys",
            aws=True,
        ),
        Mode(
            "mwaa invoke_rest_api, assumed role",
            "lambda",
            {**mwaa, "assume_role_arn": ROLE_ARN},
            3600,
            BOTOCORE_ADVISORY,
            "STS AssumeRole credentials",
            aws=True,
        ),
        Mode(
            "mwaa cli_token",
            "lambda",
            {**mwaa, "mwaa_transport": "cli_token"},
            60,
            CLI_MARGIN,
            "MWAA CLI token (CreateCliToken)",
            aws=True,
        ),
        Mode(
            "composer from AWS, workload identity federation",
            "lambda",
            {
                **http,
                "auth": "composer",
                "workload_identity_provider": WIF_PROVIDER,
                "service_account": WIF_SERVICE_ACCOUNT,
                "aws_region": REGION,
            },
            3600,
            MARGIN,
            "service account access token (Google STS exchange + IAM Credentials generateAccessToken)",
            google=True,
            container=True,
        ),
        Mode(
            "mwaa from Google, AssumeRoleWithWebIdentity",
            "gcf",
            {**mwaa, "web_identity_role_arn": WEB_IDENTITY_ROLE_ARN},
            3600,
            BOTOCORE_ADVISORY,
            "STS AssumeRoleWithWebIdentity credentials (for a Google ID token)",
            google=True,
            aws=True,
            keyless=True,
        ),
    ]


class StubAirflow:
    """What ``FakeMwaa.add_environment`` needs of a ``LocalAirflow``, in front of the stub.

    ``run_cli`` answers the three commands the CLI-token path sends with the output Airflow 3's CLI prints,
    without running Airflow: the benchmark counts CreateCliToken calls, not CLI start-up time.
    """

    major = "3"
    api_prefix = "/api/v2"

    def __init__(self, url: str) -> None:
        self.url = url
        self.commands: Counter[str] = Counter()

    def auth_headers(self) -> dict[str, str]:
        """The stub runs with ``require_token`` off for these modes."""
        return {}

    def run_cli(self, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        """Canned output of ``version``, ``dags list`` and ``dags trigger``."""
        command = " ".join(args[:2])
        self.commands[command] += 1
        if args == ["version"]:
            out: Any = "3.0.6"
        elif command == "dags list":
            out = [{"dag_id": STUB_DAG, "is_paused": "False"}]
        elif command == "dags trigger":
            run_id = args[args.index("-r") + 1]
            out = [{"dag_id": args[-1], "dag_run_id": run_id, "state": "queued", "run_type": "manual"}]
        else:
            return subprocess.CompletedProcess(args, 1, b"", f"not canned: {shlex.join(args)}".encode())
        text = out if isinstance(out, str) else json.dumps(out)
        return subprocess.CompletedProcess(args, 0, (text + "\n").encode(), b"")


def one_write_mwaa() -> Any:
    """``tests.fake_mwaa.FakeMwaa`` answering each response in one write.

    ``tests.loopback.Handler.send`` writes the headers and the body separately; on a keep-alive connection (botocore
    keeps one) the body then waits for the client's delayed ACK, about 40 ms per call, which would make the MWAA
    modes forty times slower here without changing what is counted.
    """
    from bench.servers import http_response
    from tests.fake_mwaa import FakeMwaa, _MwaaHandler
    from tests.loopback import HOP_BY_HOP

    class OneWriteMwaaHandler(_MwaaHandler):
        def send(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
            kept = {name: value for name, value in headers if name.lower() not in HOP_BY_HOP}
            self.wfile.write(http_response(status, payload, kept))

    class OneWriteFakeMwaa(FakeMwaa):
        handler = OneWriteMwaaHandler

    return OneWriteFakeMwaa


def _expected(mode: Mode, elapsed: float, lifetime: float | None) -> tuple[int, int]:
    """The fewest and most mints that are still one per lifetime, for a run of ``elapsed`` seconds."""
    if mode.name in ("none", "mwaa invoke_rest_api"):
        return 0, 0
    if lifetime is None:
        return 1, 1
    good_for = lifetime - mode.margin
    # A token minted at t is replaced from t + good_for on; the exp claim's whole seconds blur that by 1 s.
    return 1 + math.floor(elapsed / (good_for + 1)), 1 + math.floor(elapsed / max(good_for - 1, 0.5))


def run(events: int, *, short: bool = True) -> dict[str, Any]:
    """Start the services, run every mode's worker, and return what the servers counted."""
    import logging

    from moto.server import ThreadedMotoServer

    from bench.stub import StubProcess
    from tests.fake_aws_container import FakeContainerCredentials
    from tests.fake_google import FakeGoogle

    results: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-mints-")))
        stub = stack.enter_context(StubProcess())
        google = FakeGoogle()
        google.start()
        stack.callback(google.stop)
        mwaa = one_write_mwaa()(region=REGION, account=ACCOUNT)
        mwaa.start()
        stack.callback(mwaa.stop)
        # moto's werkzeug logs every request to stderr otherwise.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        stack.callback(moto.stop)
        moto_host, moto_port = moto.get_host_and_port()
        moto_url = f"http://{moto_host}:{moto_port}"
        mwaa.add_credentials(ACCESS_KEY, SECRET_KEY)
        mwaa.trust_moto(moto_url)
        airflow = StubAirflow(stub.url)
        mwaa.add_environment(ENVIRONMENT, airflow, upstream=stub.url)
        container = stack.enter_context(FakeContainerCredentials(role=CONTAINER_ROLE))
        provider = google.add_aws_provider(f"//iam.googleapis.com/{WIF_PROVIDER}", allowed_roles=[CONTAINER_ROLE])
        google.trust_aws_credentials(*container.key)
        google.allow_impersonation(google.aws_role_principal_set(provider, container.session_arn), WIF_SERVICE_ACCOUNT)
        token_file = directory / "token"
        token_file.write_text("bench-static-token\n")

        def assumed_roles() -> int:
            import requests

            data = requests.get(f"{moto_url}/moto-api/data.json", timeout=10).json()
            return len(data.get("sts", {}).get("AssumedRole", []))

        for mode in modes(stub.url, token_file):
            variants = [None, SHORT_LIFETIME] if short and mode.server_lifetime else [None]
            for lifetime_override in variants:
                lifetime = lifetime_override or mode.lifetime
                stub.configure(require_token=mode.name == "jwt", token_lifetime=lifetime or 3600)
                google.access_token_lifetime = google.id_token_lifetime = int(lifetime or 3600)
                stub.reset()
                google.reset_counts()
                mwaa.reset_counts()
                roles_before = assumed_roles()
                env = _env(mode, google, mwaa, moto_url, container)
                config = write_config(directory, mode.name.replace(" ", "_").replace(",", ""), mode.airflow, STUB_DAG)
                label = f"{mode.name}" + (f" (tokens live {lifetime:.0f} s)" if lifetime_override else "")
                progress(f"mints: {label}, {events} events")
                min_seconds = SHORT_MIN_SECONDS if lifetime_override else 0.0
                worker = run_worker(
                    "bench.mints",
                    ["--entry", mode.entry, "--events", str(events), "--min-seconds", str(min_seconds),
                     "--config", str(config), "--tag", label],
                    env,
                )  # fmt: skip
                seen = stub.counts()
                server = _server_mints(mode, seen, dict(google.mints), dict(mwaa.calls), assumed_roles() - roles_before)
                exchanges = {name: count for name, count in google.calls.items() if count}
                low, high = _expected(mode, worker["elapsed"], lifetime)
                sent = worker["created"]
                results.append(
                    {
                        "mode": label,
                        "what": mode.what,
                        "events": sent,
                        "elapsed_s": worker["elapsed"],
                        "lifetime_s": lifetime,
                        "margin_s": mode.margin if lifetime else None,
                        "server_mints": server,
                        "client_refreshes": worker["refreshes"],
                        "expected": [low, high],
                        "met": _met(mode, server, worker["refreshes"], low, high),
                        "stub_requests_per_event": seen["total"] / sent,
                        "google_requests": dict(google.paths),
                        "mwaa_calls": dict(mwaa.calls),
                        "google_calls": exchanges,
                        "google_mints": {kind: count for kind, count in google.mints.items() if count},
                        "created": worker["created"],
                    }
                )
    return {"events": events, "modes": results}


def _env(mode: Mode, google: Any, mwaa: Any, moto_url: str, container: Any) -> dict[str, str]:
    env = worker_env({PASSWORD_ENV: "bench-password"})
    if mode.google:
        google.isolate_env(env)
        env.update(google.env())
    if mode.container or mode.keyless:
        container.isolate_env(env)
    if mode.container:
        env.update({**container.env(), "AWS_REGION": REGION})
    if mode.aws:
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            env.pop(name, None)
        keys = {} if mode.keyless else {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
        env.update(
            {
                **keys,
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_ENDPOINT_URL_STS": moto_url,
                **mwaa.env(),
            }
        )
    return env


def _server_mints(
    mode: Mode, stub: Mapping[str, Any], google: Mapping[str, int], mwaa: Mapping[str, int], assumed: int
) -> int | None:
    """What the minting server counted for ``mode``; None where no server mints anything."""
    if mode.name == "jwt":
        return int(stub["mints"])
    if mode.name == "composer":
        return google.get("access_token", 0)
    if mode.name == "iap":
        return google.get("id_token", 0)
    if mode.name == "iap_jwt":
        return google.get("sign_jwt", 0)
    if mode.name == "mwaa cli_token":
        return mwaa.get("CreateCliToken", 0)
    if mode.name in ("mwaa invoke_rest_api, assumed role", "mwaa from Google, AssumeRoleWithWebIdentity"):
        return assumed
    if mode.name == "composer from AWS, workload identity federation":
        return google.get("generated_access_token", 0)
    return None


def _met(mode: Mode, server: int | None, refreshes: Mapping[str, int], low: int, high: int) -> bool:
    counted = server if server is not None else sum(refreshes.values())
    return low <= counted <= high


# -- the worker ---------------------------------------------------------------------------------------


def _count_refreshes() -> Counter[str]:
    """Wrap every credential provider's ``refresh`` so the worker can say how often each one ran."""
    from shared import credentials, google_credentials, mwaa_cli

    counts: Counter[str] = Counter()
    seen: set[type] = set()
    pending: list[type] = [credentials.Credentials]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls in seen or "refresh" not in cls.__dict__:
            continue
        seen.add(cls)
        original: Callable[..., None] = cls.__dict__["refresh"]

        def counting(
            self: Any, *args: Any, _original: Callable[..., None] = original, _name: str = cls.__name__
        ) -> None:
            counts[_name] += 1
            _original(self, *args)

        cls.refresh = counting  # type: ignore[attr-defined]
    del google_credentials, mwaa_cli  # imported only so their providers are among the subclasses
    return counts


def worker(entry: str, events: int, config: Path, tag: str, min_seconds: float = 0.0) -> dict[str, Any]:
    """Send ``events`` fresh events (more, until ``min_seconds`` have passed) through the entry point; every one
    must create its run."""
    import os

    os.environ["DAG_TRIGGER_CONFIG"] = str(config)
    refreshes = _count_refreshes()
    slug = "".join(ch if ch.isalnum() else "-" for ch in tag)
    if entry == "gcf":
        from cloudevents.http.event import CloudEvent

        invoke = importlib.import_module("gcf_trigger.main").trigger_dag

        def build(index: int) -> Any:
            return CloudEvent(*gcs_cloudevent_parts(object_key(slug, index), 1_000_000 + index))

        def deliver(event: Any) -> dict[str, Any]:
            return dict(invoke(event))
    else:
        handler = importlib.import_module("lambda_trigger.handler").handler

        def build(index: int) -> Any:
            return s3_event(object_key(slug, index), 1_000_000 + index)

        def deliver(event: Any) -> dict[str, Any]:
            return dict(handler(event, LambdaContext()))

    # Built before the clock starts, as the platform builds them; a run past ``events`` builds as it goes.
    batch = [build(i) for i in range(events)]
    created = sent = 0
    started = time.perf_counter()
    while sent < events or time.perf_counter() - started < min_seconds:
        event = batch[sent] if sent < events else build(sent)
        runs = deliver(event).get("runs") or []
        created += sum(1 for run in runs if run.get("outcome") == "created")
        sent += 1
    elapsed = time.perf_counter() - started
    if created != sent:
        raise RuntimeError(f"{tag}: {created} of {sent} events created their run")
    return {"elapsed": elapsed, "refreshes": dict(refreshes), "created": created}


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.mints``: the worker for one mode."""
    parser = argparse.ArgumentParser(prog="python -m bench.mints")
    parser.add_argument("--entry", choices=("gcf", "lambda"), required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--min-seconds", type=float, default=0.0)
    parser.add_argument("--result", type=Path, required=True)
    args = parser.parse_args(argv)
    args.result.write_text(json.dumps(worker(args.entry, args.events, args.config, args.tag, args.min_seconds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
