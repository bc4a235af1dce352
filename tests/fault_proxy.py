"""A fault-injecting HTTP proxy on loopback, between our client and a real Airflow.

For every request to the DAG API it draws a fault from a seeded schedule: answer 500/502/503 or
429 with ``Retry-After`` itself, hang past the client's read timeout, reset the connection, forward
the request to Airflow and then drop the response (the run exists but the client never heard),
or answer 401 (expired token) or 403 "Invalid JWT token" once. It can also refuse connections
entirely (Airflow down) and rewrite a trigger's body (to force an Airflow 2 logical-date clash).
"""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from tests.loopback import LoopbackProxy, ProxyHandler

FAULTS = ("500", "502", "503", "429", "hang", "reset", "drop_after_forward", "401", "403_jwt")
AUTH_FAULTS = ("401", "403_jwt")


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


class _FaultHandler(ProxyHandler):
    owner: FaultProxy

    def respond(self, body: bytes) -> None:
        is_dag_api = "/dags" in self.path and self.path.startswith("/api/")
        fault = self.owner.schedule.next() if (self.owner.schedule and is_dag_api) else None
        if fault in ("500", "502", "503"):
            self.reply_json(int(fault), {"detail": f"injected {fault}"})
        elif fault == "429":
            self.reply_json(429, {"detail": "injected 429"}, {"Retry-After": "1"})
        elif fault == "401":
            self.reply_json(401, {"detail": "Token has expired"})
        elif fault == "403_jwt":
            self.reply_json(403, {"detail": "Invalid JWT token"})
        elif fault == "hang":
            time.sleep(self.owner.hang_seconds)
            self._reset()
        elif fault == "reset":
            self._reset()
        else:
            if self.command == "POST" and self.path.rstrip("/").endswith("/dagRuns") and self.owner.rewrite_trigger:
                body = json.dumps(self.owner.rewrite_trigger(json.loads(body))).encode()
            status, headers, payload = self.forward(body)
            if fault == "drop_after_forward":
                self._reset()
            else:
                self.send(status, headers, payload)

    def _reset(self) -> None:
        # SO_LINGER 0 makes close() send a RST: the client sees "connection reset by peer".
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True


class FaultProxy(LoopbackProxy):
    """Forwards ``http://127.0.0.1:<port>`` to ``upstream``, injecting faults into DAG API calls.

    :meth:`stop` refuses every connection, as when Airflow is down; :meth:`start` again listens on
    the same port (Airflow coming back).
    """

    handler = _FaultHandler

    def __init__(self, upstream: str, *, hang_seconds: float = 3.0) -> None:
        super().__init__(upstream)
        self.hang_seconds = hang_seconds
        self.schedule: FaultSchedule | None = None
        #: Rewrites the JSON body of a trigger (POST .../dagRuns) before it is forwarded; ``None`` to stop.
        self.rewrite_trigger: Callable[[dict[str, Any]], dict[str, Any]] | None = None
