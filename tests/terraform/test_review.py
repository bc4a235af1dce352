"""What an IAM and platform review would flag in ``terraform/``, as tests on the parsed HCL.

Each rule is one a reviewer applies by hand and checkov does not: wildcard actions (``sqs:*``),
project-wide grants of roles that can be granted on the one resource, AWS-managed policy attachments,
Lambda permissions open to any bucket, names that do not exist in the code, variables nobody reads.
"""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lambda_trigger.sqs import CONCURRENCY_ENV
from scripts import package, tf_schema, tf_tools
from scripts.tf_tools import BLOCK, Labeled, blocks
from shared.config import ENVIRONMENT_VARIABLES, AirflowSettings

Docs = dict[str, dict[str, Any]]

#: Roles that Google lets us grant only on a project (no resource-level IAM), each with why we need it.
PROJECT_LEVEL_ROLES = {
    "roles/eventarc.eventReceiver": "Eventarc checks it on the trigger's service account; projects only",
    "roles/pubsub.publisher": "the Cloud Storage service agent publishes to the topic Eventarc creates",
    "roles/composer.user": "Composer environments have no IAM policy of their own",
}
#: The only actions allowed on ``Resource: *``: they take no resource (X-Ray's puts, and the two EC2 reads a
#: function in a VPC needs; its network interface writes are scoped to the subnets and security groups).
RESOURCELESS_ACTIONS = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
}
#: Environment variables the platforms or libraries read, beyond the core's own.
PLATFORM_ENV_PREFIXES = ("POWERTOOLS_",)
#: ... and single names: botocore reads AWS_REGION for the region of STS and MWAA. On Lambda the runtime sets it; a
#: Cloud Run function reaching MWAA (aws-role-for-gcp's function_environment) must set it, since Google sets none.
LIBRARY_ENV_NAMES = frozenset({"AWS_REGION"})
#: The ID-token claims an AWS role trusting accounts.google.com must pin: IAM maps the token's azp (a service
#: account's unique ID) to accounts.google.com:aud, and its sub (the same ID) to accounts.google.com:sub.
GOOGLE_TOKEN_CONDITION_KEYS = ("accounts.google.com:aud", "accounts.google.com:sub")


def _modules() -> list[Path]:
    return sorted(p for p in (tf_tools.TERRAFORM_DIR / "modules").iterdir() if p.is_dir())


def _roots() -> list[Path]:
    """Every Terraform module directory: the reusable modules and the examples."""
    return _modules() + sorted(p for p in (tf_tools.TERRAFORM_DIR / "examples").iterdir() if p.is_dir())


def _in(docs: Docs, directory: Path) -> Docs:
    prefix = str(directory.relative_to(tf_tools.REPO_ROOT)) + "/"
    return {path: doc for path, doc in docs.items() if path.startswith(prefix)}


def _nested(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The ``name`` blocks of a body, written out or ``dynamic`` (their ``content``)."""
    found = [b for b in body.get(name, []) if isinstance(b, dict) and b.get(BLOCK)]
    for dynamic in body.get("dynamic", []):
        for label, spec in dynamic.items():
            if label == name:
                found += spec.get("content", [])
    return found


def _strings(value: Any) -> Iterator[str]:
    """Every string in a value, however deeply nested."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _resources(docs: Docs, *types: str) -> list[Labeled]:
    return [block for block in blocks(docs, "resource") if block.labels[0] in types]


def test_every_directory_is_parsed(documents: Docs) -> None:
    expected = {"gcp-function", "aws-lambda", "gcp-wif-for-aws", "aws-role-for-gcp"}
    assert expected <= {module.name for module in _modules()}
    for root in _roots():
        assert _in(documents, root), f"{root} has no .tf files"


# --- AWS IAM ----------------------------------------------------------------------------------------


def _statements(docs: Docs) -> Iterator[tuple[Labeled, dict[str, Any]]]:
    for document in blocks(docs, "data"):
        if document.labels[0] == "aws_iam_policy_document":
            for statement in _nested(document.body, "statement"):
                yield document, statement


def inline_policies(docs: Docs) -> list[str]:
    """Policies written as ``jsonencode()`` or heredocs: they escape every rule below."""
    return [
        f"{block.path}: {block.address}.{attribute}"
        for block in blocks(docs, "resource")
        for attribute in ("policy", "assume_role_policy", "inline_policy")
        if attribute in block.body and "aws_iam_policy_document" not in str(block.body[attribute])
    ]


def wildcard_actions(docs: Docs) -> list[str]:
    """``sqs:*``, ``s3:Get*``, ``*``: an action list a reviewer cannot read."""
    return [
        f"{document.path}: {document.address}: {action}"
        for document, statement in _statements(docs)
        for key in ("actions", "not_actions")
        for action in _listed(statement.get(key))
        if "*" in action
    ]


def wildcard_resources(docs: Docs) -> list[str]:
    """``Resource: *`` (or ``...:*:*``) on an Allow whose actions could name a resource."""
    return [
        f"{document.path}: {document.address}: {statement.get('actions')} on {resources}"
        for document, statement in _statements(docs)
        if statement.get("effect", "Allow") == "Allow"
        for resources in [_listed(statement.get("resources"))]
        if any(resource == "*" or resource.endswith(":*:*") for resource in resources)
        and not set(_listed(statement.get("actions"))) <= RESOURCELESS_ACTIONS
    ]


def open_principals(docs: Docs) -> list[str]:
    """Statements that trust or allow any principal."""
    return [
        f"{document.path}: {document.address}"
        for document, statement in _statements(docs)
        for principal in _nested(statement, "principals")
        if "*" in _listed(principal.get("identifiers"))
    ]


def managed_policies(docs: Docs) -> list[str]:
    """AWS-managed policy attachments: AWSLambdaBasicExecutionRole alone allows writing to every log group."""
    return [
        f"{block.path}: {block.address}"
        for block in blocks(docs, "resource")
        if block.labels[0] in ("aws_iam_role_policy_attachment", "aws_iam_policy_attachment")
        or any(":iam::aws:policy/" in text for text in _strings(block.body))
    ]


def unscoped_permissions(docs: Docs) -> list[str]:
    """Lambda permissions any source could use: no ``source_arn``, or for S3 no ``source_account``."""
    found = []
    for permission in _resources(docs, "aws_lambda_permission"):
        if "source_arn" not in permission.body:
            found.append(f"{permission.path}: {permission.address}: no source_arn")
        if "s3" in str(permission.body.get("principal")) and "source_account" not in permission.body:
            # A bucket ARN names no account: once ours is deleted, a bucket of that name in another account could
            # invoke the function.
            found.append(f"{permission.path}: {permission.address}: S3 without source_account")
    return found


def authoritative_iam(docs: Docs) -> list[str]:
    """Google ``_iam_policy``/``_iam_binding``: they replace every other grant; a module must only add."""
    return [
        f"{block.path}: {block.address}"
        for block in blocks(docs, "resource")
        if block.labels[0].startswith("google_") and block.labels[0].endswith(("_iam_policy", "_iam_binding"))
    ]


def broad_project_roles(docs: Docs) -> list[str]:
    """Project-level grants of roles that can be granted on the one resource."""
    return [
        f"{grant.path}: {grant.address}: {grant.body.get('role')}"
        for grant in _resources(docs, "google_project_iam_member")
        if not any(role in PROJECT_LEVEL_ROLES for role in _strings(grant.body.get("role")))
    ]


def unpinned_google_trusts(docs: Docs) -> list[str]:
    """Trusts in ``accounts.google.com`` without ``StringEquals`` on the token's ``aud`` and ``sub``: any Google
    account's ID token (anyone's, for any audience) could assume the role."""
    found = []
    for document, statement in _statements(docs):
        federated = {
            identifier
            for principal in _nested(statement, "principals")
            if principal.get("type") == "Federated"
            for identifier in _listed(principal.get("identifiers"))
        }
        if "accounts.google.com" not in federated or statement.get("effect", "Allow") != "Allow":
            continue
        pinned = {
            condition.get("variable")
            for condition in _nested(statement, "condition")
            if condition.get("test") == "StringEquals" and _listed(condition.get("values"))
        }
        missing = [key for key in GOOGLE_TOKEN_CONDITION_KEYS if key not in pinned]
        if missing:
            found.append(f"{document.path}: {document.address}: no StringEquals on {', '.join(missing)}")
    return found


def unconditioned_identity_providers(docs: Docs) -> list[str]:
    """Workload identity pool providers without an ``attribute_condition``: every identity the issuer vouches for
    (every role and user of an AWS account) gets a Google token, and only the IAM bindings stand in the way."""
    return [
        f"{provider.path}: {provider.address}"
        for provider in _resources(docs, "google_iam_workload_identity_pool_provider")
        if str(provider.body.get("attribute_condition", "")).strip() in ("", "true")
    ]


def pool_wide_principal_sets(docs: Docs) -> list[str]:
    """Grants to a whole workload identity pool (``principalSet://.../workloadIdentityPools/POOL/*``) rather than to
    the one attribute (role) that needs them."""
    return [
        f"{grant.path}: {grant.address}: {member}"
        for grant in blocks(docs, "resource")
        if grant.labels[0].endswith("_iam_member")
        for member in _strings(grant.body.get("member"))
        if member.startswith("principalSet://") and member.rstrip("/").endswith("/*")
    ]


RULES = [
    inline_policies,
    wildcard_actions,
    wildcard_resources,
    open_principals,
    managed_policies,
    unscoped_permissions,
    authoritative_iam,
    broad_project_roles,
    unpinned_google_trusts,
    unconditioned_identity_providers,
    pool_wide_principal_sets,
]


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.__name__)
def test_no_review_findings(documents: Docs, rule: Any) -> None:
    findings = rule(documents)
    assert not findings, f"{rule.__doc__}\n" + "\n".join(findings)


@pytest.mark.parametrize(
    ("rule", "hcl"),
    [
        (inline_policies, 'resource "aws_iam_role_policy" "p" {\n  policy = jsonencode({})\n}\n'),
        (wildcard_actions, 'data "aws_iam_policy_document" "p" {\n  statement {\n    actions = ["sqs:*"]\n  }\n}\n'),
        (
            wildcard_resources,
            'data "aws_iam_policy_document" "p" {\n  statement {\n    actions   = ["sqs:SendMessage"]\n'
            '    resources = ["*"]\n  }\n}\n',
        ),
        (
            open_principals,
            'data "aws_iam_policy_document" "p" {\n  statement {\n    principals {\n      type        = "AWS"\n'
            '      identifiers = ["*"]\n    }\n  }\n}\n',
        ),
        (
            managed_policies,
            'resource "aws_iam_role" "r" {\n  managed_policy_arns = '
            '["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]\n}\n',
        ),
        (unscoped_permissions, 'resource "aws_lambda_permission" "p" {\n  principal = "sns.amazonaws.com"\n}\n'),
        (
            unscoped_permissions,
            'resource "aws_lambda_permission" "p" {\n  principal  = "s3.amazonaws.com"\n  source_arn = "a"\n}\n',
        ),
        (authoritative_iam, 'resource "google_project_iam_binding" "b" {\n  role = "roles/run.invoker"\n}\n'),
        (broad_project_roles, 'resource "google_project_iam_member" "m" {\n  role = "roles/run.invoker"\n}\n'),
        (
            # aud alone: the audience asked for, but any Google account's token with it would do.
            unpinned_google_trusts,
            'data "aws_iam_policy_document" "t" {\n  statement {\n    actions = ["sts:AssumeRoleWithWebIdentity"]\n'
            '    principals {\n      type        = "Federated"\n      identifiers = ["accounts.google.com"]\n    }\n'
            '    condition {\n      test     = "StringEquals"\n      variable = "accounts.google.com:aud"\n'
            '      values   = ["123456789012345678901"]\n    }\n  }\n}\n',
        ),
        (
            unconditioned_identity_providers,
            'resource "google_iam_workload_identity_pool_provider" "p" {\n  aws {\n    account_id = "123456789012"\n'
            "  }\n}\n",
        ),
        (
            pool_wide_principal_sets,
            'resource "google_service_account_iam_member" "m" {\n  role   = "roles/iam.workloadIdentityUser"\n'
            '  member = "principalSet://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/*"\n}\n',
        ),
    ],
)
def test_each_rule_catches_what_a_reviewer_would(rule: Any, hcl: str, tmp_path: Path) -> None:
    (tmp_path / "bad.tf").write_text(hcl)
    assert len(rule(tf_tools.parse([tmp_path / "bad.tf"]))) == 1


def test_xrays_puts_are_the_one_resourceless_grant(documents: Docs) -> None:
    xray = [
        statement
        for _, statement in _statements(documents)
        if set(_listed(statement.get("actions"))) == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    ]
    assert xray, "the Lambda module should allow X-Ray's put actions (on *: they take no resource)"
    assert all(_listed(statement.get("resources")) == ["*"] for statement in xray)


def test_lambda_logs_go_to_its_own_group_with_retention(documents: Docs) -> None:
    groups = _resources(documents, "aws_cloudwatch_log_group")
    assert groups
    assert all("retention_in_days" in group.body for group in groups)
    log_resources = [
        resource
        for _, statement in _statements(documents)
        if any(action.startswith("logs:") for action in _listed(statement.get("actions")))
        for resource in _listed(statement.get("resources"))
    ]
    assert log_resources
    assert all("aws_cloudwatch_log_group." in resource for resource in log_resources), log_resources


def test_sqs_event_source_mappings_report_item_failures(documents: Docs) -> None:
    mappings = _resources(documents, "aws_lambda_event_source_mapping")
    assert mappings
    for mapping in mappings:
        assert "ReportBatchItemFailures" in _listed(mapping.body.get("function_response_types")), mapping.address


# --- Google IAM -------------------------------------------------------------------------------------


def test_run_invoker_is_granted_on_the_function_service_only(documents: Docs) -> None:
    grants = [
        grant
        for grant in blocks(documents, "resource")
        if grant.labels[0].endswith("_iam_member") and "roles/run.invoker" in str(grant.body.get("role"))
    ]
    assert grants
    assert {grant.labels[0] for grant in grants} <= {"google_cloud_run_v2_service_iam_member"}


# --- The code Terraform deploys ---------------------------------------------------------------------


def _handler_names(documents: Docs) -> set[str]:
    return {
        name
        for function in _resources(documents, "aws_lambda_function")
        for name in re.findall(r"lambda_trigger\.[\w.]+", " ".join(_strings(function.body.get("handler"))))
    } | {name for doc in documents.values() for s in _strings(doc) for name in re.findall(r"lambda_trigger\.[\w.]+", s)}


def test_lambda_handlers_exist_in_the_code(documents: Docs) -> None:
    handlers = {name for name in _handler_names(documents) if name.count(".") >= 2}
    assert handlers >= {"lambda_trigger.handler.handler", "lambda_trigger.handler.sqs_handler"}
    for handler in handlers:
        module, _, function = handler.rpartition(".")
        assert callable(getattr(importlib.import_module(module), function, None)), handler


def test_function_entry_points_exist_in_the_code(documents: Docs) -> None:
    main = importlib.import_module("gcf_trigger.main")
    entry_points = {
        word
        for function in _resources(documents, "google_cloudfunctions2_function")
        for build in _nested(function.body, "build_config")
        for value in _strings(build.get("entry_point"))
        for word in re.findall(r"\b(trigger_\w+)\b", value)
    }
    # An expression may pick the entry point from a local; follow the module's locals too.
    for doc in documents.values():
        for local in doc.get("locals", []):
            for name, value in local.items():
                if "entry_point" in name:
                    entry_points |= {w for s in _strings(value) for w in re.findall(r"\b(trigger_\w+)\b", s)}
    assert entry_points >= {"trigger_dag", "trigger_http"}, entry_points
    for name in entry_points:
        assert callable(getattr(main, name, None)), name


def _env_keys(documents: Docs) -> dict[str, str]:
    """Every environment variable name Terraform sets, with where."""
    keys: dict[str, str] = {}

    def add(value: Any, where: str) -> None:
        if isinstance(value, dict):
            keys.update(dict.fromkeys((k for k in value if k != BLOCK), where))
        for text in _strings(value):
            # merge(var.x, { NAME = ... }) and conditionals stay expressions: take their literal keys.
            for inline in re.findall(r"\{([^{}]*)\}", text):
                keys.update(dict.fromkeys(re.findall(r"\b([A-Z][A-Z0-9_]+)\s*=", inline), where))

    for block in blocks(documents, "resource"):
        for config in _nested(block.body, "service_config"):
            add(config.get("environment_variables"), block.address)
        for environment in _nested(block.body, "environment"):
            add(environment.get("variables"), block.address)
    for call in blocks(documents, "module"):
        add(call.body.get("environment_variables"), f"{call.path}: {call.address}")
    for doc in documents.values():
        for local in doc.get("locals", []):
            for name, value in local.items():
                if "env" in name:
                    add(value, f"local.{name}")
    return keys


def test_environment_keys_are_ones_the_code_reads(documents: Docs) -> None:
    keys = _env_keys(documents)
    assert {"DAG_TRIGGER_CONFIG", "DAG_ID"} <= set(keys), keys
    known = ENVIRONMENT_VARIABLES | {CONCURRENCY_ENV, AirflowSettings.password_env} | LIBRARY_ENV_NAMES
    unknown = {
        key: where for key, where in keys.items() if key not in known and not key.startswith(PLATFORM_ENV_PREFIXES)
    }
    assert not unknown, f"environment variables nothing reads: {unknown}"


def _archive_sources(documents: Docs, module: str) -> tuple[list[str], set[str]]:
    """An ``archive_file``'s ``fileset()`` patterns and its fixed file names."""
    patterns: list[str] = []
    fixed: set[str] = set()
    for archive in blocks(_in(documents, tf_tools.TERRAFORM_DIR / "modules" / module), "data"):
        if archive.labels[0] != "archive_file":
            continue
        for dynamic in archive.body.get("dynamic", []):
            for spec in dynamic.values():
                patterns += re.findall(r'fileset\([^,]+,\s*"([^"]+)"\)', str(spec.get("for_each")))
                for content in spec.get("content", []):
                    fixed |= {str(content["filename"])} - {"${source.value}"}
        fixed |= {str(source["filename"]) for source in archive.body.get("source", [])}
    return patterns, fixed


@pytest.mark.parametrize(
    ("module", "pattern", "fixed"),
    [
        ("gcp-function", package.FUNCTION_PATTERN, {"main.py", "requirements.txt", package.CONFIG_NAME}),
        ("aws-lambda", package.LAMBDA_PATTERN, {package.CONFIG_NAME}),
    ],
)
def test_make_package_builds_what_terraform_packages(documents: Docs, module: str, pattern: str, fixed: set) -> None:
    patterns, names = _archive_sources(documents, module)
    assert patterns == [pattern]
    assert names == fixed
    packaged = package.fileset(tf_tools.REPO_ROOT, pattern)
    assert "shared/__init__.py" in packaged
    assert "shared/airflow_client.py" in packaged
    assert not any(name.startswith(("tests/", "scripts/")) or "__pycache__" in name for name in packaged)


def _module_locals(documents: Docs, module: str) -> dict[str, Any]:
    return {
        name: value
        for doc in _in(documents, tf_tools.TERRAFORM_DIR / "modules" / module).values()
        for local in doc.get("locals", [])
        for name, value in local.items()
    }


def test_function_main_py_matches_the_packager(documents: Docs) -> None:
    assert _module_locals(documents, "gcp-function")["main_py"] == package.FUNCTION_MAIN_PY


def _relative(path: Path) -> str:
    return path.relative_to(tf_tools.REPO_ROOT).as_posix()


def test_function_requirements_match_the_packager(documents: Docs) -> None:
    # aws_sdk picks function-aws.txt, else function.txt: the files make package zips as FUNCTION_AWS_ZIP / FUNCTION_ZIP.
    choice = str(_module_locals(documents, "gcp-function")["requirements"])
    assert re.findall(r'var\.aws_sdk \? "([^"]+)" : "([^"]+)"', choice) == [
        (_relative(package.FUNCTION_AWS_REQUIREMENTS), _relative(package.FUNCTION_REQUIREMENTS))
    ], choice
    sources = [
        source
        for archive in blocks(_in(documents, tf_tools.TERRAFORM_DIR / "modules" / "gcp-function"), "data")
        if archive.labels[0] == "archive_file"
        for source in archive.body.get("source", [])
        if source.get("filename") == "requirements.txt"
    ]
    assert [str(source["content"]) for source in sources] == ['${file("${local.source_root}/${local.requirements}")}']


def test_the_aws_variant_zip_lists_the_same_files(tmp_path: Path) -> None:
    plain = package.function_source(tmp_path, "x = 1\n")
    aws = package.function_source(tmp_path, "x = 1\n", aws_sdk=True)
    assert aws.path.name == package.FUNCTION_AWS_ZIP
    assert plain.path.name == package.FUNCTION_ZIP
    assert aws.names == plain.names
    with zipfile.ZipFile(aws.path) as archive:
        assert archive.read("requirements.txt") == package.FUNCTION_AWS_REQUIREMENTS.read_bytes()


def _pins(path: Path) -> dict[str, str]:
    """A requirements file's ``name==version`` lines (names normalized); anything else fails."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            pin = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[A-Za-z0-9_,-]+\])?==([A-Za-z0-9_.+!-]+)", line)
            assert pin, f"{path.name}: {line!r} is not pinned"
            pins[re.sub(r"[-_.]+", "-", pin.group(1)).lower()] = pin.group(3)
    return pins


def test_the_requirement_variants_agree() -> None:
    function = _pins(package.FUNCTION_REQUIREMENTS)
    aws = _pins(package.FUNCTION_AWS_REQUIREMENTS)
    dev = _pins(tf_tools.REPO_ROOT / "requirements" / "dev.txt")
    # function-aws.txt is function.txt plus boto3 (the pin the tests run with) and its dependencies.
    assert aws.items() >= function.items()
    assert {"boto3", "botocore", "s3transfer", "jmespath"} <= aws.keys()
    assert aws["boto3"] == dev["boto3"]
    # The two Lambda layers are unpacked into the same /opt/python: no package in both; the google-auth pin is the
    # function's and the tests'; and neither holds boto3, which the runtime provides.
    layer = _pins(package.LAYER_REQUIREMENTS)
    google = _pins(package.GOOGLE_LAYER_REQUIREMENTS)
    assert not layer.keys() & google.keys()
    assert google["google-auth"] == function["google-auth"] == dev["google-auth"]
    assert not {"boto3", "botocore"} & (layer.keys() | google.keys())


def test_the_lambda_layers_are_the_zips_make_package_builds(documents: Docs) -> None:
    assert str(_module_locals(documents, "aws-lambda")["layer_zip"]).endswith(f'/build/{package.LAYER_ZIP}")}}')
    google_layers = [
        str(call.body["google_auth_layer_zip"])
        for call in blocks(documents, "module")
        if "google_auth_layer_zip" in call.body
    ]
    assert google_layers, "no example deploys the google-auth layer"
    assert all(f"/build/{package.GOOGLE_LAYER_ZIP}" in layer for layer in google_layers), google_layers


# --- Module hygiene ---------------------------------------------------------------------------------


@pytest.mark.parametrize("root", _roots(), ids=lambda p: p.name)
def test_every_variable_is_typed_documented_and_used(documents: Docs, root: Path) -> None:
    docs = _in(documents, root)
    text = "\n".join((tf_tools.REPO_ROOT / path).read_text() for path in docs)
    problems = []
    for variable in blocks(docs, "variable"):
        name = variable.labels[0]
        if "type" not in variable.body:
            problems.append(f"var.{name}: no type")
        if not str(variable.body.get("description", "")).strip():
            problems.append(f"var.{name}: no description")
        if not re.search(rf"\bvar\.{re.escape(name)}\b", text):
            problems.append(f"var.{name}: never used")
    assert not problems, f"{root.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("root", _roots(), ids=lambda p: p.name)
def test_provider_versions_are_constrained(documents: Docs, root: Path) -> None:
    docs = _in(documents, root)
    settings = [block for doc in docs.values() for block in doc.get("terraform", [])]
    assert settings, f"{root.name}: no terraform block"
    assert any("required_version" in block for block in settings)
    providers = {
        name: spec
        for block in settings
        for required in block.get("required_providers", [])
        for name, spec in required.items()
        if name != BLOCK
    }
    assert providers, f"{root.name}: no required_providers"
    for name, spec in providers.items():
        pinned = tf_schema.PROVIDERS[name]
        assert spec.get("source") == pinned.source, name
        # The floor is the release whose schema tf_schema checks against: an older one may lack an argument used.
        major, minor, _ = pinned.provider_version.split(".")
        assert spec.get("version") == f">= {major}.{minor}, < {int(major) + 1}.0", f"{root.name}: {name}"


@pytest.mark.parametrize("module", ["gcp-function", "aws-lambda"])
def test_modules_output_the_function_name_and_id(documents: Docs, module: str) -> None:
    outputs = {o.labels[0] for o in blocks(_in(documents, tf_tools.TERRAFORM_DIR / "modules" / module), "output")}
    assert "function_name" in outputs
    assert outputs & {"function_arn", "function_id"}


def _fmt_problems(text: str) -> list[str]:
    """Where ``text`` differs from what ``terraform fmt`` writes, for its two rules a reviewer sees.

    hclwrite's rules (``format.go``): a line that opens more brackets than it closes keeps the current
    indent and pushes one level (however many it opened); a line that closes more pops them first; every
    other line, comments included, sits at the current level, two spaces each. Consecutive lines with a
    one-line ``name = value`` align their ``=``; any other line (blank, comment, block, or an attribute whose
    value opens brackets and runs on) ends the run. Heredoc bodies are left alone.
    """
    lines = text.split("\n")
    problems = [] if lines[-1] == "" and len(lines) > 1 and lines[-2] != "" else ["must end with one newline"]
    indents: list[int] = []
    run: list[tuple[int, int]] = []  # (line number, column of "=") of consecutive one-line attributes

    def close_run() -> None:
        if len({column for _, column in run}) > 1:
            problems.append(f"lines {run[0][0]}-{run[-1][0]}: '=' not aligned")
        run.clear()

    heredoc: str | None = None
    for number, line in enumerate(lines, 1):
        if heredoc is not None:
            if line.strip() == heredoc:
                heredoc = None
            continue
        if "\t" in line or line != line.rstrip():
            problems.append(f"line {number}: tab or trailing whitespace")
        stripped = line.strip()
        code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', stripped)
        code = re.split(r"\s#|^#|\s//|^//", code)[0]
        marker = re.search(r"<<-?(\w+)\s*$", code)
        net = sum(map(code.count, "{[(")) - sum(map(code.count, "}])"))
        if net < 0:
            closed = -net
            while closed > 0 and indents:
                if closed >= indents[-1]:
                    closed -= indents.pop()
                else:
                    indents[-1] -= closed
                    closed = 0
        if stripped and len(line) - len(line.lstrip(" ")) != 2 * len(indents):
            problems.append(f"line {number}: indent {len(line) - len(line.lstrip(' '))}, expected {2 * len(indents)}")
        if net > 0:
            indents.append(net)
        attribute = re.match(r"^(\s*)([\w\"-]+)(\s*)=(?!=)", line)
        if attribute and net == 0:
            if attribute.group(3) == "":
                problems.append(f"line {number}: no space before '='")
            run.append((number, attribute.end() - 1))
        else:
            close_run()
        if marker:
            heredoc = marker.group(1)
    close_run()
    if indents:
        problems.append("unbalanced brackets")
    return problems


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('a   = 1\nbcd = "x"\n', []),
        ("a = 1\nbcd = 2\n", ["lines 1-2: '=' not aligned"]),
        ("a = 1\n\nbcd = 2\n", []),
        ("x = {\n  y   = 1\n  zzz = 2\n}\nlong = 3\n", []),
        ("a = 1\nlong = {\n  b = 2\n}\n", []),  # a run-on value is not aligned with the lines before
        ("t = object({\n  a = string\n})\n", []),  # one level per line, however many brackets it opens
        ("t = object({\n    a = string\n})\n", ["line 2: indent 4, expected 2"]),
        ('b "x" {\n  c = <<-EOT\n  raw  =  text\n  EOT\n}\n', []),
        ("b {\n\tc = 1\n}\n", ["line 2: tab or trailing whitespace", "line 2: indent 0, expected 2"]),
        ("a = 1", ["must end with one newline"]),
    ],
)
def test_the_fmt_check_follows_terraform_fmt(text: str, expected: list[str]) -> None:
    assert _fmt_problems(text) == expected


@pytest.mark.parametrize("path", tf_tools.tf_files(), ids=lambda p: str(p.relative_to(tf_tools.TERRAFORM_DIR)))
def test_terraform_fmt_style(path: Path) -> None:
    problems = _fmt_problems(path.read_text())
    assert not problems, f"{path}:\n" + "\n".join(problems)


@pytest.mark.skipif(shutil.which("terraform") is None, reason="no terraform binary here: the check above stands in")
def test_terraform_fmt_agrees_where_terraform_exists() -> None:
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-diff", str(tf_tools.TERRAFORM_DIR)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout
