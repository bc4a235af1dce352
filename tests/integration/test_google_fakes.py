"""The local Google fakes hold up: real google-auth gets its tokens from FakeGoogle, and the Composer and
IAP proxies let through what Google would, into a real Airflow 3, and refuse the rest as Google does.

google-auth reads GCE_METADATA_HOST when it is first imported, so it runs in a subprocess whose
environment points at the fake and hides anything else (gcloud's ADC file, GOOGLE_APPLICATION_CREDENTIALS).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from google.auth import jwt

from tests.auth_proxy import ComposerProxy, IapProxy
from tests.fake_google import CLOUD_PLATFORM, FakeGoogle
from tests.integration.conftest import Target

AUDIENCE = "https://airflow.example.com"
OTHER_ACCOUNT = "someone-else@test-project.iam.gserviceaccount.com"


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    """A running FakeGoogle."""
    with FakeGoogle() as fake:
        yield fake


def run_google_auth(fake: FakeGoogle, code: str) -> dict[str, Any]:
    """Run ``code`` (which prints one JSON object) in a fresh Python that sees only ``fake`` as Google."""
    env = {**os.environ, **fake.env()}
    fake.isolate_env(env)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def metadata(fake: FakeGoogle, path: str, **params: str) -> requests.Response:
    """GET ``/computeMetadata/v1/<path>`` as a function on Cloud Run would."""
    url = f"{fake.url}/computeMetadata/v1/{path}"
    return requests.get(url, params=params, headers={"Metadata-Flavor": "Google"}, timeout=5)


def access_token(fake: FakeGoogle) -> str:
    """A fresh access token for the fake's service account."""
    token: str = metadata(fake, "instance/service-accounts/default/token").json()["access_token"]
    return token


def id_token(fake: FakeGoogle, audience: str) -> str:
    """A fresh ID token for ``audience``, with the email claims."""
    return metadata(fake, "instance/service-accounts/default/identity", audience=audience, format="full").text


def sign_jwt(
    fake: FakeGoogle, claims: dict[str, Any], *, email: str | None = None, token: str | None = None
) -> requests.Response:
    """Call IAM signJwt for ``email`` (default: the fake's own account); return the response."""
    url = f"{fake.url}/v1/projects/-/serviceAccounts/{email or fake.service_account}:signJwt"
    headers = {"Authorization": f"Bearer {token or access_token(fake)}"}
    return requests.post(url, json={"payload": json.dumps(claims)}, headers=headers, timeout=5)


def self_signed_jwt(fake: FakeGoogle, audience: str, lifetime: int = 3600) -> str:
    """A service account JWT for IAP, signed through signJwt."""
    now = int(time.time())
    sa = fake.service_account
    claims = {"iss": sa, "sub": sa, "aud": audience, "iat": now, "exp": now + lifetime}
    signed: str = sign_jwt(fake, claims).json()["signedJwt"]
    return signed


def get_dags(proxy: ComposerProxy | IapProxy, token: str | None) -> requests.Response:
    """GET the DAG list through ``proxy``, with ``token`` as bearer credential (none if ``None``)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{proxy.url}/api/v2/dags?limit=1", headers=headers, allow_redirects=False, timeout=30)


def test_google_auth_default_gets_its_access_token_from_the_fake(google: FakeGoogle) -> None:
    result = run_google_auth(
        google,
        f"""
import json, google.auth, google.auth.transport.requests
credentials, project = google.auth.default(scopes=[{CLOUD_PLATFORM!r}])
credentials.refresh(google.auth.transport.requests.Request())
print(json.dumps({{"token": credentials.token, "project": project, "email": credentials.service_account_email}}))
""",
    )
    assert google.is_valid_access_token(result["token"])
    assert result["project"] == google.project
    assert result["email"] == google.service_account
    assert google.mints == {"access_token": 1}
    assert google.outbound == []


def test_fetch_id_token_credentials_gets_an_id_token_that_verifies(google: FakeGoogle) -> None:
    result = run_google_auth(
        google,
        f"""
import json, google.auth.transport.requests, google.oauth2.id_token
request = google.auth.transport.requests.Request()
credentials = google.oauth2.id_token.fetch_id_token_credentials({AUDIENCE!r}, request=request)
credentials.refresh(request)
print(json.dumps({{"token": credentials.token}}))
""",
    )
    claims = jwt.decode(result["token"], certs=google.public_key_pem, audience=AUDIENCE)
    assert claims["iss"] == "https://accounts.google.com"
    assert (claims["email"], claims["email_verified"]) == (google.service_account, True)
    assert claims["sub"] == claims["azp"] == google.unique_id
    assert jwt.decode_header(result["token"])["kid"] == google.key_id
    assert google.mints == {"id_token": 1}


def test_google_auth_lookup_of_regional_access_boundary_is_refused_locally(google: FakeGoogle) -> None:
    # before_request() (what AuthorizedSession and requests auth call) starts a background lookup at
    # iamcredentials.googleapis.com, which has no endpoint override: isolate_env's proxy catches it.
    result = run_google_auth(
        google,
        """
import json, threading, time, google.auth, google.auth.transport.requests
credentials, _ = google.auth.default()
headers = {}
credentials.before_request(google.auth.transport.requests.Request(), "GET", "http://127.0.0.1/x", headers)
deadline = time.monotonic() + 20
while threading.active_count() > 1 and time.monotonic() < deadline:
    time.sleep(0.05)
print(json.dumps(headers))
""",
    )
    scheme, _, token = result["authorization"].partition(" ")
    assert scheme == "Bearer"
    assert google.is_valid_access_token(token)
    assert google.outbound == ["iamcredentials.googleapis.com:443"]


def test_metadata_server_wants_its_flavor_header(google: FakeGoogle) -> None:
    bare = requests.get(f"{google.url}/computeMetadata/v1/project/project-id", timeout=5)
    assert bare.status_code == 403
    assert metadata(google, "project/project-id").text == google.project
    assert metadata(google, "instance/attributes/agent-identity").status_code == 404
    assert google.mints == {}


def test_sign_jwt_signs_for_allowed_accounts_with_a_valid_token(google: FakeGoogle) -> None:
    claims = {"iss": google.service_account, "aud": AUDIENCE, "iat": int(time.time())}
    signed = sign_jwt(google, claims).json()
    assert jwt.decode(signed["signedJwt"], certs=google.public_key_pem, audience=AUDIENCE)["exp"] > time.time()
    assert signed["keyId"] == google.key_id

    assert sign_jwt(google, claims, token="ya29.not-minted-here").json()["error"]["status"] == "UNAUTHENTICATED"
    denied = sign_jwt(google, claims, email=OTHER_ACCOUNT)
    assert denied.status_code == 403
    assert "roles/iam.serviceAccountTokenCreator" in denied.json()["error"]["message"]
    google.allow_signing(OTHER_ACCOUNT)
    assert sign_jwt(google, claims, email=OTHER_ACCOUNT).status_code == 200
    not_an_object = requests.post(
        f"{google.url}/v1/projects/-/serviceAccounts/{google.service_account}:signJwt",
        json={"payload": "[1, 2]"},
        headers={"Authorization": f"Bearer {access_token(google)}"},
        timeout=5,
    )
    assert not_an_object.status_code == 400
    assert google.mints["sign_jwt"] == 2


def test_composer_api_returns_known_environments_to_valid_tokens(google: FakeGoogle) -> None:
    environment = google.add_environment(
        "orders", "https://abc-dot-us-central1.composer.example", "composer-2.9.7-airflow-2.9.3"
    )
    url = f"{google.url}/v1/{environment['name']}"
    token = access_token(google)
    got = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5).json()
    assert got["config"]["airflowUri"] == "https://abc-dot-us-central1.composer.example"
    assert (got["state"], got["config"]["softwareConfig"]["imageVersion"]) == (
        "RUNNING",
        "composer-2.9.7-airflow-2.9.3",
    )

    missing = requests.get(url + "-gone", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert (missing.status_code, missing.json()["error"]["status"]) == (404, "NOT_FOUND")
    assert requests.get(url, headers={"Authorization": "Bearer ya29.forged"}, timeout=5).status_code == 401


def test_composer_proxy_admits_google_access_tokens_of_allowed_identities(
    airflows: dict[str, Target], google: FakeGoogle
) -> None:
    airflow = airflows["3"].airflow
    with ComposerProxy(airflow, google) as proxy:
        assert get_dags(proxy, access_token(google)).status_code == 200
        assert get_dags(proxy, None).status_code == 401
        assert get_dags(proxy, "ya29.forged").json()["error"]["status"] == "UNAUTHENTICATED"
    with ComposerProxy(airflow, google, allowed={OTHER_ACCOUNT}) as proxy:
        refused = get_dags(proxy, access_token(google))
        assert refused.status_code == 403
        assert refused.json()["error"]["status"] == "PERMISSION_DENIED"


def test_iap_proxy_admits_id_tokens_for_its_client_and_self_signed_jwts(
    airflows: dict[str, Target], google: FakeGoogle
) -> None:
    airflow = airflows["3"].airflow
    with IapProxy(airflow, google) as proxy:
        redirect = get_dags(proxy, None)
        assert redirect.status_code == 302
        assert f"client_id={proxy.client_id}&" in redirect.headers["Location"]

        assert get_dags(proxy, id_token(google, proxy.client_id)).status_code == 200
        assert get_dags(proxy, self_signed_jwt(google, f"{proxy.url}/*")).status_code == 200
        assert proxy.accepted == {"id_token": 1, "jwt": 1}

        wrong_audience = get_dags(proxy, id_token(google, AUDIENCE))
        assert wrong_audience.status_code == 401
        assert wrong_audience.text.startswith("Invalid IAP credentials: JWT audience doesn't match this application")
        assert get_dags(proxy, self_signed_jwt(google, "http://elsewhere/*")).status_code == 401
        assert get_dags(proxy, self_signed_jwt(google, f"{proxy.url}/*", lifetime=7200)).status_code == 401

    with IapProxy(airflow, google, allowed={OTHER_ACCOUNT}) as proxy:
        forbidden = get_dags(proxy, id_token(google, proxy.client_id))
        assert forbidden.status_code == 403
        assert "You don't have access" in forbidden.text


def test_iap_proxy_with_a_google_managed_client_refuses_id_tokens_but_not_jwts(
    airflows: dict[str, Target], google: FakeGoogle
) -> None:
    with IapProxy(airflows["3"].airflow, google, accept_id_tokens=False) as proxy:
        assert get_dags(proxy, id_token(google, proxy.client_id)).status_code == 401
        assert get_dags(proxy, self_signed_jwt(google, f"{proxy.url}/*")).status_code == 200
        assert proxy.accepted == {"jwt": 1}
