"""``dag-trigger``: see what an event would trigger, trigger it for real, or check a setup.

Exit codes: 0 success (also for an event that routes nowhere), 1 a run could not be created or a
doctor check failed, 2 the input itself is wrong (unparseable event, invalid config).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import requests

from shared.airflow_client import AirflowClient
from shared.composer import ComposerEnvironment
from shared.config import GOOGLE_AUTH_MODES, AirflowSettings, Config, from_environment, load_file
from shared.dispatch import Plan, plan_payload
from shared.errors import AirflowError, ConfigError, ConfTooLargeError, EventError, TriggerError
from shared.runtime import Setup, build_dispatcher, resolve

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _config(args: argparse.Namespace) -> Config:
    return load_file(args.config) if args.config else from_environment()


def _read_event(path: str) -> Any:
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise EventError(f"{path}: cannot read event file ({exc.strerror})") from None
    try:
        # From bytes, json detects UTF-8/16/32; anything else is a UnicodeDecodeError, which is a ValueError.
        return json.loads(raw)
    except ValueError as exc:
        raise EventError(f"{path}: not JSON: {exc}") from None


def _plan(args: argparse.Namespace, config: Config) -> Plan:
    planned = plan_payload(_read_event(args.event), config)
    for reason in planned.skipped:
        print(f"skipped: {reason}", file=sys.stderr)
    return planned


def _print_json(item: dict[str, Any], out: TextIO) -> None:
    print(json.dumps(item, ensure_ascii=False, sort_keys=False), file=out)


def cmd_explain(args: argparse.Namespace, out: TextIO) -> int:
    """Print each trigger the event would cause, one JSON object per line; call nothing."""
    planned = _plan(args, _config(args))
    for request in planned.requests:
        _print_json(request.describe(), out)
    return EXIT_OK


def cmd_fire(args: argparse.Namespace, out: TextIO) -> int:
    """Trigger for real and print each outcome, one JSON object per line."""
    config = _config(args)
    planned = _plan(args, config)
    report = build_dispatcher(config).run(planned)
    for result in report.results:
        _print_json(result.describe(), out)
    for failure in report.failures:
        _print_json(failure.describe(), out)
    return EXIT_OK if report.ok else EXIT_FAILED


@dataclass(frozen=True)
class Check:
    """One line of the doctor's table."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    #: A caveat worth reading that fails nothing.
    note: bool = False


def _check(name: str, probe: Callable[[], str], fix: Callable[[TriggerError], str]) -> Check:
    try:
        return Check(name, True, probe())
    except TriggerError as exc:
        return Check(name, False, str(exc), fix(exc))


def _is_403(exc: TriggerError) -> bool:
    return isinstance(exc, AirflowError) and exc.status == 403


#: The doctor answers within seconds, whatever the event deadline: a person is waiting at a terminal.
DOCTOR_DEADLINE = 5.0
#: Except through MWAA's CLI, where each command starts an Airflow CLI process (4 to 10 s measured).
DOCTOR_CLI_DEADLINE = 30.0

_PRIVATE_IP_CAVEAT = (
    "Private IP environment: its Airflow web server is reachable only from inside its VPC network. A Cloud Run "
    "function needs a Serverless VPC Access connector or Direct VPC egress into that network, and with VPC "
    "Service Controls it must be inside the same perimeter"
)


def _quick(settings: AirflowSettings) -> AirflowSettings:
    cli = settings.mwaa_environment and settings.mwaa_transport == "cli_token"
    limit = DOCTOR_CLI_DEADLINE if cli else DOCTOR_DEADLINE
    return dataclasses.replace(
        settings,
        deadline=min(settings.deadline, limit),
        connect_timeout=min(settings.connect_timeout, limit),
        read_timeout=min(settings.read_timeout, limit),
    )


def _composer_check(environment: ComposerEnvironment) -> Check:
    return Check(
        "composer",
        environment.state == "RUNNING",
        f"{environment.name}: {environment.state}, image {environment.image_version} (Composer "
        f"{environment.composer_major}, Airflow {environment.airflow_version}), web server {environment.airflow_uri}",
        "wait until the environment is RUNNING (it may be updating), or fix it in the Cloud console",
    )


def _google_check(setup: Setup, session: requests.Session) -> Check:
    settings = setup.settings

    def probe() -> str:
        setup.credentials.before_request(session, (settings.connect_timeout, settings.read_timeout))
        return f"auth = {settings.auth!r}: {setup.credentials.describe()}"

    return _check(
        "google identity",
        probe,
        lambda _: (
            "run where google-auth finds a service account (Cloud Run's runtime service account, "
            "GOOGLE_APPLICATION_CREDENTIALS, or gcloud auth application-default login); see the README's Google Cloud "
            "section for the roles each auth mode needs"
        ),
    )


def _aws_checks(settings: AirflowSettings) -> list[Check]:
    """Who calls MWAA (after the assumed role), and the environment's status and Airflow version."""
    from shared import mwaa

    try:
        session = mwaa.aws_session(settings)
    except TriggerError as exc:
        return [Check("aws identity", False, str(exc), "give the function AWS credentials (its execution role)")]
    identity = _check(
        "aws identity",
        lambda: mwaa.caller_identity(settings, session),
        lambda _: "check the execution role, and that assume_role_arn trusts it (with the external id, if set)",
    )
    if not identity.ok:
        return [identity]
    try:
        available, detail = mwaa.environment_status(settings, session)
    except TriggerError as exc:
        # GetEnvironment is not needed to trigger, so a least-privilege role may well lack it.
        return [
            identity,
            Check("mwaa", True, f"{exc} (not needed to trigger; the Airflow API is checked next)", note=True),
        ]
    return [identity, Check("mwaa", available, detail, "wait until the environment is AVAILABLE, or fix it in MWAA")]


def doctor_checks(config: Config) -> list[Check]:
    """The Composer environment and Google identity (when used), reachability, API version, credentials, and
    every routed DAG: exists and is not paused. Each call gets :data:`DOCTOR_DEADLINE` at most (through MWAA's
    CLI, :data:`DOCTOR_CLI_DEADLINE`)."""
    session = requests.Session()
    settings = _quick(config.airflow)
    try:
        setup = resolve(settings, session)
    except TriggerError as exc:
        name = "composer" if settings.composer_environment else "credentials"
        return [Check(name, False, str(exc), "fix the setting or permission the message names")]
    checks: list[Check] = []
    if setup.environment is not None:
        checks.append(_composer_check(setup.environment))
        if setup.environment.private_ip:
            checks.append(Check("network", True, _PRIVATE_IP_CAVEAT, note=True))
    settings = setup.settings
    if settings.mwaa_environment:
        checks.extend(_aws_checks(settings))
        if not checks[-1].ok:
            return checks
    if settings.auth in GOOGLE_AUTH_MODES:
        checks.append(_google_check(setup, session))
        if not checks[-1].ok:
            return checks
    client = AirflowClient(settings, setup.transport(session))
    url = client.transport.where
    checks.append(
        _check(
            "reachable",
            lambda: f"{url} speaks API {client.api_version()} (Airflow {client.server_version()})",
            lambda _: "check [airflow].url (the web server's base URL) and that Airflow is running and reachable",
        )
    )
    if not checks[-1].ok:
        return checks
    checks.append(
        _check(
            "credentials",
            lambda: f"auth = {settings.auth!r} accepted, {client.check_access()}",
            lambda exc: (
                (
                    f"check [airflow].auth, username and the password in ${settings.password_env} "
                    "(Airflow 3 uses auth = 'jwt', Airflow 2 auth = 'basic')"
                    if settings.auth not in GOOGLE_AUTH_MODES
                    else "grant the roles the error names"
                )
                + ("; then give the user a role that can read DAGs and create DAG runs" if _is_403(exc) else "")
            ),
        )
    )
    if not checks[-1].ok:
        return checks
    for dag_id in dict.fromkeys(route.dag_id for route in config.routes):
        checks.append(_dag_check(client.get_dag, dag_id, settings.paused))
    return checks


_PAUSED_EFFECT = {
    "warn": "runs are created but stay queued until it is unpaused",
    "fail": "events fail and are redelivered until it is unpaused",
    "unpause": "the first event unpauses it",
}


def _dag_check(get_dag: Callable[[str], dict[str, Any]], dag_id: str, policy: str) -> Check:
    try:
        dag = get_dag(dag_id)
    except TriggerError as exc:
        return Check(f"dag {dag_id}", False, str(exc), "deploy the DAG file, fix its import errors, or fix the route")
    if dag.get("is_paused"):
        return Check(
            f"dag {dag_id}",
            policy == "unpause",
            f"paused; with paused = {policy!r} {_PAUSED_EFFECT[policy]}",
            f"unpause it: airflow dags unpause {dag_id} (or the toggle in the UI)",
        )
    return Check(f"dag {dag_id}", True, "exists, not paused")


def cmd_doctor(args: argparse.Namespace, out: TextIO) -> int:
    """Print a table of checks with a fix for each failure."""
    checks = doctor_checks(_config(args))
    width = max(len(c.name) for c in checks)
    for check in checks:
        label = "note" if check.note else "ok" if check.ok else "FAIL"
        print(f"{label:4}  {check.name:{width}}  {check.detail}", file=out)
        if not check.ok and check.fix:
            print(f"{'':4}  {'':{width}}  fix: {check.fix}", file=out)
    return EXIT_OK if all(c.ok for c in checks) else EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dag-trigger", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, func, needs_event in (
        ("explain", cmd_explain, True),
        ("fire", cmd_fire, True),
        ("doctor", cmd_doctor, False),
    ):
        sub = commands.add_parser(name, help=(func.__doc__ or "").splitlines()[0])
        sub.add_argument(
            "--config", help="TOML or JSON config file (default: DAG_TRIGGER_CONFIG or AIRFLOW_URL/DAG_ID)"
        )
        if needs_event:
            sub.add_argument("event", help="event JSON file (any supported payload, or a list of them); - for stdin")
        sub.set_defaults(func=func)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the ``dag-trigger`` console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        code: int = args.func(args, out or sys.stdout)
    except (EventError, ConfigError, ConfTooLargeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except TriggerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return code


if __name__ == "__main__":
    sys.exit(main())
