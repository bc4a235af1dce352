"""AWS on loopback for the Lambda tests: moto's server, and a Lambda's environment pointed at it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import pytest
from moto.server import ThreadedMotoServer

from scripts.local_airflow import free_port


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's server (S3, SNS, SQS, STS, Secrets Manager) on a free loopback port; yields its URL."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def use_lambda_environment(
    monkeypatch: pytest.MonkeyPatch,
    *,
    endpoint: str,
    access_key: str,
    secret_key: str,
    region: str,
    extra: Mapping[str, str] | None = None,
) -> None:
    """The Lambda's environment: its own credentials, every AWS endpoint at ``endpoint``, nothing from a profile."""
    for name, value in {
        **(extra or {}),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": secret_key,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
