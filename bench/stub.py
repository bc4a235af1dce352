"""A minimal Airflow 3 REST API on loopback, for timing clients and counting what they send.

It answers what the clients ask, each response in one socket write (see :mod:`bench.servers`):

* ``POST /auth/token``: a JWT-shaped token (``exp`` = now + ``token_lifetime``), 201 as Airflow 3 answers;
* ``GET /api/v2/version``, ``GET /api/v2/monitor/health``;
* ``GET /api/v2/dags/{id}``: the DAG, not paused;
* ``POST /api/v2/dags/{id}/dagRuns``: 200 with the run (409 for a run id it has seen: a duplicate is a finding);
* ``GET /api/v2/dags/{id}/dagRuns/{run}``: the run, or 404.

Every request is counted by method and path (without the query). With ``require_token`` every ``/api/v2``
call but ``/version`` needs a token this stub minted and that has not expired (401 otherwise), so a client
that forgets its token cannot pass for a fast one.

Control endpoints under ``/__bench/`` are never counted: ``GET counts``, ``POST reset``, ``POST config``.
``python -m bench.stub`` runs the stub (and optionally the TLS proxy) in a process of its own, so the
server does not share the measured client's GIL; :class:`StubProcess` starts and reads it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote, urlsplit

import requests

from bench.servers import OneWriteHandler, ServerOwner, json_answer

API = "/api/v2"
STUB_VERSION = "3.1.8"
USERNAME = "bench"
PASSWORD = "bench-password"
CONTROL = "/__bench/"
REPO_ROOT = Path(__file__).resolve().parent.parent


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class _StubHandler(OneWriteHandler):
    owner: AirflowStub

    def answer(self, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        path = unquote(urlsplit(self.path).path)
        if path.startswith(CONTROL):
            return self.owner.control(self.command, path.removeprefix(CONTROL), body)
        self.owner.count(f"{self.command} {path}")
        return self.owner.route(self.command, path, body, self.headers.get("Authorization", ""))


class AirflowStub(ServerOwner):
    """The stub server; ``counts`` holds requests per ``"METHOD /path"``, ``runs`` the run ids created."""

    handler = _StubHandler

    def __init__(
        self,
        *,
        port: int = 0,
        token_lifetime: float = 3600.0,
        require_token: bool = True,
        extra_stats: Callable[[], dict[str, Any]] | None = None,
        extra_reset: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(port=port)
        self.token_lifetime = token_lifetime
        self.require_token = require_token
        self.counts: Counter[str] = Counter()
        self.duplicates = 0
        self._runs: set[str] = set()
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()
        self._extra_stats = extra_stats
        self._extra_reset = extra_reset

    # -- bookkeeping -------------------------------------------------------------------------------

    def count(self, key: str) -> None:
        """Count one request."""
        with self._lock:
            self.counts[key] += 1

    def reset(self) -> None:
        """Zero the request counts, the write count and the duplicate count (tokens and runs are kept)."""
        with self._lock:
            self.counts.clear()
            self.duplicates = 0
        with self._writes_lock:
            self.response_writes = 0
        if self._extra_reset is not None:
            self._extra_reset()

    def snapshot(self) -> dict[str, Any]:
        """Counts so far, as JSON-able data."""
        with self._lock:
            counts = dict(self.counts)
            duplicates = self.duplicates
        with self._writes_lock:
            writes = self.response_writes
        return {
            "counts": counts,
            "total": sum(counts.values()),
            "mints": counts.get("POST /auth/token", 0),
            "writes": writes,
            "duplicates": duplicates,
            "token_lifetime": self.token_lifetime,
            **(self._extra_stats() if self._extra_stats else {}),
        }

    def mint_token(self) -> str:
        """A JWT-shaped token (unsigned: nobody verifies it but this stub) that expires after ``token_lifetime``."""
        expires = time.time() + self.token_lifetime
        with self._lock:
            serial = len(self._tokens) + 1
        claims = {"sub": USERNAME, "exp": int(expires), "iat": int(time.time()), "jti": serial}
        token = ".".join([_b64(b'{"alg":"none","typ":"JWT"}'), _b64(json.dumps(claims).encode()), _b64(b"stub")])
        with self._lock:
            self._tokens[token] = expires
        return token

    def token_valid(self, authorization: str) -> bool:
        """Whether ``authorization`` is ``Bearer <a token minted here, not expired>``."""
        scheme, _, token = authorization.partition(" ")
        with self._lock:
            expires = self._tokens.get(token.strip())
        return scheme.lower() == "bearer" and expires is not None and expires > time.time()

    # -- the API -----------------------------------------------------------------------------------

    def route(self, method: str, path: str, body: bytes, authorization: str) -> tuple[int, bytes, dict[str, str]]:
        """Answer one Airflow API request."""
        if (method, path) == ("POST", "/auth/token"):
            credentials = _json(body)
            if credentials.get("username") != USERNAME or credentials.get("password") != PASSWORD:
                return json_answer(401, {"detail": "Invalid credentials"})
            return json_answer(201, {"access_token": self.mint_token()})
        if not path.startswith(API + "/"):
            return json_answer(404, {"detail": "Not Found"})
        resource = path.removeprefix(API)
        if (method, resource) == ("GET", "/version"):
            return json_answer(200, {"version": STUB_VERSION, "git_version": None})
        if (method, resource) == ("GET", "/monitor/health"):
            return json_answer(200, {"metadatabase": {"status": "healthy"}, "scheduler": {"status": "healthy"}})
        if self.require_token and not self.token_valid(authorization):
            return json_answer(401, {"detail": "Not authenticated"})
        parts = resource.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "dags" and method == "GET":
            return json_answer(200, {"dag_id": parts[1], "is_paused": False, "is_active": True})
        if len(parts) == 3 and parts[0] == "dags" and parts[2] == "dagRuns" and method == "POST":
            return self._create_run(parts[1], _json(body))
        if len(parts) == 4 and parts[0] == "dags" and parts[2] == "dagRuns" and method == "GET":
            with self._lock:
                known = parts[3] in self._runs
            if not known:
                return json_answer(404, {"detail": f"DagRun with dag_run_id: `{parts[3]}` was not found"})
            return json_answer(200, {"dag_id": parts[1], "dag_run_id": parts[3], "state": "queued"})
        return json_answer(404, {"detail": "Not Found"})

    def _create_run(self, dag_id: str, body: dict[str, Any]) -> tuple[int, bytes, dict[str, str]]:
        run_id = str(body.get("dag_run_id") or "")
        with self._lock:
            duplicate = run_id in self._runs
            self._runs.add(run_id)
            if duplicate:
                self.duplicates += 1
        if duplicate:
            return json_answer(409, {"detail": f"A DAG Run already exists for DAG {dag_id} with run id {run_id}"})
        run = {"dag_id": dag_id, "dag_run_id": run_id, "state": "queued", "conf": body.get("conf") or {}}
        return json_answer(200, run)

    def control(self, method: str, name: str, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        """The uncounted ``/__bench/`` endpoints the parent uses to read and reset the counts."""
        if (method, name) == ("GET", "counts"):
            return json_answer(200, self.snapshot())
        if (method, name) == ("POST", "reset"):
            self.reset()
            return json_answer(200, self.snapshot())
        if (method, name) == ("POST", "config"):
            settings = _json(body)
            if "token_lifetime" in settings:
                self.token_lifetime = float(settings["token_lifetime"])
            if "require_token" in settings:
                self.require_token = bool(settings["require_token"])
            return json_answer(200, self.snapshot())
        return json_answer(404, {"detail": "unknown control endpoint"})


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# -- running the stub in its own process ----------------------------------------------------------


class StubProcess:
    """``python -m bench.stub`` as a child process: its URLs, and its counts read over the control endpoints."""

    def __init__(self, *, rtt: float | None = None, handshake_rtts: int = 2, token_lifetime: float = 3600.0) -> None:
        self.rtt = rtt
        self.handshake_rtts = handshake_rtts
        self.token_lifetime = token_lifetime
        self.url = ""
        self.tls_url: str | None = None
        self.ca_file: str | None = None
        self.bundle_file: str | None = None
        self._process: subprocess.Popen[str] | None = None
        self._http = requests.Session()

    def start(self) -> None:
        """Start the child and wait for the line that names its URLs."""
        args = [sys.executable, "-m", "bench.stub", "--token-lifetime", str(self.token_lifetime)]
        if self.rtt is not None:
            args += ["--rtt", str(self.rtt), "--handshake-rtts", str(self.handshake_rtts)]
        self._process = subprocess.Popen(
            args, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_child_env()
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError("the stub process exited before it was ready")
        info = json.loads(line)
        self.url, self.tls_url = info["url"], info.get("tls_url")
        self.ca_file, self.bundle_file = info.get("ca_file"), info.get("bundle_file")

    def counts(self) -> dict[str, Any]:
        """The stub's (and proxy's) counts."""
        return dict(self._http.get(f"{self.url}{CONTROL}counts", timeout=10).json())

    def reset(self) -> dict[str, Any]:
        """Zero the counts."""
        return dict(self._http.post(f"{self.url}{CONTROL}reset", timeout=10).json())

    def configure(self, **settings: Any) -> None:
        """Change ``token_lifetime`` or ``require_token``."""
        self._http.post(f"{self.url}{CONTROL}config", json=settings, timeout=10).raise_for_status()

    def stop(self) -> None:
        """Close the child's stdin (it stops its servers and exits), wait, kill if it lingers. Idempotent."""
        self._http.close()
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            assert process.stdin is not None
            process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


def main(argv: list[str] | None = None) -> int:
    """Serve the stub (and the TLS proxy with ``--rtt``) until stdin closes or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m bench.stub", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token-lifetime", type=float, default=3600.0)
    parser.add_argument("--no-require-token", action="store_true")
    parser.add_argument(
        "--rtt", type=float, default=None, help="also serve the stub behind a TLS proxy adding this RTT"
    )
    parser.add_argument("--handshake-rtts", type=int, default=2)
    args = parser.parse_args(argv)

    from bench.tls_proxy import DelayTlsProxy

    proxy: DelayTlsProxy | None = None
    stub = AirflowStub(
        port=args.port,
        token_lifetime=args.token_lifetime,
        require_token=not args.no_require_token,
        extra_stats=lambda: {"proxy": proxy.stats()} if proxy else {},
        extra_reset=lambda: proxy.reset() if proxy else None,
    )
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    with contextlib.ExitStack() as stack:
        stack.enter_context(stub)
        info: dict[str, Any] = {"url": stub.url}
        if args.rtt is not None:
            proxy = stack.enter_context(DelayTlsProxy(stub.url, rtt=args.rtt, handshake_rtts=args.handshake_rtts))
            info |= {"tls_url": proxy.url, "ca_file": str(proxy.ca_file), "bundle_file": str(proxy.bundle_file)}
        print(json.dumps(info), flush=True)

        def watch_stdin() -> None:
            # The parent closes our stdin to stop us (or dies, which closes it too).
            sys.stdin.read()
            stopping.set()

        threading.Thread(target=watch_stdin, daemon=True).start()
        stopping.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
