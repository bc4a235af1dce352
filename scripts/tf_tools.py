"""The Terraform under ``terraform/`` as data, and checkov's verdict on it, with no terraform binary.

python-hcl2 and checkov each run from their own venv (:mod:`scripts.venvs`); this module only talks to them
through subprocesses and JSON, so the project venv never imports either.

python-hcl2 keeps HCL's quoting in its output (``"\\"python3.14\\""``, ``"\\"aws_lambda_function\\""``);
:func:`normalize` strips it once, here, so every check reads plain labels and literals. Expressions stay
as python-hcl2 writes them (``"${var.name}"``), blocks stay lists of dicts marked ``"__is_block__": True``.
"""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts import venvs

REPO_ROOT = venvs.REPO_ROOT
TERRAFORM_DIR = REPO_ROOT / "terraform"
HCL2_VENV = REPO_ROOT / ".venv-hcl2"
CHECKOV_VENV = REPO_ROOT / ".venv-checkov"
BLOCK = "__is_block__"

_PARSE_SCRIPT = """
import json, sys
import hcl2
out = {}
for path in sys.argv[1:]:
    with open(path) as handle:
        try:
            out[path] = {"doc": hcl2.load(handle)}
        except Exception as exc:
            out[path] = {"error": f"{type(exc).__name__}: {exc}"}
json.dump(out, sys.stdout)
"""
# What python-hcl2 adds beside the HCL itself: the comments it saw (at any level) and line numbers.
_PARSER_NOTES = frozenset({"__comments__", "__start_line__", "__end_line__"})
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_HEREDOC = re.compile(r"<<(-?)(\w+)\n(.*)\n[ \t]*\2\Z", re.DOTALL)


def tf_files(root: Path = TERRAFORM_DIR) -> list[Path]:
    """Every ``.tf`` file under ``root``, skipping what ``terraform init`` downloads into ``.terraform``."""
    return sorted(path for path in root.rglob("*.tf") if ".terraform" not in path.parts)


def ensure_hcl2() -> Path:
    """The python-hcl2 venv's interpreter, installed on first use."""
    return venvs.ensure(HCL2_VENV, REPO_ROOT / "requirements" / "tf-hcl2.txt", "python") / "bin" / "python"


def ensure_checkov() -> Path:
    """The checkov executable, installed on first use."""
    return venvs.ensure(CHECKOV_VENV, REPO_ROOT / "requirements" / "tf-checkov.txt", "checkov") / "bin" / "checkov"


class ParseError(Exception):
    """A ``.tf`` file python-hcl2 cannot parse: what terraform would also refuse."""


def parse(paths: list[Path] | None = None) -> dict[str, dict[str, Any]]:
    """Parse ``.tf`` files (default: all of them) into normalized documents keyed by repo-relative path."""
    paths = tf_files() if paths is None else paths
    result = subprocess.run(
        [str(ensure_hcl2()), "-c", _PARSE_SCRIPT, *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"python-hcl2 failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
    parsed = json.loads(result.stdout)
    errors = [f"{_relative(path)}: {entry['error']}" for path, entry in parsed.items() if "error" in entry]
    if errors:
        raise ParseError("\n".join(errors))
    return {_relative(path): normalize(entry["doc"]) for path, entry in parsed.items()}


def _relative(path: str) -> str:
    resolved = Path(path).resolve()
    return str(resolved.relative_to(REPO_ROOT)) if resolved.is_relative_to(REPO_ROOT) else str(resolved)


def normalize(value: Any) -> Any:
    """Strip python-hcl2's quoting from keys and string literals, recursively (heredocs become their text)."""
    if isinstance(value, dict):
        return {unquote(key): normalize(item) for key, item in value.items() if key not in _PARSER_NOTES}
    if isinstance(value, list):
        return [normalize(item) for item in value]
    if isinstance(value, str):
        return unquote(value)
    return value


def unquote(text: str) -> str:
    """``"\\"a \\\\\\"b\\\\\\"\\""`` -> ``a "b"``; a heredoc's text loses its markers (and with ``<<-`` its indent)."""
    if len(text) < 2 or not (text.startswith('"') and text.endswith('"')):
        return text
    body = text[1:-1]
    heredoc = _HEREDOC.match(body)
    if heredoc:
        content = heredoc.group(3) + "\n"
        return textwrap.dedent(content) if heredoc.group(1) else content
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), body)


@dataclass(frozen=True)
class Labeled:
    """One labeled block of a document: a resource, data source, module call, variable or output."""

    path: str
    kind: str
    labels: tuple[str, ...]
    body: dict[str, Any]

    @property
    def address(self) -> str:
        """The block's address as Terraform writes it: ``aws_iam_role.this``, ``data.x.y``, ``var.name``."""
        prefix = {"data": "data.", "variable": "var.", "module": "module.", "output": "output."}.get(self.kind, "")
        return prefix + ".".join(self.labels)


def blocks(documents: dict[str, dict[str, Any]], kind: str) -> Iterator[Labeled]:
    """Every ``kind`` block (``resource``, ``data``: two labels; ``variable``, ``module``, ``output``: one)."""
    for path, document in documents.items():
        for entry in document.get(kind, []):
            for first, inner in entry.items():
                if kind in ("resource", "data"):
                    for second, body in inner.items():
                        yield Labeled(path, kind, (first, second), body)
                else:
                    yield Labeled(path, kind, (first,), inner)


@dataclass(frozen=True)
class CheckovFailure:
    """One failed checkov check, with where it failed."""

    check_id: str
    name: str
    resource: str
    file: str
    lines: tuple[int, int]

    def __str__(self) -> str:
        return f"{self.file}:{self.lines[0]}: {self.check_id} {self.name} ({self.resource})"


def run_checkov(root: Path = TERRAFORM_DIR) -> tuple[list[CheckovFailure], int]:
    """Run checkov over ``root``; return the failed checks and how many passed.

    External module downloads are off: every module the examples call is local.
    """
    result = subprocess.run(
        [
            str(ensure_checkov()),
            "--directory",
            str(root),
            "--framework",
            "terraform",
            "--output",
            "json",
            "--quiet",
            "--skip-download",
            "--download-external-modules",
            "false",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    # checkov exits 1 when a check failed; anything else without JSON on stdout is a crash.
    try:
        reports = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"checkov failed (exit {result.returncode}):\n{result.stderr[-4000:]}") from None
    failures: list[CheckovFailure] = []
    passed = 0
    for report in reports if isinstance(reports, list) else [reports]:
        if not isinstance(report, dict) or "results" not in report:
            continue  # "passed": 0 summaries for frameworks with nothing to scan
        # --quiet leaves passed checks out of the results; the summary still counts them.
        passed += report["summary"]["passed"]
        if report["summary"].get("parsing_errors"):
            raise RuntimeError(f"checkov could not parse {report['summary']['parsing_errors']} file(s)")
        for check in report["results"].get("failed_checks", []):
            failures.append(
                CheckovFailure(
                    check["check_id"],
                    check.get("check_name", ""),
                    check.get("resource", ""),
                    str(root.name + check.get("file_path", "")),
                    tuple(check.get("file_line_range", [0, 0])),  # type: ignore[arg-type]
                )
            )
    return failures, passed
