"""Credential providers that need no server, and log redaction."""

from __future__ import annotations

import base64
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from shared import credentials as creds
from shared.config import AirflowSettings
from shared.credentials import (
    EXPIRY_MARGIN,
    AirflowJwtCredentials,
    BasicCredentials,
    NoCredentials,
    TokenFileCredentials,
    credentials_for,
    jwt_expiry,
)
from shared.errors import CredentialError
from shared.logs import JsonFormatter, RedactingFilter, redact

SESSION = requests.Session()
TIMEOUT = (1.0, 1.0)


def make_jwt(exp: int) -> str:
    claims = base64.urlsafe_b64encode(json.dumps({"exp": exp, "sub": "admin"}).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJIUzI1NiJ9.{claims}.c2lnbmF0dXJl"


def test_jwt_expiry_reads_exp_without_padding() -> None:
    assert jwt_expiry(make_jwt(4102444800)) == datetime(2100, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "a.e30.c", "a.!!!.c"])
def test_jwt_expiry_of_garbage_is_none(token: str) -> None:
    assert jwt_expiry(token) is None


def test_token_near_expiry_is_not_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    credentials = AirflowJwtCredentials("http://x", "admin", "pw")
    credentials.token = "t"
    credentials.expiry = datetime(2030, 1, 1, tzinfo=UTC)
    monkeypatch.setattr(creds, "utcnow", lambda: credentials.expiry - EXPIRY_MARGIN * 2)
    assert credentials.valid
    monkeypatch.setattr(creds, "utcnow", lambda: credentials.expiry - EXPIRY_MARGIN / 2)
    assert not credentials.valid


def test_token_file_is_reread_when_it_changes_and_after_invalidate(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first\n")
    credentials = TokenFileCredentials(path)
    credentials.before_request(SESSION, TIMEOUT)
    assert credentials.token == "first"
    path.write_text("second-token\n")
    os.utime(path, ns=(1, 2))  # a different mtime even on a coarse clock
    assert not credentials.valid
    credentials.before_request(SESSION, TIMEOUT)
    assert credentials.token == "second-token"
    credentials.invalidate()
    credentials.before_request(SESSION, TIMEOUT)
    assert credentials.token == "second-token"


def test_token_file_jwt_expiry_is_honoured(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(make_jwt(4102444800))
    credentials = TokenFileCredentials(path)
    credentials.before_request(SESSION, TIMEOUT)
    assert credentials.expiry == datetime(2100, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("content", [None, ""], ids=["missing", "empty"])
def test_token_file_problems_are_retryable_credential_errors(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    with pytest.raises(CredentialError, match=str(path)) as info:
        TokenFileCredentials(path).before_request(SESSION, TIMEOUT)
    assert info.value.retryable


def test_basic_and_none_apply_headers() -> None:
    headers: dict[str, str] = {}
    basic = BasicCredentials("admin", "s3cret")
    basic.before_request(SESSION, TIMEOUT)
    basic.apply(headers)
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"admin:s3cret").decode()
    headers = {}
    NoCredentials().apply(headers)
    assert headers == {}


def test_reprs_never_show_secrets() -> None:
    jwt = AirflowJwtCredentials("http://x", "admin", "pw-123")
    jwt.token = "tok-456"
    for text in (repr(jwt), repr(BasicCredentials("admin", "pw-123"))):
        assert "pw-123" not in text
        assert "tok-456" not in text


def test_credentials_for_reads_the_password_from_the_named_variable() -> None:
    settings = AirflowSettings(url="http://127.0.0.1", auth="basic", username="admin", password_env="MY_PW")
    assert isinstance(credentials_for(settings, {"MY_PW": "x"}), BasicCredentials)
    with pytest.raises(CredentialError, match="MY_PW"):
        credentials_for(settings, {})


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.c2ln", "eyJhbGciOiJIUzI1NiJ9"),
        ("header Basic YWRtaW46c2VjcmV0", "YWRtaW46c2VjcmV0"),
        ('{"password": "hunter2"}', "hunter2"),
        ("https://storage/o?X-Goog-Signature=abc123def&alt=media", "abc123def"),
        ("https://s3/o?X-Amz-Security-Token=FwoGZX&X-Amz-Signature=9f8e7d", "9f8e7d"),
        ("access_token=abcdef", "abcdef"),
    ],
)
def test_redact_masks_credentials(text: str, secret: str) -> None:
    assert secret not in redact(text)
    assert "***" in redact(text)


def test_redact_keeps_ordinary_text() -> None:
    text = "dag run created: dag=load_orders run_id=gcs__2026-11-23T08:13:20Z__2ce03fa01d3db718"
    assert redact(text) == text


def test_json_log_lines_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("dag_trigger.test_redaction")
    logger.addHandler(handler)
    try:
        logger.warning("retrying %s", "with Bearer abcdefghijklmnop", extra={"dag_id": "d"})
    finally:
        logger.removeHandler(handler)
    line = json.loads(capsys.readouterr().err)
    assert line == {
        "severity": "WARNING",
        "message": "retrying with Bearer ***",
        "logger": line["logger"],
        "dag_id": "d",
    }


@pytest.mark.parametrize(
    ("modules", "forbidden"),
    [
        ("shared.cli, shared.runtime", ("boto3", "botocore", "google.auth", "google.oauth2", "google.api_core")),
        # functions-framework brings google.cloud.functions (and a .pth that pre-imports the empty
        # google namespace); no Google SDK and nothing from AWS.
        ("gcf_trigger.main", ("boto3", "botocore", "google.auth", "google.api_core", "googleapiclient")),
        # Powertools imports botocore itself (Lambda ships it); boto3 and Google stay out.
        ("lambda_trigger.handler", ("boto3", "google.auth", "google.oauth2", "google.api_core")),
    ],
)
def test_imports_stay_light_for_cold_starts(modules: str, forbidden: tuple[str, ...]) -> None:
    import subprocess
    import sys

    code = f"import sys, {modules}; print(sorted(m for m in sys.modules if m.startswith({forbidden!r})))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
