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

import pytest

from tests.fake_google import FakeGoogle

#: The environment before the fake took it over: for subprocesses that must reach PyPI (pip), not Google.
ORIGINAL_ENVIRON = dict(os.environ)
GOOGLE = FakeGoogle()
GOOGLE.start()
GOOGLE.isolate_env(os.environ)
os.environ.update(GOOGLE.env())


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the fake when the session ends."""
    GOOGLE.stop()


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    """The session's fake Google, with its counters zeroed for this test."""
    GOOGLE.reset_counts()
    return GOOGLE
