"""Google Cloud end to end: CloudEvents through a real functions-framework process, google-auth against
the fake metadata server and IAM, and Composer- or IAP-like proxies in front of the real local Airflow.

Each way in gets the same three events (a GCS upload, a Pub/Sub message, a Cloud Storage Pub/Sub
notification), first in one CloudEvents content mode and then redelivered in the other: three runs,
never six, and one token mint for the lot.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from shared.cli import main as cli_main
from shared.config import from_mapping
from shared.dispatch import plan_payload
from shared.runtime import build_dispatcher
from tests.auth_proxy import ComposerProxy, IapProxy
from tests.fake_google import FakeGoogle
from tests.function_process import FunctionProcess
from tests.integration.conftest import DEMO_DAG, Target
from tests.support import load_event

CLIENT_ID = "1234-iapclient.apps.googleusercontent.com"
ENVIRONMENT = "projects/test-project/locations/us-central1/environments/{name}"


@dataclass(frozen=True)
class Way:
    """One way into Airflow: the auth settings, the proxy in front of it, and the mints it should cost."""

    name: str
    major: str
    proxy: str | None
    airflow: dict[str, Any]
    mints: dict[str, int]
    image_version: str | None = None
    proxy_options: dict[str, Any] = field(default_factory=dict)


WAYS = [
    Way("composer-airflow3", "3", "composer", {"auth": "composer"}, {"access_token": 1}),
    Way("composer-airflow2", "2", "composer", {"auth": "composer"}, {"access_token": 1}),
    Way(
        "composer-by-name",
        "3",
        "composer",
        {},
        {"access_token": 1},
        image_version="composer-3-airflow-3.1.8-build.1",
    ),
    Way("iap-id-token", "3", "iap", {"auth": "iap", "iap_client_id": CLIENT_ID}, {"id_token": 1}),
    Way("iap-id-token-discovered", "3", "iap", {"auth": "iap"}, {"id_token": 1}),
    Way(
        "composer1-by-name-iap",
        "2",
        "iap",
        {},
        {"access_token": 1, "id_token": 1},
        image_version="composer-1.20.12-airflow-2.2.5",
    ),
    Way(
        "iap-jwt-google-managed-client",
        "3",
        "iap",
        {"auth": "iap_jwt"},
        {"access_token": 1, "sign_jwt": 1},
        proxy_options={"accept_id_tokens": False},
    ),
    Way("self-managed-jwt", "3", None, {}, {}),
]


@contextlib.contextmanager
def front_door(way: Way, target: Target, google: FakeGoogle) -> Iterator[ComposerProxy | IapProxy | None]:
    """The proxy ``way`` names, started in front of ``target``'s Airflow."""
    if way.proxy is None:
        yield None
        return
    proxy_class = ComposerProxy if way.proxy == "composer" else IapProxy
    options = {"client_id": CLIENT_ID, **way.proxy_options} if way.proxy == "iap" else way.proxy_options
    with proxy_class(target.airflow, google, **options) as proxy:
        yield proxy


def airflow_settings(way: Way, target: Target, proxy: ComposerProxy | IapProxy | None, google: FakeGoogle) -> dict:
    """The ``[airflow]`` table for ``way``: a URL (or a Composer environment that names it) and auth."""
    if proxy is None:
        return {
            "url": target.airflow.url,
            "auth": "jwt",
            "username": target.airflow.username,
            "password_env": target.password_env,
        }
    settings: dict[str, Any] = {**way.airflow, "deadline": 60}
    if way.image_version:
        name = ENVIRONMENT.format(name=way.name)
        google.add_environment(name, proxy.url, way.image_version)
        return {**settings, "composer_environment": name}
    return {**settings, "url": proxy.url}


def three_events(unique: str) -> list[dict[str, Any]]:
    """A GCS upload, a Pub/Sub message and a Cloud Storage notification, new to Airflow."""
    upload = load_event("gcs_finalized.cloudevent.json")
    upload["id"] = f"upload-{unique}"
    upload["data"] |= {"bucket": f"landing-{unique}", "name": f"incoming/ünï côdé/{unique}+1%.csv"}
    upload["subject"] = f"objects/{upload['data']['name']}"

    message = load_event("pubsub_message.cloudevent.json")
    message["id"] = message["data"]["message"]["messageId"] = f"msg-{unique}"
    message["data"]["message"]["attributes"] = {"pipeline": unique}

    notification = load_event("pubsub_gcs_notification.cloudevent.json")
    resource = {"bucket": f"landing-{unique}", "name": f"notified/{unique}.csv", "generation": "7", "size": "10"}
    notification["id"] = notification["data"]["message"]["messageId"] = f"note-{unique}"
    notification["data"]["message"]["data"] = base64.b64encode(json.dumps(resource).encode()).decode()
    notification["data"]["message"]["attributes"] |= {"bucketId": resource["bucket"], "objectId": resource["name"]}
    return [upload, message, notification]


def routes(unique: str) -> list[dict[str, Any]]:
    return [
        {"name": "uploads", "dag_id": DEMO_DAG, "sources": ["gcs"], "bucket": f"landing-{unique}"},
        {"name": "messages", "dag_id": DEMO_DAG, "sources": ["pubsub"], "attributes": {"pipeline": unique}},
    ]


def google_env(google: FakeGoogle) -> dict[str, str]:
    """What the function process needs to find the fake, and nothing that could shadow it."""
    return {**google.env(), "CLOUDSDK_CONFIG": os.environ["CLOUDSDK_CONFIG"]}


@pytest.mark.parametrize("way", WAYS, ids=[way.name for way in WAYS])
def test_each_event_becomes_one_run_through_each_way_in(
    way: Way, airflows: dict[str, Target], google: FakeGoogle, unique: str, tmp_path: Path
) -> None:
    target = airflows[way.major]
    events = three_events(unique)
    with front_door(way, target, google) as proxy:
        raw = {"airflow": airflow_settings(way, target, proxy, google), "routes": routes(unique)}
        config_path = tmp_path / "config.json"
        config_path.write_text(json.dumps(raw))
        google.reset_counts()
        env = {**google_env(google), "DAG_TRIGGER_CONFIG": str(config_path)}
        if proxy is None:
            env[target.password_env] = os.environ[target.password_env]
        with FunctionProcess("trigger_dag", "cloudevent", env, tmp_path / "function.log") as function:
            first = [
                function.post_structured(events[0]),
                function.post_binary(events[1]),
                function.post_binary(events[2]),
            ]
            again = [
                function.post_binary(events[0]),
                function.post_structured(events[1]),
                function.post_structured(events[2]),
            ]
            assert [r.status_code for r in first + again] == [200] * 6, function.log_text()[-3000:]
            outcomes = [line["outcome"] for line in function.log_lines() if "outcome" in line]
            log_text = function.log_text()
            mints = {kind: count for kind, count in google.mints.items() if count}
    assert sorted(outcomes) == ["already_triggered"] * 3 + ["created"] * 3
    # The run ids the function derived, worked out here from the same events.
    config = from_mapping({**raw, "airflow": {"url": "http://127.0.0.1:9"}}, "test")
    run_ids = [request.dag_run_id for event in events for request in plan_payload(event, config).requests]
    assert len(set(run_ids)) == 3
    assert [target.runs_with_id(DEMO_DAG, run_id) for run_id in run_ids] == [1, 1, 1]
    assert mints == way.mints
    assert "ya29." not in log_text  # the fake's access tokens
    assert "Bearer" not in log_text
    if isinstance(proxy, IapProxy):
        assert sum(proxy.accepted.values()) >= 6


def test_the_dag_receives_the_object_name_from_data_not_the_percent_encoded_subject(
    airflows: dict[str, Target], google: FakeGoogle, unique: str, tmp_path: Path
) -> None:
    target = airflows["3"]
    upload = three_events(unique)[0]
    with ComposerProxy(target.airflow, google) as proxy:
        config_path = tmp_path / "config.json"
        raw = {"airflow": {"url": proxy.url, "auth": "composer"}, "routes": routes(unique)}
        config_path.write_text(json.dumps(raw))
        env = {**google_env(google), "DAG_TRIGGER_CONFIG": str(config_path)}
        with FunctionProcess("trigger_dag", "cloudevent", env, tmp_path / "function.log") as function:
            assert function.post_binary(upload).status_code == 200
    config = from_mapping({**raw, "airflow": {"url": "http://127.0.0.1:9"}}, "test")
    (request,) = plan_payload(upload, config).requests
    status, run = target.airflow.request("GET", f"/api/v2/dags/{DEMO_DAG}/dagRuns/{request.dag_run_id}")
    assert status == 200, run
    assert run["conf"]["key"] == upload["data"]["name"]


@dataclass(frozen=True)
class Refusal:
    """A proxy that refuses us, and what the error must tell the user to do."""

    name: str
    proxy: str
    auth: str
    options: dict[str, Any]
    advice: tuple[str, ...]


REFUSALS = [
    Refusal("composer-not-allowed", "composer", "composer", {"allowed": set()}, ("roles/composer.user", "Op")),
    Refusal(
        "iap-not-allowed",
        "iap",
        "iap",
        {"allowed": set(), "client_id": CLIENT_ID},
        ("roles/iap.httpsResourceAccessor",),
    ),
    Refusal(
        "iap-id-token-refused",
        "iap",
        "iap",
        {"accept_id_tokens": False, "client_id": CLIENT_ID},
        ("programmatic_clients", "auth = 'iap_jwt'"),
    ),
]


@pytest.mark.parametrize("refusal", REFUSALS, ids=[r.name for r in REFUSALS])
def test_a_refusal_names_what_is_missing(
    refusal: Refusal, airflows: dict[str, Target], google: FakeGoogle, unique: str
) -> None:
    proxy_class = ComposerProxy if refusal.proxy == "composer" else IapProxy
    with proxy_class(airflows["3"].airflow, google, **refusal.options) as proxy:
        settings = {"url": proxy.url, "auth": refusal.auth, "deadline": 10}
        config = from_mapping({"airflow": settings, "routes": routes(unique)}, "test")
        report = build_dispatcher(config).run(plan_payload(three_events(unique)[0], config))
    (failure,) = report.failures
    assert not failure.error.retryable
    for advice in refusal.advice:
        assert advice in str(failure.error)


@pytest.mark.parametrize("private", [False, True], ids=["public-ip", "private-ip"])
def test_doctor_shows_the_environment_the_identity_and_the_dag(
    private: bool, airflows: dict[str, Target], google: FakeGoogle, tmp_path: Path
) -> None:
    name = ENVIRONMENT.format(name=f"doctor-{private}")
    with ComposerProxy(airflows["3"].airflow, google) as proxy:
        google.add_environment(name, proxy.url, "composer-3-airflow-3.1.8-build.1", private=private)
        config = tmp_path / "config.json"
        config.write_text(json.dumps({"airflow": {"composer_environment": name}, "routes": [{"dag_id": DEMO_DAG}]}))
        out = io.StringIO()
        assert cli_main(["doctor", "--config", str(config)], out=out) == 0
    # Columns are padded to the longest check name; one space is enough to read the table.
    table = re.sub(" +", " ", out.getvalue())
    image = "composer-3-airflow-3.1.8-build.1"
    assert f"ok composer {name}: RUNNING, image {image} (Composer 3, Airflow 3.1.8)" in table
    identity = f"auth.compute_engine.credentials.Credentials for {google.service_account}"
    assert f"ok google identity auth = 'composer': {identity}" in table
    assert "scopes https://www.googleapis.com/auth/cloud-platform" in table
    assert f"ok reachable {proxy.url} speaks API v2" in table
    assert f"ok dag {DEMO_DAG}" in table
    assert ("note network Private IP environment" in table) is private
    assert google.mints["access_token"] == 1


def test_doctor_names_a_missing_environment_at_once(google: FakeGoogle, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    name = ENVIRONMENT.format(name="no-such-environment")
    config.write_text(json.dumps({"airflow": {"composer_environment": name}, "routes": [{"dag_id": DEMO_DAG}]}))
    out = io.StringIO()
    assert cli_main(["doctor", "--config", str(config)], out=out) == 1
    assert f"FAIL composer [airflow].composer_environment: {name} does not exist" in re.sub(" +", " ", out.getvalue())
