"""``foldserve submit --sagemaker-endpoint`` and ``SageMakerClient`` against a moto server on
127.0.0.1: the input uploaded to S3, ``invoke_endpoint_async`` called with it, moto's canned
result (a real job output, from one prediction with test weights) downloaded and checked.

moto answers an asynchronous invocation at once, writing the result queued through its
``/moto-api/static/sagemaker/async-endpoint-results`` route (or a placeholder) to the output or
failure location it answers with; a result still to come is made by deleting that object, and
its arrival by putting it back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.sagemakerruntime.models import sagemakerruntime_backends

from foldserve.client import records
from foldserve.client.records import JobRecord, SageMakerJob
from foldserve.client.request import build_request
from foldserve.client.sagemaker import SageMakerClient
from foldserve.client.sagemaker_aws import split_s3
from foldserve.config import SageMakerEndpoint, resolve_target
from foldserve.errors import InputError, RemoteError, Unavailable
from foldserve.fold.alphafold2.predictor import Predictor
from foldserve.fold.results import PredictOptions
from foldserve.jobs.run import run_fold_job
from foldserve.jobs.schema import JobOutput, JobStatus, parse_job_input
from foldserve.retry import RetryPolicy
from tests.aws import REGION, aws_env, moto_server
from tests.cli_runner import Ran, foldserve
from tests.conftest import data
from tests.serving import SMALL_MSA

# One prediction with test weights (module-wide; about a minute on two busy cores), then
# seconds per test.
pytestmark = pytest.mark.timeout(300)

ENDPOINT = "fold-async"
OUTPUT_PATH = "s3://fold-results/async"
OPTIONS = PredictOptions(models=(1,), num_recycles=0)
FLAGS = ("--models", "1", "--num-recycles", "0", "--no-plots")


@pytest.fixture(scope="module")
def job_output(predictor: Predictor, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real job output's JSON, files inline: what the container's ``/invocations`` answers."""
    job = parse_job_input(json.loads(build_request(data(SMALL_MSA), OPTIONS).job_input()))
    work = tmp_path_factory.mktemp("prediction")
    output = run_fold_job(job, predictor, work, progress=lambda event: None)
    return json.dumps(output.to_wire())


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """moto on loopback, boto3 pointed at it, and an asynchronous endpoint whose output path
    is :data:`OUTPUT_PATH`; job records and the configuration kept in ``tmp_path``."""
    with moto_server() as url:
        httpx.post(f"{url}/moto-api/reset").raise_for_status()  # moto's state is per process
        for name, value in aws_env(url, tmp_path).items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        monkeypatch.setenv("FOLDSERVE_STATE_DIR", str(tmp_path / "state"))
        monkeypatch.setenv("FOLDSERVE_CONFIG", str(tmp_path / "config.toml"))
        sagemaker = boto3.client("sagemaker")
        sagemaker.create_model(
            ModelName="foldserve",
            ExecutionRoleArn=f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/foldserve",
            PrimaryContainer={"Image": "foldserve:test"},
        )
        sagemaker.create_endpoint_config(
            EndpointConfigName="foldserve-async",
            ProductionVariants=[
                {
                    "VariantName": "main",
                    "ModelName": "foldserve",
                    "InstanceType": "ml.g4dn.xlarge",
                    "InitialInstanceCount": 1,
                }
            ],
            AsyncInferenceConfig={
                "OutputConfig": {
                    "S3OutputPath": OUTPUT_PATH,
                    "S3FailurePath": "s3://fold-results/failures",
                },
                "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 1},
            },
        )
        sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="foldserve-async")
        for bucket in ("fold-results", "fold-inputs"):
            boto3.client("s3").create_bucket(Bucket=bucket)
        yield url


def queue(url: str, data: str, *, failure: bool = False) -> None:
    """The result moto gives the next asynchronous invocation."""
    body = {"region": REGION, "results": [{"data": data, "is_failure": failure}]}
    httpx.post(f"{url}/moto-api/static/sagemaker/async-endpoint-results", json=body)


def invoked() -> dict[str, Any]:
    """Input location -> (output, failure location) of every invocation moto saw."""
    backend = sagemakerruntime_backends[DEFAULT_ACCOUNT_ID][REGION]
    return dict(backend.async_results.get(ENDPOINT, {}))


def s3_read(location: str) -> bytes:
    bucket, key = split_s3(location)
    body: bytes = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def objects(bucket: str) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket)
    return [entry["Key"] for entry in listed.get("Contents", [])]


def submit(*args: str) -> Ran:
    return foldserve("submit", "--sagemaker-endpoint", ENDPOINT, *args, *FLAGS)


def only_record(tmp_path: Path) -> JobRecord:
    (path,) = (tmp_path / "state" / "jobs").glob("*.json")
    return records.read(path)


def test_submit_uploads_the_checked_input_and_writes_the_models_later_shells_follow(
    aws: str, job_output: str, tmp_path: Path
) -> None:
    queue(aws, job_output)
    output = tmp_path / "q60262.pdb"
    ran = submit("--msa", str(data(SMALL_MSA)), "--output", str(output))
    assert ran.exit_code == 0, ran.stderr
    assert "Traceback" not in ran.stderr

    record = only_record(tmp_path)
    job = record.sagemaker
    assert job is not None and record.kind == "sagemaker" and record.id in ran.stderr
    # The input went beside the endpoint's output path: exactly the checked, packed input.
    assert job.input_location == f"{OUTPUT_PATH}/inputs/{record.id}.json"
    sent = json.loads(s3_read(job.input_location))
    assert sent == json.loads(build_request(data(SMALL_MSA), OPTIONS).content)["input"]
    parse_job_input(sent)
    # invoke_endpoint_async named that object, and the record keeps what it answered.
    assert invoked() == {job.input_location: (job.output_location, job.failure_location)}
    assert (job.endpoint, job.region, job.inference_id) == (ENDPOINT, REGION, record.id)

    expected = JobOutput.model_validate_json(job_output)
    out_dir = tmp_path / "q60262_prediction"
    for name, entry in expected.files.items():
        assert hashlib.sha256((out_dir / name).read_bytes()).hexdigest() == entry.sha256, name
    assert output.read_bytes() == (out_dir / "ranked_0.pdb").read_bytes()
    assert "TEST WEIGHTS" in ran.stderr

    status = foldserve("status", record.id, "--json")
    assert status.exit_code == 0, status.stderr
    assert json.loads(status.stdout)["status"] == "COMPLETED"
    again = tmp_path / "again"
    fetched = foldserve("fetch", record.id, "--out-dir", str(again), "--no-plots")
    assert fetched.exit_code == 0, fetched.stderr
    assert (again / "ranked_0.cif").read_bytes() == (out_dir / "ranked_0.cif").read_bytes()


@pytest.mark.parametrize(
    "failure",
    [
        '{"error": "input.msa_gz_b64: not gzip data. Fix: send the MSA gzip-compressed"}',
        "input.msa_gz_b64: not gzip data. Fix: send the MSA gzip-compressed\nTraceback …\n",
    ],
    ids=["json", "text"],
)
def test_a_failed_job_is_one_line_and_exit_code_1(aws: str, tmp_path: Path, failure: str) -> None:
    queue(aws, failure, failure=True)
    ran = submit("--msa", str(data(SMALL_MSA)), "--output", str(tmp_path / "x.pdb"))
    assert ran.exit_code == 1 and "Traceback" not in ran.stderr
    (line,) = [line for line in ran.stderr.splitlines() if line.startswith("error:")]
    record = only_record(tmp_path)
    assert line == (
        f"error: job {record.id} FAILED: input.msa_gz_b64: not gzip data. Fix: send the MSA "
        "gzip-compressed"
    )
    assert record.status == "FAILED"
    assert not (tmp_path / "x.pdb").exists()


def test_a_folder_of_msas_runs_as_a_batch_and_a_second_run_skips_what_is_done(
    aws: str, job_output: str, tmp_path: Path
) -> None:
    msas = tmp_path / "msas"
    msas.mkdir()
    for name in ("first", "second"):
        (msas / f"{name}.a3m").write_bytes(data(SMALL_MSA).read_bytes())
        queue(aws, job_output)
    out = tmp_path / "out"
    ran = submit("--msa-dir", str(msas), "--out-dir", str(out))
    assert ran.exit_code == 0, ran.stderr
    assert "2 done" in ran.stderr
    ranked = JobOutput.model_validate_json(job_output).files["ranked_0.pdb"]
    for name in ("first", "second"):
        assert hashlib.sha256((out / f"{name}.pdb").read_bytes()).hexdigest() == ranked.sha256
        record = records.read(out / name / "foldserve_job.json")
        assert record.kind == "sagemaker" and record.status == "COMPLETED"
    assert len(invoked()) == 2

    again = submit("--msa-dir", str(msas), "--out-dir", str(out))
    assert again.exit_code == 0, again.stderr
    assert "2 already done" in again.stderr
    assert len(invoked()) == 2  # nothing sent twice


def test_a_bad_msa_is_refused_before_anything_is_uploaded(aws: str, tmp_path: Path) -> None:
    bad = data("edge_cases/easel_fasta.bad.1_bad_char.fa")
    ran = submit("--msa", str(bad), "--output", str(tmp_path / "x.pdb"))
    assert ran.exit_code == 2 and "Traceback" not in ran.stderr
    assert str(bad) in ran.stderr
    assert objects("fold-results") == [] and objects("fold-inputs") == []
    assert invoked() == {}
    assert not (tmp_path / "state" / "jobs").exists()


def test_cancel_marks_the_job_here_says_so_and_discards_its_result(
    aws: str, tmp_path: Path
) -> None:
    queue(aws, "an output that will not be read")
    ran = submit("--msa", str(data(SMALL_MSA)), "--no-wait")
    assert ran.exit_code == 0, ran.stderr
    job_id = ran.stdout.strip()
    job = records.load(job_id).sagemaker
    assert job is not None
    output_bucket, output_key = split_s3(job.output_location)
    arriving = s3_read(job.output_location)
    boto3.client("s3").delete_object(Bucket=output_bucket, Key=output_key)  # not there yet

    pending = foldserve("status", job_id)
    assert pending.exit_code == 0, pending.stderr
    assert pending.stdout.startswith(f"job {job_id}: IN_QUEUE · queued or running for")

    cancelled = foldserve("cancel", job_id)
    assert cancelled.exit_code == 0, cancelled.stderr
    assert "marked CANCELLED here only" in cancelled.stderr
    assert "cannot stop" in cancelled.stderr and "discarded" in cancelled.stderr
    assert records.load(job_id).status == "CANCELLED"

    boto3.client("s3").put_object(Bucket=output_bucket, Key=output_key, Body=arriving)
    later = foldserve("status", job_id)
    assert later.stdout.startswith(f"job {job_id}: CANCELLED: cancelled here")
    fetched = foldserve("fetch", job_id, "--out-dir", str(tmp_path / "out"))
    assert fetched.exit_code == 1 and "CANCELLED" in fetched.stderr
    assert not (tmp_path / "out").exists()


def test_the_python_client_waits_for_the_result_to_arrive(
    aws: str, job_output: str, tmp_path: Path
) -> None:
    """``wait`` polls until the output object appears: here during the client's first sleep,
    which is the policy's (no real sleeping)."""
    queue(aws, job_output)
    moved: dict[str, bytes] = {}

    def sleep(seconds: float) -> None:
        for location, body in moved.items():
            bucket, key = split_s3(location)
            boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)

    seen: list[JobStatus] = []
    with SageMakerClient(
        ENDPOINT, s3_input="s3://fold-inputs/jobs/", retry=RetryPolicy(sleep=sleep)
    ) as client:
        job_id = client.submit(data(SMALL_MSA), OPTIONS)
        job = records.load(job_id).sagemaker
        assert job is not None and job.input_location == f"s3://fold-inputs/jobs/{job_id}.json"
        moved[job.output_location] = s3_read(job.output_location)
        bucket, key = split_s3(job.output_location)
        boto3.client("s3").delete_object(Bucket=bucket, Key=key)

        output = client.result(job_id, on_update=lambda state: seen.append(state.status))
        files = client.download(output, tmp_path / "files")
    assert seen == [JobStatus.IN_QUEUE, JobStatus.COMPLETED]
    assert output == JobOutput.model_validate_json(job_output)
    assert sorted(files) == sorted(output.files)
    assert objects("fold-results") == []  # the input went where it was told


def test_the_python_client_refuses_what_sagemaker_would_before_uploading(aws: str) -> None:
    with SageMakerClient(ENDPOINT) as client:
        with pytest.raises(InputError) as caught:
            client.submit(data(SMALL_MSA), OPTIONS, execution_timeout_s=7200)
        assert caught.value.where == "execution_timeout_s"
        with pytest.raises(InputError) as caught:
            client.submit(data(SMALL_MSA), OPTIONS, ttl_s=30)
        assert caught.value.where == "ttl_s"
    assert objects("fold-results") == [] and invoked() == {}


def test_a_result_that_is_not_a_job_output_is_a_one_line_error(aws: str, tmp_path: Path) -> None:
    queue(aws, '{"default": "response"}')
    with SageMakerClient(ENDPOINT) as client:
        job_id = client.submit(data(SMALL_MSA), OPTIONS)
        with pytest.raises(RemoteError) as caught:
            client.result(job_id)
    assert "cannot read" in str(caught.value) and "\n" not in str(caught.value)


def test_a_profile_names_the_endpoint_region_and_input_place(aws: str, tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        'default_profile = "aws"\n[profiles.aws]\n'
        f'sagemaker_endpoint = "{ENDPOINT}"\nregion = "{REGION}"\n'
        's3_input = "s3://fold-inputs/from-profile"\n'
    )
    assert resolve_target() == SageMakerEndpoint(
        ENDPOINT, region=REGION, s3_input="s3://fold-inputs/from-profile", profile="aws"
    )
    flagged = resolve_target(s3_input="s3://fold-inputs/flag/")
    assert isinstance(flagged, SageMakerEndpoint) and flagged.s3_input == "s3://fold-inputs/flag"
    queue(aws, "placeholder")
    ran = foldserve("submit", "--msa", str(data(SMALL_MSA)), "--no-wait", *FLAGS)
    assert ran.exit_code == 0, ran.stderr
    job_id = ran.stdout.strip()
    assert objects("fold-inputs") == [f"from-profile/{job_id}.json"]
    assert records.load(job_id).target() == SageMakerEndpoint(
        ENDPOINT, region=REGION, profile="aws"
    )


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (("--url", "http://gpu:8000", "--sagemaker-endpoint", ENDPOINT), "--url"),
        (("--endpoint-id", "abc", "--region", REGION), "--region"),
        (("--sagemaker-endpoint", "no_underscores"), "--sagemaker-endpoint"),
        (("--sagemaker-endpoint", ENDPOINT, "--s3-input", "https://bucket/x"), "--s3-input"),
        (("--sagemaker-endpoint", ENDPOINT, "--region", "Europe"), "--region"),
        (("--sagemaker-endpoint", ENDPOINT, "--timeout", "7200"), "--timeout"),
    ],
)
def test_flags_that_cannot_go_together_are_refused_first(
    args: tuple[str, ...], where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOLDSERVE_CONFIG", str(tmp_path / "none.toml"))
    ran = foldserve("submit", "--msa", str(tmp_path / "never-read.a3m"), *args)
    assert ran.exit_code == 2, ran.stderr
    assert f"error: {where}:" in ran.stderr


def test_a_profile_for_sagemaker_takes_no_api_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[profiles.aws]\nsagemaker_endpoint = "{ENDPOINT}"\napi_key = "secret-1"\n')
    monkeypatch.setenv("FOLDSERVE_CONFIG", str(config))
    with pytest.raises(InputError, match="api_key does not go with sagemaker_endpoint") as caught:
        resolve_target(profile="aws")
    assert caught.value.where == f"{config}:1" and "secret-1" not in caught.value.one_line()


def test_nothing_answering_is_one_line_after_a_few_quick_retries(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # discard: nothing listens
    slept: list[float] = []
    with (
        SageMakerClient(ENDPOINT, retry=RetryPolicy(sleep=slept.append)) as client,
        pytest.raises(Unavailable) as caught,
    ):
        client.submit(data(SMALL_MSA), OPTIONS)
    assert "cannot reach AWS" in str(caught.value) and sum(slept) <= 5


def test_a_sagemaker_record_round_trips_and_a_damaged_one_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOLDSERVE_STATE_DIR", str(tmp_path / "state"))
    job = SageMakerJob(
        endpoint=ENDPOINT,
        region=REGION,
        inference_id="job-1",
        input_location="s3://fold-inputs/job-1.json",
        output_location="s3://fold-results/async/abc.out",
        failure_location=None,
    )
    target = SageMakerEndpoint(ENDPOINT, region=REGION)
    record = JobRecord.new("job-1", target, msa=None, output=None, out_dir=None, sagemaker=job)
    path = records.save(record)
    assert records.load("job-1") == record and record.base_url == f"sagemaker://{REGION}/{ENDPOINT}"
    with pytest.raises(TypeError):
        JobRecord.new("job-2", target, msa=None, output=None, out_dir=None)

    raw = json.loads(path.read_text())
    path.write_text(json.dumps({**raw, "sagemaker": None}))
    with pytest.raises(InputError, match="unknown kind of endpoint"):
        records.load("job-1")
    path.write_text(json.dumps({**raw, "sagemaker": {**raw["sagemaker"], "output_location": 7}}))
    with pytest.raises(InputError, match="damaged"):
        records.load("job-1")
