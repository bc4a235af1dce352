"""A fault-injecting HTTP proxy on loopback, between our client and a real Airflow.

For every request to the DAG API it draws a fault from a seeded schedule: answer 500/502/503 or
429 with ``Retry-After`` itself, hang past the client's read timeout, reset the connection, forward
the request to Airflow and then drop the response (the run exists but the client never heard),
or answer 401 (expired token) or 403 "Invalid JWT token" once. It can also refuse connections
entirely (Airflow down) and rewrite a trigger's body (to force an Airflow 2 logical-date clash).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

FAULTS = ("500", "502", "503", "429", "hang", "reset", "drop_after_forward", "401", "403_jwt")
AUTH_FAULTS = ("401", "403_jwt")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class FaultSchedule:
    """Which fault (or ``None``) the next request meets; seeded, so a failing run can be replayed.

    Auth faults never hit two requests in a row: Airflow answers 401 for an expired token once, and
    the client's one refresh must then meet a working server.
    """

    def __init__(self, seed: int, rate: float, faults: tuple[str, ...] = FAULTS) -> None:
        self._random = random.Random(seed)
        self._rate = rate
        self._faults = faults
        self._lock = threading.Lock()
        self._after_auth_fault = False
        self.injected: Counter[str] = Counter()

    def next(self) -> str | None:
        """The fault for the next request."""
        with self._lock:
            if self._after_auth_fault or self._random.random() >= self._rate:
                self._after_auth_fault = False
                return None
            fault = self._random.choice(self._faults)
            self._after_auth_fault = fault in AUTH_FAULTS
            self.injected[fault] += 1
            return fault


class FaultProxy:
    """Forwards ``http://127.0.0.1:<port>`` to ``upstream``, injecting faults into DAG API calls."""

    def __init__(self, upstream: str, *, hang_seconds: float = 3.0) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.hang_seconds = hang_seconds
        self.schedule: FaultSchedule | None = None
        #: Rewrites the JSON body of a trigger (POST .../dagRuns) before it is forwarded; ``None`` to stop.
        self.rewrite_trigger: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The address the client should use as Airflow's URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen (on the same port as before, after :meth:`stop`: Airflow coming back)."""
        proxy = self

        class Handler(_ProxyHandler):
            owner = proxy

        self._server = _QuietServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening: every connection is refused, as when Airflow is down."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timed out, reset) is part of the test, not an error."""


class _ProxyHandler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test prints its own figure."""

    def finish(self) -> None:
        # After an injected reset the socket is gone; there is nothing left to flush.
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        is_dag_api = "/dags" in self.path and self.path.startswith("/api/")
        fault = self.owner.schedule.next() if (self.owner.schedule and is_dag_api) else None
        if fault in ("500", "502", "503"):
            self._reply(int(fault), {"detail": f"injected {fault}"})
        elif fault == "429":
            self._reply(429, {"detail": "injected 429"}, {"Retry-After": "1"})
        elif fault == "401":
            self._reply(401, {"detail": "Token has expired"})
        elif fault == "403_jwt":
            self._reply(403, {"detail": "Invalid JWT token"})
        elif fault == "hang":
            time.sleep(self.owner.hang_seconds)
            self._reset()
        elif fault == "reset":
            self._reset()
        else:
            status, headers, payload = self._forward(body)
            if fault == "drop_after_forward":
                self._reset()
            else:
                self._send(status, headers, payload)

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        if self.command == "POST" and self.path.rstrip("/").endswith("/dagRuns") and self.owner.rewrite_trigger:
            body = json.dumps(self.owner.rewrite_trigger(json.loads(body))).encode()
        connection = http.client.HTTPConnection(self.owner.upstream_host, self.owner.upstream_port, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            connection.request(self.command, self.path, body=body or None, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            return response.status, response.getheaders(), payload
        finally:
            connection.close()

    def _reply(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self._send(status, [("Content-Type", "application/json"), *(headers or {}).items()], payload)

    def _send(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _reset(self) -> None:
        # SO_LINGER 0 makes close() send a RST: the client sees "connection reset by peer".
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True
