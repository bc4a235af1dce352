"""HTTP services on 127.0.0.1 for the tests, written once: the fault proxy, the auth proxies and FakeGoogle.

:class:`LoopbackServer` owns the lifecycle (a threaded server on a loopback port, started and stopped
at will, the port kept across restarts); :class:`Handler` reads each request and answers it, or
raises :class:`Reply` to answer at once; :class:`LoopbackProxy` and :class:`ProxyHandler` add
forwarding to an upstream such as a local Airflow.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

#: An HTTP answer as :meth:`Handler.send` takes it: status, headers, body.
Answer = tuple[int, list[tuple[str, str]], bytes]

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
)


class Reply(Exception):
    """Raised in :meth:`Handler.respond` to answer at once: a ``str`` body is sent as text, anything else as JSON."""

    def __init__(self, status: int, body: Any = "", headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


class QuietServer(ThreadingHTTPServer):
    """A threaded server whose handler threads never outlive the test process."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timed out, reset) is part of the test, not an error."""


class Handler(BaseHTTPRequestHandler):
    """Reads each request's body and passes it to :meth:`respond` (which may raise :class:`Reply`); quiet."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests print their own figures."""

    def finish(self) -> None:
        # After a reset (injected, or a client that gave up) the socket is gone; nothing is left to flush.
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            self.respond(self.rfile.read(length) if length else b"")
        except Reply as reply:
            if isinstance(reply.body, str):
                headers = {"Content-Type": "text/plain; charset=utf-8"} | reply.headers
                self.send(reply.status, list(headers.items()), reply.body.encode())
            else:
                self.reply_json(reply.status, reply.body, reply.headers)

    def respond(self, body: bytes) -> None:
        """Answer the request (``self.command``, ``self.path``, ``self.headers`` and its ``body``)."""
        raise NotImplementedError

    def reply_json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        """Answer with ``body`` as JSON."""
        self.send(status, [("Content-Type", "application/json"), *(headers or {}).items()], json.dumps(body).encode())

    def send(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        """Answer with these headers (hop-by-hop ones dropped) and ``payload``, its length set here."""
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        # Headers and body in one write: end_headers() flushes http.server's own buffer of the head, and a body
        # written after it waits behind Nagle for the client's delayed ACK, 40 ms on every keep-alive request.
        self._headers_buffer.append(b"\r\n" + payload)  # type: ignore[attr-defined]
        self.flush_headers()


class LoopbackServer:
    """Serves ``handler`` on ``http://127.0.0.1:<port>``; each handler reaches this object as ``self.owner``."""

    handler: ClassVar[type[Handler]]

    def __init__(self, *, port: int = 0) -> None:
        #: 0 until the first :meth:`start` picks a free port; then kept, so a restart comes back on it.
        self.port = port
        self._server: QuietServer | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen (on the same port as before, after :meth:`stop`)."""
        bound = type(self.handler.__name__, (self.handler,), {"owner": self})
        self._server = QuietServer(("127.0.0.1", self.port), bound)
        self.port = self._server.server_address[1]
        name = f"{type(self).__name__}:{self.port}"
        threading.Thread(target=self._server.serve_forever, name=name, daemon=True).start()

    def stop(self) -> None:
        """Stop listening: every new connection is refused. Idempotent."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LoopbackProxy(LoopbackServer):
    """A loopback server whose handlers can forward requests to ``upstream`` (``http://host:port``)."""

    def __init__(self, upstream: str, *, port: int = 0) -> None:
        super().__init__(port=port)
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80


class ProxyHandler(Handler):
    """A handler that can pass the request on to its owner's upstream."""

    owner: LoopbackProxy

    def forward(self, body: bytes, replace: Mapping[str, str] | None = None) -> Answer:
        """Send this request, with ``body`` and the ``replace`` headers, upstream; return its answer."""
        dropped = HOP_BY_HOP | {"content-length"} | {name.lower() for name in replace or {}}
        headers = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
        headers |= replace or {}
        headers["Content-Length"] = str(len(body))
        connection = http.client.HTTPConnection(self.owner.upstream_host, self.owner.upstream_port, timeout=60)
        try:
            connection.request(self.command, self.path, body=body or None, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()
