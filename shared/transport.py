"""How an Airflow API call travels: one small interface, one class per way of moving it.

:class:`~shared.airflow_client.AirflowClient` holds every piece of Airflow semantics (which API version,
paths and bodies, a duplicate confirmed as our run, the paused policy, retries within the deadline) and
hands each call to a transport: :class:`HttpTransport` (a ``requests.Session`` with a credential
provider) or an MWAA transport (``shared.mwaa``), which carries the same call inside an AWS API call.
A transport answers with an :class:`ApiResponse` whatever Airflow said, and raises only when the call
did not reach Airflow: :class:`Retryable` when trying again may help, another
:class:`~shared.errors.TriggerError` when it cannot.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests
from requests.structures import CaseInsensitiveDict

from shared.credentials import Credentials
from shared.errors import AirflowError, CredentialError

log = logging.getLogger("dag_trigger.airflow")

_DETAIL_CHARS = 500


class Retryable(AirflowError):
    """A failed attempt that may succeed later; carries the server's Retry-After, if any."""

    retryable = True

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


@dataclass(frozen=True)
class ApiCall:
    """One call of Airflow's REST API: ``path`` is below the API root (``/dags/x/dagRuns``), never with a query."""

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    #: False only for the version probe of an Airflow that checks its own login.
    auth: bool = True


@dataclass(frozen=True)
class ApiResponse:
    """What Airflow answered: its status, body text and headers (names case-insensitive)."""

    status: int
    text: str
    headers: Mapping[str, str] = field(default_factory=CaseInsensitiveDict)

    def json(self) -> Any:
        """The body as JSON; ``ValueError`` when it is not."""
        return json.loads(self.text)

    @property
    def detail(self) -> str:
        """The server's explanation, short (Airflow 2 problem+json, Airflow 3 FastAPI's ``detail``, 1.10 ``error``)."""
        try:
            body = self.json()
        except ValueError:
            return self.text[:_DETAIL_CHARS].strip()
        if isinstance(body, dict):
            detail = body.get("detail") or body.get("title") or body.get("error") or body
            return str(detail)[:_DETAIL_CHARS]
        return str(body)[:_DETAIL_CHARS]

    @property
    def is_token_rejection(self) -> bool:
        """Airflow 3 answers 401 for a missing or expired token and 403 "Invalid JWT token" for a bad one."""
        return self.status == 401 or (self.status == 403 and "jwt" in self.detail.lower())


class Transport(Protocol):
    """Moves one :class:`ApiCall` to Airflow and back."""

    #: Where the calls go, for messages (a URL, an MWAA environment).
    where: str
    #: The longest path the transport can carry (MWAA's InvokeRestApi: 64), ``None`` for no limit.
    max_path: int | None
    #: Whether the version probe needs credentials (a proxy in front of Airflow refuses every call without).
    probe_with_auth: bool
    #: What a 401 that survived a refresh, and a 403, may mean for this way in.
    unauthorized_hint: str
    forbidden_hint: str

    def known_version(self, timeout: tuple[float, float]) -> str | None:
        """The API version when the transport knows it without probing (MWAA says it), else ``None``."""
        ...

    def send(self, version: str, call: ApiCall, timeout: tuple[float, float]) -> ApiResponse:
        """Send ``call`` to API ``version`` within ``timeout`` (connect, read)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class HttpTransport:
    """Airflow's REST API over HTTPS, with credentials as ``requests`` auth.

    Redirects are never followed (credentials would go to another host); a token the server rejects is
    refreshed once and the call sent again.
    """

    max_path: int | None = None

    def __init__(
        self, url: str, credentials: Credentials, session: requests.Session | None = None, *, verify: bool = True
    ) -> None:
        self.url = url
        self.where = url
        self.credentials = credentials
        self.session = session or requests.Session()
        # Credentials come only from our auth object: a session-level auth that adds nothing keeps
        # requests from reading ~/.netrc, while proxies and REQUESTS_CA_BUNDLE from the environment
        # still apply (trust_env = False would drop those too).
        self.session.auth = no_auth
        self.environment = environment_settings(self.session, url, verify)
        self.probe_with_auth = credentials.at_proxy
        self.unauthorized_hint = credentials.unauthorized_hint
        self.forbidden_hint = credentials.forbidden_hint

    def known_version(self, timeout: tuple[float, float]) -> str | None:
        """Never known: the client probes."""
        return None

    def send(self, version: str, call: ApiCall, timeout: tuple[float, float]) -> ApiResponse:
        """One call; refreshes credentials once if the server rejects the token."""
        url = f"{self.url}/api/{version}{call.path}"
        response = self._send(url, call, timeout)
        if call.auth and self.credentials.can_refresh and self.credentials.refused(response):
            log.info("Airflow rejected the token (%d); refreshing credentials once", response.status)
            self.credentials.invalidate()
            response = self._send(url, call, timeout)
        return response

    def _send(self, url: str, call: ApiCall, timeout: tuple[float, float]) -> ApiResponse:
        if call.auth:
            try:
                self.credentials.before_request(self.session, timeout)
            except CredentialError as exc:
                if exc.retryable:
                    raise Retryable(str(exc)) from None
                raise
        response = send(
            self.session,
            call.method,
            url,
            timeout,
            params=dict(call.query) or None,
            json=call.body,
            auth=self.credentials if call.auth else None,
            environment=self.environment,
        )
        if response.is_redirect:
            raise AirflowError(
                f"{call.method} {url} was redirected to {response.headers.get('Location', '?').split('?')[0]}; "
                "credentials are never sent across redirects. Is the URL right, or is this a login page "
                "(an Identity-Aware Proxy needs auth = 'iap')?",
                status=response.status_code,
            )
        return ApiResponse(response.status_code, response.text, response.headers)

    def close(self) -> None:
        """Close pooled connections."""
        self.session.close()


def environment_settings(session: requests.Session, url: str, verify: bool = True) -> dict[str, Any]:
    """What ``requests`` takes from the environment for calls to ``url``: proxies (``HTTPS_PROXY``, ``NO_PROXY``),
    the CA bundle (``REQUESTS_CA_BUNDLE``), with ``verify`` applied.

    ``session.request`` works this out again on every call by scanning the whole environment (about 0.3 ms a
    call here, a quarter of a warm event's own time); a function's environment does not change while it runs,
    and every call of a transport goes to the same host, so a transport reads it once.
    """
    return dict(session.merge_environment_settings(url, {}, None, verify, None))


def send(
    session: requests.Session,
    method: str,
    url: str,
    timeout: tuple[float, float],
    *,
    environment: dict[str, Any] | None = None,
    **kwargs: Any,
) -> requests.Response:
    """``session.request`` without redirects, its failures as ours: a timeout or a refused connection may pass
    later (:class:`Retryable`; a trigger that timed out may still have run, and the retry's duplicate is then
    confirmed as our run), anything else is an :class:`~shared.errors.AirflowError`.

    With ``environment`` (from :func:`environment_settings`) the request is prepared and sent with those
    settings instead of the environment being read for it.
    """
    try:
        if environment is None:
            return session.request(method, url, timeout=timeout, allow_redirects=False, **kwargs)
        prepared = session.prepare_request(requests.Request(method, url, **kwargs))
        return session.send(prepared, timeout=timeout, allow_redirects=False, **environment)
    except requests.Timeout:
        raise Retryable(f"{method} {url} timed out after {timeout[1]:.1f}s") from None
    except requests.ConnectionError as exc:
        raise Retryable(f"{method} {url}: cannot connect ({_connection_failure(exc)})") from None
    except requests.RequestException as exc:
        raise AirflowError(f"{method} {url}: {type(exc).__name__}") from None


def no_auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """A session-level auth that adds nothing: it keeps ``requests`` from reading ``~/.netrc``."""
    return request


def _connection_failure(exc: requests.ConnectionError) -> str:
    # The innermost cause says "Connection refused" or "Name or service not known"; the outer
    # layers only repeat the URL.
    cause: BaseException = exc
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    text = str(cause)
    return text.split("] ", 1)[-1][:200] if text else type(cause).__name__
