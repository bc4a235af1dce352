"""A Cloud Composer environment by name: its Airflow URL, and which auth mode its image calls for.

Read once through the Composer REST API (``GET v1/{name}``) over the client's own session with the
runtime service account's access token; no Composer SDK. A configured ``url`` still wins.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from typing import Any

import requests

from shared.config import AirflowSettings
from shared.errors import ConfigError, CredentialError
from shared.google_credentials import GoogleAccessToken, google_api_base

log = logging.getLogger("dag_trigger.composer")

# composer-1.20.12-airflow-1.10.15, composer-2.9.7-airflow-2.9.3, composer-3-airflow-2.10.5-build.3
_IMAGE_VERSION = re.compile(r"composer-(?P<composer>\d+)(?:\.[\w.]+)?-airflow-(?P<airflow>\d+(?:\.\d+)*)")


@dataclass(frozen=True)
class ComposerEnvironment:
    """What this project needs to know of a Composer environment."""

    name: str
    airflow_uri: str
    image_version: str
    state: str
    private_ip: bool

    @property
    def composer_major(self) -> int | None:
        """1, 2 or 3, from the image version; ``None`` if it cannot be read."""
        match = _IMAGE_VERSION.match(self.image_version)
        return int(match["composer"]) if match else None

    @property
    def airflow_version(self) -> str | None:
        """Airflow's version as the image names it (``2.10.5``)."""
        match = _IMAGE_VERSION.match(self.image_version)
        return match["airflow"] if match else None

    @property
    def auth(self) -> str:
        """Composer 1 puts Airflow behind Identity-Aware Proxy; Composer 2 and 3 take the access token."""
        return "iap" if self.composer_major == 1 else "composer"

    def apply(self, settings: AirflowSettings) -> AirflowSettings:
        """``settings`` with the URL (unless configured) and, for ``auth = "auto"``, the auth mode filled in."""
        return dataclasses.replace(
            settings,
            url=settings.url or self.airflow_uri.rstrip("/"),
            auth=self.auth if settings.auth == "auto" else settings.auth,
        )


def read_environment(
    name: str, session: requests.Session, access: GoogleAccessToken, timeout: tuple[float, float]
) -> ComposerEnvironment:
    """``GET v1/{name}`` of the Composer API; errors name the permission or the setting to fix."""
    access.before_request(session, timeout)
    url = f"{google_api_base('composer')}v1/{name}"
    try:
        response = session.get(url, auth=access, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        reason = type(exc).__name__
        raise CredentialError(f"cannot reach the Composer API at {url}: {reason}", retryable=True) from None
    if response.status_code == 404:
        raise ConfigError(
            f"[airflow].composer_environment: {name} does not exist (Composer API answered 404); "
            "check the project, the region and the environment's name"
        )
    if response.status_code in (401, 403):
        raise ConfigError(
            f"[airflow].composer_environment: the Composer API refused to read {name} ({response.status_code}): "
            f"{access.identity or 'the runtime service account'} needs roles/composer.user "
            "(composer.environments.get) in that project"
        )
    if response.status_code != 200:
        raise CredentialError(
            f"the Composer API answered {response.status_code} reading {name}",
            retryable=response.status_code == 429 or response.status_code >= 500,
        )
    environment = _environment(name, response)
    log.info(
        "read Composer environment %s: %s, %s, %s",
        name,
        environment.state,
        environment.image_version,
        environment.airflow_uri,
        extra={"composer_environment": name},
    )
    return environment


def _environment(name: str, response: requests.Response) -> ComposerEnvironment:
    try:
        body: Any = response.json()
        config = body["config"]
        uri = config["airflowUri"]
    except (ValueError, KeyError, TypeError):
        raise ConfigError(
            f"[airflow].composer_environment: {name} has no config.airflowUri yet (is it still being created?)"
        ) from None
    private = (config.get("privateEnvironmentConfig") or {}).get("enablePrivateEnvironment", False)
    return ComposerEnvironment(
        name=name,
        airflow_uri=str(uri),
        image_version=str((config.get("softwareConfig") or {}).get("imageVersion", "")),
        state=str(body.get("state", "UNKNOWN")),
        private_ip=bool(private),
    )
