"""One fake Google for the whole test session, in place before anything imports google-auth.

google-auth reads ``GCE_METADATA_HOST`` once, when its metadata module is first imported; so the fake
starts here, at collection, and the official override variables point this process (and every
subprocess it starts: functions-framework, the CLI) at it. Nothing on the machine shadows it: no
``GOOGLE_APPLICATION_CREDENTIALS``, no gcloud configuration, and any request that would leave
loopback is sent to the fake, which refuses it (see ``FakeGoogle.isolate_env``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts import tf_schema
from tests.fake_google import PROXY_VARIABLES, FakeGoogle

#: The environment before the fake took it over: for subprocesses that must reach PyPI (pip), not Google.
ORIGINAL_ENVIRON = dict(os.environ)
GOOGLE = FakeGoogle()
GOOGLE.start()
GOOGLE.isolate_env(os.environ)
os.environ.update(GOOGLE.env())


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the fake when the session ends."""
    GOOGLE.stop()


def reach_pypi(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give this process's subprocesses the proxy settings it started with: pip must reach the package index,
    not the fake Google every other outbound request is sent to."""
    for name in PROXY_VARIABLES:
        if name in ORIGINAL_ENVIRON:
            monkeypatch.setenv(name, ORIGINAL_ENVIRON[name])
        else:
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def provider_wheels() -> dict[str, Path]:
    """The Terraform providers' pinned bindings (:mod:`scripts.tf_schema`), downloaded from PyPI on first use."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        reach_pypi(monkeypatch)
        return {name: tf_schema.ensure_wheel(provider) for name, provider in tf_schema.PROVIDERS.items()}


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    """The session's fake Google, with its counters zeroed for this test."""
    GOOGLE.reset_counts()
    return GOOGLE
