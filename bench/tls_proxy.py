"""A loopback TLS proxy that adds network round trips, so a local server looks like one in a nearby region.

The proxy terminates TLS with a certificate from a CA it makes at start-up (``cryptography``, EC P-256), and
forwards each request to a plain-HTTP upstream over one keep-alive connection per client connection. Delays
are per exchange, never per byte, because latency, not bandwidth, is what a trigger's few hundred bytes meet:

* every request/response exchange waits one round trip (``rtt``) before it is forwarded;
* every new client connection waits ``handshake_rtts`` round trips before the TLS handshake completes: one for
  TCP's handshake (loopback completes it at once, so it is added here) and one for TLS 1.3's. A client that
  opens a connection per request pays them on every request, as it would over a real network.

Clients verify the certificate: :attr:`DelayTlsProxy.bundle_file` is certifi's bundle plus this CA (a client
that loads a bundle per connection pays for a real-sized one), meant for ``REQUESTS_CA_BUNDLE``.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import ipaddress
import shutil
import socket
import ssl
import tempfile
import threading
import time
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

import certifi
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bench.servers import http_response

#: Headers that describe one hop, not the message; never forwarded.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection", "content-length"}
)
_MAX_HEADER_LINES = 100


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 and localhost signed by it: (CA file, cert file, key file).

    A separate CA (rather than one self-signed leaf) keeps strict verifiers happy: the leaf has the
    extensions a server certificate must have, the CA those a trust anchor must have.
    """
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dag-trigger bench CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_file, cert_file, key_file


class DelayTlsProxy:
    """``https://127.0.0.1:<port>`` in front of ``upstream`` (``http://127.0.0.1:<port>``), adding round trips."""

    def __init__(self, upstream: str, *, rtt: float = 0.020, handshake_rtts: int = 2, port: int = 0) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.rtt = rtt
        self.handshake_rtts = handshake_rtts
        self.port = port
        #: Client connections accepted (each one paid the handshake round trips) and exchanges forwarded.
        self.connections = 0
        self.exchanges = 0
        self.handshake_failures = 0
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        #: Each connection's thread and its socket (the TLS one once wrapped: wrapping detaches the plain one).
        self._open: dict[threading.Thread, socket.socket] = {}
        self._directory: Path | None = None
        self._context: ssl.SSLContext | None = None
        self.ca_file: Path | None = None
        self.bundle_file: Path | None = None

    @property
    def url(self) -> str:
        """``https://127.0.0.1:<port>``."""
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Make the certificates, listen, and accept in a background thread."""
        self._directory = Path(tempfile.mkdtemp(prefix="bench-tls-"))
        self.ca_file, cert_file, key_file = make_certificates(self._directory)
        self.bundle_file = self._directory / "bundle.pem"
        self.bundle_file.write_bytes(Path(certifi.where()).read_bytes() + b"\n" + self.ca_file.read_bytes())
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_file, key_file)
        self._context = context
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._accept_thread = threading.Thread(target=self._accept, name="bench-tls-accept", daemon=True)
        self._accept_thread.start()

    def stats(self) -> dict[str, int]:
        """Connections, exchanges and failed handshakes so far."""
        with self._lock:
            return {
                "connections": self.connections,
                "exchanges": self.exchanges,
                "handshake_failures": self.handshake_failures,
            }

    def reset(self) -> None:
        """Zero the counters."""
        with self._lock:
            self.connections = self.exchanges = self.handshake_failures = 0

    def stop(self) -> None:
        """Stop accepting, end every connection and its thread, remove the certificates. Idempotent."""
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone may not.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        if self._accept_thread is not None:
            self._accept_thread.join(5)
            self._accept_thread = None
        with self._lock:
            open_now = list(self._open.items())
        for _, sock in open_now:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread, _ in open_now:
            thread.join(5)
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving ---------------------------------------------------------------------------------

    def _accept(self) -> None:
        while True:
            listener = self._listener
            if listener is None:
                return
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve_tracked, args=(conn,), name="bench-tls-conn", daemon=True)
            with self._lock:
                self._open[thread] = conn
                self.connections += 1
            thread.start()

    def _serve_tracked(self, conn: socket.socket) -> None:
        try:
            self._serve(conn)
        except (OSError, http.client.HTTPException, ValueError):
            pass  # the client went away, or the proxy is stopping
        finally:
            with self._lock:
                self._open.pop(threading.current_thread(), None)
            with contextlib.suppress(OSError):
                conn.close()

    def _serve(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # The client's ClientHello waits here as it would wait for TCP's and TLS's round trips.
        time.sleep(self.handshake_rtts * self.rtt)
        assert self._context is not None
        try:
            tls = self._context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            with self._lock:
                self.handshake_failures += 1
            return
        with self._lock:
            self._open[threading.current_thread()] = tls
        upstream = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=120)
        try:
            reader = tls.makefile("rb")
            while self._exchange(reader, tls, upstream):
                pass
        finally:
            upstream.close()
            with contextlib.suppress(OSError):
                tls.close()

    def _exchange(self, reader: object, tls: ssl.SSLSocket, upstream: http.client.HTTPConnection) -> bool:
        """Forward one request and its answer; False when the client closed (or asked to)."""
        readline = reader.readline  # type: ignore[attr-defined]
        request_line = readline(65537)
        if not request_line or not request_line.strip():
            return False
        method, target, _ = request_line.decode("latin-1").split(" ", 2)
        headers: list[tuple[str, str]] = []
        for _ in range(_MAX_HEADER_LINES):
            line = readline(65537).decode("latin-1")
            if line in ("\r\n", "\n", ""):
                break
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        lowered = {name.lower(): value for name, value in headers}
        length = int(lowered.get("content-length") or 0)
        body = reader.read(length) if length else b""  # type: ignore[attr-defined]
        time.sleep(self.rtt)  # the exchange's round trip
        if upstream.sock is None:
            upstream.connect()
            assert upstream.sock is not None
            upstream.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        forwarded = {name: value for name, value in headers if name.lower() not in _HOP_BY_HOP}
        forwarded["Content-Length"] = str(len(body))
        upstream.request(method, target, body=body, headers=forwarded)
        response = upstream.getresponse()
        payload = response.read()
        answer = {name: value for name, value in response.getheaders() if name.lower() not in _HOP_BY_HOP}
        tls.sendall(http_response(response.status, payload, answer))
        with self._lock:
            self.exchanges += 1
        return lowered.get("connection", "").lower() != "close"
