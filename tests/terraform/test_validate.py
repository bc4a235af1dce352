"""``terraform validate`` and a security scan, without terraform: the providers' schemas and checkov."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scripts import tf_schema, tf_tools


def test_every_resource_matches_the_provider_schema(
    documents: dict[str, dict[str, Any]], provider_wheels: dict[str, Path]
) -> None:
    resources = list(tf_tools.blocks(documents, "resource")) + list(tf_tools.blocks(documents, "data"))
    assert len(resources) > 20, "too few resources parsed for this check to mean anything"
    findings = tf_schema.validate(documents)
    assert not findings, "\n".join(findings)


def test_checkov_finds_nothing() -> None:
    failures, passed = tf_tools.run_checkov()
    assert passed > 50, "checkov passed suspiciously few checks: did it scan the modules?"
    assert not failures, "\n".join(map(str, failures))


def test_checkov_does_fail_a_bad_module(tmp_path: Path) -> None:
    # The scan above must be able to fail: the same runner on a Lambda with no dead-letter handling.
    (tmp_path / "main.tf").write_text(
        'resource "aws_lambda_function" "bare" {\n  function_name = "bare"\n  role          = "arn"\n}\n'
    )
    failures, _ = tf_tools.run_checkov(tmp_path)
    assert "CKV_AWS_116" in {failure.check_id for failure in failures}
