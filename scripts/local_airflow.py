"""Install, start and stop a throw-away local ``airflow standalone`` on its own PostgreSQL.

Shared by the demo and the pytest integration fixtures so both exercise a real
Airflow REST API (v2 on Airflow 3, v1 on Airflow 2) instead of a mock.

Airflow lives in its own virtualenv (``.venv-airflow3`` / ``.venv-airflow2``
at the repo root) because its dependency tree would clash with the project's
and the two majors cannot share one environment.

Library use::

    with LocalAirflow("3", dags_folder=REPO_ROOT / "examples" / "dags") as af:
        af.wait_for_dag("dag_trigger_demo")
        ...  # call af.url with af.auth_headers()

CLI::

    python -m scripts.local_airflow install 3
    python -m scripts.local_airflow run 3 --dags examples/dags

POSIX only: the server runs in its own session; stop() signals its process group
and, where /proc exists, every other process left in that session.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import configparser
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from scripts import venvs
from scripts.local_postgres import LocalPostgres

REPO_ROOT: Path = Path(__file__).resolve().parent.parent

SUPPORTED_MAJORS = ("3", "2")
DEFAULT_DAGS_FOLDER = REPO_ROOT / "examples" / "dags"

# Ports Airflow itself binds by default (log servers, default web/API port);
# a random free port must never land on them or a second component collides.
_RESERVED_PORTS = frozenset({8080, 8793, 8794})
_LOG_TAIL_LINES = 40
_POLL_INTERVAL = 1.0
_STOP_GRACE_SECONDS = 15.0


def _log(message: str) -> None:
    print(f"[local_airflow] {message}", file=sys.stderr, flush=True)


def _check_major(major: str) -> str:
    if major not in SUPPORTED_MAJORS:
        raise ValueError(f"unsupported Airflow major version {major!r}; use one of {SUPPORTED_MAJORS}")
    return major


def _venv_dir(major: str) -> Path:
    return REPO_ROOT / f".venv-airflow{major}"


def _requirements_file(major: str) -> Path:
    return REPO_ROOT / "requirements" / f"airflow{major}.txt"


def ensure_venv(major: str) -> Path:
    """Return the Airflow virtualenv for ``major`` ("3" or "2"), building it if needed.

    The venv at ``REPO_ROOT/.venv-airflow{major}`` is reused while ``requirements/airflow{major}.txt`` is
    unchanged since its last successful install; otherwise it is rebuilt from scratch (:func:`venvs.ensure`).
    """
    _check_major(major)
    return venvs.ensure(_venv_dir(major), _requirements_file(major), "airflow")


def _quote(segment: str) -> str:
    # Run ids may contain ":" and "+" (e.g. manual__2024-01-01T00:00:00+00:00).
    return urllib.parse.quote(segment, safe="")


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def free_port() -> int:
    """Return a currently free TCP port on 127.0.0.1 (never one Airflow reserves)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in _RESERVED_PORTS:
            return port


def _session_members(sid: int) -> list[int] | None:
    """PIDs of live processes in session ``sid``, or None where /proc is unavailable."""
    proc_root = Path("/proc")
    if not (proc_root / "self" / "stat").exists():
        return None
    members = []
    for entry in proc_root.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited while we were looking
            continue
        # "pid (comm) state ppid pgrp session ...": comm may hold spaces or ")".
        state, _ppid, _pgrp, session = stat.rsplit(")", 1)[1].split()[:4]
        # Zombies are already dead; they only wait for their parent to reap them.
        if int(session) == sid and state != "Z":
            members.append(int(entry.name))
    return members


def _signal_session(sid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to the process group ``sid`` and to every other process of session ``sid``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(sid, sig)
    # Airflow moves task runners and (on Airflow 2) the DAG processor manager
    # into process groups of their own, so killpg alone misses them; they
    # stay in our session though.
    for pid in _session_members(sid) or []:
        if pid != os.getpid():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)


def _wait_session_gone(sid: int, leader: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait until no process of session ``sid`` is left; return False on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        # Reap our direct child: an unreaped leader would still count as alive.
        leader.poll()
        members = _session_members(sid)
        if members is None:  # no /proc (e.g. macOS): fall back to the process group
            try:
                os.killpg(sid, 0)
            except ProcessLookupError:
                return True
        elif not members:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


class LocalAirflow:
    """A local ``airflow standalone`` in its own session, usable as a context manager.

    Airflow 3 uses the simple auth manager with user ``admin`` and a random password
    user and JWTs from ``POST /auth/token``; Airflow 2 uses FAB basic auth with
    the random admin password that ``standalone`` generates.
    """

    def __init__(
        self,
        major: str,
        dags_folder: Path,
        home: Path | None = None,
        port: int | None = None,
    ) -> None:
        self.major: str = _check_major(major)
        self.dags_folder: Path = Path(dags_folder).resolve()
        self._owns_home = home is None
        self.home: Path = (
            Path(tempfile.mkdtemp(prefix=f"airflow{major}-home-")) if home is None else Path(home).resolve()
        )
        if port in _RESERVED_PORTS:
            raise ValueError(f"port {port} is used by Airflow itself; pick another")
        self._auto_port = port is None
        self.port: int = port if port is not None else free_port()
        self.url: str = f"http://127.0.0.1:{self.port}"
        self.username: str = "admin"
        # Airflow 2's password is generated by standalone and only known after start().
        # Random, and never equal to the username, so tests can tell if it leaks.
        self.password: str = secrets.token_urlsafe(12) if major == "3" else ""
        self.api_prefix: str = "/api/v2" if major == "3" else "/api/v1"
        self.log_path: Path = self.home / "standalone.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._postgres: LocalPostgres | None = None
        self._token: str | None = None
        self._stopped = False
        # Registered from the start so even a never-started instance removes
        # its temp home, and a crashing caller leaves no Airflow running.
        atexit.register(self.stop)

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> LocalAirflow:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, timeout: float = 240) -> None:
        """Start ``airflow standalone`` and block until its API accepts our credentials.

        Raises RuntimeError (with the last log lines) if Airflow exits or is not
        ready within ``timeout`` seconds; nothing is left running in that case.
        """
        if self._proc is not None:
            return
        if self._stopped:
            raise RuntimeError("a stopped LocalAirflow cannot be restarted; create a new one")
        if _port_in_use(self.port):
            # Otherwise standalone starts fine but its API server dies
            # quietly, and we would only notice at the timeout.
            if not self._auto_port:
                raise RuntimeError(f"port {self.port} on 127.0.0.1 is already in use")
            # A port picked at construction can be taken by the time we start (another
            # Airflow starting alongside picks its own ports): pick again.
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
        venv = ensure_venv(self.major)
        self.home.mkdir(parents=True, exist_ok=True)
        # Its own PostgreSQL, as Composer and MWAA have: SQLite serialises concurrent writers (Airflow 3.3 answers
        # 500 after a 5 s lock wait), and only a real database lets LocalExecutor run tasks in parallel.
        self._postgres = LocalPostgres()
        try:
            self._postgres.start()
            database_url = self._postgres.create_database(f"airflow{self.major}")
        except BaseException:
            self.stop()
            raise
        settings = self._settings(database_url)
        self._write_config(settings)

        env = self._child_env(venv, settings)
        _log(f"starting Airflow {self.major} standalone on {self.url} (home {self.home})")
        started = time.monotonic()
        with self.log_path.open("ab") as log_file:
            self._proc = subprocess.Popen(
                [str(venv / "bin" / "airflow"), "standalone"],
                cwd=self.home,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                # Own session (and process group) so stop() can find and
                # signal every scheduler/API/executor/task process it spawned.
                start_new_session=True,
            )
        try:
            self._wait_until_ready(started + timeout)
        except BaseException:
            self.stop()
            raise
        _log(f"Airflow {self.major} ready in {time.monotonic() - started:.0f}s")

    def stop(self) -> None:
        """Stop everything Airflow started (SIGTERM, then SIGKILL after ~15 s). Idempotent."""
        proc, self._proc = self._proc, None
        self._stopped = True
        atexit.unregister(self.stop)
        if proc is not None:
            # start_new_session made the child leader of its own session and
            # process group, both with id == its pid.
            sid = proc.pid
            started = time.monotonic()
            _signal_session(sid, signal.SIGTERM)
            if not _wait_session_gone(sid, proc, _STOP_GRACE_SECONDS):
                _log(f"Airflow {self.major} did not stop within {_STOP_GRACE_SECONDS:.0f}s; killing")
                _signal_session(sid, signal.SIGKILL)
                _wait_session_gone(sid, proc, 10.0)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            _log(f"Airflow {self.major} stopped in {time.monotonic() - started:.1f}s")
        # Its database goes after Airflow, which would otherwise log every lost connection on the way out.
        postgres, self._postgres = self._postgres, None
        if postgres is not None:
            postgres.stop()
        if self._owns_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def _settings(self, database_url: str) -> dict[tuple[str, str], str]:
        common = {
            ("database", "sql_alchemy_conn"): database_url,
            ("core", "executor"): "LocalExecutor",
            ("core", "dags_folder"): str(self.dags_folder),
            ("core", "load_examples"): "False",
            ("core", "dags_are_paused_at_creation"): "False",
            ("core", "parallelism"): "4",
            # Log servers default to fixed ports; random ones let several
            # instances (e.g. Airflow 2 and 3, parallel test runs) coexist.
            ("logging", "worker_log_server_port"): str(free_port()),
            ("logging", "trigger_log_server_port"): str(free_port()),
        }
        if self.major == "3":
            return common | {
                ("api", "host"): "127.0.0.1",
                ("api", "port"): str(self.port),
                ("api", "secret_key"): secrets.token_hex(16),
                # Scheduler and API server must agree on the signing key or
                # task runs are rejected by the execution API.
                ("api_auth", "jwt_secret"): secrets.token_hex(32),
                # Without this, workers talk to the default localhost:8080.
                ("core", "execution_api_server_url"): f"{self.url}/execution/",
                ("core", "simple_auth_manager_users"): f"{self.username}:admin",
                ("dag_processor", "refresh_interval"): "5",
            }
        return common | {
            ("webserver", "web_server_host"): "127.0.0.1",
            ("webserver", "web_server_port"): str(self.port),
            ("webserver", "base_url"): self.url,
            ("webserver", "secret_key"): secrets.token_hex(16),
            # One gunicorn worker is plenty for tests and saves ~0.5 GB.
            ("webserver", "workers"): "1",
            ("api", "auth_backends"): "airflow.api.auth.backend.basic_auth",
            ("scheduler", "dag_dir_list_interval"): "5",
        }

    def _write_config(self, settings: dict[tuple[str, str], str]) -> None:
        # An airflow.cfg in AIRFLOW_HOME lets someone run `airflow ...` by hand
        # against this instance with the same settings as the server.
        cfg = configparser.ConfigParser(interpolation=None)
        for (section, key), value in settings.items():
            if not cfg.has_section(section):
                cfg.add_section(section)
            cfg.set(section, key, value)
        with (self.home / "airflow.cfg").open("w") as fh:
            cfg.write(fh)
        if self.major == "3":
            # Pre-seeding the simple auth manager's password file fixes the
            # admin password instead of letting standalone generate one.
            passwords = self.home / "simple_auth_manager_passwords.json.generated"
            passwords.write_text(json.dumps({self.username: self.password}) + "\n")

    def _child_env(self, venv: Path, settings: dict[tuple[str, str], str]) -> dict[str, str]:
        # Drop inherited Airflow settings so a developer's own environment
        # cannot redirect this instance to another home, DB or DAG folder.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env |= {f"AIRFLOW__{s.upper()}__{k.upper()}": v for (s, k), v in settings.items()}
        env["AIRFLOW_HOME"] = str(self.home)
        env["AIRFLOW_CONFIG"] = str(self.home / "airflow.cfg")
        # standalone spawns its components as plain `airflow ...`.
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(venv)
        env.pop("PYTHONHOME", None)
        env["PYTHONUNBUFFERED"] = "1"
        env["NO_COLOR"] = "1"
        return env

    def _wait_until_ready(self, deadline: float) -> None:
        while True:
            self.check_alive()
            if self._healthy() and self._credentials_accepted():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"Airflow {self.major} not ready after timeout; last log lines:\n{self.log_tail()}")
            time.sleep(_POLL_INTERVAL)

    def check_alive(self) -> None:
        """Raise RuntimeError (with the log tail) unless the standalone process and its database are running."""
        if self._proc is None:
            raise RuntimeError("Airflow is not running (call start() first)")
        if self._postgres is None or not self._postgres.alive():
            raise RuntimeError(f"Airflow {self.major}'s PostgreSQL is not running")
        code = self._proc.poll()
        if code is not None:
            raise RuntimeError(f"airflow standalone exited with code {code}; last log lines:\n{self.log_tail()}")

    def _healthy(self) -> bool:
        path = "/api/v2/monitor/health" if self.major == "3" else "/health"
        status, body = self.request("GET", path, auth=False)
        if status != 200 or not isinstance(body, dict):
            return False
        # Airflow 2 reports dag_processor as null unless it runs separately;
        # there the scheduler parses DAGs itself.
        components = ["metadatabase", "scheduler"]
        if (body.get("dag_processor") or {}).get("status") is not None:
            components.append("dag_processor")
        return all((body.get(name) or {}).get("status") == "healthy" for name in components)

    def _credentials_accepted(self) -> bool:
        if self.major == "2":
            # standalone writes this once the admin user exists; re-read it on
            # every poll in case an earlier read caught it half-written.
            password_file = self.home / "standalone_admin_password.txt"
            if not password_file.is_file():
                return False
            self.password = password_file.read_text().strip()
        try:
            status, _ = self.request("GET", f"{self.api_prefix}/dags?limit=1")
        except RuntimeError:  # token endpoint not up yet
            return False
        return status == 200

    # -- API helpers -------------------------------------------------------

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """Return the last ``lines`` lines of ``standalone.log``."""
        return venvs.tail(self.log_path, lines)

    def run_cli(self, args: Iterable[str], timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        """Run ``airflow ARGS`` against this instance (its venv and home); the exit code is left to the caller."""
        venv = _venv_dir(self.major)
        # airflow.cfg in the home holds every setting the server was started with, so no overrides are needed.
        return subprocess.run(
            [str(venv / "bin" / "airflow"), *args],
            cwd=self.home,
            env=self._child_env(venv, {}),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )

    def auth_headers(self) -> dict[str, str]:
        """Headers authenticating as the admin user (Bearer JWT on Airflow 3, Basic on 2)."""
        if self.major == "2":
            raw = f"{self.username}:{self.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}
        if self._token is None:
            status, body = self.request(
                "POST",
                "/auth/token",
                {"username": self.username, "password": self.password},
                auth=False,
            )
            if status not in (200, 201) or not isinstance(body, dict) or "access_token" not in body:
                raise RuntimeError(f"POST /auth/token failed: {status} {body!r}")
            # Tokens last 24 h by default, far longer than any test session.
            self._token = str(body["access_token"])
        return {"Authorization": f"Bearer {self._token}"}

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        auth: bool = True,
        headers: dict[str, str] | None = None,
        timeout: float = 15,
    ) -> tuple[int, Any]:
        """Call the Airflow HTTP API; return ``(status, parsed JSON or text)`` without raising on HTTP errors.

        Connection failures come back as status 0 so polling loops can keep going.
        """
        all_headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        if auth:
            all_headers |= self.auth_headers()
        all_headers |= headers or {}
        # self.url is always our own http://127.0.0.1:PORT, so no file:/custom schemes.
        req = urllib.request.Request(self.url + path, data=data, headers=all_headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0, None
        text = raw.decode("utf-8", errors="replace")
        try:
            return status, json.loads(text) if text else None
        except json.JSONDecodeError:
            return status, text

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        """Block until ``dag_id`` is parsed and visible (and triggerable) through the REST API."""
        deadline = time.monotonic() + timeout
        last: tuple[int, Any] = (0, None)
        while time.monotonic() < deadline:
            self.check_alive()
            # /details needs the serialized DAG, which is also what a trigger
            # needs; the plain /dags/{id} row can appear slightly earlier.
            last = self.request("GET", f"{self.api_prefix}/dags/{_quote(dag_id)}/details")
            if last[0] == 200:
                return
            time.sleep(_POLL_INTERVAL)
        raise TimeoutError(
            f"DAG {dag_id!r} not visible after {timeout:.0f}s (last response {last[0]} {last[1]!r}); "
            f"last log lines:\n{self.log_tail()}"
        )

    def received_conf(self, dag_run_id: str) -> dict[str, Any] | None:
        """Return the conf that the example DAG's ``record_conf`` task stored for this run, or None."""
        # Mirrors the file name used by examples/dags/dag_trigger_demo.py.
        path = self.home / "received" / f"{dag_run_id.replace('/', '_')}.json"
        try:
            record = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        conf = record.get("conf")
        return conf if isinstance(conf, dict) else None

    def wait_for_run_state(
        self,
        dag_id: str,
        dag_run_id: str,
        states: Iterable[str] = ("success", "failed"),
        timeout: float = 180,
    ) -> str:
        """Poll the run until its state is one of ``states`` and return that state."""
        wanted = set(states)
        deadline = time.monotonic() + timeout
        last: tuple[int, Any] = (0, None)
        while time.monotonic() < deadline:
            self.check_alive()
            last = self.request("GET", f"{self.api_prefix}/dags/{_quote(dag_id)}/dagRuns/{_quote(dag_run_id)}")
            if last[0] == 200 and isinstance(last[1], dict) and last[1].get("state") in wanted:
                return str(last[1]["state"])
            time.sleep(_POLL_INTERVAL)
        raise TimeoutError(
            f"run {dag_id}/{dag_run_id} not in {sorted(wanted)} after {timeout:.0f}s "
            f"(last response {last[0]} {last[1]!r})"
        )


# -- CLI ---------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m scripts.local_airflow``."""
    parser = argparse.ArgumentParser(prog="python -m scripts.local_airflow", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    install = sub.add_parser("install", help="create/refresh the Airflow venv only")
    install.add_argument("major", choices=SUPPORTED_MAJORS)
    run = sub.add_parser("run", help="run Airflow standalone until Ctrl-C")
    run.add_argument("major", choices=SUPPORTED_MAJORS)
    run.add_argument("--dags", type=Path, default=DEFAULT_DAGS_FOLDER, help="DAGs folder (default: examples/dags)")
    run.add_argument("--home", type=Path, default=None, help="AIRFLOW_HOME to keep (default: temp dir, removed)")
    run.add_argument("--port", type=int, default=None, help="API/web port (default: a free one)")
    args = parser.parse_args(argv)

    if args.command == "install":
        print(ensure_venv(args.major))
        return 0

    # Turn SIGTERM into a normal exit so the context manager still stops
    # Airflow, and make sure Ctrl-C raises even if SIGINT arrived ignored
    # (as it does for background jobs of non-interactive shells).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    airflow = LocalAirflow(args.major, dags_folder=args.dags, home=args.home, port=args.port)
    try:
        with airflow:
            print(f"Airflow {args.major} is up")
            print(f"  url:      {airflow.url}")
            print(f"  user:     {airflow.username}")
            print(f"  password: {airflow.password}")
            print(f"  home:     {airflow.home}")
            print("Press Ctrl-C to stop.", flush=True)
            while True:
                airflow.check_alive()
                time.sleep(_POLL_INTERVAL)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
