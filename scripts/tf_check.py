"""``make tf-check``'s checks, for a person: parse every ``.tf``, check it against the providers' schemas, run checkov.

No terraform binary can be installed where this project is built, so this stands in for
``terraform fmt -check && terraform validate`` plus a security scan:

1. python-hcl2 parses every file under ``terraform/`` (a syntax error names the file);
2. every resource and data source is checked against the pinned providers' real schemas
   (:mod:`scripts.tf_schema`): unknown arguments and blocks, missing required ones;
3. checkov runs with zero failed checks allowed (a skip is an inline ``# checkov:skip=ID:reason``).

The review rules (no wildcards, scoped permissions, names that exist in the code) are pytest tests in
``tests/terraform``, which ``make tf-check`` runs next.

    python -m scripts.tf_check [--no-checkov]
"""

from __future__ import annotations

import argparse
import sys
import time

from scripts import tf_schema, tf_tools


def main(argv: list[str] | None = None) -> int:
    """Run the checks and print each finding; exit 1 if there is any."""
    parser = argparse.ArgumentParser(prog="python -m scripts.tf_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-checkov", action="store_true", help="parse and schema checks only (seconds)")
    args = parser.parse_args(argv)
    findings: list[str] = []

    started = time.monotonic()
    try:
        documents = tf_tools.parse()
    except tf_tools.ParseError as exc:
        print(f"parse errors:\n{exc}")
        return 1
    print(f"parsed {len(documents)} .tf files in {time.monotonic() - started:.1f}s")

    started = time.monotonic()
    schema_findings = tf_schema.validate(documents)
    findings += schema_findings
    print(f"schema: {len(schema_findings)} findings in {time.monotonic() - started:.1f}s")

    if not args.no_checkov:
        started = time.monotonic()
        failures, passed = tf_tools.run_checkov()
        findings += [f"checkov: {failure}" for failure in failures]
        print(f"checkov: {passed} passed, {len(failures)} failed in {time.monotonic() - started:.0f}s")

    for finding in findings:
        print(finding)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
