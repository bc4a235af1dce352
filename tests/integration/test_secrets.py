"""Secrets never reach logs, errors, reprs or exception chains, through a full run with known secrets."""

from __future__ import annotations

import base64
import io
import logging
import traceback
import uuid
from pathlib import Path

import pytest

from shared.cli import main as cli_main
from shared.dispatch import DeliveryFailed
from shared.parsing import parse_payload
from shared.runtime import build_dispatcher
from tests.fault_proxy import FaultProxy, FaultSchedule
from tests.integration.conftest import Target
from tests.integration.test_real_airflow import gcs_event


def _chain(exc: BaseException | None) -> str:
    text = ""
    while exc is not None:
        text += "".join(traceback.format_exception_only(type(exc), exc)) + repr(exc)
        exc = exc.__cause__ or exc.__context__
    return text


def test_no_secret_in_any_log_line_error_or_repr(
    target: Target, caplog: pytest.LogCaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = target.airflow.password
    wrong = f"wrong-{uuid.uuid4().hex}"
    monkeypatch.setenv("WRONG_PASSWORD", wrong)
    seen: list[str] = []
    caplog.set_level(logging.DEBUG)  # every logger, urllib3's wire log included

    with FaultProxy(target.airflow.url) as proxy:
        # Token expiry and rejection on the way (Airflow 3), so the refresh path logs too; basic auth
        # has no token to refresh, a 401 there means a wrong password.
        faults = ("401", "403_jwt", "503") if target.major == "3" else ("503",)
        proxy.schedule = FaultSchedule(seed=7, rate=0.5, faults=faults)
        config = target.config(url=proxy.url)
        dispatch = build_dispatcher(config)
        report = dispatch.deliver(lambda: parse_payload(gcs_event(uuid.uuid4().hex[:12])))
        assert report.ok
        seen += [repr(dispatch.client.transport.credentials), repr(config), repr(report), str(report.describe())]
        token = dispatch.client.transport.credentials.token

        bad = build_dispatcher(target.config(url=proxy.url, password_env="WRONG_PASSWORD"))
        with pytest.raises(DeliveryFailed) as failed:
            bad.deliver(lambda: parse_payload(gcs_event(uuid.uuid4().hex[:12])))
        seen += [_chain(failed.value), repr(bad.client.transport.credentials)]

    out = io.StringIO()
    cli_main(["doctor", "--config", str(target.write_config(tmp_path / "c.json"))], out=out)
    seen.append(out.getvalue())
    seen += [record.getMessage() for record in caplog.records]
    seen.append(caplog.text)
    everything = "\n".join(seen)

    secrets = {
        "password": password,
        "wrong password": wrong,
        "basic header": base64.b64encode(f"admin:{password}".encode()).decode(),
        "wrong basic header": base64.b64encode(f"admin:{wrong}".encode()).decode(),
    }
    if token:
        secrets["token"] = token
        secrets["token signature"] = token.rsplit(".", 1)[-1]
    assert "Authorization" not in everything
    leaked = [name for name, value in secrets.items() if value and value in everything]
    assert leaked == [], f"secrets in logs/errors/reprs: {leaked}"
    assert len(caplog.records) > 5  # the run did log
