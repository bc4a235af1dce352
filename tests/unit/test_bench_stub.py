"""The benchmark's stub and TLS proxy (bench/): what the comparisons rely on, checked without timing anything.

A stub that answered in two writes would make every client wait for a delayed ACK (tens of milliseconds)
and the benchmark would measure the stub; one that miscounted would misreport requests per event.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import requests

from bench.stub import PASSWORD, USERNAME, AirflowStub
from bench.tls_proxy import DelayTlsProxy


@pytest.fixture
def stub() -> Iterator[AirflowStub]:
    with AirflowStub() as server:
        yield server


def _token(session: requests.Session, url: str) -> str:
    answer = session.post(f"{url}/auth/token", json={"username": USERNAME, "password": PASSWORD}, timeout=10)
    assert answer.status_code == 201
    return str(answer.json()["access_token"])


def test_the_whole_response_arrives_in_the_first_read(stub: AirflowStub) -> None:
    with socket.create_connection(("127.0.0.1", stub.port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"GET /api/v2/version HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        # Headers and body in separate writes would come back in separate reads: the body waits for our ACK.
        first = sock.recv(65536)
    head, _, body = first.partition(b"\r\n\r\n")
    length = int(
        next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    assert first.startswith(b"HTTP/1.1 200")
    assert len(body) == length > 0


def test_each_response_is_one_write_and_each_request_is_counted_by_method_and_path(stub: AirflowStub) -> None:
    session = requests.Session()
    token = _token(session, stub.url)
    headers = {"Authorization": f"Bearer {token}"}
    for run in ("r1", "r2"):
        created = session.post(
            f"{stub.url}/api/v2/dags/d/dagRuns", json={"dag_run_id": run}, headers=headers, timeout=10
        )
        assert created.status_code == 200
    assert session.get(f"{stub.url}/api/v2/version", timeout=10).status_code == 200
    # The parent's control requests are not the client's traffic.
    assert session.get(f"{stub.url}/__bench/counts", timeout=10).json()["total"] == 4

    assert stub.counts == {"POST /auth/token": 1, "POST /api/v2/dags/d/dagRuns": 2, "GET /api/v2/version": 1}
    assert stub.response_writes == 5


def test_a_client_without_a_token_or_repeating_a_run_id_is_refused(stub: AirflowStub) -> None:
    session = requests.Session()
    url = f"{stub.url}/api/v2/dags/d/dagRuns"
    assert session.post(url, json={"dag_run_id": "r"}, timeout=10).status_code == 401
    headers = {"Authorization": f"Bearer {_token(session, stub.url)}"}
    assert session.post(url, json={"dag_run_id": "r"}, headers=headers, timeout=10).status_code == 200
    assert session.post(url, json={"dag_run_id": "r"}, headers=headers, timeout=10).status_code == 409
    assert stub.snapshot()["duplicates"] == 1


def test_the_tls_proxy_forwards_to_a_verifying_client_and_counts_its_connections(stub: AirflowStub) -> None:
    with DelayTlsProxy(stub.url, rtt=0.0, handshake_rtts=0) as proxy:
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{proxy.url}/api/v2/version", timeout=10)  # its CA is in no default bundle
        session = requests.Session()
        # Per request: a Session's own verify loses to REQUESTS_CA_BUNDLE from the environment.
        for _ in range(3):
            answer = session.get(f"{proxy.url}/api/v2/version", verify=str(proxy.bundle_file), timeout=10)
            assert answer.json()["version"]
        assert proxy.stats() == {"connections": 2, "exchanges": 3, "handshake_failures": 1}
    assert stub.counts == {"GET /api/v2/version": 3}
