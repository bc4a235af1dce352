"""The Cloud Function as functions-framework serves it: CloudEvents over HTTP reach the core."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import functions_framework
import pytest

from shared.runtime import dispatcher
from tests.support import load_event

SOURCE = Path(__file__).resolve().parents[2] / "gcf_trigger" / "main.py"


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    # A route no sample matches: the function parses and routes, and never needs an Airflow.
    config = tmp_path / "config.toml"
    config.write_text('[airflow]\nurl = "http://127.0.0.1:9"\n[[routes]]\ndag_id = "d"\nattributes = { never = "x" }\n')
    monkeypatch.setenv("DAG_TRIGGER_CONFIG", str(config))
    dispatcher.cache_clear()
    app = functions_framework.create_app(target="trigger_dag", source=str(SOURCE), signature_type="cloudevent")
    # The edge sends JSON lines to stdout and stops propagation; let caplog see them too, for this test only.
    monkeypatch.setattr(logging.getLogger("dag_trigger"), "propagate", True)
    yield app.test_client()
    dispatcher.cache_clear()


def post(client: Any, event: dict[str, Any]) -> int:
    response = client.post("/", data=json.dumps(event), headers={"Content-Type": "application/cloudevents+json"})
    return int(response.status_code)


@pytest.mark.parametrize(
    ("sample", "skipped"),
    [
        ("pubsub_message.cloudevent.json", "pubsub message 11223344556677: no route matched"),
        ("pubsub_gcs_notification.cloudevent.json", "gs://acme-landing/incoming/2026/11/23/orders.csv (created)"),
        ("gcs_finalized.cloudevent.json", "gs://acme-landing/incoming/2026/11/23/orders.csv (created)"),
    ],
)
def test_cloud_function_parses_and_routes_each_cloudevent(
    client: Any, sample: str, skipped: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="dag_trigger"):
        assert post(client, load_event(sample)) == 200
    assert skipped in caplog.text


def test_cloud_function_acknowledges_an_unparseable_event_with_a_log_line(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    event = load_event("gcs_finalized.cloudevent.json")
    del event["data"]["bucket"]
    with caplog.at_level(logging.ERROR, logger="dag_trigger"):
        assert post(client, event) == 200  # redelivering it cannot help
    assert "rejected event, not retrying: cloudevent.data.bucket is missing" in caplog.text
