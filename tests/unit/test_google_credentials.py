"""The Google credential providers with the real google-auth, against the fake metadata server and IAM.

The fake (``tests/conftest.py``) is reached through ``GCE_METADATA_HOST`` and gcloud's endpoint
overrides, exactly as on Cloud Run; only the clock is ours to move.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from google.auth import jwt

from shared import credentials
from shared.errors import CredentialError
from shared.google_credentials import (
    GoogleAccessToken,
    IapIdToken,
    IapServiceAccountJwt,
    _ClippedRequest,
    discover_iap_client_id,
    google_api_base,
)
from tests.fake_airflow import response
from tests.fake_google import FakeGoogle

TIMEOUT = (2.0, 5.0)
CLIENT_ID = "1234-iapclient.apps.googleusercontent.com"
IAP_URL = "https://airflow.example.com"


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def test_access_token_comes_from_the_metadata_server_once(google: FakeGoogle, session: requests.Session) -> None:
    access = GoogleAccessToken()
    for _ in range(5):
        access.before_request(session, TIMEOUT)
    assert google.mints["access_token"] == 1
    assert google.access_token_email(access.token or "") == google.service_account
    assert access.identity == google.service_account
    assert access.kind == "auth.compute_engine.credentials.Credentials"
    assert google.service_account in access.describe()


def test_concurrent_first_events_mint_one_token(google: FakeGoogle, session: requests.Session) -> None:
    # google-auth does not lock its own refresh: eight threads on a fresh credential would mint eight.
    access = GoogleAccessToken()
    barrier = threading.Barrier(8)

    def first_event() -> None:
        barrier.wait()
        access.before_request(session, TIMEOUT)

    threads = [threading.Thread(target=first_event) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert google.mints["access_token"] == 1


def test_the_token_is_refreshed_only_within_the_margin_of_its_expiry(
    google: FakeGoogle, session: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    access = GoogleAccessToken()
    access.before_request(session, TIMEOUT)
    first, expiry = access.token, access.expiry
    assert expiry is not None
    monkeypatch.setattr(credentials, "utcnow", lambda: expiry - credentials.EXPIRY_MARGIN - timedelta(seconds=1))
    access.before_request(session, TIMEOUT)
    assert (google.mints["access_token"], access.token) == (1, first)
    monkeypatch.setattr(credentials, "utcnow", lambda: expiry - credentials.EXPIRY_MARGIN + timedelta(seconds=1))
    access.before_request(session, TIMEOUT)
    assert google.mints["access_token"] == 2
    assert access.token != first


def test_id_token_has_the_iap_client_id_as_audience(google: FakeGoogle, session: requests.Session) -> None:
    provider = IapIdToken(IAP_URL, CLIENT_ID)
    provider.before_request(session, TIMEOUT)
    provider.before_request(session, TIMEOUT)
    claims = jwt.decode(provider.token, certs=google.public_key_pem, audience=CLIENT_ID)
    assert (claims["email"], google.mints["id_token"]) == (google.service_account, 1)
    assert provider.expiry is not None
    assert provider.expiry.tzinfo is not None
    assert "(configured)" in provider.describe()


class _Answer(requests.adapters.BaseAdapter):
    """One canned answer for every request, and the requests it saw."""

    def __init__(self, answer: requests.Response) -> None:
        super().__init__()
        self.answer = answer
        self.seen: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.seen.append(request)
        self.answer.request = request
        return self.answer

    def close(self) -> None:
        return None


def iap_redirect(query: str) -> requests.Response:
    return response(302, headers={"Location": f"https://accounts.google.com/o/oauth2/v2/auth?{query}"})


def test_the_client_id_is_discovered_once_from_the_sign_in_redirect(
    google: FakeGoogle, session: requests.Session
) -> None:
    adapter = _Answer(iap_redirect(f"client_id={CLIENT_ID}&response_type=code&scope=openid+email"))
    session.mount(IAP_URL, adapter)
    provider = IapIdToken(IAP_URL)
    provider.before_request(session, TIMEOUT)
    provider.invalidate()
    provider.before_request(session, TIMEOUT)
    assert provider.client_id == CLIENT_ID
    assert len(adapter.seen) == 1
    assert "Authorization" not in adapter.seen[0].headers
    assert google.mints["id_token"] == 2
    assert "discovered from IAP's sign-in redirect" in provider.describe()


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (response(200, {"ok": True}), "answered 200 without a redirect to Google sign-in"),
        (iap_redirect("response_type=code"), "answered 302 without a redirect to Google sign-in"),
    ],
    ids=["no-redirect", "redirect-without-client-id"],
)
def test_an_undiscoverable_client_id_names_the_setting(
    session: requests.Session, answer: requests.Response, why: str
) -> None:
    session.mount(IAP_URL, _Answer(answer))
    with pytest.raises(CredentialError) as caught:
        discover_iap_client_id(session, IAP_URL, TIMEOUT)
    assert why in str(caught.value)
    assert "Set [airflow].iap_client_id" in str(caught.value)
    assert not caught.value.retryable


def test_self_signed_jwt_is_signed_by_iam_for_the_runtime_service_account(
    google: FakeGoogle, session: requests.Session
) -> None:
    provider = IapServiceAccountJwt(IAP_URL + "/some/path", GoogleAccessToken())
    for _ in range(3):
        provider.before_request(session, TIMEOUT)
    claims = jwt.decode(provider.token, certs=google.public_key_pem, audience="https://airflow.example.com/*")
    assert claims["iss"] == claims["sub"] == google.service_account
    assert claims["exp"] - claims["iat"] == 3600
    assert (google.mints["sign_jwt"], google.mints["access_token"]) == (1, 1)
    assert f"JWT for {google.service_account} signed through IAM Credentials" in provider.describe()


def test_signing_for_another_account_without_token_creator_names_the_role(
    google: FakeGoogle, session: requests.Session
) -> None:
    other = "airflow-caller@test-project.iam.gserviceaccount.com"
    provider = IapServiceAccountJwt(IAP_URL, GoogleAccessToken(), service_account=other)
    with pytest.raises(CredentialError) as caught:
        provider.before_request(session, TIMEOUT)
    assert f"needs roles/iam.serviceAccountTokenCreator on {other}" in str(caught.value)
    assert not caught.value.retryable


def test_gcloud_endpoint_overrides_are_honoured() -> None:
    assert google_api_base("composer", {}) == "https://composer.googleapis.com/"
    env = {"CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPOSER": "https://composer.internal.example.com"}
    assert google_api_base("composer", env) == "https://composer.internal.example.com/"


def test_google_auth_calls_share_one_time_budget(session: requests.Session) -> None:
    from google.auth.exceptions import TransportError

    # A listener that never answers: the first call waits out the whole budget, the next is refused at once.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        request = _ClippedRequest(session, (0.3, 0.3))
        with pytest.raises(TransportError):
            request(url, timeout=30)
        with pytest.raises(TransportError, match="out of time before GET"):
            request(url, timeout=30)


def test_reprs_and_logs_never_show_the_token(
    google: FakeGoogle, session: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    provider = IapServiceAccountJwt(IAP_URL, GoogleAccessToken())
    with caplog.at_level("DEBUG"):
        provider.before_request(session, TIMEOUT)
    assert provider.token
    assert provider.token not in repr(provider)
    assert provider.token not in caplog.text
    assert json.dumps(provider.token) not in caplog.text
