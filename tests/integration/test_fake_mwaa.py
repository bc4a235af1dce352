"""FakeMwaa in front of real Airflow 3 and 2, called with plain boto3: what a botocore caller sees from MWAA.

Every client is made after the endpoint override is in the environment, as our function will make it.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from scripts.local_airflow import REPO_ROOT
from tests.fake_mwaa import MAX_PATH, FakeMwaa
from tests.fault_proxy import FaultProxy, FaultSchedule
from tests.integration.conftest import DEMO_DAG, Target

REGION = "eu-west-1"
ACCOUNT = "210987654321"
KEY, SECRET = "AKIAFAKEMWAAKEY00001", "fake-mwaa-secret-1"
OTHER_KEY, OTHER_SECRET = "AKIAFAKEMWAAKEY00002", "fake-mwaa-secret-2"
#: An environment (in front of Airflow 3) that only OTHER_KEY's user and moto's assumed role may invoke.
RESTRICTED = "restricted"
#: The longest DAG id whose trigger path, /dags/{dag_id}/dagRuns, fits InvokeRestApi's Path.
LONG_DAG = "d" * 50
#: A run id of the shape our code derives (README): 43 characters, two of them colons.
OUR_RUN_ID = "gcs__2026-11-23T08:13:20Z__2ce03fa01d3db718"

ClientFactory = Callable[..., Any]


def environment(target: Target) -> str:
    """The MWAA environment the fake serves ``target``'s Airflow as."""
    return f"airflow{target.major}"


@pytest.fixture(scope="module")
def mwaa(airflows: dict[str, Target]) -> Iterator[FakeMwaa]:
    """One fake MWAA for the module: an environment per Airflow, and a restricted one."""
    fake = FakeMwaa(region=REGION, account=ACCOUNT)
    for target in airflows.values():
        fake.add_environment(environment(target), target.airflow)
    fake.add_environment(RESTRICTED, airflows["3"].airflow)
    fake.add_credentials(KEY, SECRET)
    fake.add_credentials(OTHER_KEY, OTHER_SECRET)
    fake.allow(f"arn:aws:iam::{ACCOUNT}:user/{OTHER_KEY}", RESTRICTED)
    with fake:
        yield fake


@pytest.fixture
def mwaa_client(mwaa: FakeMwaa, monkeypatch: pytest.MonkeyPatch) -> ClientFactory:
    """Makes ``boto3.client("mwaa")`` with the given keys, the fake's overrides set first; counters zeroed."""
    for name, value in mwaa.env().items():
        monkeypatch.setenv(name, value)
    # A developer's own AWS configuration (a profile's endpoint or retry settings) must not steer the client.
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    mwaa.reset_counts()

    def make(access_key: str = KEY, secret_key: str = SECRET, session_token: str | None = None) -> Any:
        return boto3.client(
            "mwaa",
            region_name=REGION,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            aws_session_token=session_token,
        )

    return make


def trigger_body(target: Target, dag_run_id: str, conf: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON that creates a run: Airflow 3 wants ``logical_date`` (null: none)."""
    body: dict[str, Any] = {"dag_run_id": dag_run_id, "conf": conf or {}}
    if target.major == "3":
        body["logical_date"] = None
    return body


def run_cli(host: str, token: str, command: str) -> tuple[int, str, str]:
    """POST ``command`` to the web server's CLI endpoint: the HTTP status and the decoded stdout, stderr."""
    response = requests.post(
        f"http://{host}/aws_mwaa/cli",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
        data=command,
        timeout=180,
    )
    if response.status_code != 200:
        return response.status_code, "", response.text
    answer = response.json()
    return 200, base64.b64decode(answer["stdout"]).decode(), base64.b64decode(answer["stderr"]).decode()


def test_invoke_rest_api_reads_a_dag_through_the_right_api(
    target: Target, mwaa: FakeMwaa, mwaa_client: ClientFactory
) -> None:
    answer = mwaa_client().invoke_rest_api(Name=environment(target), Method="GET", Path=f"/dags/{DEMO_DAG}")

    assert answer["RestApiStatusCode"] == 200
    assert answer["RestApiResponse"]["dag_id"] == DEMO_DAG
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert mwaa.paths == [f"GET {target.airflow.api_prefix}/dags/{DEMO_DAG}"]
    assert mwaa.signed_with == [KEY]


def test_a_second_trigger_is_a_rest_api_client_exception_with_airflows_409(
    target: Target, mwaa_client: ClientFactory, unique: str
) -> None:
    client = mwaa_client()
    dag_run_id = f"mwaa_api__{unique}"
    call = {"Name": environment(target), "Method": "POST", "Path": f"/dags/{DEMO_DAG}/dagRuns"}

    created = client.invoke_rest_api(**call, Body=trigger_body(target, dag_run_id, {"n": 1}))
    with pytest.raises(client.exceptions.RestApiClientException) as refused:
        client.invoke_rest_api(**call, Body=trigger_body(target, dag_run_id, {"n": 2}))

    assert created["RestApiStatusCode"] == 200
    assert created["RestApiResponse"]["dag_run_id"] == dag_run_id
    assert created["RestApiResponse"]["conf"] == {"n": 1}
    error = refused.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"] == {"Code": "RestApiClientException", "Message": ""}
    assert error["RestApiStatusCode"] == 409
    assert "detail" in error["RestApiResponse"]  # Airflow's own answer, passed on as a JSON document
    assert target.runs_with_id(DEMO_DAG, dag_run_id) == 1


def test_an_airflow_5xx_is_a_rest_api_server_exception_and_airflow_down_an_internal_error(
    airflows: dict[str, Target], mwaa: FakeMwaa, mwaa_client: ClientFactory
) -> None:
    client = mwaa_client()
    proxy = FaultProxy(airflows["3"].airflow.url)
    proxy.schedule = FaultSchedule(seed=1, rate=1.0, faults=("503",))
    with proxy:
        mwaa.add_environment("faulty", airflows["3"].airflow, upstream=proxy.url)
        with pytest.raises(client.exceptions.RestApiServerException) as failed:
            client.invoke_rest_api(Name="faulty", Method="GET", Path=f"/dags/{DEMO_DAG}")
    # The proxy is stopped: the web server refuses connections. botocore retries a 500 (3 attempts in all).
    with pytest.raises(client.exceptions.InternalServerException) as down:
        client.invoke_rest_api(Name="faulty", Method="GET", Path=f"/dags/{DEMO_DAG}")

    error = failed.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "RestApiServerException"
    assert (error["RestApiStatusCode"], error["RestApiResponse"]) == (503, {"detail": "injected 503"})
    assert down.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert mwaa.calls["InvokeRestApi"] == 1 + 3


def test_path_is_at_most_64_characters(mwaa: FakeMwaa, mwaa_client: ClientFactory) -> None:
    client = mwaa_client()
    longest = f"/dags/{'x' * (MAX_PATH - len('/dags/'))}"

    with pytest.raises(client.exceptions.RestApiClientException) as fits:
        client.invoke_rest_api(Name="airflow3", Method="GET", Path=longest)
    with pytest.raises(client.exceptions.ValidationException) as too_long:
        client.invoke_rest_api(Name="airflow3", Method="GET", Path=longest + "x")

    assert fits.value.response["RestApiStatusCode"] == 404  # Airflow's: the DAG does not exist
    assert too_long.value.response["Error"]["Code"] == "ValidationException"
    assert "length less than or equal to 64" in too_long.value.response["Error"]["Message"]
    assert mwaa.paths == [f"GET /api/v2{longest}"]


@pytest.mark.parametrize(
    ("access_key", "secret_key", "code"),
    [
        (KEY, "not-the-secret", "InvalidSignatureException"),
        ("AKIAUNKNOWNKEY000000", SECRET, "UnrecognizedClientException"),
    ],
    ids=["wrong-secret", "unknown-key"],
)
def test_a_bad_signature_is_refused(
    mwaa: FakeMwaa, mwaa_client: ClientFactory, access_key: str, secret_key: str, code: str
) -> None:
    client = mwaa_client(access_key, secret_key)

    with pytest.raises(ClientError) as refused:
        client.invoke_rest_api(Name="airflow3", Method="GET", Path=f"/dags/{DEMO_DAG}")

    error = refused.value.response
    assert (error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Code"]) == (403, code)
    # Not modeled for MWAA: a plain ClientError, no client.exceptions class.
    assert type(refused.value) is ClientError
    assert mwaa.paths == []
    assert mwaa.signed_with == []


def test_a_caller_not_granted_the_environment_is_denied(mwaa: FakeMwaa, mwaa_client: ClientFactory) -> None:
    denied_client = mwaa_client()
    granted = mwaa_client(OTHER_KEY, OTHER_SECRET).invoke_rest_api(
        Name=RESTRICTED, Method="GET", Path=f"/dags/{DEMO_DAG}"
    )
    with pytest.raises(denied_client.exceptions.AccessDeniedException) as denied:
        denied_client.invoke_rest_api(Name=RESTRICTED, Method="GET", Path=f"/dags/{DEMO_DAG}")

    assert granted["RestApiStatusCode"] == 200
    error = denied.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Message"] == error["Error"]["Message"]
    assert (
        f"User: arn:aws:iam::{ACCOUNT}:user/{KEY} is not authorized to perform: airflow:InvokeRestApi"
        in (error["Message"])
    )
    assert f"on resource: arn:aws:airflow:{REGION}:{ACCOUNT}:role/{RESTRICTED}/Admin" in error["Message"]
    assert len(mwaa.paths) == 1


def test_credentials_issued_by_moto_sts_are_verified(mwaa: FakeMwaa, mwaa_client: ClientFactory) -> None:
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        mwaa.trust_moto(f"http://{host}:{port}")
        sts = boto3.client(
            "sts",
            endpoint_url=f"http://{host}:{port}",
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        # Assumed after trust_moto: the fake looks the key up in moto when it first sees it.
        assumed = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/dag-trigger", RoleSessionName="lambda")
        keys = assumed["Credentials"]
        client = mwaa_client(keys["AccessKeyId"], keys["SecretAccessKey"], keys["SessionToken"])
        forged = mwaa_client(keys["AccessKeyId"], keys["SecretAccessKey"], "forged-session-token")
        wrong_secret = mwaa_client(keys["AccessKeyId"], "not-the-secret", keys["SessionToken"])

        mwaa.allow(assumed["AssumedRoleUser"]["Arn"], RESTRICTED)
        answer = client.invoke_rest_api(Name=RESTRICTED, Method="GET", Path=f"/dags/{DEMO_DAG}")
        refused = []
        for bad in (forged, wrong_secret):
            with pytest.raises(ClientError) as error:
                bad.invoke_rest_api(Name=RESTRICTED, Method="GET", Path=f"/dags/{DEMO_DAG}")
            refused.append(error.value.response["Error"]["Code"])
    finally:
        moto.stop()

    assert answer["RestApiStatusCode"] == 200
    assert keys["AccessKeyId"].startswith("ASIA")
    assert mwaa.signed_with == [keys["AccessKeyId"]]
    assert refused == ["UnrecognizedClientException", "InvalidSignatureException"]


def test_cli_token_runs_a_real_dags_trigger_and_a_duplicate_still_answers_200(
    target: Target, mwaa: FakeMwaa, mwaa_client: ClientFactory, unique: str
) -> None:
    token = mwaa_client().create_cli_token(Name=environment(target))
    dag_run_id = f"mwaa_cli__{unique}"
    conf = {"source": "cli", "n": 1}
    command = f"dags trigger -r {dag_run_id} -c '{json.dumps(conf)}' --no-replace-microseconds {DEMO_DAG}"

    first = run_cli(token["WebServerHostname"], token["CliToken"], command)
    second = run_cli(token["WebServerHostname"], token["CliToken"], command)

    assert token["WebServerHostname"] == mwaa.host
    assert first[0] == 200, first
    assert target.runs_with_id(DEMO_DAG, dag_run_id) == 1
    status, run = target.airflow.request("GET", f"{target.airflow.api_prefix}/dags/{DEMO_DAG}/dagRuns/{dag_run_id}")
    assert (status, run["conf"]) == (200, conf)
    assert second[0] == 200
    assert "DagRunAlreadyExists" in second[2]
    assert mwaa.cli_commands == [command, command]


def test_cli_refuses_bad_tokens_and_commands_off_mwaas_list(
    mwaa: FakeMwaa, mwaa_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = mwaa_client()
    token = client.create_cli_token(Name="airflow3")
    monkeypatch.setattr(mwaa, "cli_token_lifetime", 0)
    expired = client.create_cli_token(Name="airflow3")

    version = run_cli(mwaa.host, token["CliToken"], "version")
    unsupported = run_cli(mwaa.host, token["CliToken"], "pools import /etc/passwd")
    with_expired = run_cli(mwaa.host, expired["CliToken"], "version")
    with_unknown = run_cli(mwaa.host, "not-a-token", "version")

    pinned = re.search(r"^apache-airflow==(\S+)$", (REPO_ROOT / "requirements" / "airflow3.txt").read_text(), re.M)
    assert pinned is not None
    assert version[:2] == (200, f"{pinned.group(1)}\n")
    assert unsupported[0] == 500
    assert with_expired[0] == with_unknown[0] == 403
    assert mwaa.cli_commands == ["version"]


def test_get_environment(target: Target, mwaa: FakeMwaa, mwaa_client: ClientFactory) -> None:
    client = mwaa_client()

    described = client.get_environment(Name=environment(target))["Environment"]
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_environment(Name="no-such-environment")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke_rest_api(Name="no-such-environment", Method="GET", Path="/dags")

    assert described["Name"] == environment(target)
    assert described["Arn"] == f"arn:aws:airflow:{REGION}:{ACCOUNT}:environment/{environment(target)}"
    assert described["Status"] == "AVAILABLE"
    assert described["AirflowVersion"] == {"3": "3.0.6", "2": "2.10.3"}[target.major]
    assert described["WebserverUrl"] == mwaa.host
    assert isinstance(described["CreatedAt"], datetime)


# -- measured: how a run can be confirmed when the DAG id is long ---------------------------------------------


def finding_query(target: Target, dag_run_id: str, since: datetime) -> dict[str, Any]:
    """QueryParameters for GET /dags/{dag_id}/dagRuns that find ``dag_run_id``, triggered after ``since``."""
    if target.major == "3":
        # A case-insensitive LIKE '%...%': '_' matches any character, so compare the ids found exactly.
        return {"run_id_pattern": dag_run_id, "run_after_gte": since.isoformat(), "order_by": "-run_after"}
    # Airflow 2 has no run id filter: runs since the trigger, newest first, one page.
    return {"execution_date_gte": since.isoformat(), "order_by": "-execution_date", "limit": 100}


def test_confirming_a_run_of_a_50_character_dag_within_the_path_limit(
    target: Target, mwaa: FakeMwaa, mwaa_client: ClientFactory, unique: str
) -> None:
    client = mwaa_client()
    name = environment(target)
    run_list = f"/dags/{LONG_DAG}/dagRuns"
    since = datetime.now(UTC) - timedelta(seconds=1)
    decoy, ours = f"mwaa_decoy__{unique}", f"mwaa_find__{unique}"
    for dag_run_id in (ours, decoy):
        client.invoke_rest_api(
            Name=name, Method="POST", Path=f"/dags/{DEMO_DAG}/dagRuns", Body=trigger_body(target, dag_run_id)
        )

    # (a) The run's own URL: 15 characters and the DAG id leave no room for any run id.
    with pytest.raises(client.exceptions.ValidationException):
        client.invoke_rest_api(Name=name, Method="GET", Path=f"{run_list}/{ours}")
    # (b) The run list fits exactly (64 characters) and reaches Airflow, which does not know this DAG:
    # Airflow 3 answers 404, Airflow 2 an empty list.
    mwaa.reset_counts()
    try:
        listed = client.invoke_rest_api(
            Name=name, Method="GET", Path=run_list, QueryParameters=finding_query(target, ours, since)
        )
        unknown_dag = (listed["RestApiStatusCode"], listed["RestApiResponse"]["total_entries"])
    except client.exceptions.RestApiClientException as error:
        unknown_dag = (error.response["RestApiStatusCode"], None)
    reached_airflow = mwaa.paths[:]
    # ... and the same query on the demo DAG finds the run among those triggered since.
    found = client.invoke_rest_api(
        Name=name,
        Method="GET",
        Path=f"/dags/{DEMO_DAG}/dagRuns",
        QueryParameters=finding_query(target, ours, since),
    )["RestApiResponse"]["dag_runs"]
    # The other version's filter: Airflow 3 ignores Airflow 2's, Airflow 2 refuses Airflow 3's.
    # A day ahead: a filter Airflow applied would leave no run.
    tomorrow = (since + timedelta(days=1)).isoformat()
    other = {"3": {"execution_date_gte": tomorrow}, "2": {"run_id_pattern": ours}}[target.major]
    if target.major == "3":
        ignored = client.invoke_rest_api(
            Name=name, Method="GET", Path=f"/dags/{DEMO_DAG}/dagRuns", QueryParameters=other
        )
        other_outcome = f"200, {ignored['RestApiResponse']['total_entries']} runs (filter ignored)"
        assert ignored["RestApiResponse"]["total_entries"] >= 2
    else:
        with pytest.raises(client.exceptions.RestApiClientException) as refused:
            client.invoke_rest_api(Name=name, Method="GET", Path=f"/dags/{DEMO_DAG}/dagRuns", QueryParameters=other)
        other_outcome = f"{refused.value.response['RestApiStatusCode']} {refused.value.response['RestApiResponse']}"
        assert refused.value.response["RestApiStatusCode"] == 400

    ids = [run["dag_run_id"] for run in found]
    room = MAX_PATH - len("/dags//dagRuns/") - len(OUR_RUN_ID.replace(":", "%3A"))
    print(
        f"\nAirflow {target.major}: len('{run_list}') = {len(run_list)}; a run's own URL with an id like "
        f"{OUR_RUN_ID} (colons encoded) leaves {room} characters for the DAG id\n"
        f"  GET /dags/<demo>/dagRuns {finding_query(target, ours, since)} -> {ids}\n"
        f"  the other version's filter {other} -> {other_outcome}"
    )
    assert len(run_list) == MAX_PATH
    assert len(reached_airflow) == 1
    assert reached_airflow[0].startswith(f"GET {target.airflow.api_prefix}{run_list}?")
    assert unknown_dag == {"3": (404, None), "2": (200, 0)}[target.major]
    assert ours in ids
    if target.major == "3":
        assert ids == [ours]
    else:
        assert set(ids) >= {ours, decoy}
