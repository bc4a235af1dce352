"""Loopback HTTP plumbing for the benchmarks: a threaded server that can be stopped completely, and a
handler that answers in one socket write.

A response must leave in one write: with Nagle on the server's socket a second write waits for the
client's ACK of the first, which the client delays by up to 40 ms, so every client would measure a stall
that is the server's fault. ``tests.loopback`` now answers in one write too; the benchmark keeps its own
handler because it counts those writes (a second write per response is a finding, not noise) and its
server wakes and joins every keep-alive connection on stop, so runs do not leak threads into the next.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self

#: Reason phrases for the few statuses the benchmark servers send.
REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


def http_response(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> bytes:
    """A whole HTTP/1.1 response (status line, headers, body) as one byte string, ready for one ``sendall``."""
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items() if name.lower() != "content-length"]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class TrackedServer(ThreadingHTTPServer):
    """A threaded server that remembers its open connections, so :meth:`close_all` ends every handler thread.

    ``ThreadingHTTPServer`` with daemon threads leaves a keep-alive connection's thread blocked in ``recv``
    after ``shutdown()``; shutting the sockets down wakes those threads so they can be joined.
    """

    daemon_threads = True
    # A sample-style client opens a connection per request; the default backlog of 5 is too small for bursts.
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._open: dict[socket.socket, threading.Thread] = {}
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Start the handler thread and remember it with its socket."""
        thread = threading.Thread(
            target=self._serve_tracked, args=(request, client_address), daemon=True, name="bench-conn"
        )
        with self._open_lock:
            self._open[request] = thread
        thread.start()

    def _serve_tracked(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._open_lock:
                self._open.pop(request, None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-request is not an error worth a traceback here."""

    def close_all(self, timeout: float = 5.0) -> None:
        """Stop serving, close the listening socket, wake and join every connection thread."""
        self.shutdown()
        self.server_close()
        with self._open_lock:
            open_now = list(self._open.items())
        for sock, _ in open_now:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for _, thread in open_now:
            thread.join(timeout)


class OneWriteHandler(BaseHTTPRequestHandler):
    """Reads a request (and its body) and passes it to :meth:`answer`; the response leaves in one ``sendall``."""

    protocol_version = "HTTP/1.1"
    owner: ServerOwner

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the benchmark prints its own figures."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload, headers = self.answer(body)
        self.send_whole(http_response(status, payload, headers))

    def send_whole(self, data: bytes) -> None:
        """Send a complete response in one write: headers and body in the same segment, no Nagle stall."""
        self.owner.count_write()
        self.connection.sendall(data)

    def answer(self, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        """Status, body and headers for this request (``self.command``, ``self.path``, ``self.headers``)."""
        raise NotImplementedError


def json_answer(status: int, value: Any, headers: Mapping[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    """An :meth:`OneWriteHandler.answer` result carrying ``value`` as JSON."""
    return status, json.dumps(value).encode(), {"Content-Type": "application/json", **(headers or {})}


class ServerOwner:
    """One :class:`TrackedServer` on 127.0.0.1, serving a subclass of ``handler`` that sees this object as ``owner``."""

    handler: ClassVar[type[OneWriteHandler]]

    def __init__(self, *, port: int = 0) -> None:
        self.port = port
        self._server: TrackedServer | None = None
        self._thread: threading.Thread | None = None
        #: Socket writes made for responses: one per response, or the Nagle stall is back.
        self.response_writes = 0
        self._writes_lock = threading.Lock()

    def count_write(self) -> None:
        """Called by the handler once per socket write."""
        with self._writes_lock:
            self.response_writes += 1

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen and serve in a background thread."""
        bound = type(self.handler.__name__, (self.handler,), {"owner": self})
        self._server = TrackedServer(("127.0.0.1", self.port), bound)
        self.port = self._server.server_address[1]
        # A short poll interval: stop() waits for serve_forever to notice, and the tests stop servers often.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=type(self).__name__, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and end every connection thread. Idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.close_all()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
