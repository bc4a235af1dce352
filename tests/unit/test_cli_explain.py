"""``dag-trigger explain``: every sample event through a real config, output compared line by line."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from shared.cli import main
from shared.parsing import parse_payload
from shared.triggers import derive_run_id
from tests.support import EVENTS_DIR, load_event

CONFIG = """\
[airflow]
url = "https://airflow.example.com"

[[routes]]
name = "landing-csv"
dag_id = "ingest_csv"
bucket = "acme-*"
prefix = "incoming/"
suffix = ".csv"
conf = { pipeline = "csv" }

[[routes]]
name = "landing-parquet"
dag_id = "ingest_parquet"
bucket = "acme-landing"
glob = "incoming/*.parquet"

[[routes]]
name = "large-files"
dag_id = "archive_large"
prefix = "incoming/"
min_size = 100000

[[routes]]
name = "deletions"
dag_id = "purge_object"
bucket = "acme-landing"
event_types = ["deleted"]

[[routes]]
name = "requests"
dag_id = "load_orders"
sources = ["pubsub", "sns"]
attributes = { dag_id = "load_orders" }

[[routes]]
name = "queue"
dag_id = "queue_consumer"
sources = ["sqs"]
"""


def object_conf(
    *,
    source: str,
    bucket: str,
    key: str,
    size: int | None,
    etag: str | None,
    md5: str | None,
    version: str | None,
    sequencer: str | None,
    content_type: str | None,
    region: str | None,
    event_type: str,
    event_name: str,
    event_time: str,
    event_id: str,
) -> dict[str, Any]:
    scheme = {"gcs": "gs", "s3": "s3"}[source]
    return {
        "source": source,
        "bucket": bucket,
        "key": key,
        "uri": f"{scheme}://{bucket}/{key}",
        "size": size,
        "etag": etag,
        "md5": md5,
        "version": version,
        "sequencer": sequencer,
        "content_type": content_type,
        "region": region,
        "event_type": event_type,
        "event_name": event_name,
        "event_time": event_time,
        "event_id": event_id,
    }


S3_DAILY_ORDERS = object_conf(
    source="s3",
    bucket="acme-landing",
    key="incoming/2026/11/23/daily orders.csv",
    size=52811,
    etag="0123456789abcdef0123456789abcdef",
    md5=None,
    version="096fKKXTRTtl3on89fVO.nfljtsv6qko",
    sequencer="0065A1B2C3D4E5F601",
    content_type=None,
    region="eu-west-1",
    event_type="created",
    event_name="ObjectCreated:Put",
    event_time="2026-11-23T08:13:20.412000+00:00",
    event_id="C3D13FE58DE4C810",
)
S3_RETURNS = {
    **S3_DAILY_ORDERS,
    "key": "incoming/2026/11/23/returns.csv",
    "uri": "s3://acme-landing/incoming/2026/11/23/returns.csv",
    "version": "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
    "sequencer": "0065A1B2C3D4E5F602",
}
GCS_ORDERS = object_conf(
    source="gcs",
    bucket="acme-landing",
    key="incoming/2026/11/23/orders.csv",
    size=52811,
    etag="CMDyzPvxkJEDEAE=",
    md5="kP3zq8bYb4rl3gMzc6S6pQ==",
    version="1763900000123456",
    sequencer=None,
    content_type="text/csv",
    region=None,
    event_type="created",
    event_name="google.cloud.storage.object.v1.finalized",
    event_time="2026-11-23T08:13:20.123456+00:00",
    event_id="9876543210123456",
)
CSV = {"pipeline": "csv"}
ORDERS_BODY = {"table": "orders", "run_date": "2026-11-23"}

# file -> the lines it prints: (dag_id, index of the event in the payload, conf)
EXPECTED: dict[str, list[tuple[str, int, dict[str, Any]]]] = {
    "eventbridge_s3_object_created.json": [
        (
            dag_id,
            0,
            object_conf(
                source="s3",
                bucket="acme-landing",
                key="incoming/2026/11/23/orders.parquet",
                size=918211,
                etag="b1946ac92492d2347c6235b4d2611184",
                md5=None,
                version="IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
                sequencer="617f08299329d189",
                content_type=None,
                region="eu-west-1",
                event_type="created",
                event_name="Object Created",
                event_time="2026-11-23T08:13:20+00:00",
                event_id="17793124-05d4-b198-2fde-7ededc63b103",
            ),
        )
        for dag_id in ("ingest_parquet", "archive_large")
    ],
    "gcs_archived.cloudevent.json": [],
    "gcs_deleted.cloudevent.json": [
        (
            "purge_object",
            0,
            {
                **GCS_ORDERS,
                "event_type": "deleted",
                "event_name": "google.cloud.storage.object.v1.deleted",
                "event_time": "2026-11-23T09:30:00.250731+00:00",
                "event_id": "9876543210999999",
            },
        )
    ],
    "gcs_finalized.cloudevent.json": [("ingest_csv", 0, {**GCS_ORDERS, **CSV})],
    "gcs_metadata_updated.cloudevent.json": [],
    "pubsub_gcs_notification.cloudevent.json": [
        ("ingest_csv", 0, {**GCS_ORDERS, "event_name": "OBJECT_FINALIZE", "event_id": "55443322110099", **CSV})
    ],
    "pubsub_gcs_notification_none.cloudevent.json": [
        (
            "ingest_csv",
            0,
            {
                **GCS_ORDERS,
                "size": None,
                "etag": None,
                "md5": None,
                "sequencer": None,
                "content_type": None,
                "event_name": "OBJECT_FINALIZE",
                "event_id": "55443322110123",
                **CSV,
            },
        )
    ],
    "pubsub_message.cloudevent.json": [
        (
            "load_orders",
            0,
            {
                "source": "pubsub",
                "message_id": "11223344556677",
                "topic": "projects/acme-prod/topics/dag-requests",
                "attributes": {"dag_id": "load_orders"},
                "body": ORDERS_BODY,
                "event_time": "2026-11-23T08:15:00.500000+00:00",
            },
        )
    ],
    "s3_object_removed.json": [
        (
            "purge_object",
            0,
            object_conf(
                source="s3",
                bucket="acme-landing",
                key="incoming/2026/11/23/stale orders.csv",
                size=None,
                etag=None,
                md5=None,
                version=None,
                sequencer="0065A1B2C3D4E5F6A9",
                content_type=None,
                region="eu-west-1",
                event_type="deleted",
                event_name="ObjectRemoved:Delete",
                event_time="2026-11-23T09:02:11.077000+00:00",
                event_id="7D2F1A3B9C4E5F60",
            ),
        )
    ],
    "s3_put.json": [("ingest_csv", 0, {**S3_DAILY_ORDERS, **CSV})],
    "s3_special_keys.json": [],
    "s3_test_event.json": [],
    "sns_message.json": [
        (
            "load_orders",
            0,
            {
                "source": "sns",
                "message_id": "b7e0d5a4-3f8c-5a0e-8d1a-6c2f4e9b0a77",
                "topic": "arn:aws:sns:eu-west-1:123456789012:dag-requests",
                "attributes": {"dag_id": "load_orders"},
                "body": ORDERS_BODY,
                "event_time": "2026-11-23T08:15:00+00:00",
            },
        )
    ],
    "sns_s3_notification.json": [("ingest_csv", 0, {**S3_DAILY_ORDERS, **CSV})],
    "sqs_batch_s3.json": [("ingest_csv", 0, {**S3_DAILY_ORDERS, **CSV}), ("ingest_csv", 1, {**S3_RETURNS, **CSV})],
    "sqs_plain_message.json": [
        (
            "queue_consumer",
            0,
            {
                "source": "sqs",
                "message_id": "a5b3c1d2-6e7f-4a8b-9c0d-1e2f3a4b5c6d",
                "topic": "arn:aws:sqs:eu-west-1:123456789012:dag-requests",
                "attributes": {"dag_id": "queue_consumer"},
                "body": "rebuild orders for 2026-11-23",
                "event_time": "2026-11-23T08:15:00.250000+00:00",
            },
        )
    ],
    "sqs_s3_test_event.json": [],
    # S3 -> SNS -> SQS with raw message delivery: the S3 notification itself; an application message, its
    # SNS message attributes become SQS message attributes.
    "sqs_sns_raw.json": [
        (
            "ingest_csv",
            0,
            {
                **S3_DAILY_ORDERS,
                "key": "incoming/2026/11/23/refunds (2).csv",
                "uri": "s3://acme-landing/incoming/2026/11/23/refunds (2).csv",
                "size": 1042,
                "etag": "9e107d9d372bb6826bd81d3542a419d6",
                "version": "Wq1UjQ0o9rPz3lY8sB2n5cV7xD4fE6gH",
                "sequencer": "0065A1B2C3D4E5F6C1",
                "event_time": "2026-11-23T08:20:41.118000+00:00",
                "event_id": "7B4C1E9A2D3F5A6B",
                **CSV,
            },
        ),
        (
            "queue_consumer",
            1,
            {
                "source": "sqs",
                "message_id": "0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d",
                "topic": "arn:aws:sqs:eu-west-1:123456789012:dag-requests",
                "attributes": {"dag_id": "load_orders"},
                "body": ORDERS_BODY,
                "event_time": "2026-11-23T08:21:40+00:00",
            },
        ),
    ],
    # An SNS application message through SQS without raw delivery: the SNS envelope is the body.
    "sqs_sns_message.json": [
        (
            "load_orders",
            0,
            {
                "source": "sns",
                "message_id": "d2c1b0a9-8f7e-5d6c-9b4a-3f2e1d0c9b8a",
                "topic": "arn:aws:sns:eu-west-1:123456789012:dag-requests",
                "attributes": {"dag_id": "load_orders"},
                "body": {"table": "returns", "run_date": "2026-11-23"},
                "event_time": "2026-11-23T08:25:00+00:00",
            },
        )
    ],
}

TEST_EVENT_SKIP = "s3:TestEvent for bucket 'acme-landing' (sent when a notification is configured)"
EXPECTED_STDERR = {
    "s3_test_event.json": f"skipped: event: {TEST_EVENT_SKIP}\n",
    "sqs_s3_test_event.json": f"skipped: Records[0].body: {TEST_EVENT_SKIP}\n",
    **{
        f"gcs_{event_type}.cloudevent.json": (
            f"skipped: gs://acme-landing/incoming/2026/11/23/orders.csv ({event_type}): no route matched ("
            + "; ".join(
                f"route {route}: event type '{event_type}' is not one of ['{taken}']"
                for route, taken in [
                    ("landing-csv", "created"),
                    ("landing-parquet", "created"),
                    ("large-files", "created"),
                    ("deletions", "deleted"),
                ]
            )
            + "; route requests: source 'gcs' is not one of ['pubsub', 'sns'] (a Cloud Storage notification is "
            "source 'gcs' whether it comes as an Eventarc event or through Pub/Sub; add 'gcs' to sources); "
            "route queue: source 'gcs' is not one of ['sqs'])\n"
        )
        for event_type in ("archived", "metadata_updated")
    },
    "s3_special_keys.json": (
        "skipped: s3://acme-landing/exports/2026/c++ notes/résumé draft v2.txt (created): no route matched ("
        "route landing-csv: key does not start with 'incoming/'; "
        "route landing-parquet: key does not match 'incoming/*.parquet'; "
        "route large-files: key does not start with 'incoming/'; "
        "route deletions: event type 'created' is not one of ['deleted']; "
        "route requests: source 's3' is not one of ['pubsub', 'sns']; "
        "route queue: source 's3' is not one of ['sqs'])\n"
    ),
}

SAMPLES = sorted(path.name for path in EVENTS_DIR.glob("*.json"))


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "dag-trigger.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def explain(config: Path, event: Path | str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["explain", "--config", str(config), str(event)], out=out)
    return code, out.getvalue()


def test_every_sample_has_an_expectation() -> None:
    assert sorted(EXPECTED) == SAMPLES


@pytest.mark.parametrize("name", SAMPLES)
def test_explain_prints_exactly_the_planned_runs(
    name: str, config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = parse_payload(load_event(name)).events
    expected = [
        {"dag_id": dag_id, "dag_run_id": derive_run_id(events[index], dag_id), "conf": conf}
        for dag_id, index, conf in EXPECTED[name]
    ]

    code, out = explain(config_path, EVENTS_DIR / name)

    assert code == 0
    assert out == "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in expected)
    assert [json.loads(line) for line in out.splitlines()] == expected
    assert capsys.readouterr().err == EXPECTED_STDERR.get(name, "")


def test_explain_gives_one_run_id_per_object_whatever_the_delivery(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def run_ids(name: str) -> list[str]:
        code, out = explain(config_path, EVENTS_DIR / name)
        assert code == 0
        return [json.loads(line)["dag_run_id"] for line in out.splitlines()]

    assert run_ids("s3_put.json") == run_ids("sns_s3_notification.json") == run_ids("sqs_batch_s3.json")[:1]
    assert run_ids("gcs_finalized.cloudevent.json") == run_ids("pubsub_gcs_notification.cloudevent.json")
    capsys.readouterr()


def test_explain_prints_non_ascii_keys_unescaped(tmp_path: Path, config_path: Path) -> None:
    payload = load_event("s3_put.json")
    payload["Records"][0]["s3"]["object"]["key"] = "incoming/2026/11/23/r%C3%A9sum%C3%A9.csv"
    event_path = tmp_path / "event.json"
    event_path.write_text(json.dumps(payload), encoding="utf-8")
    code, out = explain(config_path, event_path)
    assert code == 0
    assert '"key": "incoming/2026/11/23/résumé.csv"' in out


def test_explain_reads_stdin(config_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.TextIOWrapper(io.BytesIO((EVENTS_DIR / "sns_message.json").read_bytes()), encoding="utf-8")
    monkeypatch.setattr("sys.stdin", stdin)
    code, out = explain(config_path, "-")
    assert code == 0
    assert [json.loads(line)["dag_id"] for line in out.splitlines()] == ["load_orders"]


def test_explain_a_list_of_payloads(tmp_path: Path, config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    event_path = tmp_path / "batch.json"
    event_path.write_text(
        json.dumps([load_event("s3_test_event.json"), load_event("s3_put.json"), load_event("sns_message.json")]),
        encoding="utf-8",
    )
    code, out = explain(config_path, event_path)
    assert code == 0
    assert [json.loads(line)["dag_id"] for line in out.splitlines()] == ["ingest_csv", "load_orders"]
    assert capsys.readouterr().err == f"skipped: event: {TEST_EVENT_SKIP}\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ('{"hello": "world"}', "event: unrecognized payload (top-level keys: hello)"),
        ('{"Records": [{"eventSource": "aws:s3"}]}', "Records[0].s3 is missing"),
        ("", "not JSON"),
        (b'{"name": "caf\xe9.csv"}', "not JSON: 'utf-8' codec can't decode byte 0xe9"),  # Latin-1, not UTF-8
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not JSON"),  # not text at all
    ],
)
def test_explain_unparseable_event_exits_2(
    tmp_path: Path, config_path: Path, capsys: pytest.CaptureFixture[str], content: str | bytes, message: str
) -> None:
    event_path = tmp_path / "broken.json"
    event_path.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, out = explain(config_path, event_path)
    err = capsys.readouterr().err
    assert code == 2
    assert out == ""
    assert err.startswith("error: ")
    assert message in err


def test_explain_missing_event_file_exits_2(
    tmp_path: Path, config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.json"
    code, out = explain(config_path, missing)
    err = capsys.readouterr().err
    assert code == 2
    assert out == ""
    assert err.startswith(f"error: {missing}: cannot read event file")


def test_explain_invalid_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_path = tmp_path / "bad.toml"
    config_path.write_text('[airflow]\nurl = "airflow.example.com"\n[[routes]]\ndag_id = "x"\n', encoding="utf-8")
    code, out = explain(config_path, EVENTS_DIR / "s3_put.json")
    err = capsys.readouterr().err
    assert code == 2
    assert out == ""
    assert err.startswith(f"error: {config_path}: [airflow].url must be an http(s) URL")


def test_explain_conf_too_large_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_path = tmp_path / "small.toml"
    config_path.write_text(
        '[airflow]\nurl = "https://airflow.example.com"\nmax_conf_bytes = 100\n[[routes]]\ndag_id = "ingest"\n',
        encoding="utf-8",
    )
    code, out = explain(config_path, EVENTS_DIR / "s3_put.json")
    err = capsys.readouterr().err
    assert code == 2
    assert out == ""
    assert err.startswith("error: conf for DAG 'ingest' is ")
    assert "max_conf_bytes=100" in err


def test_explain_event_routing_nowhere(config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = explain(config_path, EVENTS_DIR / "s3_special_keys.json")
    err = capsys.readouterr().err
    assert code == 0
    assert out == ""
    assert err.startswith("skipped: s3://acme-landing/exports/2026/c++ notes/résumé draft v2.txt (created): ")
    assert "no route matched" in err


def test_explain_s3_test_event(config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = explain(config_path, EVENTS_DIR / "s3_test_event.json")
    err = capsys.readouterr().err
    assert code == 0
    assert out == ""
    assert "s3:TestEvent" in err
    assert "acme-landing" in err
