"""Build the deployable zips exactly as the Terraform modules do, so they can be tested and measured here.

* ``dag-trigger-function.zip``: what ``terraform/modules/gcp-function`` uploads as the Cloud Function's
  source. ``shared/`` and ``gcf_trigger/`` (``*.py`` only), a ``main.py`` at the root that re-exports the
  entry points (the Python runtime loads ``main.py``), and ``requirements.txt`` (``requirements/function.txt``),
  which Cloud Build installs.
* ``dag-trigger-lambda.zip``: what ``terraform/modules/aws-lambda`` deploys as the function's code:
  ``shared/`` and ``lambda_trigger/`` (``*.py`` only). No third-party code, boto3 least of all.
* ``dag-trigger-lambda-layer.zip``: the layer that module takes as ``dependencies_layer_zip``:
  ``requirements/lambda-layer.txt`` installed under ``python/`` for the Lambda runtime (``--platform``), or
  for this machine (``--host``, which the tests use to run the layer here).
* ``dag-trigger-function-aws.zip``: the function's source as the module packages it with ``aws_sdk = true``
  (to reach Amazon MWAA): the same files, ``requirements.txt`` from ``requirements/function-aws.txt`` (boto3).
* ``dag-trigger-lambda-google-layer.zip``: the layer the Lambda module takes as ``google_auth_layer_zip`` (to
  reach Google Cloud through Workload Identity Federation): ``requirements/lambda-google-layer.txt``
  (google-auth, cryptography), built like the dependencies layer.

The file sets are the modules' ``fileset()`` patterns; ``tests/terraform`` checks the two stay the same.

    python -m scripts.package [--out build] [--host] [--config dag_trigger.toml]
"""

from __future__ import annotations

import argparse
import fnmatch
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "build"

#: The Terraform modules' ``fileset(source_root, PATTERN)`` for each zip's code.
FUNCTION_PATTERN = "{shared,gcf_trigger}/**/*.py"
LAMBDA_PATTERN = "{shared,lambda_trigger}/**/*.py"
#: The function source's root ``main.py``: the module's ``local.main_py``, byte for byte.
FUNCTION_MAIN_PY = "from gcf_trigger.main import trigger_dag, trigger_http  # noqa: F401\n"
FUNCTION_REQUIREMENTS = REPO_ROOT / "requirements" / "function.txt"
#: The function's requirements with ``aws_sdk = true``: function.txt and boto3.
FUNCTION_AWS_REQUIREMENTS = REPO_ROOT / "requirements" / "function-aws.txt"
LAYER_REQUIREMENTS = REPO_ROOT / "requirements" / "lambda-layer.txt"
#: The Lambda's second layer, for Google Cloud through Workload Identity Federation: google-auth.
GOOGLE_LAYER_REQUIREMENTS = REPO_ROOT / "requirements" / "lambda-google-layer.txt"
#: The config file's name inside either zip (``DAG_TRIGGER_CONFIG`` points at it when the module gets one).
CONFIG_NAME = "dag_trigger.toml"
#: The Lambda runtime the modules default to: python3.14 on arm64.
LAMBDA_PYTHON = "3.14"
LAMBDA_PLATFORM = "manylinux2014_aarch64"

FUNCTION_ZIP = "dag-trigger-function.zip"
FUNCTION_AWS_ZIP = "dag-trigger-function-aws.zip"
LAMBDA_ZIP = "dag-trigger-lambda.zip"
LAYER_ZIP = "dag-trigger-lambda-layer.zip"
GOOGLE_LAYER_ZIP = "dag-trigger-lambda-google-layer.zip"


def fileset(root: Path, pattern: str) -> list[str]:
    """Terraform's ``fileset(root, pattern)`` for the patterns used here: ``{a,b}`` alternatives and ``**``.

    Regular files only, relative POSIX paths, sorted; ``**/`` matches zero or more directories.
    """
    alternatives = _expand_braces(pattern)
    found = set()
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        relative = path.relative_to(root).as_posix()
        if any(_glob_match(relative, alternative) for alternative in alternatives):
            found.add(relative)
    return sorted(found)


def _expand_braces(pattern: str) -> list[str]:
    start = pattern.find("{")
    if start < 0:
        return [pattern]
    end = pattern.index("}", start)
    head, options, tail = pattern[:start], pattern[start + 1 : end].split(","), pattern[end + 1 :]
    return [expanded for option in options for expanded in _expand_braces(head + option + tail)]


def _glob_match(path: str, pattern: str) -> bool:
    # "a/**/*.py" must match "a/x.py" too: try the pattern with each "**/" removed as well.
    if "**/" in pattern and _glob_match(path, pattern.replace("**/", "", 1)):
        return True
    parts, pattern_parts = path.split("/"), pattern.split("/")
    if "**" not in pattern_parts:
        return len(parts) == len(pattern_parts) and all(map(fnmatch.fnmatchcase, parts, pattern_parts))
    split = pattern_parts.index("**")
    head, tail = pattern_parts[:split], pattern_parts[split + 1 :]
    if len(parts) < len(head) + len(tail):
        return False
    return all(map(fnmatch.fnmatchcase, parts[: len(head)], head)) and all(
        map(fnmatch.fnmatchcase, parts[len(parts) - len(tail) :], tail)
    )


@dataclass(frozen=True)
class Package:
    """A zip that was built: where it is, its size, and the names inside it."""

    path: Path
    names: tuple[str, ...]

    @property
    def size(self) -> int:
        """The zip's size in bytes."""
        return self.path.stat().st_size


def _write_zip(path: Path, files: Iterable[tuple[str, bytes]]) -> Package:
    path.parent.mkdir(parents=True, exist_ok=True)
    names = []
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16  # as the modules' archive_file (output_file_mode = "0644")
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
            names.append(name)
    return Package(path, tuple(names))


def _code(pattern: str) -> list[tuple[str, bytes]]:
    return [(name, (REPO_ROOT / name).read_bytes()) for name in fileset(REPO_ROOT, pattern)]


def _with_config(files: list[tuple[str, bytes]], config: str | None) -> list[tuple[str, bytes]]:
    return [*files, (CONFIG_NAME, config.encode())] if config is not None else files


def function_source(out: Path, config: str | None = None, *, aws_sdk: bool = False) -> Package:
    """The Cloud Function's source zip (``terraform/modules/gcp-function``'s ``archive_file``).

    ``aws_sdk``: as the module packages it with ``aws_sdk = true`` (``requirements/function-aws.txt``, boto3
    included), written as ``dag-trigger-function-aws.zip``; the file list is the same.
    """
    requirements = FUNCTION_AWS_REQUIREMENTS if aws_sdk else FUNCTION_REQUIREMENTS
    files = [
        *_code(FUNCTION_PATTERN),
        ("main.py", FUNCTION_MAIN_PY.encode()),
        ("requirements.txt", requirements.read_bytes()),
    ]
    return _write_zip(out / (FUNCTION_AWS_ZIP if aws_sdk else FUNCTION_ZIP), _with_config(files, config))


def lambda_code(out: Path, config: str | None = None) -> Package:
    """The Lambda function's code zip (``terraform/modules/aws-lambda``'s ``archive_file``)."""
    return _write_zip(out / LAMBDA_ZIP, _with_config(_code(LAMBDA_PATTERN), config))


def lambda_layer(out: Path, *, host: bool = False, env: Mapping[str, str] | None = None) -> Package:
    """The dependencies layer: ``requirements/lambda-layer.txt`` under ``python/``, for Lambda or this machine."""
    return _layer(out / LAYER_ZIP, LAYER_REQUIREMENTS, host=host, env=env)


def lambda_google_layer(out: Path, *, host: bool = False, env: Mapping[str, str] | None = None) -> Package:
    """The Google layer (``google_auth_layer_zip``): ``requirements/lambda-google-layer.txt`` under ``python/``."""
    return _layer(out / GOOGLE_LAYER_ZIP, GOOGLE_LAYER_REQUIREMENTS, host=host, env=env)


def _layer(zip_path: Path, requirements: Path, *, host: bool, env: Mapping[str, str] | None) -> Package:
    """``requirements`` installed under ``python/`` (no dependencies resolved: the file is the whole closure)."""
    platform = [] if host else ["--platform", LAMBDA_PLATFORM, "--python-version", LAMBDA_PYTHON, "--implementation",
                                "cp", "--only-binary=:all:"]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="lambda-layer-") as staging:
        target = Path(staging) / "python"
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
             "--no-compile", "--target", str(target), *platform, "-r", str(requirements)],
            capture_output=True, text=True, check=False, env=env,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(
                f"pip could not build {zip_path.name} (exit {result.returncode}):\n{result.stderr[-3000:]}"
            )
        # Console scripts and byte-code caches are not what the function imports (the runtime compiles anew).
        shutil.rmtree(target / "bin", ignore_errors=True)
        for cache in list(target.rglob("__pycache__")):
            shutil.rmtree(cache)
        files = [
            (path.relative_to(staging).as_posix(), path.read_bytes()) for path in target.rglob("*") if path.is_file()
        ]
        return _write_zip(zip_path, files)


def build_all(
    out: Path, *, host: bool = False, config: str | None = None, env: Mapping[str, str] | None = None
) -> Mapping[str, Package]:
    """Every zip, by file name (``env``: pip's environment, default this process's)."""
    packages = [
        function_source(out, config),
        function_source(out, config, aws_sdk=True),
        lambda_code(out, config),
        lambda_layer(out, host=host, env=env),
        lambda_google_layer(out, host=host, env=env),
    ]
    return {package.path.name: package for package in packages}


def main(argv: list[str] | None = None) -> int:
    """Build the zips and print their sizes."""
    parser = argparse.ArgumentParser(prog="python -m scripts.package", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the zips go (default: build/)")
    parser.add_argument("--host", action="store_true", help="build the layers for this machine, not for Lambda")
    parser.add_argument("--config", type=Path, help=f"a config file to package as {CONFIG_NAME}")
    args = parser.parse_args(argv)
    config = args.config.read_text() if args.config else None
    for name, package in build_all(args.out, host=args.host, config=config).items():
        print(f"{package.path}  {package.size / 1024:8.1f} KiB  {len(package.names):4d} files  ({name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
