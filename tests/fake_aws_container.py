"""FakeContainerCredentials: the container credentials endpoint ECS tasks and MWAA workers get their AWS role from.

Those have no EC2 instance metadata (169.254.169.254) and no keys in the environment: the container agent serves
the task role's temporary credentials over HTTP, and botocore's ``ContainerProvider`` reads them from the URL in
``AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`` (on ``169.254.170.2``) or ``AWS_CONTAINER_CREDENTIALS_FULL_URI``. A
full URI must be https, a loopback address or one of the agent's own hosts (botocore's
``ContainerMetadataFetcher._validate_allowed_url``), so ``http://127.0.0.1:<port>/...`` is accepted as it is.

``GET <path>`` answers ``{RoleArn, AccessKeyId, SecretAccessKey, Token, Expiration}``, Expiration an ISO 8601 UTC
time :attr:`FakeContainerCredentials.lifetime` ahead. With ``authorization_token`` set, the request must carry
``Authorization: <token>`` (botocore sends ``AWS_CONTAINER_AUTHORIZATION_TOKEN`` as it is, no scheme), as EKS Pod
Identity and a full-URI ECS setup require; otherwise 401. botocore retries a non-200 answer three times, a second
apart, before it gives up, so a refusal costs a caller about 3 s.

Each instance makes a fresh temporary key pair (``ASIA...``, with a session token): register it with
``FakeGoogle.trust_aws_credentials(*container.key)`` so Google STS accepts what it signs.
"""

from __future__ import annotations

import os
import secrets
import string
import threading
import time
import uuid
from collections.abc import MutableMapping
from typing import NamedTuple

from tests.loopback import Handler, LoopbackServer, Reply

DEFAULT_ACCOUNT = "111122223333"
DEFAULT_ROLE = "dag-trigger-task"

#: Variables that would make botocore's credential chain answer before the container provider does (environment
#: keys, a profile, web identity, a relative container URI that wins over the full one, a token file that wins
#: over the token) or fall through to EC2 instance metadata and wait on it.
SHADOWING_AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_CREDENTIAL_FILE",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
)
#: Config files botocore reads profiles (keys, SSO, credential_process, assume-role) from; pointed at an empty
#: file, not removed, since removing them falls back to ~/.aws/, and /etc/boto.cfg and ~/.boto for BOTO_CONFIG.
AWS_CONFIG_FILE_VARIABLES = ("AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "BOTO_CONFIG")

_KEY_ALPHABET = string.ascii_uppercase + string.digits
_ISO_8601 = "%Y-%m-%dT%H:%M:%SZ"


class AwsKey(NamedTuple):
    """A temporary AWS key pair, as the container endpoint hands it out; a tuple, so that
    ``FakeGoogle.trust_aws_credentials(*key)`` registers it with the identity it stands for."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    arn: str


def new_temporary_key(arn: str) -> AwsKey:
    """A random key in the shape of STS-issued ones: ``ASIA`` + 16 characters, a 40-character secret, a token."""
    return AwsKey(
        access_key_id="ASIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16)),
        secret_access_key=secrets.token_urlsafe(30)[:40],
        session_token="IQoJb3JpZ2luX2VjE" + secrets.token_urlsafe(180),
        arn=arn,
    )


class _ContainerHandler(Handler):
    owner: FakeContainerCredentials

    def respond(self, body: bytes) -> None:
        owner = self.owner
        if self.command != "GET" or self.path != owner.path:
            owner._count("not_found")
            raise Reply(404, {"code": "NotFound", "message": f"No credentials at {self.path}"})
        if owner.authorization_token is not None and self.headers.get("Authorization") != owner.authorization_token:
            owner._count("unauthorized")
            raise Reply(401, {"code": "AccessDenied", "message": "Authorization header is missing or not valid"})
        key = owner.key
        owner._count("fetch")
        self.reply_json(
            200,
            {
                "RoleArn": owner.role_arn,
                "AccessKeyId": key.access_key_id,
                "SecretAccessKey": key.secret_access_key,
                "Token": key.session_token,
                "Expiration": time.strftime(_ISO_8601, time.gmtime(time.time() + owner.lifetime)),
            },
        )


class FakeContainerCredentials(LoopbackServer):
    """The ECS/MWAA container credentials endpoint on ``http://127.0.0.1:<port><path>``, for one IAM role.

    :attr:`fetches` counts the credentials handed out, :attr:`refusals` the requests refused (wrong path or
    method, missing or wrong ``Authorization``).
    """

    handler = _ContainerHandler

    def __init__(
        self,
        *,
        port: int = 0,
        path: str | None = None,
        authorization_token: str | None = None,
        account: str = DEFAULT_ACCOUNT,
        role: str = DEFAULT_ROLE,
        lifetime: int = 3600,
    ) -> None:
        super().__init__(port=port)
        #: The path the credentials are served on; ECS's look like ``/v2/credentials/<uuid>``.
        self.path = path or f"/v2/credentials/{uuid.uuid4()}"
        self.authorization_token = authorization_token
        self.lifetime = lifetime
        self.role_arn = f"arn:aws:iam::{account}:role/{role}"
        #: The task's session as AWS STS names it (what GetCallerIdentity would answer for the key).
        self.session_arn = f"arn:aws:sts::{account}:assumed-role/{role}/{uuid.uuid4().hex}"
        self.fetches = 0
        self.refusals = 0
        self._key = new_temporary_key(self.session_arn)
        self._lock = threading.Lock()

    @property
    def key(self) -> AwsKey:
        """The key pair served now."""
        with self._lock:
            return self._key

    @property
    def full_uri(self) -> str:
        """``http://127.0.0.1:<port><path>``."""
        return f"{self.url}{self.path}"

    def rotate(self) -> AwsKey:
        """Serve a new key pair from now on (as the agent does before the old one expires); return it."""
        with self._lock:
            self._key = new_temporary_key(self.session_arn)
            return self._key

    def env(self) -> dict[str, str]:
        """``AWS_CONTAINER_CREDENTIALS_FULL_URI`` (and ``AWS_CONTAINER_AUTHORIZATION_TOKEN`` when one is required)."""
        env = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": self.full_uri}
        if self.authorization_token is not None:
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = self.authorization_token
        return env

    @staticmethod
    def isolate_env(env: MutableMapping[str, str]) -> None:
        """Make ``env`` leave botocore's chain nothing but a container endpoint, and no slow miss.

        Removes :data:`SHADOWING_AWS_VARIABLES`, points :data:`AWS_CONFIG_FILE_VARIABLES` at an empty file and
        sets ``AWS_EC2_METADATA_DISABLED=true``, so that without a container endpoint botocore finds no
        credentials at once instead of probing 169.254.169.254. Apply :meth:`env` after it.
        """
        for name in SHADOWING_AWS_VARIABLES:
            env.pop(name, None)
        for name in AWS_CONFIG_FILE_VARIABLES:
            env[name] = os.devnull
        env["AWS_EC2_METADATA_DISABLED"] = "true"

    def reset_counts(self) -> None:
        """Zero :attr:`fetches` and :attr:`refusals`."""
        with self._lock:
            self.fetches = self.refusals = 0

    def _count(self, outcome: str) -> None:
        with self._lock:
            if outcome == "fetch":
                self.fetches += 1
            else:
                self.refusals += 1
