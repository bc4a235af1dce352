"""The Google Cloud settings: auth modes, a Composer environment by name, and what its image version implies."""

from __future__ import annotations

from typing import Any

import pytest

from shared.composer import ComposerEnvironment
from shared.config import AirflowSettings, from_environment, from_mapping
from shared.errors import ConfigError

ENVIRONMENT = "projects/acme-data/locations/europe-west1/environments/prod"


def airflow(**settings: Any) -> AirflowSettings:
    return from_mapping({"airflow": settings, "routes": [{"dag_id": "d"}]}, "test").airflow


def test_a_composer_environment_stands_in_for_the_url_and_leaves_auth_to_its_image() -> None:
    settings = airflow(composer_environment=ENVIRONMENT)
    assert (settings.url, settings.auth) == ("", "auto")


def test_without_an_environment_auto_auth_means_none() -> None:
    assert airflow(url="https://airflow.example.com").auth == "none"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "[airflow].url is required (or composer_environment, to read it from Composer, or mwaa_environment)"),
        (
            {"composer_environment": "prod"},
            "[airflow].composer_environment must be projects/PROJECT/locations/REGION/environments/NAME (got 'prod')",
        ),
        (
            {"composer_environment": ENVIRONMENT + "/extra"},
            "composer_environment must be projects/PROJECT/locations/REGION/environments/NAME",
        ),
        ({"url": "https://x.example.com", "auth": "google"}, "[airflow].auth must be one of auto, none"),
        ({"url": "https://x.example.com", "iap_client_id": 12}, "[airflow].iap_client_id must be str, got int"),
    ],
    ids=["nothing-to-reach", "short-name", "trailing-path", "unknown-mode", "client-id-type"],
)
def test_google_setting_errors_name_the_key(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        airflow(**settings)
    assert str(caught.value).startswith("test: ")
    assert message in str(caught.value)


def test_a_route_for_http_requests_cannot_filter_objects() -> None:
    route = {"dag_id": "d", "sources": ["http"], "prefix": "incoming/"}
    with pytest.raises(ConfigError) as caught:
        from_mapping({"airflow": {"url": "https://x.example.com"}, "routes": [route]}, "test")
    assert "test: routes[0] takes HTTP trigger requests (sources has 'http') but also filters objects" in str(
        caught.value
    )


@pytest.mark.parametrize("mode", ["composer", "iap", "iap_jwt"])
def test_google_modes_need_no_password_or_username(mode: str) -> None:
    assert airflow(url="https://airflow.example.com", auth=mode).auth == mode


def test_environment_variables_reach_the_google_keys() -> None:
    config = from_environment(
        {
            "COMPOSER_ENVIRONMENT": ENVIRONMENT,
            "DAG_ID": "ingest",
            "IAP_CLIENT_ID": "123-abc.apps.googleusercontent.com",
            "IAP_JWT_AUDIENCE": "https://airflow.example.com/*",
            "IAP_SERVICE_ACCOUNT": "signer@acme-data.iam.gserviceaccount.com",
        }
    )
    assert (
        config.airflow.composer_environment,
        config.airflow.iap_client_id,
        config.airflow.iap_jwt_audience,
        config.airflow.service_account,
    ) == (
        ENVIRONMENT,
        "123-abc.apps.googleusercontent.com",
        "https://airflow.example.com/*",
        "signer@acme-data.iam.gserviceaccount.com",
    )


def environment(image_version: str) -> ComposerEnvironment:
    return ComposerEnvironment(
        ENVIRONMENT, "https://abc-dot-europe-west1.composer.googleusercontent.com/", image_version, "RUNNING", False
    )


@pytest.mark.parametrize(
    ("image_version", "composer", "airflow_version", "auth"),
    [
        ("composer-1.20.12-airflow-1.10.15", 1, "1.10.15", "iap"),
        ("composer-1.20.12-airflow-2.2.5", 1, "2.2.5", "iap"),
        ("composer-2.9.7-airflow-2.9.3", 2, "2.9.3", "composer"),
        ("composer-3-airflow-2.10.5-build.3", 3, "2.10.5", "composer"),
        ("composer-3-airflow-3.1.0-build.1", 3, "3.1.0", "composer"),
        ("something-else", None, None, "composer"),
    ],
)
def test_image_version_names_composer_airflow_and_auth(
    image_version: str, composer: int | None, airflow_version: str | None, auth: str
) -> None:
    env = environment(image_version)
    assert (env.composer_major, env.airflow_version, env.auth) == (composer, airflow_version, auth)


def test_the_environment_fills_in_url_and_auto_auth() -> None:
    resolved = environment("composer-1.20.12-airflow-1.10.15").apply(airflow(composer_environment=ENVIRONMENT))
    assert (resolved.url, resolved.auth) == ("https://abc-dot-europe-west1.composer.googleusercontent.com", "iap")


def test_a_configured_url_and_auth_win_over_the_environment() -> None:
    settings = airflow(composer_environment=ENVIRONMENT, url="https://airflow.internal.example.com", auth="iap_jwt")
    resolved = environment("composer-3-airflow-3.1.0-build.1").apply(settings)
    assert (resolved.url, resolved.auth) == ("https://airflow.internal.example.com", "iap_jwt")
