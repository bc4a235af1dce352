"""The HTTP transport takes proxies and the CA bundle from the environment, reading it once, not on every call."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from shared.credentials import NoCredentials
from shared.transport import ApiCall, HttpTransport
from tests.fake_google import PROXY_VARIABLES
from tests.loopback import Handler, LoopbackServer, Reply

TIMEOUT = (5.0, 5.0)
CALL = ApiCall("POST", "/dags/d/dagRuns", body={"dag_run_id": "r"})


class _RecordingHandler(Handler):
    owner: RecordingServer

    def respond(self, body: bytes) -> None:
        self.owner.request_lines.append(f"{self.command} {self.path}")
        raise Reply(200, {"dag_run_id": "r"})


class RecordingServer(LoopbackServer):
    """Answers 200 to anything and keeps each request line: through a proxy the line holds the absolute URL."""

    handler = _RecordingHandler

    def __init__(self) -> None:
        super().__init__()
        self.request_lines: list[str] = []


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in (*PROXY_VARIABLES, "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    with RecordingServer() as running:
        yield running


def test_calls_go_through_the_proxy_the_environment_names(server: RecordingServer, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HTTP_PROXY", server.url)
    transport = HttpTransport("http://airflow.example.internal:8080", NoCredentials())

    response = transport.send("v2", CALL, TIMEOUT)

    assert response.status == 200
    assert server.request_lines == ["POST http://airflow.example.internal:8080/api/v2/dags/d/dagRuns"]


def test_no_proxy_is_honoured(server: RecordingServer, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # discard: a call through it would fail
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    transport = HttpTransport(server.url, NoCredentials())

    assert transport.send("v2", CALL, TIMEOUT).status == 200
    assert server.request_lines == ["POST /api/v2/dags/d/dagRuns"]


def test_the_environment_is_read_when_the_transport_is_built_not_per_call(
    server: RecordingServer, monkeypatch: pytest.MonkeyPatch
):
    transport = HttpTransport(server.url, NoCredentials())
    reads = []
    original = requests.Session.merge_environment_settings

    def counting(self: requests.Session, *args: Any) -> Any:
        reads.append(args[0])
        return original(self, *args)

    monkeypatch.setattr(requests.Session, "merge_environment_settings", counting)
    for _ in range(3):
        assert transport.send("v2", CALL, TIMEOUT).status == 200

    assert reads == []
    assert len(server.request_lines) == 3


def test_verify_false_reaches_the_send(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    unverified = HttpTransport("https://airflow.example.internal", NoCredentials(), verify=False).environment
    assert unverified["verify"] is False
    bundled = HttpTransport("https://airflow.example.internal", NoCredentials()).environment
    assert bundled["verify"] == "/etc/ssl/certs/ca-certificates.crt"
