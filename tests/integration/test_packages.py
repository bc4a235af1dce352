"""The deployable zips, installed the way each platform installs them, trigger a real Airflow 3.

``make package`` builds what the Terraform modules deploy (:mod:`scripts.package`). Here each zip runs
outside this checkout, in a venv that has only what the platform would give it:

* the Cloud Function's source: unpacked, its ``requirements.txt`` installed into an empty venv (Cloud
  Build's job), served by that venv's ``functions-framework`` with ``--source main.py`` from the unpacked
  root, as Cloud Run functions do;
* the Lambda: the code zip unpacked as the task root and the layer as ``/opt``, in a venv with only boto3
  (the runtime's), the handler loaded by its configured name, as Lambda's bootstrap does; with the Google
  layer beside it (unpacked into the same ``/opt``, as Lambda merges layers), the Lambda reaches a
  Composer-style proxy through workload identity federation, its AWS credentials from a container endpoint.

A module the zips forgot, or one they import from this checkout, fails here. The layer is built for this
machine (``--host``): the Lambda build differs only in its compiled wheels' platform tags.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from scripts import package
from tests.auth_proxy import ComposerProxy
from tests.conftest import ORIGINAL_ENVIRON
from tests.fake_aws_container import FakeContainerCredentials
from tests.fake_google import FakeGoogle
from tests.function_process import FunctionProcess
from tests.integration.conftest import DEMO_DAG, Target
from tests.support import load_event

BOTO3 = "boto3==1.44.5"  # what the Lambda runtime provides; the same pin as requirements/dev.txt
LAMBDA_BOOTSTRAP = """
import importlib, json, sys, time

class Context:
    function_name = "dag-trigger"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:dag-trigger"
    memory_limit_in_mb = 256
    aws_request_id = "package-test"
    log_group_name = "/aws/lambda/dag-trigger"
    log_stream_name = "package-test"

    def __init__(self):
        self._end = time.monotonic() + 30

    def get_remaining_time_in_millis(self):
        return int((self._end - time.monotonic()) * 1000)

module, _, name = sys.argv[1].rpartition(".")
handler = getattr(importlib.import_module(module), name)
result = handler(json.load(open(sys.argv[2])), Context())
names = ("shared", "lambda_trigger", "requests", "boto3", "aws_lambda_powertools", *sys.argv[3:])
origins = {m: importlib.import_module(m).__file__ for m in names}
print(json.dumps({"result": result, "origins": origins}))
"""


def _venv(path: Path, *requirements: str) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    result = subprocess.run(
        [str(path / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements],
        capture_output=True,
        text=True,
        check=False,
        env=ORIGINAL_ENVIRON,  # pip must reach PyPI, not the fake Google every other request is sent to
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return path


def _unzip(archive: Path, into: Path) -> Path:
    with zipfile.ZipFile(archive) as handle:
        handle.extractall(into)
    return into


def _config(target: Target) -> str:
    """The TOML a user would give the modules' ``config_toml``, for the local Airflow 3 and the demo DAG."""
    return (
        f'[airflow]\nurl = "{target.airflow.url}"\nauth = "jwt"\nusername = "{target.airflow.username}"\n'
        f'password_env = "AIRFLOW_PASSWORD"\n\n[[routes]]\ndag_id = "{DEMO_DAG}"\n'
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, airflows: dict[str, Target]) -> dict[str, package.Package]:
    """The zips, with a config for the local Airflow 3 packaged inside, as the modules' ``config_toml`` does."""
    config = _config(airflows["3"])
    packages = package.build_all(tmp_path_factory.mktemp("packages"), host=True, config=config, env=ORIGINAL_ENVIRON)
    for name, built_package in packages.items():
        print(f"{name}: {built_package.size / 1024:.1f} KiB, {len(built_package.names)} files")
    return dict(packages)


def test_the_zips_hold_the_code_and_nothing_else(built: dict[str, package.Package]) -> None:
    function = set(built[package.FUNCTION_ZIP].names)
    assert {"main.py", "requirements.txt", package.CONFIG_NAME, "shared/__init__.py", "gcf_trigger/main.py"} <= function
    code = set(built[package.LAMBDA_ZIP].names)
    assert {"shared/__init__.py", "lambda_trigger/handler.py", package.CONFIG_NAME} <= code
    assert not {name for name in function | code if name.startswith(("tests/", "scripts/", "boto"))}
    layer = built[package.LAYER_ZIP].names
    assert all(name.startswith("python/") for name in layer)
    assert not [name for name in layer if name.startswith(("python/boto3/", "python/botocore/"))], "boto3 in the layer"
    assert any(name.startswith("python/aws_lambda_powertools/") for name in layer)
    google_layer = built[package.GOOGLE_LAYER_ZIP].names
    assert any(name.startswith("python/google/auth/") for name in google_layer)
    assert not set(google_layer) & set(layer), "a file in both layers"
    assert not [name for name in google_layer if name.startswith(("python/boto", "python/requests/"))]
    assert set(built[package.FUNCTION_AWS_ZIP].names) == function
    with zipfile.ZipFile(built[package.FUNCTION_AWS_ZIP].path) as handle:
        assert "boto3==" in handle.read("requirements.txt").decode()


@pytest.fixture(scope="module")
def function_root(built: dict[str, package.Package], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _unzip(built[package.FUNCTION_ZIP].path, tmp_path_factory.mktemp("workspace"))


def test_the_function_source_installs_and_triggers_from_an_empty_venv(
    function_root: Path, airflows: dict[str, Target], tmp_path: Path, unique: str
) -> None:
    target = airflows["3"]
    venv = _venv(tmp_path / "venv", "-r", str(function_root / "requirements.txt"))
    event = load_event("gcs_finalized.cloudevent.json")
    event["id"] = f"package-{unique}"
    event["data"]["name"] = f"incoming/{unique}.csv"
    env = {
        "DAG_TRIGGER_CONFIG": str(function_root / package.CONFIG_NAME),
        "AIRFLOW_PASSWORD": target.airflow.password,
        # Nothing from this checkout may leak in: the venv has no project install, and this path is cleared.
        "PYTHONPATH": "",
    }
    with FunctionProcess("trigger_dag", "cloudevent", env, source=function_root / "main.py", venv=venv) as function:
        response = function.post_binary(event)
        assert response.status_code == 200, function.log_text()
        outcomes = [line for line in function.log_lines() if "outcome" in line]
    assert [line["outcome"] for line in outcomes] == ["created"]
    assert target.runs_with_id(DEMO_DAG, outcomes[0]["dag_run_id"]) == 1


@pytest.fixture(scope="module")
def lambda_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with only boto3: the Lambda runtime's own packages."""
    return _venv(tmp_path_factory.mktemp("lambda") / "venv", BOTO3)


def _invoke(
    venv: Path, task: Path, opt: Path, event: dict[str, Any], env: dict[str, str], *modules: str
) -> dict[str, Any]:
    """Run the handler as Lambda's bootstrap does; its result and where each module (and ``modules``) came from."""
    (task.parent / "event.json").write_text(json.dumps(event))
    (task.parent / "bootstrap.py").write_text(LAMBDA_BOOTSTRAP)
    result = subprocess.run(
        [str(venv / "bin" / "python"), str(task.parent / "bootstrap.py"), "lambda_trigger.handler.handler",
         str(task.parent / "event.json"), *modules],
        cwd=task,
        env={
            "PATH": "/usr/bin:/bin",
            # Lambda's own order: the task root, then the layers under /opt/python, then the runtime's boto3.
            "PYTHONPATH": f"{task}:{opt / 'python'}",
            "AWS_REGION": "eu-west-1",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_NAMESPACE": "DagTrigger",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    output: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return output


def _s3_event(unique: str) -> dict[str, Any]:
    event = load_event("s3_put.json")
    event["Records"][0]["s3"]["object"]["key"] = f"incoming/{unique}.csv"
    event["Records"][0]["responseElements"]["x-amz-request-id"] = unique
    return event


def test_the_lambda_zip_and_layer_trigger_from_a_venv_with_only_boto3(
    built: dict[str, package.Package], lambda_venv: Path, airflows: dict[str, Target], tmp_path: Path, unique: str
) -> None:
    target = airflows["3"]
    task = _unzip(built[package.LAMBDA_ZIP].path, tmp_path / "task")
    opt = _unzip(built[package.LAYER_ZIP].path, tmp_path / "opt")
    venv = lambda_venv
    env = {"DAG_TRIGGER_CONFIG": str(task / package.CONFIG_NAME), "AIRFLOW_PASSWORD": target.airflow.password}
    output = _invoke(venv, task, opt, _s3_event(unique), env)
    origins = output["origins"]
    where = {name: Path(origin).parents[1] for name, origin in origins.items()}
    assert where == {
        "shared": task,
        "lambda_trigger": task,
        "requests": opt / "python",
        "aws_lambda_powertools": opt / "python",
        "boto3": venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages",
    }
    run = output["result"]["runs"][0]
    assert run["outcome"] == "created"
    assert target.runs_with_id(DEMO_DAG, run["dag_run_id"]) == 1


def test_with_the_google_layer_the_lambda_reaches_composer_through_workload_identity_federation(
    built: dict[str, package.Package],
    lambda_venv: Path,
    airflows: dict[str, Target],
    google: FakeGoogle,
    tmp_path: Path,
    unique: str,
) -> None:
    target = airflows["3"]
    task = _unzip(built[package.LAMBDA_ZIP].path, tmp_path / "task")
    opt = _unzip(built[package.LAYER_ZIP].path, tmp_path / "opt")
    _unzip(built[package.GOOGLE_LAYER_ZIP].path, opt)
    provider = "projects/123456789012/locations/global/workloadIdentityPools/packaged/providers/aws"
    account = "packaged-lambda@analytics.iam.gserviceaccount.com"
    with (
        FakeContainerCredentials(role="packaged-lambda") as container,
        ComposerProxy(target.airflow, google, allowed={account}) as proxy,
    ):
        pool = google.add_aws_provider(f"//iam.googleapis.com/{provider}", allowed_roles=["packaged-lambda"])
        google.trust_aws_credentials(*container.key)
        google.allow_impersonation(google.aws_role_principal_set(pool, container.session_arn), account)
        google.reset_counts()
        config = tmp_path / "config.toml"
        config.write_text(
            f'[airflow]\nurl = "{proxy.url}"\nauth = "composer"\nworkload_identity_provider = "{provider}"\n'
            f'service_account = "{account}"\n\n[[routes]]\ndag_id = "{DEMO_DAG}"\n'
        )
        env: dict[str, str] = {"DAG_TRIGGER_CONFIG": str(config), **container.env()}
        FakeContainerCredentials.isolate_env(env)
        env.update({**container.env(), **google.env()})
        output = _invoke(lambda_venv, task, opt, _s3_event(unique), env, "google.auth", "cryptography")

    where = {name: Path(origin).parents[1] for name, origin in output["origins"].items()}
    assert where["google.auth"].parent == opt / "python"
    assert where["cryptography"] == opt / "python"
    run = output["result"]["runs"][0]
    assert run["outcome"] == "created"
    assert target.runs_with_id(DEMO_DAG, run["dag_run_id"]) == 1
    assert (google.calls["sts.token"], google.calls["generateAccessToken"], container.fetches) == (1, 1, 1)
